//! The collector: export datagrams in, one-second bins of estimated volume out.

use std::collections::{HashMap, VecDeque};
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use netflow_parser::scoped_parser::AutoScopedParser;
use netflow_parser::variable_versions::ipfix::{FlowSetBody as IpfixBody, IPFix};
use netflow_parser::variable_versions::v9::{Data as V9Data, FlowSetBody as V9Body, V9};
use netflow_parser::{NetflowPacket, NetflowParser, PendingFlowsConfig};

use crate::bins::{Bin, BinStats, Bins, Key, Volume};
use crate::clock::{Anchor, ExportClock, Placed};
use crate::counters::{ExporterStats, Exporters};
use crate::interfaces::{Interface, Interfaces};
use crate::layout::Layouts;
use crate::record::{ipfix_field, v9_field, Flat};
use crate::templates::TemplateStash;
use crate::{sflow, Config, ConfigError, Kind, NS_PER_SEC};

/// Entries kept of learned options data (sampling rate, system init time) in all.
const MAX_OPTIONS: usize = 4096;

/// What options data taught about one (exporter, observation domain / source id).
#[derive(Debug, Clone, Copy, Default)]
struct Learned {
    rate: Option<u32>,
    sys_init_ms: Option<u64>,
}

/// Where a record's times and sampling come from, per datagram.
#[derive(Debug, Clone, Copy)]
struct Ctx {
    arrival_ns: i64,
    exporter: IpAddr,
    domain: u32,
    /// The export instant in ms since 1970 (IPFIX, v5, v9 headers).
    export_ms: i64,
    /// The exporter's uptime at export, ms (v5, v9).
    uptime_ms: Option<u32>,
    /// The v5 header's sampling interval, masked (0: none stated).
    v5_rate: u32,
}

impl Ctx {
    /// A datagram's context without a v5 sampling interval.
    fn new(
        arrival_ns: i64,
        exporter: IpAddr,
        domain: u32,
        export_ms: i64,
        uptime_ms: Option<u32>,
    ) -> Self {
        Ctx {
            arrival_ns,
            exporter,
            domain,
            export_ms,
            uptime_ms,
            v5_rate: 0,
        }
    }
}

/// Decodes flow-export datagrams (NetFlow v5/v9, IPFIX, sFlow v5; the protocol is detected per
/// datagram) into one-second bins of estimated bytes and packets per directional 5-tuple.
///
/// Sans-IO like the engine: the caller hands over each datagram with its arrival time and
/// exporter address, and pops bins; time is the arrival times. Record times are moved onto the
/// arrival clock by the datagram's own export time, so an exporter whose clock is off still
/// lands where its datagrams arrived.
pub struct Collector {
    cfg: Config,
    parser: AutoScopedParser,
    exporters: Exporters,
    learned: foldhash::HashMap<(IpAddr, u32), Learned>,
    /// Per (exporter, domain) whose record times are far from their export times: where its
    /// own clock was pinned (see [`crate::clock`]); at most [`MAX_OPTIONS`].
    anchors: HashMap<(IpAddr, u32), Option<Anchor>>,
    bins: Bins,
    ready: Vec<Bin>,
    ready_pos: usize,
    newest_ns: Option<i64>,
    sflow_scratch: VecDeque<sflow::Sampled>,
    interfaces: Interfaces,
    /// IPFIX record layouts, to read data sets without the parser (see [`crate::layout`]).
    pub(crate) layouts: Layouts,
    /// Whether confirmed layouts are used (off only to compare the two paths in tests).
    pub(crate) read_by_layout: bool,
}

impl Collector {
    /// A collector with these settings.
    pub fn new(cfg: Config) -> Result<Self, ConfigError> {
        Self::build(cfg, None)
    }

    /// A collector whose parser writes every template it learns through to `stash` and asks
    /// it when data comes for a template it does not know (templates kept across a restart).
    pub fn with_templates(cfg: Config, stash: Arc<TemplateStash>) -> Result<Self, ConfigError> {
        Self::build(cfg, Some(stash))
    }

    fn build(cfg: Config, stash: Option<Arc<TemplateStash>>) -> Result<Self, ConfigError> {
        if cfg.default_rate == 0 || cfg.exporter_rates.values().any(|&r| r == 0) {
            return Err(ConfigError::ZeroRate);
        }
        let mut pending = PendingFlowsConfig::default();
        pending.max_pending_flows = cfg.held_sets_per_source.clamp(1, 64);
        pending.max_entries_per_template = cfg.held_sets_per_source.max(1);
        pending.max_total_bytes = cfg.held_sets_per_source.max(1) * 2048;
        let mut builder = NetflowParser::builder()
            .with_cache_size(cfg.templates_per_source.max(1))
            .with_max_field_count(512)
            .with_pending_flows(pending);
        if let Some(s) = stash {
            builder = builder.with_template_store(s);
        }
        let parser = AutoScopedParser::try_with_builder(builder)
            .and_then(|p| p.with_max_sources(cfg.max_template_sources.max(1)))
            .map_err(|e| ConfigError::Parser(e.to_string()))?;
        Ok(Self {
            exporters: Exporters::new(cfg.max_exporters),
            bins: Bins::new(cfg.max_bin_entries, cfg.max_span_s),
            cfg,
            parser,
            learned: foldhash::HashMap::default(),
            anchors: HashMap::new(),
            ready: Vec::new(),
            ready_pos: 0,
            newest_ns: None,
            sflow_scratch: VecDeque::new(),
            interfaces: Interfaces::default(),
            layouts: Layouts::default(),
            read_by_layout: true,
        })
    }

    /// Take one datagram that arrived at `arrival_ns` from `exporter`. Returns the protocol it
    /// was taken for; errors are counted in the exporter's counters, never returned.
    pub fn push(&mut self, arrival_ns: i64, exporter: SocketAddr, datagram: &[u8]) -> Kind {
        let kind = Kind::detect(datagram);
        let ip = exporter.ip();
        {
            let st = self.exporters.get_mut(ip);
            st.datagrams += 1;
            match kind {
                Kind::NetflowV5 => st.netflow5 += 1,
                Kind::NetflowV9 => st.netflow9 += 1,
                Kind::Ipfix => st.ipfix += 1,
                Kind::Sflow => st.sflow += 1,
                Kind::Unknown => st.parse_errors += 1,
            }
        }
        match kind {
            Kind::Unknown => {}
            Kind::Sflow => self.push_sflow(arrival_ns, ip, datagram),
            Kind::Ipfix if self.by_layout(arrival_ns, exporter, datagram) => {}
            _ => self.push_netflow(arrival_ns, exporter, datagram),
        }
        self.advance(arrival_ns);
        kind
    }

    /// Move time to `now_ns` without a datagram (a live collector's quiet socket): seconds
    /// that the hold has passed become ready.
    pub fn advance(&mut self, now_ns: i64) {
        let newest = self.newest_ns.map_or(now_ns, |n| n.max(now_ns));
        self.newest_ns = Some(newest);
        let watermark = newest.div_euclid(NS_PER_SEC) - i64::from(self.cfg.hold_s);
        self.compact_ready();
        self.bins.release(watermark, &mut self.ready);
    }

    /// The next bin whose second has passed the watermark, oldest second first.
    pub fn pop(&mut self) -> Option<Bin> {
        let bin = self.ready.get(self.ready_pos).copied()?;
        self.ready_pos += 1;
        Some(bin)
    }

    /// End of input: every held bin becomes ready.
    pub fn finish(&mut self) {
        self.compact_ready();
        self.bins.release_all(&mut self.ready);
    }

    /// Counters of each exporter with a line of its own, sorted by address.
    pub fn exporters(&self) -> Vec<(IpAddr, ExporterStats)> {
        self.exporters.each(&self.template_counters())
    }

    /// Counters of every exporter together.
    pub fn total(&self) -> ExporterStats {
        self.exporters.total(&self.template_counters())
    }

    /// The parser's template counters per exporter address, over the sources it keeps now.
    fn template_counters(&self) -> HashMap<IpAddr, ExporterStats> {
        let mut by: HashMap<IpAddr, ExporterStats> = HashMap::new();
        let ipfix = self.parser.ipfix_info();
        let v9 = self.parser.v9_info();
        let each = ipfix
            .iter()
            .map(|(k, i)| (k.addr.ip(), &i.ipfix.metrics))
            .chain(v9.iter().map(|(k, i)| (k.addr.ip(), &i.v9.metrics)));
        for (ip, m) in each {
            let s = by.entry(ip).or_default();
            s.template_misses += m.pending_cached;
            s.replayed_sets += m.pending_replayed;
            s.dropped_sets += m.pending_dropped + m.pending_replay_failed;
            s.template_collisions += m.collisions;
        }
        by
    }

    /// Counters of the exporters beyond the cap, together.
    pub fn other_exporters(&self) -> ExporterStats {
        self.exporters.other()
    }

    /// sFlow agents' interfaces with their latest generic counters, by agent and ifIndex.
    pub fn interfaces(&self) -> Vec<Interface> {
        self.interfaces.list()
    }

    /// Counter samples of interfaces beyond [`crate::MAX_INTERFACES`], not kept.
    pub fn interfaces_dropped(&self) -> u64 {
        self.interfaces.dropped
    }

    /// What the bins counted (late, forced out, clamped spans).
    pub fn bin_stats(&self) -> BinStats {
        self.bins.stats()
    }

    /// (key, second) entries held now.
    pub fn held_bins(&self) -> usize {
        self.bins.len()
    }

    /// Template sources the parser keeps now.
    pub fn template_sources(&self) -> usize {
        self.parser.source_count()
    }

    fn compact_ready(&mut self) {
        if self.ready_pos > 0 && self.ready_pos >= self.ready.len() {
            self.ready.clear();
            self.ready_pos = 0;
        }
    }

    fn push_sflow(&mut self, arrival_ns: i64, ip: IpAddr, datagram: &[u8]) {
        let mut samples = std::mem::take(&mut self.sflow_scratch);
        let mut ifs = Vec::new();
        let res = sflow::decode_datagram(datagram, &mut samples, &mut ifs);
        for (agent, if_index, c) in ifs {
            self.interfaces.update(agent, if_index, arrival_ns, c);
        }
        let forced = self.cfg.exporter_rates.get(&ip).copied();
        let default = self.cfg.default_rate;
        let second = arrival_ns.div_euclid(NS_PER_SEC);
        let st = self.exporters.get_mut(ip);
        st.parse_errors += res.errors;
        st.zero_rates += res.zero_rates;
        for s in samples.drain(..) {
            let rate = forced.or((s.rate > 0).then_some(s.rate)).unwrap_or(default);
            let vol = Volume::sampled(u64::from(s.ip_len), 1, rate);
            st.packet_samples += 1;
            st.last_rate = rate;
            st.bytes = st.bytes.saturating_add(vol.bytes);
            self.bins.add(second, s.key, vol);
        }
        self.sflow_scratch = samples;
    }

    fn push_netflow(&mut self, arrival_ns: i64, exporter: SocketAddr, datagram: &[u8]) {
        let res = self.parser.parse_from_source(exporter, datagram);
        let ip = exporter.ip();
        if res.error.is_some() {
            self.exporters.get_mut(ip).parse_errors += 1;
        }
        for packet in &res.packets {
            match packet {
                NetflowPacket::V5(v5) => {
                    let h = &v5.header;
                    let domain = u32::from(h.engine_type) << 8 | u32::from(h.engine_id);
                    let export_ms =
                        i64::from(h.unix_secs) * 1000 + i64::from(h.unix_nsecs / 1_000_000);
                    let ctx = Ctx {
                        v5_rate: u32::from(h.sampling_interval & 0x3FFF),
                        ..Ctx::new(arrival_ns, ip, domain, export_ms, Some(h.sys_up_time))
                    };
                    for r in &v5.flowsets {
                        let flat = Flat {
                            bytes: Some(u64::from(r.d_octets)),
                            packets: Some(u64::from(r.d_pkts)),
                            proto: r.protocol_number,
                            sport: r.src_port,
                            dport: r.dst_port,
                            src: Some(IpAddr::V4(r.src_addr)),
                            dst: Some(IpAddr::V4(r.dst_addr)),
                            start_uptime_ms: Some(u64::from(r.first)),
                            end_uptime_ms: Some(u64::from(r.last)),
                            ..Flat::default()
                        };
                        self.record(&ctx, &flat);
                    }
                }
                NetflowPacket::V9(v9) => self.v9(arrival_ns, ip, v9),
                NetflowPacket::IPFix(ipfix) => self.ipfix(arrival_ns, exporter, ipfix),
                _ => self.exporters.get_mut(ip).parse_errors += 1,
            }
        }
    }

    fn v9(&mut self, arrival_ns: i64, ip: IpAddr, v9: &V9) {
        let h = &v9.header;
        let export_ms = i64::from(h.unix_secs) * 1000;
        let ctx = Ctx::new(arrival_ns, ip, h.source_id, export_ms, Some(h.sys_up_time));
        for set in &v9.flowsets {
            match &set.body {
                V9Body::Data(data) => self.v9_data(&ctx, data),
                V9Body::OptionsData(opts) => {
                    for rec in &opts.fields {
                        self.learn(&ctx, &Flat::of(&rec.options_fields, |f| v9_field(*f)));
                    }
                }
                V9Body::NoTemplate(_) => self.exporters.get_mut(ip).template_misses += 1,
                _ => {}
            }
        }
    }

    /// An IPFIX message read by the layouts of its templates, without the parser. `false`
    /// unless every set is data of a confirmed layout: the parser is to read it then.
    fn by_layout(&mut self, arrival_ns: i64, exporter: SocketAddr, datagram: &[u8]) -> bool {
        let known = self.layouts.known(exporter, datagram);
        let Some(known) = known.filter(|_| self.read_by_layout) else {
            self.layouts.before_parser(exporter, datagram);
            return false;
        };
        let export_ms = i64::from(known.export_s) * 1000;
        let ctx = Ctx::new(arrival_ns, exporter.ip(), known.domain, export_ms, None);
        let layouts = std::mem::take(&mut self.layouts);
        layouts.records(exporter, known, datagram, |flat| self.record(&ctx, flat));
        self.layouts = layouts;
        self.layouts.read_here += 1;
        true
    }

    fn ipfix(&mut self, arrival_ns: i64, exporter: SocketAddr, msg: &IPFix) {
        let h = &msg.header;
        let ip = exporter.ip();
        let domain = h.observation_domain_id;
        let export_ms = i64::from(h.export_time) * 1000;
        let ctx = Ctx::new(arrival_ns, ip, domain, export_ms, None);
        for set in &msg.flowsets {
            match &set.body {
                IpfixBody::Template(t) => self.layouts.template(exporter, domain, t),
                IpfixBody::Templates(ts) => {
                    for t in ts {
                        self.layouts.template(exporter, domain, t);
                    }
                }
                IpfixBody::OptionsTemplate(t) => {
                    self.layouts.forget(exporter, domain, t.template_id);
                }
                IpfixBody::OptionsTemplates(ts) => {
                    for t in ts {
                        self.layouts.forget(exporter, domain, t.template_id);
                    }
                }
                IpfixBody::Data(data) => {
                    if let Some(first) = data.fields.first() {
                        let id = set.header.header_id;
                        self.layouts.confirm(exporter, domain, id, first);
                    }
                    for rec in &data.fields {
                        self.record(&ctx, &Flat::of(rec, ipfix_field));
                    }
                }
                IpfixBody::OptionsData(opts) => {
                    for rec in &opts.fields {
                        self.learn(&ctx, &Flat::of(rec, ipfix_field));
                    }
                }
                IpfixBody::V9Data(data) => self.v9_data(&ctx, data),
                IpfixBody::NoTemplate(_) => self.exporters.get_mut(ip).template_misses += 1,
                _ => {}
            }
        }
    }

    /// Data records laid out by a NetFlow v9 template (in v9, and in IPFIX messages that carry
    /// v9-style sets).
    fn v9_data(&mut self, ctx: &Ctx, data: &V9Data) {
        for rec in &data.fields {
            self.record(ctx, &Flat::of(rec, |f| v9_field(*f)));
        }
    }

    /// Options data: a sampling rate and the exporter's system init time.
    fn learn(&mut self, ctx: &Ctx, flat: &Flat) {
        let rate = flat.stated_rate();
        if rate == Some(0) {
            self.exporters.get_mut(ctx.exporter).zero_rates += 1;
        }
        let rate = rate
            .filter(|&r| r > 0)
            .map(|r| u32::try_from(r).unwrap_or(u32::MAX));
        if rate.is_none() && flat.sys_init_ms.is_none() {
            return;
        }
        let key = (ctx.exporter, ctx.domain);
        if !self.learned.contains_key(&key) && self.learned.len() >= MAX_OPTIONS {
            return;
        }
        let entry = self.learned.entry(key).or_default();
        entry.rate = rate.or(entry.rate);
        entry.sys_init_ms = flat.sys_init_ms.or(entry.sys_init_ms);
    }

    /// One flow record into the bins.
    fn record(&mut self, ctx: &Ctx, flat: &Flat) {
        let learned = self
            .learned
            .get(&(ctx.exporter, ctx.domain))
            .copied()
            .unwrap_or_default();
        let forced = self.cfg.exporter_rates.get(&ctx.exporter).copied();
        let default = self.cfg.default_rate;
        let clock = ExportClock {
            arrival_ns: ctx.arrival_ns,
            export_ms: ctx.export_ms,
            uptime_ms: ctx.uptime_ms,
            sys_init_ms: learned.sys_init_ms,
        };
        let key = (ctx.exporter, ctx.domain);
        // The anchors are looked up only for a record its export time cannot place.
        let anchors = &mut self.anchors;
        let placed = clock.place(flat, move || {
            let room = anchors.len() < MAX_OPTIONS || anchors.contains_key(&key);
            room.then(|| anchors.entry(key).or_default())
        });
        let st = self.exporters.get_mut(ctx.exporter);
        let (Some(src), Some(dst), Some(bytes)) = (flat.src, flat.dst, flat.bytes) else {
            st.incomplete_records += 1;
            return;
        };
        let stated = flat.stated_rate();
        if stated == Some(0) {
            st.zero_rates += 1;
        }
        let stated = stated
            .filter(|&r| r > 0)
            .map(|r| u32::try_from(r).unwrap_or(u32::MAX));
        let rate = forced
            .or(stated)
            .or(learned.rate)
            .or((ctx.v5_rate > 0).then_some(ctx.v5_rate))
            .unwrap_or(default);
        let (start, end) = match placed {
            Placed::Export(s, e) => (s, e),
            Placed::OwnClock(s, e) => {
                st.own_clock += 1;
                (s, e)
            }
            Placed::Untimed => {
                st.no_time += 1;
                (ctx.arrival_ns, ctx.arrival_ns)
            }
        };
        st.records += 1;
        st.last_rate = rate;
        let key = Key {
            src,
            dst,
            proto: flat.proto,
            sport: flat.sport,
            dport: flat.dport,
        };
        let fwd = Volume::sampled(bytes, flat.packets.unwrap_or(0), rate);
        st.bytes = st.bytes.saturating_add(fwd.bytes);
        if fwd.bytes > 0 || fwd.packets > 0 {
            self.bins.add_span(key, start, end, fwd);
        }
        // RFC 5103 biflows: the reverse direction's counters.
        if let Some(rb) = flat.rev_bytes.filter(|&b| b > 0) {
            let rev = Volume::sampled(rb, flat.rev_packets.unwrap_or(0), rate);
            st.bytes = st.bytes.saturating_add(rev.bytes);
            let back = Key {
                src: dst,
                dst: src,
                proto: flat.proto,
                sport: flat.dport,
                dport: flat.sport,
            };
            self.bins.add_span(back, start, end, rev);
        }
    }
}

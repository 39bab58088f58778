//! The engine: flow table and detector fed from one packet stream.

use burstwatch_wire::PacketMeta;

use crate::detect::{Alert, DetectConfig, Detector};
use crate::{FlowConfig, FlowRecord, FlowTable};

/// Flow records and alerts from one ordered packet stream. Sans-IO: packets and their
/// timestamps in, records and alerts out.
///
/// ```
/// use burstwatch_engine::{DetectConfig, Engine, FlowConfig};
/// use burstwatch_wire::PacketMeta;
///
/// let mut engine = Engine::new(FlowConfig::default(), DetectConfig::default(), 1);
/// let meta = PacketMeta { proto: 17, ip_len: 100, ..PacketMeta::default() };
/// engine.ingest(1_000_000_000, &meta);
/// engine.finish();
/// assert_eq!(engine.pop_record().map(|r| r.packets()), Some(1));
/// assert!(engine.pop_alert().is_none());
/// ```
pub struct Engine {
    flows: FlowTable,
    detector: Detector,
    /// Pair slots of connections that have no flow entry (see [`PassByHints`]).
    pass_by: PassByHints,
}

impl Engine {
    /// An engine with these settings. `hash_seed` keys internal hash tables only; it never
    /// changes the output.
    pub fn new(flow: FlowConfig, detect: DetectConfig, hash_seed: u64) -> Self {
        Self {
            flows: FlowTable::new(flow, hash_seed),
            detector: Detector::new(detect, hash_seed),
            pass_by: PassByHints::new(),
        }
    }

    /// Count one decoded packet: first in the flow table, then in the detector, which keeps
    /// the slot of the packet's (subscriber, endpoint) pair in the flow's entry.
    #[inline]
    pub fn ingest(&mut self, ts_ns: i64, meta: &PacketMeta) {
        let flow = self.flows.ingest(ts_ns, meta);
        let pair_slot = pass_by_slot(&mut self.flows, &flow, &mut self.pass_by);
        self.detector.count(ts_ns, meta, &flow, pair_slot);
    }

    /// Move packet time forward without a packet (e.g. on an idle link).
    pub fn advance_to(&mut self, ts_ns: i64) {
        self.flows.advance_to(ts_ns);
        self.detector.advance_to(ts_ns);
    }

    /// End of input: export every flow, finish every burst, emit every pending alert.
    pub fn finish(&mut self) {
        self.flows.finish();
        self.detector.finish();
    }

    /// Next finished flow record.
    #[inline]
    pub fn pop_record(&mut self) -> Option<FlowRecord> {
        self.flows.pop_record()
    }

    /// Next alert.
    #[inline]
    pub fn pop_alert(&mut self) -> Option<Alert> {
        self.detector.pop_alert()
    }

    /// Whether a flow record or an alert is waiting (a check cheaper than popping).
    #[inline]
    pub fn has_output(&self) -> bool {
        self.flows.has_records() || self.detector.has_alerts()
    }

    /// The flow table (counters, config).
    pub fn flows(&self) -> &FlowTable {
        &self.flows
    }

    /// The detector (counters, config).
    pub fn detector(&self) -> &Detector {
        &self.detector
    }

    /// The detector, mutably (enrichment, config reload).
    pub fn detector_mut(&mut self) -> &mut Detector {
        &mut self.detector
    }

    /// The flow table, mutably (config reload).
    pub fn flows_mut(&mut self) -> &mut FlowTable {
        &mut self.flows
    }
}

/// Pair slots of connections that have no flow entry (flow export without flow records), by
/// flow hash: what the flow table keeps per flow for packets, kept here for those it passes
/// by. Each of a record's seconds is a synthetic packet of the same connection, so its second
/// and later ones find their pair's slot here. A fixed table of [`PassByHints::SLOTS`]
/// entries (128 KiB), each the flow hash it was written for and the slot: a connection finds
/// only its own entry (another one's would cost a look at a pair that is not its own), and
/// connections whose hashes collide take each other's place. A slot that names another pair
/// is only a missed shortcut, never a wrong answer (the slot's key is compared before use).
pub(crate) struct PassByHints(Box<[(u32, u32)]>);

impl PassByHints {
    /// Entries in the table (a power of two).
    pub(crate) const SLOTS: usize = 1 << 14;

    pub(crate) fn new() -> Self {
        Self(vec![(0, u32::MAX); Self::SLOTS].into_boxed_slice())
    }

    /// The word of the connection with this flow hash: `u32::MAX` unless the entry is its
    /// own (another connection's entry becomes this one's).
    #[inline]
    fn word(&mut self, flow_hash: u32) -> &mut u32 {
        // The mask keeps the index below the table's length.
        let e = &mut self.0[flow_hash as usize & (Self::SLOTS - 1)];
        if e.0 != flow_hash {
            *e = (flow_hash, u32::MAX);
        }
        &mut e.1
    }
}

/// The word that keeps the packet's pair slot: its flow's, or for a packet the table passed by
/// (flow export without flow records) its connection's word in `hints`.
#[inline]
pub(crate) fn pass_by_slot<'a>(
    flows: &'a mut FlowTable,
    flow: &crate::table::Ingested,
    hints: &'a mut PassByHints,
) -> &'a mut u32 {
    match flows.pair_slot_mut(flow.slot) {
        Some(s) => s,
        None => hints.word(flow.flow_hash),
    }
}

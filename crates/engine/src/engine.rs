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
    /// The pair slot of the last packet that had no flow entry (see [`pass_by_slot`]).
    pass_by_hint: u32,
}

impl Engine {
    /// An engine with these settings. `hash_seed` keys internal hash tables only; it never
    /// changes the output.
    pub fn new(flow: FlowConfig, detect: DetectConfig, hash_seed: u64) -> Self {
        Self {
            flows: FlowTable::new(flow, hash_seed),
            detector: Detector::new(detect, hash_seed),
            pass_by_hint: u32::MAX,
        }
    }

    /// Count one decoded packet: first in the flow table, then in the detector, which keeps
    /// the slot of the packet's (subscriber, endpoint) pair in the flow's entry.
    #[inline]
    pub fn ingest(&mut self, ts_ns: i64, meta: &PacketMeta) {
        let flow = self.flows.ingest(ts_ns, meta);
        let pair_slot = pass_by_slot(&mut self.flows, flow.slot, &mut self.pass_by_hint);
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

/// The word that keeps the packet's pair slot: its flow's, or for a packet the table passed by
/// (flow export without flow records) the one shared by all such packets. Bins of one
/// connection and of one pair come one after another (see the flow-export bins' order), so
/// the last pair is the next one's more often than not; a hint that names another pair is
/// only a missed shortcut, never a wrong answer.
#[inline]
pub(crate) fn pass_by_slot<'a>(
    flows: &'a mut FlowTable,
    slot: u32,
    shared: &'a mut u32,
) -> &'a mut u32 {
    match flows.pair_slot_mut(slot) {
        Some(s) => s,
        None => shared,
    }
}

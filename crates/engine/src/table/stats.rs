//! The flow table's counters.

/// Counters kept by the flow table (all monotonic except `active`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FlowStats {
    /// Packets ingested.
    pub packets: u64,
    /// L3 bytes ingested.
    pub bytes: u64,
    /// Flows created.
    pub flows_created: u64,
    /// Records exported, by [`crate::EndReason::index`].
    pub ended: [u64; 6],
    /// Flows currently open.
    pub active: usize,
    /// Later fragments attributed to their flow through the fragment map.
    pub fragments_attributed: u64,
    /// Later fragments whose first fragment was not (or no longer) known: counted in a port-0 flow.
    pub fragments_orphaned: u64,
    /// First fragments dropped from the fragment map at its cap.
    pub fragment_map_evictions: u64,
    /// Packets whose timestamp was older than the newest seen (counted normally).
    pub out_of_order: u64,
    /// Flow export's synthetic packets passed by without a flow, where nothing reads their
    /// flow records (see [`crate::FlowConfig::export_flows`]); also in `packets` and `bytes`.
    pub passed_by: u64,
}

impl FlowStats {
    /// Add another table's counters (host shards each count their own).
    pub fn add(&mut self, o: &FlowStats) {
        self.packets += o.packets;
        self.bytes += o.bytes;
        self.flows_created += o.flows_created;
        for (a, b) in self.ended.iter_mut().zip(o.ended) {
            *a += b;
        }
        self.active += o.active;
        self.fragments_attributed += o.fragments_attributed;
        self.fragments_orphaned += o.fragments_orphaned;
        self.fragment_map_evictions += o.fragment_map_evictions;
        self.out_of_order += o.out_of_order;
        self.passed_by += o.passed_by;
    }
}

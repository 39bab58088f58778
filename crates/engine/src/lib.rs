//! # burstwatch-engine
//!
//! The sans-IO core of burstwatch. It takes decoded packet metadata
//! ([`burstwatch_wire::PacketMeta`]) with its capture timestamp and hands out records; it holds
//! no sockets, opens no files, spawns no tasks and never reads the clock. Time is whatever the
//! packets say, so replaying a capture produces exactly the records a live run produced.
//!
//! ```text
//!   (ts, PacketMeta) ──ingest──▶ ┌────────────┐ ──pop_record──▶ FlowRecord
//!   ts ───────────advance_to───▶ │ FlowTable  │
//!   end of input ─────finish───▶ └────────────┘
//! ```
//!
//! * [`Engine`]: the flow table and the detector fed from one packet stream.
//! * [`Detector`]: per-subscriber baselines, per-(subscriber, endpoint) one-second windows with
//!   burst segmentation, endpoint prevalence, recurrence and beacon analysis, and explained
//!   scores ([`Alert`]).
//! * [`shard`]: the same engine split by home host over several shards (threads in the
//!   shell) with one [`Scorer`], giving the same alerts.
//! * [`FlowTable`]: bidirectional flows keyed on the innermost IP 5-tuple, with per-protocol
//!   idle timeouts, an active timeout, TCP close handling, a hard cap with least-recently-seen
//!   eviction, and a bounded fragment map that attributes later IP fragments to their flow.
//! * [`memory`]: what each container costs per entry, and one memory budget split into their
//!   caps.
#![forbid(unsafe_code)]

pub mod community_id;
mod config;
pub mod detect;
mod engine;
mod frag;
mod key;
mod lru;
mod lrumap;
pub mod memory;
pub mod net;
mod record;
pub mod shard;
mod slab;
mod table;

pub use config::{FlowConfig, NS_PER_SEC};
pub use detect::{
    Alert, AlertKind, DetectConfig, DetectStats, Detector, Event, RateThreshold, Scorer, Severity,
    Subscribers, ThresholdBasis,
};
pub use engine::Engine;
pub use key::{Endpoint, FlowKey};
pub use net::{Prefix, PrefixSet};
pub use record::{
    proto_name, tcp_flag_letters, DirStats, EndReason, FlowContext, FlowRecord, TCP_FLAG_LETTERS,
};
pub use table::{FlowStats, FlowTable, Ingested};

#[cfg(test)]
mod tests;

//! # burstwatch-pipeline
//!
//! What `burstwatch analyze` and the daemon (`crates/daemon`) both run between a packet source
//! and the outputs, so that a file and a live interface give the same records and alerts:
//!
//! ```text
//!  source ──▶ pipeline (read, filter, decode, batch) ──▶ shards (engine, one or per worker)
//!                                                            │
//!                flow_json / alert_json (JSON lines, privacy) ◀─┘──▶ cluster (shared prevalence)
//! ```
//!
//! * [`decode`]: the step every packet source shares, files and live interfaces alike: a frame
//!   decoded (or counted as not IP or undecodable) and gathered into batches for the engine.
//! * [`pipeline`]: the read loop over capture files, on the calling thread or a reader thread
//!   of its own; [`flow_input`]: the same for captured flow-export datagrams.
//! * [`shards`]: [`shards::Engines`], the engine on one thread or split by home host over
//!   worker threads.
//! * [`engine_setup`]: the run's hash key and the enrichment databases.
//! * [`cluster`]: the shared prevalence store (Redis) in the shell.
//! * [`flow_json`], [`alert_json`], [`timestamp`], [`privacy`]: the JSON-lines formats and the
//!   one place where output addresses are pseudonymised.
//! * [`select`], [`summary`], [`progress`]: packet selection, the run's counters and its human
//!   summary, and progress on standard error.
//!
//! This crate is part of the application's shell, not of the sans-IO core: it reads files,
//! starts threads and returns `anyhow` errors, which its callers only report. The engine's
//! rules (no clock, no IO) do not apply here; what does: no allocation per packet on the
//! decode-and-batch path, bounded channels between threads.

pub mod alert_json;
pub mod cluster;
pub mod decode;
pub mod engine_setup;
pub mod flow_input;
pub mod flow_json;
pub mod pipeline;
pub mod privacy;
pub mod progress;
pub mod select;
pub mod shards;
pub mod summary;
pub mod timestamp;

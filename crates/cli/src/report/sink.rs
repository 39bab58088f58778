//! [`Sink`]: the report being built, here or on a thread of its own.
//!
//! On its own thread, the engine thread only moves each record into a batch and hands full
//! batches over a bounded channel, so building rows, aggregating hosts and endpoints and
//! encoding Parquet never hold it up. When the input ends, the thread plans the timelines,
//! hands the plan back and writes the tables that do not need the timelines while the second
//! pass runs. Here (`--threads 1`) the same steps run in turn. Either way the report is the
//! same.

use std::sync::mpsc::{self, Receiver, SyncSender};
use std::thread::JoinHandle;

use anyhow::Context as _;
use burstwatch_engine::detect::BurstRecord;
use burstwatch_engine::{Alert, FlowRecord};
use burstwatch_report::{Report, ReportError, Timelines};

/// Items per batch handed to the report thread.
const BATCH: usize = 1_024;
/// Batches in flight to the report thread (bounds the hand-over's memory).
const IN_FLIGHT: usize = 16;

/// What the report is fed.
pub enum Item {
    /// A flow record.
    Flow(FlowRecord),
    /// A segmented burst.
    Burst(BurstRecord),
    /// An alert.
    Alert(Box<Alert>),
    /// Subscriber bytes up and down at a time (ns since the epoch), summed over packets.
    Traffic(i64, u64, u64),
}

/// The report and its first write error (after which flows and bursts are no longer added).
pub struct Building {
    /// The report.
    pub report: Report,
    /// The first error.
    pub err: Option<ReportError>,
}

impl Building {
    fn apply(&mut self, item: Item) {
        let r = match item {
            Item::Traffic(ts, up, down) => {
                self.report.traffic(ts, up, down);
                Ok(())
            }
            Item::Alert(a) => {
                self.report.add_alert(&a);
                Ok(())
            }
            _ if self.err.is_some() => Ok(()),
            Item::Flow(f) => self.report.add_flow(&f),
            Item::Burst(b) => self.report.add_burst(&b),
        };
        if let Err(e) = r {
            self.err.get_or_insert(e);
        }
    }

    /// The timeline plan, unless writing failed.
    fn plan(&mut self) -> Option<Timelines> {
        self.err.is_none().then(|| self.report.plan_timelines())
    }

    /// Write the tables that do not need the timelines.
    fn write_tables(&mut self) {
        if self.err.is_none() {
            if let Err(e) = self.report.write_tables() {
                self.err = Some(e);
            }
        }
    }
}

/// Where items go: applied at once, or batched to the report thread.
pub enum Sink {
    /// Applied on the calling thread (boxed: the report is large next to a channel end).
    Here(Box<Building>),
    /// Batched to the report thread.
    Thread {
        /// Full batches.
        tx: SyncSender<Vec<Item>>,
        /// The batch being filled.
        batch: Vec<Item>,
        /// The timeline plan, once the input has ended.
        plan: Receiver<Option<Timelines>>,
        /// The thread; returns the report.
        worker: JoinHandle<Building>,
    },
}

/// The report after its input ended, tables written or being written.
pub enum Closed {
    /// On the calling thread, tables not yet written.
    Here(Box<Building>),
    /// On the report thread, writing tables.
    Thread(JoinHandle<Building>),
}

impl Sink {
    /// A sink for `report`, on a thread of its own when `thread` is set.
    pub fn new(report: Report, thread: bool) -> anyhow::Result<Sink> {
        let mut building = Building { report, err: None };
        if !thread {
            return Ok(Sink::Here(Box::new(building)));
        }
        let (tx, rx) = mpsc::sync_channel::<Vec<Item>>(IN_FLIGHT);
        let (plan_tx, plan) = mpsc::channel();
        let worker = std::thread::Builder::new()
            .name("report".into())
            .spawn(move || {
                for batch in rx {
                    for item in batch {
                        building.apply(item);
                    }
                }
                // The caller waits for the plan (it may hang up after a panic of its own).
                let _ = plan_tx.send(building.plan());
                building.write_tables();
                building
            })
            .context("cannot start the report thread")?;
        Ok(Sink::Thread {
            tx,
            batch: Vec::with_capacity(BATCH),
            plan,
            worker,
        })
    }

    /// Feed one item.
    pub fn put(&mut self, item: Item) {
        match self {
            Sink::Here(b) => b.apply(item),
            Sink::Thread { tx, batch, .. } => {
                batch.push(item);
                if batch.len() >= BATCH {
                    let full = std::mem::replace(batch, Vec::with_capacity(BATCH));
                    // Fails only when the report thread is gone (it panicked): `close` and
                    // `Closed::join` re-raise the panic.
                    let _ = tx.send(full);
                }
            }
        }
    }

    /// End of input: the timeline plan (`None` after a write error) and the report.
    pub fn close(self) -> (Option<Timelines>, Closed) {
        match self {
            Sink::Here(mut b) => (b.plan(), Closed::Here(b)),
            Sink::Thread {
                tx,
                batch,
                plan,
                worker,
            } => {
                if !batch.is_empty() {
                    let _ = tx.send(batch);
                }
                drop(tx);
                match plan.recv() {
                    Ok(p) => (p, Closed::Thread(worker)),
                    // The thread died before planning: joining re-raises its panic.
                    Err(_) => (None, Closed::Here(Box::new(join(worker)))),
                }
            }
        }
    }
}

impl Closed {
    /// The report with every table but the timeline written (or the first error).
    pub fn join(self) -> Building {
        match self {
            Closed::Here(mut b) => {
                b.write_tables();
                *b
            }
            Closed::Thread(worker) => join(worker),
        }
    }
}

fn join(worker: JoinHandle<Building>) -> Building {
    worker
        .join()
        .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
}

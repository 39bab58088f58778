//! End-to-end tests: the real `burstwatch` binary on real captures.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a failed unwrap is a failed test

mod accuracy;
mod alerts;
mod bad_input;
mod cli;
mod crafted;
mod pcapfile;
#[cfg(feature = "report")]
mod report;
mod truth;

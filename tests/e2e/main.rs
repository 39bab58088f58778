//! End-to-end tests: the real `burstwatch` binary on real captures.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a failed unwrap is a failed test

mod accuracy;
mod alerts;
mod bad_input;
mod carve;
mod cli;
mod crafted;
mod pcapfile;
mod privacy;
mod select;
mod simcap;
mod truth;

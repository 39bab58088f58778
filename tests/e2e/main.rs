//! End-to-end tests: the real `burstwatch` binary on real captures.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a failed unwrap is a failed test

mod accuracy;
mod afpacket;
mod alertmanager;
mod alerts;
mod bad_input;
mod carve;
mod check_config;
mod cli;
mod cluster;
mod cluster_fault;
mod conventions;
mod crafted;
mod daemon_outputs;
mod debian_package;
mod deploy_kit;
mod docs;
mod exporter;
mod flow_export;
mod flow_pmacct;
mod flow_softflowd;
mod flow_templates;
mod help_examples;
mod independent;
mod inputs;
mod live;
mod logging;
mod memory;
mod outputs;
mod pcapfile;
mod privacy;
mod privilege;
mod prometheus;
mod real_captures;
mod reload;
#[cfg(feature = "report")]
mod report;
#[cfg(feature = "report")]
mod report_interop;
#[cfg(feature = "report")]
mod report_privacy;
#[cfg(feature = "report")]
mod report_select;
mod select;
mod shutdown;
mod simcap;
mod sinks;
mod startup;
mod systemd;
mod truth;

//! The `[limits]` section: one memory budget for the process, split into the caps of the
//! flow tables and the detector's tables (`burstwatch_engine::memory`).
//!
//! `max_flows`, `max_hosts`, `max_pairs` and `max_endpoints` set in the file keep their
//! value; the budget's other containers share what they leave. Caps that cannot fit the budget
//! are an error.

use burstwatch_engine::memory::{self, BudgetError, CapOverrides, Plan};
use serde::Deserialize;
use toml::Spanned;

use crate::{ConfigError, Ctx, Settings};

/// The largest budget accepted, MiB (16 TiB).
const MAX_BUDGET_MIB: i64 = 16 << 20;

/// The memory budget and the caps set explicitly.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits {
    /// Memory the process may use, MiB: the flow tables, the detector's tables and the fixed
    /// part ([`memory::fixed_bytes`]); the daemon's capture buffers and alert queue too.
    pub memory_budget_mib: u64,
    /// Caps set in the file, which the budget keeps.
    pub overrides: CapOverrides,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            memory_budget_mib: memory::DEFAULT_BUDGET_MIB,
            overrides: CapOverrides::default(),
        }
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(crate) struct RawLimits {
    memory_budget_mib: Option<Spanned<i64>>,
}

impl Ctx<'_> {
    /// The budget, checked for one worker (the daemon checks its own workers again at start).
    pub(crate) fn limits(
        &self,
        r: &RawLimits,
        overrides: CapOverrides,
        settings: &mut Settings,
    ) -> Result<(), ConfigError> {
        let budget = self.count(
            &r.memory_budget_mib,
            "limits.memory_budget_mib",
            memory::DEFAULT_BUDGET_MIB as usize,
            MAX_BUDGET_MIB,
        )? as u64;
        settings.limits = Limits {
            memory_budget_mib: budget,
            overrides,
        };
        settings.apply_memory_budget(1, 0).map_err(|e| {
            let at = r.memory_budget_mib.as_ref().map_or(0, |v| v.span().start);
            self.invalid(at, "limits.memory_budget_mib", e.to_string())
        })?;
        Ok(())
    }
}

impl Settings {
    /// Set the caps of the flow tables and the detector's tables from the memory budget for
    /// `workers` engine workers; `extra_bytes` is what the caller needs besides the engine
    /// (see [`memory::plan`]).
    pub fn apply_memory_budget(
        &mut self,
        workers: usize,
        extra_bytes: u64,
    ) -> Result<Plan, BudgetError> {
        let p = memory::plan(
            self.limits.memory_budget_mib << 20,
            workers,
            self.flow.max_fragments,
            extra_bytes,
            self.limits.overrides,
        )?;
        self.flow.max_flows = p.caps.max_flows;
        self.detect.max_hosts = p.caps.max_hosts;
        self.detect.max_pairs = p.caps.max_pairs;
        self.detect.max_endpoints = p.caps.max_endpoints;
        Ok(p)
    }

    /// [`Settings::apply_memory_budget`] for `burstwatch daemon` with `workers` workers: the
    /// kernel capture buffer of every interface (libpcap maps it into the process) and the
    /// Alertmanager queue (2 KiB per alert) count against the budget too.
    pub fn apply_daemon_memory_budget(&mut self, workers: usize) -> Result<Plan, BudgetError> {
        let d = &self.daemon;
        let capture = (u64::from(d.buffer_mib) * (d.interfaces.len().max(1) as u64)) << 20;
        // 2 KiB per queued alert: one queue per Alertmanager URL, the webhook's and syslog's.
        let queued = d.alertmanager_queue * d.alertmanager_url.len()
            + d.webhook.as_ref().map_or(0, |w| w.queue)
            + d.syslog.as_ref().map_or(0, |s| s.queue);
        let queue = queued as u64 * 2048;
        self.apply_memory_budget(workers, capture + queue)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)] // tests: a failed unwrap is a failed test
    use super::*;

    #[test]
    fn the_budget_sets_the_caps_and_explicit_caps_stay() {
        let s = Settings::parse("[limits]\nmemory_budget_mib = 512\n", "t").unwrap();
        let p = memory::plan(
            512 << 20,
            1,
            s.flow.max_fragments,
            0,
            CapOverrides::default(),
        )
        .unwrap();
        assert_eq!(s.flow.max_flows, p.caps.max_flows);
        assert_eq!(s.detect.max_pairs, p.caps.max_pairs);
        assert!(p.estimated_bytes() <= 512 << 20);

        let s = Settings::parse(
            "[flow]\nmax_flows = 1000\n[limits]\nmemory_budget_mib = 512\n",
            "t",
        )
        .unwrap();
        assert_eq!(s.flow.max_flows, 1000);
        assert!(s.detect.max_pairs > p.caps.max_pairs);

        // Two workers share the same budget: about half the flows each.
        let mut s = Settings::parse("[limits]\nmemory_budget_mib = 512\n", "t").unwrap();
        let two = s.apply_memory_budget(2, 0).unwrap();
        assert!(two.estimated_bytes() <= 512 << 20);
        assert!(s.flow.max_flows < p.caps.max_flows * 6 / 10, "{two:?}");
    }

    #[test]
    fn budgets_that_cannot_hold_the_tables_are_rejected_with_their_line() {
        let e = Settings::parse("\n[limits]\nmemory_budget_mib = 8\n", "t.toml").unwrap_err();
        assert!(
            e.to_string()
                .starts_with("t.toml:3: limits.memory_budget_mib: a memory budget of 8 MiB"),
            "{e}"
        );
        let e = Settings::parse(
            "[flow]\nmax_flows = 100000000\n[limits]\nmemory_budget_mib = 1024\n",
            "t.toml",
        )
        .unwrap_err();
        assert!(e.to_string().contains("raise memory_budget_mib"), "{e}");
        // The daemon counts its capture buffers: 4 x 256 MiB do not fit in 512 MiB.
        let mut s = Settings::parse(
            "[limits]\nmemory_budget_mib = 512\n[daemon]\ninterfaces = [\"a\", \"b\", \"c\", \"d\"]\nbuffer_mib = 256\n",
            "t",
        )
        .unwrap();
        assert!(s.apply_daemon_memory_budget(1).is_err());
    }
}

//! The systemd service protocol (`sd_notify(3)`), for a unit with `Type=notify`: `READY=1`
//! once the daemon runs, `STATUS=` lines (interfaces capturing, alerts raised),
//! `RELOADING=1` then `READY=1` around a SIGHUP reload, `STOPPING=1` at shutdown, and with
//! `WatchdogSec=` a `WATCHDOG=1` ping every half interval, sent only while the packet path is
//! alive: every capture thread and the engine worker reported within the interval (they report
//! about once a second, busy or idle). A wedged thread stops the pings, and systemd restarts
//! the daemon. Without `NOTIFY_SOCKET` nothing is sent.

use std::sync::Arc;
use std::time::{Duration, Instant};

use sd_notify::NotifyState;

use super::shared::Shared;

/// Longest wait for the capture threads' first report before `READY=1`.
const STARTING: Duration = Duration::from_secs(5);
/// How often the status line is refreshed (sent only when it changed).
const STATUS_EVERY: Duration = Duration::from_secs(1);

/// Whether a service manager listens (`NOTIFY_SOCKET` is set).
pub fn enabled() -> bool {
    std::env::var_os("NOTIFY_SOCKET").is_some()
}

fn send(states: &[NotifyState<'_>]) {
    if let Err(e) = sd_notify::notify(states) {
        tracing::warn!(error = %e, "notification to the service manager not sent");
    }
}

/// A reload begins (`RELOADING=1`, with the monotonic time `Type=notify-reload` asks for).
pub fn reloading() {
    if !enabled() {
        return;
    }
    let mut states = vec![
        NotifyState::Reloading,
        NotifyState::Status("reloading the configuration"),
    ];
    if let Ok(t) = NotifyState::monotonic_usec_now() {
        states.push(t);
    }
    send(&states);
}

/// The reload is over, applied or rejected (the daemon runs on either way).
pub fn reloaded(ok: bool) {
    if !enabled() {
        return;
    }
    let status = if ok {
        "configuration reloaded"
    } else {
        "configuration reload rejected; the running settings stay (see the log)"
    };
    send(&[NotifyState::Ready, NotifyState::Status(status)]);
}

/// Shutdown has begun: flows, alerts and the learned state are being written.
pub fn stopping() {
    if !enabled() {
        return;
    }
    send(&[
        NotifyState::Stopping,
        NotifyState::Status("stopping: flushing flows and alerts, saving the learned state"),
    ]);
}

/// Tell the service manager the daemon is ready, then keep the status line current and, when
/// a watchdog is asked for (`WATCHDOG_USEC`), ping it while the packet path is alive. Runs
/// until aborted (at shutdown, before [`stopping`]).
pub async fn supervise(shared: Arc<Shared>) {
    if !enabled() {
        return;
    }
    let watchdog = sd_notify::watchdog_enabled().filter(|w| !w.is_zero());
    let since = Instant::now();
    // Ready once every capture thread has reported (capturing, or retrying an interface that
    // is missing), so that the first status line is true.
    while Instant::now() < since + STARTING
        && !shared
            .ifaces
            .lock()
            .is_ok_and(|v| v.iter().all(|i| i.beat.is_some()))
    {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let mut status = status_line(&shared);
    send(&[NotifyState::Ready, NotifyState::Status(&status)]);
    tracing::info!(watchdog = ?watchdog, "service manager told: ready");
    let mut status_tick = tokio::time::interval(STATUS_EVERY);
    // Without a watchdog this ticks once a day and does nothing.
    let mut ping_tick = tokio::time::interval(watchdog.map_or(Duration::from_secs(86_400), |w| {
        (w / 2).max(Duration::from_millis(1))
    }));
    let mut stalled = false;
    loop {
        tokio::select! {
            _ = ping_tick.tick() => {
                let Some(window) = watchdog else { continue };
                match first_silent(beats(&shared), since, Instant::now(), window) {
                    None => {
                        if stalled {
                            stalled = false;
                            tracing::warn!("packet path reporting again; watchdog pings resumed");
                        }
                        send(&[NotifyState::Watchdog]);
                    }
                    Some(name) => {
                        if !stalled {
                            stalled = true;
                            tracing::error!(thread = %name, window = ?window,
                                "packet path stalled: no report within the watchdog interval; \
                                 watchdog pings stopped (systemd restarts the daemon)");
                            let line = format!("packet path stalled: {name} silent for over {window:?}");
                            send(&[NotifyState::Status(&line)]);
                            status = line;
                        }
                    }
                }
            }
            _ = status_tick.tick() => {
                if stalled {
                    continue;
                }
                let now = status_line(&shared);
                if now != status {
                    send(&[NotifyState::Status(&now)]);
                    status = now;
                }
            }
        }
    }
}

/// `capturing on eth1, eth2; 3 alerts`, naming interfaces that are not open yet.
fn status_line(shared: &Shared) -> String {
    let (up, down): (Vec<String>, Vec<String>) = shared
        .ifaces
        .lock()
        .map(|v| {
            let up = v.iter().filter(|i| i.up).map(|i| i.name.clone()).collect();
            let down = v.iter().filter(|i| !i.up).map(|i| i.name.clone()).collect();
            (up, down)
        })
        .unwrap_or_default();
    let alerts = shared.worker.lock().map(|w| w.alerts).unwrap_or(0);
    let mut line = if up.is_empty() {
        "no interface capturing".to_string()
    } else {
        format!("capturing on {}", up.join(", "))
    };
    if !down.is_empty() {
        line.push_str(&format!("; not open, retrying: {}", down.join(", ")));
    }
    line.push_str(&format!(
        "; {alerts} alert{}",
        if alerts == 1 { "" } else { "s" }
    ));
    line
}

/// The packet-path threads and when each last reported.
fn beats(shared: &Shared) -> Vec<(String, Option<Instant>)> {
    let mut v: Vec<(String, Option<Instant>)> = shared
        .ifaces
        .lock()
        .map(|ifaces| {
            ifaces
                .iter()
                .map(|i| (format!("capture thread of {}", i.name), i.beat))
                .collect()
        })
        .unwrap_or_default();
    // A poisoned lock (the worker panicked while publishing) counts as never reported.
    let worker = shared.worker.lock().map(|w| w.beat).unwrap_or(None);
    v.push(("engine worker".to_string(), worker));
    v
}

/// The first thread that has not reported within `window` before `now` (one that never
/// reported counts from `since`, when supervision began), or `None` if all are alive.
fn first_silent(
    beats: Vec<(String, Option<Instant>)>,
    since: Instant,
    now: Instant,
    window: Duration,
) -> Option<String> {
    beats
        .into_iter()
        .find(|(_, beat)| now.saturating_duration_since(beat.unwrap_or(since)) > window)
        .map(|(name, _)| name)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)] // tests: a failed unwrap is a failed test
    use super::*;
    use crate::shared::IfaceCounters;

    fn shared_with(ifaces: &[(&str, bool)]) -> Shared {
        let s = Shared::default();
        *s.ifaces.lock().unwrap() = ifaces
            .iter()
            .map(|(name, up)| IfaceCounters {
                name: (*name).into(),
                up: *up,
                ..IfaceCounters::default()
            })
            .collect();
        s
    }

    #[test]
    fn a_wedged_worker_is_silent_and_a_reporting_one_is_not() {
        let s = shared_with(&[("eth1", true), ("eth2", true)]);
        let t0 = Instant::now();
        let w = Duration::from_secs(30);
        // Nothing reported yet: counted from the start of supervision.
        assert_eq!(first_silent(beats(&s), t0, t0 + w, w), None);
        assert_eq!(
            first_silent(beats(&s), t0, t0 + w + Duration::from_secs(1), w).as_deref(),
            Some("capture thread of eth1")
        );
        // Every thread reports; then the worker stops while the captures go on.
        let late = t0 + Duration::from_secs(40);
        for slot in 0..2 {
            s.ifaces.lock().unwrap()[slot].beat = Some(late);
        }
        s.worker.lock().unwrap().beat = Some(late);
        assert_eq!(first_silent(beats(&s), t0, late + w, w), None);
        for slot in 0..2 {
            s.ifaces.lock().unwrap()[slot].beat = Some(late + w);
        }
        assert_eq!(
            first_silent(beats(&s), t0, late + w + Duration::from_secs(1), w).as_deref(),
            Some("engine worker")
        );
        // It reports again: alive.
        s.worker.lock().unwrap().beat = Some(late + w);
        assert_eq!(
            first_silent(beats(&s), t0, late + w + Duration::from_secs(1), w),
            None
        );
    }

    #[test]
    fn status_names_capturing_and_missing_interfaces() {
        let s = shared_with(&[("eth1", true), ("eth2", false)]);
        s.worker.lock().unwrap().alerts = 3;
        assert_eq!(
            status_line(&s),
            "capturing on eth1; not open, retrying: eth2; 3 alerts"
        );
        let s = shared_with(&[("eth1", false)]);
        s.worker.lock().unwrap().alerts = 1;
        assert_eq!(
            status_line(&s),
            "no interface capturing; not open, retrying: eth1; 1 alert"
        );
    }
}

//! Progress of a long run on standard error: an `indicatif` bar (input bytes, packets/s, ETA)
//! when standard error is a terminal, else a plain line every [`LINE_INTERVAL`].

use std::io::IsTerminal as _;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

/// Time between two plain progress lines when standard error is not a terminal.
pub const LINE_INTERVAL: Duration = Duration::from_secs(10);

/// Packets between two looks at the clock (keeps the per-packet cost to an increment).
const CHECK_EVERY: u64 = 4096;

enum Mode {
    Off,
    Bar(ProgressBar),
    Lines { last: Instant },
}

/// Progress reporting for one run over `total` input bytes.
pub struct Progress {
    mode: Mode,
    total: u64,
    started: Instant,
    packets: u64,
}

impl Progress {
    /// A bar on a terminal, plain lines otherwise, nothing when `quiet`.
    pub fn new(total_bytes: u64, quiet: bool) -> Progress {
        let mode = if quiet {
            Mode::Off
        } else if std::io::stderr().is_terminal() {
            let bar =
                ProgressBar::with_draw_target(Some(total_bytes), ProgressDrawTarget::stderr());
            if let Ok(style) = ProgressStyle::with_template(
                "{bar:30} {bytes}/{total_bytes} {binary_bytes_per_sec} {msg} ETA {eta}",
            ) {
                bar.set_style(style.progress_chars("=> "));
            }
            Mode::Bar(bar)
        } else {
            Mode::Lines {
                last: Instant::now(),
            }
        };
        Progress {
            mode,
            total: total_bytes,
            started: Instant::now(),
            packets: 0,
        }
    }

    /// Counts one packet; every few thousand packets asks `bytes_done` for the input position
    /// and updates the display.
    #[inline]
    pub fn packet(&mut self, bytes_done: impl FnOnce() -> u64) {
        self.packets += 1;
        if self.packets % CHECK_EVERY == 0 && !matches!(self.mode, Mode::Off) {
            self.update(bytes_done());
        }
    }

    /// Sets the packets and input bytes done so far, for work counted elsewhere (threads
    /// reading files in parallel), and updates the display.
    pub fn set(&mut self, packets: u64, bytes_done: u64) {
        self.packets = packets;
        if !matches!(self.mode, Mode::Off) {
            self.update(bytes_done);
        }
    }

    fn update(&mut self, done: u64) {
        let elapsed = self.started.elapsed();
        let pps = self.packets as f64 / elapsed.as_secs_f64().max(1e-9);
        match &mut self.mode {
            Mode::Off => {}
            Mode::Bar(bar) => {
                bar.set_position(done);
                bar.set_message(format!("{:.0} packets/s", pps));
            }
            Mode::Lines { last } => {
                if last.elapsed() >= LINE_INTERVAL {
                    *last = Instant::now();
                    eprintln!("{}", line(done, self.total, self.packets, elapsed));
                }
            }
        }
    }

    /// Removes the bar (the summary follows).
    pub fn finish(&mut self) {
        if let Mode::Bar(bar) = &self.mode {
            bar.finish_and_clear();
        }
    }
}

/// One plain progress line.
fn line(done: u64, total: u64, packets: u64, elapsed: Duration) -> String {
    let secs = elapsed.as_secs_f64().max(1e-9);
    let frac = if total > 0 {
        (done as f64 / total as f64).min(1.0)
    } else {
        0.0
    };
    let eta = if frac > 0.0 {
        format!("{:.0} s", secs * (1.0 - frac) / frac)
    } else {
        "unknown".to_string()
    };
    format!(
        "burstwatch: progress {:.1}%: {done} of {total} bytes, {packets} packets, {:.0} packets/s, ETA {eta}",
        frac * 100.0,
        packets as f64 / secs,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_line_reports_share_rate_and_eta() {
        let l = line(250, 1000, 5000, Duration::from_secs(10));
        assert_eq!(
            l,
            "burstwatch: progress 25.0%: 250 of 1000 bytes, 5000 packets, 500 packets/s, ETA 30 s"
        );
        assert!(line(0, 0, 0, Duration::ZERO).ends_with("ETA unknown"));
    }
}

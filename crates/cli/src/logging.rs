//! The log: `tracing` events on standard error, as text or as one JSON object per line, with
//! the level from `--log-level`, the command's default and `BURSTWATCH_LOG`.
//!
//! Precedence: the base level is `--log-level`, else the command's default (`info` for
//! `daemon`, `warn` for the others, whose results go to the terminal). `BURSTWATCH_LOG`
//! (`tracing-subscriber` filter directives, e.g. `debug` or
//! `warn,burstwatch_exporter::sinks=debug`) is applied on top: a bare level there replaces the
//! base level, a `target=level` directive sets that target's level and leaves the rest at the
//! base level. An invalid `BURSTWATCH_LOG` is ignored with a warning.

use tracing_subscriber::EnvFilter;

/// The environment variable with filter directives.
pub const ENV: &str = "BURSTWATCH_LOG";

/// Log options, accepted before or after the subcommand.
#[derive(Debug, Clone, clap::Args)]
pub struct LogArgs {
    /// Log line format on standard error: `text` (human-readable) or `json` (one JSON object
    /// per line with `timestamp`, `level`, `target` and `fields`, the message in
    /// `fields.message`; for journald and Loki).
    #[arg(long, global = true, value_enum, value_name = "FORMAT", default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,
    /// Log level [default: info for `daemon`; warn for the other commands, which print their
    /// results on the terminal and log only what went wrong]. The environment variable
    /// BURSTWATCH_LOG (filter directives, e.g. `debug` or `warn,burstwatch_exporter::sinks=debug`)
    /// applies on top: a bare level there wins, a `target=level` directive refines.
    #[arg(long, global = true, value_enum, value_name = "LEVEL")]
    pub log_level: Option<Level>,
}

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines (coloured on a terminal).
    Text,
    /// One JSON object per line.
    Json,
}

/// A log level.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Level {
    /// Nothing.
    Off,
    /// Errors only.
    Error,
    /// Errors and warnings.
    Warn,
    /// Also what the program does (start, reloads, alerts raised).
    Info,
    /// Also details for a diagnosis.
    Debug,
    /// Everything.
    Trace,
}

impl Level {
    fn as_str(self) -> &'static str {
        match self {
            Level::Off => "off",
            Level::Error => "error",
            Level::Warn => "warn",
            Level::Info => "info",
            Level::Debug => "debug",
            Level::Trace => "trace",
        }
    }
}

/// The filter for `base` and the `BURSTWATCH_LOG` value `env`; the error text when `env` was
/// not valid (and only `base` applies).
fn filter(base: Level, env: Option<&str>) -> (EnvFilter, Option<String>) {
    let base_filter = || EnvFilter::new(base.as_str());
    match env.map(str::trim).filter(|e| !e.is_empty()) {
        None => (base_filter(), None),
        // Directives equal but for the level replace earlier ones: the variable's come last.
        Some(env) => match EnvFilter::builder().parse(format!("{},{env}", base.as_str())) {
            Ok(f) => (f, None),
            Err(e) => (
                base_filter(),
                Some(format!(
                    "{ENV}={env:?} is not a valid filter ({e}); ignored"
                )),
            ),
        },
    }
}

/// Install the global subscriber: `args` over `default` (the command's level) and
/// `BURSTWATCH_LOG`.
pub fn init(args: &LogArgs, default: Level) {
    let env = std::env::var(ENV).ok();
    let (filter, bad_env) = filter(args.log_level.unwrap_or(default), env.as_deref());
    let builder = tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(filter);
    match args.log_format {
        // Colour only on a terminal: journald and log files get plain text.
        LogFormat::Text => builder
            .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
            .init(),
        LogFormat::Json => builder
            .json()
            .with_current_span(false)
            .with_span_list(false)
            .init(),
    }
    if let Some(why) = bad_env {
        tracing::warn!("{why}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_variable_refines_or_replaces_the_base_level() {
        let shown = |f: &EnvFilter| f.to_string();
        assert_eq!(shown(&filter(Level::Info, None).0), "info");
        assert_eq!(shown(&filter(Level::Info, Some("  ")).0), "info");
        // A bare level in the variable replaces the base level.
        assert_eq!(shown(&filter(Level::Warn, Some("debug")).0), "debug");
        // A target directive refines it.
        let (f, bad) = filter(Level::Warn, Some("burstwatch_exporter::sinks=debug"));
        assert_eq!(bad, None);
        let s = shown(&f);
        assert!(
            s.contains("burstwatch_exporter::sinks=debug") && s.contains("warn"),
            "{s}"
        );
        // A bad variable leaves the base level, with a reason.
        let (f, bad) = filter(Level::Info, Some("burstwatch=loud"));
        assert_eq!(shown(&f), "info");
        assert!(bad.is_some_and(|b| b.contains("BURSTWATCH_LOG")));
    }
}

//! Diagnostic logs on standard error, by the count of `-v`:
//!
//! - none: warnings and errors only, from this crate and its dependencies;
//! - `-v`: also this crate's one-line steps of each flow: discovery fetched, the authorize
//!   URL ready and opened or printed, the callback received, tokens obtained, and each
//!   refresh decision (still valid, refreshing, refreshed, refused);
//! - `-vv`: also this crate's debug lines (responses, locks, listener events);
//! - `-vvv`: also this crate's trace lines (request lines and header names) and the
//!   dependencies' internals (ureq, rustls, wasmtime) at debug.
//!
//! Below `-vvv` a dependency logs only warnings and errors: its info lines (a connection
//! opened, a TLS handshake) would bury the flow's steps.
//!
//! Events come from this crate (`tracing`) and from dependencies' `log` records (ureq,
//! rustls, wasmtime), bridged into the same subscriber. What may be logged:
//! - request lines as method, origin, path and the *names* of query parameters (a query can
//!   carry an access token);
//! - header *names*, statuses, sizes and durations;
//! - why a callback or a call was refused, by kind, never the callback URL (it carries the
//!   authorization code).
//!
//! Never a header value, a body, a token, a secret or a PKCE verifier. Dependencies are
//! capped at `debug` whatever the verbosity: at `trace`, ureq writes every byte sent and
//! received (client secrets and tokens included) and full URLs with their queries.

use std::io::Write;
use std::sync::{Arc, Mutex, Once};

use tracing::level_filters::LevelFilter;
use tracing_subscriber::filter::Targets;
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::layer::SubscriberExt as _;

/// Where log lines go: standard error for the CLI, a buffer in tests.
pub type LogSink = Arc<Mutex<dyn Write + Send>>;

/// The most verbose level a dependency may log at (see the module docs).
pub const DEPENDENCY_CEILING: LevelFilter = LevelFilter::DEBUG;

/// The level for this crate and the component's core at `verbosity` (the count of `-v`).
pub fn level(verbosity: u8) -> LevelFilter {
    match verbosity {
        0 => LevelFilter::WARN,
        1 => LevelFilter::INFO,
        2 => LevelFilter::DEBUG,
        _ => LevelFilter::TRACE,
    }
}

/// The level for dependencies at `verbosity`: warnings below `-vvv`, then
/// [`DEPENDENCY_CEILING`].
pub fn dependency_level(verbosity: u8) -> LevelFilter {
    if verbosity >= 3 {
        DEPENDENCY_CEILING
    } else {
        LevelFilter::WARN
    }
}

/// What is logged at `verbosity`: this crate at [`level`], dependencies at
/// [`dependency_level`] (see the module docs).
pub fn filter(verbosity: u8) -> Targets {
    Targets::new()
        .with_target("connector_host", level(verbosity))
        .with_default(dependency_level(verbosity))
}

/// Runs `work` with the logs of this thread going to `sink` at `verbosity`.
pub fn with_logging<R>(verbosity: u8, sink: LogSink, work: impl FnOnce() -> R) -> R {
    bridge_log_records();
    let subscriber = tracing_subscriber::registry()
        .with(
            tracing_subscriber::fmt::layer()
                .with_ansi(false)
                .with_writer(SinkWriter(sink)),
        )
        .with(filter(verbosity));
    tracing::subscriber::with_default(subscriber, work)
}

/// Forwards `log` records (from ureq, rustls, wasmtime) to the current `tracing`
/// subscriber, once per process.
fn bridge_log_records() {
    static BRIDGE: Once = Once::new();
    BRIDGE.call_once(|| {
        // Fails only when another logger is installed already (an embedding program's);
        // its records then go there.
        let _ = tracing_log::LogTracer::init();
    });
}

/// A [`MakeWriter`] over a shared sink: each event is written under the lock, whole.
struct SinkWriter(LogSink);

impl<'a> MakeWriter<'a> for SinkWriter {
    type Writer = SinkLine;

    fn make_writer(&'a self) -> SinkLine {
        SinkLine(Arc::clone(&self.0))
    }
}

/// One event's writer.
struct SinkLine(LogSink);

impl Write for SinkLine {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.write_all(bytes).map(|()| bytes.len())
    }

    fn write_all(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        // A poisoned lock only means another thread panicked mid-line; keep logging.
        let mut sink = self
            .0
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        sink.write_all(bytes)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        let mut sink = self
            .0
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        sink.flush()
    }
}

/// `url` as it may appear in a log: scheme, host, port and path, plus the names of its
/// query parameters (their values can be credentials).
pub fn loggable_url(url: &str) -> String {
    let Ok(parsed) = url::Url::parse(url) else {
        return "<unparsable URL>".to_owned();
    };
    let mut text = format!("{}{}", parsed.origin().ascii_serialization(), parsed.path());
    let names: Vec<String> = parsed
        .query_pairs()
        .map(|(name, _)| name.into_owned())
        .collect();
    if !names.is_empty() {
        text.push_str(" query names [");
        text.push_str(&names.join(", "));
        text.push(']');
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_are_logged_without_query_values_or_credentials() {
        assert_eq!(
            loggable_url(
                "https://user:pw@api.example.com:8443/v1/items?access_token=SECRET&page=2"
            ),
            "https://api.example.com:8443/v1/items query names [access_token, page]"
        );
        assert_eq!(loggable_url("not a url"), "<unparsable URL>");
    }

    #[test]
    fn dependencies_never_log_below_debug() {
        use tracing::Level;
        let most = filter(u8::MAX);
        assert!(most.would_enable("connector_host::transport", &Level::TRACE));
        assert!(most.would_enable("ureq::run", &Level::DEBUG));
        assert!(!most.would_enable("ureq_proto::util", &Level::TRACE));
        assert!(!most.would_enable("ureq::run", &Level::TRACE));
    }

    /// The most verbose level each verbosity lets through, for this crate and for its
    /// dependencies.
    #[test]
    fn each_verbosity_enables_exactly_its_levels() {
        use tracing::Level;
        let levels = [
            Level::ERROR,
            Level::WARN,
            Level::INFO,
            Level::DEBUG,
            Level::TRACE,
        ];
        let most_verbose = |filter: &Targets, target: &str| {
            levels
                .iter()
                .rev()
                .find(|level| filter.would_enable(target, level))
                .copied()
        };
        let expected = [
            (0, Level::WARN, Level::WARN),
            (1, Level::INFO, Level::WARN),
            (2, Level::DEBUG, Level::WARN),
            (3, Level::TRACE, Level::DEBUG),
            (4, Level::TRACE, Level::DEBUG),
        ];
        for (verbosity, ours, dependencies) in expected {
            let filter = filter(verbosity);
            for target in ["connector_host", "connector_host::connections"] {
                assert_eq!(
                    most_verbose(&filter, target),
                    Some(ours),
                    "-v x{verbosity}: {target}"
                );
            }
            for target in [
                "ureq::run",
                "ureq_proto::client",
                "rustls::client",
                "wasmtime",
            ] {
                assert_eq!(
                    most_verbose(&filter, target),
                    Some(dependencies),
                    "-v x{verbosity}: {target}"
                );
            }
            // Errors always get through.
            assert!(filter.would_enable("ureq::run", &Level::ERROR));
        }
        assert_eq!(dependency_level(u8::MAX), DEPENDENCY_CEILING);
    }
}

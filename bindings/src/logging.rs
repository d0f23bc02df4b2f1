//! The core's `tracing` output, forwarded to the app's logger (Logcat,
//! os_log) at the level the app chooses. The core logs identifiers and
//! failures, never message content or keys.

use std::fmt::Write as _;
use std::sync::{Arc, OnceLock, PoisonError, RwLock};

use tracing::field::{Field, Visit};
use tracing_subscriber::layer::{Context, SubscriberExt};

/// How much to log.
#[derive(Clone, Copy, Debug, PartialEq, Eq, uniffi::Enum)]
pub enum LogLevel {
    /// Failures.
    Error,
    /// Problems that were handled.
    Warn,
    /// Notable events.
    Info,
    /// Detail for debugging.
    Debug,
    /// Everything.
    Trace,
}

impl LogLevel {
    fn admits(self, level: &tracing::Level) -> bool {
        let max = match self {
            LogLevel::Error => tracing::Level::ERROR,
            LogLevel::Warn => tracing::Level::WARN,
            LogLevel::Info => tracing::Level::INFO,
            LogLevel::Debug => tracing::Level::DEBUG,
            LogLevel::Trace => tracing::Level::TRACE,
        };
        *level <= max
    }

    fn of(level: &tracing::Level) -> Self {
        match *level {
            tracing::Level::ERROR => LogLevel::Error,
            tracing::Level::WARN => LogLevel::Warn,
            tracing::Level::INFO => LogLevel::Info,
            tracing::Level::DEBUG => LogLevel::Debug,
            _ => LogLevel::Trace,
        }
    }
}

/// The app's logger (implemented in Kotlin or Swift).
#[uniffi::export(with_foreign)]
pub trait Logger: Send + Sync {
    /// One log line: its level, the Rust module it came from, the text.
    fn log(&self, level: LogLevel, target: String, message: String);
}

type Sink = Option<(Arc<dyn Logger>, LogLevel)>;

fn sink() -> &'static RwLock<Sink> {
    static SINK: OnceLock<RwLock<Sink>> = OnceLock::new();
    SINK.get_or_init(|| RwLock::new(None))
}

/// Forwards events to the current sink.
struct Forward;

#[derive(Default)]
struct Text(String);

impl Visit for Text {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        if !self.0.is_empty() {
            self.0.push(' ');
        }
        if field.name() == "message" {
            let _ = write!(self.0, "{value:?}");
        } else {
            let _ = write!(self.0, "{}={value:?}", field.name());
        }
    }

    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "message" {
            if !self.0.is_empty() {
                self.0.push(' ');
            }
            self.0.push_str(value);
        } else {
            self.record_debug(field, &value);
        }
    }
}

impl<S: tracing::Subscriber> tracing_subscriber::Layer<S> for Forward {
    fn on_event(&self, event: &tracing::Event<'_>, _ctx: Context<'_, S>) {
        let sink = sink()
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        let Some((logger, level)) = sink else { return };
        let meta = event.metadata();
        if !level.admits(meta.level()) {
            return;
        }
        let mut text = Text::default();
        event.record(&mut text);
        logger.log(
            LogLevel::of(meta.level()),
            meta.target().to_string(),
            text.0,
        );
    }
}

/// Sends the core's log lines at `level` and above to `logger` (or stops
/// forwarding, with `None`). The first call installs the forwarding as the
/// process's `tracing` subscriber.
#[uniffi::export]
pub fn set_logger(logger: Option<Arc<dyn Logger>>, level: LogLevel) {
    static INSTALLED: OnceLock<bool> = OnceLock::new();
    *sink().write().unwrap_or_else(PoisonError::into_inner) = logger.map(|l| (l, level));
    INSTALLED.get_or_init(|| {
        tracing::subscriber::set_global_default(tracing_subscriber::registry().with(Forward))
            .is_ok()
    });
}

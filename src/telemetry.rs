//! Logging: one line per event, pretty or JSON, each carrying the request id of the request
//! it was written for (from the task-local set by the request-id middleware).
//!
//! Nothing personal is logged: handlers log ids and codes, never bodies, emails or names.

use std::fmt;

use serde_json::{Map, Value};
use tracing::field::{Field, Visit};
use tracing::{Event, Subscriber};
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields};
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::{EnvFilter, prelude::*};

use crate::config::LogFormat;
use crate::http::request_id;

/// Installs the global subscriber, writing to stderr. Safe to call more than once (later
/// calls do nothing).
pub fn init(filter: &str, format: LogFormat) {
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let _ = subscriber(filter, format, ansi, std::io::stderr).try_init();
}

fn subscriber<W>(
    filter: &str,
    format: LogFormat,
    ansi: bool,
    writer: W,
) -> impl Subscriber + Send + Sync
where
    W: for<'w> tracing_subscriber::fmt::MakeWriter<'w> + Send + Sync + 'static,
{
    let filter = EnvFilter::try_new(filter).unwrap_or_else(|_| EnvFilter::new("info"));
    let layer = tracing_subscriber::fmt::layer()
        .with_writer(writer)
        .with_ansi(ansi)
        .event_format(Line { format });
    tracing_subscriber::registry().with(filter).with(layer)
}

struct Line {
    format: LogFormat,
}

impl<S, N> FormatEvent<S, N> for Line
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        let meta = event.metadata();
        let now = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
        let request_id = request_id::current();
        match self.format {
            LogFormat::Pretty => {
                write!(writer, "{now} {:>5} {}: ", meta.level(), meta.target())?;
                ctx.format_fields(writer.by_ref(), event)?;
                if let Some(id) = request_id {
                    write!(writer, " request_id={id}")?;
                }
                writeln!(writer)
            }
            LogFormat::Json => {
                let mut fields = JsonFields(Map::new());
                event.record(&mut fields);
                let mut line = Map::new();
                line.insert("timestamp".into(), Value::String(now));
                line.insert("level".into(), Value::String(meta.level().to_string()));
                line.insert("target".into(), Value::String(meta.target().to_owned()));
                if let Some(id) = request_id {
                    line.insert("request_id".into(), Value::String(id));
                }
                line.extend(fields.0);
                writeln!(writer, "{}", Value::Object(line))
            }
        }
    }
}

struct JsonFields(Map<String, Value>);

impl Visit for JsonFields {
    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.0
            .insert(field.name().to_owned(), Value::String(format!("{value:?}")));
    }

    fn record_str(&mut self, field: &Field, value: &str) {
        self.0
            .insert(field.name().to_owned(), Value::String(value.to_owned()));
    }

    fn record_i64(&mut self, field: &Field, value: i64) {
        self.0.insert(field.name().to_owned(), Value::from(value));
    }

    fn record_u64(&mut self, field: &Field, value: u64) {
        self.0.insert(field.name().to_owned(), Value::from(value));
    }

    fn record_f64(&mut self, field: &Field, value: f64) {
        self.0.insert(field.name().to_owned(), Value::from(value));
    }

    fn record_bool(&mut self, field: &Field, value: bool) {
        self.0.insert(field.name().to_owned(), Value::from(value));
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use super::*;

    #[derive(Clone, Default)]
    struct Buffer(Arc<Mutex<Vec<u8>>>);

    impl std::io::Write for Buffer {
        fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
            if let Ok(mut buf) = self.0.lock() {
                buf.extend_from_slice(bytes);
            }
            Ok(bytes.len())
        }

        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    fn logged(format: LogFormat) -> String {
        let buffer = Buffer::default();
        let sink = buffer.clone();
        let subscriber = subscriber("info", format, false, move || sink.clone());
        tracing::subscriber::with_default(subscriber, || {
            request_id::in_scope("req-42", || tracing::warn!(code = 7, "inside a request"));
            tracing::warn!("outside");
            tracing::debug!("filtered out");
        });
        let bytes = buffer.0.lock().map(|b| b.clone()).unwrap_or_default();
        String::from_utf8(bytes).unwrap_or_default()
    }

    #[test]
    fn lines_carry_the_request_id() {
        let text = logged(LogFormat::Pretty);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 2, "{text}");
        assert!(lines[0].contains("inside a request") && lines[0].ends_with("request_id=req-42"));
        assert!(!lines[1].contains("request_id"));

        let text = logged(LogFormat::Json);
        let first: serde_json::Value =
            serde_json::from_str(text.lines().next().unwrap_or_default()).unwrap_or_default();
        assert_eq!(first["request_id"], "req-42");
        assert_eq!(first["message"], "inside a request");
        assert_eq!(first["code"], 7);
        assert_eq!(first["level"], "WARN");
    }
}

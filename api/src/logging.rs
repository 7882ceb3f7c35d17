//! Logs: text for people (the default) or, with `REGISTRY_LOG_FORMAT=json`, one JSON object per
//! line for log pipelines. Every answered request writes one line with its request id, route
//! template, method, status, latency, actor, client id and — when the caller sent a W3C
//! `traceparent` — its trace id, so the registry's lines join the identity service's traces.
//!
//! Nothing a client sends reaches a log line unescaped: the client id is the raw (still
//! percent-encoded) path segment, the trace id only a validated one, and every line's control
//! characters are escaped as it is written ([`Escaping`]).

use std::sync::{Arc, OnceLock};
use std::time::Duration;

/// The header carrying the request id, in requests and responses.
pub const REQUEST_ID: &str = "x-request-id";

use axum::extract::Request;
use axum::http::HeaderMap;
use tracing_subscriber::EnvFilter;

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    /// Human-readable lines (the default).
    Text,
    /// One JSON object per line.
    Json,
}

impl LogFormat {
    /// `REGISTRY_LOG_FORMAT`: `text` (or unset) or `json`.
    ///
    /// # Errors
    /// Any other value.
    pub fn from_env() -> anyhow::Result<Self> {
        match std::env::var("REGISTRY_LOG_FORMAT").as_deref() {
            Err(_) | Ok("" | "text") => Ok(Self::Text),
            Ok("json") => Ok(Self::Json),
            Ok(other) => anyhow::bail!("REGISTRY_LOG_FORMAT must be text or json, not {other:?}"),
        }
    }
}

/// Logs to stderr in `format`, filtered by `REGISTRY_LOG` (default `info`).
pub fn init(format: LogFormat) {
    let filter = EnvFilter::try_from_env("REGISTRY_LOG").unwrap_or_else(|_| EnvFilter::new("info"));
    // Colours only for a person at a terminal, never escape codes in a log file.
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(ansi)
        .with_writer(move || Escaping::new(std::io::stderr(), ansi));
    match format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .with_span_list(false)
            .init(),
    }
}

/// Writes each formatted log line with every control character in it escaped (`\n` as `\\n`,
/// others as `\\u{..}`) but the newline that ends it: whatever a field holds (a query string's
/// error, an identity token's `name` claim), it cannot start a line of its own and forge one.
/// The formatter writes each line in one call. ESC is kept only for colours on a terminal.
pub struct Escaping<W> {
    inner: W,
    keep_escape: bool,
}

impl<W: std::io::Write> Escaping<W> {
    /// Escapes what is written to `inner`; keeps ESC when `ansi` colours are on.
    pub fn new(inner: W, ansi: bool) -> Self {
        Self {
            inner,
            keep_escape: ansi,
        }
    }
}

/// `line` with its control characters escaped, but a final `\n` (C0, DEL and C1 controls).
pub fn escape_line(line: &str, keep_escape: bool) -> String {
    let (body, end) = match line.strip_suffix('\n') {
        Some(body) => (body, "\n"),
        None => (line, ""),
    };
    let mut out = String::with_capacity(line.len() + 8);
    for c in body.chars() {
        match c {
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push('\t'),
            '\u{1b}' if keep_escape => out.push(c),
            c if c.is_control() => out.push_str(&format!("\\u{{{:x}}}", u32::from(c))),
            c => out.push(c),
        }
    }
    out.push_str(end);
    out
}

impl<W: std::io::Write> std::io::Write for Escaping<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let text = String::from_utf8_lossy(buf);
        self.inner
            .write_all(escape_line(&text, self.keep_escape).as_bytes())?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

/// The trace id of a W3C `traceparent` header (`00-<32 hex>-<16 hex>-<2 hex>`, ids not all
/// zeros), lowercase; `None` for a missing or malformed one (which is then ignored).
pub fn trace_id(headers: &HeaderMap) -> Option<String> {
    let value = headers.get("traceparent")?.to_str().ok()?.trim();
    let mut parts = value.split('-');
    let (version, trace, parent, flags) =
        (parts.next()?, parts.next()?, parts.next()?, parts.next()?);
    let hex = |s: &str, len: usize| s.len() == len && s.bytes().all(|b| b.is_ascii_hexdigit());
    let zeros = |s: &str| s.bytes().all(|b| b == b'0');
    let valid = hex(version, 2)
        && version != "ff"
        // Version 00 has exactly four fields; later versions may add more.
        && (version != "00" || parts.next().is_none())
        && hex(trace, 32)
        && !zeros(trace)
        && hex(parent, 16)
        && !zeros(parent)
        && hex(flags, 2);
    valid.then(|| trace.to_ascii_lowercase())
}

/// Who a request was answered for, filled in by whichever part of the service authenticated
/// it (a bearer token, a screen session), read when the request's line is written.
#[derive(Debug, Clone, Default)]
pub struct Actor(Arc<OnceLock<String>>);

impl Actor {
    /// Names the actor of this request (the first name given stays).
    pub fn set(&self, name: &str) {
        let _ = self.0.set(name.to_owned());
    }
}

/// Names the actor of `request`, when it carries an [`Actor`] slot.
pub fn name_actor(extensions: &axum::http::Extensions, name: &str) {
    if let Some(actor) = extensions.get::<Actor>() {
        actor.set(name);
    }
}

/// What the line of one request says, gathered as it goes.
#[derive(Debug)]
pub struct RequestLog {
    method: String,
    request_id: String,
    trace_id: Option<String>,
    client_id: Option<String>,
    actor: Actor,
    /// Probes and scrapes are logged at debug level (they come every few seconds).
    quiet: bool,
}

impl RequestLog {
    /// Starts the line of `request`, routed to `route`, and leaves an [`Actor`] slot in it.
    pub fn start(request: &mut Request, route: &str) -> Self {
        let actor = Actor::default();
        request.extensions_mut().insert(actor.clone());
        let headers = request.headers();
        Self {
            method: request.method().as_str().chars().take(16).collect(),
            request_id: headers
                .get(REQUEST_ID)
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default()
                .to_owned(),
            trace_id: trace_id(headers),
            client_id: client_id(route, request.uri().path()),
            actor,
            quiet: matches!(route, "/healthz" | "/readyz" | "/metrics"),
        }
    }

    /// Writes the line: `status` `None` when the client went away before the answer.
    pub fn answered(&self, route: &str, status: Option<u16>, latency: Duration) {
        // Microsecond resolution: 1.105, not 1.1054979999999999.
        let latency_ms = f64::from(u32::try_from(latency.as_micros()).unwrap_or(u32::MAX)) / 1000.0;
        let actor = self.actor.0.get().map(String::as_str);
        let client_id = self.client_id.as_deref();
        let trace_id = self.trace_id.as_deref();
        // No status: the client went away before the answer.
        let abandoned = status.is_none().then_some(true);
        macro_rules! line {
            ($level:expr) => {
                tracing::event!(
                    $level,
                    request_id = %self.request_id,
                    method = %self.method,
                    route,
                    status,
                    abandoned,
                    latency_ms,
                    actor,
                    client_id,
                    trace_id,
                    "request answered"
                )
            };
        }
        match status {
            _ if self.quiet => line!(tracing::Level::DEBUG),
            Some(500..) | None => line!(tracing::Level::WARN),
            _ => line!(tracing::Level::INFO),
        }
    }
}

/// The segment of `path` where `route` has `{client_id}`, as sent (percent-encoded).
fn client_id(route: &str, path: &str) -> Option<String> {
    let at = route.split('/').position(|part| part == "{client_id}")?;
    path.split('/')
        .nth(at)
        .filter(|id| !id.is_empty())
        .map(|id| id.chars().take(200).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Clone, Default)]
    struct Buffer(Arc<std::sync::Mutex<Vec<u8>>>);

    impl std::io::Write for Buffer {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }

        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn a_field_with_a_newline_cannot_forge_a_log_line() {
        let buffer = Buffer::default();
        let writer = buffer.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_ansi(false)
            .with_writer(move || Escaping::new(writer.clone(), false))
            .finish();
        let forged = "x\n2026-12-04T00:00:00.000000Z  INFO registry_api: signed in actor=admin\r\u{1b}[2K\u{85}";
        tracing::subscriber::with_default(subscriber, || {
            tracing::info!(error = %forged, "the identity service refused the sign-in");
            tracing::info!(actor = %forged, "signed in through the identity service");
        });
        let text = String::from_utf8(buffer.0.lock().unwrap().clone()).unwrap();
        assert_eq!(text.lines().count(), 2, "{text}");
        assert!(
            text.lines().all(|l| !l.starts_with("2026-12-04T00:00:00")),
            "{text}"
        );
        assert!(text.contains("x\\n2026-12-04T00:00:00"), "{text}");
        assert!(!text.contains('\r') && !text.contains('\u{1b}') && !text.contains('\u{85}'));
        assert!(
            text.contains("\\u{1b}[2K") && text.contains("\\u{85}"),
            "{text}"
        );
    }

    #[test]
    fn colours_keep_their_escape_on_a_terminal_and_the_line_its_end() {
        assert_eq!(
            escape_line("\u{1b}[32mok\u{1b}[0m\n", true),
            "\u{1b}[32mok\u{1b}[0m\n"
        );
        assert_eq!(escape_line("a\tb\n", false), "a\tb\n");
        assert_eq!(escape_line("a\nb\n", false), "a\\nb\n");
    }

    fn headers(traceparent: &str) -> HeaderMap {
        let mut map = HeaderMap::new();
        map.insert(
            "traceparent",
            axum::http::HeaderValue::from_str(traceparent)
                .unwrap_or_else(|_| axum::http::HeaderValue::from_static("invalid")),
        );
        map
    }

    #[test]
    fn only_a_valid_traceparent_gives_a_trace_id() {
        assert_eq!(
            trace_id(&headers(
                "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01"
            ))
            .as_deref(),
            Some("4bf92f3577b34da6a3ce929d0e0e4736")
        );
        for bad in [
            "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
            "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e473-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra",
            "00-4bf92f3577b34da6a3ce929d0e0e47zz-00f067aa0ba902b7-01",
            "nonsense",
        ] {
            assert_eq!(trace_id(&headers(bad)), None, "{bad}");
        }
        assert_eq!(trace_id(&HeaderMap::new()), None);
    }

    #[test]
    fn the_client_id_is_the_segment_its_route_names() {
        assert_eq!(
            client_id(
                "/api/v1/clients/{client_id}/secret",
                "/api/v1/clients/app%201/secret"
            )
            .as_deref(),
            Some("app%201")
        );
        assert_eq!(client_id("/api/v1/clients", "/api/v1/clients"), None);
        assert_eq!(client_id("unmatched", "/x/y"), None);
    }
}

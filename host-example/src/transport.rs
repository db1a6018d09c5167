//! The host's HTTP transport: the implementation of the component's `transport.send`.
//!
//! Policy, enforced before and during every request:
//! - the destination origin must be on the allow-list (by default the connection's own
//!   endpoints), otherwise `denied` and no connection is made;
//! - redirects are never followed: a 3xx is returned as the response;
//! - connect and total timeouts;
//! - a cap on the response body (`response-too-large`, never a truncated body), on the
//!   response head's size, and on its header count ([`MAX_RESPONSE_HEADERS`]).

use std::collections::BTreeSet;
use std::fmt;
use std::time::{Duration, Instant};

use ureq::http;
use url::Url;

use crate::bindings::types::{HttpMethod, HttpRequest, HttpResponse, KeyValue, TransportError};

/// What the component's `transport.send` calls: anything that turns a request into a
/// response. `HttpTransport` is the real one; benchmarks use canned answers to measure the
/// component alone.
pub trait Transport: Send {
    /// Sends one request (the `transport.send` contract in `wit/transport.wit`).
    fn send(&self, request: HttpRequest) -> Result<HttpResponse, TransportError>;
}

impl Transport for HttpTransport {
    fn send(&self, request: HttpRequest) -> Result<HttpResponse, TransportError> {
        HttpTransport::send(self, request)
    }
}

/// An origin: scheme, host and port (RFC 6454), the unit of the allow-list.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Origin {
    scheme: String,
    host: String,
    port: u16,
}

impl Origin {
    /// The origin of an http(s) URL; `None` for other schemes or URLs without a host.
    pub fn of(url: &Url) -> Option<Self> {
        if !matches!(url.scheme(), "http" | "https") {
            return None;
        }
        Some(Self {
            scheme: url.scheme().to_owned(),
            host: url.host_str()?.to_ascii_lowercase(),
            port: url.port_or_known_default()?,
        })
    }

    /// Parses a URL and takes its origin.
    pub fn parse(url: &str) -> Option<Self> {
        Self::of(&Url::parse(url).ok()?)
    }
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}://{}:{}", self.scheme, self.host, self.port)
    }
}

/// Which origins the component may reach.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AllowList {
    origins: BTreeSet<Origin>,
}

impl AllowList {
    /// An allow-list of the origins of these URLs (unparsable URLs are skipped: they can
    /// never be requested either).
    pub fn from_urls<'a>(urls: impl IntoIterator<Item = &'a str>) -> Self {
        Self {
            origins: urls.into_iter().filter_map(Origin::parse).collect(),
        }
    }

    /// Adds one origin.
    pub fn allow(&mut self, origin: Origin) {
        self.origins.insert(origin);
    }

    /// True when `url`'s origin is on the list.
    pub fn permits(&self, url: &Url) -> bool {
        Origin::of(url).is_some_and(|origin| self.origins.contains(&origin))
    }

    /// The origins on the list, in order.
    pub fn origins(&self) -> impl Iterator<Item = &Origin> {
        self.origins.iter()
    }

    /// Why `url` would be refused, for a message that names the fix: which parts of its
    /// origin (scheme, host, port) differ from the nearest allowed origin, and every allowed
    /// origin. `None` when `url` is permitted, or is not an http(s) URL with a host.
    pub fn refusal(&self, url: &Url) -> Option<String> {
        let origin = Origin::of(url)?;
        if self.origins.contains(&origin) {
            return None;
        }
        // Nearest: the same host first (a wrong scheme or port is the likelier slip), then
        // the fewest differing parts; ties go to the first in order.
        let Some(nearest) = self.origins.iter().min_by_key(|allowed| {
            (
                allowed.host != origin.host,
                origin.differences(allowed).len(),
            )
        }) else {
            return Some(format!(
                "the origin {origin} is not on the allow-list, which is empty"
            ));
        };
        let differences = origin.differences(nearest);
        let parts: Vec<&str> = differences.iter().map(|(part, _, _)| *part).collect();
        let details: Vec<String> = differences
            .iter()
            .map(|(_, ours, allowed)| format!("{ours}, not {allowed}"))
            .collect();
        let allowed: Vec<String> = self.origins.iter().map(Origin::to_string).collect();
        Some(format!(
            "the origin {origin} is not on the allow-list: its {} {} from the nearest allowed \
             origin, {nearest} ({}); allowed origins: {}",
            parts.join(" and "),
            if parts.len() == 1 {
                "differs"
            } else {
                "differ"
            },
            details.join("; "),
            allowed.join(", ")
        ))
    }
}

impl Origin {
    /// The parts of this origin that differ from `other`: the part's name, this origin's
    /// value and `other`'s.
    fn differences(&self, other: &Origin) -> Vec<(&'static str, String, String)> {
        let mut parts = Vec::new();
        if self.scheme != other.scheme {
            parts.push(("scheme", self.scheme.clone(), other.scheme.clone()));
        }
        if self.host != other.host {
            parts.push(("host", self.host.clone(), other.host.clone()));
        }
        if self.port != other.port {
            parts.push(("port", self.port.to_string(), other.port.to_string()));
        }
        parts
    }
}

/// The most headers a response may carry: fixed by the HTTP client (ureq's parser), so not
/// a field of [`Limits`].
pub const MAX_RESPONSE_HEADERS: usize = ureq_proto::client::MAX_RESPONSE_HEADERS;

/// Limits of the transport.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Deadline for establishing the connection (DNS, TCP, TLS).
    pub connect_timeout: Duration,
    /// Deadline for the whole exchange.
    pub total_timeout: Duration,
    /// Largest response body accepted, in bytes.
    pub max_response_bytes: u64,
    /// Largest response head accepted (status line plus headers), in bytes.
    pub max_header_bytes: usize,
    /// The proxy every request goes through (`http://host:port`, or `socks5://` where
    /// supported), or none. Never read from the environment: `HTTPS_PROXY` and friends would
    /// send the bytes to a host the allow-list never saw, so a proxy is always explicit. An
    /// invalid URL makes every request fail with `invalid-request` (never a direct
    /// connection).
    pub proxy: Option<String>,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            connect_timeout: Duration::from_secs(10),
            total_timeout: Duration::from_secs(30),
            // Token responses are a few KB; API responses can be larger. 8 MiB keeps a
            // hostile server from exhausting the host's (and the component's) memory.
            max_response_bytes: 8 * 1024 * 1024,
            max_header_bytes: 64 * 1024,
            proxy: None,
        }
    }
}

/// A blocking HTTP transport with the policy above.
#[derive(Clone)]
pub struct HttpTransport {
    agent: ureq::Agent,
    allow_list: AllowList,
    limits: Limits,
}

impl fmt::Debug for HttpTransport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HttpTransport")
            .field("allow_list", &self.allow_list)
            .field("limits", &self.limits)
            .finish_non_exhaustive()
    }
}

impl HttpTransport {
    /// A transport that may reach only the origins on `allow_list`.
    pub fn new(allow_list: AllowList, limits: Limits) -> Self {
        Self {
            agent: shared_agent(&limits),
            allow_list,
            limits,
        }
    }

    /// The allow-list in force.
    pub fn allow_list(&self) -> &AllowList {
        &self.allow_list
    }

    /// Sends one request under the policy (the `transport.send` contract in `wit/`).
    pub fn send(&self, request: HttpRequest) -> Result<HttpResponse, TransportError> {
        // The log lines cost a second URL parse and some strings: only when they are wanted.
        if !tracing::enabled!(tracing::Level::DEBUG) {
            return self.send_unlogged(request);
        }
        let started = Instant::now();
        let method = method_name(&request.method).to_owned();
        let url = crate::logging::loggable_url(&request.url);
        tracing::trace!(
            %method,
            %url,
            headers = ?header_names(&request.headers),
            body_bytes = request.body.len(),
            "sending"
        );
        let result = self.send_unlogged(request);
        let elapsed_ms = started.elapsed().as_secs_f64() * 1e3;
        match &result {
            Ok(response) => {
                tracing::debug!(
                    %method,
                    %url,
                    status = response.status,
                    body_bytes = response.body.len(),
                    elapsed_ms,
                    "response"
                );
                tracing::trace!(headers = ?header_names(&response.headers), "response headers");
            }
            Err(error) => tracing::debug!(%method, %url, ?error, elapsed_ms, "request failed"),
        }
        result
    }

    fn send_unlogged(&self, request: HttpRequest) -> Result<HttpResponse, TransportError> {
        let url = Url::parse(&request.url)
            .map_err(|error| TransportError::InvalidRequest(format!("bad URL: {error}")))?;
        if !self.allow_list.permits(&url) {
            return Err(TransportError::Denied(
                url.host_str().unwrap_or_default().to_owned(),
            ));
        }
        if let Some(proxy) = &self.limits.proxy
            && ureq::Proxy::new(proxy).is_err()
        {
            return Err(TransportError::InvalidRequest(
                "the configured proxy is not a valid proxy URL".into(),
            ));
        }
        let mut builder = http::Request::builder()
            .method(method_name(&request.method))
            .uri(url.as_str());
        for header in &request.headers {
            builder = builder.header(header.name.as_str(), header.value.as_str());
        }
        let http_request = builder
            .body(request.body)
            .map_err(|error| TransportError::InvalidRequest(error.to_string()))?;
        // A failure names the origin it could not reach (the component's error carries
        // only the reason).
        let failed = |error| with_origin(transport_error(error), &url);
        let mut response = self.agent.run(http_request).map_err(failed)?;
        let status = response.status().as_u16();
        let headers = response
            .headers()
            .iter()
            .map(|(name, value)| KeyValue {
                name: name.as_str().to_owned(),
                value: String::from_utf8_lossy(value.as_bytes()).into_owned(),
            })
            .collect();
        let body = response
            .body_mut()
            .with_config()
            .limit(self.limits.max_response_bytes)
            .read_to_vec()
            .map_err(failed)?;
        Ok(HttpResponse {
            status,
            headers,
            body,
        })
    }
}

/// One HTTP client per distinct set of limits, shared by every transport in the process:
/// building a client loads the TLS trust roots, which costs far more than a request on
/// loopback, and a per-call instance would pay it every time. Connection reuse stays safe:
/// the allow-list is checked per request, before the shared client is used.
fn shared_agent(limits: &Limits) -> ureq::Agent {
    static AGENTS: std::sync::Mutex<Vec<(Limits, ureq::Agent)>> = std::sync::Mutex::new(Vec::new());
    let mut agents = AGENTS
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    if let Some((_, agent)) = agents.iter().find(|(l, _)| l == limits) {
        return agent.clone();
    }
    let agent: ureq::Agent = ureq::Agent::config_builder()
        // Explicit, never from the environment (ureq's default reads `ALL_PROXY`,
        // `HTTPS_PROXY` and `HTTP_PROXY`).
        .proxy(
            limits
                .proxy
                .as_deref()
                .and_then(|url| ureq::Proxy::new(url).ok()),
        )
        .max_redirects(0)
        .max_redirects_will_error(false)
        .save_redirect_history(false)
        .http_status_as_error(false)
        .timeout_connect(Some(limits.connect_timeout))
        .timeout_global(Some(limits.total_timeout))
        .max_response_header_size(limits.max_header_bytes)
        .user_agent(concat!("oauth-connector/", env!("CARGO_PKG_VERSION")))
        .build()
        .new_agent();
    agents.push((limits.clone(), agent.clone()));
    agent
}

fn method_name(method: &HttpMethod) -> &str {
    match method {
        HttpMethod::Get => "GET",
        HttpMethod::Head => "HEAD",
        HttpMethod::Post => "POST",
        HttpMethod::Put => "PUT",
        HttpMethod::Patch => "PATCH",
        HttpMethod::Delete => "DELETE",
        HttpMethod::Options => "OPTIONS",
        HttpMethod::Other(name) => name,
    }
}

/// The names of `headers` (their values can be credentials).
fn header_names(headers: &[KeyValue]) -> Vec<&str> {
    headers.iter().map(|header| header.name.as_str()).collect()
}

/// `error` with the origin of `url` before its reason, where the case carries one
/// (`connection-failed`, `tls`, `other`).
fn with_origin(error: TransportError, url: &Url) -> TransportError {
    let Some(origin) = Origin::of(url) else {
        return error;
    };
    match error {
        TransportError::ConnectionFailed(reason) => {
            TransportError::ConnectionFailed(format!("{origin}: {reason}"))
        }
        TransportError::Tls(reason) => TransportError::Tls(format!("{origin}: {reason}")),
        TransportError::Other(reason) => TransportError::Other(format!("{origin}: {reason}")),
        other => other,
    }
}

/// Maps ureq's error to the WIT case. ureq's messages name hosts and causes, never request
/// headers or bodies, so they carry no secrets.
fn transport_error(error: ureq::Error) -> TransportError {
    match error {
        ureq::Error::Timeout(_) => TransportError::Timeout,
        ureq::Error::BodyExceedsLimit(cap) => TransportError::ResponseTooLarge(cap),
        ureq::Error::HostNotFound => TransportError::ConnectionFailed("host not found".into()),
        ureq::Error::ConnectionFailed => {
            TransportError::ConnectionFailed("connection failed".into())
        }
        ureq::Error::Io(io) => match io.kind() {
            std::io::ErrorKind::TimedOut => TransportError::Timeout,
            _ => TransportError::ConnectionFailed(io.to_string()),
        },
        ureq::Error::Tls(reason) => TransportError::Tls(reason.to_owned()),
        ureq::Error::Rustls(error) => TransportError::Tls(error.to_string()),
        ureq::Error::BadUri(reason) => TransportError::InvalidRequest(reason),
        ureq::Error::Http(error) => TransportError::InvalidRequest(error.to_string()),
        ureq::Error::LargeResponseHeader(_, _) => {
            TransportError::Other("response headers over the host's limit".into())
        }
        ureq::Error::Protocol(ureq_proto::Error::HttpParseTooManyHeaders) => TransportError::Other(
            format!("response has more than {MAX_RESPONSE_HEADERS} headers"),
        ),
        other => TransportError::Other(other.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn allow_list_matches_scheme_host_and_port() {
        let list =
            AllowList::from_urls(["https://auth.example.com/token?x=1", "http://127.0.0.1:9/t"]);
        let permits = |url: &str| list.permits(&Url::parse(url).unwrap());
        assert!(permits("https://auth.example.com/other"));
        assert!(permits("https://AUTH.example.com:443/x"));
        assert!(permits("http://127.0.0.1:9/anything"));
        assert!(!permits("http://auth.example.com/token"));
        assert!(!permits("https://auth.example.com:8443/token"));
        assert!(!permits("https://evil.example.com/token"));
        assert!(!permits("http://127.0.0.1:10/t"));
    }

    #[test]
    fn a_refusal_names_the_differing_part_and_the_allowed_origins() {
        let list = AllowList::from_urls(["https://auth.example.com/token", "http://127.0.0.1:9/t"]);
        let refusal = |url: &str| list.refusal(&Url::parse(url).unwrap());
        assert_eq!(refusal("https://auth.example.com/x"), None);
        let allowed = "allowed origins: http://127.0.0.1:9, https://auth.example.com:443";
        assert_eq!(
            refusal("http://127.0.0.1:10/t").unwrap(),
            format!(
                "the origin http://127.0.0.1:10 is not on the allow-list: its port differs \
                 from the nearest allowed origin, http://127.0.0.1:9 (10, not 9); {allowed}"
            )
        );
        assert!(
            refusal("http://auth.example.com/t")
                .unwrap()
                .contains("its scheme and port differ from the nearest allowed origin, https://auth.example.com:443 (http, not https; 80, not 443)")
        );
        assert!(refusal("https://evil.example.com/t").unwrap().contains(
            "its host differs from the nearest allowed origin, https://auth.example.com:443"
        ));
        assert!(
            AllowList::default()
                .refusal(&Url::parse("https://a.example/").unwrap())
                .unwrap()
                .ends_with("which is empty")
        );
    }
}

//! The interactive half of the authorization-code flow: a loopback redirect listener
//! (RFC 8252 §7.3) that waits for the browser, hands the callback to the component, and
//! answers the browser with a small page.
//!
//! The listener stays up for the real callback: a request for another path or method, a
//! malformed or oversized request, a callback with an unknown or forged `state`, a repeated
//! parameter, a missing code or another issuer's `iss` is answered with an error page and
//! ignored, and no token request is made for it.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{IpAddr, TcpListener, TcpStream};
use std::sync::Arc;
use std::time::{Duration, Instant};

use url::Url;

use crate::retry::{self, RetryNotice, RetryPolicy};
use crate::runtime::{CallError, Runtime, Session};
use crate::signer::Signer;
use crate::types::{CallbackError, ConnectionConfig, Error, TokenSet};
use crate::{HttpTransport, Limits, default_allow_list};

/// The redirect URI used when the configuration names none.
pub const DEFAULT_REDIRECT_URI: &str = "http://127.0.0.1:8765/callback";

/// Longest time one client may take to send its request head.
const HEAD_TIMEOUT: Duration = Duration::from_secs(5);

/// Largest request head the listener reads from the browser.
const MAX_REQUEST_HEAD: u64 = 16 * 1024;

/// Why `connect` did not produce tokens.
#[derive(Debug)]
pub enum ConnectError {
    /// The redirect URI is not an `http` URL on a loopback address or `localhost`.
    RedirectUri(String),
    /// The listener could not be bound.
    Listen(String, std::io::Error),
    /// No valid callback arrived in time.
    Timeout(Duration),
    /// The component refused (denied consent, bad callback, token error, configuration).
    Call(CallError),
}

impl std::fmt::Display for ConnectError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::RedirectUri(uri) => write!(
                f,
                "redirect URI `{uri}` must be http on 127.0.0.1, [::1] or localhost to be received here"
            ),
            Self::Listen(address, error) => write!(f, "cannot listen on {address}: {error}"),
            Self::Timeout(after) => write!(
                f,
                "no authorization arrived within {} s; run connect again",
                after.as_secs()
            ),
            Self::Call(error) => error.fmt(f),
        }
    }
}

impl std::error::Error for ConnectError {}

/// What the caller shows the user while the flow runs.
pub trait ConnectUi {
    /// The authorize URL is ready: open it in a browser or show it.
    fn authorize_url(&mut self, url: &str);
    /// Still waiting, `elapsed` since the URL was shown (called about ten times a second).
    fn waiting(&mut self, elapsed: Duration, timeout: Duration);
    /// A request reached the listener and was ignored (reason given).
    fn ignored(&mut self, reason: &str);
    /// The code exchange failed in a way the server says to retry; waiting before the next
    /// attempt. By default, a log line.
    fn retrying(&mut self, notice: &RetryNotice) {
        tracing::warn!(%notice, "retrying the code exchange");
    }
}

/// What the flow's instances need besides the configuration: the client's signer and the
/// retry policy of the code exchange.
#[derive(Clone)]
pub struct FlowOptions {
    /// Signs `private_key_jwt` assertions.
    pub signer: Arc<dyn Signer>,
    /// Retries of the code exchange (a 429 or 503 does not consume the code).
    pub retry: RetryPolicy,
}

impl Default for FlowOptions {
    fn default() -> Self {
        Self {
            signer: Arc::new(crate::signer::NoSigner),
            retry: RetryPolicy::default(),
        }
    }
}

/// A fresh instance for `config`'s endpoints, signing with `signer`.
pub fn instance(
    runtime: &Runtime,
    config: &ConnectionConfig,
    signer: &Arc<dyn Signer>,
) -> Result<Session, CallError> {
    let transport = HttpTransport::new(default_allow_list(&config.profile), Limits::default());
    let mut session = runtime.instantiate(transport)?;
    session.set_signer(Arc::clone(signer));
    Ok(session)
}

/// Checks everything a sign-in with `config` needs (`authorization-code.check`): call it
/// before binding a listener or opening a browser.
pub fn check(
    runtime: &Runtime,
    config: &ConnectionConfig,
    signer: &Arc<dyn Signer>,
) -> Result<(), CallError> {
    instance(runtime, config, signer)?.check(config)
}

/// A bound loopback listener and the redirect URI it serves.
pub struct RedirectListener {
    listener: TcpListener,
    redirect_uri: Url,
}

impl RedirectListener {
    /// Binds the listener for `redirect_uri`. Port 0 picks a free port; `redirect_uri()` then
    /// gives the URI with the real port.
    pub fn bind(redirect_uri: &str) -> Result<Self, ConnectError> {
        let refuse = || ConnectError::RedirectUri(redirect_uri.to_owned());
        let mut url = Url::parse(redirect_uri).map_err(|_| refuse())?;
        let host = match url.host() {
            Some(url::Host::Ipv4(ip)) if ip.is_loopback() => IpAddr::V4(ip),
            Some(url::Host::Ipv6(ip)) if ip.is_loopback() => IpAddr::V6(ip),
            Some(url::Host::Domain("localhost")) => IpAddr::from([127, 0, 0, 1]),
            _ => return Err(refuse()),
        };
        if url.scheme() != "http" || url.fragment().is_some() {
            return Err(refuse());
        }
        let port = url.port_or_known_default().unwrap_or(80);
        let address = std::net::SocketAddr::new(host, port);
        let listener = TcpListener::bind(address)
            .map_err(|error| ConnectError::Listen(address.to_string(), error))?;
        let bound = listener
            .local_addr()
            .map_err(|error| ConnectError::Listen(address.to_string(), error))?;
        if port == 0 {
            url.set_port(Some(bound.port())).map_err(|()| refuse())?;
        }
        listener
            .set_nonblocking(true)
            .map_err(|error| ConnectError::Listen(address.to_string(), error))?;
        Ok(Self {
            listener,
            redirect_uri: url,
        })
    }

    /// The redirect URI, with the bound port.
    pub fn redirect_uri(&self) -> &str {
        self.redirect_uri.as_str()
    }
}

/// Runs the authorization-code flow through the browser: `begin`, show the URL, wait for the
/// callback on `listener`, `complete` (the code exchange retried by `options.retry` when the
/// server says so, with the same code). `config.redirect_uri` is set to the listener's URI.
pub fn authorize_in_browser(
    runtime: &Runtime,
    config: &mut ConnectionConfig,
    listener: &RedirectListener,
    timeout: Duration,
    options: &FlowOptions,
    ui: &mut dyn ConnectUi,
) -> Result<TokenSet, ConnectError> {
    config.redirect_uri = Some(listener.redirect_uri().to_owned());
    let config = &*config;
    let signer = &options.signer;
    let request = instance(runtime, config, signer)
        .and_then(|mut session| session.begin(config))
        .map_err(ConnectError::Call)?;
    ui.authorize_url(&request.url);

    let started = Instant::now();
    loop {
        let elapsed = started.elapsed();
        if elapsed >= timeout {
            return Err(ConnectError::Timeout(timeout));
        }
        let stream = match listener.listener.accept() {
            Ok((stream, _)) => stream,
            Err(error) if error.kind() == std::io::ErrorKind::WouldBlock => {
                ui.waiting(elapsed, timeout);
                std::thread::sleep(Duration::from_millis(100));
                continue;
            }
            Err(error) => {
                ui.ignored(&format!("accept failed: {error}"));
                std::thread::sleep(Duration::from_millis(100));
                continue;
            }
        };
        // A slow or idle client gets at most this long, and never past the flow's deadline.
        let head_deadline = Instant::now() + HEAD_TIMEOUT.min(timeout.saturating_sub(elapsed));
        let Some((mut stream, target)) =
            read_request(stream, &listener.redirect_uri, head_deadline)
        else {
            continue;
        };
        let callback_url = match target {
            Target::Callback(url) => url,
            Target::Other(status, reason) => {
                tracing::debug!(status, reason, "listener: not the callback");
                respond(&mut stream, status, "Not the sign-in callback", reason);
                ui.ignored(reason);
                continue;
            }
        };
        // The component checks `state` first (in constant time) and sends no token request
        // for a callback that does not belong to this flow; keep listening for the real one.
        // A 429 or 503 does not consume the code: the same callback is completed again.
        let result = retry::call(
            &options.retry,
            None,
            &mut |notice| ui.retrying(notice),
            || instance(runtime, config, signer)?.complete(config, &request.pending, &callback_url),
        );
        // Any refused callback (forged, replayed, malformed, from another issuer) is answered
        // and ignored: the real one can still arrive. Only an expired flow ends here.
        if let Err(CallError::Connector(Error::Callback(error))) = &result
            && *error != CallbackError::Expired
        {
            // The kind only: the callback URL carries an authorization code.
            tracing::info!(
                reason = %crate::describe::callback_error(error),
                "listener: refused a callback; still waiting"
            );
            respond(
                &mut stream,
                400,
                "Unknown sign-in",
                "This link does not belong to the sign-in in progress.",
            );
            ui.ignored("a callback that does not belong to this sign-in");
            continue;
        }
        tracing::debug!(completed = result.is_ok(), "listener: callback handled");
        match &result {
            Ok(_) => respond(
                &mut stream,
                200,
                "Connected",
                "Authorization complete. You can close this tab and return to the terminal.",
            ),
            Err(error) => respond(
                &mut stream,
                400,
                "Authorization failed",
                &format!("{error}. You can close this tab; the terminal has the details."),
            ),
        }
        return result.map_err(ConnectError::Call);
    }
}

enum Target {
    /// A GET for the redirect path: the full callback URL.
    Callback(String),
    /// Anything else: the status to answer and why.
    Other(u16, &'static str),
}

/// Reads one request head (bounded in size and time) and classifies it.
fn read_request(
    stream: TcpStream,
    redirect_uri: &Url,
    deadline: Instant,
) -> Option<(TcpStream, Target)> {
    stream.set_nonblocking(false).ok()?;
    // Each read waits at most until the deadline; a client trickling bytes runs out of time.
    let until_deadline = || {
        let left = deadline.saturating_duration_since(Instant::now());
        (!left.is_zero()).then_some(left)
    };
    stream.set_read_timeout(Some(until_deadline()?)).ok()?;
    let mut reader = BufReader::new(stream.try_clone().ok()?.take(MAX_REQUEST_HEAD));
    let mut request_line = String::new();
    reader.read_line(&mut request_line).ok()?;
    loop {
        stream.set_read_timeout(Some(until_deadline()?)).ok()?;
        let mut header = String::new();
        match reader.read_line(&mut header) {
            Ok(0) => break,
            Ok(_) if header == "\r\n" || header == "\n" => break,
            Ok(_) => {}
            Err(_) => break,
        }
    }
    let mut parts = request_line.split_whitespace();
    let (method, target) = (
        parts.next().unwrap_or_default(),
        parts.next().unwrap_or_default(),
    );
    if method != "GET" {
        return Some((stream, Target::Other(405, "a request that is not a GET")));
    }
    let path = target.split('?').next().unwrap_or_default();
    if path != redirect_uri.path() {
        return Some((stream, Target::Other(404, "a request for another path")));
    }
    let origin = redirect_uri.origin().ascii_serialization();
    Some((stream, Target::Callback(format!("{origin}{target}"))))
}

fn respond(stream: &mut TcpStream, status: u16, title: &str, message: &str) {
    let escape = |text: &str| {
        text.replace('&', "&amp;")
            .replace('<', "&lt;")
            .replace('>', "&gt;")
    };
    let body = format!(
        "<!doctype html><html><head><meta charset=\"utf-8\"><title>{title}</title></head>\
         <body style=\"font-family:sans-serif;margin:4em auto;max-width:32em\">\
         <h1>{title}</h1><p>{}</p></body></html>",
        escape(message)
    );
    let head = format!(
        "HTTP/1.1 {status} {title}\r\nContent-Type: text/html; charset=utf-8\r\n\
         Content-Length: {}\r\nCache-Control: no-store\r\nReferrer-Policy: no-referrer\r\n\
         Connection: close\r\n\r\n",
        body.len()
    );
    let _ = stream.write_all(head.as_bytes());
    let _ = stream.write_all(body.as_bytes());
}

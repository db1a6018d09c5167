//! The interactive half of the authorization-code flow: a loopback redirect listener
//! (RFC 8252 §7.3) that waits for the browser, hands the callback to the component, and
//! answers the browser with a small page.
//!
//! The listener stays up for the real callback: a request for another path or method, a
//! malformed or oversized request, a callback with an unknown or forged `state`, a repeated
//! parameter, a missing code or another issuer's `iss` is answered with an error page and
//! ignored, and no token request is made for it.
//!
//! Any local process can connect to the listener, so no connection may hold it up. Each
//! accepted connection's request head is read on its own thread, within a size cap and a 5 s
//! deadline; at most 64 are read at once, and a connection beyond that closes the oldest one
//! still being read (a browser sends its request as soon as it connects, so the oldest is the
//! likeliest to be idle). The parsed heads come back over a channel to the flow's loop, which
//! alone calls the component and answers. A client that closes before sending a request line
//! is dropped without an answer.
//!
//! A `localhost` redirect URI is served on both `127.0.0.1` and `[::1]`, on the same port:
//! the browser may resolve `localhost` to either, and a loopback address left unbound could
//! be taken by another process, which would then receive the authorization code. If another
//! process already holds `[::1]` on that port, binding fails. Only on a machine without an
//! IPv6 loopback is `127.0.0.1` bound alone (no process can listen on `::1` there either).
//! An IP literal such as `http://127.0.0.1:PORT/callback` (RFC 8252 §8.3) avoids the
//! question; `localhost` is accepted for providers that registered it.

use std::collections::VecDeque;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::mpsc::{self, Receiver, Sender};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use url::Url;

use crate::retry::{self, RetryNotice, RetryPolicy};
use crate::runtime::{CallError, Runtime, Session};
use crate::signer::Signer;
use crate::types::{CallbackError, ConnectionConfig, Error, TokenSet};
use crate::{HttpTransport, Limits, connection_allow_list};

/// The redirect URI used when the configuration names none.
pub const DEFAULT_REDIRECT_URI: &str = "http://127.0.0.1:8765/callback";

/// Longest time one client may take to send its request head.
const HEAD_TIMEOUT: Duration = Duration::from_secs(5);

/// Most request heads read at once; a connection beyond this closes the oldest being read.
const MAX_HEAD_READERS: usize = 64;

/// How often the flow's loop looks for new connections and reports that it is waiting.
const TICK: Duration = Duration::from_millis(100);

/// Tries at finding a port free on both loopback addresses for `localhost` on port 0.
const DUAL_BIND_ATTEMPTS: usize = 16;

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
    let transport = HttpTransport::new(connection_allow_list(config), Limits::default());
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
    /// One socket, or for `localhost` one on each loopback address (same port).
    listeners: Vec<TcpListener>,
    redirect_uri: Url,
}

impl RedirectListener {
    /// Binds the listener for `redirect_uri`. Port 0 picks a free port; `redirect_uri()` then
    /// gives the URI with the real port.
    ///
    /// A `localhost` URI binds both `127.0.0.1` and `[::1]` on one port (see the module
    /// docs): `ConnectError::Listen` names `[::1]:PORT` if another process holds it. Where the
    /// machine has no IPv6 loopback, only `127.0.0.1` is bound.
    pub fn bind(redirect_uri: &str) -> Result<Self, ConnectError> {
        let refuse = || ConnectError::RedirectUri(redirect_uri.to_owned());
        let mut url = Url::parse(redirect_uri).map_err(|_| refuse())?;
        let host = match url.host() {
            Some(url::Host::Ipv4(ip)) if ip.is_loopback() => Some(IpAddr::V4(ip)),
            Some(url::Host::Ipv6(ip)) if ip.is_loopback() => Some(IpAddr::V6(ip)),
            Some(url::Host::Domain("localhost")) => None,
            _ => return Err(refuse()),
        };
        if url.scheme() != "http" || url.fragment().is_some() {
            return Err(refuse());
        }
        let port = url.port_or_known_default().unwrap_or(80);
        let listeners = match host {
            Some(ip) => vec![listen(SocketAddr::new(ip, port))?],
            None => bind_localhost(port)?,
        };
        let bound = listeners[0]
            .local_addr()
            .map_err(|error| ConnectError::Listen(format!("port {port}"), error))?;
        if port == 0 {
            url.set_port(Some(bound.port())).map_err(|()| refuse())?;
        }
        Ok(Self {
            listeners,
            redirect_uri: url,
        })
    }

    /// The redirect URI, with the bound port.
    pub fn redirect_uri(&self) -> &str {
        self.redirect_uri.as_str()
    }
}

/// A non-blocking listener on `address`.
fn listen(address: SocketAddr) -> Result<TcpListener, ConnectError> {
    let fail = |error| ConnectError::Listen(address.to_string(), error);
    let listener = TcpListener::bind(address).map_err(fail)?;
    listener.set_nonblocking(true).map_err(fail)?;
    Ok(listener)
}

/// Listeners on `127.0.0.1:port` and `[::1]:port` (the same port, picked when 0), or on
/// `127.0.0.1` alone when the machine has no IPv6 loopback.
fn bind_localhost(port: u16) -> Result<Vec<TcpListener>, ConnectError> {
    let mut attempts = 0;
    loop {
        attempts += 1;
        let v4 = listen(SocketAddr::from((Ipv4Addr::LOCALHOST, port)))?;
        let bound = v4
            .local_addr()
            .map_err(|error| ConnectError::Listen(format!("127.0.0.1:{port}"), error))?
            .port();
        match listen(SocketAddr::from((Ipv6Addr::LOCALHOST, bound))) {
            Ok(v6) => return Ok(vec![v4, v6]),
            // A port picked for us may be taken on ::1 by chance: pick another.
            Err(ConnectError::Listen(_, error))
                if error.kind() == std::io::ErrorKind::AddrInUse
                    && port == 0
                    && attempts < DUAL_BIND_ATTEMPTS => {}
            // Someone else holds ::1 on the port: they could receive the callback.
            Err(ConnectError::Listen(address, error))
                if error.kind() == std::io::ErrorKind::AddrInUse =>
            {
                return Err(ConnectError::Listen(address, error));
            }
            // No IPv6 loopback here (address family unsupported or ::1 not configured), so
            // no other process can listen on it either.
            Err(error) => {
                tracing::warn!(%error, "localhost redirect: listening on 127.0.0.1 only");
                return Ok(vec![v4]);
            }
        }
    }
}

/// Runs the authorization-code flow through the browser: `begin`, show the URL, wait for the
/// callback on `listener`, `complete` (the code exchange retried by `options.retry` when the
/// server says so, with the same code). `config.redirect_uri` is set to the listener's URI.
///
/// Connections are accepted and their request heads read concurrently (see the module
/// docs), so idle or slow clients cannot keep the callback out until `timeout`.
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
    // The URL's query names only: its values include the `state` and the PKCE challenge.
    tracing::info!(
        authorize_url = %crate::logging::loggable_url(&request.url),
        redirect_uri = %listener.redirect_uri(),
        "authorization: authorize URL ready; waiting for the callback"
    );
    ui.authorize_url(&request.url);

    let started = Instant::now();
    let (mut readers, heads) = HeadReaders::new(&listener.redirect_uri);
    let mut next_tick = started;
    loop {
        let elapsed = started.elapsed();
        if elapsed >= timeout {
            return Err(ConnectError::Timeout(timeout));
        }
        if Instant::now() >= next_tick {
            ui.waiting(elapsed, timeout);
            next_tick = Instant::now() + TICK;
        }
        // Take a waiting connection on each socket before looking at heads: a burst of idle
        // connections is met by closing the oldest, not left queueing ahead of the browser.
        let mut accepted = false;
        for socket in &listener.listeners {
            match socket.accept() {
                Ok((stream, _)) => {
                    // A slow or idle client gets at most this long, and never past the
                    // flow's deadline.
                    let left = timeout.saturating_sub(started.elapsed());
                    readers.start(stream, Instant::now() + HEAD_TIMEOUT.min(left));
                    accepted = true;
                }
                Err(error) if error.kind() == std::io::ErrorKind::WouldBlock => {}
                Err(error) => ui.ignored(&format!("accept failed: {error}")),
            }
        }
        let wait = if accepted {
            Duration::ZERO
        } else {
            next_tick
                .saturating_duration_since(Instant::now())
                .min(timeout.saturating_sub(started.elapsed()))
        };
        // Nothing yet (the channel cannot disconnect: `readers` holds a sender).
        let Ok((id, head)) = heads.recv_timeout(wait) else {
            continue;
        };
        readers.finished(id);
        // An idle or trickling client ran out of time, or was closed to make room.
        let Some((mut stream, target)) = head else {
            continue;
        };
        let callback_url = match target {
            Target::Callback(url) => {
                // Its parameters' names only: their values are the code and the state.
                tracing::info!(
                    callback = %crate::logging::loggable_url(&url),
                    "authorization: callback received"
                );
                url
            }
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
        // Retries end with the flow's deadline, like the wait for the callback.
        let result = retry::call(
            &options.retry,
            Some(started + timeout),
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

/// A reader's id and what it read: the connection and its classified request head, or
/// nothing when the client sent no complete head in time or was closed to make room.
type Head = (u64, Option<(TcpStream, Target)>);

/// The threads reading request heads, one per accepted connection. Dropping this closes
/// every connection still being read and waits for the threads to end.
struct HeadReaders {
    redirect_uri: Arc<Url>,
    sender: Sender<Head>,
    next_id: u64,
    /// Reading, oldest first.
    reading: VecDeque<HeadReader>,
    /// Closed to make room; ending.
    closed: Vec<HeadReader>,
}

struct HeadReader {
    id: u64,
    /// The same socket as the thread's: shutting it down ends the thread's read at once.
    socket: TcpStream,
    thread: JoinHandle<()>,
}

impl HeadReaders {
    fn new(redirect_uri: &Url) -> (Self, Receiver<Head>) {
        let (sender, receiver) = mpsc::channel();
        let readers = Self {
            redirect_uri: Arc::new(redirect_uri.clone()),
            sender,
            next_id: 0,
            reading: VecDeque::new(),
            closed: Vec::new(),
        };
        (readers, receiver)
    }

    /// Reads `stream`'s request head on a new thread, closing the oldest connection being
    /// read if there are already `MAX_HEAD_READERS`.
    fn start(&mut self, stream: TcpStream, deadline: Instant) {
        if self.reading.len() >= MAX_HEAD_READERS
            && let Some(oldest) = self.reading.pop_front()
        {
            tracing::debug!("listener: too many connections; closing the oldest");
            let _ = oldest.socket.shutdown(Shutdown::Both);
            self.closed.push(oldest);
        }
        let Ok(socket) = stream.try_clone() else {
            return;
        };
        let id = self.next_id;
        self.next_id += 1;
        let (sender, redirect_uri) = (self.sender.clone(), Arc::clone(&self.redirect_uri));
        let spawned = std::thread::Builder::new()
            .name("callback-head".into())
            // Reading a head needs little stack; 64 readers should not reserve 128 MiB.
            .stack_size(256 * 1024)
            .spawn(move || {
                let head = read_request(stream, &redirect_uri, deadline);
                // The flow may be over already; then nobody needs the head.
                let _ = sender.send((id, head));
            });
        match spawned {
            Ok(thread) => self.reading.push_back(HeadReader { id, socket, thread }),
            // No thread to read it (the process is at its limit): drop the connection.
            Err(error) => tracing::warn!(%error, "listener: cannot read a connection"),
        }
    }

    /// The reader `id` has sent its head: let its thread end.
    fn finished(&mut self, id: u64) {
        let reader = if let Some(index) = self.reading.iter().position(|r| r.id == id) {
            self.reading.remove(index)
        } else {
            let index = self.closed.iter().position(|r| r.id == id);
            index.map(|index| self.closed.swap_remove(index))
        };
        if let Some(reader) = reader {
            let _ = reader.thread.join();
        }
    }
}

impl Drop for HeadReaders {
    fn drop(&mut self) {
        let readers: Vec<_> = self
            .reading
            .drain(..)
            .chain(self.closed.drain(..))
            .collect();
        for reader in &readers {
            let _ = reader.socket.shutdown(Shutdown::Both);
        }
        for reader in readers {
            let _ = reader.thread.join();
        }
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
    // The answer is small, but a client that never reads must not hold up the flow's loop.
    stream.set_write_timeout(Some(HEAD_TIMEOUT)).ok()?;
    // Each read waits at most until the deadline; a client trickling bytes runs out of time.
    let until_deadline = || {
        let left = deadline.saturating_duration_since(Instant::now());
        (!left.is_zero()).then_some(left)
    };
    stream.set_read_timeout(Some(until_deadline()?)).ok()?;
    let mut reader = BufReader::new((&stream).take(MAX_REQUEST_HEAD));
    let mut request_line = String::new();
    reader.read_line(&mut request_line).ok()?;
    // The client closed (or was closed to make room) before sending its request line; a
    // line cut by the size cap is still answered.
    if !request_line.ends_with('\n') && reader.get_ref().limit() > 0 {
        return None;
    }
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
    drop(reader);
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

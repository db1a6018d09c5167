//! `connector-host serve`: the multi-tenant connection service, a JSON API over HTTP on
//! axum and tokio (one file per resource; the OpenAPI description is `docs/openapi.json`).
//!
//! Thin over the service layer ([`crate::connections`]): refreshing under the
//! per-connection lock, retries, calls and storage are the CLI's, so both front ends behave
//! the same. A tenant's connection `NAME` is the store's connection `t<tenant id>:NAME`.
//!
//! Component calls and the store are blocking: each request's work runs on a pool of store
//! threads ([`State::blocking`]), each with its own open store ([`Connections`]): its own
//! SQLite connection, or its own PostgreSQL session (so the pool's size bounds a replica's
//! sessions). The async side only routes, parses and waits. A token refresh or an API call
//! waits on the network, so the pool is larger than the machine's cores
//! ([`store_threads`], `--store-threads`). Refreshes stay single-flight across threads and
//! processes through the store's lock files, and across a fleet of replicas on one
//! PostgreSQL database through its advisory locks ([`crate::connections`]); connect
//! sessions, pending flows included, live in the database, so any replica completes a
//! callback. The one [`Runtime`] (engine and precompiled component) is shared by the whole
//! process.
//!
//! Two background threads, each with its own open store, run beside the store threads: the
//! keep-alive sweep, which refreshes connections before their refresh tokens idle out
//! ([`keepalive`]), and the notifier, which tells each tenant's webhook when a connection's
//! status changes ([`webhooks`]).

pub mod auth;
pub mod connect;
pub mod connections;
pub mod errors;
pub mod integrations;
pub mod keepalive;
pub mod pages;
pub mod providers;
pub mod tenants;
pub mod token_cache;
pub mod webhooks;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::DefaultBodyLimit;

use crate::connections::Connections;
use crate::runtime::Runtime;
use errors::{ApiError, Code};

/// The cap on a request body.
pub const BODY_LIMIT: usize = 1 << 20;

/// How long a connect session's URL can be used, by default.
pub const DEFAULT_SESSION_TTL: Duration = Duration::from_secs(600);

/// How the service runs. `Debug` shows the store without a PostgreSQL URL's password.
#[derive(Clone)]
pub struct ServeOptions {
    /// The address to listen on (port 0 picks a free one).
    pub listen: SocketAddr,
    /// The URL the service is reached at from outside (scheme, host, port, no path), for
    /// the connect URLs and the one callback (`<public-url>/oauth/callback`); `None`: the
    /// bound address, `http://<ip>:<port>`.
    pub public_url: Option<String>,
    /// The store (connections and the service's tables): a file, or a PostgreSQL URL
    /// ([`crate::store::database_url`]).
    pub store: PathBuf,
    /// Origins (besides the public URL's) that a connect session's `return_to` may be on.
    pub return_origins: Vec<String>,
    /// How long a connect session's URL can be used.
    pub session_ttl: Duration,
    /// The key that seals the store's secrets and tokens and the service's own
    /// ([`crate::seal`]); `None`: written in clear (`--no-encryption`, for development).
    pub key: Option<crate::seal::SealingKey>,
    /// How often the keep-alive sweep and the webhook notifier look at every connection
    /// ([`keepalive`], [`webhooks`]).
    pub keep_alive_interval: Duration,
    /// Refresh connections whose tokens were not written for this long ([`keepalive`]);
    /// `None`: no keep-alive refreshes.
    pub keep_alive_after: Option<Duration>,
    /// The origins webhooks may be sent to; empty: any `https` URL ([`webhooks`]).
    pub webhook_origins: Vec<String>,
    /// How many store threads serve requests ([`store_threads`] by default): with a
    /// PostgreSQL store, the replica's pool of database sessions.
    pub store_threads: usize,
}

impl std::fmt::Debug for ServeOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServeOptions")
            .field("listen", &self.listen)
            .field("public_url", &self.public_url)
            .field("store", &crate::store::shown(&self.store))
            .field("return_origins", &self.return_origins)
            .field("session_ttl", &self.session_ttl)
            .field("key", &self.key)
            .field("keep_alive_interval", &self.keep_alive_interval)
            .field("keep_alive_after", &self.keep_alive_after)
            .field("webhook_origins", &self.webhook_origins)
            .field("store_threads", &self.store_threads)
            .finish()
    }
}

/// Why the service could not start.
#[derive(Debug)]
pub enum ServeError {
    /// The store could not be opened or its service tables prepared.
    Store(crate::store::StoreError),
    /// The listen address could not be bound.
    Listen(SocketAddr, std::io::Error),
    /// The public URL or a return origin is not an `http` or `https` origin.
    BadUrl(String),
    /// The async runtime could not start, or serving failed.
    Io(std::io::Error),
}

impl std::fmt::Display for ServeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Store(error) => error.fmt(f),
            Self::Listen(address, error) => write!(f, "cannot listen on {address}: {error}"),
            Self::BadUrl(url) => write!(
                f,
                "`{url}` is not an http or https origin (scheme, host and port, with no path, \
                 query or fragment)"
            ),
            Self::Io(error) => error.fmt(f),
        }
    }
}

impl std::error::Error for ServeError {}

/// The shared state of every request.
pub struct State {
    runtime: &'static Runtime,
    /// The public URL, without a trailing slash.
    pub public_url: String,
    /// The origins `return_to` may be on (the public URL's first).
    pub return_origins: Vec<url::Origin>,
    /// How long a connect session's URL can be used.
    pub session_ttl: Duration,
    /// The origins webhooks may be sent to; empty: any `https` URL.
    pub webhook_origins: Vec<url::Origin>,
    /// Tells the webhook notifier of status changes.
    pub changes: webhooks::Notifier,
    /// Valid tokens `/token` handed out recently, while the database is unchanged.
    pub tokens: token_cache::TokenCache,
    /// A connection kept only to read the database's `data_version` ([`State::data_version`]).
    /// `None` for a PostgreSQL store ([`State::data_version`]).
    version_probe: Option<std::sync::Mutex<crate::store::Store>>,
    /// The store threads' queue.
    jobs: std::sync::mpsc::Sender<Job>,
    /// API keys found valid recently, on a PostgreSQL store ([`State::authenticate`]).
    recent_keys: RecentKeys,
    /// Stores for checking API keys where the request is handled ([`State::authenticate`]),
    /// opened on demand and kept.
    key_checkers: std::sync::Mutex<Vec<crate::store::Store>>,
    /// The store file, and the key it is sealed with.
    store: (PathBuf, Option<crate::seal::SealingKey>),
}

/// How long a replica on a PostgreSQL store takes an API key it found valid as valid
/// without asking the database again: a key replaced (`tenants rotate-key`) may still be
/// taken for this long by replicas that checked it just before.
pub const RECENT_KEY_TTL: Duration = Duration::from_secs(1);

/// API keys found valid in the last [`RECENT_KEY_TTL`], by their SHA-256 (the keys
/// themselves are not kept), with their tenant. Only valid keys are kept: an invalid one is
/// looked up every time.
#[derive(Default)]
pub struct RecentKeys(
    std::sync::Mutex<std::collections::HashMap<[u8; 32], (i64, std::time::Instant)>>,
);

impl RecentKeys {
    /// How many keys are kept at most; beyond it, all are forgotten.
    const CAPACITY: usize = 4_096;

    /// What a key is kept under.
    fn digest(key: &str) -> [u8; 32] {
        let digest = ring::digest::digest(&ring::digest::SHA256, key.as_bytes());
        digest.as_ref().try_into().expect("SHA-256 is 32 bytes")
    }

    /// The tenant of the key with `digest`, if it was found valid less than
    /// [`RECENT_KEY_TTL`] before `now`.
    fn get(&self, digest: &[u8; 32], now: std::time::Instant) -> Option<i64> {
        let keys = self
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let &(tenant, checked_at) = keys.get(digest)?;
        (now.saturating_duration_since(checked_at) < RECENT_KEY_TTL).then_some(tenant)
    }

    /// Keeps that the key with `digest` was `tenant`'s when checked at `checked_at` (when
    /// the check began: the time it took counts against the key's time).
    fn put(&self, digest: [u8; 32], tenant: i64, checked_at: std::time::Instant) {
        let mut keys = self
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if keys.len() >= Self::CAPACITY {
            keys.clear();
        }
        keys.insert(digest, (tenant, checked_at));
    }
}

/// The shared state, as handlers receive it.
pub type AppState = Arc<State>;

/// The environment that stored secret references are resolved from.
pub(super) fn process_env(name: &str) -> Option<String> {
    std::env::var(name).ok()
}

/// A request's work on the store thread.
type Job = Box<dyn FnOnce(&Connections<'static>) + Send>;

impl State {
    /// The one callback URL: `<public-url>/oauth/callback`.
    pub fn callback_url(&self) -> String {
        format!("{}/oauth/callback", self.public_url)
    }

    /// The tenant whose API key `key` is (`None`: no tenant's). With SQLite, checked in
    /// place: one indexed read and a hash, far cheaper than handing the request to a store
    /// thread and back, which every request would otherwise pay twice. The PostgreSQL
    /// client blocks on a runtime of its own, which cannot run on the service's async
    /// threads: there the check goes to a store thread, whose sessions are the replica's
    /// bounded pool, and a key found valid is taken as valid for [`RECENT_KEY_TTL`]
    /// without asking again ([`RecentKeys`]).
    pub async fn authenticate(&self, key: &str) -> Result<Option<i64>, ApiError> {
        if crate::store::database_url(&self.store.0).is_some() {
            let digest = RecentKeys::digest(key);
            if let Some(tenant) = self.recent_keys.get(&digest, std::time::Instant::now()) {
                return Ok(Some(tenant));
            }
            let key = key.to_owned();
            let checked_at = std::time::Instant::now();
            let tenant = self
                .blocking(move |connections| Ok(tenants::authenticate(connections.store(), &key)?))
                .await?;
            if let Some(tenant) = tenant {
                self.recent_keys.put(digest, tenant, checked_at);
            }
            return Ok(tenant);
        }
        let taken = self
            .key_checkers
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .pop();
        let store = match taken {
            Some(store) => store,
            // Rare: the pool grows to the number of requests checked at once, then stays.
            // Opening blocks this worker for about a millisecond, once per store.
            None => crate::store::Store::open_with_key(&self.store.0, self.store.1.clone())?,
        };
        let tenant = tenants::authenticate(&store, key)?;
        self.key_checkers
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .push(store);
        Ok(tenant)
    }

    /// The SQLite database's `data_version` as the probe connection sees it: it changes
    /// whenever any other connection commits (this process's store threads, or another
    /// process such as the CLI), and the probe itself never writes. One read of the WAL
    /// index, no table. `None` for the PostgreSQL store, which has no such counter: another
    /// replica's change would go unseen, so `/token` keeps nothing in memory there.
    pub fn data_version(&self) -> Result<Option<i64>, ApiError> {
        let Some(probe) = &self.version_probe else {
            return Ok(None);
        };
        let store = probe
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        Ok(Some(store.db().query_one(
            "PRAGMA data_version",
            &[],
            |row| row.get(0),
        )?))
    }

    /// The runtime.
    pub fn runtime(&self) -> &'static Runtime {
        self.runtime
    }

    /// Tells the webhook notifier that tenant `tenant`'s connection `id` may have changed
    /// status (connected, removed, a refresh refused): its event goes out within about a
    /// second instead of at the next sweep.
    pub fn connection_changed(&self, tenant: auth::TenantId, id: &str) {
        self.tokens.forget(&connections::internal_name(tenant, id));
        self.changes.connection_changed(tenant.0, id);
    }

    /// Runs `work` on a store thread, with that thread's open store, and waits for its
    /// answer without blocking the async runtime.
    pub async fn blocking<T: Send + 'static>(
        &self,
        work: impl FnOnce(&Connections<'static>) -> Result<T, ApiError> + Send + 'static,
    ) -> Result<T, ApiError> {
        let (answer, answered) = tokio::sync::oneshot::channel();
        let job: Job = Box::new(move |connections| {
            let _ = answer.send(work(connections));
        });
        self.jobs
            .send(job)
            .map_err(|_| ApiError::internal(&"the store threads have stopped"))?;
        answered
            .await
            .map_err(|_| ApiError::internal(&"a store thread dropped a request (a panic)"))?
    }
}

/// How many store threads serve requests: four per core (a refresh or an API call mostly
/// waits on the network), at least 4 and at most 32.
pub fn store_threads() -> usize {
    std::thread::available_parallelism()
        .map_or(4, |cores| cores.get() * 4)
        .clamp(4, 32)
}

/// The queue the store threads take jobs from, one at a time.
type Queue = Arc<std::sync::Mutex<std::sync::mpsc::Receiver<Job>>>;

/// Starts `count` store threads, each with its own open store, taking jobs from one queue
/// until every sender is gone. The first prepares the service's tables before the others
/// open the store. Returns once all are open, or why one could not open it.
fn store_pool(
    runtime: &'static Runtime,
    path: PathBuf,
    key: Option<crate::seal::SealingKey>,
    count: usize,
) -> Result<std::sync::mpsc::Sender<Job>, ServeError> {
    let (jobs, incoming) = std::sync::mpsc::channel::<Job>();
    let queue: Queue = Arc::new(std::sync::Mutex::new(incoming));
    for index in 0..count.max(1) {
        store_thread(
            runtime,
            path.clone(),
            key.clone(),
            Arc::clone(&queue),
            index,
        )?;
    }
    Ok(jobs)
}

/// Starts store thread number `index`: opens the store (thread 0 also prepares the service's
/// tables), then runs jobs from `queue` until every sender is gone. Returns once the store
/// is open, or why it could not be.
fn store_thread(
    runtime: &'static Runtime,
    path: PathBuf,
    key: Option<crate::seal::SealingKey>,
    queue: Queue,
    index: usize,
) -> Result<(), ServeError> {
    let (opened, open_result) = std::sync::mpsc::channel();
    let dispatch = tracing::dispatcher::get_default(|dispatch| dispatch.clone());
    std::thread::Builder::new()
        .name(format!("connector-store-{index}"))
        .spawn(move || {
            let _log = tracing::dispatcher::set_default(&dispatch);
            let env: &'static dyn Fn(&str) -> Option<String> = &process_env;
            let connections = match Connections::open_with_key(runtime, &path, env, key)
                .map(Connections::keeping_the_decider)
                .map_err(|error| match error {
                    crate::connections::ConnectionError::Store(error) => ServeError::Store(error),
                    other => ServeError::Io(std::io::Error::other(other.to_string())),
                })
                .and_then(|connections| {
                    if index == 0 {
                        tenants::migrate(connections.store()).map_err(ServeError::Store)?;
                    }
                    Ok(connections)
                }) {
                Ok(connections) => {
                    let _ = opened.send(Ok(()));
                    connections
                }
                Err(error) => {
                    let _ = opened.send(Err(error));
                    return;
                }
            };
            loop {
                // The lock is held only while waiting for the next job: one thread waits on
                // the queue, the others on the lock.
                let job = queue
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner)
                    .recv();
                let Ok(job) = job else { break };
                // A panicking request loses its answer (the handler reports `internal`);
                // the thread goes on serving the others.
                let _ =
                    std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| job(&connections)));
            }
        })
        .map_err(ServeError::Io)?;
    match open_result.recv() {
        Ok(result) => result,
        Err(_) => Err(ServeError::Io(std::io::Error::other(
            "a store thread ended before opening the store",
        ))),
    }
}

/// An `http`/`https` URL's origin, refusing anything with a path, query or fragment.
fn origin_of(url: &str) -> Result<(String, url::Origin), ServeError> {
    let bad = || ServeError::BadUrl(url.to_owned());
    let parsed = url::Url::parse(url).map_err(|_| bad())?;
    let bare = matches!(parsed.path(), "" | "/")
        && parsed.query().is_none()
        && parsed.fragment().is_none()
        && parsed.username().is_empty()
        && parsed.password().is_none();
    if !matches!(parsed.scheme(), "http" | "https") || !bare || parsed.host().is_none() {
        return Err(bad());
    }
    let origin = parsed.origin();
    Ok((origin.ascii_serialization(), origin))
}

/// Where the pages' stylesheet is served (the pages' CSP allows styles from the service's
/// own origin only, none inline).
pub const STYLESHEET_PATH: &str = "/static/style.css";

/// The pages' stylesheet.
const STYLESHEET: &str = "body{font-family:system-ui,sans-serif;max-width:36rem;\
                          margin:4rem auto;padding:0 1rem;line-height:1.5}\n\
                          body.wide{max-width:72rem;margin-top:2rem}\n\
                          table{border-collapse:collapse;width:100%;margin:.5rem 0 1.5rem}\n\
                          th,td{text-align:left;vertical-align:top;padding:.3rem .5rem;\
                          border-bottom:1px solid #ccc}\n\
                          td form,header form{display:inline;margin-right:.3rem}\n\
                          button{font:inherit;padding:.1rem .6rem;cursor:pointer}\n\
                          input{font:inherit}\n\
                          .notice{background:#e8f4e8;padding:.5rem .8rem}\n\
                          .error{color:#a00}\n";

/// `GET /static/style.css`: the stylesheet, cacheable for a day (it changes only with a
/// release).
async fn stylesheet() -> impl axum::response::IntoResponse {
    (
        [
            (axum::http::header::CONTENT_TYPE, "text/css; charset=utf-8"),
            (axum::http::header::CACHE_CONTROL, "public, max-age=86400"),
            (axum::http::header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        ],
        STYLESHEET,
    )
}

/// The router: the API under `/v1` (tenant key required), the connect page, the callback,
/// the web page ([`pages`]) and the pages' stylesheet; JSON 404 and 405 for everything else.
pub fn router(state: AppState) -> Router {
    Router::new()
        .route(STYLESHEET_PATH, axum::routing::get(stylesheet))
        .merge(integrations::router())
        .merge(providers::router())
        .merge(connections::router())
        .merge(connect::router())
        .merge(pages::router())
        .merge(webhooks::router())
        .fallback(|| async { ApiError::new(Code::NotFound, "no such route") })
        .method_not_allowed_fallback(|| async {
            ApiError::new(
                Code::MethodNotAllowed,
                "the route does not take this method",
            )
        })
        .layer(DefaultBodyLimit::max(BODY_LIMIT))
        .with_state(state)
}

/// Every route the router serves, as `(method, path)` with `{param}` placeholders: the
/// OpenAPI test compares it with `docs/openapi.json`.
pub const ROUTES: &[(&str, &str)] = &[
    ("GET", "/v1/integrations"),
    ("POST", "/v1/integrations"),
    ("GET", "/v1/integrations/{id}"),
    ("DELETE", "/v1/integrations/{id}"),
    ("GET", "/v1/providers"),
    ("GET", "/v1/providers/{id}"),
    ("POST", "/v1/connect-sessions"),
    ("GET", "/v1/connections"),
    ("POST", "/v1/connections"),
    ("GET", "/v1/connections/{id}"),
    ("DELETE", "/v1/connections/{id}"),
    ("POST", "/v1/connections/{id}/token"),
    ("POST", "/v1/connections/{id}/request"),
    ("GET", "/connect/{token}"),
    ("GET", "/oauth/callback"),
    ("GET", STYLESHEET_PATH),
    ("GET", "/v1/webhook"),
    ("PUT", "/v1/webhook"),
    ("DELETE", "/v1/webhook"),
    ("GET", "/"),
    ("POST", "/sign-in"),
    ("POST", "/sign-out"),
    ("POST", "/ui/connect"),
    ("POST", "/ui/connections/{id}/reauthorize"),
    ("POST", "/ui/connections/{id}/revoke"),
    ("POST", "/ui/connections/{id}/remove"),
];

/// Opens the store, prepares the service's tables, binds `options.listen`, calls `ready`
/// with the bound address and the public URL, and serves until the process ends.
pub fn serve(
    runtime: Runtime,
    options: ServeOptions,
    ready: impl FnOnce(SocketAddr, &str),
) -> Result<(), ServeError> {
    // Everything that can be refused is checked before the port is taken: the URLs, then the
    // store and its key (the store threads open it).
    let public_url = options
        .public_url
        .as_deref()
        .map(|url| Ok::<_, ServeError>(origin_of(url)?.0))
        .transpose()?;
    let mut return_origins = Vec::new();
    for origin in &options.return_origins {
        return_origins.push(origin_of(origin)?.1);
    }
    let webhook_origins = options
        .webhook_origins
        .iter()
        .map(|origin| Ok(origin_of(origin)?.1))
        .collect::<Result<Vec<_>, ServeError>>()?;
    // Serving lives as long as the process: the runtime is shared by every thread.
    let runtime: &'static Runtime = Box::leak(Box::new(runtime));
    let jobs = store_pool(
        runtime,
        options.store.clone(),
        options.key.clone(),
        options.store_threads,
    )?;
    let listener = std::net::TcpListener::bind(options.listen)
        .map_err(|error| ServeError::Listen(options.listen, error))?;
    let bound = listener.local_addr().map_err(ServeError::Io)?;
    let public_url = public_url.unwrap_or_else(|| format!("http://{bound}"));
    // The public URL's origin first.
    return_origins.insert(0, origin_of(&public_url)?.1);
    listener.set_nonblocking(true).map_err(ServeError::Io)?;
    // The webhook notifier and the keep-alive sweep, each on a thread of its own with its
    // own open store (the store threads prepared the tables).
    let tokens = token_cache::TokenCache::default();
    let version_probe = match crate::store::database_url(&options.store) {
        Some(_) => None,
        None => Some(std::sync::Mutex::new(
            crate::store::Store::open_with_key(&options.store, options.key.clone())
                .map_err(ServeError::Store)?,
        )),
    };
    let changes = webhooks::start(
        options.store.clone(),
        options.key.clone(),
        options.keep_alive_interval,
        webhook_origins.clone(),
    )?;
    match options.keep_alive_after {
        Some(after) => keepalive::start(
            runtime,
            options.store.clone(),
            options.key.clone(),
            options.keep_alive_interval,
            after,
            changes.clone(),
            tokens.clone(),
        )?,
        None => tracing::info!("keep-alive: off (--keep-alive-after 0)"),
    }
    let state = Arc::new(State {
        runtime,
        public_url: public_url.clone(),
        return_origins,
        session_ttl: options.session_ttl,
        webhook_origins,
        changes,
        tokens,
        version_probe,
        jobs,
        key_checkers: std::sync::Mutex::new(Vec::new()),
        recent_keys: RecentKeys::default(),
        store: (options.store.clone(), options.key.clone()),
    });
    // The caller's log subscriber (the CLI's is the calling thread's) for every thread of
    // the service: kept for each thread's whole life.
    let dispatch = tracing::dispatcher::get_default(|dispatch| dispatch.clone());
    let tokio = tokio::runtime::Builder::new_multi_thread()
        .on_thread_start(move || {
            std::mem::forget(tracing::dispatcher::set_default(&dispatch));
        })
        .enable_io()
        .enable_time()
        .build()
        .map_err(ServeError::Io)?;
    tokio.block_on(async move {
        let listener = tokio::net::TcpListener::from_std(listener).map_err(ServeError::Io)?;
        tracing::info!(address = %bound, public_url = %public_url, "serving");
        ready(bound, &public_url);
        axum::serve(listener, router(state))
            .await
            .map_err(ServeError::Io)
    })
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, Instant};

    use super::*;

    #[test]
    fn a_valid_key_is_taken_as_valid_for_one_second_only() {
        let recent = RecentKeys::default();
        let (key, other) = (RecentKeys::digest("ck_1_a"), RecentKeys::digest("ck_1_b"));
        let checked = Instant::now();
        assert_eq!(recent.get(&key, checked), None);
        recent.put(key, 1, checked);
        assert_eq!(
            recent.get(&key, checked + Duration::from_millis(999)),
            Some(1)
        );
        assert_eq!(
            recent.get(&key, checked + RECENT_KEY_TTL),
            None,
            "asked again"
        );
        assert_eq!(
            recent.get(&other, checked),
            None,
            "another key is another key"
        );
        for n in 0..RecentKeys::CAPACITY {
            recent.put(RecentKeys::digest(&n.to_string()), 2, checked);
        }
        assert_eq!(recent.get(&key, checked), None, "forgotten at capacity");
    }
}

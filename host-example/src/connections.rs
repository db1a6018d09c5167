//! Using stored connections: valid tokens on demand, refresh coordination, authorized calls,
//! revocation.
//!
//! A connection whose tokens can no longer be used is marked in the store, with when and why:
//! `revoke` marks it revoked, and a refresh the server answers with `reauthorization-required`
//! (for example `invalid_grant`) marks it with the server's error code. A marked connection
//! sends nothing: [`Connections::valid_tokens`] and [`Connections::call`] fail at once with
//! [`ConnectionError::NeedsReauthorization`], which names the fix, until it is connected again
//! ([`Connections::save_locked`] clears the mark). The mark never touches the tokens, so it
//! cannot lose a rotated refresh token.
//!
//! Refresh-token rotation makes refreshing dangerous: a rotated refresh token replayed by a
//! second, concurrent refresh makes a careful server revoke the whole grant. So:
//! - at most one refresh per connection runs at a time, across threads and processes: an
//!   exclusive lock on a per-connection lock file beside the store (`flock` on Unix). The
//!   lock belongs to the store, not to the path it was opened by: it lives beside the
//!   store's resolved path ([`Store::canonical_path`]), so a symbolic link to the store (or
//!   through a linked directory) finds the same lock. In a PostgreSQL store the lock is the
//!   database's, shared by every replica ([`Store::lock_in_database`]): a session-level
//!   advisory lock, which the server releases when the session ends, so a replica that dies
//!   holding it (killed, cut off) blocks no one;
//! - waiting for the lock is bounded ([`DEFAULT_LOCK_TIMEOUT`], see
//!   [`Connections::with_lock_timeout`]): a lock held past it (a hung process) ends the wait
//!   with [`ConnectionError::LockTimeout`], which changed nothing and may be retried. Giving
//!   up never refreshes without the lock, so the bound trades waiting for an error, never
//!   for a second refresh;
//! - after taking the lock the stored tokens are read again, and the refresh is skipped when
//!   another caller already did it;
//! - the new token set is committed to SQLite (WAL, `synchronous = FULL`) before the lock is
//!   released and before the new access token is used.
//!
//! The one window in which a rotated refresh token can be lost is between the server's answer
//! arriving and the commit returning (a crash there loses it). `RefreshOutcome::window`
//! measures it on every refresh. The window is not silent: before a refresh-token request is
//! sent, the refresh is recorded in the store ([`Store::refresh_started`], committed), and
//! only storing its tokens, or an answer from the server, clears the record. Whoever
//! refreshes next and finds the record tries the stored refresh token once more (a server
//! that never handled the lost request, or one with a reuse grace period, accepts it); if
//! the server refuses, the connection is marked
//! [`Reauthorization::RefreshInterrupted`], with the server's error, instead of failing the
//! same way on every use.
//!
//! When the commit fails (a full disk, a store locked too long, a broken file), the new
//! tokens are written to a rescue file beside the store (`<store>.unsaved/`) and handed to
//! the caller in [`ConnectionError::Unsaved`]; the next use of the connection moves them into
//! the store, under the connection's lock. When the store has a sealing key
//! ([`Connections::open_with_key`]), the rescue record is sealed with it too (bound to
//! `rescue/<name>`); a record in clear, written without a key, still reads.
//!
//! The lock and rescue directories hold (or guard) secrets, and the store's directory may be
//! shared with other users, so (on Unix) nothing in them is trusted blindly:
//! - both directories are created 0700; existing ones must be ours, real directories (not
//!   symbolic links) with no group or other permission bits ([`Store::open`] checks them
//!   first, and each use checks again);
//! - lock and rescue files are created exclusively (`O_CREAT|O_EXCL|O_NOFOLLOW`, 0600); an
//!   existing one is opened with `O_NOFOLLOW` and checked through the opened handle: ours, a
//!   regular file, one link, no group or other bits (a lock file's mode is not checked: it
//!   holds nothing, only the private directory leads to it, and earlier versions created
//!   lock files with the umask's mode);
//! - a rescue file is written as `<name>.partial` and renamed into place; a stale partial file
//!   of ours is removed first, one that is not ours is refused;
//! - a rescue file that fails the checks is never read: [`ConnectionError::Rescue`] names it,
//!   and the connection's stored tokens stay as they are.
//!
//! Out of scope: another user who can write the store's directory can still delete what is
//! there (see the store's documentation); a process of the same user can do anything.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use std::sync::Arc;

use crate::bindings::exports::oauth_connector::oauth2::api::ApiResponse;
use crate::bindings::exports::oauth_connector::oauth2::jwt_bearer::AssertionClaims;
use crate::bindings::exports::oauth_connector::oauth2::token_exchange::ExchangeRequest;
use crate::retry::{self, RetryNotice, RetryPolicy};
use crate::runtime::{CallError, Runtime, Session};
use crate::seal::{self, SealError, SealingKey};
use crate::signer::{KeyFileError, KeyFileSigner, PurposeSigner, Signer};
use crate::store::{
    ConnectionSecrets, ConnectionState, Create, Grant, Kind, LOCKS, PRIVATE_BITS, RESCUE,
    Reauthorization, Refusal, SecretSource, Store, StoreError, StoredConnection, TokenSource,
    UnsafeFile, beside, check_metadata, check_path, new_private_file, open_private_file,
    private_dir,
};
use crate::types::{ConnectionConfig, HttpMethod, HttpRequest, ProviderProfile, TokenSet};
use crate::{AllowList, HttpTransport, Limits, connection_allow_list};

/// Why an operation on a stored connection failed.
#[derive(Debug)]
pub enum ConnectionError {
    /// The store failed.
    Store(StoreError),
    /// The component refused, or the call failed (see `CallError`; a
    /// `reauthorization-required` error means the user must connect again).
    Call(CallError),
    /// The client secret's environment variable is not set.
    SecretUnavailable(String),
    /// The client secret's environment variable is set but empty.
    SecretEmpty(String),
    /// The private key file of a `private_key_jwt` client cannot be used.
    Key(KeyFileError),
    /// The connection cannot be renewed without the user: its access token was rejected
    /// or has expired, and it has no refresh token (some vendors, for example GitHub OAuth
    /// apps and Notion, issue none). Connect again.
    NoRefreshToken {
        /// Why a new token was needed.
        reason: &'static str,
    },
    /// The connection is marked as needing authorization again (it was revoked, or the
    /// server refused to renew it): nothing was sent, and no token is handed out until it
    /// is connected again (`connector-host reconnect NAME`), which clears the mark.
    NeedsReauthorization {
        /// The connection.
        name: String,
        /// Why it was marked.
        reason: Reauthorization,
        /// When (Unix seconds).
        since: u64,
    },
    /// A token-exchange connection's token expired, and the token it was exchanged from
    /// was read from this environment variable at `connect`, which is not kept: connect
    /// again (with a fresh subject token) to renew it.
    SubjectNotKept {
        /// The environment variable the subject token came from.
        var: String,
    },
    /// A token-exchange connection names itself as its subject connection.
    SubjectIsItself(String),
    /// The actor token's environment variable (read at every exchange) is not set or empty.
    ActorTokenUnavailable(String),
    /// The stored connection lacks what its grant needs to obtain tokens again (its
    /// exchange or assertion settings): connect it again.
    GrantSettingsMissing {
        /// The connection's grant.
        grant: Grant,
    },
    /// The per-connection lock file could not be created, opened or locked.
    Lock(PathBuf, std::io::Error),
    /// Another process held the connection's lock (the file) for the whole bound on waiting
    /// (how long this caller waited): nothing was changed, and the operation may be retried.
    /// The holder is refreshing, or hangs.
    LockTimeout {
        /// The lock file.
        path: PathBuf,
        /// How long this caller waited.
        waited: Duration,
    },
    /// The lock directory or a lock file beside the store exists but is not safely ours
    /// (see the module's documentation): it was not used.
    Unsafe(PathBuf, UnsafeFile),
    /// A rescue file (tokens a failed commit left aside), or its directory, could not be
    /// used: nothing was recovered, and the stored connection is unchanged.
    Rescue(PathBuf, RescueProblem),
    /// A refresh succeeded at the server but its tokens could not be stored. The server
    /// may have rotated the refresh token already, so the new tokens are handed to the
    /// caller, and kept in a rescue file when one could be written (its path, or why not);
    /// the next use of the connection stores them. The stored connection is unchanged.
    Unsaved {
        /// Why the store refused.
        error: StoreError,
        /// The tokens the server issued.
        tokens: UnsavedTokens,
        /// Where they were kept until the store accepts them.
        rescue: Result<PathBuf, std::io::Error>,
    },
}

/// Why a rescue file could not be used.
#[derive(Debug)]
pub enum RescueProblem {
    /// The file or its directory is not safely ours: it was not read.
    Unsafe(UnsafeFile),
    /// Reading or removing it failed.
    Io(std::io::Error),
    /// It does not hold a rescue record.
    NotARecord,
    /// Its record belongs to another connection.
    OtherConnection,
    /// It is sealed and does not open with the store's key (another key, altered, or moved
    /// from another connection's file).
    Sealed(SealError),
}

impl std::fmt::Display for RescueProblem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Unsafe(problem) => problem.fmt(f),
            Self::Io(error) => error.fmt(f),
            Self::NotARecord => f.write_str("it is not a rescue record"),
            Self::OtherConnection => f.write_str("its record names another connection"),
            Self::Sealed(error) => write!(f, "its sealed record does not open: {error}"),
        }
    }
}

/// The default bound on waiting for a connection's lock: longer than a refresh takes with
/// the default retries and timeouts in all but pathological cases.
pub const DEFAULT_LOCK_TIMEOUT: Duration = Duration::from_secs(60);

/// Tokens that could not be stored. Its `Debug` leaves them out.
pub struct UnsavedTokens(pub Box<TokenSet>);

impl std::fmt::Debug for UnsavedTokens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("UnsavedTokens([redacted])")
    }
}

impl std::fmt::Display for ConnectionError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Store(error) => error.fmt(f),
            Self::Call(error) => error.fmt(f),
            Self::SecretUnavailable(var) => write!(
                f,
                "the connection's client secret comes from ${var}, which is not set: set it to \
                 the client secret"
            ),
            Self::SecretEmpty(var) => write!(
                f,
                "the connection's client secret comes from ${var}, which is empty: set it to \
                 the client secret"
            ),
            Self::Key(error) => error.fmt(f),
            Self::NoRefreshToken { reason } => write!(
                f,
                "the connection must be authorized again (connect again): {reason}, and the \
                 server issued no refresh token to renew it"
            ),
            Self::NeedsReauthorization {
                name,
                reason,
                since,
            } => write!(
                f,
                "connection `{name}` {}; no token is used until it is connected again: run \
                 `connector-host reconnect {name}` (it signs in again with the stored \
                 settings)",
                crate::describe::connection_state(&ConnectionState::NeedsReauthorization {
                    reason: reason.clone(),
                    since: *since,
                })
            ),
            Self::SubjectNotKept { var } => write!(
                f,
                "the connection must be connected again: its exchanged token has expired, and \
                 the token it was exchanged from came from ${var} at connect, which is not \
                 kept; run connect again with a fresh subject token (or use \
                 --subject-connection NAME, which is exchanged again on its own)"
            ),
            Self::SubjectIsItself(name) => write!(
                f,
                "connection `{name}` cannot exchange its own token: name another connection \
                 with --subject-connection"
            ),
            Self::ActorTokenUnavailable(var) => write!(
                f,
                "the actor token comes from ${var}, which is not set or empty: set it to the \
                 actor token"
            ),
            Self::GrantSettingsMissing { grant } => write!(
                f,
                "the stored connection has no {} settings to obtain tokens again with; \
                 connect it again",
                grant.name()
            ),
            Self::Lock(path, error) => write!(f, "cannot lock {}: {error}", path.display()),
            Self::LockTimeout { path, waited } if crate::store::database_url(path).is_some() => {
                write!(
                    f,
                    "gave up after {:.1} s waiting for the connection's lock in {}: another \
                     replica or process held it all that time (a refresh in progress, or one \
                     that hangs; `SELECT pid, application_name, query_start FROM pg_locks JOIN \
                     pg_stat_activity USING (pid) WHERE locktype = 'advisory'` shows who); \
                     nothing was changed, try again",
                    waited.as_secs_f64(),
                    path.display()
                )
            }
            Self::LockTimeout { path, waited } => write!(
                f,
                "gave up after {:.1} s waiting for the connection's lock {}: another process \
                 held it all that time (a refresh in progress, or a process that hangs; \
                 `fuser {}` shows it); nothing was changed, try again",
                waited.as_secs_f64(),
                path.display(),
                path.display()
            ),
            Self::Unsafe(path, problem) => write!(
                f,
                "refusing to use {}, which guards the connection's refreshes: {problem}",
                path.display()
            ),
            Self::Rescue(path, problem) => write!(
                f,
                "cannot recover the unsaved tokens in {}: {problem}; nothing was recovered \
                 and the stored connection is unchanged",
                path.display()
            ),
            Self::Unsaved {
                error,
                rescue: Ok(path),
                ..
            } => write!(
                f,
                "the refreshed tokens could not be stored ({error}); they are kept in {} \
                 and will be stored on the connection's next use",
                path.display()
            ),
            Self::Unsaved {
                error,
                rescue: Err(rescue_error),
                ..
            } => write!(
                f,
                "the refreshed tokens could not be stored ({error}), nor kept aside \
                 ({rescue_error}); the server may have rotated the refresh token, in which \
                 case the connection must be connected again"
            ),
        }
    }
}

impl std::error::Error for ConnectionError {}

impl From<StoreError> for ConnectionError {
    fn from(error: StoreError) -> Self {
        Self::Store(error)
    }
}

impl From<CallError> for ConnectionError {
    fn from(error: CallError) -> Self {
        Self::Call(error)
    }
}

impl ConnectionError {
    /// True when the user must authorize the connection again.
    pub fn needs_reauthorization(&self) -> bool {
        matches!(
            self,
            Self::NoRefreshToken { .. }
                | Self::NeedsReauthorization { .. }
                | Self::SubjectNotKept { .. }
                | Self::Call(CallError::Connector(
                    crate::types::Error::ReauthorizationRequired(_)
                ))
        )
    }
}

/// One way of obtaining tokens without a user, ready to send (and to send again on a
/// retry). It may hold a subject or actor token: it has no `Debug`.
pub enum UnattendedFetch {
    /// `client-credentials.fetch`.
    ClientCredentials,
    /// `jwt-bearer.fetch` with these claims (signed by the connection's grant key).
    JwtBearer(AssertionClaims),
    /// `token-exchange.exchange` of this request.
    Exchange(Box<ExchangeRequest>),
}

impl UnattendedFetch {
    /// Sends it through `session` for `config`.
    pub fn run(
        &self,
        session: &mut Session,
        config: &ConnectionConfig,
    ) -> Result<TokenSet, CallError> {
        match self {
            Self::ClientCredentials => session.fetch_client_credentials(config),
            Self::JwtBearer(claims) => session.fetch_jwt_bearer(config, claims),
            Self::Exchange(request) => {
                let exchanged = session.exchange_token(config, request)?;
                tracing::info!(
                    issued_token_type = %crate::describe::printable(&exchanged.issued_token_type),
                    "token exchange: the server issued a token"
                );
                Ok(exchanged.tokens)
            }
        }
    }
}

/// What a token request did. Its `Debug` leaves the tokens out.
pub struct RefreshOutcome {
    /// The tokens to use.
    pub tokens: TokenSet,
    /// Whether this caller refreshed (false: the stored tokens were valid, or another caller
    /// had just refreshed them).
    pub refreshed: bool,
    /// For a refresh: the time from the server's answer to the durable commit of the new
    /// token set, the only window in which a rotated refresh token could be lost.
    pub window: Option<Duration>,
}

impl std::fmt::Debug for RefreshOutcome {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RefreshOutcome")
            .field("refreshed", &self.refreshed)
            .field("window", &self.window)
            .finish_non_exhaustive()
    }
}

/// An authorized API call's result.
#[derive(Debug)]
pub struct CallOutcome {
    /// The final response (after at most one refresh and retry).
    pub response: crate::types::HttpResponse,
    /// Whether the first attempt's token was rejected and the call was retried.
    pub retried: bool,
    /// Whether any refresh happened for this call.
    pub refreshed: bool,
    /// How many times the request was sent for a 429 or 503 (1 when the first answer
    /// stood); only idempotent requests are sent again.
    pub attempts: u32,
    /// Whether the last answer is still a 429 or 503 after the retries allowed.
    pub gave_up: Option<retry::GaveUp>,
}

/// Where retry notices go: the CLI prints a progress line, a service logs.
pub type Notify<'a> = &'a dyn Fn(&RetryNotice);

/// Stored connections in one store, used through one runtime.
pub struct Connections<'a> {
    runtime: &'a Runtime,
    store: Store,
    env: &'a dyn Fn(&str) -> Option<String>,
    retry: RetryPolicy,
    notify: Notify<'a>,
    lock_timeout: Duration,
    /// Whether to keep the instance that decides ([`Connections::keeping_the_decider`]).
    keep_decider: bool,
    /// The kept instance that decides whether token sets are due ([`Connections::is_due`]).
    decider: std::sync::Mutex<Option<Session>>,
}

impl<'a> Connections<'a> {
    /// Opens the store at `path`; `env` resolves secrets kept as environment references.
    pub fn open(
        runtime: &'a Runtime,
        path: &Path,
        env: &'a dyn Fn(&str) -> Option<String>,
    ) -> Result<Self, ConnectionError> {
        Self::open_with_key(runtime, path, env, None)
    }

    /// Opens the store at `path` sealed with `key` ([`Store::open_sealed`]), or in clear
    /// without one ([`Store::open`]); rescue files are sealed with the same key.
    pub fn open_with_key(
        runtime: &'a Runtime,
        path: &Path,
        env: &'a dyn Fn(&str) -> Option<String>,
        key: Option<SealingKey>,
    ) -> Result<Self, ConnectionError> {
        Ok(Self::from_store(
            runtime,
            Store::open_with_key(path, key)?,
            env,
        ))
    }

    /// Uses `store`, already open (with its key, if any).
    pub fn from_store(
        runtime: &'a Runtime,
        store: Store,
        env: &'a dyn Fn(&str) -> Option<String>,
    ) -> Self {
        Self {
            runtime,
            store,
            env,
            retry: RetryPolicy::default(),
            notify: &log_notice,
            lock_timeout: DEFAULT_LOCK_TIMEOUT,
            keep_decider: false,
            decider: std::sync::Mutex::new(None),
        }
    }

    /// Waits at most `timeout` for a connection's lock (default [`DEFAULT_LOCK_TIMEOUT`]);
    /// past it, [`ConnectionError::LockTimeout`].
    pub fn with_lock_timeout(mut self, timeout: Duration) -> Self {
        self.lock_timeout = timeout;
        self
    }

    /// Retries token-endpoint requests and idempotent API calls by `policy`, telling
    /// `notify` before each wait.
    pub fn with_retries(mut self, policy: RetryPolicy, notify: Notify<'a>) -> Self {
        self.retry = policy;
        self.notify = notify;
        self
    }

    /// The store.
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// The connection's configuration with its client secret filled in.
    pub fn config(
        &self,
        connection: &StoredConnection,
    ) -> Result<ConnectionConfig, ConnectionError> {
        let mut config = connection.config.clone();
        config.client.client_secret = match &connection.secret {
            SecretSource::None
            | SecretSource::PrivateKey { .. }
            | SecretSource::StoredPrivateKey { .. } => None,
            SecretSource::Stored(secret) => Some(secret.clone()),
            SecretSource::Environment(var) => match (self.env)(var) {
                Some(value) if !value.is_empty() => Some(value),
                Some(_) => return Err(ConnectionError::SecretEmpty(var.clone())),
                None => return Err(ConnectionError::SecretUnavailable(var.clone())),
            },
        };
        Ok(config)
    }

    fn session(&self, config: &ConnectionConfig) -> Result<Session, ConnectionError> {
        let transport = HttpTransport::new(connection_allow_list(config), Limits::default());
        Ok(self.runtime.instantiate(transport)?)
    }

    /// The signer for `connection`: its client assertions with its key file or stored key
    /// (`private_key_jwt`), its DPoP proofs with its DPoP key (RFC 9449), its JWT bearer
    /// assertions with its grant key (RFC 7523 §2.1); no key for the rest.
    pub fn signer(
        &self,
        connection: &StoredConnection,
    ) -> Result<Arc<dyn Signer>, ConnectionError> {
        connection_signer(&connection.secret, &connection.secrets)
    }

    /// A fresh instance for `config` that signs with `signer`.
    fn instance(
        &self,
        config: &ConnectionConfig,
        signer: &Arc<dyn Signer>,
    ) -> Result<Session, CallError> {
        crate::connect::instance(self.runtime, config, signer)
    }

    /// Runs a token-endpoint operation with retries by the policy, none starting after
    /// `deadline`.
    fn retrying<T>(
        &self,
        deadline: Option<Instant>,
        operation: impl FnMut() -> Result<T, CallError>,
    ) -> Result<T, CallError> {
        retry::call(
            &self.retry,
            deadline,
            &mut |notice| (self.notify)(notice),
            operation,
        )
    }

    /// Keeps one instance for deciding whether token sets are due: made on first use, kept
    /// for later decisions (they take no configuration and send nothing, and the exports keep
    /// no state between calls), made again after a call that failed. For long-lived
    /// `Connections` that decide often, such as a service's store threads: a fresh instance
    /// and the first call into an interface cost far more than the decision. Each keeps one
    /// of the runtime's pooled instance slots for as long as it lives, so short-lived or
    /// numerous ones (one per CLI process, one per thread of a storm) do not keep it.
    pub fn keeping_the_decider(mut self) -> Self {
        self.keep_decider = true;
        self
    }

    /// Whether `tokens` are due for a refresh, as the component decides (`tokens.needs-refresh`):
    /// asked of the kept instance ([`Connections::keeping_the_decider`]), else of a fresh one.
    fn is_due(&self, tokens: &TokenSet) -> Result<bool, ConnectionError> {
        if !self.keep_decider {
            return Ok(self
                .runtime
                .instantiate(HttpTransport::new(AllowList::default(), Limits::default()))?
                .needs_refresh(tokens, None)?);
        }
        let mut decider = self
            .decider
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let session = match decider.as_mut() {
            Some(session) => session,
            None => decider.insert(
                self.runtime
                    .instantiate(HttpTransport::new(AllowList::default(), Limits::default()))?,
            ),
        };
        session.needs_refresh(tokens, None).map_err(|error| {
            // A trap or a spent budget leaves the instance unusable: the next decision
            // makes a new one.
            *decider = None;
            ConnectionError::from(error)
        })
    }

    /// Valid tokens for `name`: the stored ones, or freshly refreshed (or re-fetched, for
    /// client credentials) when they are due.
    pub fn valid_tokens(&self, name: &str) -> Result<RefreshOutcome, ConnectionError> {
        self.recover_if_any(name)?;
        let connection = self.store.get(name)?;
        usable(&connection)?;
        // Deciding needs no client secret: it is resolved only for an actual refresh.
        if !self.is_due(&connection.tokens)? {
            tracing::info!(
                connection = name,
                expires_at = %expiry_for_log(connection.tokens.expires_at),
                "refresh: not needed; stored tokens are valid"
            );
            return Ok(RefreshOutcome {
                tokens: connection.tokens,
                refreshed: false,
                window: None,
            });
        }
        self.refresh_locked(name, None)
    }

    /// Refreshes `name` under its lock. With `rejected` (an access token an API refused),
    /// refreshes unless the stored token already differs from it; without, refreshes unless
    /// the stored tokens are no longer due.
    pub fn refresh_locked(
        &self,
        name: &str,
        rejected: Option<&str>,
    ) -> Result<RefreshOutcome, ConnectionError> {
        let trigger = match rejected {
            Some(rejected) => Trigger::Rejected(rejected),
            None => Trigger::Due,
        };
        self.refresh_under_lock(name, trigger)
    }

    /// Refreshes `name` with its refresh token under its lock even though its access token
    /// may still be valid, when its tokens were last written at or before `written_before`
    /// (Unix seconds): a keep-alive for refresh tokens that expire when unused (the service's
    /// keep-alive sweep). The same locked path as every refresh: the stored tokens are read
    /// again under the lock, and a rotated refresh token is committed (or kept aside) before
    /// the lock is released; a refusal marks the connection. Not refreshed (`refreshed:
    /// false`) when another caller wrote the tokens meanwhile, or when nothing can idle out
    /// (no refresh token, or client credentials).
    pub fn refresh_idle(
        &self,
        name: &str,
        written_before: u64,
    ) -> Result<RefreshOutcome, ConnectionError> {
        self.refresh_under_lock(name, Trigger::Idle { written_before })
    }

    /// The one locked refresh behind [`Connections::refresh_locked`] and
    /// [`Connections::refresh_idle`]: `trigger` decides, under the lock, whether it is still
    /// needed.
    fn refresh_under_lock(
        &self,
        name: &str,
        trigger: Trigger<'_>,
    ) -> Result<RefreshOutcome, ConnectionError> {
        let rejected = match trigger {
            Trigger::Rejected(rejected) => Some(rejected),
            Trigger::Due | Trigger::Idle { .. } => None,
        };
        let waited = Instant::now();
        let _lock = self.lock(name)?;
        tracing::debug!(
            connection = name,
            waited_ms = waited.elapsed().as_secs_f64() * 1e3,
            "holding the connection's lock"
        );
        self.recover(name)?;
        let connection = self.store.get(name)?;
        // Another caller may have marked it while this one waited for the lock: its refresh
        // was refused, and sending the same refresh token again would only be refused again.
        usable(&connection)?;
        let mut session = self.session(&connection.config)?;
        let still_needed = match trigger {
            Trigger::Rejected(rejected) => connection.tokens.access_token == rejected,
            Trigger::Due => session.needs_refresh(&connection.tokens, None)?,
            Trigger::Idle { written_before } => {
                connection.updated_at <= written_before
                    && renewal(&connection) == Ok(Renewal::Refresh)
            }
        };
        if !still_needed {
            tracing::info!(
                connection = name,
                "refresh: not needed; another process refreshed meanwhile; using its tokens"
            );
            return Ok(RefreshOutcome {
                tokens: connection.tokens,
                refreshed: false,
                window: None,
            });
        }
        let config = self.config(&connection)?;
        let renewal = match renewal(&connection) {
            Ok(renewal) => renewal,
            Err(not_renewable) => {
                tracing::info!(
                    connection = name,
                    "refresh: refused; nothing renews the tokens without the user"
                );
                return Err(match not_renewable {
                    NotRenewable::SubjectNotKept(var) => ConnectionError::SubjectNotKept { var },
                    NotRenewable::NoRefreshToken => ConnectionError::NoRefreshToken {
                        reason: if rejected.is_some() {
                            "the API rejected its access token"
                        } else {
                            "its access token has expired"
                        },
                    },
                });
            }
        };
        drop(session);
        let signer = self.signer(&connection)?;
        // Obtaining tokens again may need another connection's token (a token exchange):
        // resolved once, before the retries.
        let fetch = match renewal {
            Renewal::Refresh => None,
            Renewal::FetchAgain => {
                Some(self.unattended_fetch(name, connection.grant, &connection.secrets, None)?)
            }
        };
        // A refresh token is at stake: record the refresh before it is sent, committed, so
        // that whoever refreshes next knows when this one ended without storing its answer
        // (this process died, or the answer was lost) and the server may have rotated the
        // refresh token it sends.
        let at_stake = renewal == Renewal::Refresh;
        let interrupted = at_stake && connection.refresh_interrupted_at.is_some();
        if interrupted {
            tracing::warn!(
                connection = name,
                since = %expiry_for_log(connection.refresh_interrupted_at),
                "refresh: the last refresh was interrupted before its tokens were stored; \
                 trying the stored refresh token once more"
            );
        }
        if at_stake {
            self.store.refresh_started(name)?;
        }
        tracing::info!(
            connection = name,
            grant = connection.grant.name(),
            why = match trigger {
                Trigger::Rejected(_) => "the API rejected the access token",
                Trigger::Due => "the access token is due",
                Trigger::Idle { .. } => "keep-alive: the refresh token has not been used for long",
            },
            "refresh: {}",
            match connection.grant {
                _ if at_stake => "refreshing with the refresh token",
                Grant::ClientCredentials => "fetching new tokens with the client credentials",
                Grant::JwtBearer => "fetching new tokens with a new JWT bearer assertion",
                Grant::TokenExchange => "exchanging the subject connection's token again",
                Grant::AuthorizationCode | Grant::Device => "obtaining new tokens",
            }
        );
        let mut answered_at = None;
        // Others wait for this lock at most `lock_timeout`: retries end well before that, so
        // that a waiter finds the refresh done rather than a timeout.
        let deadline = Instant::now() + self.lock_timeout / 2;
        let tokens = self.retrying(Some(deadline), || {
            let mut session = self.instance(&config, &signer)?;
            let tokens = match &fetch {
                Some(fetch) => fetch.run(&mut session, &config),
                None => session.refresh(&config, &connection.tokens),
            };
            answered_at = session.last_response_at();
            tokens
        });
        let tokens = match tokens {
            Ok(tokens) => tokens,
            Err(error) => {
                // Still under the lock: callers waiting for it find the mark, not a second
                // refresh. Nothing was issued, so no token is at stake.
                if let CallError::Connector(crate::types::Error::ReauthorizationRequired(refusal)) =
                    &error
                {
                    let code = crate::describe::error_code(&refusal.code);
                    tracing::info!(
                        connection = name,
                        error = %crate::describe::printable(&code),
                        "refresh: refused by the server"
                    );
                    self.mark(
                        name,
                        &if interrupted {
                            Reauthorization::RefreshInterrupted(code)
                        } else {
                            Reauthorization::RefreshRefused(code)
                        },
                    );
                }
                // The server's answer settles it; without one (the request may have reached
                // the server), the record stays for whoever refreshes next.
                if at_stake
                    && !outcome_unknown(&error)
                    && let Err(error) = self.store.refresh_settled(name)
                {
                    tracing::warn!(connection = name, %error, "could not clear the refresh record");
                }
                return Err(error.into());
            }
        };
        if let Err(error) = self.store.update_tokens(name, &tokens) {
            // A connection removed meanwhile has nothing to come back to.
            let rescue = match error {
                StoreError::NotFound(_) => Err(std::io::Error::other("the connection was removed")),
                _ => keep_aside(&self.store, name, &tokens),
            };
            tracing::error!(
                connection = name,
                %error,
                rescue = ?rescue,
                "refreshed tokens could not be stored"
            );
            return Err(ConnectionError::Unsaved {
                error,
                tokens: UnsavedTokens(Box::new(tokens)),
                rescue,
            });
        }
        let window = answered_at.map(|at| Instant::now().saturating_duration_since(at));
        tracing::info!(
            connection = name,
            grant = connection.grant.name(),
            rotated = tokens.refresh_token != connection.tokens.refresh_token,
            expires_at = %expiry_for_log(tokens.expires_at),
            window_ms = window.map(|w| w.as_secs_f64() * 1e3),
            "refresh: refreshed and stored"
        );
        Ok(RefreshOutcome {
            tokens,
            refreshed: true,
            window,
        })
    }

    /// Sends an authorized request; on a rejected token, refreshes (once, coordinated) and
    /// retries exactly once.
    ///
    /// A 429 or 503 answer to an idempotent request (GET, HEAD, OPTIONS, PUT, DELETE; RFC
    /// 9110 §9.2.2) is sent again by the retry policy, honouring `Retry-After`; other
    /// methods are never sent twice on their own.
    pub fn call(&self, name: &str, request: &HttpRequest) -> Result<CallOutcome, ConnectionError> {
        let first = self.valid_tokens(name)?;
        let connection = self.store.get(name)?;
        let config = self.config(&connection)?;
        // A DPoP-bound connection's calls carry proofs signed with its key.
        let signer = self.signer(&connection)?;
        let (answer, mut attempts, mut gave_up) =
            self.send_api(&config, &signer, &first.tokens, request)?;
        tracing::debug!(
            connection = name,
            status = answer.response.status,
            token_rejected = answer.token_rejected,
            "API answered"
        );
        if !answer.token_rejected {
            return Ok(CallOutcome {
                response: answer.response,
                retried: false,
                refreshed: first.refreshed,
                attempts,
                gave_up,
            });
        }
        let second = self.refresh_locked(name, Some(&first.tokens.access_token))?;
        let (retry, more, last_gave_up) =
            self.send_api(&config, &signer, &second.tokens, request)?;
        attempts += more;
        gave_up = last_gave_up;
        Ok(CallOutcome {
            response: retry.response,
            retried: true,
            refreshed: first.refreshed || second.refreshed,
            attempts,
            gave_up,
        })
    }

    /// One authorized request, sent again on 429/503 when it is idempotent.
    fn send_api(
        &self,
        config: &ConnectionConfig,
        signer: &Arc<dyn Signer>,
        tokens: &TokenSet,
        request: &HttpRequest,
    ) -> Result<(ApiResponse, u32, Option<retry::GaveUp>), ConnectionError> {
        let policy = if is_idempotent(&request.method) {
            self.retry
        } else {
            RetryPolicy::NONE
        };
        let outcome = retry::run(
            &policy,
            None,
            |answer: &Result<ApiResponse, ConnectionError>| {
                let answer = answer.as_ref().ok()?;
                let status = answer.response.status;
                matches!(status, 429 | 503).then(|| retry::Retryable {
                    reason: format!("the API answered HTTP {status}"),
                    retry_after: answer.retry_after_seconds.map(Duration::from_secs),
                })
            },
            &mut |notice| (self.notify)(notice),
            &mut retry::sleep_real,
            &mut retry::random_unit,
            |_| {
                Ok(self
                    .instance(config, signer)?
                    .call_api(config, tokens, request)?)
            },
        );
        // A request that is not retried did not "give up": it was never to be sent again.
        let gave_up = outcome.gave_up.filter(|_| policy != RetryPolicy::NONE);
        Ok((outcome.result?, outcome.attempts, gave_up))
    }

    /// What obtaining tokens without a user sends for connection `name` with `grant` and
    /// `secrets`: client credentials; a JWT bearer assertion by the stored claims; or a
    /// token exchange, whose subject token is another stored connection's valid access
    /// token (refreshed first when due, through [`Connections::valid_tokens`]) or, for a
    /// subject read from the environment, `given_subject` (only `connect` has it). The
    /// actor token is read from its environment variable each time.
    pub fn unattended_fetch(
        &self,
        name: &str,
        grant: Grant,
        secrets: &ConnectionSecrets,
        given_subject: Option<String>,
    ) -> Result<UnattendedFetch, ConnectionError> {
        let missing = || ConnectionError::GrantSettingsMissing { grant };
        match grant {
            Grant::ClientCredentials => Ok(UnattendedFetch::ClientCredentials),
            Grant::JwtBearer => {
                let settings = secrets.jwt_bearer().ok_or_else(missing)?;
                Ok(UnattendedFetch::JwtBearer(AssertionClaims {
                    issuer: settings.issuer.clone(),
                    subject: settings.subject.clone(),
                    audience: settings.audience.clone(),
                    scope_in_claims: settings.scope_in_claims,
                    lifetime_seconds: None,
                }))
            }
            Grant::TokenExchange => {
                let settings = secrets.exchange().ok_or_else(missing)?;
                let subject_token = match &settings.subject {
                    TokenSource::Connection(other) if other == name => {
                        return Err(ConnectionError::SubjectIsItself(name.to_owned()));
                    }
                    TokenSource::Connection(other) => {
                        tracing::info!(
                            connection = name,
                            subject = other.as_str(),
                            "token exchange: using the subject connection's current token"
                        );
                        self.valid_tokens(other)?.tokens.access_token
                    }
                    TokenSource::Environment(var) => given_subject
                        .ok_or_else(|| ConnectionError::SubjectNotKept { var: var.clone() })?,
                };
                let (actor_token, actor_token_type) = match &settings.actor {
                    Some((var, token_type)) => match (self.env)(var) {
                        Some(token) if !token.is_empty() => (Some(token), Some(token_type.clone())),
                        _ => return Err(ConnectionError::ActorTokenUnavailable(var.clone())),
                    },
                    None => (None, None),
                };
                Ok(UnattendedFetch::Exchange(Box::new(ExchangeRequest {
                    subject_token,
                    subject_token_type: settings.subject_token_type.clone(),
                    actor_token,
                    actor_token_type,
                    requested_token_type: settings.requested_token_type.clone(),
                    audiences: settings.audiences.clone(),
                    // The connection's own resources and scopes are the configuration's,
                    // which the component sends.
                    resources: vec![],
                    scopes: vec![],
                })))
            }
            Grant::AuthorizationCode | Grant::Device => Err(missing()),
        }
    }

    /// Obtains tokens without a user for a new connection `name` (see
    /// [`Connections::unattended_fetch`]), with the retries of token-endpoint requests.
    pub fn obtain_unattended(
        &self,
        name: &str,
        config: &ConnectionConfig,
        grant: Grant,
        secrets: &ConnectionSecrets,
        signer: &Arc<dyn Signer>,
        given_subject: Option<String>,
    ) -> Result<TokenSet, ConnectionError> {
        let fetch = self.unattended_fetch(name, grant, secrets, given_subject)?;
        Ok(self.retrying(None, || {
            let mut session = self.instance(config, signer)?;
            fetch.run(&mut session, config)
        })?)
    }

    /// Stores a new or replaced connection while holding its lock.
    pub fn save_locked(
        &self,
        name: &str,
        config: &ConnectionConfig,
        secret: &SecretSource,
        grant: Grant,
        tokens: &TokenSet,
    ) -> Result<(), ConnectionError> {
        self.save_locked_with(
            name,
            config,
            secret,
            &ConnectionSecrets::default(),
            grant,
            tokens,
        )
    }

    /// [`Connections::save_locked`], with what the connection keeps sealed beside its
    /// client's credential (a DPoP key, its grant's settings, its registration).
    pub fn save_locked_with(
        &self,
        name: &str,
        config: &ConnectionConfig,
        secret: &SecretSource,
        secrets: &ConnectionSecrets,
        grant: Grant,
        tokens: &TokenSet,
    ) -> Result<(), ConnectionError> {
        let _lock = self.lock(name)?;
        self.store
            .save_with(name, config, secret, secrets, grant, tokens)?;
        // Tokens a failed refresh of the replaced connection left aside belong to its old
        // grant: they must not overwrite the new ones.
        discard_rescue(&self.store, name)?;
        Ok(())
    }

    /// Deletes a connection from the store (nothing is sent to the server), with any tokens
    /// a failed commit left aside for it.
    pub fn remove(&self, name: &str) -> Result<(), ConnectionError> {
        remove(&self.store, name)
    }

    /// Revokes the connection's tokens at the server (RFC 7009); the connection stays stored,
    /// marked [`Reauthorization::Revoked`], and its next use fails at once with
    /// [`ConnectionError::NeedsReauthorization`] until it is connected again.
    pub fn revoke(&self, name: &str) -> Result<(), ConnectionError> {
        // Under the connection's lock: a refresh (another caller, the service's keep-alive)
        // cannot rotate the refresh token between the read and the mark, which would leave a
        // live refresh token stored under a connection marked revoked.
        let _lock = self.lock(name)?;
        self.recover(name)?;
        let connection = self.store.get(name)?;
        let config = self.config(&connection)?;
        let signer = self.signer(&connection)?;
        self.retrying(None, || {
            self.instance(&config, &signer)?
                .revoke(&config, &connection.tokens)
        })?;
        tracing::info!(connection = name, "revoked at the server");
        self.store
            .mark_needs_reauthorization(name, &Reauthorization::Revoked)?;
        Ok(())
    }

    /// Marks `name` as needing authorization again for `reason`. A store that refuses is
    /// logged, not returned: the caller's error (the server's refusal) is the one to report,
    /// and the next use meets the same refusal.
    fn mark(&self, name: &str, reason: &Reauthorization) {
        match self.store.mark_needs_reauthorization(name, reason) {
            Ok(()) => tracing::warn!(
                connection = name,
                ?reason,
                "marked as needing authorization again"
            ),
            Err(error) => tracing::error!(
                connection = name,
                ?reason,
                %error,
                "could not mark the connection as needing authorization again"
            ),
        }
    }

    /// Stores `name`'s rescued tokens, if a rescue file exists (taking the lock only then).
    fn recover_if_any(&self, name: &str) -> Result<(), ConnectionError> {
        let path = rescue_path(&self.store, name);
        if !rescue_dir_exists(&path)? {
            return Ok(());
        }
        match std::fs::symlink_metadata(&path) {
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(error) => Err(ConnectionError::Rescue(path, RescueProblem::Io(error))),
            Ok(_) => {
                let _lock = self.lock(name)?;
                self.recover(name)
            }
        }
    }

    /// Moves `name`'s rescued tokens into the store, unless the store already holds the
    /// same or newer ones; removes the rescue file once the store has committed. Call it
    /// under the connection's lock. A rescue file (or directory) that is not safely ours is
    /// not read: [`ConnectionError::Rescue`].
    fn recover(&self, name: &str) -> Result<(), ConnectionError> {
        use std::io::Read as _;
        let path = rescue_path(&self.store, name);
        if !rescue_dir_exists(&path)? {
            return Ok(());
        }
        let rescue_error = |problem| ConnectionError::Rescue(path.clone(), problem);
        let file = match open_private_file(&path, Create::Never, PRIVATE_BITS) {
            Ok(Some((file, _))) => file,
            Ok(None) => return Ok(()),
            Err(Refusal::Unsafe(problem)) => {
                return Err(rescue_error(RescueProblem::Unsafe(problem)));
            }
            Err(Refusal::Io(error)) => return Err(rescue_error(RescueProblem::Io(error))),
        };
        let mut text = String::new();
        // A record is a few kilobytes; more is not one of ours.
        file.take(1 << 20)
            .read_to_string(&mut text)
            .map_err(|error| rescue_error(RescueProblem::Io(error)))?;
        // Sealed when the store has a key; a record in clear (written without one, or by an
        // earlier version) still reads.
        if seal::is_sealed(&text) {
            let Some(key) = self.store.sealing_key() else {
                let key_id = seal::key_id_of(&text)
                    .ok_or_else(|| rescue_error(RescueProblem::Sealed(SealError::Malformed)))?;
                return Err(StoreError::KeyRequired {
                    key_id: key_id.to_owned(),
                }
                .into());
            };
            let plaintext = key
                .open(&text, &rescue_context(name))
                .map_err(|error| rescue_error(RescueProblem::Sealed(error)))?;
            text = String::from_utf8(plaintext)
                .map_err(|_| rescue_error(RescueProblem::NotARecord))?;
        }
        #[derive(serde::Deserialize)]
        struct Rescued {
            name: String,
            tokens: TokenSet,
        }
        let rescued: Rescued =
            serde_json::from_str(&text).map_err(|_| rescue_error(RescueProblem::NotARecord))?;
        // The record names its connection: a file of another connection's (which only a
        // SHA-256 collision of long names could put here, see `hex`) is refused.
        if rescued.name != name {
            return Err(rescue_error(RescueProblem::OtherConnection));
        }
        let stored = self.store.get(name)?;
        let newer = rescued.tokens != stored.tokens
            && rescued.tokens.obtained_at >= stored.tokens.obtained_at;
        if newer {
            self.store.update_tokens(name, &rescued.tokens)?;
        }
        std::fs::remove_file(&path).map_err(|error| rescue_error(RescueProblem::Io(error)))?;
        tracing::info!(
            connection = name,
            stored = newer,
            "recovered unsaved tokens"
        );
        Ok(())
    }

    /// Takes the per-connection lock (in `<store>.locks/`, or in the PostgreSQL store),
    /// waiting at most the lock timeout.
    fn lock(&self, name: &str) -> Result<ConnectionLock<'_>, ConnectionError> {
        lock(&self.store, name, self.lock_timeout)
    }
}

/// The signer for a connection whose client credential is `secret` and whose own keys are
/// in `secrets` (see [`Connections::signer`]).
pub fn connection_signer(
    secret: &SecretSource,
    secrets: &ConnectionSecrets,
) -> Result<Arc<dyn Signer>, ConnectionError> {
    let key = |signer: Result<KeyFileSigner, KeyFileError>| {
        signer
            .map(|signer| Arc::new(signer) as Arc<dyn Signer>)
            .map_err(ConnectionError::Key)
    };
    let client_assertion = match secret {
        SecretSource::PrivateKey { path, key_id } => {
            Some(key(KeyFileSigner::from_pem_file(path, key_id.clone()))?)
        }
        SecretSource::StoredPrivateKey { pem, key_id } => {
            Some(key(KeyFileSigner::from_pem(pem, key_id.clone()))?)
        }
        _ => None,
    };
    let dpop_proof = secrets
        .dpop_key
        .as_deref()
        .map(|pem| key(KeyFileSigner::from_pem(pem, None)))
        .transpose()?;
    let authorization_grant = secrets
        .jwt_bearer()
        .map(|grant| key(KeyFileSigner::from_pem(&grant.pem, grant.key_id.clone())))
        .transpose()?;
    Ok(Arc::new(PurposeSigner {
        client_assertion,
        dpop_proof,
        authorization_grant,
    }))
}

/// Whether a refresh that failed with `error` may have reached the server (and had its
/// refresh token rotated) without its answer arriving: the transport failed, the answer was
/// unreadable, or the call itself was cut short.
fn outcome_unknown(error: &CallError) -> bool {
    use crate::types::Error;
    match error {
        CallError::Connector(Error::Transport(_) | Error::InvalidResponse(_)) => true,
        CallError::Connector(_) => false,
        CallError::Limit(_) | CallError::Runtime(_) => true,
        CallError::GaveUp { last, .. } => outcome_unknown(last),
    }
}

/// What asks for a refresh, which decides under the lock whether it is still needed.
#[derive(Clone, Copy)]
enum Trigger<'a> {
    /// The stored tokens looked due: refreshed unless they no longer are.
    Due,
    /// An API rejected this access token: refreshed unless the stored one differs.
    Rejected(&'a str),
    /// Keep-alive: refreshed unless the tokens were written after `written_before`.
    Idle {
        /// Unix seconds.
        written_before: u64,
    },
}

/// `Ok` when `connection` is active; [`ConnectionError::NeedsReauthorization`] when it is
/// marked.
fn usable(connection: &StoredConnection) -> Result<(), ConnectionError> {
    match &connection.state {
        ConnectionState::Active => Ok(()),
        ConnectionState::NeedsReauthorization { reason, since } => {
            tracing::info!(
                connection = connection.name.as_str(),
                state = %crate::describe::connection_state(&connection.state),
                "refresh: refused; the connection must be authorized again"
            );
            Err(ConnectionError::NeedsReauthorization {
                name: connection.name.clone(),
                reason: reason.clone(),
                since: *since,
            })
        }
    }
}

/// An access token's expiry for a log line: RFC 3339 UTC, or `unknown` when the server sent
/// none.
fn expiry_for_log(expires_at: Option<u64>) -> String {
    expires_at.map_or_else(|| "unknown".to_owned(), crate::describe::format_time)
}

/// How long before its access token expires a connection is reported as expiring soon
/// (seconds).
pub const EXPIRING_SOON_SECONDS: u64 = 300;

/// What a stored connection needs, judged from the store alone (nothing is sent), as
/// `status`, `list` and `show --json` report it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Health {
    /// Its access token is valid for more than [`EXPIRING_SOON_SECONDS`], or the server
    /// sent no expiry.
    Valid,
    /// Its access token expires within [`EXPIRING_SOON_SECONDS`].
    ExpiringSoon,
    /// Its access token has expired, and the next use renews it unattended (with its refresh
    /// token, or by fetching again for client credentials).
    ExpiredRefreshable,
    /// It must be authorized again: the server refused to renew it, or its access token
    /// expired and nothing can renew it without the user.
    NeedsReauthorization,
    /// Its tokens were revoked with `revoke`.
    Revoked,
}

impl Health {
    /// The stable name (`status` and the `status` field of `--json`).
    pub fn name(self) -> &'static str {
        match self {
            Self::Valid => "valid",
            Self::ExpiringSoon => "expiring-soon",
            Self::ExpiredRefreshable => "expired-refreshable",
            Self::NeedsReauthorization => "needs-reauthorization",
            Self::Revoked => "revoked",
        }
    }

    /// Whether the user must act (connect again) before the connection can be used.
    pub fn needs_action(self) -> bool {
        matches!(self, Self::NeedsReauthorization | Self::Revoked)
    }
}

/// `connection`'s health at `now` (Unix seconds).
pub fn health(connection: &StoredConnection, now: u64) -> Health {
    match &connection.state {
        ConnectionState::NeedsReauthorization {
            reason: Reauthorization::Revoked,
            ..
        } => Health::Revoked,
        ConnectionState::NeedsReauthorization { .. } => Health::NeedsReauthorization,
        ConnectionState::Active => match connection.tokens.expires_at {
            None => Health::Valid,
            Some(at) if at <= now => {
                if renewable(connection) {
                    Health::ExpiredRefreshable
                } else {
                    Health::NeedsReauthorization
                }
            }
            Some(at) if at - now <= EXPIRING_SOON_SECONDS => Health::ExpiringSoon,
            Some(_) => Health::Valid,
        },
    }
}

/// Whether the connection can be renewed without the user.
pub fn renewable(connection: &StoredConnection) -> bool {
    renewal(connection).is_ok()
}

/// How a connection's tokens are renewed without the user.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Renewal {
    /// With its refresh token (which the server may rotate: a token at stake).
    Refresh,
    /// By obtaining tokens again: client credentials, a new JWT bearer assertion, or a
    /// token exchange of another stored connection's current token.
    FetchAgain,
}

/// Why a connection cannot be renewed without the user.
#[derive(Clone, Debug, PartialEq, Eq)]
enum NotRenewable {
    /// No refresh token.
    NoRefreshToken,
    /// Exchanged from a token read from this environment variable, which was not kept.
    SubjectNotKept(String),
}

/// How `connection` is renewed, or why it cannot be.
fn renewal(connection: &StoredConnection) -> Result<Renewal, NotRenewable> {
    if connection.grant.fetches_again() {
        return Ok(Renewal::FetchAgain);
    }
    if connection.tokens.refresh_token.is_some() {
        return Ok(Renewal::Refresh);
    }
    match connection
        .secrets
        .exchange()
        .map(|settings| &settings.subject)
    {
        Some(TokenSource::Connection(_)) if connection.grant == Grant::TokenExchange => {
            Ok(Renewal::FetchAgain)
        }
        Some(TokenSource::Environment(var)) if connection.grant == Grant::TokenExchange => {
            Err(NotRenewable::SubjectNotKept(var.clone()))
        }
        _ => Err(NotRenewable::NoRefreshToken),
    }
}

/// The URL an API call for `target` goes to: `target` itself when it is an absolute URL,
/// else `target` (a path such as `/user`, with any query) appended to the profile's
/// `api-base-url`, whose own path is kept (`https://graph.example/v1.0` and `/me` give
/// `https://graph.example/v1.0/me`). `None`: a path, and the profile names no API base URL.
pub fn api_url(profile: &ProviderProfile, target: &str) -> Option<String> {
    if url::Url::parse(target).is_ok() {
        return Some(target.to_owned());
    }
    let base = profile.api_base_url.as_deref()?;
    Some(format!(
        "{}/{}",
        base.trim_end_matches('/'),
        target.trim_start_matches('/')
    ))
}

/// Whether `method` is idempotent (RFC 9110 §9.2.2), so that a request may be sent again.
pub fn is_idempotent(method: &HttpMethod) -> bool {
    matches!(
        method,
        HttpMethod::Get
            | HttpMethod::Head
            | HttpMethod::Options
            | HttpMethod::Put
            | HttpMethod::Delete
    )
}

/// The default notice: a log line.
fn log_notice(notice: &RetryNotice) {
    tracing::warn!(
        attempt = notice.attempt,
        max_attempts = notice.max_attempts,
        delay_ms = notice.delay.as_millis() as u64,
        reason = %notice.reason,
        "retrying"
    );
}

/// Permission bits a lock file may not have: none. It holds nothing, only our private lock
/// directory (checked) leads to it, and earlier versions created lock files with the umask's
/// mode (0644, or 0664 under a 002 umask), which must keep working.
const LOCK_FILE_BITS: u32 = 0;

/// Takes `name`'s lock in `store`, waiting at most `timeout`.
///
/// The lock file lives in `<canonical store path>.locks/`, so every path to one store
/// shares it. The directory is created 0700 and the file 0600, exclusively and without
/// following symbolic links; existing ones must pass the ownership checks. The wait polls
/// (`try_lock`, pauses growing to 25 ms) so that it can give up.
///
/// In the PostgreSQL store the lock is the database's ([`Store::lock_in_database`]): an
/// advisory lock the server releases when the session holding it ends, so the whole fleet
/// shares it and a replica that dies holding it never blocks the others.
fn lock<'a>(
    store: &'a Store,
    name: &str,
    timeout: Duration,
) -> Result<ConnectionLock<'a>, ConnectionError> {
    let started = Instant::now();
    match store.lock_in_database(name, timeout) {
        Ok(Some(lock)) => return Ok(ConnectionLock::Database(lock)),
        Ok(None) => {}
        Err(StoreError::Busy) => {
            let waited = started.elapsed();
            tracing::warn!(
                connection = name,
                waited_ms = waited.as_millis() as u64,
                "gave up waiting for the connection's lock"
            );
            return Err(ConnectionError::LockTimeout {
                path: store.path().to_owned(),
                waited,
            });
        }
        Err(error) => return Err(error.into()),
    }
    let refused = |path: &Path| {
        let path = path.to_owned();
        move |refusal| match refusal {
            Refusal::Io(error) => ConnectionError::Lock(path, error),
            Refusal::Unsafe(problem) => ConnectionError::Unsafe(path, problem),
        }
    };
    let dir = beside(store.canonical_path(), LOCKS);
    private_dir(&dir).map_err(refused(&dir))?;
    let path = dir.join(format!("{}.lock", hex(name)));
    let (file, _) = open_private_file(&path, Create::IfMissing, LOCK_FILE_BITS)
        .map_err(refused(&path))?
        .expect("a missing lock file is created");
    let started = Instant::now();
    let mut pause = Duration::from_millis(2);
    loop {
        match file.try_lock() {
            Ok(()) => return Ok(ConnectionLock::File(FileLock(file))),
            Err(std::fs::TryLockError::WouldBlock) => {}
            Err(std::fs::TryLockError::Error(error)) => {
                return Err(ConnectionError::Lock(path, error));
            }
        }
        let waited = started.elapsed();
        if waited >= timeout {
            tracing::warn!(
                lock = %path.display(),
                waited_ms = waited.as_millis() as u64,
                "gave up waiting for the connection's lock"
            );
            return Err(ConnectionError::LockTimeout { path, waited });
        }
        std::thread::sleep(pause.min(timeout - waited));
        pause = (pause * 2).min(Duration::from_millis(25));
    }
}

/// Deletes connection `name` from `store` (nothing is sent to the server), with any tokens a
/// failed commit left aside for it, under the connection's lock (waiting at most
/// [`DEFAULT_LOCK_TIMEOUT`]). Needs no runtime.
pub fn remove(store: &Store, name: &str) -> Result<(), ConnectionError> {
    let _lock = lock(store, name, DEFAULT_LOCK_TIMEOUT)?;
    discard_rescue(store, name)?;
    store.remove(name)?;
    Ok(())
}

/// Where `name`'s unsaved tokens are kept: `<canonical store path>.unsaved/<name in hex>.json`.
fn rescue_path(store: &Store, name: &str) -> PathBuf {
    beside(store.canonical_path(), RESCUE).join(format!("{}.json", hex(name)))
}

/// What a sealed rescue record is bound to: `rescue/<name>`, so that one copied to another
/// connection's file does not open.
fn rescue_context(name: &str) -> Vec<u8> {
    format!("rescue/{name}").into_bytes()
}

/// Whether the directory of the rescue file `path` exists; one that is not safely ours is
/// a [`ConnectionError::Rescue`].
fn rescue_dir_exists(path: &Path) -> Result<bool, ConnectionError> {
    let dir = path.parent().expect("the rescue file has a directory");
    check_path(dir, Kind::Directory).map_err(|refusal| {
        ConnectionError::Rescue(
            dir.to_owned(),
            match refusal {
                Refusal::Unsafe(problem) => RescueProblem::Unsafe(problem),
                Refusal::Io(error) => RescueProblem::Io(error),
            },
        )
    })
}

/// Writes tokens the store refused to `name`'s rescue file, under the connection's lock:
/// in the (checked, or new and 0700) rescue directory, to a new `.partial` file (exclusive,
/// no symbolic link followed, 0600, synced) renamed into place. A stale partial file of ours
/// is removed first; one that is not safely ours is refused and left alone.
fn keep_aside(store: &Store, name: &str, tokens: &TokenSet) -> Result<PathBuf, std::io::Error> {
    use std::io::Write as _;
    let refused = |path: &Path, refusal| match refusal {
        Refusal::Io(error) => error,
        Refusal::Unsafe(problem) => {
            std::io::Error::other(StoreError::Unsafe(path.to_owned(), problem))
        }
    };
    let path = rescue_path(store, name);
    let dir = path.parent().expect("the rescue file has a directory");
    private_dir(dir).map_err(|refusal| refused(dir, refusal))?;
    let partial = path.with_extension("partial");
    match std::fs::symlink_metadata(&partial) {
        Ok(metadata) => {
            check_metadata(&metadata, Kind::File, PRIVATE_BITS)
                .map_err(|problem| refused(&partial, Refusal::Unsafe(problem)))?;
            std::fs::remove_file(&partial)?;
        }
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => {}
        Err(error) => return Err(error),
    }
    let mut file = new_private_file(&partial)?;
    let record = serde_json::json!({ "name": name, "tokens": tokens }).to_string();
    // With the store's key, sealed as the store's own columns are (bound to the connection).
    let record = match store.sealing_key() {
        Some(key) => key.seal(record.as_bytes(), &rescue_context(name)),
        None => record,
    };
    let written = file
        .write_all(record.as_bytes())
        .and_then(|()| file.sync_all())
        .and_then(|()| std::fs::rename(&partial, &path));
    if let Err(error) = written {
        // Never leave a fragment of the tokens behind (the file is ours: just created).
        let _ = std::fs::remove_file(&partial);
        return Err(error);
    }
    File::open(dir)?.sync_all()?;
    Ok(path)
}

/// Deletes `name`'s rescue file, if any (it is removed, never read or followed). Call it
/// under the connection's lock.
fn discard_rescue(store: &Store, name: &str) -> Result<(), ConnectionError> {
    let path = rescue_path(store, name);
    if !rescue_dir_exists(&path)? {
        return Ok(());
    }
    match std::fs::remove_file(&path) {
        Ok(()) => Ok(()),
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(error) => Err(ConnectionError::Rescue(path, RescueProblem::Io(error))),
    }
}

/// Held while a connection refreshes; released on drop (and by the OS, or the database, if
/// the process dies).
enum ConnectionLock<'a> {
    /// A lock file beside the SQLite store.
    File(#[expect(dead_code, reason = "held for its Drop")] FileLock),
    /// The PostgreSQL store's advisory lock.
    Database(#[expect(dead_code, reason = "held for its Drop")] crate::store::DatabaseLock<'a>),
}

/// A lock file, locked; unlocked on drop.
struct FileLock(File);

impl Drop for FileLock {
    fn drop(&mut self) {
        let _ = self.0.unlock();
    }
}

/// Connection names may hold any character; lock and rescue file names are their hex bytes,
/// and for names over 64 bytes the first 32 bytes' hex plus the name's SHA-256 (file names
/// are limited to 255 bytes). A cryptographic hash, so that no one can craft two names that
/// share a lock or a rescue file (the 64-bit FNV-1a used before could be collided); spelled
/// out here, so a file keeps its name across builds.
fn hex(name: &str) -> String {
    let full: String = name.bytes().map(|byte| format!("{byte:02x}")).collect();
    if full.len() <= 128 {
        return full;
    }
    let digest = ring::digest::digest(&ring::digest::SHA256, name.as_bytes());
    let hash: String = digest
        .as_ref()
        .iter()
        .map(|byte| format!("{byte:02x}"))
        .collect();
    format!("{}-{hash}", &full[..64])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn api_url_appends_a_path_to_the_api_base_url() {
        let mut profile = crate::profile_with_defaults("p", "https://a.example/token");
        assert_eq!(api_url(&profile, "/user"), None);
        let absolute = "https://api.example/user?page=2";
        assert_eq!(api_url(&profile, absolute).as_deref(), Some(absolute));
        for base in ["https://graph.example/v1.0", "https://graph.example/v1.0/"] {
            profile.api_base_url = Some(base.into());
            for path in ["/me?$top=1", "me?$top=1"] {
                assert_eq!(
                    api_url(&profile, path).as_deref(),
                    Some("https://graph.example/v1.0/me?$top=1")
                );
            }
        }
        assert_eq!(api_url(&profile, absolute).as_deref(), Some(absolute));
    }

    #[test]
    fn health_from_the_state_the_expiry_and_what_can_renew_it() {
        let config = crate::config_with_defaults(
            crate::profile_with_defaults("p", "https://a.example/token"),
            "id",
        );
        let connection = |grant, expires_at, refresh: bool, state| StoredConnection {
            name: "c".into(),
            config: config.clone(),
            secret: SecretSource::None,
            secrets: Default::default(),
            grant,
            tokens: TokenSet {
                expires_at,
                refresh_token: refresh.then(|| "rt".to_owned()),
                ..tokens("at")
            },
            created_at: 0,
            updated_at: 0,
            token_writes: 1,
            state,
            refresh_interrupted_at: None,
        };
        let now = 1_000_000;
        let code = Grant::AuthorizationCode;
        let active = || ConnectionState::Active;
        let marked = |reason| ConnectionState::NeedsReauthorization { reason, since: 5 };
        for (grant, expires_at, refresh, state, expected) in [
            (code, None, false, active(), Health::Valid),
            (code, Some(now + 301), false, active(), Health::Valid),
            (code, Some(now + 300), false, active(), Health::ExpiringSoon),
            (code, Some(now + 1), true, active(), Health::ExpiringSoon),
            (code, Some(now), true, active(), Health::ExpiredRefreshable),
            (
                code,
                Some(now - 9),
                false,
                active(),
                Health::NeedsReauthorization,
            ),
            (
                Grant::ClientCredentials,
                Some(now - 9),
                false,
                active(),
                Health::ExpiredRefreshable,
            ),
            (
                code,
                Some(now + 3600),
                true,
                marked(Reauthorization::Revoked),
                Health::Revoked,
            ),
            (
                code,
                Some(now + 3600),
                true,
                marked(Reauthorization::RefreshRefused("invalid_grant".into())),
                Health::NeedsReauthorization,
            ),
        ] {
            let connection = connection(grant, expires_at, refresh, state);
            assert_eq!(health(&connection, now), expected, "{connection:?}");
        }
        assert!(Health::Revoked.needs_action() && Health::NeedsReauthorization.needs_action());
        assert!(!Health::ExpiredRefreshable.needs_action() && !Health::Valid.needs_action());
    }

    #[test]
    fn remove_deletes_the_rescue_file_too() {
        let (_dir, store) = temp_store("remove");
        let config = crate::config_with_defaults(
            crate::profile_with_defaults("p", "https://a.example/token"),
            "id",
        );
        store
            .save(
                "c",
                &config,
                &SecretSource::None,
                Grant::Device,
                &tokens("at"),
            )
            .unwrap();
        let rescue = rescue_path(&store, "c");
        private_dir(rescue.parent().unwrap()).unwrap();
        new_private_file(&rescue).unwrap();
        remove(&store, "c").unwrap();
        assert!(!rescue.exists());
        assert!(matches!(store.get("c"), Err(StoreError::NotFound(_))));
        assert!(matches!(
            remove(&store, "c"),
            Err(ConnectionError::Store(StoreError::NotFound(_)))
        ));
    }

    #[test]
    fn long_names_get_a_stable_file_name() {
        let long = "x".repeat(100);
        assert_eq!(
            hex(&long),
            format!(
                "{}-{}",
                "78".repeat(32),
                "09ecb6ebc8bcefc733f6f2ec44f791abeed6a99edf0cc31519637898aebd52d8"
            )
        );
        assert_eq!(hex("conn"), "636f6e6e");
        // Long names that share their first 32 bytes still get their own files, short
        // enough for any file system (255 bytes, with `.partial`).
        let other = format!("{}y", "x".repeat(99));
        assert_ne!(hex(&long), hex(&other));
        // Two 80-byte names whose 64-bit FNV-1a hashes (the scheme before) are equal
        // (40e86ee995e68b4a, found by a Pollard rho search in minutes): they shared a lock and
        // a rescue file. Now they do not.
        let prefix = "x".repeat(64);
        assert_ne!(
            hex(&format!("{prefix}a9f327ce69682c0c")),
            hex(&format!("{prefix}61889a142813d5d8"))
        );
        assert!(format!("{}.partial", hex(&"\u{10ffff}".repeat(1000))).len() <= 255);
    }

    /// A fresh store `store.db` in a new directory for `label`.
    fn temp_store(label: &str) -> (PathBuf, Store) {
        let dir = std::env::temp_dir().join(format!("connector-{label}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let store = Store::open(&dir.join("store.db")).unwrap();
        (dir, store)
    }

    fn tokens(access: &str) -> TokenSet {
        TokenSet {
            access_token: access.into(),
            token_type: "bearer".into(),
            expires_at: None,
            refresh_token: Some("rt".into()),
            id_token: None,
            scopes: vec![],
            obtained_at: 1,
            extras: vec![],
            dpop_key_thumbprint: None,
        }
    }

    #[test]
    fn a_lock_held_elsewhere_times_out_with_a_typed_error() {
        let (dir, store) = temp_store("lock-timeout");
        let held = lock(&store, "c", Duration::ZERO).unwrap();
        let started = Instant::now();
        let error = lock(&store, "c", Duration::from_millis(200))
            .err()
            .expect("the lock is held");
        let ConnectionError::LockTimeout { path, waited } = error else {
            panic!("expected a lock timeout, got {error:?}");
        };
        assert_eq!(path, dir.join("store.db.locks/63.lock"));
        assert!(waited >= Duration::from_millis(200), "{waited:?}");
        assert!(started.elapsed() < Duration::from_secs(2));
        drop(held);
        drop(lock(&store, "c", Duration::ZERO).unwrap());
    }

    #[cfg(unix)]
    #[test]
    fn every_path_to_a_store_shares_its_lock_and_rescue_file() {
        let (dir, store) = temp_store("lock-identity");
        let real = store.canonical_path().to_owned();
        std::os::unix::fs::symlink(&real, dir.join("alias.db")).unwrap();
        std::os::unix::fs::symlink(&dir, dir.with_extension("linked")).unwrap();
        let paths = [
            dir.join("alias.db"),
            dir.with_extension("linked").join("store.db"),
            dir.join(".").join("store.db"),
        ];
        let held = lock(&store, "c", Duration::ZERO).unwrap();
        for path in paths {
            let other = Store::open(&path).unwrap();
            assert_eq!(other.canonical_path(), real);
            assert_eq!(rescue_path(&other, "c"), rescue_path(&store, "c"));
            assert!(matches!(
                lock(&other, "c", Duration::from_millis(50)),
                Err(ConnectionError::LockTimeout { .. })
            ));
        }
        drop(held);
        let _ = std::fs::remove_file(dir.with_extension("linked"));
    }

    #[cfg(unix)]
    #[test]
    fn lock_files_and_directories_not_safely_ours_are_refused() {
        use std::os::unix::fs::PermissionsExt;
        let (dir, store) = temp_store("lock-unsafe");
        drop(lock(&store, "c", Duration::ZERO).unwrap());
        let locks = dir.join("store.db.locks");
        let file = locks.join("63.lock");
        std::os::unix::fs::chown(&file, Some(65534), Some(65534)).unwrap();
        assert!(matches!(
            lock(&store, "c", Duration::ZERO),
            Err(ConnectionError::Unsafe(path, UnsafeFile::NotOwned { owner: 65534 })) if path == file
        ));
        std::fs::remove_file(&file).unwrap();
        std::os::unix::fs::symlink(dir.join("store.db"), &file).unwrap();
        assert!(matches!(
            lock(&store, "c", Duration::ZERO),
            Err(ConnectionError::Unsafe(path, UnsafeFile::Symlink)) if path == file
        ));
        std::fs::remove_file(&file).unwrap();
        std::fs::set_permissions(&locks, std::fs::Permissions::from_mode(0o777)).unwrap();
        assert!(matches!(
            lock(&store, "c", Duration::ZERO),
            Err(ConnectionError::Unsafe(path, UnsafeFile::Shared { mode: 0o777 })) if path == locks
        ));
        assert!(!file.exists(), "nothing was created in it");
    }

    #[cfg(unix)]
    #[test]
    fn keep_aside_never_follows_or_overwrites_a_partial_file_not_ours() {
        use std::os::unix::fs::PermissionsExt;
        let (dir, store) = temp_store("keep-aside");
        let victim = dir.join("victim");
        std::fs::write(&victim, "unchanged").unwrap();
        let rescue = rescue_path(&store, "c");
        let partial = rescue.with_extension("partial");
        private_dir(rescue.parent().unwrap()).unwrap();

        // A symbolic link is never followed, whoever made it.
        std::os::unix::fs::symlink(&victim, &partial).unwrap();
        let error = keep_aside(&store, "c", &tokens("at")).unwrap_err();
        assert!(matches!(
            error.get_ref().and_then(|e| e.downcast_ref::<StoreError>()),
            Some(StoreError::Unsafe(path, UnsafeFile::Symlink)) if *path == partial
        ));
        // Another user's file is left alone.
        std::fs::remove_file(&partial).unwrap();
        std::fs::write(&partial, "theirs").unwrap();
        std::os::unix::fs::chown(&partial, Some(65534), Some(65534)).unwrap();
        let error = keep_aside(&store, "c", &tokens("at")).unwrap_err();
        assert!(matches!(
            error.get_ref().and_then(|e| e.downcast_ref::<StoreError>()),
            Some(StoreError::Unsafe(path, UnsafeFile::NotOwned { owner: 65534 })) if *path == partial
        ));
        assert_eq!(std::fs::read_to_string(&partial).unwrap(), "theirs");
        assert_eq!(std::fs::read_to_string(&victim).unwrap(), "unchanged");
        assert!(!rescue.exists());

        // A stale partial file of ours is replaced; the record is owner-only.
        std::fs::remove_file(&partial).unwrap();
        std::fs::write(&partial, "stale").unwrap();
        std::fs::set_permissions(&partial, std::fs::Permissions::from_mode(0o600)).unwrap();
        assert_eq!(keep_aside(&store, "c", &tokens("at")).unwrap(), rescue);
        assert!(!partial.exists());
        let mode = std::fs::metadata(&rescue).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        let record: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&rescue).unwrap()).unwrap();
        assert_eq!(record["name"], "c");
    }

    #[test]
    fn a_sealed_store_seals_its_rescue_records() {
        let (dir, clear) = temp_store("sealed-rescue");
        let path = clear.path().to_owned();
        drop(clear);
        let key = SealingKey::from_hex(&"ab".repeat(32)).unwrap();
        let store = Store::open_sealed(&path, key.clone()).unwrap();
        let rescue = keep_aside(&store, "c", &tokens("secret-access-token")).unwrap();
        let text = std::fs::read_to_string(&rescue).unwrap();
        assert!(seal::is_sealed(&text));
        assert!(!text.contains("secret-access-token"));
        let record: serde_json::Value =
            serde_json::from_slice(&key.open(&text, &rescue_context("c")).unwrap()).unwrap();
        assert_eq!(record["name"], "c");
        assert_eq!(record["tokens"]["access_token"], "secret-access-token");
        // Bound to its connection.
        assert_eq!(
            key.open(&text, &rescue_context("d")),
            Err(SealError::Tampered)
        );
        drop(store);
        let _ = std::fs::remove_dir_all(dir);
    }
}

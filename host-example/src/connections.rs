//! Using stored connections: valid tokens on demand, refresh coordination, authorized calls,
//! revocation.
//!
//! Refresh-token rotation makes refreshing dangerous: a rotated refresh token replayed by a
//! second, concurrent refresh makes a careful server revoke the whole grant. So:
//! - at most one refresh per connection runs at a time, across threads and processes: an
//!   exclusive lock on a per-connection lock file beside the store (`flock` on Unix);
//! - after taking the lock the stored tokens are read again, and the refresh is skipped when
//!   another caller already did it;
//! - the new token set is committed to SQLite (WAL, `synchronous = FULL`) before the lock is
//!   released and before the new access token is used.
//!
//! The one window in which a rotated refresh token can be lost is between the server's answer
//! arriving and the commit returning (a crash there loses it). `RefreshOutcome::window`
//! measures it on every refresh.
//!
//! When the commit fails (a full disk, a store locked too long, a broken file), the new
//! tokens are written to a rescue file beside the store (`<store>.unsaved/`, owner-only) and
//! handed to the caller in [`ConnectionError::Unsaved`]; the next use of the connection
//! moves them into the store, under the connection's lock.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use std::sync::Arc;

use crate::bindings::exports::oauth_connector::oauth2::api::ApiResponse;
use crate::retry::{self, RetryNotice, RetryPolicy};
use crate::runtime::{CallError, Runtime, Session};
use crate::signer::{KeyFileError, KeyFileSigner, NoSigner, Signer};
use crate::store::{Grant, SecretSource, Store, StoreError, StoredConnection};
use crate::types::{ConnectionConfig, HttpMethod, HttpRequest, TokenSet};
use crate::{HttpTransport, Limits, default_allow_list};

/// Why an operation on a stored connection failed.
#[derive(Debug)]
pub enum ConnectionError {
    /// The store failed.
    Store(StoreError),
    /// The component refused, or the call failed (see `CallError`; a
    /// `reauthorization-required` error means the user must connect again).
    Call(CallError),
    /// The client secret's environment variable is not set (or is empty).
    SecretUnavailable(String),
    /// The private key file of a `private_key_jwt` client cannot be used.
    Key(KeyFileError),
    /// The connection cannot be renewed without the user: its access token was rejected
    /// or has expired, and it has no refresh token (some vendors, for example GitHub OAuth
    /// apps and Notion, issue none). Connect again.
    NoRefreshToken {
        /// Why a new token was needed.
        reason: &'static str,
    },
    /// The per-connection lock could not be taken.
    Lock(PathBuf, std::io::Error),
    /// A rescue file (tokens a failed commit left aside) could not be read or removed.
    Rescue(PathBuf, String),
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
                "the connection's client secret comes from ${var}, which is not set or is empty"
            ),
            Self::Key(error) => error.fmt(f),
            Self::NoRefreshToken { reason } => write!(
                f,
                "the connection must be authorized again (connect again): {reason}, and the \
                 server issued no refresh token to renew it"
            ),
            Self::Lock(path, error) => write!(f, "cannot lock {}: {error}", path.display()),
            Self::Rescue(path, reason) => write!(
                f,
                "cannot recover the unsaved tokens in {}: {reason}",
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
                | Self::Call(CallError::Connector(
                    crate::types::Error::ReauthorizationRequired(_)
                ))
        )
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
}

impl<'a> Connections<'a> {
    /// Opens the store at `path`; `env` resolves secrets kept as environment references.
    pub fn open(
        runtime: &'a Runtime,
        path: &Path,
        env: &'a dyn Fn(&str) -> Option<String>,
    ) -> Result<Self, ConnectionError> {
        Ok(Self {
            runtime,
            store: Store::open(path)?,
            env,
            retry: RetryPolicy::default(),
            notify: &log_notice,
        })
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
            SecretSource::None | SecretSource::PrivateKey { .. } => None,
            SecretSource::Stored(secret) => Some(secret.clone()),
            SecretSource::Environment(var) => Some(
                (self.env)(var)
                    .filter(|value| !value.is_empty())
                    .ok_or_else(|| ConnectionError::SecretUnavailable(var.clone()))?,
            ),
        };
        Ok(config)
    }

    fn session(&self, config: &ConnectionConfig) -> Result<Session, ConnectionError> {
        let transport = HttpTransport::new(default_allow_list(&config.profile), Limits::default());
        Ok(self.runtime.instantiate(transport)?)
    }

    /// The signer for `connection`'s client assertions: its key file, or none.
    pub fn signer(
        &self,
        connection: &StoredConnection,
    ) -> Result<Arc<dyn Signer>, ConnectionError> {
        Ok(match &connection.secret {
            SecretSource::PrivateKey { path, key_id } => Arc::new(
                KeyFileSigner::from_pem_file(path, key_id.clone()).map_err(ConnectionError::Key)?,
            ),
            _ => Arc::new(NoSigner),
        })
    }

    /// A fresh instance for `config` that signs with `signer`.
    fn instance(
        &self,
        config: &ConnectionConfig,
        signer: &Arc<dyn Signer>,
    ) -> Result<Session, CallError> {
        let transport = HttpTransport::new(default_allow_list(&config.profile), Limits::default());
        let mut session = self.runtime.instantiate(transport)?;
        session.set_signer(Arc::clone(signer));
        Ok(session)
    }

    /// Runs a token-endpoint operation with retries by the policy.
    fn retrying<T>(&self, operation: impl FnMut() -> Result<T, CallError>) -> Result<T, CallError> {
        retry::call(
            &self.retry,
            None,
            &mut |notice| (self.notify)(notice),
            operation,
        )
    }

    /// Valid tokens for `name`: the stored ones, or freshly refreshed (or re-fetched, for
    /// client credentials) when they are due.
    pub fn valid_tokens(&self, name: &str) -> Result<RefreshOutcome, ConnectionError> {
        self.recover_if_any(name)?;
        let connection = self.store.get(name)?;
        // Deciding needs no client secret: it is resolved only for an actual refresh.
        if !self
            .session(&connection.config)?
            .needs_refresh(&connection.tokens, None)?
        {
            tracing::debug!(connection = name, "stored tokens are valid");
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
        let waited = Instant::now();
        let _lock = self.lock(name)?;
        tracing::debug!(
            connection = name,
            waited_ms = waited.elapsed().as_secs_f64() * 1e3,
            "holding the connection's lock"
        );
        self.recover(name)?;
        let connection = self.store.get(name)?;
        let mut session = self.session(&connection.config)?;
        let still_needed = match rejected {
            Some(rejected) => connection.tokens.access_token == rejected,
            None => session.needs_refresh(&connection.tokens, None)?,
        };
        if !still_needed {
            tracing::info!(
                connection = name,
                "another process refreshed meanwhile; using its tokens"
            );
            return Ok(RefreshOutcome {
                tokens: connection.tokens,
                refreshed: false,
                window: None,
            });
        }
        let config = self.config(&connection)?;
        let renewable = connection.grant == Grant::ClientCredentials
            || connection.tokens.refresh_token.is_some();
        if !renewable {
            return Err(ConnectionError::NoRefreshToken {
                reason: if rejected.is_some() {
                    "the API rejected its access token"
                } else {
                    "its access token has expired"
                },
            });
        }
        drop(session);
        let signer = self.signer(&connection)?;
        let mut answered_at = None;
        let tokens = self.retrying(|| {
            let mut session = self.instance(&config, &signer)?;
            let tokens = match connection.grant {
                Grant::ClientCredentials => session.fetch_client_credentials(&config),
                Grant::AuthorizationCode | Grant::Device => {
                    session.refresh(&config, &connection.tokens)
                }
            };
            answered_at = session.last_response_at();
            tokens
        })?;
        if let Err(error) = self.store.update_tokens(name, &tokens) {
            // A connection removed meanwhile has nothing to come back to.
            let rescue = match error {
                StoreError::NotFound(_) => Err(std::io::Error::other("the connection was removed")),
                _ => self.keep_aside(name, &tokens),
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
            grant = ?connection.grant,
            rotated = tokens.refresh_token != connection.tokens.refresh_token,
            expires_at = tokens.expires_at,
            window_ms = window.map(|w| w.as_secs_f64() * 1e3),
            "refreshed and stored"
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
        let (answer, mut attempts, mut gave_up) = self.send_api(&config, &first.tokens, request)?;
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
        let (retry, more, last_gave_up) = self.send_api(&config, &second.tokens, request)?;
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
            |_| Ok(self.session(config)?.call_api(config, tokens, request)?),
        );
        // A request that is not retried did not "give up": it was never to be sent again.
        let gave_up = outcome.gave_up.filter(|_| policy != RetryPolicy::NONE);
        Ok((outcome.result?, outcome.attempts, gave_up))
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
        let _lock = self.lock(name)?;
        self.store.save(name, config, secret, grant, tokens)?;
        // Tokens a failed refresh of the replaced connection left aside belong to its old
        // grant: they must not overwrite the new ones.
        discard_rescue(self.store.path(), name)?;
        Ok(())
    }

    /// Deletes a connection from the store (nothing is sent to the server), with any tokens
    /// a failed commit left aside for it.
    pub fn remove(&self, name: &str) -> Result<(), ConnectionError> {
        remove(&self.store, name)
    }

    /// Revokes the connection's tokens at the server (RFC 7009); the connection stays stored,
    /// and its next use fails with `reauthorization-required`.
    pub fn revoke(&self, name: &str) -> Result<(), ConnectionError> {
        self.recover_if_any(name)?;
        let connection = self.store.get(name)?;
        let config = self.config(&connection)?;
        let signer = self.signer(&connection)?;
        self.retrying(|| {
            self.instance(&config, &signer)?
                .revoke(&config, &connection.tokens)
        })?;
        tracing::info!(connection = name, "revoked at the server");
        Ok(())
    }

    /// Writes tokens the store refused to the rescue file (owner-only, replaced atomically,
    /// synced), under the connection's lock.
    fn keep_aside(&self, name: &str, tokens: &TokenSet) -> Result<PathBuf, std::io::Error> {
        let path = rescue_path(self.store.path(), name);
        let dir = path.parent().expect("the rescue file has a directory");
        crate::store::create_private_dir(dir)?;
        let partial = path.with_extension("partial");
        let record = serde_json::json!({ "name": name, "tokens": tokens });
        let written = crate::store::write_private_file(&partial, record.to_string().as_bytes())
            .and_then(|()| std::fs::rename(&partial, &path));
        if let Err(error) = written {
            // Never leave a fragment of the tokens behind.
            let _ = std::fs::remove_file(&partial);
            return Err(error);
        }
        File::open(dir)?.sync_all()?;
        Ok(path)
    }

    /// Stores `name`'s rescued tokens, if a rescue file exists (taking the lock only then).
    fn recover_if_any(&self, name: &str) -> Result<(), ConnectionError> {
        if rescue_path(self.store.path(), name).exists() {
            let _lock = self.lock(name)?;
            self.recover(name)?;
        }
        Ok(())
    }

    /// Moves `name`'s rescued tokens into the store, unless the store already holds the
    /// same or newer ones; removes the rescue file once the store has committed. Call it
    /// under the connection's lock.
    fn recover(&self, name: &str) -> Result<(), ConnectionError> {
        let path = rescue_path(self.store.path(), name);
        let text = match std::fs::read_to_string(&path) {
            Ok(text) => text,
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(()),
            Err(error) => return Err(ConnectionError::Rescue(path, error.to_string())),
        };
        #[derive(serde::Deserialize)]
        struct Rescued {
            name: String,
            tokens: TokenSet,
        }
        let rescued: Rescued = serde_json::from_str(&text)
            .map_err(|_| ConnectionError::Rescue(path.clone(), "not a rescue record".to_owned()))?;
        if rescued.name != name {
            return Err(ConnectionError::Rescue(
                path,
                "the record names another connection".to_owned(),
            ));
        }
        let stored = self.store.get(name)?;
        let newer = rescued.tokens != stored.tokens
            && rescued.tokens.obtained_at >= stored.tokens.obtained_at;
        if newer {
            self.store.update_tokens(name, &rescued.tokens)?;
        }
        std::fs::remove_file(&path)
            .map_err(|error| ConnectionError::Rescue(path.clone(), error.to_string()))?;
        tracing::info!(
            connection = name,
            stored = newer,
            "recovered unsaved tokens"
        );
        Ok(())
    }

    /// Takes the per-connection lock (blocking), in `<store>.locks/`.
    fn lock(&self, name: &str) -> Result<ConnectionLock, ConnectionError> {
        lock(self.store.path(), name)
    }
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

/// Takes `name`'s lock in the store at `store` (blocking).
fn lock(store: &Path, name: &str) -> Result<ConnectionLock, ConnectionError> {
    let dir = beside_store(store, ".locks");
    let path = dir.join(format!("{}.lock", hex(name)));
    let lock_error = |error| ConnectionError::Lock(path.clone(), error);
    crate::store::create_private_dir(&dir).map_err(lock_error)?;
    let file = File::options()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .map_err(lock_error)?;
    file.lock().map_err(lock_error)?;
    Ok(ConnectionLock(file))
}

/// Deletes connection `name` from `store` (nothing is sent to the server), with any tokens a
/// failed commit left aside for it, under the connection's lock. Needs no runtime.
pub fn remove(store: &Store, name: &str) -> Result<(), ConnectionError> {
    let _lock = lock(store.path(), name)?;
    discard_rescue(store.path(), name)?;
    store.remove(name)?;
    Ok(())
}

/// Where `name`'s unsaved tokens are kept: `<store>.unsaved/<name in hex>.json`.
fn rescue_path(store: &Path, name: &str) -> PathBuf {
    beside_store(store, ".unsaved").join(format!("{}.json", hex(name)))
}

/// Deletes `name`'s rescue file, if any. Call it under the connection's lock.
fn discard_rescue(store: &Path, name: &str) -> Result<(), ConnectionError> {
    let path = rescue_path(store, name);
    match std::fs::remove_file(&path) {
        Ok(()) => Ok(()),
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(error) => Err(ConnectionError::Rescue(path, error.to_string())),
    }
}

/// Held while a connection refreshes; released on drop (and by the OS if the process dies).
struct ConnectionLock(File);

impl Drop for ConnectionLock {
    fn drop(&mut self) {
        let _ = self.0.unlock();
    }
}

/// `<store><suffix>`: the lock and rescue directories.
fn beside_store(store: &Path, suffix: &str) -> PathBuf {
    let mut name = store.file_name().unwrap_or_default().to_os_string();
    name.push(suffix);
    store.with_file_name(name)
}

/// Connection names may hold any character; lock file names are their hex bytes, and for
/// long names a prefix plus a hash (file names are limited to 255 bytes).
fn hex(name: &str) -> String {
    let full: String = name.bytes().map(|byte| format!("{byte:02x}")).collect();
    if full.len() <= 128 {
        return full;
    }
    // FNV-1a, written out: std's hashers may change between Rust releases, and a lock or
    // rescue file must keep its name across builds of this program.
    let hash = name.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |hash, byte| {
        (hash ^ u64::from(byte)).wrapping_mul(0x0100_0000_01b3)
    });
    format!("{}-{hash:016x}", &full[..64])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn remove_deletes_the_rescue_file_too() {
        let dir = std::env::temp_dir().join(format!("connector-remove-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let store = Store::open(&dir.join("store.db")).unwrap();
        let tokens = TokenSet {
            access_token: "at".into(),
            token_type: "bearer".into(),
            expires_at: None,
            refresh_token: Some("rt".into()),
            id_token: None,
            scopes: vec![],
            obtained_at: 1,
            extras: vec![],
        };
        let config = ConnectionConfig {
            profile: crate::profile_with_defaults("p", "https://a.example/token"),
            client: crate::types::Client {
                client_id: "id".into(),
                client_secret: None,
                auth_method: None,
            },
            redirect_uri: None,
            scopes: vec![],
            authorize_params: vec![],
            token_requests: crate::no_token_extras(),
            variables: vec![],
            offline_access: false,
        };
        store
            .save("c", &config, &SecretSource::None, Grant::Device, &tokens)
            .unwrap();
        let rescue = rescue_path(store.path(), "c");
        crate::store::create_private_dir(rescue.parent().unwrap()).unwrap();
        crate::store::write_private_file(&rescue, b"{}").unwrap();
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
            format!("{}-{}", "78".repeat(32), "052c9e7cec411035")
        );
        assert_eq!(hex("conn"), "636f6e6e");
    }
}

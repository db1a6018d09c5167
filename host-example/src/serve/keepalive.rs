//! Keeping connections alive: a background sweep that refreshes connections before their
//! refresh token idles out, and the connection's last error (`last_error`, shown by
//! `GET /v1/connections/{id}`).
//!
//! Many authorization servers expire a refresh token that goes unused for a while (a
//! sliding window: 14 days at some, 90 at others), and a connection nobody used for that long
//! is lost without the user. So every `--keep-alive-interval` (default 300 s; at least 1) a
//! thread of its own refreshes, oldest first, the service connections that:
//! - are active (not marked as needing re-authorization),
//! - are renewed with a refresh token (authorization code or device; client credentials are
//!   fetched again and cannot idle out; a connection without a refresh token has nothing to
//!   keep alive),
//! - and whose tokens were last written (connected, refreshed or kept alive) at least
//!   `--keep-alive-after` ago (default 7 days; `0` turns keep-alive refreshes off).
//!
//! The refresh is [`Connections::refresh_idle`]: the same per-connection lock, re-read and
//! commit as every other refresh, so it never races a `/token` call, another process or
//! the CLI, and a rotated refresh token is stored (or kept aside) before the lock is released;
//! one written meanwhile by someone else is left alone. A success sets `kept_alive_at`; a
//! refusal (`invalid_grant`: revoked or expired at the server) marks the connection as
//! needing re-authorization, as any refresh does, and the webhook then tells the tenant
//! ([`super::webhooks`]); any failure sets `last_error` and `last_error_at`.
//!
//! Bounded: at most [`BATCH`] refreshes per sweep (about 28 800 a day at the default
//! interval, enough for some 200 000 connections with the default `--keep-alive-after`), one
//! at a time, so a provider sees no burst; the next sweep starts an interval after one ends.
//! A failing connection (or a panic) is logged and the sweep goes on with the next one; the
//! thread never stops the service.
//!
//! `last_error` holds `{"message", "code"}` as JSON: a short message written here from the
//! error's kind (never a token, a secret, a server's free text or a path) and, for an OAuth
//! error, its RFC 6749 code. It is set by the sweep and by `/token` and `/request` when they
//! fail ([`record_failure`]), kept (with `last_error_at`) after later successes so that a
//! tenant can see what happened and when, and cleared when the connection is connected
//! again.

use std::time::{Duration, Instant};

use super::ServeError;
use super::auth::TenantId;
use super::connections::internal_name;
use super::token_cache::TokenCache;
use super::webhooks::Notifier;
use crate::connections::{ConnectionError, Connections};
use crate::describe::format_time;
use crate::runtime::{CallError, Runtime};
use crate::sql_params as params;
use crate::store::{ConnectionState, Store, StoreError, StoredConnection};
use crate::types::{Error as ConnectorError, TransportError};

/// How often the sweep runs, by default.
pub const DEFAULT_INTERVAL: Duration = Duration::from_secs(300);

/// How long a connection's tokens may go unwritten before the sweep refreshes them, by
/// default: well inside the shortest idle expiry seen in practice (14 days).
pub const DEFAULT_AFTER: Duration = Duration::from_secs(7 * 24 * 3600);

/// The most refreshes one sweep makes.
pub const BATCH: usize = 100;

/// The longest `last_error` message kept, in characters.
const MAX_MESSAGE: usize = 200;

/// A service connection the sweep looked at: tenant, the tenant's connection id, and the
/// stored connection.
pub type Candidate = (i64, String, StoredConnection);

/// Whether `connection` is due for a keep-alive refresh at `now` (Unix seconds): active,
/// renewed with a refresh token (which it has), and its tokens written at least `after` ago.
pub fn is_due(connection: &StoredConnection, now: u64, after: Duration) -> bool {
    connection.state == ConnectionState::Active
        && !connection.grant.fetches_again()
        && connection.tokens.refresh_token.is_some()
        && connection.updated_at <= now.saturating_sub(after.as_secs())
}

/// The candidates due at `now`, oldest tokens first (then by tenant and id), at most `limit`.
pub fn choose_due(
    mut candidates: Vec<Candidate>,
    now: u64,
    after: Duration,
    limit: usize,
) -> Vec<Candidate> {
    candidates.retain(|(_, _, connection)| is_due(connection, now, after));
    candidates.sort_by(|a, b| (a.2.updated_at, a.0, &a.1).cmp(&(b.2.updated_at, b.0, &b.1)));
    candidates.truncate(limit);
    candidates
}

/// A failure as `last_error` records it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Failure {
    /// What failed, short, for a person (never a secret or a server's free text).
    pub message: String,
    /// The OAuth error code (RFC 6749 §5.2), when the server sent one.
    pub code: Option<String>,
}

/// What `error` records as the connection's last error; `None` when it says nothing about
/// the connection: it is marked already (nothing was sent), it is gone, or the caller's
/// request was refused before anything was sent (a URL off the allow-list, a bad request).
pub fn failure(error: &ConnectionError) -> Option<Failure> {
    let plain = |message: &str| {
        Some(Failure {
            message: message.to_owned(),
            code: None,
        })
    };
    match error {
        ConnectionError::Call(call) => call_failure(call),
        ConnectionError::NeedsReauthorization { .. }
        | ConnectionError::Store(StoreError::NotFound(_)) => None,
        ConnectionError::NoRefreshToken { .. } => {
            plain("a new access token is needed and there is no refresh token to get one with")
        }
        ConnectionError::SecretUnavailable(var) => Some(Failure {
            message: shorten(&format!(
                "the client secret's environment variable ${var} is not set"
            )),
            code: None,
        }),
        ConnectionError::SecretEmpty(var) => Some(Failure {
            message: shorten(&format!(
                "the client secret's environment variable ${var} is empty"
            )),
            code: None,
        }),
        ConnectionError::Key(_) => plain("the client's private key file cannot be used"),
        ConnectionError::SubjectNotKept { .. } => plain(
            "the exchanged token has expired and the token it was exchanged from was not kept",
        ),
        ConnectionError::SubjectIsItself(_) | ConnectionError::GrantSettingsMissing { .. } => {
            plain("the connection's grant settings cannot obtain tokens again")
        }
        ConnectionError::ActorTokenUnavailable(var) => Some(Failure {
            message: shorten(&format!(
                "the actor token's environment variable ${var} is not set or empty"
            )),
            code: None,
        }),
        ConnectionError::LockTimeout { .. } => {
            plain("another refresh of the connection held its lock too long; nothing was changed")
        }
        ConnectionError::Unsaved { .. } => plain(
            "the refreshed tokens could not be stored (kept aside for the next use; see the \
             service's log)",
        ),
        ConnectionError::Lock(..)
        | ConnectionError::Unsafe(..)
        | ConnectionError::Rescue(..)
        | ConnectionError::Store(_) => plain("the service's store failed (see its log)"),
    }
}

fn call_failure(error: &CallError) -> Option<Failure> {
    let failure = |message: String, code: Option<String>| {
        Some(Failure {
            message: shorten(&message),
            code,
        })
    };
    let code = |error: &crate::types::OauthError| Some(crate::describe::error_code(&error.code));
    let last = match error.last() {
        CallError::Connector(error) => error,
        CallError::Limit(_) => {
            return failure("the component exceeded a sandbox limit".to_owned(), None);
        }
        CallError::Runtime(_) | CallError::GaveUp { .. } => {
            return failure(
                "the component call failed (see the service's log)".to_owned(),
                None,
            );
        }
    };
    let retried = match error {
        CallError::GaveUp { attempts, .. } => format!(" (after {attempts} attempts)"),
        _ => String::new(),
    };
    match last {
        ConnectorError::ReauthorizationRequired(refusal) => failure(
            "the authorization server refused to renew the connection; connect it again".into(),
            code(refusal),
        ),
        ConnectorError::ServerSaidNo(refusal) => failure(
            "the authorization server refused the request".into(),
            code(refusal),
        ),
        ConnectorError::ServerUnavailable(unavailable) => failure(
            format!(
                "the server is unavailable (HTTP {}){retried}",
                unavailable.status
            ),
            unavailable.error.as_ref().and_then(code),
        ),
        ConnectorError::Transport(TransportError::Denied(_))
        | ConnectorError::Transport(TransportError::InvalidRequest(_)) => None,
        ConnectorError::Transport(transport) => failure(
            format!(
                "{}{retried}",
                match transport {
                    TransportError::Timeout => "the server did not answer in time".to_owned(),
                    TransportError::ConnectionFailed(_) => "could not connect to the server".into(),
                    TransportError::Tls(_) =>
                        "the TLS handshake or certificate check failed".into(),
                    TransportError::ResponseTooLarge(cap) => {
                        format!("the server's answer was larger than {cap} bytes")
                    }
                    _ => "the request to the server failed".into(),
                }
            ),
            None,
        ),
        ConnectorError::InvalidResponse(invalid) => failure(
            format!(
                "the server's answer could not be used (HTTP {})",
                invalid.status
            ),
            None,
        ),
        ConnectorError::Configuration(_) => {
            failure("the connection's configuration cannot be used".into(), None)
        }
        ConnectorError::Callback(_) | ConnectorError::Discovery(_) => {
            failure("the sign-in could not be completed".into(), None)
        }
        ConnectorError::Signing(_) => {
            failure("the client assertion could not be signed".into(), None)
        }
    }
}

/// `text` without control characters, at most [`MAX_MESSAGE`] characters.
fn shorten(text: &str) -> String {
    let text = crate::describe::printable(text);
    match text.char_indices().nth(MAX_MESSAGE) {
        Some((cut, _)) => format!("{}…", &text[..cut]),
        None => text,
    }
}

/// Records `error` as tenant `tenant`'s connection `id`'s last error, now, when it is one
/// ([`failure`]). A store that refuses is logged: the caller's error is the one to report.
/// Returns whether it recorded one.
pub fn record_failure(store: &Store, tenant: i64, id: &str, error: &ConnectionError) -> bool {
    let Some(failure) = failure(error) else {
        return false;
    };
    let value = serde_json::json!({ "message": failure.message, "code": failure.code });
    let written = store.db().execute(
        "UPDATE service_connections SET last_error = ?3, last_error_at = ?4
         WHERE tenant_id = ?1 AND id = ?2",
        params![tenant, id, value.to_string(), crate::store::now() as i64],
    );
    if let Err(error) = written {
        tracing::error!(tenant, connection = id, %error, "could not record the last error");
    }
    true
}

/// Tenant `tenant`'s connection `id`'s last error as the API shows it: `{"message", "code",
/// "at"}` (`code` null unless the server sent an OAuth error), or `None`.
pub fn last_error(
    store: &Store,
    tenant: i64,
    id: &str,
) -> Result<Option<serde_json::Value>, StoreError> {
    let row: Option<(Option<String>, Option<i64>)> = store.db().query_opt(
        "SELECT last_error, last_error_at FROM service_connections
         WHERE tenant_id = ?1 AND id = ?2",
        params![tenant, id],
        |row| Ok((row.get(0)?, row.get(1)?)),
    )?;
    let Some((Some(text), Some(at))) = row else {
        return Ok(None);
    };
    let stored: serde_json::Value = serde_json::from_str(&text).unwrap_or_default();
    Ok(Some(serde_json::json!({
        "message": stored["message"].as_str().unwrap_or("unknown"),
        "code": stored["code"].as_str(),
        "at": format_time(at.max(0) as u64),
    })))
}

/// What one sweep did.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Swept {
    /// Connections refreshed.
    pub refreshed: usize,
    /// Connections another caller refreshed meanwhile.
    pub skipped: usize,
    /// Connections whose refresh failed.
    pub failed: usize,
}

/// Starts the keep-alive thread on the store at `path` (sealed with `key`): every `interval`,
/// one [`sweep`] of connections unwritten for `after`; tells `changes` of every connection
/// whose refresh failed. Returns once the thread has opened the store.
pub fn start(
    runtime: &'static Runtime,
    path: std::path::PathBuf,
    key: Option<crate::seal::SealingKey>,
    interval: Duration,
    after: Duration,
    changes: Notifier,
    tokens: TokenCache,
) -> Result<(), ServeError> {
    let (opened, open_result) = std::sync::mpsc::channel();
    let dispatch = tracing::dispatcher::get_default(|dispatch| dispatch.clone());
    std::thread::Builder::new()
        .name("connector-keepalive".into())
        .spawn(move || {
            let _log = tracing::dispatcher::set_default(&dispatch);
            let env: &'static dyn Fn(&str) -> Option<String> = &super::process_env;
            let connections = match Connections::open_with_key(runtime, &path, env, key) {
                Ok(connections) => {
                    let _ = opened.send(Ok(()));
                    connections
                }
                Err(error) => {
                    let _ = opened.send(Err(match error {
                        ConnectionError::Store(error) => ServeError::Store(error),
                        other => ServeError::Io(std::io::Error::other(other.to_string())),
                    }));
                    return;
                }
            };
            tracing::info!(
                interval_s = interval.as_secs(),
                after_s = after.as_secs(),
                "keep-alive: refreshing connections unused for long"
            );
            loop {
                std::thread::sleep(interval);
                let started = Instant::now();
                let swept = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                    sweep(&connections, after, &changes, &tokens)
                }));
                match swept {
                    Ok(Ok(swept)) if swept == Swept::default() => {}
                    Ok(Ok(swept)) => tracing::info!(
                        refreshed = swept.refreshed,
                        skipped = swept.skipped,
                        failed = swept.failed,
                        elapsed_ms = started.elapsed().as_millis() as u64,
                        "keep-alive: swept"
                    ),
                    Ok(Err(error)) => {
                        tracing::error!(%error, "keep-alive: the sweep could not read the store")
                    }
                    Err(_) => {
                        tracing::error!("keep-alive: the sweep panicked; the next runs as usual")
                    }
                }
            }
        })
        .map_err(ServeError::Io)?;
    open_result.recv().unwrap_or_else(|_| {
        Err(ServeError::Io(std::io::Error::other(
            "the keep-alive thread ended before opening the store",
        )))
    })
}

/// One sweep: refreshes up to [`BATCH`] due service connections ([`choose_due`]), one at a
/// time; records `kept_alive_at` or the failure. Fails only when the store cannot be read.
pub fn sweep(
    connections: &Connections<'_>,
    after: Duration,
    changes: &Notifier,
    tokens: &TokenCache,
) -> Result<Swept, StoreError> {
    let store = connections.store();
    let now = crate::store::now();
    let written_before = now.saturating_sub(after.as_secs());
    // Only the columns stored in clear narrow the candidates; the tokens (sealed) are read
    // for those only.
    let rows: Vec<(i64, String)> = store.db().query(
        "SELECT sc.tenant_id, sc.id FROM service_connections sc
         JOIN connections c ON c.name = 't' || sc.tenant_id || ':' || sc.id
         WHERE c.reauthorization IS NULL AND c.updated_at <= ?1",
        params![written_before as i64],
        |row| Ok((row.get(0)?, row.get(1)?)),
    )?;
    let mut candidates = Vec::with_capacity(rows.len());
    for (tenant, id) in rows {
        match store.get(&internal_name(TenantId(tenant), &id)) {
            Ok(connection) => candidates.push((tenant, id, connection)),
            Err(StoreError::NotFound(_)) => {}
            Err(error) => {
                tracing::error!(tenant, connection = id.as_str(), %error, "keep-alive: unreadable");
            }
        }
    }
    let mut swept = Swept::default();
    for (tenant, id, connection) in choose_due(candidates, now, after, BATCH) {
        let refreshed = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            connections.refresh_idle(&connection.name, written_before)
        }));
        // Whatever happened, `/token` asks the store next time.
        tokens.forget(&connection.name);
        match refreshed {
            Ok(Ok(outcome)) if outcome.refreshed => {
                swept.refreshed += 1;
                if let Err(error) = store.db().execute(
                    "UPDATE service_connections SET kept_alive_at = ?3
                     WHERE tenant_id = ?1 AND id = ?2",
                    params![tenant, id, crate::store::now() as i64],
                ) {
                    tracing::error!(tenant, connection = id.as_str(), %error, "keep-alive: not recorded");
                }
            }
            Ok(Ok(_)) => swept.skipped += 1,
            Ok(Err(error)) => {
                swept.failed += 1;
                tracing::warn!(
                    tenant,
                    connection = id.as_str(),
                    %error,
                    "keep-alive: the refresh failed"
                );
                record_failure(store, tenant, &id, &error);
                changes.connection_changed(tenant, &id);
            }
            Err(_) => {
                swept.failed += 1;
                tracing::error!(
                    tenant,
                    connection = id.as_str(),
                    "keep-alive: the refresh panicked"
                );
            }
        }
    }
    Ok(swept)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{Grant, Reauthorization, SecretSource};
    use crate::types::{OauthError, TokenSet};

    fn connection(
        grant: Grant,
        refresh: bool,
        updated_at: u64,
        state: ConnectionState,
    ) -> StoredConnection {
        StoredConnection {
            name: "c".into(),
            config: crate::config_with_defaults(
                crate::profile_with_defaults("p", "https://a.example/token"),
                "id",
            ),
            secret: SecretSource::None,
            secrets: Default::default(),
            grant,
            tokens: TokenSet {
                access_token: "at".into(),
                token_type: "bearer".into(),
                expires_at: Some(updated_at + 3600),
                refresh_token: refresh.then(|| "rt".to_owned()),
                id_token: None,
                scopes: vec![],
                obtained_at: updated_at,
                extras: vec![],
                dpop_key_thumbprint: None,
            },
            created_at: 0,
            updated_at,
            token_writes: 1,
            state,
            refresh_interrupted_at: None,
        }
    }

    #[test]
    fn due_means_active_renewed_by_a_refresh_token_and_unwritten_for_long() {
        let now = 1_000_000;
        let after = Duration::from_secs(100);
        let code = Grant::AuthorizationCode;
        let active = ConnectionState::Active;
        let marked = ConnectionState::NeedsReauthorization {
            reason: Reauthorization::RefreshRefused("invalid_grant".into()),
            since: 5,
        };
        for (grant, refresh, updated_at, state, due) in [
            (code, true, now - 100, active.clone(), true),
            (Grant::Device, true, now - 5000, active.clone(), true),
            (code, true, now - 99, active.clone(), false),
            (code, false, now - 5000, active.clone(), false),
            (
                Grant::ClientCredentials,
                true,
                now - 5000,
                active.clone(),
                false,
            ),
            (code, true, now - 5000, marked, false),
        ] {
            let candidate = connection(grant, refresh, updated_at, state);
            assert_eq!(is_due(&candidate, now, after), due, "{candidate:?}");
        }
    }

    #[test]
    fn the_oldest_due_connections_are_chosen_up_to_the_limit() {
        let now = 10_000;
        let active = ConnectionState::Active;
        let candidates = vec![
            (
                2,
                "b".to_owned(),
                connection(Grant::AuthorizationCode, true, 300, active.clone()),
            ),
            (
                1,
                "fresh".to_owned(),
                connection(Grant::AuthorizationCode, true, now, active.clone()),
            ),
            (
                1,
                "a".to_owned(),
                connection(Grant::AuthorizationCode, true, 100, active.clone()),
            ),
            (
                1,
                "none".to_owned(),
                connection(Grant::AuthorizationCode, false, 1, active.clone()),
            ),
            (
                1,
                "b".to_owned(),
                connection(Grant::AuthorizationCode, true, 300, active.clone()),
            ),
        ];
        let chosen = |limit| -> Vec<(i64, String)> {
            choose_due(candidates.clone(), now, Duration::from_secs(60), limit)
                .into_iter()
                .map(|(tenant, id, _)| (tenant, id))
                .collect()
        };
        assert_eq!(
            chosen(10),
            [
                (1, "a".to_owned()),
                (1, "b".to_owned()),
                (2, "b".to_owned())
            ]
        );
        assert_eq!(chosen(2), [(1, "a".to_owned()), (1, "b".to_owned())]);
        assert!(chosen(0).is_empty());
    }

    #[test]
    fn failures_are_short_carry_the_oauth_code_and_skip_what_says_nothing() {
        let refused = ConnectionError::Call(CallError::Connector(
            ConnectorError::ReauthorizationRequired(OauthError {
                code: crate::types::ErrorCode::InvalidGrant,
                description: Some("grant revoked SECRET-DESCRIPTION".into()),
                uri: None,
            }),
        ));
        let recorded = failure(&refused).unwrap();
        assert_eq!(recorded.code.as_deref(), Some("invalid_grant"));
        assert!(!recorded.message.contains("SECRET"), "{}", recorded.message);
        let timeout = ConnectionError::Call(CallError::Connector(ConnectorError::Transport(
            TransportError::Timeout,
        )));
        assert_eq!(failure(&timeout).unwrap().code, None);
        for nothing in [
            ConnectionError::NeedsReauthorization {
                name: "c".into(),
                reason: Reauthorization::Revoked,
                since: 1,
            },
            ConnectionError::Store(StoreError::NotFound("c".into())),
            ConnectionError::Call(CallError::Connector(ConnectorError::Transport(
                TransportError::Denied("elsewhere.example".into()),
            ))),
        ] {
            assert_eq!(failure(&nothing), None, "{nothing:?}");
        }
        let long = ConnectionError::SecretUnavailable("X".repeat(500));
        assert_eq!(
            failure(&long).unwrap().message.chars().count(),
            MAX_MESSAGE + 1
        );
    }
}

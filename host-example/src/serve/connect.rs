//! Connecting through the browser: `POST /v1/connect-sessions` makes a one-time URL
//! (`<public-url>/connect/<token>`, valid [`super::State::session_ttl`]); `GET
//! /connect/<token>` begins the authorization-code flow (PKCE; the redirect URI is the one
//! fixed callback, `<public-url>/oauth/callback`), keeps the pending authorization in the
//! session's row and redirects to the authorize URL; `GET /oauth/callback` finds the pending
//! flow by the callback's `state` (the component's `state-from-callback`), takes it out of
//! the store (single use: a replayed or forged callback finds nothing and sends nothing),
//! exchanges the code, stores the connection, and shows a result page or redirects to the
//! session's `return_to`.
//!
//! The session token is 256 random bits; the store keeps its SHA-256 only.
//!
//! A session of a DPoP integration (RFC 9449) gets its connection's key when it is made:
//! the authorization request carries the key's thumbprint (`dpop_jkt`), the code exchange
//! proves it, and the connection keeps it. Until then it lives in the session's row, in the
//! `pending` column with the pending authorization ([`SessionSecrets`]), sealed when the
//! store has a key, and goes with the row (used, expired or its integration deleted).

use axum::extract::{Path, State};
use axum::http::{HeaderName, StatusCode, Uri, header};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};

use super::AppState;
use super::auth::{Body, TenantId, body_bytes, json_body};
use super::connections::{internal_name, record};
use super::errors::{ApiError, Code, ErrorPage};
use super::integrations;
use super::tenants::{hash, random_token, valid_id};
use crate::describe::format_time;
use crate::runtime::CallError;
use crate::sql_params as params;
use crate::store::db::Row;
use crate::store::{ConnectionSecrets, Grant, StoreError};
use crate::types::{Error as ConnectorError, PendingAuthorization};
use crate::{AllowList, HttpTransport, Limits};

/// The routes of this resource.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/v1/connect-sessions", post(create))
        .route("/connect/{token}", get(begin))
        .route("/oauth/callback", get(callback))
}

/// What a connect session is for: `POST /v1/connect-sessions`'s body, and what the web
/// page's Connect and Re-authorize buttons ask for ([`super::pages`]).
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewSession {
    /// The tenant's integration (an authorization-code one).
    pub integration: String,
    /// The connection to make or replace.
    pub connection: String,
    /// Scopes instead of the integration's.
    pub scopes: Option<Vec<String>>,
    /// Where the browser goes once connected (an allowed origin); none: a result page.
    pub return_to: Option<String>,
}

/// A connect session just made.
pub struct CreatedSession {
    /// Its one-time URL's path, `/connect/<token>` (a secret until used).
    pub path: String,
    /// Its one-time URL, `<public-url>/connect/<token>`.
    pub url: String,
    /// When the URL stops working (Unix seconds).
    pub expires_at: u64,
}

/// Creates tenant `tenant`'s connect session for `request` (on a store thread): checks the
/// connection id, `return_to` (an allowed origin), that the integration is the tenant's and
/// uses the authorization-code grant, and that the connection is not another integration's;
/// stores the session under its token's SHA-256 only.
pub fn create_session(
    store: &crate::store::Store,
    state: &super::State,
    tenant: TenantId,
    request: NewSession,
) -> Result<CreatedSession, ApiError> {
    if !valid_id(&request.connection) {
        return Err(ApiError::invalid(
            "connection: use 1 to 100 letters, digits, `.`, `_` or `-`",
        ));
    }
    // Kept as parsed (normalized, so that it is always a valid `Location`).
    let return_to = match &request.return_to {
        None => None,
        Some(return_to) => match url::Url::parse(return_to) {
            Ok(url) if state.return_origins.contains(&url.origin()) => Some(url.to_string()),
            _ => {
                let origins: Vec<String> = state
                    .return_origins
                    .iter()
                    .map(url::Origin::ascii_serialization)
                    .collect();
                return Err(ApiError::invalid(format!(
                    "return_to must be an absolute URL on an allowed origin: {}",
                    origins.join(", ")
                )));
            }
        },
    };
    let integration = integrations::load(store, tenant, &request.integration)?;
    if integration.grant != Grant::AuthorizationCode {
        return Err(ApiError::invalid(format!(
            "integration `{}` uses the {} grant: connect with POST /v1/connections",
            integration.id,
            integration.grant.name()
        )));
    }
    super::connections::check_integration(store, tenant, &request.connection, &integration.id)?;
    let secrets = SessionSecrets {
        dpop_key: integration.new_connection_secrets()?.dpop_key,
        authorization: None,
    };
    let scopes = request
        .scopes
        .map(|scopes| serde_json::to_string(&scopes))
        .transpose()
        .map_err(|error| ApiError::internal(&error))?;
    let token = random_token().map_err(|error| ApiError::internal(&error))?;
    let now = crate::store::now();
    let expires_at = now + state.session_ttl.as_secs();
    // Sessions nobody finished (and their pending flows' PKCE verifiers) go as new ones
    // come: a session is never used past its expiry anyway.
    store.db().execute(
        "DELETE FROM connect_sessions WHERE expires_at <= ?1",
        params![now as i64],
    )?;
    let token_hash = hash(&token);
    let pending = secrets.sealed(store, &token_hash)?;
    store.db().execute(
        "INSERT INTO connect_sessions
             (token_hash, tenant_id, integration, connection, scopes, return_to,
              created_at, expires_at, pending)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
        params![
            token_hash,
            tenant.0,
            integration.id,
            request.connection,
            scopes,
            return_to,
            now as i64,
            expires_at as i64,
            pending
        ],
    )?;
    let path = format!("/connect/{token}");
    Ok(CreatedSession {
        url: format!("{}{path}", state.public_url),
        path,
        expires_at,
    })
}

async fn create(
    State(state): State<AppState>,
    tenant: TenantId,
    body: Body,
) -> Result<(StatusCode, Json<serde_json::Value>), ApiError> {
    let request: NewSession = json_body(&body_bytes(body)?)?;
    let shared = state.clone();
    let session = state
        .blocking(move |connections| create_session(connections.store(), &shared, tenant, request))
        .await?;
    Ok((
        StatusCode::CREATED,
        Json(serde_json::json!({
            "url": session.url,
            "expires_at": format_time(session.expires_at),
        })),
    ))
}

/// What a connect session keeps sealed in its row's `pending` column: its connection's DPoP
/// key, from the session's creation on, and the pending authorization (with the PKCE
/// verifier) once the link is opened. No `Debug`: it holds both.
///
/// Written as the pending authorization alone when there is no key, as earlier versions
/// wrote it, so that replicas of an earlier version still complete such sessions; read in
/// either form.
#[derive(Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct SessionSecrets {
    /// The connection's DPoP key (PKCS#8 PEM), for a DPoP integration's session.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    dpop_key: Option<String>,
    /// The pending authorization, once the link was opened.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    authorization: Option<PendingAuthorization>,
}

impl SessionSecrets {
    /// The session's `pending` column (sealed, bound to the session's token hash, when the
    /// store has a key); `None` when there is nothing to keep.
    fn sealed(
        &self,
        store: &crate::store::Store,
        token_hash: &[u8],
    ) -> Result<Option<String>, ApiError> {
        let text = match (&self.dpop_key, &self.authorization) {
            (None, None) => return Ok(None),
            (None, Some(authorization)) => serde_json::to_string(authorization),
            (Some(_), _) => serde_json::to_string(self),
        }
        .map_err(|error| ApiError::internal(&error))?;
        Ok(Some(super::tenants::seal_pending(store, token_hash, text)))
    }

    /// The secrets kept in `session`'s row, opened.
    fn of(store: &crate::store::Store, session: &Session) -> Result<Self, ApiError> {
        let Some(text) = session.pending.clone() else {
            return Ok(Self::default());
        };
        let text = super::tenants::open_pending(store, &session.token_hash, text)?;
        serde_json::from_str::<Self>(&text)
            .ok()
            .or_else(|| {
                serde_json::from_str::<PendingAuthorization>(&text)
                    .ok()
                    .map(|authorization| Self {
                        dpop_key: None,
                        authorization: Some(authorization),
                    })
            })
            .ok_or_else(|| ApiError::internal(&"a connect session's pending column is unreadable"))
    }

    /// What the connection keeps of them once connected: its DPoP key.
    fn connection_secrets(&self) -> ConnectionSecrets {
        ConnectionSecrets {
            dpop_key: self.dpop_key.clone(),
            ..ConnectionSecrets::default()
        }
    }
}

/// A session row, as the flow needs it.
struct Session {
    tenant: TenantId,
    integration: String,
    connection: String,
    scopes: Option<String>,
    return_to: Option<String>,
    expires_at: u64,
    pending: Option<String>,
    /// The hash of the session's token (its key; part of the sealed pending's context).
    token_hash: Vec<u8>,
}

fn session_row(row: &Row<'_>) -> Result<Session, StoreError> {
    Ok(Session {
        tenant: TenantId(row.get(0)?),
        integration: row.get(1)?,
        connection: row.get(2)?,
        scopes: row.get(3)?,
        return_to: row.get(4)?,
        expires_at: row.get::<i64>(5)? as u64,
        pending: row.get(6)?,
        token_hash: row.get(7)?,
    })
}

/// The session's integration configuration for the flow: the one callback as redirect URI,
/// the session's scopes when it names any.
fn flow_config(
    store: &crate::store::Store,
    state: &super::State,
    session: &Session,
) -> Result<(integrations::Integration, crate::types::ConnectionConfig), ApiError> {
    let integration = integrations::load(store, session.tenant, &session.integration)?;
    let mut config = integration.config.clone();
    config.redirect_uri = Some(state.callback_url());
    if let Some(scopes) = &session.scopes {
        config.scopes = serde_json::from_str(scopes).map_err(|error| ApiError::internal(&error))?;
    }
    Ok((integration, config))
}

fn expired() -> ApiError {
    ApiError::new(
        Code::Expired,
        "this sign-in link has expired; ask the application for a new one",
    )
}

async fn begin(
    State(state): State<AppState>,
    Path(token): Path<String>,
) -> Result<Response, ErrorPage> {
    let shared = state.clone();
    let authorize_url = state
        .blocking(move |connections| {
            let store = connections.store();
            let token_hash = hash(&token);
            let session = store
                .db()
                .query_opt(
                    "SELECT tenant_id, integration, connection, scopes, return_to, expires_at,
                            pending, token_hash
                     FROM connect_sessions WHERE token_hash = ?1",
                    params![token_hash],
                    session_row,
                )?
                .ok_or_else(|| {
                    ApiError::new(
                        Code::NotFound,
                        "this sign-in link is not valid (unknown, or used already)",
                    )
                })?;
            if session.expires_at <= crate::store::now() {
                store.db().execute(
                    "DELETE FROM connect_sessions WHERE token_hash = ?1",
                    params![token_hash],
                )?;
                return Err(expired());
            }
            let (integration, config) = flow_config(store, &shared, &session)?;
            let mut secrets = SessionSecrets::of(store, &session)?;
            // A DPoP integration's authorization request (pushed or not) names the session's
            // key (`dpop_jkt`), which the code exchange will prove.
            let signer = integration.connection_signer(&secrets.connection_secrets())?;
            let request =
                crate::connect::instance(shared.runtime(), &config, &signer)?.begin(&config)?;
            // Opening the link again begins again: the earlier state stops matching. The
            // pending authorization holds the PKCE verifier: sealed when the store has a key.
            secrets.authorization = Some(request.pending.clone());
            let pending = secrets.sealed(store, &token_hash)?;
            store.db().execute(
                "UPDATE connect_sessions SET state = ?2, pending = ?3 WHERE token_hash = ?1",
                params![token_hash, request.pending.state, pending],
            )?;
            Ok(request.url)
        })
        .await?;
    Ok((
        StatusCode::FOUND,
        page_headers(),
        [(header::LOCATION, authorize_url)],
    )
        .into_response())
}

async fn callback(State(state): State<AppState>, uri: Uri) -> Result<Response, ErrorPage> {
    let callback_url = match uri.query() {
        Some(query) => format!("{}?{query}", state.callback_url()),
        None => state.callback_url(),
    };
    let shared = state.clone();
    let (connection, return_to) = state
        .blocking(move |connections| {
            let runtime = shared.runtime();
            let sign_in_state = runtime
                .instantiate(HttpTransport::new(AllowList::default(), Limits::default()))?
                .state_from_callback(&callback_url)
                .map_err(|_| ApiError::invalid("this is not a sign-in callback (no state)"))?;
            let store = connections.store();
            // Taken out before anything is sent: a second delivery of this callback finds
            // nothing, and a forged state never matches.
            let session = store
                .db()
                .query_opt(
                    "DELETE FROM connect_sessions WHERE state = ?1
                     RETURNING tenant_id, integration, connection, scopes, return_to,
                               expires_at, pending, token_hash",
                    params![sign_in_state],
                    session_row,
                )?
                .ok_or_else(|| {
                    ApiError::invalid(
                        "this sign-in is unknown or was completed already; start again from \
                         the application",
                    )
                })?;
            if session.expires_at <= crate::store::now() {
                return Err(expired());
            }
            let secrets = SessionSecrets::of(store, &session)?;
            let pending = secrets
                .authorization
                .as_ref()
                .ok_or_else(|| ApiError::internal(&"a begun session without its pending flow"))?;
            let (integration, config) = flow_config(store, &shared, &session)?;
            // The code exchange signs its client assertion with the integration's key, and
            // its DPoP proof with the session's key, which the connection keeps.
            let connection_secrets = secrets.connection_secrets();
            let signer = integration.connection_signer(&connection_secrets)?;
            let mut session_instance = crate::connect::instance(runtime, &config, &signer)?;
            let tokens = session_instance
                .complete(&config, pending, &callback_url)
                .map_err(|error| match &error {
                    // The user denied consent, or the provider refused the request (an OAuth
                    // error on the callback or at the token endpoint): the sign-in ends here;
                    // nothing failed upstream.
                    CallError::Connector(ConnectorError::ServerSaidNo(_)) => {
                        ApiError::invalid(format!(
                            "the provider refused the sign-in: {}",
                            crate::describe::printable(&error.to_string())
                        ))
                    }
                    _ => ApiError::from(error),
                })?;
            let name = internal_name(session.tenant, &session.connection);
            connections.save_locked_with(
                &name,
                &config,
                &integration.secret_source(),
                &connection_secrets,
                Grant::AuthorizationCode,
                &tokens,
            )?;
            record(store, session.tenant, &session.connection, &integration.id)?;
            shared.connection_changed(session.tenant, &session.connection);
            tracing::info!(
                tenant = session.tenant.0,
                connection = session.connection.as_str(),
                "connected through the browser"
            );
            Ok((session.connection, session.return_to))
        })
        .await?;
    Ok(match return_to {
        Some(url) => (page_headers(), Redirect::to(&url)).into_response(),
        None => (
            page_headers(),
            page(
                "Connected",
                &format!("`{connection}` is connected. You can close this window."),
            ),
        )
            .into_response(),
    })
}

/// The headers of every page and redirect the end user's browser sees: no referrer (the
/// callback's URL holds the code), no framing, no caching, a strict CSP.
pub fn page_headers() -> [(HeaderName, &'static str); 5] {
    [
        (header::REFERRER_POLICY, "no-referrer"),
        (
            header::CONTENT_SECURITY_POLICY,
            "default-src 'none'; style-src 'self'; frame-ancestors 'none'; \
             form-action 'none'; base-uri 'none'",
        ),
        (header::X_FRAME_OPTIONS, "DENY"),
        (header::CACHE_CONTROL, "no-store"),
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
    ]
}

/// A small result page, its text escaped.
pub fn page(title: &str, message: &str) -> Html<String> {
    Html(format!(
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width\"><title>{title}</title>\
         <link rel=\"stylesheet\" href=\"{stylesheet}\"></head>\n\
         <body><h1>{title}</h1><p>{message}</p></body></html>\n",
        stylesheet = super::STYLESHEET_PATH,
        title = escape(title),
        message = escape(message)
    ))
}

/// `text` with HTML's special characters escaped.
pub fn escape(text: &str) -> String {
    let mut escaped = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => escaped.push_str("&amp;"),
            '<' => escaped.push_str("&lt;"),
            '>' => escaped.push_str("&gt;"),
            '"' => escaped.push_str("&quot;"),
            '\'' => escaped.push_str("&#39;"),
            c => escaped.push(c),
        }
    }
    escaped
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::seal::SealingKey;
    use crate::store::Store;

    fn pending() -> PendingAuthorization {
        PendingAuthorization {
            state: "st".into(),
            code_verifier: Some("verifier-verifier".into()),
            redirect_uri: Some("https://svc.example/oauth/callback".into()),
            requested_scopes: vec!["openid".into()],
            created_at: 1,
            expires_at: 2,
        }
    }

    fn session(pending: Option<String>, token_hash: &[u8]) -> Session {
        Session {
            tenant: TenantId(1),
            integration: "i".into(),
            connection: "c".into(),
            scopes: None,
            return_to: None,
            expires_at: 0,
            pending,
            token_hash: token_hash.to_vec(),
        }
    }

    /// A session's key is kept sealed, bound to its token hash, with the pending
    /// authorization; a session without a key is written as earlier versions wrote it, and
    /// both forms are read.
    #[test]
    fn session_secrets_are_sealed_to_their_session_and_read_in_either_form() {
        let dir = std::env::temp_dir().join(format!("connector-sessions-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let key = SealingKey::from_hex(&"07".repeat(32)).unwrap();
        let store = Store::open_sealed(&dir.join("store.db"), key).unwrap();
        let (hash, other) = (hash("token"), hash("other"));
        let pem = crate::signer::generate_dpop_key().unwrap();

        // Nothing to keep: no column.
        assert!(
            SessionSecrets::default()
                .sealed(&store, &hash)
                .unwrap()
                .is_none()
        );

        // The key alone (a new session), then with the pending authorization (opened).
        let mut secrets = SessionSecrets {
            dpop_key: Some(pem.clone()),
            authorization: None,
        };
        let sealed = secrets.sealed(&store, &hash).unwrap().unwrap();
        assert!(!sealed.contains("PRIVATE KEY") && crate::seal::is_sealed(&sealed));
        let read = SessionSecrets::of(&store, &session(Some(sealed.clone()), &hash)).unwrap();
        assert_eq!(
            (read.dpop_key.as_deref(), read.authorization),
            (Some(pem.as_str()), None)
        );
        // Bound to its session: another session's row does not open it.
        assert!(SessionSecrets::of(&store, &session(Some(sealed), &other)).is_err());
        secrets.authorization = Some(pending());
        let sealed = secrets.sealed(&store, &hash).unwrap().unwrap();
        let read = SessionSecrets::of(&store, &session(Some(sealed), &hash)).unwrap();
        assert_eq!(read.authorization, Some(pending()));
        assert_eq!(
            read.connection_secrets(),
            ConnectionSecrets {
                dpop_key: Some(pem),
                ..ConnectionSecrets::default()
            }
        );

        // Without a key: the pending authorization alone, as before, read back.
        let plain = SessionSecrets {
            dpop_key: None,
            authorization: Some(pending()),
        };
        let sealed = plain.sealed(&store, &hash).unwrap().unwrap();
        let opened = super::super::tenants::open_pending(&store, &hash, sealed.clone()).unwrap();
        assert_eq!(
            serde_json::from_str::<PendingAuthorization>(&opened).unwrap(),
            pending()
        );
        let read = SessionSecrets::of(&store, &session(Some(sealed), &hash)).unwrap();
        assert!(read.connection_secrets().is_empty());
        assert_eq!((read.dpop_key, read.authorization), (None, Some(pending())));
        let _ = std::fs::remove_dir_all(&dir);
    }
}

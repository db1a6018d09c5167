//! `/v1/connections`: a tenant's connections, through the service layer
//! ([`crate::connections::Connections`]): status, valid tokens (refreshed first when due,
//! under the same single-flight lock as the CLI), authorized calls (refresh-and-retry,
//! limited to the integration's allow-list), revocation and removal, and connecting a
//! client-credentials integration without a browser.
//!
//! A tenant's connection `NAME` is stored as `t<tenant id>:NAME` in the store's
//! `connections` table; `service_connections` records which integration it belongs to.
//!
//! A DPoP-bound connection's token (RFC 9449) is useless without a proof signed with the
//! connection's key, which never leaves the service: `/token` refuses it (`dpop_bound`),
//! and `/request` calls the API with a proof the service signs.

use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use base64::Engine as _;
use serde::{Deserialize, Serialize};

use super::AppState;
use super::auth::{Body, TenantId, body_bytes, json_body};
use super::errors::{ApiError, Code};
use super::integrations;
use super::tenants::valid_id;
use crate::connections::{Connections, api_url, health};
use crate::describe::format_time;
use crate::retry::{self, RetryPolicy};
use crate::sql_params as params;
use crate::store::{ConnectionState, Grant, Store, StoredConnection};
use crate::types::{HttpMethod, HttpRequest, KeyValue};

/// The routes of this resource.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/v1/connections", get(list).post(create))
        .route("/v1/connections/{id}", get(show).delete(remove))
        .route("/v1/connections/{id}/token", post(token))
        .route("/v1/connections/{id}/request", post(request))
}

/// The store's name of tenant `tenant`'s connection `id`: `t<tenant id>:<id>`.
pub fn internal_name(tenant: TenantId, id: &str) -> String {
    format!("t{}:{id}", tenant.0)
}

/// The tenant's name of a store connection name (`t<tenant id>:<id>` gives `id`), for
/// messages; other names unchanged.
pub fn public_name(name: &str) -> &str {
    name.strip_prefix('t')
        .and_then(|rest| rest.split_once(':'))
        .map_or(name, |(_, id)| id)
}

/// Records that tenant `tenant`'s connection `id` belongs to `integration` (just connected:
/// the last error and keep-alive time of an earlier grant are cleared).
pub fn record(
    store: &Store,
    tenant: TenantId,
    id: &str,
    integration: &str,
) -> Result<(), ApiError> {
    store.db().execute(
        "INSERT INTO service_connections (tenant_id, id, integration) VALUES (?1, ?2, ?3)
         ON CONFLICT(tenant_id, id) DO UPDATE SET integration = ?3, last_error = NULL,
             last_error_at = NULL, kept_alive_at = NULL",
        params![tenant.0, id, integration],
    )?;
    Ok(())
}

/// The integration tenant `tenant`'s connection `id` belongs to, if it is recorded.
pub fn integration_of(
    store: &Store,
    tenant: TenantId,
    id: &str,
) -> Result<Option<String>, ApiError> {
    Ok(store.db().query_opt(
        "SELECT integration FROM service_connections WHERE tenant_id = ?1 AND id = ?2",
        params![tenant.0, id],
        |row| row.get(0),
    )?)
}

/// `conflict` when connection `id` exists for another integration than `integration`
/// (connecting again through the same integration replaces its tokens; a removed one whose
/// `removed` event is still to be sent does not count).
pub fn check_integration(
    store: &Store,
    tenant: TenantId,
    id: &str,
    integration: &str,
) -> Result<(), ApiError> {
    match integration_of(store, tenant, id)? {
        Some(other) if other != integration && store.contains(&internal_name(tenant, id))? => {
            Err(ApiError::new(
                Code::Conflict,
                format!("connection `{id}` belongs to integration `{other}`: delete it first"),
            ))
        }
        _ => Ok(()),
    }
}

/// A connection as the API returns it (never a token).
#[derive(Serialize)]
pub(crate) struct ConnectionView {
    pub(crate) id: String,
    pub(crate) integration: Option<String>,
    pub(crate) grant: &'static str,
    /// `valid`, `expiring-soon`, `expired-refreshable`, `needs-reauthorization` or `revoked`.
    pub(crate) status: &'static str,
    pub(crate) expires_at: Option<String>,
    pub(crate) refresh_token: bool,
    pub(crate) scopes: Vec<String>,
    pub(crate) created_at: String,
    /// When the tokens were last renewed (a refresh or a re-fetch); none before the first.
    pub(crate) last_refresh: Option<String>,
    /// Why it must be authorized again, when it must.
    pub(crate) reauthorization: Option<serde_json::Value>,
    /// The last failed refresh or call, `{"message", "code", "at"}`, until it is connected
    /// again ([`super::keepalive::last_error`]); [`view`] leaves it `None`, [`with_last_error`]
    /// fills it in.
    pub(crate) last_error: Option<serde_json::Value>,
    /// The RFC 7638 thumbprint of the key its tokens are bound to (public), when it is
    /// DPoP-bound; absent otherwise.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) dpop_key_thumbprint: Option<String>,
}

/// `view` with tenant `tenant`'s connection's last error filled in.
pub(crate) fn with_last_error(
    store: &Store,
    tenant: TenantId,
    mut view: ConnectionView,
) -> Result<ConnectionView, ApiError> {
    view.last_error = super::keepalive::last_error(store, tenant.0, &view.id)?;
    Ok(view)
}

pub(crate) fn view(
    connection: &StoredConnection,
    id: &str,
    integration: Option<String>,
) -> ConnectionView {
    let reauthorization = match &connection.state {
        ConnectionState::Active => None,
        ConnectionState::NeedsReauthorization { reason, since } => Some(match reason.error() {
            None => serde_json::json!({"reason": reason.name(), "since": format_time(*since)}),
            Some(code) => serde_json::json!({
                "reason": reason.name(), "error": code, "since": format_time(*since)
            }),
        }),
    };
    ConnectionView {
        id: id.to_owned(),
        integration,
        grant: connection.grant.name(),
        status: health(connection, crate::store::now()).name(),
        expires_at: connection.tokens.expires_at.map(format_time),
        refresh_token: connection.tokens.refresh_token.is_some(),
        scopes: connection.tokens.scopes.clone(),
        created_at: format_time(connection.created_at),
        last_refresh: (connection.token_writes > 1).then(|| format_time(connection.updated_at)),
        reauthorization,
        last_error: None,
        dpop_key_thumbprint: crate::describe::dpop_thumbprint(connection),
    }
}

/// Tenant `tenant`'s connection `id`, with its integration; `not_found` when it has none.
pub fn load(
    connections: &Connections<'_>,
    tenant: TenantId,
    id: &str,
) -> Result<(StoredConnection, Option<String>), ApiError> {
    let store = connections.store();
    let stored = store.get(&internal_name(tenant, id))?;
    Ok((stored, integration_of(store, tenant, id)?))
}

/// At most `limit` of tenant `tenant`'s connections whose ids sort after `after`, by id,
/// and the id the next page starts after, when more follow.
pub(crate) fn page_views(
    store: &Store,
    tenant: TenantId,
    after: Option<&str>,
    limit: usize,
) -> Result<(Vec<ConnectionView>, Option<String>), ApiError> {
    let prefix = internal_name(tenant, "");
    // One more than asked for tells whether there is a next page.
    let mut views = store
        .list_page(&prefix, after, limit.saturating_add(1))?
        .iter()
        .filter_map(|c| c.name.strip_prefix(&prefix).map(|id| (c, id)))
        .map(|(connection, id)| {
            let view = view(connection, id, integration_of(store, tenant, id)?);
            with_last_error(store, tenant, view)
        })
        .collect::<Result<Vec<_>, ApiError>>()?;
    let next = if views.len() > limit {
        views.truncate(limit);
        views.last().map(|view| view.id.clone())
    } else {
        None
    };
    Ok((views, next))
}

/// How many connections a page of `GET /v1/connections` holds by default, and at most.
pub const PAGE_SIZE: (usize, usize) = (100, 1000);

/// `GET /v1/connections?limit=N&after=ID`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ListQuery {
    limit: Option<String>,
    after: Option<String>,
}

async fn list(
    State(state): State<AppState>,
    tenant: TenantId,
    query: Result<Query<ListQuery>, QueryRejection>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let Query(query) = query.map_err(|rejection| {
        ApiError::invalid(format!(
            "the query takes `limit` and `after` only: {}",
            rejection.body_text()
        ))
    })?;
    let limit = match query.limit.as_deref() {
        None => PAGE_SIZE.0,
        Some(text) => text
            .parse::<usize>()
            .ok()
            .filter(|limit| (1..=PAGE_SIZE.1).contains(limit))
            .ok_or_else(|| {
                ApiError::invalid(format!("limit: a whole number from 1 to {}", PAGE_SIZE.1))
            })?,
    };
    // Any text (it is only compared): a page can end on any stored id, even one today's
    // rules would refuse.
    if query.after.as_ref().is_some_and(|after| after.len() > 1000) {
        return Err(ApiError::invalid("after: a connection id"));
    }
    let (views, next) = state
        .blocking(move |connections| {
            page_views(connections.store(), tenant, query.after.as_deref(), limit)
        })
        .await?;
    Ok(Json(
        serde_json::json!({ "connections": views, "next": next }),
    ))
}

async fn show(
    State(state): State<AppState>,
    tenant: TenantId,
    Path(id): Path<String>,
) -> Result<Json<ConnectionView>, ApiError> {
    let view = state
        .blocking(move |connections| {
            let (stored, integration) = load(connections, tenant, &id)?;
            with_last_error(connections.store(), tenant, view(&stored, &id, integration))
        })
        .await?;
    Ok(Json(view))
}

/// `POST /v1/connections`: a client-credentials integration's connection.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NewConnection {
    integration: String,
    connection: String,
}

async fn create(
    State(state): State<AppState>,
    tenant: TenantId,
    body: Body,
) -> Result<(StatusCode, Json<ConnectionView>), ApiError> {
    let request: NewConnection = json_body(&body_bytes(body)?)?;
    if !valid_id(&request.connection) {
        return Err(ApiError::invalid(
            "connection: use 1 to 100 letters, digits, `.`, `_` or `-`",
        ));
    }
    let runtime = state.runtime();
    let view = state
        .blocking(move |connections| {
            let store = connections.store();
            let integration = integrations::load(store, tenant, &request.integration)?;
            if integration.grant != Grant::ClientCredentials {
                return Err(ApiError::invalid(format!(
                    "integration `{}` uses the {} grant: a person must sign in; create a \
                     connect session (POST /v1/connect-sessions)",
                    integration.id,
                    integration.grant.name()
                )));
            }
            check_integration(store, tenant, &request.connection, &integration.id)?;
            let config = &integration.config;
            // A DPoP integration's connection gets a key of its own, which it keeps.
            let secrets = integration.new_connection_secrets()?;
            let signer = integration.connection_signer(&secrets)?;
            let tokens = retry::call(&RetryPolicy::default(), None, &mut |_| {}, || {
                crate::connect::instance(runtime, config, &signer)?.fetch_client_credentials(config)
            })?;
            let name = internal_name(tenant, &request.connection);
            connections.save_locked_with(
                &name,
                config,
                &integration.secret_source(),
                &secrets,
                Grant::ClientCredentials,
                &tokens,
            )?;
            record(store, tenant, &request.connection, &integration.id)?;
            Ok(view(
                &store.get(&name)?,
                &request.connection,
                Some(integration.id.clone()),
            ))
        })
        .await?;
    state.connection_changed(tenant, &view.id);
    Ok((StatusCode::CREATED, Json(view)))
}

/// Removes tenant `tenant`'s connection `id` (`DELETE /v1/connections/{id}`, and the web
/// page's Remove button): revoked at the server first when it has a revocation endpoint and
/// the tokens are still in use (a failed revocation is logged, and the connection removed
/// anyway). Returns whether it was revoked.
pub fn remove_connection(
    connections: &Connections<'_>,
    tenant: TenantId,
    id: &str,
) -> Result<bool, ApiError> {
    let (stored, _) = load(connections, tenant, id)?;
    let name = internal_name(tenant, id);
    let revocable =
        stored.config.profile.revocation_url.is_some() && stored.state == ConnectionState::Active;
    let revoked = revocable
        && match connections.revoke(&name) {
            Ok(()) => true,
            Err(error) => {
                tracing::warn!(
                    tenant = tenant.0,
                    connection = id,
                    %error,
                    "revocation failed; removing the connection anyway"
                );
                false
            }
        };
    connections.remove(&name)?;
    // With a webhook, the row stays until its `removed` event is sent ([`super::webhooks`]).
    connections.store().db().execute(
        "DELETE FROM service_connections WHERE tenant_id = ?1 AND id = ?2
         AND NOT EXISTS (SELECT 1 FROM webhooks WHERE tenant_id = ?1)",
        params![tenant.0, id],
    )?;
    Ok(revoked)
}

async fn remove(
    State(state): State<AppState>,
    tenant: TenantId,
    Path(id): Path<String>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let removed = id.clone();
    let revoked = state
        .blocking(move |connections| remove_connection(connections, tenant, &id))
        .await?;
    state.connection_changed(tenant, &removed);
    Ok(Json(
        serde_json::json!({ "removed": true, "revoked": revoked }),
    ))
}

async fn token(
    State(state): State<AppState>,
    tenant: TenantId,
    Path(id): Path<String>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let name = internal_name(tenant, &id);
    // A token handed out recently, not near its expiry, with the database unchanged since:
    // answered here, without a store thread (see `token_cache`).
    let version = state.data_version()?;
    if let Some(version) = version
        && let Some(cached) = state.tokens.get(&name, std::time::Instant::now(), version)
    {
        return Ok(token_answer(
            &cached.access_token,
            &cached.token_type,
            cached.expires_at,
        ));
    }
    let read = (state.tokens.generation(), version);
    let shared = state.clone();
    let looked_up = name.clone();
    let tokens = state
        .blocking(move |connections| {
            // Checked before anything is refreshed: no token of it is ever handed out.
            if dpop_bound(&connections.store().get(&looked_up)?) {
                return Err(ApiError::new(
                    Code::DpopBound,
                    format!(
                        "connection `{id}` is DPoP-bound (RFC 9449): its access token works \
                         only with proofs signed by a key the service holds; call the API \
                         through the service instead: POST /v1/connections/{id}/request"
                    ),
                ));
            }
            connections
                .valid_tokens(&looked_up)
                .map(|outcome| outcome.tokens)
                .map_err(|error| failed(connections, &shared, tenant, &id, error))
        })
        .await?;
    if let (generation, Some(version)) = read {
        state.tokens.put(
            &name,
            &tokens,
            (generation, version),
            std::time::Instant::now(),
            crate::store::now(),
        );
    }
    Ok(token_answer(
        &tokens.access_token,
        &tokens.token_type,
        tokens.expires_at,
    ))
}

/// Whether `connection`'s tokens are bound to its DPoP key (RFC 9449): it is configured so,
/// holds a key, or its tokens say so.
fn dpop_bound(connection: &StoredConnection) -> bool {
    connection.config.dpop
        || connection.secrets.dpop_key.is_some()
        || connection.tokens.dpop_key_thumbprint.is_some()
}

/// The answer of `/token`.
fn token_answer(
    access_token: &str,
    token_type: &str,
    expires_at: Option<u64>,
) -> Json<serde_json::Value> {
    Json(serde_json::json!({
        "access_token": access_token,
        "token_type": token_type,
        "expires_at": expires_at.map(format_time),
    }))
}

/// `error` of tenant `tenant`'s connection `id` as the API answers it, recorded first as the
/// connection's last error when it is one ([`super::keepalive::record_failure`]); the
/// webhook notifier is told, since a refused refresh marks the connection.
fn failed(
    connections: &Connections<'_>,
    state: &super::State,
    tenant: TenantId,
    id: &str,
    error: crate::connections::ConnectionError,
) -> ApiError {
    if super::keepalive::record_failure(connections.store(), tenant.0, id, &error) {
        state.connection_changed(tenant, id);
    }
    error.into()
}

/// `POST /v1/connections/{id}/request`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ApiCall {
    method: String,
    url: String,
    #[serde(default)]
    headers: std::collections::BTreeMap<String, String>,
    body: Option<String>,
}

/// The HTTP method named `name` (case-insensitive); an unknown one is `invalid_request`.
fn method(name: &str) -> Result<HttpMethod, ApiError> {
    Ok(match name.to_ascii_uppercase().as_str() {
        "GET" => HttpMethod::Get,
        "HEAD" => HttpMethod::Head,
        "POST" => HttpMethod::Post,
        "PUT" => HttpMethod::Put,
        "DELETE" => HttpMethod::Delete,
        "PATCH" => HttpMethod::Patch,
        "OPTIONS" => HttpMethod::Options,
        _ => {
            return Err(ApiError::invalid(
                "method: one of GET, HEAD, POST, PUT, DELETE, PATCH, OPTIONS",
            ));
        }
    })
}

async fn request(
    State(state): State<AppState>,
    tenant: TenantId,
    Path(id): Path<String>,
    body: Body,
) -> Result<Json<serde_json::Value>, ApiError> {
    let call: ApiCall = json_body(&body_bytes(body)?)?;
    let method = method(&call.method)?;
    let shared = state.clone();
    let call_id = id.clone();
    let outcome = state
        .blocking(move |connections| {
            let name = internal_name(tenant, &id);
            let stored = connections.store().get(&name)?;
            let url = api_url(&stored.config.profile, &call.url).ok_or_else(|| {
                ApiError::invalid(
                    "url: a path needs the integration's API base URL, and its profile names \
                     none; give an absolute URL",
                )
            })?;
            let request = HttpRequest {
                method,
                url,
                headers: call
                    .headers
                    .into_iter()
                    .map(|(name, value)| KeyValue { name, value })
                    .collect(),
                body: call.body.map(String::into_bytes).unwrap_or_default(),
            };
            connections
                .call(&name, &request)
                .map_err(|error| failed(connections, &shared, tenant, &id, error))
        })
        .await?;
    if outcome.refreshed {
        // The token /token may still hold was refused or replaced.
        state.tokens.forget(&internal_name(tenant, &call_id));
    }
    let response = outcome.response;
    let headers: Vec<[String; 2]> = response
        .headers
        .into_iter()
        .map(|kv| [kv.name, kv.value])
        .collect();
    let mut answer = serde_json::json!({ "status": response.status, "headers": headers });
    match String::from_utf8(response.body) {
        Ok(text) => answer["body"] = text.into(),
        Err(bytes) => {
            answer["body_base64"] = base64::engine::general_purpose::STANDARD
                .encode(bytes.into_bytes())
                .into()
        }
    }
    Ok(Json(answer))
}

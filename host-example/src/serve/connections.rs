//! `/v1/connections`: a tenant's connections, through the service layer
//! ([`crate::connections::Connections`]): status, valid tokens (refreshed first when due,
//! under the same single-flight lock as the CLI), authorized calls (refresh-and-retry,
//! limited to the integration's allow-list), revocation and removal, and connecting a
//! client-credentials integration without a browser.
//!
//! A tenant's connection `NAME` is stored as `t<tenant id>:NAME` in the store's
//! `connections` table; `service_connections` records which integration it belongs to.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use base64::Engine as _;
use rusqlite::{OptionalExtension as _, params};
use serde::{Deserialize, Serialize};

use super::AppState;
use super::auth::{Body, TenantId, body_bytes, json_body};
use super::errors::{ApiError, Code};
use super::integrations::{self, no_signer};
use super::tenants::valid_id;
use crate::connections::{Connections, api_url, health};
use crate::describe::format_time;
use crate::retry::{self, RetryPolicy};
use crate::store::{ConnectionState, Grant, Reauthorization, Store, StoredConnection};
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

/// Records that tenant `tenant`'s connection `id` belongs to `integration`.
pub fn record(
    store: &Store,
    tenant: TenantId,
    id: &str,
    integration: &str,
) -> Result<(), ApiError> {
    store.sqlite().execute(
        "INSERT INTO service_connections (tenant_id, id, integration) VALUES (?1, ?2, ?3)
         ON CONFLICT(tenant_id, id) DO UPDATE SET integration = ?3",
        params![tenant.0, id, integration],
    )?;
    Ok(())
}

/// The integration tenant `tenant`'s connection `id` belongs to, if it is recorded.
fn integration_of(store: &Store, tenant: TenantId, id: &str) -> Result<Option<String>, ApiError> {
    Ok(store
        .sqlite()
        .query_row(
            "SELECT integration FROM service_connections WHERE tenant_id = ?1 AND id = ?2",
            params![tenant.0, id],
            |row| row.get(0),
        )
        .optional()?)
}

/// `conflict` when connection `id` exists for another integration than `integration`
/// (connecting again through the same integration replaces its tokens).
pub fn check_integration(
    store: &Store,
    tenant: TenantId,
    id: &str,
    integration: &str,
) -> Result<(), ApiError> {
    match integration_of(store, tenant, id)? {
        Some(other) if other != integration => Err(ApiError::new(
            Code::Conflict,
            format!("connection `{id}` belongs to integration `{other}`: delete it first"),
        )),
        _ => Ok(()),
    }
}

/// A connection as the API returns it (never a token).
#[derive(Serialize)]
struct ConnectionView {
    id: String,
    integration: Option<String>,
    grant: &'static str,
    /// `valid`, `expiring-soon`, `expired-refreshable`, `needs-reauthorization` or `revoked`.
    status: &'static str,
    expires_at: Option<String>,
    refresh_token: bool,
    scopes: Vec<String>,
    created_at: String,
    /// When the tokens were last renewed (a refresh or a re-fetch); none before the first.
    last_refresh: Option<String>,
    /// Why it must be authorized again, when it must.
    reauthorization: Option<serde_json::Value>,
}

fn view(connection: &StoredConnection, id: &str, integration: Option<String>) -> ConnectionView {
    let reauthorization = match &connection.state {
        ConnectionState::Active => None,
        ConnectionState::NeedsReauthorization { reason, since } => Some(match reason {
            Reauthorization::Revoked => {
                serde_json::json!({"reason": "revoked", "since": format_time(*since)})
            }
            Reauthorization::RefreshRefused(code) => serde_json::json!({
                "reason": "refresh-refused", "error": code, "since": format_time(*since)
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
    }
}

/// Tenant `tenant`'s connection `id`, with its integration; `not_found` when it has none.
fn load(
    connections: &Connections<'_>,
    tenant: TenantId,
    id: &str,
) -> Result<(StoredConnection, Option<String>), ApiError> {
    let store = connections.store();
    let stored = store.get(&internal_name(tenant, id))?;
    Ok((stored, integration_of(store, tenant, id)?))
}

async fn list(
    State(state): State<AppState>,
    tenant: TenantId,
) -> Result<Json<serde_json::Value>, ApiError> {
    let views = state
        .blocking(move |connections| {
            let prefix = internal_name(tenant, "");
            let store = connections.store();
            store
                .list()?
                .iter()
                .filter_map(|c| c.name.strip_prefix(&prefix).map(|id| (c, id)))
                .map(|(connection, id)| {
                    Ok(view(connection, id, integration_of(store, tenant, id)?))
                })
                .collect::<Result<Vec<_>, ApiError>>()
        })
        .await?;
    Ok(Json(serde_json::json!({ "connections": views })))
}

async fn show(
    State(state): State<AppState>,
    tenant: TenantId,
    Path(id): Path<String>,
) -> Result<Json<ConnectionView>, ApiError> {
    let view = state
        .blocking(move |connections| {
            let (stored, integration) = load(connections, tenant, &id)?;
            Ok(view(&stored, &id, integration))
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
            let tokens = retry::call(&RetryPolicy::default(), None, &mut |_| {}, || {
                crate::connect::instance(runtime, config, &no_signer())?
                    .fetch_client_credentials(config)
            })?;
            let name = internal_name(tenant, &request.connection);
            connections.save_locked(
                &name,
                config,
                &integration.secret_source(),
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
    Ok((StatusCode::CREATED, Json(view)))
}

async fn remove(
    State(state): State<AppState>,
    tenant: TenantId,
    Path(id): Path<String>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let revoked = state
        .blocking(move |connections| {
            let (stored, _) = load(connections, tenant, &id)?;
            let name = internal_name(tenant, &id);
            // Revoked at the server when it has a revocation endpoint and the tokens are
            // still in use; a failed revocation is logged, and the connection removed anyway.
            let revocable = stored.config.profile.revocation_url.is_some()
                && stored.state == ConnectionState::Active;
            let revoked = revocable
                && match connections.revoke(&name) {
                    Ok(()) => true,
                    Err(error) => {
                        tracing::warn!(
                            tenant = tenant.0,
                            connection = id.as_str(),
                            %error,
                            "revocation failed; removing the connection anyway"
                        );
                        false
                    }
                };
            connections.remove(&name)?;
            connections.store().sqlite().execute(
                "DELETE FROM service_connections WHERE tenant_id = ?1 AND id = ?2",
                params![tenant.0, id],
            )?;
            Ok(revoked)
        })
        .await?;
    Ok(Json(
        serde_json::json!({ "removed": true, "revoked": revoked }),
    ))
}

async fn token(
    State(state): State<AppState>,
    tenant: TenantId,
    Path(id): Path<String>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let tokens = state
        .blocking(move |connections| {
            Ok(connections
                .valid_tokens(&internal_name(tenant, &id))?
                .tokens)
        })
        .await?;
    Ok(Json(serde_json::json!({
        "access_token": tokens.access_token,
        "token_type": tokens.token_type,
        "expires_at": tokens.expires_at.map(format_time),
    })))
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
            Ok(connections.call(&name, &request)?)
        })
        .await?;
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

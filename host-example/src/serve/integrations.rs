//! `/v1/integrations`: a tenant's configured providers and clients. Built with the CLI's
//! `connect` code ([`crate::configure`]); the client secret is write-only (stored, never
//! returned: the view says `client_secret_set`).

use std::collections::BTreeMap;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::get;
use axum::{Json, Router};
use rusqlite::{OptionalExtension as _, params};
use serde::{Deserialize, Serialize};

use super::AppState;
use super::auth::{Body, TenantId, body_bytes, json_body};
use super::errors::{ApiError, Code};
use super::tenants::valid_id;
use crate::configure::{self, ClientSettings, ConfigureError, ProfileSource};
use crate::describe::{client_auth_method, format_time};
use crate::store::{Grant, SecretSource, Store};
use crate::types::{ClientAuthMethod, ConnectionConfig, KeyValue};
use crate::{AllowList, HttpTransport, Limits};

/// The routes of this resource.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/v1/integrations", get(list).post(create))
        .route("/v1/integrations/{id}", get(show).delete(remove))
}

/// A client authentication method as the API names it (RFC 7591 §2).
#[derive(Clone, Copy, Deserialize)]
#[serde(rename_all = "snake_case")]
enum ClientAuth {
    ClientSecretBasic,
    ClientSecretPost,
    None,
    ClientSecretJwt,
}

/// The grants an integration can use.
#[derive(Clone, Copy, Deserialize, Default)]
#[serde(rename_all = "kebab-case")]
enum GrantName {
    #[default]
    AuthorizationCode,
    ClientCredentials,
}

/// `POST /v1/integrations`. No `Debug`: it holds the client secret.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NewIntegration {
    id: String,
    provider: Option<String>,
    issuer: Option<String>,
    profile: Option<serde_json::Value>,
    #[serde(default)]
    grant: GrantName,
    client_id: String,
    client_secret: Option<String>,
    client_auth: Option<ClientAuth>,
    #[serde(default)]
    scopes: Vec<String>,
    #[serde(default)]
    params: BTreeMap<String, String>,
    #[serde(default)]
    vars: BTreeMap<String, String>,
    #[serde(default)]
    offline: bool,
}

/// A stored integration, its client secret filled in. Its `Debug` leaves the secret out.
pub struct Integration {
    /// Its id, unique for the tenant.
    pub id: String,
    /// The grant its connections use.
    pub grant: Grant,
    /// Where its profile came from: `provider`, `issuer` or `profile`.
    pub source: String,
    /// The configuration (with the client secret, if any).
    pub config: ConnectionConfig,
    /// When it was created (Unix seconds).
    pub created_at: u64,
}

impl std::fmt::Debug for Integration {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Integration")
            .field("id", &self.id)
            .field("grant", &self.grant)
            .field("provider", &self.config.profile.id)
            .finish_non_exhaustive()
    }
}

impl Integration {
    /// Where its connections' client secret comes from: stored with them, or none.
    pub fn secret_source(&self) -> SecretSource {
        match &self.config.client.client_secret {
            Some(secret) => SecretSource::Stored(secret.clone()),
            None => SecretSource::None,
        }
    }

    /// The API's view of it (never the secret).
    fn view(&self) -> IntegrationView {
        let config = &self.config;
        IntegrationView {
            id: self.id.clone(),
            grant: self.grant.name(),
            source: self.source.clone(),
            provider: config.profile.id.clone(),
            issuer: config.profile.issuer.clone(),
            api_base_url: config.profile.api_base_url.clone(),
            client_id: config.client.client_id.clone(),
            client_auth: client_auth_method(
                config
                    .client
                    .auth_method
                    .unwrap_or(config.profile.client_auth),
            ),
            client_secret_set: config.client.client_secret.is_some(),
            scopes: config.scopes.clone(),
            params: config
                .authorize_params
                .iter()
                .map(|kv| (kv.name.clone(), kv.value.clone()))
                .collect(),
            offline: config.offline_access,
            created_at: format_time(self.created_at),
        }
    }
}

/// An integration as the API returns it.
#[derive(Serialize)]
struct IntegrationView {
    id: String,
    grant: &'static str,
    source: String,
    provider: String,
    issuer: Option<String>,
    api_base_url: Option<String>,
    client_id: String,
    client_auth: &'static str,
    client_secret_set: bool,
    scopes: Vec<String>,
    params: BTreeMap<String, String>,
    offline: bool,
    created_at: String,
}

/// Reads tenant `tenant`'s integration `id`; `not_found` when it has none.
pub fn load(store: &Store, tenant: TenantId, id: &str) -> Result<Integration, ApiError> {
    let row = store
        .sqlite()
        .query_row(
            "SELECT grant_type, source, config, client_secret, created_at
             FROM integrations WHERE tenant_id = ?1 AND id = ?2",
            params![tenant.0, id],
            |row| {
                Ok((
                    row.get::<_, String>(0)?,
                    row.get::<_, String>(1)?,
                    row.get::<_, String>(2)?,
                    row.get::<_, Option<String>>(3)?,
                    row.get::<_, i64>(4)?,
                ))
            },
        )
        .optional()?
        .ok_or_else(|| ApiError::not_found("integration", id))?;
    decode(store, tenant, id, row)
}

type Row = (String, String, String, Option<String>, i64);

fn decode(
    store: &Store,
    tenant: TenantId,
    id: &str,
    (grant, source, config, secret, created_at): Row,
) -> Result<Integration, ApiError> {
    let corrupt =
        |what: &str| ApiError::internal(&format!("integration `{id}`: unreadable {what}"));
    let grant: Grant =
        serde_json::from_value(serde_json::Value::String(grant)).map_err(|_| corrupt("grant"))?;
    let mut config: ConnectionConfig =
        serde_json::from_str(&config).map_err(|_| corrupt("configuration"))?;
    config.client.client_secret = secret
        .map(|secret| super::tenants::open_client_secret(store, tenant.0, id, secret))
        .transpose()?;
    Ok(Integration {
        id: id.to_owned(),
        grant,
        source,
        config,
        created_at: created_at as u64,
    })
}

async fn list(
    State(state): State<AppState>,
    tenant: TenantId,
) -> Result<Json<serde_json::Value>, ApiError> {
    let views = state
        .blocking(move |connections| {
            let store = connections.store();
            let db = store.sqlite();
            let mut statement = db.prepare(
                "SELECT id, grant_type, source, config, client_secret, created_at
                 FROM integrations WHERE tenant_id = ?1 ORDER BY id",
            )?;
            let rows = statement
                .query_map([tenant.0], |row| {
                    Ok((
                        row.get::<_, String>(0)?,
                        (
                            row.get::<_, String>(1)?,
                            row.get::<_, String>(2)?,
                            row.get::<_, String>(3)?,
                            row.get::<_, Option<String>>(4)?,
                            row.get::<_, i64>(5)?,
                        ),
                    ))
                })?
                .collect::<Result<Vec<_>, _>>()?;
            rows.into_iter()
                .map(|(id, row)| Ok(decode(store, tenant, &id, row)?.view()))
                .collect::<Result<Vec<_>, ApiError>>()
        })
        .await?;
    Ok(Json(serde_json::json!({ "integrations": views })))
}

async fn show(
    State(state): State<AppState>,
    tenant: TenantId,
    Path(id): Path<String>,
) -> Result<Json<IntegrationView>, ApiError> {
    let view = state
        .blocking(move |connections| Ok(load(connections.store(), tenant, &id)?.view()))
        .await?;
    Ok(Json(view))
}

async fn remove(
    State(state): State<AppState>,
    tenant: TenantId,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    state
        .blocking(move |connections| {
            let db = connections.store().sqlite();
            let tx = db.unchecked_transaction()?;
            let used: i64 = tx.query_row(
                // A removed connection's row stays until its `removed` event is delivered
                // (see `connections::remove_connection`): only stored connections count.
                "SELECT count(*) FROM service_connections AS s
                 WHERE s.tenant_id = ?1 AND s.integration = ?2
                   AND EXISTS (SELECT 1 FROM connections
                               WHERE name = 't' || s.tenant_id || ':' || s.id)",
                params![tenant.0, id],
                |row| row.get(0),
            )?;
            if used > 0 {
                return Err(ApiError::new(
                    Code::Conflict,
                    format!(
                        "integration `{id}` has {used} connection(s): delete them first \
                         (DELETE /v1/connections/ID)"
                    ),
                ));
            }
            let removed = tx.execute(
                "DELETE FROM integrations WHERE tenant_id = ?1 AND id = ?2",
                params![tenant.0, id],
            )?;
            if removed == 0 {
                return Err(ApiError::not_found("integration", &id));
            }
            tx.execute(
                "DELETE FROM connect_sessions WHERE tenant_id = ?1 AND integration = ?2",
                params![tenant.0, id],
            )?;
            tx.commit()?;
            Ok(())
        })
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn create(
    State(state): State<AppState>,
    tenant: TenantId,
    body: Body,
) -> Result<(StatusCode, Json<IntegrationView>), ApiError> {
    let request: NewIntegration = json_body(&body_bytes(body)?)?;
    if !valid_id(&request.id) {
        return Err(ApiError::invalid(
            "id: use 1 to 100 letters, digits, `.`, `_` or `-`",
        ));
    }
    let runtime = state.runtime();
    let callback = state.callback_url();
    let view = state
        .blocking(move |connections| {
            let store = connections.store();
            let exists = store
                .sqlite()
                .query_row(
                    "SELECT 1 FROM integrations WHERE tenant_id = ?1 AND id = ?2",
                    params![tenant.0, request.id],
                    |_| Ok(()),
                )
                .optional()?
                .is_some();
            if exists {
                return Err(ApiError::new(
                    Code::Conflict,
                    format!(
                        "integration `{}` exists already (DELETE it first to replace it)",
                        request.id
                    ),
                ));
            }
            let integration = build(runtime, request, &callback)?;
            let mut stored_config = integration.config.clone();
            let secret = stored_config.client.client_secret.take().map(|secret| {
                super::tenants::seal_client_secret(store, tenant.0, &integration.id, secret)
            });
            let inserted = store.sqlite().execute(
                "INSERT INTO integrations
                     (tenant_id, id, grant_type, source, config, client_secret, created_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7) ON CONFLICT DO NOTHING",
                params![
                    tenant.0,
                    integration.id,
                    integration.grant.name(),
                    integration.source,
                    serde_json::to_string(&stored_config).map_err(|e| ApiError::internal(&e))?,
                    secret,
                    integration.created_at as i64,
                ],
            )?;
            if inserted == 0 {
                return Err(ApiError::new(
                    Code::Conflict,
                    format!("integration `{}` exists already", integration.id),
                ));
            }
            Ok(integration.view())
        })
        .await?;
    Ok((StatusCode::CREATED, Json(view)))
}

/// Builds the integration's configuration through the component (reading the preset, the
/// profile, or the issuer's metadata), checking what can be checked before anyone signs in.
fn build(
    runtime: &crate::Runtime,
    request: NewIntegration,
    callback: &str,
) -> Result<Integration, ApiError> {
    let (source_name, source) = match (request.provider, request.issuer, request.profile) {
        (Some(preset), None, None) => ("provider", ProfileSource::Preset(preset)),
        (None, Some(issuer), None) => ("issuer", ProfileSource::Issuer(issuer)),
        (None, None, Some(profile)) => {
            let text = serde_json::to_string(&profile).map_err(|e| ApiError::internal(&e))?;
            let parsed = runtime
                .instantiate(HttpTransport::new(AllowList::default(), Limits::default()))?
                .parse_profile(&text)
                .map_err(|error| ApiError::invalid(format!("profile: {error}")))?;
            ("profile", ProfileSource::Profile(Box::new(parsed)))
        }
        _ => {
            return Err(ApiError::invalid(
                "give exactly one of `provider` (a preset id), `issuer` (an issuer URL) or \
                 `profile` (a profile object)",
            ));
        }
    };
    let is_issuer = source_name == "issuer";
    let grant = match request.grant {
        GrantName::AuthorizationCode => Grant::AuthorizationCode,
        GrantName::ClientCredentials => Grant::ClientCredentials,
    };
    if grant == Grant::ClientCredentials && (!request.params.is_empty() || request.offline) {
        return Err(ApiError::invalid(
            "`params` and `offline` do not apply to the client-credentials grant (no user, \
             browser or refresh token)",
        ));
    }
    let has_secret = request.client_secret.is_some();
    let pairs = |map: BTreeMap<String, String>| -> Vec<KeyValue> {
        map.into_iter()
            .map(|(name, value)| KeyValue { name, value })
            .collect()
    };
    let settings = ClientSettings {
        client_id: request.client_id,
        client_secret: request.client_secret,
        scopes: request.scopes,
        params: pairs(request.params),
        variables: pairs(request.vars),
        offline: request.offline,
    };
    let mut config =
        configure::connection_config(runtime, source, settings).map_err(|error| match error {
            ConfigureError::UnknownVariable {
                name,
                profile,
                declared,
            } => ApiError::invalid(format!(
                "vars.{name}: the profile `{profile}` has no variable `{name}`; {}",
                configure::declared_text(&declared, "vars")
            )),
            ConfigureError::Discovery { issuer, error } => {
                let mut api = ApiError::from(error);
                api.message = format!("discovering {issuer}: {}", api.message);
                api
            }
            ConfigureError::Call(error) => ApiError::from(error),
        })?;
    // The method is the client's (RFC 7591 §2), as the CLI's `connect` decides it: as given;
    // else `none` for a client with no secret found by discovery; else the profile's.
    config.client.auth_method = match request.client_auth {
        Some(ClientAuth::ClientSecretBasic) => Some(ClientAuthMethod::ClientSecretBasic),
        Some(ClientAuth::ClientSecretPost) => Some(ClientAuthMethod::ClientSecretPost),
        Some(ClientAuth::None) => Some(ClientAuthMethod::None),
        Some(ClientAuth::ClientSecretJwt) => Some(ClientAuthMethod::ClientSecretJwt),
        None if is_issuer && !has_secret => Some(ClientAuthMethod::None),
        None => None,
    };
    if grant == Grant::AuthorizationCode {
        // Everything that can be known before a person signs in is checked now.
        let mut checked = config.clone();
        checked.redirect_uri = Some(callback.to_owned());
        crate::connect::check(runtime, &checked, &no_signer())?;
    }
    Ok(Integration {
        id: request.id,
        grant,
        source: source_name.to_owned(),
        config,
        created_at: crate::store::now(),
    })
}

/// The signer of a client that signs nothing (the service takes no private keys yet).
pub fn no_signer() -> std::sync::Arc<dyn crate::signer::Signer> {
    std::sync::Arc::new(crate::signer::NoSigner)
}

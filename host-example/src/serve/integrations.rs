//! `/v1/integrations`: a tenant's configured providers and clients. Built with the CLI's
//! `connect` code ([`crate::configure`]); the client's secret or private key is write-only
//! (stored sealed, never returned: the view says `client_secret_set`, or `private_key_set`
//! with the key's algorithm and `kid`).
//!
//! A `private_key_jwt` client gives its key as PKCS#8 PEM text (`private_key`), which the
//! host signs its assertions with ([`KeyFileSigner`]); the key never enters the component.
//! A client has a secret or a key, never both: no method uses both, and a secret stored
//! beside a key would be one more secret to leak for nothing.
//!
//! An integration with `dpop` binds its connections' tokens to a key (RFC 9449): each
//! connection gets a fresh key of its own ([`Integration::new_connection_secrets`]) when it
//! is made (a connect session, or `POST /v1/connections`), kept sealed with it; the service
//! signs every proof, so such a connection's token is used through the service only.
//! `resources` (RFC 8707) name the resources its tokens are for.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::get;
use axum::{Json, Router};
use serde::{Deserialize, Serialize};

use super::AppState;
use super::auth::{Body, TenantId, body_bytes, json_body};
use super::errors::{ApiError, Code};
use super::tenants::valid_id;
use crate::configure::{self, ClientSettings, ConfigureError, ProfileSource};
use crate::describe::{client_auth_method, format_time};
use crate::signer::{KeyFileSigner, Signer, generate_dpop_key, jws_name};
use crate::sql_params as params;
use crate::store::db::Row as DbRow;
use crate::store::{ConnectionSecrets, Grant, SecretSource, Store, StoreError};
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
    PrivateKeyJwt,
}

/// The grants an integration can use.
#[derive(Clone, Copy, Deserialize, Default)]
#[serde(rename_all = "kebab-case")]
enum GrantName {
    #[default]
    AuthorizationCode,
    ClientCredentials,
}

/// `POST /v1/integrations`. No `Debug`: it holds the client secret or private key.
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
    /// The client's private key for `private_key_jwt`: PKCS#8 PEM text (PKCS#1 for RSA too).
    private_key: Option<String>,
    /// The private key's `kid`, as registered with the server.
    key_id: Option<String>,
    client_auth: Option<ClientAuth>,
    #[serde(default)]
    scopes: Vec<String>,
    #[serde(default)]
    params: BTreeMap<String, String>,
    #[serde(default)]
    vars: BTreeMap<String, String>,
    #[serde(default)]
    offline: bool,
    /// Whether its connections' tokens are bound to a key of their own (DPoP, RFC 9449).
    #[serde(default)]
    dpop: bool,
    /// The resources its tokens are for (RFC 8707 `resource`): absolute URIs without a
    /// fragment.
    #[serde(default)]
    resources: Vec<String>,
}

/// A stored integration, its client secret or private key filled in. Its `Debug` leaves
/// them out.
pub struct Integration {
    /// Its id, unique for the tenant.
    pub id: String,
    /// The grant its connections use.
    pub grant: Grant,
    /// Where its profile came from: `provider`, `issuer` or `profile`.
    pub source: String,
    /// The configuration (with the client secret, if any).
    pub config: ConnectionConfig,
    /// The client's private key (`private_key_jwt`), if it has one.
    pub key: Option<IntegrationKey>,
    /// When it was created (Unix seconds).
    pub created_at: u64,
}

/// An integration's private key: the PEM text as given (stored sealed, and with each of its
/// connections, whose refreshes sign with it) and the signer parsed from it. Its `Debug`
/// prints the algorithm and `kid`, never the key.
pub struct IntegrationKey {
    pem: String,
    signer: Arc<KeyFileSigner>,
}

impl IntegrationKey {
    /// Parses `pem` (with `key_id`, its `kid`); the error is [`KeyFileSigner::from_pem`]'s,
    /// which names no byte of the text.
    pub fn parse(pem: String, key_id: Option<String>) -> Result<Self, crate::signer::KeyFileError> {
        let signer = KeyFileSigner::from_pem(&pem, key_id)?;
        Ok(Self {
            pem,
            signer: Arc::new(signer),
        })
    }

    /// The key's JWS algorithm name: `RS256`, `ES256`, `ES384` or `EdDSA`.
    pub fn algorithm(&self) -> &'static str {
        jws_name(self.signer.algorithm())
    }

    /// The key's `kid`, if it has one.
    pub fn key_id(&self) -> Option<&str> {
        self.signer.key_id()
    }
}

impl std::fmt::Debug for IntegrationKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IntegrationKey")
            .field("algorithm", &self.algorithm())
            .field("key_id", &self.key_id())
            .finish_non_exhaustive()
    }
}

impl std::fmt::Debug for Integration {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Integration")
            .field("id", &self.id)
            .field("grant", &self.grant)
            .field("provider", &self.config.profile.id)
            .field("key", &self.key)
            .finish_non_exhaustive()
    }
}

impl Integration {
    /// Where its connections' client credential comes from: its private key or its client
    /// secret, stored (sealed) with them, or none.
    pub fn secret_source(&self) -> SecretSource {
        match (&self.key, &self.config.client.client_secret) {
            (Some(key), _) => SecretSource::StoredPrivateKey {
                pem: key.pem.clone(),
                key_id: key.key_id().map(str::to_owned),
            },
            (None, Some(secret)) => SecretSource::Stored(secret.clone()),
            (None, None) => SecretSource::None,
        }
    }

    /// What a new connection of it keeps sealed beside its client's credential: a fresh
    /// DPoP key (RFC 9449) when it binds its tokens, else nothing. Made before the
    /// authorization request: the component sends the key's thumbprint (`dpop_jkt`) there.
    pub fn new_connection_secrets(&self) -> Result<ConnectionSecrets, ApiError> {
        let mut secrets = ConnectionSecrets::default();
        if self.config.dpop {
            secrets.dpop_key = Some(generate_dpop_key().map_err(|_| {
                ApiError::internal(&"could not make a DPoP key: the system's random source failed")
            })?);
        }
        Ok(secrets)
    }

    /// The signer of a connection of it whose own keys are `secrets`: its client assertions
    /// with the integration's private key, its DPoP proofs with the connection's key.
    pub fn connection_signer(
        &self,
        secrets: &ConnectionSecrets,
    ) -> Result<Arc<dyn Signer>, ApiError> {
        Ok(crate::connections::connection_signer(
            &self.secret_source(),
            secrets,
        )?)
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
            private_key_set: self.key.is_some(),
            key_algorithm: self.key.as_ref().map(IntegrationKey::algorithm),
            key_id: self
                .key
                .as_ref()
                .and_then(|key| key.key_id().map(str::to_owned)),
            scopes: config.scopes.clone(),
            params: config
                .authorize_params
                .iter()
                .map(|kv| (kv.name.clone(), kv.value.clone()))
                .collect(),
            offline: config.offline_access,
            dpop: config.dpop,
            resources: config.resources.clone(),
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
    /// Whether it has a private key (never the key).
    private_key_set: bool,
    /// The private key's JWS algorithm, when it has one.
    key_algorithm: Option<&'static str>,
    /// The private key's `kid`, when it has one.
    key_id: Option<String>,
    scopes: Vec<String>,
    params: BTreeMap<String, String>,
    offline: bool,
    /// Whether its connections' tokens are DPoP-bound (RFC 9449).
    dpop: bool,
    /// The resources its tokens are for (RFC 8707).
    resources: Vec<String>,
    created_at: String,
}

/// Reads tenant `tenant`'s integration `id`; `not_found` when it has none.
pub fn load(store: &Store, tenant: TenantId, id: &str) -> Result<Integration, ApiError> {
    let row = store
        .db()
        .query_opt(
            "SELECT grant_type, source, config, client_secret, private_key, key_id, created_at
             FROM integrations WHERE tenant_id = ?1 AND id = ?2",
            params![tenant.0, id],
            |row| row_of(row, 0),
        )?
        .ok_or_else(|| ApiError::not_found("integration", id))?;
    decode(store, tenant, id, row)
}

/// An integration's stored columns: grant, source, configuration, client secret, private
/// key, key id, creation time.
type Row = (
    String,
    String,
    String,
    Option<String>,
    Option<String>,
    Option<String>,
    i64,
);

/// The [`Row`] in `row`'s columns from `first` on.
fn row_of(row: &DbRow<'_>, first: usize) -> Result<Row, StoreError> {
    Ok((
        row.get(first)?,
        row.get(first + 1)?,
        row.get(first + 2)?,
        row.get(first + 3)?,
        row.get(first + 4)?,
        row.get(first + 5)?,
        row.get(first + 6)?,
    ))
}

fn decode(
    store: &Store,
    tenant: TenantId,
    id: &str,
    (grant, source, config, secret, private_key, key_id, created_at): Row,
) -> Result<Integration, ApiError> {
    let corrupt =
        |what: &str| ApiError::internal(&format!("integration `{id}`: unreadable {what}"));
    let grant: Grant =
        serde_json::from_value(serde_json::Value::String(grant)).map_err(|_| corrupt("grant"))?;
    let mut config: ConnectionConfig =
        crate::store::upgrade::config_from_json(&config).map_err(|_| corrupt("configuration"))?;
    config.client.client_secret = secret
        .map(|secret| super::tenants::open_client_secret(store, tenant.0, id, secret))
        .transpose()?;
    let key = private_key
        .map(|text| super::tenants::open_private_key(store, tenant.0, id, text))
        .transpose()?
        .map(|pem| IntegrationKey::parse(pem, key_id).map_err(|_| corrupt("private key")))
        .transpose()?;
    Ok(Integration {
        id: id.to_owned(),
        grant,
        source,
        config,
        key,
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
            let rows = store.db().query(
                "SELECT id, grant_type, source, config, client_secret, private_key, key_id,
                        created_at
                 FROM integrations WHERE tenant_id = ?1 ORDER BY id",
                params![tenant.0],
                |row| Ok((row.get::<String>(0)?, row_of(row, 1)?)),
            )?;
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
            connections.store().db().transaction(|db| {
                let used: i64 = db.query_one(
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
                let removed = db.execute(
                    "DELETE FROM integrations WHERE tenant_id = ?1 AND id = ?2",
                    params![tenant.0, id],
                )?;
                if removed == 0 {
                    return Err(ApiError::not_found("integration", &id));
                }
                db.execute(
                    "DELETE FROM connect_sessions WHERE tenant_id = ?1 AND integration = ?2",
                    params![tenant.0, id],
                )?;
                Ok(())
            })
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
                .db()
                .query_opt(
                    "SELECT 1 FROM integrations WHERE tenant_id = ?1 AND id = ?2",
                    params![tenant.0, request.id],
                    |_| Ok(()),
                )?
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
            let private_key = integration.key.as_ref().map(|key| {
                super::tenants::seal_private_key(store, tenant.0, &integration.id, key.pem.clone())
            });
            let key_id = integration.key.as_ref().and_then(IntegrationKey::key_id);
            let config =
                serde_json::to_string(&stored_config).map_err(|e| ApiError::internal(&e))?;
            let inserted = store.db().execute(
                "INSERT INTO integrations
                     (tenant_id, id, grant_type, source, config, client_secret, private_key,
                      key_id, created_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9) ON CONFLICT DO NOTHING",
                params![
                    tenant.0,
                    integration.id,
                    integration.grant.name(),
                    integration.source,
                    config,
                    secret,
                    private_key,
                    key_id,
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
    check_resources(&request.resources)?;
    // The client's credential, checked before anything is fetched.
    let key = parse_key(request.private_key, request.key_id)?;
    let auth_method = auth_method(
        request.client_auth,
        request.client_secret.is_some(),
        key.is_some(),
        is_issuer,
    )?;
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
        resources: request.resources,
        dpop: request.dpop,
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
            // Integrations name their provider: nothing here finds one from a resource.
            other @ (ConfigureError::ResourceDiscovery { .. }
            | ConfigureError::Registration { .. }) => ApiError::invalid(other.to_string()),
            ConfigureError::Call(error) => ApiError::from(error),
        })?;
    config.client.auth_method = auth_method;
    let integration = Integration {
        id: request.id,
        grant,
        source: source_name.to_owned(),
        config,
        key,
        created_at: crate::store::now(),
    };
    let config = &integration.config;
    if integration.key.is_none()
        && config
            .client
            .auth_method
            .unwrap_or(config.profile.client_auth)
            == ClientAuthMethod::PrivateKeyJwt
    {
        return Err(ApiError::invalid(
            "the profile's client authentication is `private_key_jwt`, which needs the \
             client's key: give `private_key` (a PKCS#8 PEM), or another `client_auth`",
        ));
    }
    if grant == Grant::AuthorizationCode {
        // Everything that can be known before a person signs in is checked now, with the
        // key the client will sign with.
        let mut checked = config.clone();
        checked.redirect_uri = Some(callback.to_owned());
        // A DPoP integration is checked with a stand-in for the key each connection gets
        // (asked for its public key only: that the server takes its algorithm).
        let signer = integration.connection_signer(&integration.new_connection_secrets()?)?;
        crate::connect::check(runtime, &checked, &signer)?;
    }
    Ok(integration)
}

/// Refuses (`invalid_request`, naming the entry) a resource that is not an absolute URI
/// without a fragment (RFC 8707 §2), or that holds whitespace or control characters (which a
/// URL parser would quietly drop or encode).
fn check_resources(resources: &[String]) -> Result<(), ApiError> {
    for (index, resource) in resources.iter().enumerate() {
        let plain = !resource
            .chars()
            .any(|c| c.is_whitespace() || c.is_control());
        if !plain || resource.contains('#') || url::Url::parse(resource).is_err() {
            return Err(ApiError::invalid(format!(
                "resources[{index}]: give an absolute URI without a fragment (RFC 8707 §2), \
                 such as `https://api.example.com/`"
            )));
        }
    }
    Ok(())
}

/// The client's private key from the request's `private_key` (PEM text) and `key_id`:
/// parsed now, so that a key that cannot sign is refused before it is stored. A key that
/// does not parse is `invalid_request` with [`KeyFileSigner::from_pem`]'s reason, which
/// names no byte of the text; a `key_id` without a key is `invalid_request`.
fn parse_key(
    private_key: Option<String>,
    key_id: Option<String>,
) -> Result<Option<IntegrationKey>, ApiError> {
    match (private_key, key_id) {
        (Some(pem), key_id) => IntegrationKey::parse(pem, key_id)
            .map(Some)
            .map_err(|error| ApiError::invalid(format!("private_key: {error}"))),
        (None, Some(_)) => Err(ApiError::invalid(
            "key_id: it is the `kid` of the client's `private_key`; give the key too",
        )),
        (None, None) => Ok(None),
    }
}

/// How the client authenticates at the token endpoint: the client's, fixed when it was
/// registered (RFC 7591 §2), decided as the CLI's `connect` decides it. As given; else
/// `private_key_jwt` for a client with a key; else `none` for a client with no secret found
/// by discovery (discovery says what the server supports, not what this client was
/// registered with); else the profile's (`None`).
///
/// Refused (`invalid_request`) before anything is fetched: a secret and a key together (no
/// method uses both), a key with a method that does not sign with it, and
/// `private_key_jwt` without a key.
fn auth_method(
    client_auth: Option<ClientAuth>,
    has_secret: bool,
    has_key: bool,
    is_issuer: bool,
) -> Result<Option<ClientAuthMethod>, ApiError> {
    if has_secret && has_key {
        return Err(ApiError::invalid(
            "give `client_secret` or `private_key`, not both: a `private_key_jwt` client signs \
             with its key and sends no secret",
        ));
    }
    let given = client_auth.map(|method| match method {
        ClientAuth::ClientSecretBasic => ClientAuthMethod::ClientSecretBasic,
        ClientAuth::ClientSecretPost => ClientAuthMethod::ClientSecretPost,
        ClientAuth::None => ClientAuthMethod::None,
        ClientAuth::ClientSecretJwt => ClientAuthMethod::ClientSecretJwt,
        ClientAuth::PrivateKeyJwt => ClientAuthMethod::PrivateKeyJwt,
    });
    Ok(match given {
        Some(ClientAuthMethod::PrivateKeyJwt) if !has_key => {
            return Err(ApiError::invalid(
                "client_auth `private_key_jwt` needs the client's key: give `private_key` (a \
                 PKCS#8 PEM)",
            ));
        }
        Some(method) if has_key && method != ClientAuthMethod::PrivateKeyJwt => {
            return Err(ApiError::invalid(format!(
                "private_key: only a `private_key_jwt` client signs with a key, and \
                 client_auth is `{}`",
                client_auth_method(method)
            )));
        }
        Some(method) => Some(method),
        None if has_key => Some(ClientAuthMethod::PrivateKeyJwt),
        None if is_issuer && !has_secret => Some(ClientAuthMethod::None),
        None => None,
    })
}

#[cfg(test)]
mod tests {
    use base64::Engine as _;
    use ring::rand::SystemRandom;
    use ring::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, Ed25519KeyPair};

    use super::*;
    use crate::types::{Client, ProviderProfile};

    /// A PKCS#8 document as PEM text, 64 base64 characters a line.
    fn pem(der: &[u8]) -> String {
        let text = base64::engine::general_purpose::STANDARD.encode(der);
        let lines: Vec<&str> = text
            .as_bytes()
            .chunks(64)
            .map(|line| std::str::from_utf8(line).unwrap())
            .collect();
        format!(
            "-----BEGIN PRIVATE KEY-----\n{}\n-----END PRIVATE KEY-----\n",
            lines.join("\n")
        )
    }

    fn ed25519_pem() -> String {
        pem(Ed25519KeyPair::generate_pkcs8(&SystemRandom::new())
            .unwrap()
            .as_ref())
    }

    fn p256_pem() -> String {
        pem(
            EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &SystemRandom::new())
                .unwrap()
                .as_ref(),
        )
    }

    /// The base64 body of `pem` (what must never be quoted back).
    fn body(pem: &str) -> String {
        pem.lines()
            .filter(|line| !line.starts_with("-----"))
            .collect()
    }

    fn refused<T>(result: Result<T, ApiError>) -> ApiError {
        match result {
            Ok(_) => panic!("accepted"),
            Err(error) => error,
        }
    }

    #[test]
    fn resources_are_absolute_uris_without_a_fragment() {
        let ok = |resources: &[&str]| {
            check_resources(
                &resources
                    .iter()
                    .map(|r| (*r).to_owned())
                    .collect::<Vec<_>>(),
            )
        };
        assert!(ok(&[]).is_ok());
        assert!(
            ok(&[
                "https://api.example.com/",
                "urn:example:api",
                "http://127.0.0.1/api"
            ])
            .is_ok()
        );
        for (resources, index) in [
            (&["api"][..], 0),
            (&["https://a.example/", "/relative"], 1),
            (&["https://a.example/#part"], 0),
            (&["https://a.example/#"], 0),
            (&["https://a.example/a b"], 0),
            (&[" https://a.example/"], 0),
            (&["https://a.example/\n"], 0),
        ] {
            let error = refused(ok(resources));
            assert_eq!(error.code, Code::InvalidRequest);
            assert!(
                error.message.starts_with(&format!("resources[{index}]: ")),
                "{}",
                error.message
            );
        }
        // A request takes them, and `dpop`; both default to none.
        let request: NewIntegration = serde_json::from_value(serde_json::json!({
            "id": "i", "provider": "github", "client_id": "c",
            "dpop": true, "resources": ["https://api.example.com/"],
        }))
        .unwrap();
        assert!(request.dpop);
        assert_eq!(request.resources, ["https://api.example.com/"]);
        let request: NewIntegration = serde_json::from_value(serde_json::json!({
            "id": "i", "provider": "github", "client_id": "c",
        }))
        .unwrap();
        assert!(!request.dpop && request.resources.is_empty());
    }

    #[test]
    fn a_request_takes_a_private_key_and_its_kid() {
        let request: NewIntegration = serde_json::from_value(serde_json::json!({
            "id": "signed",
            "issuer": "https://issuer.example",
            "client_id": "c",
            "client_auth": "private_key_jwt",
            "private_key": "PEM",
            "key_id": "k1",
        }))
        .unwrap();
        assert!(matches!(
            request.client_auth,
            Some(ClientAuth::PrivateKeyJwt)
        ));
        assert_eq!(request.private_key.as_deref(), Some("PEM"));
        assert_eq!(request.key_id.as_deref(), Some("k1"));
        // The view's name is not a request field.
        assert!(
            serde_json::from_value::<NewIntegration>(serde_json::json!({
                "id": "x", "provider": "github", "client_id": "c", "private_key_set": true,
            }))
            .is_err()
        );
    }

    #[test]
    fn keys_parse_by_type_and_a_bad_one_is_refused_without_being_quoted() {
        let key = parse_key(Some(ed25519_pem()), Some("ed-1".into()))
            .unwrap()
            .unwrap();
        assert_eq!((key.algorithm(), key.key_id()), ("EdDSA", Some("ed-1")));
        let key = parse_key(Some(p256_pem()), None).unwrap().unwrap();
        assert_eq!((key.algorithm(), key.key_id()), ("ES256", None));
        assert!(parse_key(None, None).unwrap().is_none());

        // Not PEM, no key in it, a damaged key, a kid without a key: invalid_request,
        // naming the field, never quoting the text.
        let damaged = p256_pem().replacen("MI", "MX", 1);
        for (pem, key_id, field) in [
            (Some("not a key at all".to_owned()), None, "private_key: "),
            (
                Some("-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n".to_owned()),
                None,
                "private_key: ",
            ),
            (Some(damaged.clone()), Some("k".to_owned()), "private_key: "),
            (None, Some("k".to_owned()), "key_id: "),
        ] {
            let quoted = pem.as_deref().map(body);
            let error = refused(parse_key(pem, key_id));
            assert_eq!(error.code, Code::InvalidRequest, "{}", error.message);
            assert!(error.message.starts_with(field), "{}", error.message);
            if let Some(quoted) = quoted.filter(|quoted| quoted.len() > 8) {
                assert!(!error.message.contains(&quoted), "{}", error.message);
            }
        }
    }

    #[test]
    fn the_method_follows_the_key_and_refuses_what_cannot_work() {
        use ClientAuthMethod as M;
        // (given, has_secret, has_key, is_issuer) -> method
        let accepted = [
            (None, false, true, true, Some(M::PrivateKeyJwt)),
            (None, false, true, false, Some(M::PrivateKeyJwt)),
            (
                Some(ClientAuth::PrivateKeyJwt),
                false,
                true,
                false,
                Some(M::PrivateKeyJwt),
            ),
            (None, false, false, true, Some(M::None)),
            (None, true, false, true, None),
            (None, false, false, false, None),
            (
                Some(ClientAuth::ClientSecretJwt),
                true,
                false,
                true,
                Some(M::ClientSecretJwt),
            ),
        ];
        for (given, secret, key, issuer, method) in accepted {
            assert_eq!(
                auth_method(given, secret, key, issuer).unwrap(),
                method,
                "{secret} {key} {issuer}"
            );
        }
        // (given, has_secret, has_key) -> the field the refusal names
        let refusals = [
            (
                None,
                true,
                true,
                "give `client_secret` or `private_key`, not both",
            ),
            (
                Some(ClientAuth::ClientSecretJwt),
                true,
                true,
                "give `client_secret` or `private_key`, not both",
            ),
            (
                Some(ClientAuth::PrivateKeyJwt),
                false,
                false,
                "give `private_key`",
            ),
            (
                Some(ClientAuth::PrivateKeyJwt),
                true,
                false,
                "give `private_key`",
            ),
            (
                Some(ClientAuth::ClientSecretBasic),
                false,
                true,
                "private_key: ",
            ),
            (Some(ClientAuth::None), false, true, "private_key: "),
        ];
        for (given, secret, key, names) in refusals {
            let error = refused(auth_method(given, secret, key, true));
            assert_eq!(error.code, Code::InvalidRequest);
            assert!(error.message.contains(names), "{}", error.message);
        }
    }

    #[test]
    fn an_integration_with_a_key_signs_with_it_and_never_shows_it() {
        let text = ed25519_pem();
        let integration = Integration {
            id: "signed".into(),
            grant: Grant::AuthorizationCode,
            source: "issuer".into(),
            config: ConnectionConfig {
                profile: ProviderProfile {
                    authorize_url: Some("https://a.example/auth".into()),
                    ..crate::profile_with_defaults("p", "https://a.example/token")
                },
                client: Client {
                    client_id: "c".into(),
                    client_secret: None,
                    auth_method: Some(ClientAuthMethod::PrivateKeyJwt),
                },
                redirect_uri: None,
                scopes: vec![],
                authorize_params: vec![],
                token_requests: crate::no_token_extras(),
                variables: vec![],
                offline_access: false,
                resources: vec![],
                dpop: false,
            },
            key: Some(IntegrationKey::parse(text.clone(), Some("ed-1".into())).unwrap()),
            created_at: 0,
        };
        assert_eq!(
            integration.secret_source(),
            SecretSource::StoredPrivateKey {
                pem: text.clone(),
                key_id: Some("ed-1".into())
            }
        );
        let key = integration
            .connection_signer(&ConnectionSecrets::default())
            .unwrap()
            .key(crate::types::KeyPurpose::ClientAssertion, "c")
            .unwrap();
        assert_eq!(key.key_id.as_deref(), Some("ed-1"));
        assert!(matches!(
            key.algorithm,
            crate::types::SigningAlgorithm::Eddsa
        ));
        let view = serde_json::to_value(integration.view()).unwrap();
        assert_eq!(view["client_auth"], "private_key_jwt");
        assert_eq!(view["client_secret_set"], false);
        assert_eq!(view["private_key_set"], true);
        assert_eq!(view["key_algorithm"], "EdDSA");
        assert_eq!(view["key_id"], "ed-1");
        let shown = format!("{view} {integration:?}");
        assert!(!shown.contains(&body(&text)), "{shown}");
        assert!(!shown.contains("PRIVATE KEY"), "{shown}");

        // Without a key: no signer, and the view says so.
        let plain = Integration {
            key: None,
            ..integration
        };
        assert_eq!(plain.secret_source(), SecretSource::None);
        assert!(
            plain
                .connection_signer(&ConnectionSecrets::default())
                .unwrap()
                .key(crate::types::KeyPurpose::ClientAssertion, "c")
                .is_err()
        );
        let view = serde_json::to_value(plain.view()).unwrap();
        assert_eq!(
            (
                &view["private_key_set"],
                &view["key_algorithm"],
                &view["key_id"]
            ),
            (
                &serde_json::json!(false),
                &serde_json::Value::Null,
                &serde_json::Value::Null
            )
        );
    }
}

//! Building a connection's configuration from where its profile comes from (a preset, an
//! issuer's metadata, or a profile) and the client's settings: shared by the CLI's `connect`
//! and the service's integrations, so that both front ends configure connections the same
//! way.

use crate::bindings::exports::oauth_connector::oauth2::registration::{
    ClientMetadata, ProtectedResource, RegisteredClient,
};
use crate::runtime::{CallError, Runtime};
use crate::types::{Client, ClientAuthMethod, ConnectionConfig, KeyValue, ProviderProfile};
use crate::{AllowList, HttpTransport, Limits, logging};

/// Where a connection's provider profile comes from.
pub enum ProfileSource {
    /// A profile already parsed (by `providers.parse-profile`).
    Profile(Box<ProviderProfile>),
    /// A preset of the runtime's catalogue ([`Runtime::presets`]), by id.
    Preset(String),
    /// Discovered from this issuer's metadata (RFC 8414 / OpenID Connect Discovery).
    Issuer(String),
}

/// What a connection's configuration is built from, besides its profile.
pub struct ClientSettings {
    /// The client identifier.
    pub client_id: String,
    /// The client secret, if any. A secret.
    pub client_secret: Option<String>,
    /// The scopes to request; none means the profile's defaults.
    pub scopes: Vec<String>,
    /// Extra authorize parameters.
    pub params: Vec<KeyValue>,
    /// Values for the profile's URL placeholders.
    pub variables: Vec<KeyValue>,
    /// Whether to ask for a refresh token the way the profile says.
    pub offline: bool,
    /// The resources the tokens are for (RFC 8707).
    pub resources: Vec<String>,
    /// Bind the tokens to a DPoP key the host holds (RFC 9449).
    pub dpop: bool,
}

impl std::fmt::Debug for ClientSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientSettings")
            .field("client_id", &self.client_id)
            .field(
                "client_secret",
                &self.client_secret.as_ref().map(|_| "[redacted]"),
            )
            .field("scopes", &self.scopes)
            .finish_non_exhaustive()
    }
}

/// Why a configuration could not be built.
#[derive(Debug)]
pub enum ConfigureError {
    /// The component refused the preset, the profile or the variables, or the call failed.
    Call(CallError),
    /// Discovery from the issuer failed.
    Discovery {
        /// The issuer.
        issuer: String,
        /// Why.
        error: CallError,
    },
    /// The protected resource's metadata could not be found or used (RFC 9728).
    ResourceDiscovery {
        /// The resource URL.
        url: String,
        /// Why.
        error: CallError,
    },
    /// Dynamic client registration failed (RFC 7591).
    Registration {
        /// The authorization server's issuer.
        issuer: String,
        /// Why.
        error: CallError,
    },
    /// A variable the profile does not declare (most likely a misspelling: it would be
    /// ignored).
    UnknownVariable {
        /// The variable given.
        name: String,
        /// The profile's id.
        profile: String,
        /// The variables the profile declares.
        declared: Vec<String>,
    },
}

impl std::fmt::Display for ConfigureError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Call(error) => error.fmt(f),
            Self::Discovery { issuer, error } => write!(f, "discovering {issuer}: {error}"),
            Self::ResourceDiscovery { url, error } => write!(
                f,
                "finding the authorization server of the protected resource {}: {error}",
                logging::loggable_url(url)
            ),
            Self::Registration { issuer, error } => write!(
                f,
                "registering a client with {issuer} (RFC 7591 dynamic registration): {error}; \
                 if the server does not allow open registration, register a client there \
                 and pass --client-id"
            ),
            Self::UnknownVariable {
                name,
                profile,
                declared,
            } => write!(
                f,
                "the profile `{profile}` has no variable `{name}`; {}",
                declared_text(declared, "variables")
            ),
        }
    }
}

impl std::error::Error for ConfigureError {}

impl From<CallError> for ConfigureError {
    fn from(error: CallError) -> Self {
        Self::Call(error)
    }
}

/// "its variables: `a`, `b`" or "it takes none" (with `none` naming what it takes none of).
pub fn declared_text(declared: &[String], none: &str) -> String {
    if declared.is_empty() {
        format!("it takes no {none}")
    } else {
        let names: Vec<String> = declared.iter().map(|name| format!("`{name}`")).collect();
        format!("its variables: {}", names.join(", "))
    }
}

/// Reads the profile (a preset, or discovery with an allow-list of the issuer alone) and
/// builds the configuration, its placeholders filled in (so that the allow-list and every
/// later call see concrete URLs). No redirect URI or client authentication method is set.
pub fn connection_config(
    runtime: &Runtime,
    source: ProfileSource,
    settings: ClientSettings,
) -> Result<ConnectionConfig, ConfigureError> {
    let mut session =
        runtime.instantiate(HttpTransport::new(AllowList::default(), Limits::default()))?;
    let profile = match source {
        ProfileSource::Profile(profile) => *profile,
        ProfileSource::Preset(preset) => runtime.presets().profile(&preset, &mut session)?,
        ProfileSource::Issuer(issuer) => discover(runtime, &issuer)?,
    };
    if let Some(unknown) = settings
        .variables
        .iter()
        .find(|var| !profile.variables.contains(&var.name))
    {
        return Err(ConfigureError::UnknownVariable {
            name: unknown.name.clone(),
            profile: profile.id.clone(),
            declared: profile.variables.clone(),
        });
    }
    let mut config = ConnectionConfig {
        profile,
        client: Client {
            client_id: settings.client_id,
            client_secret: settings.client_secret,
            auth_method: None,
        },
        redirect_uri: None,
        scopes: settings.scopes,
        authorize_params: settings.params,
        token_requests: crate::no_token_extras(),
        variables: settings.variables,
        offline_access: settings.offline,
        resources: settings.resources,
        dpop: settings.dpop,
    };
    config.profile = session.resolve_profile(&config)?;
    config.variables.clear();
    Ok(config)
}

/// The profile in `issuer`'s metadata (RFC 8414 / OpenID Connect Discovery), fetched with an
/// allow-list of the issuer alone.
fn discover(runtime: &Runtime, issuer: &str) -> Result<ProviderProfile, ConfigureError> {
    let allow = AllowList::from_urls([issuer]);
    let profile = runtime
        .instantiate(HttpTransport::new(allow, Limits::default()))?
        .discover(issuer)
        .map_err(|error| ConfigureError::Discovery {
            issuer: issuer.to_owned(),
            error,
        })?;
    tracing::info!(
        issuer = %logging::loggable_url(issuer),
        "discovery: fetched the server's metadata"
    );
    Ok(profile)
}

/// A connection configured from a protected resource's URL alone (RFC 9728, RFC 7591).
pub struct ResourceConnection {
    /// The configuration: the resource's first authorization server's profile, the client
    /// (given, or registered), the loopback redirect URI, and `resources` = the resource.
    pub config: ConnectionConfig,
    /// What the resource said about itself.
    pub resource: ProtectedResource,
    /// The client registered for it, when no client id was given. Holds secrets.
    pub registration: Option<RegisteredClient>,
}

/// Leaves out the registration's secrets and the client secret.
impl std::fmt::Debug for ResourceConnection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ResourceConnection")
            .field("client_id", &self.config.client.client_id)
            .field("resource", &self.resource.resource)
            .field(
                "authorization_servers",
                &self.resource.authorization_servers,
            )
            .field("registered", &self.registration.is_some())
            .finish_non_exhaustive()
    }
}

/// Configures a connection from `resource_url` alone: finds its protected-resource metadata
/// (`registration.discover-resource`, with an allow-list of the URL's origin), discovers its
/// first authorization server, and, when `settings` has no client id, registers a client
/// there (`registration.register`: `redirect_uri` as the one redirect URI, a public client
/// with PKCE unless the server registers another method). The configuration's `resources`
/// is the resource's identifier (RFC 8707), its redirect URI `redirect_uri`, and its API
/// base URL the resource when the server's metadata names none, so that `call` takes paths
/// under it.
pub fn from_resource(
    runtime: &Runtime,
    resource_url: &str,
    mut settings: ClientSettings,
    redirect_uri: &str,
) -> Result<ResourceConnection, ConfigureError> {
    let resource_error = |error| ConfigureError::ResourceDiscovery {
        url: resource_url.to_owned(),
        error,
    };
    let resource = runtime
        .instantiate(HttpTransport::new(
            AllowList::from_urls([resource_url]),
            Limits::default(),
        ))?
        .discover_resource(resource_url)
        .map_err(resource_error)?;
    let Some(issuer) = resource.authorization_servers.first().cloned() else {
        return Err(resource_error(CallError::Connector(
            crate::types::Error::Discovery(crate::types::DiscoveryError::NoAuthorizationServer),
        )));
    };
    tracing::info!(
        resource = %logging::loggable_url(&resource.resource),
        issuer = %logging::loggable_url(&issuer),
        "resource discovery: found the authorization server"
    );
    let profile = discover(runtime, &issuer)?;
    let registration = if settings.client_id.is_empty() {
        let metadata = ClientMetadata {
            redirect_uris: vec![redirect_uri.to_owned()],
            auth_method: ClientAuthMethod::None,
            grant_types: vec![],
            scopes: settings.scopes.clone(),
            client_name: Some("connector-host".to_owned()),
            software_id: Some("oauth-connector".to_owned()),
            software_version: Some(env!("CARGO_PKG_VERSION").to_owned()),
        };
        let registered = runtime
            .instantiate(HttpTransport::new(
                crate::default_allow_list(&profile),
                Limits::default(),
            ))?
            .register_client(
                profile.registration_url.as_deref().unwrap_or_default(),
                &metadata,
                None,
            )
            .map_err(|error| ConfigureError::Registration {
                issuer: issuer.clone(),
                error,
            })?;
        tracing::info!(
            issuer = %logging::loggable_url(&issuer),
            client_id = %crate::describe::printable(&registered.client.client_id),
            "registration: registered a client"
        );
        settings.client_id = registered.client.client_id.clone();
        settings.client_secret = registered.client.client_secret.clone();
        Some(registered)
    } else {
        None
    };
    settings.resources = vec![resource.resource.clone()];
    let mut config =
        connection_config(runtime, ProfileSource::Profile(Box::new(profile)), settings)?;
    config.redirect_uri = Some(redirect_uri.to_owned());
    if let Some(registered) = &registration {
        config.client.auth_method = registered.client.auth_method;
    }
    if config.profile.api_base_url.is_none() {
        config.profile.api_base_url = Some(resource.resource.clone());
    }
    Ok(ResourceConnection {
        config,
        resource,
        registration,
    })
}

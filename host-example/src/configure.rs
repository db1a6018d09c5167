//! Building a connection's configuration from where its profile comes from (a preset, an
//! issuer's metadata, or a profile) and the client's settings: shared by the CLI's `connect`
//! and the service's integrations, so that both front ends configure connections the same
//! way.

use crate::runtime::{CallError, Runtime};
use crate::types::{Client, ConnectionConfig, KeyValue, ProviderProfile};
use crate::{AllowList, HttpTransport, Limits, logging};

/// Where a connection's provider profile comes from.
pub enum ProfileSource {
    /// A profile already parsed (by `providers.parse-profile`).
    Profile(Box<ProviderProfile>),
    /// A built-in preset, by id.
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
        ProfileSource::Preset(preset) => session.preset(&preset)?,
        ProfileSource::Issuer(issuer) => {
            let allow = AllowList::from_urls([issuer.as_str()]);
            let profile = runtime
                .instantiate(HttpTransport::new(allow, Limits::default()))?
                .discover(&issuer)
                .map_err(|error| ConfigureError::Discovery {
                    issuer: issuer.clone(),
                    error,
                })?;
            tracing::info!(
                issuer = %logging::loggable_url(&issuer),
                "discovery: fetched the server's metadata"
            );
            profile
        }
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
    };
    config.profile = session.resolve_profile(&config)?;
    config.variables.clear();
    Ok(config)
}

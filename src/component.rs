//! The binding layer: WIT records <-> core types, plus WASI time and randomness.
//!
//! Nothing here decides anything about OAuth; every function converts its arguments, calls
//! the core, and converts the result back.

#![allow(unsafe_code)] // the code `wit_bindgen::generate!` emits

use std::time::{SystemTime, UNIX_EPOCH};

use crate::authorize::{self, BeginRandom, PendingAuthorization};
use crate::error::{
    CallbackError, ConfigError, Error, ErrorCode, InvalidResponse, OAuthError, TransportError,
};
use crate::http::{HttpRequest, HttpResponse, Method};
use crate::profile::{self, ConnectionConfig};
use crate::secret::{PkceVerifier, Secret};
use crate::token::TokenSet;
use crate::{callback, complete};

wit_bindgen::generate!({
    world: "connector",
    path: "wit",
});

use exports::oauth_connector::oauth2::authorization_code as wit_authorization_code;
use exports::oauth_connector::oauth2::providers as wit_providers;
use oauth_connector::oauth2::types as wit;

struct Connector;

export!(Connector);

impl wit_authorization_code::Guest for Connector {
    fn begin(
        config: wit::ConnectionConfig,
    ) -> Result<wit_authorization_code::AuthorizationRequest, wit::Error> {
        let config = connection_config_from_wit(config);
        let request = authorize::begin(&config, now(), &begin_random()?).map_err(error_to_wit)?;
        let pending = request.pending;
        Ok(wit_authorization_code::AuthorizationRequest {
            url: request.url,
            pending: wit::PendingAuthorization {
                state: pending.state,
                code_verifier: pending.code_verifier.map(|v| v.into_exposed()),
                redirect_uri: pending.redirect_uri,
                requested_scopes: pending.requested_scopes,
                created_at: pending.created_at,
                expires_at: pending.expires_at,
            },
        })
    }

    fn complete(
        config: wit::ConnectionConfig,
        pending: wit::PendingAuthorization,
        callback_url: String,
    ) -> Result<wit::TokenSet, wit::Error> {
        let config = connection_config_from_wit(config);
        let pending = pending_from_wit(pending);
        let request =
            complete::prepare(&config, &pending, &callback_url, now()).map_err(error_to_wit)?;
        let response = send(request)?;
        complete::finish(&config, &pending, &response, now())
            .map(token_set_to_wit)
            .map_err(error_to_wit)
    }

    fn state_from_callback(callback_url: String) -> Result<String, wit::Error> {
        callback::state_of(&callback_url).map_err(error_to_wit)
    }
}

/// Sends a request through the host's transport.
fn send(request: HttpRequest) -> Result<HttpResponse, wit::Error> {
    let response = oauth_connector::oauth2::transport::send(&request_to_wit(request))
        .map_err(wit::Error::Transport)?;
    Ok(HttpResponse {
        status: response.status,
        headers: key_values_from_wit(response.headers),
        body: response.body,
    })
}

impl wit_providers::Guest for Connector {
    fn parse_profile(json: String) -> Result<wit::ProviderProfile, wit::Error> {
        profile::ProviderProfile::from_json(&json)
            .map(profile_to_wit)
            .map_err(error_to_wit)
    }

    fn validate_profile(profile: wit::ProviderProfile) -> Result<(), wit::Error> {
        profile_from_wit(profile)
            .validate()
            .map_err(|error| error_to_wit(error.into()))
    }
}

/// Seconds since the Unix epoch from `wasi:clocks/wall-clock`.
fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |elapsed| elapsed.as_secs())
}

/// Fresh bytes from `wasi:random/random` for one `begin`: state first, then the verifier,
/// each filled eight bytes at a time from `get-random-u64` (little-endian), so that a host
/// with a scripted random source (tests) gets byte-for-byte predictable values.
fn begin_random() -> Result<BeginRandom, wit::Error> {
    let mut random = BeginRandom {
        state: [0; authorize::STATE_RANDOM_BYTES],
        verifier: [0; crate::pkce::VERIFIER_RANDOM_BYTES],
    };
    fill_random(&mut random.state)?;
    fill_random(&mut random.verifier)?;
    Ok(random)
}

fn fill_random(buffer: &mut [u8]) -> Result<(), wit::Error> {
    for chunk in buffer.chunks_mut(8) {
        let value = getrandom::u64().map_err(|_| {
            wit::Error::Transport(wit::TransportError::Other(
                "the host's random source failed".into(),
            ))
        })?;
        chunk.copy_from_slice(&value.to_le_bytes()[..chunk.len()]);
    }
    Ok(())
}

// ---- WIT -> core ----

fn key_values_from_wit(pairs: Vec<wit::KeyValue>) -> Vec<profile::KeyValue> {
    pairs
        .into_iter()
        .map(|kv| profile::KeyValue::new(kv.name, kv.value))
        .collect()
}

fn extras_from_wit(extras: wit::RequestExtras) -> profile::RequestExtras {
    profile::RequestExtras {
        params: key_values_from_wit(extras.params),
        headers: key_values_from_wit(extras.headers),
    }
}

fn profile_from_wit(profile: wit::ProviderProfile) -> profile::ProviderProfile {
    profile::ProviderProfile {
        id: profile.id,
        issuer: profile.issuer,
        authorize_url: profile.authorize_url,
        token_url: profile.token_url,
        scope_separator: profile.scope_separator,
        default_scopes: profile.default_scopes,
        pkce: match profile.pkce {
            wit::PkceMethod::S256 => profile::PkceMethod::S256,
            wit::PkceMethod::Plain => profile::PkceMethod::Plain,
            wit::PkceMethod::Disabled => profile::PkceMethod::Disabled,
        },
        client_auth: match profile.client_auth {
            wit::ClientAuthMethod::ClientSecretBasic => {
                profile::ClientAuthMethod::ClientSecretBasic
            }
            wit::ClientAuthMethod::ClientSecretPost => profile::ClientAuthMethod::ClientSecretPost,
            wit::ClientAuthMethod::None => profile::ClientAuthMethod::None,
        },
        requires_iss: profile.requires_iss,
        authorize_params: key_values_from_wit(profile.authorize_params),
        code_exchange: extras_from_wit(profile.code_exchange),
    }
}

fn connection_config_from_wit(config: wit::ConnectionConfig) -> ConnectionConfig {
    ConnectionConfig {
        profile: profile_from_wit(config.profile),
        client: profile::Client {
            client_id: config.client.client_id,
            client_secret: config.client.client_secret.map(Secret::new),
        },
        redirect_uri: config.redirect_uri,
        scopes: config.scopes,
        authorize_params: key_values_from_wit(config.authorize_params),
        code_exchange: extras_from_wit(config.code_exchange),
    }
}

fn pending_from_wit(pending: wit::PendingAuthorization) -> PendingAuthorization {
    PendingAuthorization {
        state: pending.state,
        code_verifier: pending.code_verifier.map(PkceVerifier::new),
        redirect_uri: pending.redirect_uri,
        requested_scopes: pending.requested_scopes,
        created_at: pending.created_at,
        expires_at: pending.expires_at,
    }
}

// ---- core -> WIT ----

fn request_to_wit(request: HttpRequest) -> wit::HttpRequest {
    wit::HttpRequest {
        method: match request.method {
            Method::Get => wit::HttpMethod::Get,
            Method::Post => wit::HttpMethod::Post,
            Method::Other(name) => wit::HttpMethod::Other(name),
        },
        url: request.url,
        headers: key_values_to_wit(request.headers),
        body: request.body,
    }
}

fn token_set_to_wit(tokens: TokenSet) -> wit::TokenSet {
    wit::TokenSet {
        access_token: tokens.access_token.into_exposed(),
        token_type: tokens.token_type,
        expires_at: tokens.expires_at,
        refresh_token: tokens.refresh_token.map(Secret::into_exposed),
        id_token: tokens.id_token.map(Secret::into_exposed),
        scopes: tokens.scopes,
        obtained_at: tokens.obtained_at,
        extras: key_values_to_wit(tokens.extras),
    }
}

fn key_values_to_wit(pairs: Vec<profile::KeyValue>) -> Vec<wit::KeyValue> {
    pairs
        .into_iter()
        .map(|kv| wit::KeyValue {
            name: kv.name,
            value: kv.value,
        })
        .collect()
}

fn extras_to_wit(extras: profile::RequestExtras) -> wit::RequestExtras {
    wit::RequestExtras {
        params: key_values_to_wit(extras.params),
        headers: key_values_to_wit(extras.headers),
    }
}

fn profile_to_wit(profile: profile::ProviderProfile) -> wit::ProviderProfile {
    wit::ProviderProfile {
        id: profile.id,
        issuer: profile.issuer,
        authorize_url: profile.authorize_url,
        token_url: profile.token_url,
        scope_separator: profile.scope_separator,
        default_scopes: profile.default_scopes,
        pkce: match profile.pkce {
            profile::PkceMethod::S256 => wit::PkceMethod::S256,
            profile::PkceMethod::Plain => wit::PkceMethod::Plain,
            profile::PkceMethod::Disabled => wit::PkceMethod::Disabled,
        },
        client_auth: match profile.client_auth {
            profile::ClientAuthMethod::ClientSecretBasic => {
                wit::ClientAuthMethod::ClientSecretBasic
            }
            profile::ClientAuthMethod::ClientSecretPost => wit::ClientAuthMethod::ClientSecretPost,
            profile::ClientAuthMethod::None => wit::ClientAuthMethod::None,
        },
        requires_iss: profile.requires_iss,
        authorize_params: key_values_to_wit(profile.authorize_params),
        code_exchange: extras_to_wit(profile.code_exchange),
    }
}

fn error_code_to_wit(code: ErrorCode) -> wit::ErrorCode {
    match code {
        ErrorCode::InvalidRequest => wit::ErrorCode::InvalidRequest,
        ErrorCode::InvalidClient => wit::ErrorCode::InvalidClient,
        ErrorCode::InvalidGrant => wit::ErrorCode::InvalidGrant,
        ErrorCode::UnauthorizedClient => wit::ErrorCode::UnauthorizedClient,
        ErrorCode::UnsupportedGrantType => wit::ErrorCode::UnsupportedGrantType,
        ErrorCode::InvalidScope => wit::ErrorCode::InvalidScope,
        ErrorCode::AccessDenied => wit::ErrorCode::AccessDenied,
        ErrorCode::UnsupportedResponseType => wit::ErrorCode::UnsupportedResponseType,
        ErrorCode::ServerError => wit::ErrorCode::ServerError,
        ErrorCode::TemporarilyUnavailable => wit::ErrorCode::TemporarilyUnavailable,
        ErrorCode::AuthorizationPending => wit::ErrorCode::AuthorizationPending,
        ErrorCode::SlowDown => wit::ErrorCode::SlowDown,
        ErrorCode::ExpiredToken => wit::ErrorCode::ExpiredToken,
        ErrorCode::InvalidToken => wit::ErrorCode::InvalidToken,
        ErrorCode::Extension(code) => wit::ErrorCode::Extension(code),
    }
}

fn oauth_error_to_wit(error: OAuthError) -> wit::OauthError {
    wit::OauthError {
        code: error_code_to_wit(error.code),
        description: error.description,
        uri: error.uri,
    }
}

fn transport_error_to_wit(error: TransportError) -> wit::TransportError {
    match error {
        TransportError::Denied(host) => wit::TransportError::Denied(host),
        TransportError::InvalidRequest(reason) => wit::TransportError::InvalidRequest(reason),
        TransportError::ConnectionFailed(reason) => wit::TransportError::ConnectionFailed(reason),
        TransportError::Tls(reason) => wit::TransportError::Tls(reason),
        TransportError::Timeout => wit::TransportError::Timeout,
        TransportError::ResponseTooLarge(cap) => wit::TransportError::ResponseTooLarge(cap),
        TransportError::Other(reason) => wit::TransportError::Other(reason),
    }
}

fn config_error_to_wit(error: ConfigError) -> wit::ConfigurationError {
    match error {
        ConfigError::MissingEndpoint(field) => wit::ConfigurationError::MissingEndpoint(field),
        ConfigError::InvalidUrl(field) => wit::ConfigurationError::InvalidUrl(field),
        ConfigError::InsecureUrl(field) => wit::ConfigurationError::InsecureUrl(field),
        ConfigError::ReservedParameter(name) => wit::ConfigurationError::ReservedParameter(name),
        ConfigError::InvalidValue(field) => wit::ConfigurationError::InvalidValue(field),
        ConfigError::MissingClientSecret => wit::ConfigurationError::MissingClientSecret,
        ConfigError::InvalidProfile(reason) => wit::ConfigurationError::InvalidProfile(reason),
    }
}

fn error_to_wit(error: Error) -> wit::Error {
    match error {
        Error::ServerSaidNo(error) => wit::Error::ServerSaidNo(oauth_error_to_wit(error)),
        Error::Transport(error) => wit::Error::Transport(transport_error_to_wit(error)),
        Error::InvalidResponse(InvalidResponse {
            status,
            reason,
            excerpt,
        }) => wit::Error::InvalidResponse(wit::InvalidResponse {
            status,
            reason,
            excerpt,
        }),
        Error::Configuration(error) => wit::Error::Configuration(config_error_to_wit(error)),
        Error::Callback(error) => wit::Error::Callback(match error {
            CallbackError::Malformed(reason) => wit::CallbackError::Malformed(reason),
            CallbackError::MissingState => wit::CallbackError::MissingState,
            CallbackError::StateMismatch => wit::CallbackError::StateMismatch,
            CallbackError::Expired => wit::CallbackError::Expired,
            CallbackError::IssuerMismatch => wit::CallbackError::IssuerMismatch,
            CallbackError::IssuerMissing => wit::CallbackError::IssuerMissing,
            CallbackError::MissingCode => wit::CallbackError::MissingCode,
        }),
    }
}

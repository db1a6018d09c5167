//! An example wasmtime host for the oauth-connector component.
//!
//! - [`runtime`]: the engine, linker and pre-instantiated component (built once), and a fresh
//!   sandboxed instance per call with an empty WASI context.
//! - [`compile_cache`]: the component's compiled form, kept so that no process compiles it twice.
//! - [`transport`]: the HTTP client behind the component's `transport.send`, with an
//!   allow-list, no redirects, timeouts and size caps.
//! - [`configure`]: a connection's configuration from a preset, an issuer or a profile, and
//!   the client's settings (the CLI's `connect` and the service's integrations).
//! - [`serve`]: the multi-tenant HTTP service (`connector-host serve`) and its tenants.
//! - [`connect`]: the loopback redirect listener and the browser half of the flow.
//! - [`signer`]: the keys behind the component's `signer` import (`private_key_jwt`).
//! - [`retry`]: bounded retries of what the server says to retry (`Retry-After`, backoff).
//! - [`store`]: the SQLite connection store (owner-only file).
//! - [`seal`]: authenticated encryption of the store's secrets under the operator's key.
//! - [`cli`]: the `connector-host` command line, runnable in-process.
//! - [`local_server`]: the local authorization server for the demo and the tests.
//! - [`describe`]: human-readable text for the component's typed errors.
//! - [`bindings`]: the generated WIT bindings.
#![deny(missing_docs)]

#[allow(missing_docs)] // generated plumbing (add_to_linker etc.) is documented by wasmtime
pub mod bindings;
pub mod cli;
pub mod compile_cache;
pub mod configure;
pub mod connect;
pub mod connections;
pub mod describe;
pub mod local_server;
pub mod logging;
pub mod loopback;
pub mod presets;
pub mod retry;
pub mod runtime;
pub mod seal;
pub mod serve;
pub mod signer;
pub mod store;
pub mod transport;

/// A throwaway PostgreSQL cluster for the PostgreSQL store's tests: the end-to-end tests'
/// harness, shared.
#[cfg(all(test, unix))]
#[path = "../../tests/e2e/postgres.rs"]
#[allow(dead_code, reason = "the end-to-end tests use more of it")]
pub(crate) mod test_postgres;

pub use bindings::types;
pub use runtime::Allocation;
pub use runtime::{CallError, LimitExceeded, Runtime, SandboxLimits, Session};
pub use transport::{AllowList, HttpTransport, Limits, Origin, Transport};

/// The allow-list a connection's transport gets by default: the origins of its profile's
/// endpoints (the pushed authorization request and registration endpoints included) and
/// API base URL.
pub fn default_allow_list(profile: &types::ProviderProfile) -> AllowList {
    AllowList::from_urls(profile_urls(profile))
}

/// The allow-list of a connection: its profile's ([`default_allow_list`]) and the origins
/// of the resources its tokens are for (RFC 8707 `resources`), where its API calls go.
pub fn connection_allow_list(config: &types::ConnectionConfig) -> AllowList {
    AllowList::from_urls(
        profile_urls(&config.profile).chain(config.resources.iter().map(String::as_str)),
    )
}

/// The URLs of `profile`'s endpoints and API base URL.
fn profile_urls(profile: &types::ProviderProfile) -> impl Iterator<Item = &str> {
    profile_endpoints(profile).into_iter().map(|(_, url)| url)
}

/// Every URL of `profile` (its endpoints, issuer and API base URL), with its field's name in
/// the profile format, the token URL first.
pub fn profile_endpoints(profile: &types::ProviderProfile) -> Vec<(&'static str, &str)> {
    let optional = [
        ("authorize-url", &profile.authorize_url),
        ("issuer", &profile.issuer),
        ("refresh-url", &profile.refresh_url),
        ("revocation-url", &profile.revocation_url),
        ("introspection-url", &profile.introspection_url),
        (
            "device-authorization-url",
            &profile.device_authorization_url,
        ),
        (
            "pushed-authorization-request-url",
            &profile.pushed_authorization_request_url,
        ),
        ("registration-url", &profile.registration_url),
        ("api-base-url", &profile.api_base_url),
        ("userinfo-url", &profile.userinfo_url),
    ];
    let mut urls = vec![("token-url", profile.token_url.as_str())];
    urls.extend(
        optional
            .into_iter()
            .filter_map(|(field, url)| url.as_deref().map(|url| (field, url))),
    );
    urls
}

/// A profile with the JSON format's defaults for everything but its id and token URL.
pub fn profile_with_defaults(id: &str, token_url: &str) -> types::ProviderProfile {
    types::ProviderProfile {
        id: id.to_owned(),
        issuer: None,
        authorize_url: None,
        token_url: token_url.to_owned(),
        refresh_url: None,
        revocation_url: None,
        introspection_url: None,
        device_authorization_url: None,
        pushed_authorization_request_url: None,
        requires_pushed_authorization_requests: false,
        registration_url: None,
        dpop_algorithms: vec![],
        api_base_url: None,
        userinfo_url: None,
        variables: vec![],
        scope_separator: " ".to_owned(),
        default_scopes: vec![],
        pkce: types::PkceMethod::S256,
        client_auth: types::ClientAuthMethod::ClientSecretBasic,
        assertion_audience: types::AssertionAudience::TokenUrl,
        requires_iss: false,
        authorize_params: vec![],
        token_requests: no_token_extras(),
        token_request_format: types::BodyFormat::Form,
        offline_access: types::OfflineAccess {
            scopes: vec![],
            authorize_params: vec![],
        },
        token_response: types::TokenResponseQuirks {
            path: vec![],
            success_flag: None,
            default_expires_in: None,
        },
        token_placement: types::TokenPlacement::AuthorizationHeader,
        token_rejection: types::TokenRejection {
            statuses: vec![],
            body_markers: vec![],
        },
        client_id_parameter: None,
        refresh_redirect_uri: false,
    }
}

/// No extra parameters or headers.
pub fn no_extras() -> types::RequestExtras {
    types::RequestExtras {
        params: vec![],
        headers: vec![],
    }
}

/// A public client `client_id`'s configuration for `profile`, with nothing else set (no
/// redirect URI, scopes, parameters, extras or variables; no offline access).
pub fn config_with_defaults(
    profile: types::ProviderProfile,
    client_id: &str,
) -> types::ConnectionConfig {
    types::ConnectionConfig {
        profile,
        client: types::Client {
            client_id: client_id.to_owned(),
            client_secret: None,
            auth_method: None,
        },
        redirect_uri: None,
        scopes: vec![],
        authorize_params: vec![],
        token_requests: no_token_extras(),
        variables: vec![],
        offline_access: false,
        resources: vec![],
        dpop: false,
    }
}

/// No extras for any kind of token request.
pub fn no_token_extras() -> types::TokenRequestExtras {
    types::TokenRequestExtras {
        code_exchange: no_extras(),
        refresh: no_extras(),
        client_credentials: no_extras(),
        device: no_extras(),
        token_exchange: no_extras(),
        jwt_bearer: no_extras(),
        pushed_authorization: no_extras(),
    }
}

//! The binding layer: WIT records <-> core types, plus WASI time and randomness.
//!
//! Nothing here decides anything about OAuth; every function converts its arguments, calls
//! the core, sends what the core built through the host's transport, and converts the result
//! back.

#![allow(unsafe_code)] // the code `wit_bindgen::generate!` emits

use crate::prelude::*;

use crate::authorize::{self, BeginRandom, PendingAuthorization};
use crate::client_auth::{
    self, AuthContext, KeyPurpose, SigningAlgorithm, SigningError, SigningKey,
};
use crate::device::{DeviceAuthorization, DevicePoll};
use crate::dpop::{Nonces, Prover};
use crate::error::{
    CallbackError, ConfigError, DiscoveryError, Error, ErrorCode, InvalidResponse, OAuthError,
    ServerUnavailable, TransportError,
};
use crate::http::{HttpRequest, HttpResponse, Method};
use crate::profile::{self, ConnectionConfig};
use crate::secret::{PkceVerifier, Secret};
use crate::token::TokenSet;
use crate::{
    api, callback, client_credentials, complete, device, discovery, dpop, jwt_bearer, lifecycle,
    registration, token_exchange, token_request,
};
use core::cell::RefCell;

wit_bindgen::generate!({
    world: "connector",
    path: "wit",
    // The two WASI interfaces the world imports (wit/deps), generated here: the component
    // has no other source of time or randomness.
    with: {
        "wasi:clocks/wall-clock@0.2.0": generate,
        "wasi:random/random@0.2.0": generate,
    },
});

use exports::oauth_connector::oauth2::api as wit_api;
use exports::oauth_connector::oauth2::authorization_code as wit_authorization_code;
use exports::oauth_connector::oauth2::client_credentials as wit_client_credentials;
use exports::oauth_connector::oauth2::connections as wit_connections;
use exports::oauth_connector::oauth2::device_authorization as wit_device;
use exports::oauth_connector::oauth2::jwt_bearer as wit_jwt_bearer;
use exports::oauth_connector::oauth2::providers as wit_providers;
use exports::oauth_connector::oauth2::registration as wit_registration;
use exports::oauth_connector::oauth2::token_exchange as wit_token_exchange;
use exports::oauth_connector::oauth2::tokens as wit_tokens;
use oauth_connector::oauth2::signer as wit_signer;
use oauth_connector::oauth2::types as wit;

struct Connector;

/// The canonical ABI's allocator export, over the crate's global allocator. With the standard
/// library, wasi-libc provides it; this `no_std` component provides its own.
///
/// # Safety
/// Called only by the component model's lifting code, with `old_ptr`/`old_len`/`align` of
/// an allocation it made through this function (or `old_len` 0).
#[unsafe(no_mangle)]
unsafe extern "C" fn cabi_realloc(
    old_ptr: *mut u8,
    old_len: usize,
    align: usize,
    new_len: usize,
) -> *mut u8 {
    use alloc::alloc::{Layout, alloc, handle_alloc_error, realloc};
    if new_len == 0 {
        // A zero-sized allocation: any non-null, aligned pointer.
        return align as *mut u8;
    }
    let Ok(layout) = Layout::from_size_align(new_len, align) else {
        core::arch::wasm32::unreachable()
    };
    // SAFETY: `layout` has a non-zero size; an old allocation is described by the caller
    // exactly as it was made (canonical ABI contract).
    let ptr = unsafe {
        if old_len == 0 {
            alloc(layout)
        } else {
            realloc(
                old_ptr,
                Layout::from_size_align_unchecked(old_len, align),
                new_len,
            )
        }
    };
    if ptr.is_null() {
        handle_alloc_error(layout);
    }
    ptr
}

export!(Connector);

type WitResult<T> = Result<T, wit::Error>;

impl wit_authorization_code::Guest for Connector {
    fn begin(
        connection: ConnectionBorrow<'_>,
    ) -> WitResult<wit_authorization_code::AuthorizationRequest> {
        let config = config_of(&connection);
        let auth = auth();
        let prover = Prover::for_connection(config, None, &auth).map_err(error_to_wit)?;
        let jkt = prover.as_ref().map(Prover::thumbprint);
        let request =
            authorize::begin(config, now(), &begin_random(), jkt).map_err(error_to_wit)?;
        let request =
            match authorize::push_request(config, &request, &auth).map_err(error_to_wit)? {
                None => request,
                Some(push) => {
                    let response = send(push)?;
                    authorize::pushed(config, request, &response, now()).map_err(error_to_wit)?
                }
            };
        let pending = request.pending;
        Ok(wit_authorization_code::AuthorizationRequest {
            url: request.url,
            pending: wit::PendingAuthorization {
                state: pending.state,
                code_verifier: pending.code_verifier.map(PkceVerifier::into_exposed),
                redirect_uri: pending.redirect_uri,
                requested_scopes: pending.requested_scopes,
                created_at: pending.created_at,
                expires_at: pending.expires_at,
            },
        })
    }

    fn check(connection: ConnectionBorrow<'_>) -> WitResult<()> {
        let config = config_of(&connection);
        authorize::check(config, now(), &HostSigner).map_err(error_to_wit)
    }

    fn complete(
        connection: ConnectionBorrow<'_>,
        pending: wit::PendingAuthorization,
        callback_url: String,
    ) -> WitResult<wit::TokenSet> {
        let config = config_of(&connection);
        let pending = pending_from_wit(pending);
        // The callback is checked once, before anything is signed or sent.
        let code =
            complete::validate(config, &pending, &callback_url, now()).map_err(error_to_wit)?;
        let (response, key) = exchange(&connection, None, None, &mut |auth| {
            token_request::code_exchange(config, &pending, &code, auth)
        })
        .map_err(error_to_wit)?;
        complete::finish(config, &pending, &response, now())
            .map(|tokens| dpop::bind(tokens, key.as_deref()))
            .map(token_set_to_wit)
            .map_err(error_to_wit)
    }

    fn state_from_callback(callback_url: String) -> WitResult<String> {
        callback::state_of(&callback_url).map_err(error_to_wit)
    }
}

impl wit_client_credentials::Guest for Connector {
    fn fetch(connection: ConnectionBorrow<'_>) -> WitResult<wit::TokenSet> {
        let config = config_of(&connection);
        let (response, key) = exchange(&connection, None, None, &mut |auth| {
            client_credentials::request(config, auth)
        })
        .map_err(error_to_wit)?;
        client_credentials::finish(config, &response, now())
            .map(|tokens| dpop::bind(tokens, key.as_deref()))
            .map(token_set_to_wit)
            .map_err(error_to_wit)
    }
}

impl wit_device::Guest for Connector {
    fn begin(connection: ConnectionBorrow<'_>) -> WitResult<wit_device::DeviceAuthorization> {
        let config = config_of(&connection);
        let response = send(device::begin_request(config, &auth()).map_err(error_to_wit)?)?;
        let device = device::finish_begin(config, &response, now()).map_err(error_to_wit)?;
        Ok(wit_device::DeviceAuthorization {
            device_code: device.device_code.into_exposed(),
            user_code: device.user_code,
            verification_uri: device.verification_uri,
            verification_uri_complete: device.verification_uri_complete,
            expires_at: device.expires_at,
            interval_seconds: device.interval_seconds,
            requested_scopes: device.requested_scopes,
        })
    }

    fn poll(
        connection: ConnectionBorrow<'_>,
        device: wit_device::DeviceAuthorization,
    ) -> WitResult<wit_device::DevicePoll> {
        let config = config_of(&connection);
        let device = DeviceAuthorization {
            device_code: Secret::new(device.device_code),
            user_code: device.user_code,
            verification_uri: device.verification_uri,
            verification_uri_complete: device.verification_uri_complete,
            expires_at: device.expires_at,
            interval_seconds: device.interval_seconds,
            requested_scopes: device.requested_scopes,
        };
        let (response, key) = exchange(&connection, None, None, &mut |auth| {
            device::poll_request(config, &device, auth)
        })
        .map_err(error_to_wit)?;
        match device::finish_poll(config, &device, &response, now()).map_err(error_to_wit)? {
            DevicePoll::Pending(interval) => Ok(wit_device::DevicePoll::Pending(interval)),
            DevicePoll::SlowDown(interval) => Ok(wit_device::DevicePoll::SlowDown(interval)),
            DevicePoll::Complete(tokens) => Ok(wit_device::DevicePoll::Complete(token_set_to_wit(
                dpop::bind(tokens, key.as_deref()),
            ))),
        }
    }
}

impl wit_tokens::Guest for Connector {
    fn needs_refresh(tokens: wit::TokenSet, margin_seconds: Option<u64>) -> bool {
        lifecycle::needs_refresh(&token_set_from_wit(tokens), margin_seconds, now())
    }

    fn refresh(
        connection: ConnectionBorrow<'_>,
        tokens: wit::TokenSet,
    ) -> WitResult<wit::TokenSet> {
        let config = config_of(&connection);
        let tokens = token_set_from_wit(tokens);
        let bound_to = tokens.dpop_key_thumbprint.as_deref();
        let (response, key) = exchange(&connection, bound_to, None, &mut |auth| {
            lifecycle::refresh_request(config, &tokens, auth)
        })
        .map_err(error_to_wit)?;
        lifecycle::finish_refresh(config, &tokens, &response, now())
            .map(|fresh| dpop::bind(fresh, key.as_deref()))
            .map(token_set_to_wit)
            .map_err(error_to_wit)
    }

    fn revoke(connection: ConnectionBorrow<'_>, tokens: wit::TokenSet) -> WitResult<()> {
        let config = config_of(&connection);
        let tokens = token_set_from_wit(tokens);
        for request in
            lifecycle::revocation_requests(config, &tokens, &auth()).map_err(error_to_wit)?
        {
            let response = send(request)?;
            lifecycle::finish_revocation(config, &tokens, &response, now())
                .map_err(error_to_wit)?;
        }
        Ok(())
    }

    fn introspect(
        connection: ConnectionBorrow<'_>,
        token: String,
        token_type_hint: Option<String>,
    ) -> WitResult<wit_tokens::Introspection> {
        let config = config_of(&connection);
        let token = Secret::new(token);
        let request =
            lifecycle::introspection_request(config, &token, token_type_hint.as_deref(), &auth())
                .map_err(error_to_wit)?;
        let response = send(request)?;
        let found = lifecycle::finish_introspection(config, &token, &response, now())
            .map_err(error_to_wit)?;
        Ok(wit_tokens::Introspection {
            active: found.active,
            scopes: found.scopes,
            client_id: found.client_id,
            subject: found.subject,
            expires_at: found.expires_at,
            extras: key_values_to_wit(found.extras),
        })
    }
}

impl wit_api::Guest for Connector {
    fn call(
        connection: ConnectionBorrow<'_>,
        tokens: wit::TokenSet,
        request: wit::HttpRequest,
    ) -> WitResult<wit_api::ApiResponse> {
        let config = config_of(&connection);
        let tokens = token_set_from_wit(tokens);
        let request = request_from_wit(request);
        // Only a DPoP token travels with proofs (RFC 9449 §7); a bearer token, even on a
        // DPoP-bound connection whose server did not bind it, is sent as it is.
        let dpop = tokens.token_type == "dpop";
        let bound_to = tokens.dpop_key_thumbprint.as_deref().filter(|_| dpop);
        let build = &mut |_: &AuthContext<'_>| {
            api::authorize_request(&config.profile, &tokens, request.clone())
        };
        let sent = if dpop {
            let token = Some(tokens.access_token.expose());
            exchange(&connection, bound_to, token, build)
        } else {
            build(&auth())
                .and_then(send_core)
                .map(|response| (response, None))
        };
        let (response, _) = sent.map_err(error_to_wit)?;
        Ok(wit_api::ApiResponse {
            token_rejected: api::token_rejected(&config.profile, &response),
            retry_after_seconds: api::retry_after(&response, now()),
            response: wit::HttpResponse {
                status: response.status,
                headers: key_values_to_wit(response.headers),
                body: response.body,
            },
        })
    }
}

impl wit_token_exchange::Guest for Connector {
    fn exchange(
        connection: ConnectionBorrow<'_>,
        request: wit_token_exchange::ExchangeRequest,
    ) -> WitResult<wit_token_exchange::ExchangedToken> {
        let config = config_of(&connection);
        let request = token_exchange::ExchangeRequest {
            subject_token: Secret::new(request.subject_token),
            subject_token_type: request.subject_token_type,
            actor_token: request.actor_token.map(Secret::new),
            actor_token_type: request.actor_token_type,
            requested_token_type: request.requested_token_type,
            audiences: request.audiences,
            resources: request.resources,
            scopes: request.scopes,
        };
        let (response, key) = exchange(&connection, None, None, &mut |auth| {
            token_exchange::request(config, &request, auth)
        })
        .map_err(error_to_wit)?;
        let (tokens, issued_token_type) =
            token_exchange::finish(config, &request, &response, now()).map_err(error_to_wit)?;
        Ok(wit_token_exchange::ExchangedToken {
            tokens: token_set_to_wit(dpop::bind(tokens, key.as_deref())),
            issued_token_type,
        })
    }
}

impl wit_jwt_bearer::Guest for Connector {
    fn fetch(
        connection: ConnectionBorrow<'_>,
        claims: wit_jwt_bearer::AssertionClaims,
    ) -> WitResult<wit::TokenSet> {
        let config = config_of(&connection);
        let claims = jwt_bearer::AssertionClaims {
            issuer: claims.issuer,
            subject: claims.subject,
            audience: claims.audience,
            scope_in_claims: claims.scope_in_claims,
            lifetime_seconds: claims.lifetime_seconds,
        };
        let (response, key) = exchange(&connection, None, None, &mut |auth| {
            jwt_bearer::request(config, &claims, auth)
        })
        .map_err(error_to_wit)?;
        jwt_bearer::finish(config, &response, now())
            .map(|tokens| dpop::bind(tokens, key.as_deref()))
            .map(token_set_to_wit)
            .map_err(error_to_wit)
    }
}

impl wit_registration::Guest for Connector {
    fn discover_resource(resource_url: String) -> WitResult<wit_registration::ProtectedResource> {
        registration::discover_resource(&resource_url, send_core)
            .map(|found| wit_registration::ProtectedResource {
                resource: found.resource,
                authorization_servers: found.authorization_servers,
                scopes_supported: found.scopes_supported,
                resource_name: found.resource_name,
            })
            .map_err(error_to_wit)
    }

    fn register(
        registration_url: String,
        metadata: wit_registration::ClientMetadata,
        initial_access_token: Option<String>,
    ) -> WitResult<wit_registration::RegisteredClient> {
        let metadata = registration::ClientMetadata {
            redirect_uris: metadata.redirect_uris,
            auth_method: client_auth_from_wit(metadata.auth_method),
            grant_types: metadata.grant_types,
            scopes: metadata.scopes,
            client_name: metadata.client_name,
            software_id: metadata.software_id,
            software_version: metadata.software_version,
        };
        let token = initial_access_token.as_deref();
        let request = registration::register_request(&registration_url, &metadata, token)
            .map_err(error_to_wit)?;
        let response = send(request)?;
        let registered = registration::finish_register(&metadata, &response, now(), token)
            .map_err(error_to_wit)?;
        Ok(wit_registration::RegisteredClient {
            client: wit::Client {
                client_id: registered.client.client_id,
                client_secret: registered.client.client_secret.map(Secret::into_exposed),
                auth_method: registered.client.auth_method.map(client_auth_to_wit),
            },
            registration_access_token: registered
                .registration_access_token
                .map(Secret::into_exposed),
            registration_client_uri: registered.registration_client_uri,
            client_secret_expires_at: registered.client_secret_expires_at,
            metadata: registered.metadata,
        })
    }
}

impl wit_providers::Guest for Connector {
    fn discover(issuer: String) -> WitResult<wit::ProviderProfile> {
        discovery::discover(&issuer, send_core)
            .map(profile_to_wit)
            .map_err(error_to_wit)
    }

    fn parse_profile(json: String) -> WitResult<wit::ProviderProfile> {
        profile::ProviderProfile::from_json(&json)
            .map(profile_to_wit)
            .map_err(error_to_wit)
    }

    fn validate_profile(profile: wit::ProviderProfile) -> WitResult<()> {
        profile_from_wit(profile)
            .validate()
            .map_err(|error| error_to_wit(error.into()))
    }
}

type ConnectionBorrow<'a> = wit_connections::ConnectionBorrow<'a>;

/// A `connection`: the configuration as every operation uses it (placeholders filled,
/// offline access applied, validated).
struct Connection {
    prepared: profile::Prepared,
    /// The DPoP nonces servers handed out, by origin (RFC 9449 §8, §9).
    nonces: RefCell<Nonces>,
}

impl wit_connections::Guest for Connector {
    type Connection = Connection;
}

impl wit_connections::GuestConnection for Connection {
    fn open(config: wit::ConnectionConfig) -> WitResult<wit_connections::Connection> {
        let prepared = connection_config_from_wit(config)
            .into_prepared()
            .map_err(|error| error_to_wit(error.into()))?;
        Ok(wit_connections::Connection::new(Connection {
            prepared,
            nonces: RefCell::new(Nonces::default()),
        }))
    }

    fn resolved_profile(&self) -> wit::ProviderProfile {
        profile_to_wit(self.prepared.configured_profile())
    }
}

/// The prepared configuration of a borrowed `connection`.
fn config_of<'a>(connection: &'a ConnectionBorrow<'_>) -> &'a profile::Prepared {
    &connection.get::<Connection>().prepared
}

/// Sends the request `build` makes with a DPoP proof when the connection is DPoP-bound or
/// `bound_to` names the key the tokens are bound to (answering one nonce challenge, see
/// `dpop::exchange`), else as built. Returns the response and the key's thumbprint.
fn exchange(
    connection: &ConnectionBorrow<'_>,
    bound_to: Option<&str>,
    access_token: Option<&str>,
    build: &mut dyn FnMut(&AuthContext<'_>) -> Result<HttpRequest, Error>,
) -> Result<(HttpResponse, Option<String>), Error> {
    let connection = connection.get::<Connection>();
    let auth = auth();
    let prover = Prover::for_connection(&connection.prepared, bound_to, &auth)?;
    let mut nonces = connection.nonces.borrow_mut();
    let response = dpop::exchange(
        &mut || build(&auth),
        prover.as_ref(),
        &mut nonces,
        access_token,
        &mut send_core,
    )?;
    Ok((
        response,
        prover.map(|prover| prover.thumbprint().to_owned()),
    ))
}

/// [`send`] with the core's error type.
fn send_core(request: HttpRequest) -> Result<HttpResponse, Error> {
    send(request).map_err(|error| match error {
        wit::Error::Transport(error) => Error::Transport(transport_error_from_wit(error)),
        _ => Error::Transport(TransportError::Other("transport failed".into())),
    })
}

/// Sends a request through the host's transport.
fn send(request: HttpRequest) -> WitResult<HttpResponse> {
    let response = oauth_connector::oauth2::transport::send(&request_to_wit(request))
        .map_err(wit::Error::Transport)?;
    Ok(HttpResponse {
        status: response.status,
        headers: key_values_from_wit(response.headers),
        body: response.body,
    })
}

/// What client authentication needs: the clock, `wasi:random` for each `jti`, and the host's
/// signer.
fn auth() -> AuthContext<'static> {
    AuthContext {
        now: now(),
        random: &|| {
            let mut bytes = [0; client_auth::JTI_RANDOM_BYTES];
            fill_random(&mut bytes);
            Some(bytes)
        },
        signer: &HostSigner,
    }
}

/// The host's `signer` import: client assertions, DPoP proofs, grant assertions.
struct HostSigner;

fn purpose_to_wit(purpose: KeyPurpose) -> wit::KeyPurpose {
    match purpose {
        KeyPurpose::ClientAssertion => wit::KeyPurpose::ClientAssertion,
        KeyPurpose::DpopProof => wit::KeyPurpose::DpopProof,
        KeyPurpose::AuthorizationGrant => wit::KeyPurpose::AuthorizationGrant,
    }
}

impl client_auth::Signer for HostSigner {
    fn key(&self, purpose: KeyPurpose, client_id: &str) -> Result<SigningKey, SigningError> {
        wit_signer::key(purpose_to_wit(purpose), client_id)
            .map(|key| SigningKey {
                algorithm: algorithm_from_wit(key.algorithm),
                key_id: key.key_id,
                public_jwk: key.public_jwk,
            })
            .map_err(signing_error_from_wit)
    }

    fn sign(
        &self,
        purpose: KeyPurpose,
        client_id: &str,
        input: &[u8],
    ) -> Result<Vec<u8>, SigningError> {
        wit_signer::sign(purpose_to_wit(purpose), client_id, input).map_err(signing_error_from_wit)
    }
}

fn signing_error_from_wit(error: wit::SigningError) -> SigningError {
    match error {
        wit::SigningError::NoKey => SigningError::NoKey,
        wit::SigningError::Denied(reason) => SigningError::Denied(reason),
        wit::SigningError::Unsupported(reason) => SigningError::Unsupported(reason),
        wit::SigningError::Failed(reason) => SigningError::Failed(reason),
    }
}

/// Seconds since the Unix epoch from `wasi:clocks/wall-clock`.
fn now() -> u64 {
    wasi::clocks::wall_clock::now().seconds
}

/// Fresh bytes from `wasi:random/random` for one `begin`, from one `get-random-bytes` call
/// (each call crosses into the host and back, and the answer is a list the component
/// allocates): the state's bytes first, then the verifier's, so that a host with a scripted
/// random source (tests) gets byte-for-byte predictable values.
fn begin_random() -> BeginRandom {
    const STATE: usize = authorize::STATE_RANDOM_BYTES;
    let mut bytes = [0; STATE + crate::pkce::VERIFIER_RANDOM_BYTES];
    fill_random(&mut bytes);
    let mut random = BeginRandom {
        state: [0; STATE],
        verifier: [0; crate::pkce::VERIFIER_RANDOM_BYTES],
    };
    random.state.copy_from_slice(&bytes[..STATE]);
    random.verifier.copy_from_slice(&bytes[STATE..]);
    random
}

/// Fills `buffer` with one `get-random-bytes` call. A host answering with another length
/// breaks the interface's contract: the component traps rather than use predictable bytes.
fn fill_random(buffer: &mut [u8]) {
    let bytes = wasi::random::random::get_random_bytes(buffer.len() as u64);
    if bytes.len() != buffer.len() {
        core::arch::wasm32::unreachable()
    }
    buffer.copy_from_slice(&bytes);
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

fn token_requests_from_wit(extras: wit::TokenRequestExtras) -> profile::TokenRequestExtras {
    profile::TokenRequestExtras {
        code_exchange: extras_from_wit(extras.code_exchange),
        refresh: extras_from_wit(extras.refresh),
        client_credentials: extras_from_wit(extras.client_credentials),
        device: extras_from_wit(extras.device),
        token_exchange: extras_from_wit(extras.token_exchange),
        jwt_bearer: extras_from_wit(extras.jwt_bearer),
        pushed_authorization: extras_from_wit(extras.pushed_authorization),
    }
}

fn profile_from_wit(profile: wit::ProviderProfile) -> profile::ProviderProfile {
    profile::ProviderProfile {
        id: profile.id,
        issuer: profile.issuer,
        authorize_url: profile.authorize_url,
        token_url: profile.token_url,
        refresh_url: profile.refresh_url,
        revocation_url: profile.revocation_url,
        introspection_url: profile.introspection_url,
        device_authorization_url: profile.device_authorization_url,
        pushed_authorization_request_url: profile.pushed_authorization_request_url,
        requires_pushed_authorization_requests: profile.requires_pushed_authorization_requests,
        registration_url: profile.registration_url,
        dpop_algorithms: profile
            .dpop_algorithms
            .into_iter()
            .map(algorithm_from_wit)
            .collect(),
        api_base_url: profile.api_base_url,
        userinfo_url: profile.userinfo_url,
        variables: profile.variables,
        scope_separator: profile.scope_separator,
        default_scopes: profile.default_scopes,
        pkce: match profile.pkce {
            wit::PkceMethod::S256 => profile::PkceMethod::S256,
            wit::PkceMethod::Plain => profile::PkceMethod::Plain,
            wit::PkceMethod::Disabled => profile::PkceMethod::Disabled,
        },
        client_auth: client_auth_from_wit(profile.client_auth),
        assertion_audience: match profile.assertion_audience {
            wit::AssertionAudience::TokenUrl => profile::AssertionAudience::TokenUrl,
            wit::AssertionAudience::RequestUrl => profile::AssertionAudience::RequestUrl,
            wit::AssertionAudience::Issuer => profile::AssertionAudience::Issuer,
        },
        requires_iss: profile.requires_iss,
        authorize_params: key_values_from_wit(profile.authorize_params),
        token_requests: token_requests_from_wit(profile.token_requests),
        token_request_format: match profile.token_request_format {
            wit::BodyFormat::Form => profile::BodyFormat::Form,
            wit::BodyFormat::Json => profile::BodyFormat::Json,
        },
        offline_access: profile::OfflineAccess {
            scopes: profile.offline_access.scopes,
            authorize_params: key_values_from_wit(profile.offline_access.authorize_params),
        },
        token_response: profile::TokenResponseQuirks {
            path: profile.token_response.path,
            success_flag: profile.token_response.success_flag,
            default_expires_in: profile.token_response.default_expires_in,
        },
        token_placement: match profile.token_placement {
            wit::TokenPlacement::AuthorizationHeader => {
                profile::TokenPlacement::AuthorizationHeader
            }
            wit::TokenPlacement::Header(header) => {
                profile::TokenPlacement::Header(profile::TokenHeader {
                    name: header.name,
                    prefix: header.prefix,
                })
            }
            wit::TokenPlacement::Query(name) => profile::TokenPlacement::Query(name),
        },
        token_rejection: profile::TokenRejection {
            statuses: profile.token_rejection.statuses,
            body_markers: profile.token_rejection.body_markers,
        },
        client_id_parameter: profile.client_id_parameter,
        refresh_redirect_uri: profile.refresh_redirect_uri,
    }
}

fn algorithm_from_wit(algorithm: wit::SigningAlgorithm) -> SigningAlgorithm {
    match algorithm {
        wit::SigningAlgorithm::Rs256 => SigningAlgorithm::Rs256,
        wit::SigningAlgorithm::Ps256 => SigningAlgorithm::Ps256,
        wit::SigningAlgorithm::Es256 => SigningAlgorithm::Es256,
        wit::SigningAlgorithm::Es384 => SigningAlgorithm::Es384,
        wit::SigningAlgorithm::Eddsa => SigningAlgorithm::EdDsa,
    }
}

fn algorithm_to_wit(algorithm: SigningAlgorithm) -> wit::SigningAlgorithm {
    match algorithm {
        SigningAlgorithm::Rs256 => wit::SigningAlgorithm::Rs256,
        SigningAlgorithm::Ps256 => wit::SigningAlgorithm::Ps256,
        SigningAlgorithm::Es256 => wit::SigningAlgorithm::Es256,
        SigningAlgorithm::Es384 => wit::SigningAlgorithm::Es384,
        SigningAlgorithm::EdDsa => wit::SigningAlgorithm::Eddsa,
    }
}

fn client_auth_to_wit(method: profile::ClientAuthMethod) -> wit::ClientAuthMethod {
    match method {
        profile::ClientAuthMethod::ClientSecretBasic => wit::ClientAuthMethod::ClientSecretBasic,
        profile::ClientAuthMethod::ClientSecretPost => wit::ClientAuthMethod::ClientSecretPost,
        profile::ClientAuthMethod::None => wit::ClientAuthMethod::None,
        profile::ClientAuthMethod::ClientSecretJwt => wit::ClientAuthMethod::ClientSecretJwt,
        profile::ClientAuthMethod::PrivateKeyJwt => wit::ClientAuthMethod::PrivateKeyJwt,
    }
}

fn client_auth_from_wit(method: wit::ClientAuthMethod) -> profile::ClientAuthMethod {
    match method {
        wit::ClientAuthMethod::ClientSecretBasic => profile::ClientAuthMethod::ClientSecretBasic,
        wit::ClientAuthMethod::ClientSecretPost => profile::ClientAuthMethod::ClientSecretPost,
        wit::ClientAuthMethod::None => profile::ClientAuthMethod::None,
        wit::ClientAuthMethod::ClientSecretJwt => profile::ClientAuthMethod::ClientSecretJwt,
        wit::ClientAuthMethod::PrivateKeyJwt => profile::ClientAuthMethod::PrivateKeyJwt,
    }
}

fn connection_config_from_wit(config: wit::ConnectionConfig) -> ConnectionConfig {
    ConnectionConfig {
        profile: profile_from_wit(config.profile),
        client: profile::Client {
            client_id: config.client.client_id,
            client_secret: config.client.client_secret.map(Secret::new),
            auth_method: config.client.auth_method.map(client_auth_from_wit),
        },
        redirect_uri: config.redirect_uri,
        scopes: config.scopes,
        authorize_params: key_values_from_wit(config.authorize_params),
        token_requests: token_requests_from_wit(config.token_requests),
        variables: key_values_from_wit(config.variables),
        offline_access: config.offline_access,
        resources: config.resources,
        dpop: config.dpop,
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

fn token_set_from_wit(tokens: wit::TokenSet) -> TokenSet {
    TokenSet {
        access_token: Secret::new(tokens.access_token),
        token_type: tokens.token_type,
        expires_at: tokens.expires_at,
        refresh_token: tokens.refresh_token.map(Secret::new),
        id_token: tokens.id_token.map(Secret::new),
        scopes: tokens.scopes,
        obtained_at: tokens.obtained_at,
        extras: key_values_from_wit(tokens.extras),
        dpop_key_thumbprint: tokens.dpop_key_thumbprint,
    }
}

fn request_from_wit(request: wit::HttpRequest) -> HttpRequest {
    HttpRequest {
        method: match request.method {
            wit::HttpMethod::Get => Method::Get,
            wit::HttpMethod::Head => Method::Head,
            wit::HttpMethod::Post => Method::Post,
            wit::HttpMethod::Put => Method::Put,
            wit::HttpMethod::Patch => Method::Patch,
            wit::HttpMethod::Delete => Method::Delete,
            wit::HttpMethod::Options => Method::Options,
            wit::HttpMethod::Other(name) => Method::Other(name),
        },
        url: request.url,
        headers: key_values_from_wit(request.headers),
        body: request.body,
    }
}

// ---- core -> WIT ----

fn request_to_wit(request: HttpRequest) -> wit::HttpRequest {
    wit::HttpRequest {
        method: match request.method {
            Method::Get => wit::HttpMethod::Get,
            Method::Head => wit::HttpMethod::Head,
            Method::Post => wit::HttpMethod::Post,
            Method::Put => wit::HttpMethod::Put,
            Method::Patch => wit::HttpMethod::Patch,
            Method::Delete => wit::HttpMethod::Delete,
            Method::Options => wit::HttpMethod::Options,
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
        dpop_key_thumbprint: tokens.dpop_key_thumbprint,
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

fn token_requests_to_wit(extras: profile::TokenRequestExtras) -> wit::TokenRequestExtras {
    wit::TokenRequestExtras {
        code_exchange: extras_to_wit(extras.code_exchange),
        refresh: extras_to_wit(extras.refresh),
        client_credentials: extras_to_wit(extras.client_credentials),
        device: extras_to_wit(extras.device),
        token_exchange: extras_to_wit(extras.token_exchange),
        jwt_bearer: extras_to_wit(extras.jwt_bearer),
        pushed_authorization: extras_to_wit(extras.pushed_authorization),
    }
}

fn profile_to_wit(profile: profile::ProviderProfile) -> wit::ProviderProfile {
    wit::ProviderProfile {
        id: profile.id,
        issuer: profile.issuer,
        authorize_url: profile.authorize_url,
        token_url: profile.token_url,
        refresh_url: profile.refresh_url,
        revocation_url: profile.revocation_url,
        introspection_url: profile.introspection_url,
        device_authorization_url: profile.device_authorization_url,
        pushed_authorization_request_url: profile.pushed_authorization_request_url,
        requires_pushed_authorization_requests: profile.requires_pushed_authorization_requests,
        registration_url: profile.registration_url,
        dpop_algorithms: profile
            .dpop_algorithms
            .into_iter()
            .map(algorithm_to_wit)
            .collect(),
        api_base_url: profile.api_base_url,
        userinfo_url: profile.userinfo_url,
        variables: profile.variables,
        scope_separator: profile.scope_separator,
        default_scopes: profile.default_scopes,
        pkce: match profile.pkce {
            profile::PkceMethod::S256 => wit::PkceMethod::S256,
            profile::PkceMethod::Plain => wit::PkceMethod::Plain,
            profile::PkceMethod::Disabled => wit::PkceMethod::Disabled,
        },
        client_auth: client_auth_to_wit(profile.client_auth),
        assertion_audience: match profile.assertion_audience {
            profile::AssertionAudience::TokenUrl => wit::AssertionAudience::TokenUrl,
            profile::AssertionAudience::RequestUrl => wit::AssertionAudience::RequestUrl,
            profile::AssertionAudience::Issuer => wit::AssertionAudience::Issuer,
        },
        requires_iss: profile.requires_iss,
        authorize_params: key_values_to_wit(profile.authorize_params),
        token_requests: token_requests_to_wit(profile.token_requests),
        token_request_format: match profile.token_request_format {
            profile::BodyFormat::Form => wit::BodyFormat::Form,
            profile::BodyFormat::Json => wit::BodyFormat::Json,
        },
        offline_access: wit::OfflineAccess {
            scopes: profile.offline_access.scopes,
            authorize_params: key_values_to_wit(profile.offline_access.authorize_params),
        },
        token_response: wit::TokenResponseQuirks {
            path: profile.token_response.path,
            success_flag: profile.token_response.success_flag,
            default_expires_in: profile.token_response.default_expires_in,
        },
        token_placement: match profile.token_placement {
            profile::TokenPlacement::AuthorizationHeader => {
                wit::TokenPlacement::AuthorizationHeader
            }
            profile::TokenPlacement::Header(header) => {
                wit::TokenPlacement::Header(wit::TokenHeader {
                    name: header.name,
                    prefix: header.prefix,
                })
            }
            profile::TokenPlacement::Query(name) => wit::TokenPlacement::Query(name),
        },
        token_rejection: wit::TokenRejection {
            statuses: profile.token_rejection.statuses,
            body_markers: profile.token_rejection.body_markers,
        },
        client_id_parameter: profile.client_id_parameter,
        refresh_redirect_uri: profile.refresh_redirect_uri,
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

fn transport_error_from_wit(error: wit::TransportError) -> TransportError {
    match error {
        wit::TransportError::Denied(host) => TransportError::Denied(host),
        wit::TransportError::InvalidRequest(reason) => TransportError::InvalidRequest(reason),
        wit::TransportError::ConnectionFailed(reason) => TransportError::ConnectionFailed(reason),
        wit::TransportError::Tls(reason) => TransportError::Tls(reason),
        wit::TransportError::Timeout => TransportError::Timeout,
        wit::TransportError::ResponseTooLarge(cap) => TransportError::ResponseTooLarge(cap),
        wit::TransportError::Other(reason) => TransportError::Other(reason),
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
        ConfigError::NoRefreshToken => wit::ConfigurationError::NoRefreshToken,
        ConfigError::MissingVariable(name) => wit::ConfigurationError::MissingVariable(name),
        ConfigError::InvalidVariable(name) => wit::ConfigurationError::InvalidVariable(name),
        ConfigError::UnknownPreset(id) => wit::ConfigurationError::UnknownPreset(id),
        ConfigError::InvalidProfile(reason) => wit::ConfigurationError::InvalidProfile(reason),
    }
}

fn error_to_wit(error: Error) -> wit::Error {
    match error {
        Error::ServerSaidNo(error) => wit::Error::ServerSaidNo(oauth_error_to_wit(error)),
        Error::ReauthorizationRequired(error) => {
            wit::Error::ReauthorizationRequired(oauth_error_to_wit(error))
        }
        Error::ServerUnavailable(ServerUnavailable {
            status,
            retry_after_seconds,
            error,
        }) => wit::Error::ServerUnavailable(wit::ServerUnavailable {
            status,
            retry_after_seconds,
            error: error.map(oauth_error_to_wit),
        }),
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
        Error::Discovery(error) => wit::Error::Discovery(match error {
            DiscoveryError::NotFound(status) => wit::DiscoveryError::NotFound(status),
            DiscoveryError::IssuerMismatch(issuer) => wit::DiscoveryError::IssuerMismatch(issuer),
            DiscoveryError::MissingField(name) => wit::DiscoveryError::MissingField(name),
            DiscoveryError::ResourceMismatch(resource) => {
                wit::DiscoveryError::ResourceMismatch(resource)
            }
            DiscoveryError::NoAuthorizationServer => wit::DiscoveryError::NoAuthorizationServer,
        }),
        Error::Signing(error) => wit::Error::Signing(match error {
            SigningError::NoKey => wit::SigningError::NoKey,
            SigningError::Denied(reason) => wit::SigningError::Denied(reason),
            SigningError::Unsupported(reason) => wit::SigningError::Unsupported(reason),
            SigningError::Failed(reason) => wit::SigningError::Failed(reason),
        }),
    }
}

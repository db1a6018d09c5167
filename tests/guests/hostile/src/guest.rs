//! The bindings and the misbehaviour (wasm32 only).

#![allow(unsafe_code)] // the code `wit_bindgen::generate!` emits

use alloc::borrow::ToOwned;
use alloc::string::String;
use alloc::vec::Vec;
use alloc::{format, vec};
use core::hint::black_box;

wit_bindgen::generate!({
    world: "connector",
    path: "../../../wit",
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
use oauth_connector::oauth2::transport;
use oauth_connector::oauth2::types as wit;

struct Hostile;

/// The canonical ABI's allocator export (the standard library's wasi-libc would provide it).
/// A test guest: allocation failure traps through `handle_alloc_error`.
#[unsafe(no_mangle)]
unsafe extern "C" fn cabi_realloc(
    old: *mut u8,
    old_len: usize,
    align: usize,
    len: usize,
) -> *mut u8 {
    use alloc::alloc::{Layout, alloc, handle_alloc_error, realloc};
    let layout = Layout::from_size_align(len.max(1), align).expect("a valid layout");
    // SAFETY: the canonical ABI passes back exactly what this function allocated.
    let ptr = unsafe {
        match old_len {
            0 => alloc(layout),
            _ => realloc(
                old,
                Layout::from_size_align_unchecked(old_len, align),
                layout.size(),
            ),
        }
    };
    if ptr.is_null() {
        handle_alloc_error(layout);
    }
    ptr
}

export!(Hostile);

type ConnectionBorrow<'a> = wit_connections::ConnectionBorrow<'a>;

/// What `begin` reads of the configuration.
struct Connection {
    client_id: String,
    token_url: String,
}

impl wit_connections::Guest for Hostile {
    type Connection = Connection;
}

impl wit_connections::GuestConnection for Connection {
    fn open(config: wit::ConnectionConfig) -> WitResult<wit_connections::Connection> {
        Ok(wit_connections::Connection::new(Connection {
            client_id: config.client.client_id,
            token_url: config.profile.token_url,
        }))
    }

    fn resolved_profile(&self) -> wit::ProviderProfile {
        unreachable!("{ONLY_BEGIN}")
    }
}

type WitResult<T> = Result<T, wit::Error>;

const ONLY_BEGIN: &str = "the hostile guest implements only authorization-code.begin";

impl wit_authorization_code::Guest for Hostile {
    fn begin(
        connection: ConnectionBorrow<'_>,
    ) -> WitResult<wit_authorization_code::AuthorizationRequest> {
        let connection: &Connection = connection.get();
        let outcome = match connection.client_id.as_str() {
            "spin" => spin(),
            "allocate" => allocate(),
            "recurse" => format!("depth {}", recurse(black_box(1))),
            "panic" => panic!("the hostile guest panics on purpose"),
            "slow-transport" => format!("status {}", get(&connection.token_url)?),
            "spin-after-transport" => {
                get(&connection.token_url)?;
                spin()
            }
            _ => "ok".to_owned(),
        };
        Ok(wit_authorization_code::AuthorizationRequest {
            url: outcome,
            pending: wit::PendingAuthorization {
                state: String::new(),
                code_verifier: None,
                redirect_uri: None,
                requested_scopes: Vec::new(),
                created_at: 0,
                expires_at: 0,
            },
        })
    }

    fn check(_connection: ConnectionBorrow<'_>) -> WitResult<()> {
        unreachable!("{ONLY_BEGIN}")
    }

    fn complete(
        _connection: ConnectionBorrow<'_>,
        _pending: wit::PendingAuthorization,
        _callback_url: String,
    ) -> WitResult<wit::TokenSet> {
        unreachable!("{ONLY_BEGIN}")
    }

    fn state_from_callback(_callback_url: String) -> WitResult<String> {
        unreachable!("{ONLY_BEGIN}")
    }
}

/// Never returns.
fn spin() -> String {
    let mut counter = 0u64;
    loop {
        counter = black_box(counter.wrapping_add(1));
    }
}

/// Grows the heap a mebibyte at a time until the host stops it.
fn allocate() -> String {
    let mut blocks: Vec<Vec<u8>> = Vec::new();
    loop {
        let block = vec![1u8; 1 << 20];
        blocks.push(black_box(block));
    }
}

/// Recurses until the stack overflows.
#[allow(unconditional_recursion)] // the point
fn recurse(depth: u64) -> u64 {
    let frame = black_box([depth; 64]);
    recurse(black_box(depth + 1)) + frame[0]
}

/// Sends a GET through the host's transport; its status.
fn get(url: &str) -> WitResult<u16> {
    let request = wit::HttpRequest {
        method: wit::HttpMethod::Get,
        url: url.to_owned(),
        headers: Vec::new(),
        body: Vec::new(),
    };
    transport::send(&request)
        .map(|response| response.status)
        .map_err(wit::Error::Transport)
}

impl wit_client_credentials::Guest for Hostile {
    fn fetch(_connection: ConnectionBorrow<'_>) -> WitResult<wit::TokenSet> {
        unreachable!("{ONLY_BEGIN}")
    }
}

impl wit_device::Guest for Hostile {
    fn begin(_connection: ConnectionBorrow<'_>) -> WitResult<wit_device::DeviceAuthorization> {
        unreachable!("{ONLY_BEGIN}")
    }

    fn poll(
        _connection: ConnectionBorrow<'_>,
        _device: wit_device::DeviceAuthorization,
    ) -> WitResult<wit_device::DevicePoll> {
        unreachable!("{ONLY_BEGIN}")
    }
}

impl wit_tokens::Guest for Hostile {
    fn needs_refresh(_tokens: wit::TokenSet, _margin_seconds: Option<u64>) -> bool {
        unreachable!("{ONLY_BEGIN}")
    }

    fn refresh(
        _connection: ConnectionBorrow<'_>,
        _tokens: wit::TokenSet,
    ) -> WitResult<wit::TokenSet> {
        unreachable!("{ONLY_BEGIN}")
    }

    fn revoke(_connection: ConnectionBorrow<'_>, _tokens: wit::TokenSet) -> WitResult<()> {
        unreachable!("{ONLY_BEGIN}")
    }

    fn introspect(
        _connection: ConnectionBorrow<'_>,
        _token: String,
        _token_type_hint: Option<String>,
    ) -> WitResult<wit_tokens::Introspection> {
        unreachable!("{ONLY_BEGIN}")
    }
}

impl wit_api::Guest for Hostile {
    fn call(
        _connection: ConnectionBorrow<'_>,
        _tokens: wit::TokenSet,
        _request: wit::HttpRequest,
    ) -> WitResult<wit_api::ApiResponse> {
        unreachable!("{ONLY_BEGIN}")
    }
}

impl wit_providers::Guest for Hostile {
    fn discover(_issuer: String) -> WitResult<wit::ProviderProfile> {
        unreachable!("{ONLY_BEGIN}")
    }

    fn parse_profile(_json: String) -> WitResult<wit::ProviderProfile> {
        unreachable!("{ONLY_BEGIN}")
    }

    fn validate_profile(_profile: wit::ProviderProfile) -> WitResult<()> {
        unreachable!("{ONLY_BEGIN}")
    }
}

impl wit_token_exchange::Guest for Hostile {
    fn exchange(
        _connection: ConnectionBorrow<'_>,
        _request: wit_token_exchange::ExchangeRequest,
    ) -> WitResult<wit_token_exchange::ExchangedToken> {
        unreachable!("{ONLY_BEGIN}")
    }
}

impl wit_jwt_bearer::Guest for Hostile {
    fn fetch(
        _connection: ConnectionBorrow<'_>,
        _claims: wit_jwt_bearer::AssertionClaims,
    ) -> WitResult<wit::TokenSet> {
        unreachable!("{ONLY_BEGIN}")
    }
}

impl wit_registration::Guest for Hostile {
    fn discover_resource(_resource_url: String) -> WitResult<wit_registration::ProtectedResource> {
        unreachable!("{ONLY_BEGIN}")
    }

    fn register(
        _registration_url: String,
        _metadata: wit_registration::ClientMetadata,
        _initial_access_token: Option<String>,
    ) -> WitResult<wit_registration::RegisteredClient> {
        unreachable!("{ONLY_BEGIN}")
    }
}

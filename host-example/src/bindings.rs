//! Host-side bindings generated from `wit/` by wasmtime's `bindgen!`.
//!
//! The generated records derive `Debug`, which prints every field, secrets included: never
//! log a record that holds a client secret, a token or a PKCE verifier.

// Generated items carry the WIT doc comments where WIT has them; the rest (plumbing such
// as `add_to_linker`) is documented by wasmtime.

wasmtime::component::bindgen!({
    world: "connector",
    path: "../wit",
    additional_derives: [PartialEq, Eq, serde::Serialize, serde::Deserialize],
});

pub use exports::oauth_connector::oauth2::authorization_code::AuthorizationRequest;
pub use oauth_connector::oauth2::types;

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
    // The random source may fail (an operating system without one), and a guest may ask for
    // any number of bytes: both stop the call with a trap rather than a host panic or a
    // host allocation of what was asked.
    imports: {
        "wasi:random/random.get-random-bytes": trappable,
        "wasi:random/random.get-random-u64": trappable,
    },
});

pub use exports::oauth_connector::oauth2::authorization_code::AuthorizationRequest;
pub use oauth_connector::oauth2::types;

//! oauth-connector: an OAuth 2.0 client as a WebAssembly component.
//!
//! The crate is two layers:
//! - a pure core (every module but `component`): OAuth 2.0 logic with no IO and no
//!   bindings; time and random bytes are arguments, so it is deterministic and unit-tested
//!   natively;
//! - `component` (wasm32 only): the `wit-bindgen` binding layer, which converts WIT records to
//!   core types and back, and supplies WASI time and randomness.
#![cfg_attr(not(target_arch = "wasm32"), forbid(unsafe_code))]
#![deny(missing_docs)]

pub mod api;
pub mod authorize;
pub mod callback;
pub mod client_auth;
pub mod client_credentials;
pub mod complete;
pub mod device;
pub mod discovery;
pub mod endpoint;
pub mod error;
pub mod form;
pub mod http;
pub mod http_date;
pub mod lifecycle;
pub mod pkce;
pub mod presets;
pub mod profile;
pub mod secret;
pub mod token;
pub mod token_request;

#[cfg(target_arch = "wasm32")]
mod component;

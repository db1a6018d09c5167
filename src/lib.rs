//! oauth-connector: an OAuth 2.0 client as a WebAssembly component.
//!
//! The crate is two layers:
//! - a pure core (every module but `component`): OAuth 2.0 logic with no IO and no
//!   bindings; time and random bytes are arguments, so it is deterministic and unit-tested
//!   natively;
//! - `component` (wasm32 only): the `wit-bindgen` binding layer, which converts WIT records to
//!   core types and back, and supplies WASI time and randomness.
//!
//! The crate is `no_std` (with `alloc`) on every target, so that the component imports only
//! the WASI interfaces it calls (the wall clock and the random source); the standard library
//! would add `wasi:cli` (environment, standard streams, exit) and `wasi:io`. Native builds
//! link `std` only to host the tests and the `cdylib`'s panic machinery.
#![no_std]
#![cfg_attr(not(target_arch = "wasm32"), forbid(unsafe_code))]
#![deny(missing_docs)]

extern crate alloc;
#[cfg(not(target_arch = "wasm32"))]
extern crate std;

/// What the standard prelude would bring, for a `no_std` crate: `use crate::prelude::*`.
mod prelude {
    pub use alloc::borrow::ToOwned;
    pub use alloc::string::{String, ToString};
    pub use alloc::vec::Vec;
    pub use alloc::{format, vec};
}

pub mod api;
pub mod authorize;
pub mod callback;
pub mod client_auth;
pub mod client_credentials;
pub mod complete;
pub mod device;
pub mod discovery;
pub mod dpop;
pub mod endpoint;
pub mod error;
pub mod form;
pub mod http;
pub mod http_date;
pub mod json;
pub mod jwt_bearer;
pub mod lifecycle;
pub mod pkce;
#[cfg(test)]
mod presets;
pub mod profile;
pub mod registration;
pub mod secret;
pub mod token;
pub mod token_exchange;
pub mod token_request;

#[cfg(target_arch = "wasm32")]
mod component;

#[cfg(target_arch = "wasm32")]
mod allocator;

/// The component's allocator: dlmalloc, as the standard library uses on wasm32, starting
/// with the initial memory's heap (see `allocator`).
#[cfg(target_arch = "wasm32")]
#[global_allocator]
static ALLOCATOR: allocator::Heap = allocator::Heap::new();

// `memcmp`, `memcpy` and friends: on wasm32-wasip2, Rust's `core` expects the C library to
// provide them. wasi-libc's string functions import nothing; nothing else of it is linked.
#[cfg(target_arch = "wasm32")]
#[link(name = "c")]
unsafe extern "C" {}

/// A panic in the component is a bug: it traps, and the host reports the trap (the message
/// would need `wasi:cli/stderr`, which the component does not import).
#[cfg(target_arch = "wasm32")]
#[panic_handler]
fn panic(_: &core::panic::PanicInfo<'_>) -> ! {
    core::arch::wasm32::unreachable()
}

//! An example wasmtime host for the oauth-connector component.
//!
//! - [`runtime`]: the engine, linker and pre-instantiated component (built once), and a fresh
//!   sandboxed instance per call with an empty WASI context.
//! - [`transport`]: the HTTP client behind the component's `transport.send`, with an
//!   allow-list, no redirects, timeouts and size caps.
//! - [`connect`]: the loopback redirect listener and the browser half of the flow.
//! - [`store`]: the SQLite connection store (owner-only file).
//! - [`cli`]: the `connector-host` command line, runnable in-process.
//! - [`describe`]: human-readable text for the component's typed errors.
//! - [`bindings`]: the generated WIT bindings.
#![deny(missing_docs)]

#[allow(missing_docs)] // generated plumbing (add_to_linker etc.) is documented by wasmtime
pub mod bindings;
pub mod cli;
pub mod connect;
pub mod describe;
pub mod local_server;
pub mod runtime;
pub mod store;
pub mod transport;

pub use bindings::types;
pub use runtime::{CallError, Runtime, Session};
pub use transport::{AllowList, HttpTransport, Limits, Origin};

/// The allow-list a connection's transport gets by default: the origins of its profile's
/// endpoints.
pub fn default_allow_list(profile: &types::ProviderProfile) -> AllowList {
    AllowList::from_urls(
        [
            Some(profile.token_url.as_str()),
            profile.authorize_url.as_deref(),
            profile.issuer.as_deref(),
        ]
        .into_iter()
        .flatten(),
    )
}

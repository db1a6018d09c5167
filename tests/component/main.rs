//! Ring 2: the built component, driven through the host library, against servers on
//! 127.0.0.1 that the tests start. One test binary, so the component is compiled once.

mod authorize;
mod beyond;
mod build;
mod client_auth;
mod common;
mod compile_cache;
mod exchange;
mod imports;
mod lifecycle;
mod presets;
mod quirks;
mod sandbox;
mod transport;

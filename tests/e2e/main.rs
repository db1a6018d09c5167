//! Ring 3: end to end against a real, independently written authorization server
//! (`oidc-provider` 8.8.1 from npm, in `tests/oidc-server/`), started on 127.0.0.1 by each
//! test. The `connector-host` CLI runs in-process (or, for the refresh storms, in worker
//! processes); a scripted user agent (`tests/oidc-server/user-agent.mjs`) plays the browser:
//! it signs in, consents (or denies), and delivers the redirect to the CLI's loopback
//! listener. `browser.rs` drives the service's web page with headless Chromium (Debian's
//! `chromium` through playwright-core), a real browser end to end.

mod browser;
mod call;
mod client_auth;
mod connect;
mod discovery;
mod exchange;
mod fix_named;
mod fleet;
mod hygiene;
mod keepalive;
mod keys;
mod lifecycle;
mod listener;
mod pages;
mod par_dpop;
mod postgres;
mod presets;
mod reconnect;
mod retry;
mod serve;
mod serve_dpop;
mod serve_jwt;
mod server;
mod service;
mod state;
mod status;
mod store_security;
mod storm;
mod terminal;
mod verbosity;

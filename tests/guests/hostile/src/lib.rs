//! A hostile component for the host's sandbox tests (never shipped).
//!
//! It implements the `connector` world, so the host loads it exactly as it loads the real
//! connector. `authorization-code.begin` misbehaves according to the configured client id:
//!
//! | client id              | behaviour                                                     |
//! |------------------------|---------------------------------------------------------------|
//! | `spin`                 | loops forever                                                 |
//! | `allocate`             | allocates without bound                                       |
//! | `recurse`              | recurses without bound (stack overflow)                       |
//! | `panic`                | panics (a trap)                                               |
//! | `slow-transport`       | sends one GET to the token URL, then answers normally         |
//! | `spin-after-transport` | sends one GET to the token URL, then loops forever            |
//! | anything else          | answers normally at once                                      |
//!
//! A normal answer is an authorization request whose URL says what happened. Every other
//! export traps: the tests only call `begin`.
#![cfg_attr(not(target_arch = "wasm32"), forbid(unsafe_code))]

#[cfg(target_arch = "wasm32")]
mod guest;

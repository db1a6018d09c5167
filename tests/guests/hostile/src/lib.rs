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
//! export but `connections.open` traps: the tests only open a connection and call `begin`.
//!
//! Like the connector, it is `no_std`: it imports only what the connector's world imports.
#![no_std]
#![cfg_attr(not(target_arch = "wasm32"), forbid(unsafe_code))]

#[cfg(target_arch = "wasm32")]
extern crate alloc;
#[cfg(not(target_arch = "wasm32"))]
extern crate std;

#[cfg(target_arch = "wasm32")]
mod guest;

#[cfg(target_arch = "wasm32")]
#[global_allocator]
static ALLOCATOR: dlmalloc::GlobalDlmalloc = dlmalloc::GlobalDlmalloc;

// The C library's `memcmp` and friends, as in the connector.
#[cfg(target_arch = "wasm32")]
#[link(name = "c")]
unsafe extern "C" {}

/// A panic traps, as in the connector.
#[cfg(target_arch = "wasm32")]
#[panic_handler]
fn panic(_: &core::panic::PanicInfo<'_>) -> ! {
    core::arch::wasm32::unreachable()
}

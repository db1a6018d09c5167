//! Link settings of the component (wasm32 only; native builds are untouched).
//!
//! The initial linear memory holds the 1 MiB stack, the static data and about 1 MiB of heap,
//! which the allocator uses before it grows the memory (`src/allocator.rs`): a typical call
//! then never grows it, and a pooled instance never pays the two `mprotect`s of growing and
//! shrinking back.

/// The initial memory, in bytes (32 wasm pages).
const INITIAL_MEMORY: usize = 2 << 20;

fn main() {
    println!("cargo::rerun-if-changed=build.rs");
    if std::env::var("CARGO_CFG_TARGET_ARCH").as_deref() == Ok("wasm32") {
        println!("cargo::rustc-cdylib-link-arg=--initial-memory={INITIAL_MEMORY}");
    }
}

//! Flags for the nested cargo that builds the component, beside the workspace's
//! `.cargo/config.toml` (which makes the code static): shared by `build.rs` and the benchmark
//! that rebuilds the component with its names kept.

use std::ffi::OsString;
use std::path::PathBuf;

/// The environment variable that adds rustc flags to `wasm32-wasip2` builds. Cargo joins its
/// value to the config file's `target.wasm32-wasip2.rustflags`.
pub const VARIABLE: &str = "CARGO_TARGET_WASM32_WASIP2_RUSTFLAGS";

/// `VARIABLE`'s value for the component build: any value the caller set, then a
/// `--remap-path-prefix` for each package registry's source directory, so that the panic
/// locations of dependencies read `base64-0.22.1/src/...`. The component would otherwise
/// carry the builder's cargo home (`/home/<user>/.cargo/registry/src/<index>/`) about 25
/// times: about 1.5 KB, and a path of the build machine in a file that is shipped.
///
/// The variable is split at whitespace, so a cargo home whose path has any is left as is.
pub fn component_rustflags() -> Option<OsString> {
    let mut flags = std::env::var(VARIABLE).unwrap_or_default();
    let registry = cargo_home()?.join("registry").join("src");
    let mut indexes: Vec<PathBuf> = std::fs::read_dir(&registry)
        .ok()?
        .filter_map(|entry| Some(entry.ok()?.path()))
        .filter(|path| path.is_dir())
        .collect();
    indexes.sort();
    for index in indexes {
        let Some(index) = index.to_str() else {
            continue;
        };
        if index.contains(char::is_whitespace) {
            continue;
        }
        if !flags.is_empty() {
            flags.push(' ');
        }
        flags.push_str("--remap-path-prefix=");
        flags.push_str(index);
        flags.push_str("/=");
    }
    Some(flags.into())
}

/// Cargo's home: `CARGO_HOME`, else `.cargo` in the user's home directory.
fn cargo_home() -> Option<PathBuf> {
    match std::env::var_os("CARGO_HOME") {
        Some(home) if !home.is_empty() => Some(PathBuf::from(home)),
        _ => Some(PathBuf::from(std::env::var_os("HOME")?).join(".cargo")),
    }
}

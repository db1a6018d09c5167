//! Builds the oauth-connector component (the workspace's root package) for `wasm32-wasip2`
//! with the size-tuned `component` profile, so that `cargo run -p connector-host` and
//! `cargo test` work on a fresh clone with one command. The same build makes the hostile
//! test guest (`tests/guests/hostile`), which the sandbox tests load; it shares every
//! dependency with the component, so it costs seconds.
//!
//! The nested cargo uses its own target directory (`target/component-build`): the outer
//! cargo holds the lock on `target/debug`, and a shared directory would deadlock.

use std::env;
use std::path::{Path, PathBuf};
use std::process::Command;

#[allow(dead_code)] // its figures of what was merged are for the benchmarks
#[path = "build/merge_functions.rs"]
mod merge_functions;
#[path = "build/rustflags.rs"]
mod rustflags;

const TARGET: &str = "wasm32-wasip2";

fn main() {
    let manifest_dir = PathBuf::from(env::var_os("CARGO_MANIFEST_DIR").expect("set by cargo"));
    let root = manifest_dir
        .parent()
        .expect("host-example sits in the workspace")
        .to_owned();
    for watched in [
        "src",
        "wit",
        "tests/guests",
        "build.rs",
        "Cargo.toml",
        "Cargo.lock",
        ".cargo/config.toml",
    ] {
        println!("cargo:rerun-if-changed={}", root.join(watched).display());
    }
    println!("cargo:rerun-if-env-changed=CONNECTOR_SKIP_COMPONENT_BUILD");
    println!("cargo:rerun-if-env-changed={}", rustflags::VARIABLE);
    embed_presets(&root.join("presets"));

    let target_dir = root.join("target").join("component-build");
    let built = target_dir.join(TARGET).join("component");
    let wasm = built.join("oauth_connector.wasm");
    let hostile = built.join("hostile_guest.wasm");
    println!(
        "cargo:rustc-env=CONNECTOR_COMPONENT_WASM={}",
        wasm.display()
    );
    println!(
        "cargo:rustc-env=CONNECTOR_HOSTILE_WASM={}",
        hostile.display()
    );
    if env::var_os("CONNECTOR_SKIP_COMPONENT_BUILD").is_some() {
        // The binary embeds the component (`include_bytes!`): leave an empty placeholder
        // when none was built, so that a check without the component still compiles (and
        // loading it fails with wasmtime's parse error).
        for output in [&wasm, &hostile] {
            if !output.exists() {
                std::fs::create_dir_all(&built).expect("create the component directory");
                std::fs::write(output, b"").expect("write a placeholder component");
            }
        }
        emit_digest(&wasm);
        return;
    }

    ensure_target_installed();
    let cargo = env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut build = Command::new(cargo);
    if let Some(flags) = rustflags::component_rustflags() {
        build.env(rustflags::VARIABLE, flags);
    }
    let status = build
        .args([
            "build",
            "--locked",
            "--package",
            "oauth-connector",
            "--package",
            "hostile-guest",
            "--target",
            TARGET,
        ])
        .args(["--profile", "component", "--manifest-path"])
        .arg(root.join("Cargo.toml"))
        .arg("--target-dir")
        .arg(&target_dir)
        // The outer build's flags and target are for the host, not for the component.
        .env_remove("CARGO_ENCODED_RUSTFLAGS")
        .env_remove("RUSTFLAGS")
        .env_remove("CARGO_BUILD_TARGET")
        .env_remove("CARGO_TARGET_DIR")
        .env_remove("RUSTC_WORKSPACE_WRAPPER")
        .status()
        .expect("run cargo to build the component");
    assert!(
        status.success(),
        "building the oauth-connector component failed"
    );
    for output in [&wasm, &hostile] {
        assert!(
            output.exists(),
            "the component build did not produce {}",
            output.display()
        );
    }
    merge_functions(&wasm);
    emit_digest(&wasm);
}

/// Replaces the component at `wasm` with one whose identical functions are merged (see
/// `build/merge_functions.rs`). The merged file takes the place of the one cargo made
/// (cargo's own copy under `deps/` is left alone); merging a merged component changes
/// nothing, so it does not matter whether cargo rebuilt it.
fn merge_functions(wasm: &Path) {
    let built = std::fs::read(wasm).expect("read the built component");
    let (merged, _) = merge_functions::merge_functions(&built)
        .unwrap_or_else(|error| panic!("merging the component's functions: {error}"));
    if merged == built {
        return;
    }
    let temporary = wasm.with_extension("wasm.merging");
    std::fs::write(&temporary, &merged).expect("write the merged component");
    std::fs::rename(&temporary, wasm).expect("replace the component with the merged one");
}

/// The embedded component's SHA-256 (hex), the compile cache's key, so that the binary need
/// not hash its own component on every start.
fn emit_digest(wasm: &Path) {
    use sha2::Digest as _;
    let bytes = std::fs::read(wasm).expect("read the built component");
    let digest: String = sha2::Sha256::digest(&bytes)
        .iter()
        .map(|byte| format!("{byte:02x}"))
        .collect();
    println!("cargo:rustc-env=CONNECTOR_COMPONENT_SHA256={digest}");
}

/// Installs the `wasm32-wasip2` standard library through rustup when it is missing, so that a
/// machine with only a Rust toolchain builds the component.
fn ensure_target_installed() {
    let rustc = env::var_os("RUSTC").unwrap_or_else(|| "rustc".into());
    let sysroot = Command::new(rustc)
        .args(["--print", "sysroot"])
        .output()
        .ok()
        .filter(|output| output.status.success())
        .map(|output| PathBuf::from(String::from_utf8_lossy(&output.stdout).trim()));
    let installed = |sysroot: &Path| sysroot.join("lib/rustlib").join(TARGET).exists();
    if sysroot.as_deref().is_some_and(installed) {
        return;
    }
    println!("cargo:warning=installing the {TARGET} target with rustup");
    let mut rustup = Command::new("rustup");
    rustup.args(["target", "add", TARGET]);
    if let Some(toolchain) = env::var_os("RUSTUP_TOOLCHAIN") {
        rustup.arg("--toolchain").arg(toolchain);
    }
    let added = rustup.status().is_ok_and(|status| status.success());
    assert!(
        added,
        "the {TARGET} target is missing: run `rustup target add {TARGET}`"
    );
}

/// Writes `$OUT_DIR/presets.rs`: the built-in preset documents (`presets/*.json`), by file
/// name, in name order, for `presets.rs` to include.
fn embed_presets(dir: &Path) {
    println!("cargo:rerun-if-changed={}", dir.display());
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .expect("read the presets directory")
        .map(|entry| entry.expect("list the presets directory").path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "json"))
        .collect();
    files.sort();
    let mut code = String::from(
        "/// The built-in preset documents: (file name, text).\npub const PRESETS: &[(&str, &str)] = &[\n",
    );
    for file in &files {
        println!("cargo:rerun-if-changed={}", file.display());
        let name = file.file_name().expect("a file name").to_string_lossy();
        code.push_str(&format!(
            "    ({name:?}, include_str!({:?})),\n",
            file.display().to_string()
        ));
    }
    code.push_str("];\n");
    let out = PathBuf::from(env::var_os("OUT_DIR").expect("set by cargo")).join("presets.rs");
    std::fs::write(out, code).expect("write the preset list");
}

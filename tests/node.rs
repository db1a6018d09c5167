//! The Node.js host (`node/`): the same component file the wasmtime tests load, transpiled by
//! jco and run in a worker thread, tested with `node --test` against the project's
//! authorization server on 127.0.0.1. This test installs the npm packages when they are
//! missing or stale (`npm ci`), then runs `npm test` with the component cargo built, its
//! SHA-256 and the hostile test guest, and fails with npm's output when npm fails.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use connector_host::runtime::{
    BUILT_COMPONENT, BUILT_HOSTILE_COMPONENT, EMBEDDED_COMPONENT_SHA256,
};

/// The Node package's folder.
fn node_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("node")
}

/// The `packages` map of an npm lock file (`package-lock.json`, or the copy npm keeps in
/// `node_modules/.package-lock.json` of what it installed): each package's path, version and
/// whether it is optional (platform-specific builds, which npm installs only where they run).
fn locked_packages(path: &Path) -> Option<Vec<(String, String, bool)>> {
    let text = std::fs::read_to_string(path).ok()?;
    let lock: serde_json::Value = serde_json::from_str(&text).ok()?;
    let packages = lock["packages"]
        .as_object()?
        .iter()
        // The root entry describes the package itself, not an installed one.
        .filter(|(path, _)| !path.is_empty())
        .map(|(path, entry)| {
            let version = entry["version"].as_str().unwrap_or_default().to_owned();
            let optional = entry["optional"].as_bool().unwrap_or(false);
            (path.clone(), version, optional)
        })
        .collect();
    Some(packages)
}

/// True when `node_modules` holds what `package-lock.json` locks: every package it installed
/// is locked at that version, and every package that is not optional is installed.
fn installed_matches_lock(dir: &Path) -> bool {
    let (Some(wanted), Some(installed)) = (
        locked_packages(&dir.join("package-lock.json")),
        locked_packages(&dir.join("node_modules").join(".package-lock.json")),
    ) else {
        return false;
    };
    let version_of = |packages: &[(String, String, bool)], path: &str| {
        packages
            .iter()
            .find(|(p, _, _)| p == path)
            .map(|(_, version, _)| version.clone())
    };
    let all_locked = installed
        .iter()
        .all(|(path, version, _)| version_of(&wanted, path).as_ref() == Some(version));
    let required_installed = wanted
        .iter()
        .filter(|(_, _, optional)| !optional)
        .all(|(path, version, _)| version_of(&installed, path).as_ref() == Some(version));
    all_locked && required_installed
}

fn npm(dir: &Path, args: &[&str]) -> Output {
    Command::new("npm")
        .args(args)
        .current_dir(dir)
        .env("CONNECTOR_COMPONENT_WASM", BUILT_COMPONENT)
        .env("CONNECTOR_COMPONENT_SHA256", EMBEDDED_COMPONENT_SHA256)
        .env("CONNECTOR_HOSTILE_WASM", BUILT_HOSTILE_COMPONENT)
        .output()
        .unwrap_or_else(|error| {
            panic!("running npm {args:?} (Node.js 20+ and npm are needed): {error}")
        })
}

fn succeed(dir: &Path, args: &[&str]) -> String {
    let output = npm(dir, args);
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        output.status.success(),
        "npm {} in {} failed ({}):\n{text}",
        args.join(" "),
        dir.display(),
        output.status
    );
    text
}

#[test]
fn node_host_passes_its_tests_against_the_same_component() {
    // The tests start the project's authorization server, whose packages these are.
    connector_host::local_server::ensure_installed()
        .expect("installing the authorization server's npm packages (tests/oidc-server)");
    let dir = node_dir();
    if installed_matches_lock(&dir) {
        println!("node/node_modules matches package-lock.json: no npm ci");
    } else {
        println!("node/node_modules is missing or stale: npm ci");
        succeed(&dir, &["ci", "--no-audit", "--no-fund"]);
    }
    // `npm test` builds first (pretest: transpile the component unless gen/ already holds
    // this exact file, copy the presets), then runs `node --test`.
    let output = succeed(&dir, &["test"]);
    // The node test runner's closing lines (`# tests N`, `# pass N`, ...).
    let summary: Vec<&str> = output
        .lines()
        .filter(|line| line.starts_with("# ") && !line.starts_with("# Subtest"))
        .collect();
    println!("{}", summary.join("\n"));
    for expected in ["# fail 0", "# skipped 0"] {
        assert!(
            output.lines().any(|line| line == expected),
            "no `{expected}` line in npm test's output:\n{output}"
        );
    }
}

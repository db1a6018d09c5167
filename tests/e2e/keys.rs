//! Secrets at rest from the CLI: a store opened with `--key-file` or `CONNECTOR_KEY` holds no
//! client secret or token in clear; it opens with its key only; `keys generate`, `keys seal`
//! and `keys rotate`.

use std::path::Path;

use crate::client_auth::connect_client_credentials;
use crate::connect::{Outcome, cli};
use crate::server::{OidcServer, TempDir};

/// Whether `needle` occurs in `haystack`.
fn contains(haystack: &[u8], needle: &str) -> bool {
    haystack
        .windows(needle.len())
        .any(|window| window == needle.as_bytes())
}

/// The store file and its write-ahead log, as bytes.
fn raw_store(store: &str) -> Vec<u8> {
    let mut raw = std::fs::read(store).unwrap();
    raw.extend(std::fs::read(format!("{store}-wal")).unwrap_or_default());
    raw
}

/// `keys generate --out DIR/NAME`: (its path, the key id printed).
fn generate(dir: &Path, name: &str) -> (String, String) {
    let path = dir.join(name).to_str().unwrap().to_owned();
    let generated = cli(&["keys", "generate", "--out", &path], &[]);
    assert_eq!(generated.code, 0, "{}", generated.err);
    let id = generated.out.trim().to_owned();
    assert_eq!(id.len(), 8, "{}", generated.out);
    // The key itself is not printed.
    let key = std::fs::read_to_string(&path).unwrap();
    assert_eq!(key.trim().len(), 64);
    assert!(!generated.out.contains(key.trim()));
    assert!(!generated.err.contains(key.trim()));
    (path, id)
}

/// `token svc` on `store` with `key_args` and `env`.
fn token(store: &str, key_args: &[&str], env: &[(&str, &str)]) -> Outcome {
    let mut args = vec!["--store", store];
    args.extend_from_slice(key_args);
    args.extend_from_slice(&["token", "svc"]);
    cli(&args, env)
}

/// `connect svc` with client credentials for `service-client`, its secret stored.
fn connect(server: &OidcServer, store: &str, key_args: &[&str]) {
    let mut extra = key_args.to_vec();
    extra.extend_from_slice(&["--client-secret-env", "SECRET", "--scope", "api:read"]);
    let connected = connect_client_credentials(
        store,
        "svc",
        ["--issuer", &server.issuer],
        "service-client",
        &extra,
        &[("SECRET", "service-secret")],
    );
    assert_eq!(connected.code, 0, "{}", connected.err);
}

#[test]
fn a_sealed_store_holds_no_secret_in_clear_and_opens_with_its_key_only() {
    let server = OidcServer::start();
    let dir = TempDir::new("keys-sealed");
    let store = dir.0.join("store.db").to_str().unwrap().to_owned();
    let (key, id) = generate(&dir.0, "key");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::metadata(&key).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
    }
    // An existing file is not overwritten.
    let before = std::fs::read(&key).unwrap();
    let again = cli(&["keys", "generate", "--out", &key], &[]);
    assert_eq!(again.code, 1);
    assert_eq!(std::fs::read(&key).unwrap(), before);
    // --print adds the key as the last line.
    let printed_path = dir.0.join("printed").to_str().unwrap().to_owned();
    let printed = cli(
        &["keys", "generate", "--out", &printed_path, "--print"],
        &[],
    );
    assert_eq!(printed.code, 0, "{}", printed.err);
    assert_eq!(
        printed.out.lines().last().unwrap(),
        std::fs::read_to_string(&printed_path).unwrap().trim()
    );

    connect(&server, &store, &["--key-file", &key]);
    let with_key = token(&store, &["--key-file", &key], &[]);
    assert_eq!(with_key.code, 0, "{}", with_key.err);
    let access = with_key.out.trim().to_owned();
    assert!(!access.is_empty());
    let raw = raw_store(&store);
    assert!(contains(&raw, &format!("sealed:v1:{id}:")));
    for secret in ["service-secret", access.as_str()] {
        assert!(!contains(&raw, secret), "{secret} is in the store in clear");
    }

    // The key from CONNECTOR_KEY works as well.
    let hex = std::fs::read_to_string(&key).unwrap().trim().to_owned();
    let from_env = token(&store, &[], &[("CONNECTOR_KEY", &hex)]);
    assert_eq!(from_env.code, 0, "{}", from_env.err);
    // Without a key: exit 1, naming the key's id, and how to give it.
    let without = token(&store, &[], &[]);
    assert_eq!(without.code, 1);
    assert!(without.out.is_empty());
    assert!(without.err.contains(&id), "{}", without.err);
    assert!(without.err.contains("CONNECTOR_KEY"), "{}", without.err);
    assert!(without.err.contains("--key-file"), "{}", without.err);
    // Another key: exit 1, naming both ids; nothing changed.
    let (other, other_id) = generate(&dir.0, "other");
    let unchanged = std::fs::read(&store).unwrap();
    let wrong = token(&store, &["--key-file", &other], &[]);
    assert_eq!(wrong.code, 1);
    assert!(
        wrong.err.contains(&id) && wrong.err.contains(&other_id),
        "{}",
        wrong.err
    );
    assert_eq!(std::fs::read(&store).unwrap(), unchanged);

    // Rotated to the other key: the old one no longer opens the store.
    let rotated = cli(
        &[
            "--store",
            &store,
            "--key-file",
            &key,
            "keys",
            "rotate",
            "--new-key-file",
            &other,
        ],
        &[],
    );
    assert_eq!(rotated.code, 0, "{}", rotated.err);
    assert_eq!(rotated.out.trim(), "1");
    assert_eq!(token(&store, &["--key-file", &key], &[]).code, 1);
    let after = token(&store, &["--key-file", &other], &[]);
    assert_eq!(after.code, 0, "{}", after.err);
    let raw = raw_store(&store);
    assert!(contains(&raw, &format!("sealed:v1:{other_id}:")));
    assert!(!contains(&raw, &format!("sealed:v1:{id}:")));
    for secret in ["service-secret", access.as_str(), after.out.trim()] {
        assert!(!contains(&raw, secret), "{secret} is in the store in clear");
    }
}

#[test]
fn keys_seal_seals_a_store_kept_in_clear() {
    let server = OidcServer::start();
    let dir = TempDir::new("keys-seal");
    let store = dir.0.join("store.db").to_str().unwrap().to_owned();
    // Opt-in: without a key the CLI keeps the store in clear, as before.
    connect(&server, &store, &[]);
    let clear = token(&store, &[], &[]);
    assert_eq!(clear.code, 0, "{}", clear.err);
    assert!(contains(&raw_store(&store), "service-secret"));

    // Sealing needs a key.
    let no_key = cli(&["--store", &store, "keys", "seal"], &[]);
    assert_eq!(no_key.code, 1);
    let (key, id) = generate(&dir.0, "key");
    let sealed = cli(
        &["--store", &store, "--key-file", &key, "keys", "seal"],
        &[],
    );
    assert_eq!(sealed.code, 0, "{}", sealed.err);
    assert_eq!(sealed.out.trim(), "1");
    let raw = raw_store(&store);
    assert!(contains(&raw, &format!("sealed:v1:{id}:")));
    for secret in ["service-secret", clear.out.trim()] {
        assert!(!contains(&raw, secret), "{secret} is in the store in clear");
    }
    let with_key = token(&store, &["--key-file", &key], &[]);
    assert_eq!(with_key.code, 0, "{}", with_key.err);
    assert_eq!(token(&store, &[], &[]).code, 1);
}

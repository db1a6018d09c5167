//! Local presets through the CLI: `--presets` and `$CONNECTOR_PRESETS` add a vendor without a
//! release (here, the real authorization server), `providers` marks built-in and local ones
//! and searches them, a local preset replaces a built-in one with a warning, and a broken file
//! stops the command with the file and field named.

use connector_host::store::Store;
use serde_json::{Value, json};

use crate::connect::cli;
use crate::server::{OidcServer, TempDir, user_agent};

/// A preset document for the test server's profile, under `id`.
fn server_preset(server: &OidcServer, id: &str, name: &str) -> String {
    let dir = TempDir::new(&format!("profile-{id}"));
    let text = std::fs::read_to_string(server.profile_file(&dir.0, "")).unwrap();
    let mut profile: Value = serde_json::from_str(&text).unwrap();
    profile["id"] = json!(id);
    serde_json::to_string_pretty(&json!({
        "id": id,
        "display-name": name,
        "notes": "The project's test server.",
        "sources": ["https://github.com/panva/node-oidc-provider"],
        "profile": profile,
    }))
    .unwrap()
}

#[test]
fn a_local_preset_connects_is_listed_as_local_and_replaces_a_built_in_one_with_a_warning() {
    let (server, dir) = (OidcServer::start(), TempDir::new("local-presets"));
    let presets = dir.0.join("presets");
    std::fs::create_dir_all(&presets).unwrap();
    std::fs::write(
        presets.join("test-server.json"),
        server_preset(&server, "test-server", "Test Server"),
    )
    .unwrap();
    std::fs::write(
        presets.join("github.json"),
        server_preset(&server, "github", "GitHub (test double)"),
    )
    .unwrap();
    let presets_dir = presets.to_str().unwrap();
    let local = |file: &str| presets.join(file).display().to_string();

    // The listing: built-in and local side by side, in id order.
    let listed = cli(&["--presets", presets_dir, "providers"], &[]);
    assert_eq!(listed.code, 0, "{}", listed.err);
    assert_eq!(
        listed.err,
        format!(
            "warning: the preset `github` in {} replaces the built-in one\n",
            local("github.json")
        )
    );
    let lines: Vec<&str> = listed.out.lines().collect();
    assert!(lines.len() >= 101, "{}", listed.out);
    assert!(
        lines.contains(&"gitlab\tGitLab\tbuilt-in\t"),
        "{}",
        listed.out
    );
    assert!(
        lines.contains(
            &format!(
                "github\tGitHub (test double)\tlocal {}\t",
                local("github.json")
            )
            .as_str()
        ),
        "{}",
        listed.out
    );
    assert!(
        lines.contains(&"zendesk\tZendesk\tbuilt-in\tneeds --var subdomain=..."),
        "{}",
        listed.out
    );

    // The same through the environment, searched, as JSON.
    let found = cli(
        &["providers", "--search", "TEST serv", "--json"],
        &[("CONNECTOR_PRESETS", presets_dir)],
    );
    assert_eq!(found.code, 0, "{}", found.err);
    let found: Value = serde_json::from_str(&found.out).unwrap();
    assert_eq!(
        found,
        json!([{
            "id": "test-server",
            "display_name": "Test Server",
            "origin": "local",
            "path": local("test-server.json"),
            "variables": [],
            "domains": [],
            "notes": "The project's test server.",
            "sources": ["https://github.com/panva/node-oidc-provider"],
        }])
    );
    let built_in: Value =
        serde_json::from_str(&cli(&["providers", "--search", "gitlab", "--json"], &[]).out)
            .unwrap();
    assert_eq!(built_in[0]["origin"], "built-in");
    assert_eq!(built_in[0]["path"], Value::Null);
    assert_eq!(built_in[0]["domains"], json!(["gitlab.com"]));

    // A sign-in through the local preset, against the real server.
    let store = dir.0.join("store.db");
    let browser = user_agent("");
    let connected = cli(
        &[
            "--store",
            store.to_str().unwrap(),
            "connect",
            "conn",
            "--provider",
            "test-server",
            "--client-id",
            "basic-client",
            "--client-secret-env",
            "CLIENT_SECRET",
            "--redirect-uri",
            "http://127.0.0.1:0/callback",
            "--browser",
            &browser,
            "--timeout",
            "60",
        ],
        &[
            ("CLIENT_SECRET", "basic-secret"),
            ("CONNECTOR_PRESETS", presets_dir),
        ],
    );
    assert_eq!(connected.code, 0, "{}", connected.err);
    let stored = Store::open(&store).unwrap().get("conn").unwrap();
    assert_eq!(stored.config.profile.id, "test-server");
    assert_eq!(
        stored.config.profile.token_url,
        format!("{}/token", server.issuer)
    );
    assert!(stored.tokens.refresh_token.is_some() || stored.tokens.expires_at.is_some());

    // `show-provider --json` prints the document itself, ready to be copied and edited.
    let shown = cli(
        &[
            "--presets",
            presets_dir,
            "show-provider",
            "test-server",
            "--json",
        ],
        &[],
    );
    assert_eq!(shown.code, 0, "{}", shown.err);
    let document: Value = serde_json::from_str(&shown.out).unwrap();
    let written: Value =
        serde_json::from_str(&server_preset(&server, "test-server", "Test Server")).unwrap();
    assert_eq!(
        document["profile"]["token-url"],
        written["profile"]["token-url"]
    );
    assert_eq!(document["display-name"], "Test Server");
    assert_eq!(document["domains"], json!([]));
}

#[test]
fn a_broken_local_preset_stops_the_command_with_its_file_and_field() {
    let dir = TempDir::new("broken-presets");
    let file = dir.0.join("acme.json");
    std::fs::write(
        &file,
        r#"{"id": "acme", "display-name": "Acme", "profile": {"id": "acme", "token-url": "ftp://acme.example/token"}}"#,
    )
    .unwrap();
    let outcome = cli(&["--presets", file.to_str().unwrap(), "providers"], &[]);
    assert_eq!(
        (outcome.code, outcome.out.as_str(), outcome.err.as_str()),
        (
            1,
            "",
            format!(
                "error: {}: `profile.token-url`: `token-url` is not an absolute http(s) URL\n",
                file.display()
            )
            .as_str()
        )
    );
    // A connect naming a preset does not go ahead either.
    let store = dir.0.join("store.db");
    let outcome = cli(
        &[
            "--store",
            store.to_str().unwrap(),
            "connect",
            "x",
            "--provider",
            "github",
            "--client-id",
            "c",
        ],
        &[("CONNECTOR_PRESETS", file.to_str().unwrap())],
    );
    assert_eq!(outcome.code, 1, "{}", outcome.err);
    assert!(
        outcome.err.contains("acme.json: `profile.token-url`"),
        "{}",
        outcome.err
    );
}

#[test]
fn the_service_offers_its_local_presets_to_integrations() {
    use connector_host::types::HttpMethod;

    use crate::service::{add_tenant, server_with, start_sealed};

    let server = server_with(&[]);
    let dir = TempDir::new("serve-presets");
    let presets = dir.0.join("test-server.json");
    std::fs::write(
        &presets,
        server_preset(&server, "test-server", "Test Server"),
    )
    .unwrap();
    let store = dir.0.join("store.db").to_str().unwrap().to_owned();
    let acme = add_tenant(&store, "acme");
    let (service, _, _) = start_sealed(&dir.0, &store, &["--presets", presets.to_str().unwrap()]);

    // The catalogue, for a platform's "add an integration" screen.
    let (status, listed) = service.api(HttpMethod::Get, "/v1/providers", &acme, None);
    assert_eq!(status, 200);
    let providers = listed["providers"].as_array().unwrap();
    assert!(providers.len() >= 101, "{}", providers.len());
    assert!(
        providers
            .iter()
            .any(|p| p["id"] == "zendesk" && p["variables"] == json!(["subdomain"]))
    );
    let (status, found) = service.api(
        HttpMethod::Get,
        "/v1/providers?search=TEST%20server",
        &acme,
        None,
    );
    assert_eq!(status, 200);
    assert_eq!(
        found,
        json!({"providers": [{
            "id": "test-server",
            "display_name": "Test Server",
            "origin": "local",
            "path": presets.display().to_string(),
            "variables": [],
            "domains": [],
            "notes": "The project's test server.",
            "sources": ["https://github.com/panva/node-oidc-provider"],
        }]})
    );
    let (status, document) = service.api(HttpMethod::Get, "/v1/providers/test-server", &acme, None);
    assert_eq!(status, 200);
    assert_eq!(
        document,
        serde_json::from_str::<Value>(&server_preset(&server, "test-server", "Test Server"))
            .map(|mut written| {
                written["domains"] = json!([]);
                written
            })
            .unwrap()
    );
    let (status, missing) = service.api(HttpMethod::Get, "/v1/providers/nope", &acme, None);
    assert_eq!(
        (status, &missing["error"]["code"]),
        (404, &json!("not_found"))
    );
    let (status, _) = service.api(HttpMethod::Get, "/v1/providers?limit=1", &acme, None);
    assert_eq!(status, 400);

    let (status, integration) = service.api(
        HttpMethod::Post,
        "/v1/integrations",
        &acme,
        Some(
            json!({"id": "local", "provider": "test-server", "client_id": "basic-client",
                    "client_secret": "basic-secret"}),
        ),
    );
    assert_eq!(status, 201, "{integration}");
    assert_eq!(
        (
            &integration["source"],
            &integration["provider"],
            &integration["issuer"]
        ),
        (
            &json!("provider"),
            &json!("test-server"),
            &json!(server.issuer)
        )
    );
    let (status, refused) = service.api(
        HttpMethod::Post,
        "/v1/integrations",
        &acme,
        Some(json!({"id": "other", "provider": "no-such-vendor", "client_id": "c"})),
    );
    assert_eq!(status, 400, "{refused}");
    assert_eq!(refused["error"]["code"], "invalid_request");
    assert!(
        refused["error"]["message"]
            .as_str()
            .unwrap()
            .contains("no preset named `no-such-vendor`"),
        "{refused}"
    );
}

//! The vendor presets' profiles, checked natively: every `presets/*.json` document's
//! `profile` parses, validates and builds exactly the authorize URL recorded in
//! `presets.snap`. The catalogue itself is data the host ships beside the component (since
//! 0.4.0); the host checks the rest of each document (`host-example/src/presets.rs`).

use crate::prelude::*;

use crate::authorize::{BeginRandom, begin};
use crate::error::ConfigError;
use crate::profile::{Client, ConnectionConfig, KeyValue, ProviderProfile, TokenRequestExtras};

const SNAPSHOT: &str = include_str!("presets.snap");

/// A preset document's id and profile.
struct Preset {
    id: String,
    profile: ProviderProfile,
}

/// Every `presets/*.json` document, by file name.
fn all() -> Vec<Preset> {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/presets");
    let mut paths: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "json"))
        .collect();
    paths.sort();
    paths
        .iter()
        .map(|path| {
            let text = std::fs::read_to_string(path).unwrap();
            let document: serde_json::Value =
                serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            let json = document["profile"].to_string();
            let profile = ProviderProfile::from_json(&json)
                .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            // The format's reference, serde's derived deserialiser, reads it the same way.
            let derived: ProviderProfile = serde_json::from_str(&json).unwrap();
            assert_eq!(derived, profile, "{}", path.display());
            Preset {
                id: document["id"].as_str().unwrap().to_owned(),
                profile,
            }
        })
        .collect()
}

fn get(id: &str) -> Preset {
    all().into_iter().find(|preset| preset.id == id).unwrap()
}

mod tests {
    use super::*;

    fn variables(preset: &Preset) -> Vec<KeyValue> {
        preset
            .profile
            .variables
            .iter()
            .map(|name| match name.as_str() {
                "base-url" => KeyValue::new(name, "https://sso.example.com"),
                "domain" => KeyValue::new(name, "example.okta.com"),
                _ => KeyValue::new(name, "contoso"),
            })
            .collect()
    }

    /// Every preset's profile parses, validates and gives exactly the authorize URL in
    /// `presets.snap` (with and without offline access).
    #[test]
    fn every_preset_loads_validates_and_builds_its_authorize_url() {
        let presets = all();
        assert!(presets.len() >= 100, "{} presets", presets.len());
        let random = BeginRandom {
            state: [7; 32],
            verifier: [9; 32],
        };
        let mut lines = vec![];
        for preset in &presets {
            assert_eq!(preset.id, preset.profile.id);
            preset
                .profile
                .validate()
                .unwrap_or_else(|e| panic!("{}: {e}", preset.id));
            for offline_access in [false, true] {
                let config = ConnectionConfig {
                    profile: preset.profile.clone(),
                    client: Client {
                        client_id: "client-123".into(),
                        client_secret: None,
                        auth_method: None,
                    },
                    redirect_uri: Some("https://app.example.com/oauth/callback".into()),
                    scopes: vec![],
                    authorize_params: vec![],
                    token_requests: TokenRequestExtras::default(),
                    variables: variables(preset),
                    offline_access,
                    resources: vec![],
                    dpop: false,
                };
                let prepared = config
                    .prepare()
                    .unwrap_or_else(|e| panic!("{}: {e}", preset.id));
                let url = begin(&prepared, 0, &random, None).unwrap().url;
                lines.push(format!("{} offline={offline_access} {url}", preset.id));
            }
        }
        let actual = lines.join("\n") + "\n";
        if std::env::var_os("UPDATE_SNAPSHOTS").is_some() {
            std::fs::write(
                concat!(env!("CARGO_MANIFEST_DIR"), "/src/presets.snap"),
                &actual,
            )
            .unwrap();
        } else {
            assert_eq!(
                actual, SNAPSHOT,
                "run with UPDATE_SNAPSHOTS=1 and review the diff"
            );
        }
    }

    #[test]
    fn placeholders_are_required_and_constrained() {
        let okta = get("okta").profile;
        assert_eq!(
            okta.resolve(&[]).unwrap_err(),
            ConfigError::MissingVariable("domain".into())
        );
        for bad in [
            "evil.com/x",
            "a?b",
            "a#b",
            "user@host",
            "",
            ".",
            "..",
            "a..b",
        ] {
            assert_eq!(
                okta.resolve(&[KeyValue::new("domain", bad)]).unwrap_err(),
                ConfigError::InvalidVariable("domain".into()),
                "{bad}"
            );
        }
        let resolved = okta
            .resolve(&[KeyValue::new("domain", "dev-1.okta.com")])
            .unwrap();
        assert_eq!(
            resolved.token_url,
            "https://dev-1.okta.com/oauth2/default/v1/token"
        );
        assert_eq!(
            resolved.issuer.as_deref(),
            Some("https://dev-1.okta.com/oauth2/default")
        );

        let keycloak = get("keycloak").profile;
        let vars = |base: &str| {
            vec![
                KeyValue::new("base-url", base),
                KeyValue::new("realm", "acme"),
            ]
        };
        assert_eq!(
            keycloak
                .resolve(&vars("https://sso.example.com/"))
                .unwrap()
                .authorize_url
                .as_deref(),
            Some("https://sso.example.com/realms/acme/protocol/openid-connect/auth")
        );
        assert_eq!(
            keycloak
                .resolve(&vars("https://sso.example.com/auth"))
                .unwrap()
                .token_url,
            "https://sso.example.com/auth/realms/acme/protocol/openid-connect/token"
        );
        for bad in [
            "sso.example.com",
            "https://sso.example.com/?x=1",
            "javascript:alert(1)",
        ] {
            assert_eq!(
                keycloak.resolve(&vars(bad)).unwrap_err(),
                ConfigError::InvalidVariable("base-url".into()),
                "{bad}"
            );
        }
        // A base URL over plain HTTP off loopback is refused by validation after filling.
        let mut config = ConnectionConfig {
            profile: keycloak,
            client: Client {
                client_id: "c".into(),
                client_secret: None,
                auth_method: None,
            },
            redirect_uri: None,
            scopes: vec![],
            authorize_params: vec![],
            token_requests: TokenRequestExtras::default(),
            variables: vars("http://sso.example.com"),
            offline_access: false,
            resources: vec![],
            dpop: false,
        };
        assert_eq!(
            config.prepare().unwrap_err(),
            ConfigError::InsecureUrl("token-url".into())
        );
        config.variables = vars("http://127.0.0.1:8080");
        assert!(config.prepare().is_ok());
    }
}

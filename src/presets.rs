//! Built-in provider profiles for well-known vendors, as data (`presets.json`), each with the
//! documentation its facts were checked against.

use crate::prelude::*;

use serde::Deserialize;

use crate::error::{ConfigError, Error};
use crate::profile::ProviderProfile;

const PRESETS_JSON: &str = include_str!("presets.json");

/// One preset: a profile and what a user should know about it.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct Preset {
    /// The name to ask for.
    pub id: String,
    /// The vendor's name.
    pub display_name: String,
    /// Behaviour worth knowing, and what could not be verified.
    pub notes: String,
    /// The documentation consulted.
    pub sources: Vec<String>,
    /// The profile (placeholders unresolved).
    pub profile: ProviderProfile,
}

/// Every preset, in catalogue order.
pub fn all() -> Result<Vec<Preset>, Error> {
    serde_json::from_str(PRESETS_JSON)
        .map_err(|error| Error::Configuration(ConfigError::InvalidProfile(error.to_string())))
}

/// One preset by id.
pub fn get(id: &str) -> Result<Preset, Error> {
    all()?
        .into_iter()
        .find(|preset| preset.id == id)
        .ok_or_else(|| ConfigError::UnknownPreset(id.to_owned()).into())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::authorize::{BeginRandom, begin};
    use crate::profile::{Client, ConnectionConfig, KeyValue, TokenRequestExtras};

    const SNAPSHOT: &str = include_str!("presets.snap");

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

    /// Every preset parses, validates, names its placeholders, has notes and sources, and
    /// gives exactly the authorize URL in `presets.snap` (with and without offline access).
    #[test]
    fn every_preset_loads_validates_and_builds_its_authorize_url() {
        let presets = all().unwrap();
        assert!(presets.len() >= 25, "{} presets", presets.len());
        let random = BeginRandom {
            state: [7; 32],
            verifier: [9; 32],
        };
        let mut lines = vec![];
        for preset in &presets {
            assert_eq!(preset.id, preset.profile.id);
            assert!(
                !preset.notes.is_empty() && !preset.sources.is_empty(),
                "{}",
                preset.id
            );
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
    fn unknown_preset_is_typed() {
        assert_eq!(
            get("nope").unwrap_err(),
            Error::Configuration(ConfigError::UnknownPreset("nope".into()))
        );
        assert_eq!(get("github").unwrap().display_name, "GitHub");
    }

    #[test]
    fn placeholders_are_required_and_constrained() {
        let okta = get("okta").unwrap().profile;
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

        let keycloak = get("keycloak").unwrap().profile;
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

//! Reading records that earlier versions stored: one upgrade, applied when a record is read,
//! for every place that keeps the component's records as JSON.
//!
//! Configurations (and the profiles inside them) are stored as serde JSON of the generated
//! WIT records, which cannot carry `#[serde(default)]`. A member a later contract added
//! deserializes as `None` when it is an `option`, but a `bool`, `list` or record member
//! that is missing fails the whole record. Rather than a schema migration per store and per
//! table, the JSON is upgraded as it is read, by one function used by the SQLite and
//! PostgreSQL stores alike, by the service's integrations, and by anything else that reads
//! a stored configuration:
//! - it works on sealed columns too (a migration in SQL cannot open them), and on
//!   PostgreSQL databases, whose schema has no migration chain;
//! - no schema version changes, so a store upgraded this way still opens with the previous
//!   release (serde ignores the members it does not know);
//! - a record in the current shape deserializes directly; only an older one pays for the
//!   upgrade, and it is written in the current shape the next time it is saved.
//!
//! Each contract's additions are filled with the defaults the JSON profile format and the
//! WIT document: 0.2.0's `assertion-audience` (`token-url`); 0.3.0's
//! `requires-pushed-authorization-requests` (false), `dpop-algorithms` (none), the
//! `token-exchange`, `jwt-bearer` and `pushed-authorization` request extras (none), and the
//! configuration's `resources` (none) and `dpop` (false); 0.4.0's `refresh-redirect-uri`
//! (false). Members already present are never changed.

use serde_json::{Map, Value};

use crate::types::ConnectionConfig;

/// A stored connection configuration, in the current shape or any earlier one.
pub fn config_from_json(text: &str) -> Result<ConnectionConfig, serde_json::Error> {
    match serde_json::from_str(text) {
        Ok(config) => Ok(config),
        Err(error) => {
            let mut value: Value = serde_json::from_str(text)?;
            if !upgrade_config(&mut value) {
                return Err(error);
            }
            serde_json::from_value(value)
        }
    }
}

/// Fills the members later contracts added to a configuration (and its profile) that
/// `value` lacks; returns whether anything was added.
pub fn upgrade_config(value: &mut Value) -> bool {
    let Some(config) = value.as_object_mut() else {
        return false;
    };
    let mut changed = false;
    if let Some(profile) = config.get_mut("profile") {
        changed |= upgrade_profile(profile);
    }
    if let Some(extras) = config.get_mut("token_requests") {
        changed |= upgrade_token_extras(extras);
    }
    changed |= fill(config, "resources", Value::Array(vec![]));
    changed |= fill(config, "dpop", Value::Bool(false));
    changed
}

/// Fills the members later contracts added to a provider profile that `value` lacks;
/// returns whether anything was added.
pub fn upgrade_profile(value: &mut Value) -> bool {
    let Some(profile) = value.as_object_mut() else {
        return false;
    };
    let mut changed = false;
    // 0.2.0.
    changed |= fill(profile, "assertion_audience", Value::from("TokenUrl"));
    // 0.3.0.
    changed |= fill(
        profile,
        "requires_pushed_authorization_requests",
        Value::Bool(false),
    );
    changed |= fill(profile, "dpop_algorithms", Value::Array(vec![]));
    // 0.4.0 (`client_id_parameter` is an option: absent reads as none).
    changed |= fill(profile, "refresh_redirect_uri", Value::Bool(false));
    if let Some(extras) = profile.get_mut("token_requests") {
        changed |= upgrade_token_extras(extras);
    }
    changed
}

/// Fills the kinds of token request later contracts added to `token-request-extras`.
fn upgrade_token_extras(value: &mut Value) -> bool {
    let Some(extras) = value.as_object_mut() else {
        return false;
    };
    let mut changed = false;
    for kind in ["token_exchange", "jwt_bearer", "pushed_authorization"] {
        changed |= fill(
            extras,
            kind,
            serde_json::json!({"params": [], "headers": []}),
        );
    }
    changed
}

/// Inserts `default` as `member` when `object` has no such member.
fn fill(object: &mut Map<String, Value>, member: &str, default: Value) -> bool {
    if object.contains_key(member) {
        return false;
    }
    object.insert(member.to_owned(), default);
    true
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A configuration exactly as 0.2.0 stored it (`connect` with a discovered profile).
    pub(crate) const CONFIG_0_2_0: &str = r#"{"profile":{"id":"issuer","issuer":"https://login.example.com","authorize_url":"https://login.example.com/authorize","token_url":"https://login.example.com/token","refresh_url":null,"revocation_url":"https://login.example.com/revoke","introspection_url":null,"device_authorization_url":null,"api_base_url":null,"userinfo_url":"https://login.example.com/me","variables":[],"scope_separator":" ","default_scopes":[],"pkce":"S256","client_auth":"ClientSecretBasic","assertion_audience":"Issuer","requires_iss":true,"authorize_params":[],"token_requests":{"code_exchange":{"params":[],"headers":[]},"refresh":{"params":[{"name":"a","value":"b"}],"headers":[]},"client_credentials":{"params":[],"headers":[]},"device":{"params":[],"headers":[]}},"token_request_format":"Form","offline_access":{"scopes":["offline_access"],"authorize_params":[]},"token_response":{"path":[],"success_flag":null,"default_expires_in":null},"token_placement":"AuthorizationHeader","token_rejection":{"statuses":[],"body_markers":[]}},"client":{"client_id":"app","client_secret":null,"auth_method":"ClientSecretPost"},"redirect_uri":"http://127.0.0.1:8765/callback","scopes":["openid"],"authorize_params":[],"token_requests":{"code_exchange":{"params":[],"headers":[]},"refresh":{"params":[],"headers":[]},"client_credentials":{"params":[],"headers":[]},"device":{"params":[],"headers":[]}},"variables":[],"offline_access":true}"#;

    #[test]
    fn a_0_2_0_configuration_reads_with_the_0_3_0_defaults() {
        assert!(serde_json::from_str::<ConnectionConfig>(CONFIG_0_2_0).is_err());
        let config = config_from_json(CONFIG_0_2_0).unwrap();
        let profile = &config.profile;
        assert_eq!(profile.pushed_authorization_request_url, None);
        assert!(!profile.requires_pushed_authorization_requests);
        assert_eq!(profile.registration_url, None);
        assert_eq!(profile.dpop_algorithms, vec![]);
        assert_eq!(config.resources, Vec::<String>::new());
        assert!(!config.dpop);
        for extras in [&profile.token_requests, &config.token_requests] {
            for added in [
                &extras.token_exchange,
                &extras.jwt_bearer,
                &extras.pushed_authorization,
            ] {
                assert_eq!(*added, crate::no_extras());
            }
        }
        // What was stored is kept as it was.
        assert_eq!(
            profile.assertion_audience,
            crate::types::AssertionAudience::Issuer
        );
        assert_eq!(profile.token_requests.refresh.params[0].name, "a");
        assert_eq!(
            config.client.auth_method,
            Some(crate::types::ClientAuthMethod::ClientSecretPost)
        );
        assert!(config.offline_access);
        assert_eq!(
            config.redirect_uri.as_deref(),
            Some("http://127.0.0.1:8765/callback")
        );
        // Written again, it is in the current shape and reads directly.
        let rewritten = serde_json::to_string(&config).unwrap();
        assert_eq!(
            serde_json::from_str::<ConnectionConfig>(&rewritten).unwrap(),
            config
        );
    }

    #[test]
    fn a_0_1_0_profile_gets_the_0_2_0_assertion_audience_too() {
        let mut value: Value = serde_json::from_str(CONFIG_0_2_0).unwrap();
        value["profile"]
            .as_object_mut()
            .unwrap()
            .remove("assertion_audience");
        let config = config_from_json(&value.to_string()).unwrap();
        assert_eq!(
            config.profile.assertion_audience,
            crate::types::AssertionAudience::TokenUrl
        );
    }

    #[test]
    fn a_current_configuration_is_untouched_and_garbage_stays_an_error() {
        let config = crate::config_with_defaults(
            crate::profile_with_defaults("p", "https://example.com/token"),
            "c",
        );
        let mut value = serde_json::to_value(&config).unwrap();
        assert!(!upgrade_config(&mut value));
        assert_eq!(
            config_from_json(&serde_json::to_string(&config).unwrap()).unwrap(),
            config
        );
        assert!(config_from_json("not json").is_err());
        assert!(config_from_json(r#"{"profile": 1}"#).is_err());
        assert!(config_from_json("[]").is_err());
    }
}

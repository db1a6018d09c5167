//! Property tests of the core's encoders and parsers (natively; the same code runs in the
//! component): form encoding round-trips, Basic credentials for any strings, scope joining
//! and splitting, and authorize URLs that never drop or duplicate a parameter.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use oauth_connector::authorize::{BeginRandom, RESERVED_AUTHORIZE_PARAMS, begin};
use oauth_connector::form;
use oauth_connector::profile::{Client, ConnectionConfig, KeyValue, ProviderProfile};
use oauth_connector::token::split_scopes;
use proptest::prelude::*;
use url::form_urlencoded;

fn any_text() -> impl Strategy<Value = String> {
    // Any Unicode, including the characters form encoding must escape.
    proptest::string::string_regex("(.|[+:&%/= ])*").unwrap()
}

proptest! {
    #[test]
    fn form_encoding_round_trips(pairs in proptest::collection::vec((any_text(), any_text()), 0..8)) {
        let pairs: Vec<KeyValue> = pairs.into_iter().map(|(n, v)| KeyValue::new(n, v)).collect();
        let encoded = form::encode(&pairs);
        prop_assert_eq!(form::decode(encoded.as_bytes()), pairs);
    }

    #[test]
    fn basic_credentials_decode_to_the_original_strings(id in any_text(), secret in any_text()) {
        let header = form::basic_authorization(&id, &secret);
        let encoded = header.strip_prefix("Basic ").unwrap();
        let decoded = String::from_utf8(STANDARD.decode(encoded).unwrap()).unwrap();
        // The form-encoded id holds no `:`, so the first `:` separates the two (RFC 6749 §2.3.1).
        let (raw_id, raw_secret) = decoded.split_once(':').unwrap();
        let decode = |text: &str| {
            form_urlencoded::parse(format!("x={text}").as_bytes())
                .next()
                .map(|(_, value)| value.into_owned())
                .unwrap_or_default()
        };
        prop_assert_eq!(decode(raw_id), id);
        prop_assert_eq!(decode(raw_secret), secret);
    }

    #[test]
    fn scopes_split_back_after_joining(
        scopes in proptest::collection::vec("[A-Za-z0-9:._/-]{1,12}", 0..6),
        comma in any::<bool>(),
    ) {
        let joined = scopes.join(if comma { "," } else { " " });
        prop_assert_eq!(split_scopes(&joined), scopes);
    }

    #[test]
    fn authorize_urls_never_drop_or_duplicate_parameters(
        existing in proptest::collection::btree_map("[a-z]{1,6}", any_text(), 0..3),
        extras in proptest::collection::btree_map("[a-z]{1,6}", any_text(), 0..4),
        scopes in proptest::collection::vec("[a-z:.]{1,8}", 0..4),
    ) {
        let reserved = |name: &str| RESERVED_AUTHORIZE_PARAMS.contains(&name);
        let existing: Vec<(String, String)> =
            existing.into_iter().filter(|(n, _)| !reserved(n)).collect();
        let extras: Vec<KeyValue> = extras
            .into_iter()
            .filter(|(n, _)| !reserved(n) && !existing.iter().any(|(e, _)| e == n))
            .map(|(n, v)| KeyValue::new(n, v))
            .collect();
        let mut authorize = url::Url::parse("https://auth.example.com/authorize").unwrap();
        authorize.query_pairs_mut().extend_pairs(&existing);
        let profile = ProviderProfile::from_json(&format!(
            r#"{{"authorize-url": {}, "token-url": "https://auth.example.com/token"}}"#,
            serde_json::Value::from(authorize.as_str())
        ))
        .unwrap();
        let config = ConnectionConfig {
            profile,
            client: Client { client_id: "id".into(), client_secret: None, auth_method: None },
            redirect_uri: Some("http://127.0.0.1:8765/cb".into()),
            scopes: scopes.clone(),
            authorize_params: extras.clone(),
            token_requests: Default::default(),
            variables: vec![],
            offline_access: false,
            resources: vec![],
            dpop: false,
        };
        let random = BeginRandom { state: [1; 32], verifier: [2; 32] };
        let url = url::Url::parse(&begin(&config.prepare().unwrap(), 0, &random, None).unwrap().url).unwrap();
        let pairs: Vec<(String, String)> = url.query_pairs().into_owned().collect();
        let count = |name: &str| pairs.iter().filter(|(n, _)| n == name).count();
        let value = |name: &str| pairs.iter().find(|(n, _)| n == name).map(|(_, v)| v.clone());
        for (name, v) in &existing {
            prop_assert_eq!(count(name), 1);
            prop_assert_eq!(value(name), Some(v.clone()));
        }
        for extra in &extras {
            prop_assert_eq!(count(&extra.name), 1);
            prop_assert_eq!(value(&extra.name), Some(extra.value.clone()));
        }
        for name in ["response_type", "client_id", "redirect_uri", "state", "code_challenge", "code_challenge_method"] {
            prop_assert_eq!(count(name), 1, "{}", name);
        }
        prop_assert_eq!(count("scope"), usize::from(!scopes.is_empty()));
        prop_assert_eq!(pairs.len(), existing.len() + extras.len() + 6 + usize::from(!scopes.is_empty()));
    }
}

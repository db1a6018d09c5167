//! Provider profiles: `ProviderProfile::from_json`, `validate`, `resolve` with arbitrary
//! variables, `ConnectionConfig::prepare`, and `profile::fill` with arbitrary templates.
//!
//! Input: UTF-8 text in up to three sections separated by lines `%%`: a JSON profile; the
//! connection's variables, one `name=value` a line; URL templates for `fill`, one a line.
#![no_main]

use fuzz_support::{CLIENT_SECRET, check_error, split_section};
use libfuzzer_sys::fuzz_target;
use oauth_connector::endpoint::parse_url;
use oauth_connector::error::{ConfigError, Error};
use oauth_connector::profile::{self, Client, ConnectionConfig, KeyValue, ProviderProfile};
use oauth_connector::secret::Secret;
use url::Url;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let (json, rest) = split_section(&text, "%%");
    let (variables, templates) = split_section(rest, "%%");
    let variables: Vec<KeyValue> = variables
        .lines()
        .filter(|line| !line.is_empty())
        .map(|line| {
            let (name, value) = line.split_once('=').unwrap_or((line, ""));
            KeyValue::new(name, value)
        })
        .collect();

    // The configuration's secret never appears in a configuration error (a parse error may
    // quote the input, so only when the input does not hold it).
    let secrets: &[&str] = if text.contains(CLIENT_SECRET) {
        &[]
    } else {
        &[CLIENT_SECRET]
    };
    let parsed = serde_json::from_str::<ProviderProfile>(json);
    let profile = ProviderProfile::from_json(json);
    match (&parsed, &profile) {
        (Ok(parsed), Ok(profile)) => {
            assert_eq!(parsed, profile);
            assert_eq!(
                profile.validate(),
                Ok(()),
                "from_json accepted an invalid profile"
            );
        }
        (Ok(parsed), Err(error)) => {
            // A profile that deserialises is refused only by `validate`.
            assert_eq!(Err(error.clone()), parsed.validate().map_err(Error::from));
        }
        (Err(_), Err(Error::Configuration(ConfigError::InvalidProfile(_)))) => {}
        (Err(_), other) => panic!("unparseable JSON gave {other:?}"),
    }
    if let Err(error) = &profile {
        check_error(error, secrets);
    }

    let declared: Vec<String> = match &parsed {
        Ok(profile) => profile.variables.clone(),
        Err(_) => variables.iter().map(|kv| kv.name.clone()).collect(),
    };
    for template in templates.lines() {
        check_fill(template, &declared, &variables);
    }

    // Resolve and prepare whatever deserialises, valid or not: the host may hand the
    // component any profile.
    let Ok(profile) = parsed else {
        return;
    };
    if let Ok(resolved) = profile.resolve(&variables) {
        // Only URL fields change.
        let mut restored = resolved.clone();
        restored.issuer.clone_from(&profile.issuer);
        restored.authorize_url.clone_from(&profile.authorize_url);
        restored.token_url.clone_from(&profile.token_url);
        restored.refresh_url.clone_from(&profile.refresh_url);
        restored.revocation_url.clone_from(&profile.revocation_url);
        restored
            .introspection_url
            .clone_from(&profile.introspection_url);
        restored
            .device_authorization_url
            .clone_from(&profile.device_authorization_url);
        restored.api_base_url.clone_from(&profile.api_base_url);
        restored.userinfo_url.clone_from(&profile.userinfo_url);
        assert_eq!(restored, profile, "resolve changed more than URLs");
    }
    for offline_access in [false, true] {
        let config = ConnectionConfig {
            profile: profile.clone(),
            client: Client {
                client_id: "client".into(),
                client_secret: Some(Secret::new(CLIENT_SECRET)),
                auth_method: None,
            },
            redirect_uri: Some("http://127.0.0.1:8765/callback".into()),
            scopes: vec![],
            authorize_params: vec![],
            token_requests: Default::default(),
            variables: variables.clone(),
            offline_access,
            resources: vec![],
            dpop: false,
        };
        match config.prepare() {
            Ok(prepared) => {
                // The flows take a `Prepared` and do not validate its profile again: a
                // configuration that prepares must pass validation.
                assert_eq!(
                    prepared.profile.validate(),
                    Ok(()),
                    "prepared profile refused: {:?}",
                    prepared.profile
                );
                assert_eq!(prepared.resolved_profile().err(), None);
                if offline_access {
                    for scope in &profile.offline_access.scopes {
                        assert!(prepared.effective_scopes().contains(scope));
                    }
                }
            }
            Err(error) => check_error(&Error::Configuration(error), secrets),
        }
    }
});

/// `fill` on one template, with the connection's values and with stand-ins.
fn check_fill(template: &str, declared: &[String], variables: &[KeyValue]) {
    let value = |name: &str| {
        variables
            .iter()
            .find(|kv| kv.name == name)
            .map(|kv| kv.value.clone())
    };
    let filled = profile::fill("api-base-url", template, declared, value);
    if !template.contains('{') {
        assert_eq!(
            filled.as_deref(),
            Ok(template),
            "a template without placeholders changed"
        );
    }
    let out = match filled {
        Ok(out) => out,
        Err(ConfigError::MissingVariable(name) | ConfigError::InvalidVariable(name)) => {
            assert!(declared.contains(&name), "undeclared `{name}` reported");
            assert!(
                template.contains(&format!("{{{name}}}")),
                "`{name}` not in the template"
            );
            return;
        }
        Err(ConfigError::InvalidValue(field)) => {
            assert_eq!(field, "api-base-url");
            return;
        }
        Err(other) => panic!("fill: {other:?}"),
    };
    // A value away from the start holds no URL syntax: with the real values and with `x` for
    // every variable, the URL has the same shape, and the same host when no placeholder is in
    // the authority. (Templates that fix the scheme and escape nothing; a `%` in the template
    // could pair with a value into an escape.)
    let Some(after_scheme) = template
        .strip_prefix("https://")
        .or_else(|| template.strip_prefix("http://"))
    else {
        return;
    };
    if template.contains('%') {
        return;
    }
    let Ok(sample) = profile::fill("api-base-url", template, declared, |_| Some("x".into())) else {
        return;
    };
    // Parsed as the core parses URLs (a non-ASCII host is refused before the URL parser).
    let (Some(real), Some(sample)) = (parse_url(&out), parse_url(&sample)) else {
        return;
    };
    let shape = |url: &Url| {
        (
            url.scheme().to_owned(),
            url.username().is_empty(),
            url.password().is_none(),
            url.path_segments().map(Iterator::count),
            url.query_pairs().count(),
            url.query().is_some(),
            url.fragment().is_some(),
        )
    };
    assert_eq!(shape(&real), shape(&sample), "{template} -> {out}");
    // The URL parser drops tabs and newlines anywhere, and special schemes skip any number of
    // slashes and backslashes before the authority.
    let after_scheme: String = after_scheme
        .chars()
        .filter(|c| !matches!(c, '\t' | '\n' | '\r'))
        .collect();
    let authority = after_scheme
        .trim_start_matches(['/', '\\'])
        .split(['/', '?', '#', '\\'])
        .next()
        .unwrap_or_default();
    if !authority.contains('{') {
        assert_eq!(
            real.host_str(),
            sample.host_str(),
            "{template} -> {out}: host changed"
        );
        assert_eq!(
            real.port(),
            sample.port(),
            "{template} -> {out}: port changed"
        );
    }
}

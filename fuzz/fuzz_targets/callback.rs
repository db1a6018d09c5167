//! Redirect callbacks (RFC 6749 §4.1.2, RFC 9207): `callback::state_of` and
//! `callback::validate` on arbitrary URLs, plus a model of `validate` on URLs built from
//! arbitrary parameters.
//!
//! Input: one byte of options (bit 0: the profile has an issuer; bit 1: it requires `iss`;
//! bits 2-3: the clock), then either a raw callback URL (option bit 4 clear: the rest of the
//! input, as UTF-8) or structured parameters (`arbitrary`).
#![no_main]

use arbitrary::{Arbitrary, Unstructured};
use fuzz_support::{CODE_VERIFIER, check_error};
use libfuzzer_sys::fuzz_target;
use oauth_connector::authorize::PendingAuthorization;
use oauth_connector::callback::{self, AuthorizationCode};
use oauth_connector::error::{CallbackError, Error, ErrorCode};
use oauth_connector::profile::ProviderProfile;
use oauth_connector::secret::PkceVerifier;
use url::form_urlencoded;

/// The pending `state`: 32 random bytes, base64url, as `authorize::begin` makes it.
const STATE: &str = "BwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwc";
const ISSUER: &str = "https://auth.example.com";
const CREATED_AT: u64 = 1_700_000_000;
const EXPIRES_AT: u64 = CREATED_AT + 600;

fn pending(state: &str) -> PendingAuthorization {
    PendingAuthorization {
        state: state.to_owned(),
        code_verifier: Some(PkceVerifier::new(CODE_VERIFIER)),
        redirect_uri: Some("http://127.0.0.1:8765/callback".into()),
        requested_scopes: vec!["openid".into()],
        created_at: CREATED_AT,
        expires_at: EXPIRES_AT,
    }
}

fn profile(options: u8) -> ProviderProfile {
    let mut profile = ProviderProfile {
        issuer: None,
        requires_iss: false,
        ..ProviderProfile::from_json(
            r#"{"token-url": "https://auth.example.com/token",
                "authorize-url": "https://auth.example.com/authorize"}"#,
        )
        .expect("fixed profile")
    };
    if options & 1 != 0 {
        profile.issuer = Some(ISSUER.into());
        profile.requires_iss = options & 2 != 0;
    }
    profile
}

fn clock(options: u8) -> u64 {
    match (options >> 2) & 3 {
        0 => CREATED_AT + 1,
        1 => EXPIRES_AT,
        2 => EXPIRES_AT + 1,
        _ => u64::MAX,
    }
}

#[derive(Arbitrary, Debug)]
enum Name {
    Code,
    State,
    Error,
    ErrorDescription,
    ErrorUri,
    Iss,
    Other(String),
}

#[derive(Arbitrary, Debug)]
enum ParamValue {
    ExpectedState,
    Issuer,
    Text(String),
}

#[derive(Arbitrary, Debug)]
struct Structured {
    base: u8,
    params: Vec<(Name, ParamValue)>,
}

const BASES: [&str; 4] = [
    "http://127.0.0.1:8765/callback",
    "https://app.example.com/oauth/cb",
    "http://[::1]:9000/cb?existing=1",
    "com.example.app:/oauth2redirect",
];

fuzz_target!(|data: &[u8]| {
    let Some((&options, rest)) = data.split_first() else {
        return;
    };
    let profile = profile(options);
    let now = clock(options);
    if options & 16 == 0 {
        let url = String::from_utf8_lossy(rest);
        let _ = check_url(&profile, &url, now);
    } else if let Ok(input) = Structured::arbitrary_take_rest(Unstructured::new(rest)) {
        check_structured(&profile, &input, now);
    }
});

/// The invariants that hold for any URL.
fn check_url(profile: &ProviderProfile, url: &str, now: u64) -> Result<AuthorizationCode, Error> {
    let secrets = [STATE, CODE_VERIFIER];
    let state = callback::state_of(url);
    let result = callback::validate(profile, &pending(STATE), url, now);
    if let Err(error) = &state {
        check_error(error, &secrets);
        // Both read the URL the same way: a URL state_of refuses is refused first.
        assert!(
            matches!(
                error,
                Error::Callback(CallbackError::Malformed(_) | CallbackError::MissingState)
            ),
            "state_of: {error:?}"
        );
        assert_eq!(
            result.as_ref().err(),
            Some(error),
            "validate disagrees with state_of"
        );
    }
    match &result {
        Ok(code) => {
            assert!(!code.code.expose().is_empty(), "empty code accepted");
            assert_eq!(
                state.as_deref(),
                Ok(STATE),
                "accepted without the pending state"
            );
            assert!(now <= EXPIRES_AT, "accepted after expiry");
            let debug = format!("{code:?}");
            if fuzz_support::checkable(code.code.expose()) {
                assert!(!debug.contains(code.code.expose()), "code in {debug}");
            }
        }
        Err(error) => {
            // The expected state and the verifier never leak into an error (the server's own
            // description may say anything, and is not checked).
            if !url.contains(STATE) {
                check_error(error, &secrets);
            }
        }
    }
    // With the state it carries as the pending one, no callback fails on its state.
    if let Ok(own) = &state {
        let again = callback::validate(profile, &pending(own), url, now);
        assert!(
            !matches!(
                again,
                Err(Error::Callback(
                    CallbackError::Malformed(_)
                        | CallbackError::MissingState
                        | CallbackError::StateMismatch
                ))
            ),
            "state {own:?} read from the URL is refused: {again:?}"
        );
    }
    result
}

/// Builds a callback URL from the parameters and compares `validate` with the documented order
/// of checks.
fn check_structured(profile: &ProviderProfile, input: &Structured, now: u64) {
    let base = BASES[usize::from(input.base) % BASES.len()];
    let params: Vec<(String, String)> = input
        .params
        .iter()
        .map(|(name, value)| {
            let name = match name {
                Name::Code => "code",
                Name::State => "state",
                Name::Error => "error",
                Name::ErrorDescription => "error_description",
                Name::ErrorUri => "error_uri",
                Name::Iss => "iss",
                Name::Other(other) => other,
            };
            let value = match value {
                ParamValue::ExpectedState => STATE,
                ParamValue::Issuer => ISSUER,
                ParamValue::Text(text) => text,
            };
            (name.to_owned(), value.to_owned())
        })
        .collect();
    let query = form_urlencoded::Serializer::new(String::new())
        .extend_pairs(&params)
        .finish();
    let separator = if base.contains('?') { '&' } else { '?' };
    let url = format!("{base}{separator}{query}");
    let result = check_url(profile, &url, now);

    // The model: the parameters as the server meant them.
    let mut seen: Vec<&str> = vec![];
    let known = [
        "code",
        "state",
        "error",
        "error_description",
        "error_uri",
        "iss",
    ];
    let value_of = |name: &str| -> Option<String> {
        params
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.clone())
    };
    for (name, _) in &params {
        if known.contains(&name.as_str()) {
            if seen.contains(&name.as_str()) {
                assert!(
                    matches!(result, Err(Error::Callback(CallbackError::Malformed(_)))),
                    "repeated `{name}` in {url}: {result:?}"
                );
                return;
            }
            seen.push(name);
        }
    }
    let expected: Result<String, Error> = (|| {
        let state = value_of("state").ok_or(Error::Callback(CallbackError::MissingState))?;
        if state != STATE {
            return Err(Error::Callback(CallbackError::StateMismatch));
        }
        if now > EXPIRES_AT {
            return Err(Error::Callback(CallbackError::Expired));
        }
        match (value_of("iss"), &profile.issuer) {
            (Some(iss), Some(issuer)) if &iss != issuer => {
                return Err(Error::Callback(CallbackError::IssuerMismatch));
            }
            (None, _) if profile.requires_iss => {
                return Err(Error::Callback(CallbackError::IssuerMissing));
            }
            _ => {}
        }
        if let Some(code) = value_of("error") {
            return Err(Error::ServerSaidNo(oauth_connector::error::OAuthError {
                code: ErrorCode::parse(&code),
                description: value_of("error_description"),
                uri: value_of("error_uri"),
            }));
        }
        match value_of("code") {
            Some(code) if !code.is_empty() => Ok(code),
            _ => Err(Error::Callback(CallbackError::MissingCode)),
        }
    })();
    match (&result, &expected) {
        (Ok(code), Ok(want)) => assert_eq!(code.code.expose(), want, "code of {url}"),
        (Err(got), Err(want)) => assert_eq!(got, want, "error for {url}"),
        (got, want) => panic!("{url}: got {got:?}, expected {want:?}"),
    }
    if let Err(Error::ServerSaidNo(error)) = &result {
        // Standard codes and extensions round-trip through `ErrorCode`.
        assert_eq!(Some(error.code.as_str().to_owned()), value_of("error"));
    }
}

//! Token-endpoint answers (RFC 6749 §5.1, §5.2): `token::parse_token_response` and
//! `token::parse_refresh_response` on arbitrary responses, for a flat profile and for profiles
//! with a nested token `path`, a `success-flag` and a `default-expires-in`.
//!
//! Input: an HTTP response (see `fuzz_support`): any status, any `Content-Type` (or none),
//! any body. A bare body is a 200 without headers.
#![no_main]

use fuzz_support::{
    CLIENT_SECRET, CODE_VERIFIER, REFRESH_TOKEN, body_credentials, check_error, checkable,
    http_response,
};
use libfuzzer_sys::fuzz_target;
use oauth_connector::error::{Error, ServerUnavailable};
use oauth_connector::http::HttpResponse;
use oauth_connector::profile::TokenResponseQuirks;
use oauth_connector::token::{self, TOKEN_MEMBERS, TokenSet};
use serde_json::Value;

const NOWS: [u64; 2] = [1_700_000_000, u64::MAX - 1];

fn quirks() -> [TokenResponseQuirks; 3] {
    [
        TokenResponseQuirks::default(),
        // Slack: `ok` false on failure, the user's tokens under `authed_user`.
        TokenResponseQuirks {
            path: vec!["authed_user".into()],
            success_flag: Some("ok".into()),
            default_expires_in: None,
        },
        TokenResponseQuirks {
            path: vec!["data".into(), "token".into()],
            success_flag: Some("success".into()),
            default_expires_in: Some(3600),
        },
    ]
}

fuzz_target!(|data: &[u8]| {
    let input = http_response(data);
    let response = &input.response;
    let requested = ["openid".to_owned(), "profile".to_owned()];
    let request_secrets = [CLIENT_SECRET, CODE_VERIFIER, REFRESH_TOKEN];
    let fields = token::parse_fields(response);
    for quirks in quirks() {
        let found = body_credentials(fields.as_ref(), &quirks.path);
        let secrets: Vec<&str> = request_secrets
            .iter()
            .copied()
            .chain(found.iter().map(String::as_str))
            .collect();
        // The clock's extremes for the flat profile; the nested ones at the usual clock
        // (excerpts dominate the cost of a run).
        let nows = if quirks.path.is_empty() {
            &NOWS[..]
        } else {
            &NOWS[..1]
        };
        for &now in nows {
            let strict =
                token::parse_token_response(response, &requested, &quirks, now, &request_secrets);
            let lenient =
                token::parse_refresh_response(response, &requested, &quirks, now, &request_secrets);
            for result in [&strict, &lenient] {
                check_result(response, result, &quirks, now, &secrets);
            }
            for lenient_mode in [false, true] {
                let result = if lenient_mode { &lenient } else { &strict };
                if let Ok(tokens) = result {
                    let level = token_level(fields.as_ref(), &quirks.path, lenient_mode);
                    let member = |name: &str| level.and_then(|level| level.get(name));
                    assert_eq!(
                        member("access_token").and_then(Value::as_str),
                        Some(tokens.access_token.expose()),
                        "access token is not the body's (lenient: {lenient_mode})"
                    );
                    // Scopes: the body's string split, its array's strings, else the
                    // requested ones.
                    let scopes = match member("scope") {
                        Some(Value::String(text)) => token::split_scopes(text),
                        Some(Value::Array(items)) => items
                            .iter()
                            .filter_map(|item| item.as_str().map(str::to_owned))
                            .collect(),
                        None | Some(Value::Null) => requested.to_vec(),
                        Some(other) => {
                            assert!(lenient_mode, "strict accepted `scope: {other}`");
                            requested.to_vec()
                        }
                    };
                    assert_eq!(tokens.scopes, scopes);
                }
            }
            // Refresh answers are read more leniently, never less: what a code exchange
            // accepts, a refresh accepts identically.
            if let Ok(tokens) = &strict {
                let Ok(refreshed) = &lenient else {
                    panic!("strict accepted, lenient refused: {lenient:?}");
                };
                assert_eq!(summary(tokens), summary(refreshed));
            }
        }
    }
});

fn check_result(
    response: &HttpResponse,
    result: &Result<TokenSet, Error>,
    quirks: &TokenResponseQuirks,
    now: u64,
    secrets: &[&str],
) {
    let status = response.status;
    let small = response.body.len() <= token::MAX_TOKEN_RESPONSE_BYTES;
    if small && (status == 429 || (500..600).contains(&status)) {
        // HTTP's optional whitespace is spaces and tabs only (RFC 9110 §5.6.3): a value with
        // a form feed around its digits is not delta-seconds.
        let retry_after = response
            .header("retry-after")
            .map(|value| value.trim_matches([' ', '\t']));
        match result {
            Err(Error::ServerUnavailable(ServerUnavailable {
                status: got,
                retry_after_seconds,
                ..
            })) => {
                assert_eq!(*got, status);
                match retry_after {
                    None => assert_eq!(*retry_after_seconds, None),
                    // Delta-seconds, saturating; HTTP dates and junk have their own tests
                    // (`http_date`).
                    Some(value)
                        if !value.is_empty() && value.bytes().all(|b| b.is_ascii_digit()) =>
                    {
                        let seconds = value.parse::<u64>().unwrap_or(u64::MAX);
                        assert_eq!(*retry_after_seconds, Some(seconds));
                    }
                    Some(_) => {}
                }
            }
            other => panic!("HTTP {status} is not server-unavailable: {other:?}"),
        }
        return;
    }
    let fields = token::parse_fields(response);
    if let (Some(flag), Some(fields)) = (&quirks.success_flag, &fields)
        && fields.get(flag) == Some(&Value::Bool(false))
    {
        assert!(
            matches!(result, Err(Error::ServerSaidNo(_))),
            "`{flag}: false` is not a refusal: {result:?}"
        );
    }
    match result {
        Ok(tokens) => {
            assert!((200..300).contains(&status), "tokens from HTTP {status}");
            let fields = fields.as_ref().expect("tokens without a parsed body");
            // An `error` member is only a field of a 2xx that also carries a token.
            if let Some(error) = token::oauth_error(fields) {
                assert!(
                    fields.contains_key("access_token"),
                    "{error:?} read as tokens"
                );
            }
            check_tokens(tokens, quirks, now);
        }
        Err(error) => {
            check_error(error, secrets);
            if let Error::InvalidResponse(invalid) = error {
                assert_eq!(invalid.status, status);
            }
        }
    }
}

fn check_tokens(tokens: &TokenSet, quirks: &TokenResponseQuirks, now: u64) {
    assert!(!tokens.access_token.expose().is_empty());
    assert_eq!(tokens.obtained_at, now);
    assert!(
        !tokens.token_type.chars().any(|c| c.is_ascii_uppercase()),
        "token type {:?} not lower-cased",
        tokens.token_type
    );
    match tokens.expires_at {
        Some(at) => assert!(at >= now, "expires before it was obtained"),
        None => assert_eq!(
            quirks.default_expires_in, None,
            "default expiry not applied"
        ),
    }
    for extra in &tokens.extras {
        assert!(
            !TOKEN_MEMBERS.contains(&extra.name.as_str()),
            "token member `{}` left in the extras",
            extra.name
        );
        assert!(
            serde_json::from_str::<Value>(&extra.value).is_ok(),
            "extra `{}` is not JSON text",
            extra.name
        );
    }
    // `Debug` shows no token value (the other fields are printed as they are).
    let debug = format!("{tokens:?}");
    let names: Vec<&str> = tokens.extras.iter().map(|e| e.name.as_str()).collect();
    let shown = format!(
        "TokenSet access_token refresh_token id_token Secret([redacted]) {:?} {:?} {:?} {:?} {names:?}",
        tokens.token_type, tokens.expires_at, tokens.scopes, tokens.obtained_at
    );
    let values = [
        Some(&tokens.access_token),
        tokens.refresh_token.as_ref(),
        tokens.id_token.as_ref(),
    ];
    for value in values.into_iter().flatten().map(|s| s.expose()) {
        if checkable(value) && !shown.contains(value) {
            assert!(!debug.contains(value), "token value in {debug}");
        }
    }
}

/// The object holding the token members: the body's at `path` (leniently: where the path
/// ends). Outer members never supply a token member.
fn token_level<'a>(
    fields: Option<&'a serde_json::Map<String, Value>>,
    path: &[String],
    lenient: bool,
) -> Option<&'a serde_json::Map<String, Value>> {
    let mut level = fields?;
    for member in path {
        match level.get(member) {
            Some(Value::Object(inner)) => level = inner,
            _ if lenient => break,
            _ => return None,
        }
    }
    Some(level)
}

/// Every field of a token set, secrets exposed, for comparing two sets.
fn summary(tokens: &TokenSet) -> String {
    format!(
        "{} {} {:?} {:?} {:?} {:?} {} {:?}",
        tokens.access_token.expose(),
        tokens.token_type,
        tokens.expires_at,
        tokens.refresh_token.as_ref().map(|s| s.expose()),
        tokens.id_token.as_ref().map(|s| s.expose()),
        tokens.scopes,
        tokens.obtained_at,
        tokens.extras
    )
}

//! The helpers every answer goes through: `token::parse_fields`, `token::oauth_error`,
//! `token::excerpt`, `token::json_answer` and `token::unavailable`, compared with a model of
//! what each documents.
//!
//! Input: an HTTP response (see `fuzz_support`), with any `Retry-After` and `Content-Type`
//! headers; `X-Fuzz-Secret` lines add secrets for the excerpt to remove.
#![no_main]

use fuzz_support::{
    CLIENT_SECRET, CODE_VERIFIER, check_error, check_excerpt, checkable, http_response,
    nested_credentials,
};
use libfuzzer_sys::fuzz_target;
use oauth_connector::error::{Error, ServerUnavailable};
use oauth_connector::http::HttpResponse;
use oauth_connector::http_date;
use oauth_connector::token::{self, MAX_TOKEN_RESPONSE_BYTES};
use serde_json::{Map, Value};

/// The clock the fuzzed answers are read at.
const NOW: u64 = 1_700_000_000;
use url::form_urlencoded;

fuzz_target!(|data: &[u8]| {
    let input = http_response(data);
    let response = &input.response;
    let mut secrets: Vec<&str> = vec![CLIENT_SECRET, CODE_VERIFIER];
    secrets.extend(input.secrets.iter().map(String::as_str));

    // parse_fields: a JSON object, else a form when the media type says so, else nothing.
    let fields = token::parse_fields(response);
    assert_eq!(fields, model_fields(response), "parse_fields");

    // oauth_error: present exactly when `error` is a string; the code round-trips.
    let error = fields.as_ref().and_then(token::oauth_error);
    if let Some(fields) = &fields {
        let text = |name: &str| fields.get(name).and_then(Value::as_str);
        match (&error, text("error")) {
            (Some(error), Some(code)) => {
                assert_eq!(error.code.as_str(), code);
                assert_eq!(error.description.as_deref(), text("error_description"));
                assert_eq!(error.uri.as_deref(), text("error_uri"));
            }
            (None, None) => {}
            (got, code) => panic!("oauth_error {got:?} for `error` {code:?}"),
        }
    }

    // unavailable: 429 and 5xx only, Retry-After as the core's parser reads it (delta-seconds
    // or an HTTP-date, checked by its own unit tests).
    let status = response.status;
    let retryable = status == 429 || (500..600).contains(&status);
    match token::unavailable(response, fields.as_ref(), NOW, &[]) {
        Some(Error::ServerUnavailable(ServerUnavailable {
            status: got,
            retry_after_seconds,
            error: body_error,
        })) => {
            assert!(retryable, "HTTP {status} is not retryable");
            assert_eq!(got, status);
            let header = response
                .headers
                .iter()
                .find(|h| h.name.eq_ignore_ascii_case("retry-after"))
                .map(|h| h.value.as_str());
            let date = response
                .headers
                .iter()
                .find(|h| h.name.eq_ignore_ascii_case("date"))
                .map(|h| h.value.as_str());
            assert_eq!(
                retry_after_seconds,
                header.and_then(|v| http_date::retry_after_seconds(v, date, NOW)),
                "Retry-After {header:?}"
            );
            assert_eq!(body_error, error);
        }
        Some(other) => panic!("unavailable returned {other:?}"),
        None => assert!(!retryable, "HTTP {status} not reported as unavailable"),
    }

    // excerpt: bounded, scrubbed, deterministic.
    let excerpt = token::excerpt(&response.body, &secrets);
    check_excerpt(&excerpt, &secrets);
    assert_eq!(excerpt, token::excerpt(&response.body, &secrets));

    // json_answer: the documented order of outcomes.
    let answer = token::json_answer(response, &secrets, NOW);
    match &answer {
        Ok(map) => {
            assert!((200..300).contains(&status), "answer from HTTP {status}");
            assert_eq!(Some(map), fields.as_ref());
            assert!(error.is_none(), "error body accepted as an answer");
        }
        Err(Error::ServerUnavailable(_)) => assert!(retryable),
        Err(Error::ServerSaidNo(said)) => {
            assert!(!retryable);
            // The server's refusal, its description and URI scrubbed of the request's
            // secrets and cut to the bound.
            let sent = error.as_ref().expect("a refusal is an `error` body");
            assert_eq!(said.code, sent.code);
            for (got, sent) in [
                (&said.description, &sent.description),
                (&said.uri, &sent.uri),
            ] {
                assert_eq!(got.is_some(), sent.is_some());
                let (Some(got), Some(sent)) = (got, sent) else {
                    continue;
                };
                assert!(got.len() <= token::MAX_ERROR_TEXT_BYTES, "{got:?}");
                if secrets
                    .iter()
                    .all(|secret| secret.is_empty() || !sent.contains(secret))
                {
                    let kept = sent.floor_char_boundary(token::MAX_ERROR_TEXT_BYTES);
                    assert_eq!(got, &sent[..kept], "nothing to scrub");
                }
                for secret in secrets.iter().filter(|secret| checkable(secret)) {
                    assert!(!got.contains(secret), "secret {secret:?} in {got:?}");
                }
            }
        }
        Err(Error::InvalidResponse(invalid)) => {
            assert!(!retryable);
            assert!(error.is_none());
            assert_eq!(invalid.status, status);
            if response.body.len() <= MAX_TOKEN_RESPONSE_BYTES {
                // The excerpt also drops the credentials the body itself carries.
                let mut found = vec![];
                if let Some(fields) = &fields {
                    nested_credentials(fields, 3, &mut found);
                }
                let mut all: Vec<&str> = secrets.clone();
                all.extend(found.iter().map(String::as_str));
                assert_eq!(invalid.excerpt, token::excerpt(&response.body, &all));
                check_excerpt(&invalid.excerpt, &all);
                assert!(!(200..300).contains(&status) || fields.is_none());
            }
        }
        Err(other) => panic!("json_answer returned {other:?}"),
    }
    if let Err(error) = &answer {
        check_error(error, &secrets);
    }
});

/// What `parse_fields` documents: a JSON object, or for the form media type the pairs (the
/// first of a repeated name wins); bodies over the cap are not parsed.
fn model_fields(response: &HttpResponse) -> Option<Map<String, Value>> {
    if response.body.len() > MAX_TOKEN_RESPONSE_BYTES {
        return None;
    }
    if let Ok(Value::Object(map)) = serde_json::from_slice(&response.body) {
        return Some(map);
    }
    let media_type = response
        .headers
        .iter()
        .find(|h| h.name.eq_ignore_ascii_case("content-type"))?
        .value
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase();
    if media_type != "application/x-www-form-urlencoded" {
        return None;
    }
    let mut map = Map::new();
    for (name, value) in form_urlencoded::parse(&response.body) {
        if !map.contains_key(name.as_ref()) {
            map.insert(name.into_owned(), Value::String(value.into_owned()));
        }
    }
    Some(map)
}

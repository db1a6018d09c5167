//! Helpers shared by the fuzz targets: turning fuzz input into the core's HTTP values, and the
//! invariant checks (no secret in an error, bounded scrubbed excerpts).
//!
//! Most targets read their input as a tiny HTTP response, so that seeds are readable files and
//! mutations reach the status, the headers and the body alike:
//!
//! ```text
//! HTTP/1.1 400 Bad Request
//! Content-Type: application/json
//! Retry-After: 17
//!
//! {"error":"invalid_grant"}
//! ```
//!
//! An input that does not start with `HTTP` is a bare body: status 200, no headers. A head
//! without a blank line is all head and an empty body. Header lines named `X-Fuzz-Secret`
//! are not headers: their values are extra request secrets for the scrubbing checks.

use oauth_connector::error::Error;
use oauth_connector::http::HttpResponse;
use oauth_connector::profile::KeyValue;
use oauth_connector::token::EXCERPT_CHARS;
use serde_json::{Map, Value};

/// A client secret with the characters form encoding must escape (no whitespace: the excerpt
/// maps control characters to spaces, which could forge a secret with a space).
pub const CLIENT_SECRET: &str = "p+a:s&s%w/o=rd!";
/// A PKCE verifier. Real ones are 43+ token characters, which the excerpt's run rule would hide
/// anyway; a short one exercises the replacement of the request's own secrets.
pub const CODE_VERIFIER: &str = "cv.Zk3Pw8N~d5Hs";
/// A device code the request carries.
pub const DEVICE_CODE: &str = "dc-Gq7Lw2Xv9Bn4";
/// A refresh token the request carries.
pub const REFRESH_TOKEN: &str = "rt-8Hk2Pq5Wm3Zx";

/// Name of the pseudo-header whose values are extra secrets.
pub const SECRET_HEADER: &str = "X-Fuzz-Secret";

/// Members whose values are credentials in a token or device answer.
pub const CREDENTIAL_MEMBERS: [&str; 4] =
    ["access_token", "refresh_token", "id_token", "device_code"];

/// A fuzz input read as an HTTP response.
pub struct FuzzResponse {
    /// The response.
    pub response: HttpResponse,
    /// Values of `X-Fuzz-Secret` lines.
    pub secrets: Vec<String>,
}

/// Reads `data` as an HTTP response (see the module documentation).
pub fn http_response(data: &[u8]) -> FuzzResponse {
    if !data.starts_with(b"HTTP") {
        return FuzzResponse {
            response: HttpResponse {
                status: 200,
                headers: vec![],
                body: data.to_vec(),
            },
            secrets: vec![],
        };
    }
    let (head, body) = split_head(data);
    let head = String::from_utf8_lossy(head);
    let mut lines = head
        .split('\n')
        .map(|line| line.strip_suffix('\r').unwrap_or(line));
    let status_line = lines.next().unwrap_or_default();
    let status = status_line
        .split_whitespace()
        .nth(1)
        .and_then(|code| code.parse::<u16>().ok())
        .unwrap_or(200);
    let mut headers = vec![];
    let mut secrets = vec![];
    for line in lines {
        let (name, value) = line.split_once(':').unwrap_or((line, ""));
        let value = value.strip_prefix(' ').unwrap_or(value);
        if name.eq_ignore_ascii_case(SECRET_HEADER) {
            secrets.push(value.to_owned());
        } else {
            headers.push(KeyValue::new(name, value));
        }
    }
    FuzzResponse {
        response: HttpResponse {
            status,
            headers,
            body: body.to_vec(),
        },
        secrets,
    }
}

fn split_head(data: &[u8]) -> (&[u8], &[u8]) {
    for (i, window) in data.windows(2).enumerate() {
        if window == b"\n\n" {
            return (&data[..i], &data[i + 2..]);
        }
        if window == b"\n\r" && data.get(i + 2) == Some(&b'\n') {
            return (&data[..i], &data[i + 3..]);
        }
    }
    (data, &[])
}

/// Splits `data` at the first line `sep` (a line holding exactly `sep`): the part before, and
/// the rest (empty when there is no such line).
pub fn split_section<'a>(data: &'a str, sep: &str) -> (&'a str, &'a str) {
    let marker = format!("\n{sep}\n");
    match data.find(&marker) {
        Some(at) => (&data[..at], &data[at + marker.len()..]),
        None => (data, ""),
    }
}

/// Characters the excerpt treats as token characters.
pub fn is_token_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || "-._~+/=".contains(c)
}

/// Whether a literal-substring check for `secret` is sound on scrubbed output.
///
/// The scrubber inserts `[redacted]`, maps control characters to spaces, and `Debug` escapes
/// quotes, backslashes and non-printable characters; a secret that could be forged from those
/// (or is too short to be distinctive) is not checked.
pub fn checkable(secret: &str) -> bool {
    secret.chars().count() >= 8
        && !"[redacted]".contains(secret)
        && secret
            .chars()
            .all(|c| c.is_ascii_graphic() && !matches!(c, '[' | ']' | '"' | '\\' | '{' | '}'))
}

/// Asserts the excerpt rules: at most `EXCERPT_CHARS` characters, no control character, no run
/// of 20 or more token characters, and no checkable secret.
pub fn check_excerpt(excerpt: &str, secrets: &[&str]) {
    assert!(
        excerpt.chars().count() <= EXCERPT_CHARS,
        "excerpt over {EXCERPT_CHARS} characters: {excerpt:?}"
    );
    assert!(
        !excerpt.chars().any(char::is_control),
        "control character in excerpt {excerpt:?}"
    );
    let mut run = 0;
    for c in excerpt.chars() {
        run = if is_token_char(c) { run + 1 } else { 0 };
        assert!(
            run < 20,
            "run of 20 token characters in excerpt {excerpt:?}"
        );
    }
    for secret in secrets.iter().filter(|s| checkable(s)) {
        assert!(
            !excerpt.contains(secret),
            "secret {secret:?} in excerpt {excerpt:?}"
        );
    }
}

/// Asserts that an error holds none of `secrets` where the core promises to scrub: the
/// `invalid-response` excerpt (and so the error's `Display` and `Debug`), and every
/// configuration, callback and discovery error, which name fields, never values.
pub fn check_error(error: &Error, secrets: &[&str]) {
    let scrubbed = match error {
        Error::InvalidResponse(invalid) => {
            check_excerpt(&invalid.excerpt, secrets);
            true
        }
        Error::Configuration(_) | Error::Callback(_) => true,
        // A refusal's description and an issuer mismatch are the server's own words.
        _ => false,
    };
    if scrubbed {
        let display = error.to_string();
        let debug = format!("{error:?}");
        for secret in secrets.iter().filter(|s| checkable(s)) {
            assert!(!display.contains(secret), "secret {secret:?} in {display}");
            assert!(!debug.contains(secret), "secret {secret:?} in {debug}");
        }
    }
}

/// The string values of credential members in `fields` and in the objects along `path`: the
/// tokens the parser reads from a body.
pub fn body_credentials(fields: Option<&Map<String, Value>>, path: &[String]) -> Vec<String> {
    let mut found = vec![];
    let mut level = fields;
    let mut steps = path.iter();
    while let Some(fields) = level {
        for name in CREDENTIAL_MEMBERS {
            if let Some(Value::String(value)) = fields.get(name) {
                found.push(value.clone());
            }
        }
        level = steps
            .next()
            .and_then(|member| fields.get(member))
            .and_then(Value::as_object);
    }
    found
}

/// The string values of credential members in `fields` and in the objects nested up to three
/// levels below, in the order the core's scrubber collects them (members in map order,
/// depth first).
pub fn nested_credentials(fields: &Map<String, Value>, depth: usize, found: &mut Vec<String>) {
    for (name, value) in fields {
        match value {
            Value::String(text) if CREDENTIAL_MEMBERS.contains(&name.as_str()) => {
                found.push(text.clone());
            }
            Value::Object(inner) if depth > 0 => nested_credentials(inner, depth - 1, found),
            _ => {}
        }
    }
}

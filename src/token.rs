//! Token sets and token-endpoint responses (RFC 6749 §5.1, §5.2).

use crate::prelude::*;

use alloc::borrow::Cow;

use serde::de::{self, Deserialize, DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Value};

use crate::error::{Error, ErrorCode, InvalidResponse, OAuthError, ServerUnavailable};
use crate::form;
use crate::http::HttpResponse;
use crate::profile::{KeyValue, TokenResponseQuirks};
use crate::secret::Secret;

/// Largest token response the core will parse. Token responses are a few KB; the host's
/// transport has its own, larger cap for API responses.
pub const MAX_TOKEN_RESPONSE_BYTES: usize = 1024 * 1024;

/// Longest body excerpt kept in an `invalid-response` error, in characters.
pub const EXCERPT_CHARS: usize = 200;

/// How much of a body the excerpt scrubs before cutting it to `EXCERPT_CHARS`: enough that
/// redactions cannot shrink it below the excerpt, bounded so that a huge body costs little.
const EXCERPT_SCAN_BYTES: usize = 64 * 1024;

/// The tokens of one connection (the WIT `token-set`). Its `Debug` shows the extras' names
/// only: a vendor may nest more credentials in them.
#[derive(Clone)]
pub struct TokenSet {
    /// The access token.
    pub access_token: Secret,
    /// The token type, lower-cased.
    pub token_type: String,
    /// Expiry in Unix seconds; `None` when the server sent no `expires_in`.
    pub expires_at: Option<u64>,
    /// The refresh token, if issued.
    pub refresh_token: Option<Secret>,
    /// The OpenID Connect ID token, if issued.
    pub id_token: Option<Secret>,
    /// The granted scopes.
    pub scopes: Vec<String>,
    /// When the tokens were obtained (Unix seconds).
    pub obtained_at: u64,
    /// Fields not interpreted, as JSON text.
    pub extras: Vec<KeyValue>,
    /// For DPoP-bound tokens: the key's JWK thumbprint (RFC 7638), base64url.
    pub dpop_key_thumbprint: Option<String>,
}

impl core::fmt::Debug for TokenSet {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        let extras: Vec<&str> = self.extras.iter().map(|kv| kv.name.as_str()).collect();
        f.debug_struct("TokenSet")
            .field("access_token", &self.access_token)
            .field("token_type", &self.token_type)
            .field("expires_at", &self.expires_at)
            .field("refresh_token", &self.refresh_token)
            .field("id_token", &self.id_token)
            .field("scopes", &self.scopes)
            .field("obtained_at", &self.obtained_at)
            .field("extras", &extras)
            .field("dpop_key_thumbprint", &self.dpop_key_thumbprint)
            .finish()
    }
}

/// Interprets a token-endpoint response.
///
/// - 2xx with a JSON object (any content type; `application/x-www-form-urlencoded` bodies are
///   read as forms) holding `access_token`: a token set. `expires_in` may be a number or a
///   numeric string; `scope` may be space- or comma-separated, and when absent the
///   `requested_scopes` are assumed (RFC 6749 §5.1). A 2xx whose body holds `error` and no
///   `access_token` is the server's refusal.
/// - Any status with an RFC 6749 §5.2 error body: `server-said-no`.
/// - Anything else: `invalid-response` with the status and a scrubbed excerpt; the values in
///   `secrets` (the request's own credentials) are removed from the excerpt.
pub fn parse_token_response(
    response: &HttpResponse,
    requested_scopes: &[String],
    quirks: &TokenResponseQuirks,
    now: u64,
    secrets: &[&str],
) -> Result<TokenSet, Error> {
    parse_with(
        response,
        requested_scopes,
        quirks,
        now,
        secrets,
        Strictness::Strict,
    )
}

/// Like `parse_token_response`, for refresh answers: a 2xx that carries an access token is
/// accepted even when optional members are malformed (they are dropped) or the quirks'
/// `path` is absent (the top level is used). The server may already have rotated the refresh
/// token, so refusing its answer over a cosmetic defect would lose the connection.
pub fn parse_refresh_response(
    response: &HttpResponse,
    requested_scopes: &[String],
    quirks: &TokenResponseQuirks,
    now: u64,
    secrets: &[&str],
) -> Result<TokenSet, Error> {
    parse_with(
        response,
        requested_scopes,
        quirks,
        now,
        secrets,
        Strictness::Lenient,
    )
}

/// How strictly optional members of a token response are checked.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Strictness {
    /// A malformed member is an invalid response.
    Strict,
    /// A malformed optional member is dropped.
    Lenient,
}

/// Members that hold credentials: always scrubbed from excerpts.
const CREDENTIAL_MEMBERS: [&str; 4] = ["access_token", "refresh_token", "id_token", "device_code"];

/// The members a token set is read from; a nested `path` object owns them (never promoted
/// from an outer level), and they never reach a token set's extras.
pub const TOKEN_MEMBERS: [&str; 6] = [
    "access_token",
    "refresh_token",
    "id_token",
    "token_type",
    "expires_in",
    "scope",
];

/// String values of credential members anywhere in the first levels of `fields`.
fn credentials_in(fields: &Map<String, Value>, depth: usize, found: &mut Vec<String>) {
    for (name, value) in fields {
        match value {
            Value::String(text) if CREDENTIAL_MEMBERS.contains(&name.as_str()) => {
                found.push(text.clone());
            }
            Value::Object(inner) if depth > 0 => credentials_in(inner, depth - 1, found),
            _ => {}
        }
    }
}

fn parse_with(
    response: &HttpResponse,
    requested_scopes: &[String],
    quirks: &TokenResponseQuirks,
    now: u64,
    secrets: &[&str],
    strictness: Strictness,
) -> Result<TokenSet, Error> {
    let mut tokens = match plain_token_set(response, requested_scopes, quirks, now, strictness) {
        Some(tokens) => tokens,
        None => general_token_set(response, requested_scopes, quirks, now, secrets, strictness)?,
    };
    if tokens.expires_at.is_none() {
        tokens.expires_at = quirks
            .default_expires_in
            .map(|seconds| now.saturating_add(seconds));
    }
    Ok(tokens)
}

/// The common answer, read in one pass with no map of the whole body: a 2xx JSON object
/// holding `access_token`, no `path` or success flag to apply, and well-formed token
/// members. `None` for anything else; `general_token_set` reads (and explains) those, and
/// gives the same token set for these.
fn plain_token_set(
    response: &HttpResponse,
    requested_scopes: &[String],
    quirks: &TokenResponseQuirks,
    now: u64,
    strictness: Strictness,
) -> Option<TokenSet> {
    let plain = (200..300).contains(&response.status)
        && quirks.path.is_empty()
        && quirks.success_flag.is_none()
        && response.body.len() <= MAX_TOKEN_RESPONSE_BYTES;
    if !plain {
        return None;
    }
    let mut object = TokenObject::default();
    let mut body = serde_json::Deserializer::from_slice(&response.body);
    object.deserialize(&mut body).ok()?;
    body.end().ok()?;
    // A token set needs `access_token`, and with it on a 2xx an `error` member is just a
    // field; without it, the general path tells the refusal from the invalid answer.
    token_set_from_fields(object, requested_scopes, now, strictness).ok()
}

/// Any answer: errors are told apart (server unavailable, the server's refusal, invalid)
/// and their text scrubbed of `secrets` and of the credentials the answer carries.
fn general_token_set(
    response: &HttpResponse,
    requested_scopes: &[String],
    quirks: &TokenResponseQuirks,
    now: u64,
    secrets: &[&str],
    strictness: Strictness,
) -> Result<TokenSet, Error> {
    let mut found = vec![];
    let parsed = parse_fields(response);
    if let Some(fields) = &parsed {
        credentials_in(fields, 3, &mut found);
    }
    let mut all_secrets: Vec<&str> = secrets.to_vec();
    all_secrets.extend(found.iter().map(String::as_str));
    let invalid = |reason: &str| {
        Error::InvalidResponse(InvalidResponse {
            status: response.status,
            reason: reason.to_owned(),
            excerpt: excerpt(&response.body, &all_secrets),
        })
    };
    if response.body.len() > MAX_TOKEN_RESPONSE_BYTES {
        return Err(Error::InvalidResponse(InvalidResponse {
            status: response.status,
            reason: format!("body over {MAX_TOKEN_RESPONSE_BYTES} bytes"),
            excerpt: String::new(),
        }));
    }
    let fields = parsed;
    if let Some(unavailable) = unavailable(response, fields.as_ref(), now, &all_secrets) {
        return Err(unavailable);
    }
    // A vendor success flag (Slack's `ok`) that is false: the server's refusal.
    if let (Some(flag), Some(fields)) = (&quirks.success_flag, &fields)
        && fields.get(flag) == Some(&Value::Bool(false))
    {
        return Err(Error::ServerSaidNo(
            scrubbed_oauth_error(fields, &all_secrets).unwrap_or(OAuthError {
                code: ErrorCode::Extension(format!("{flag}_false")),
                description: None,
                uri: None,
            }),
        ));
    }
    // An error body wins unless a 2xx also carries a token (then `error` is just a field).
    if let Some(fields) = &fields
        && let Some(error) = scrubbed_oauth_error(fields, &all_secrets)
        && (!fields.contains_key("access_token") || !(200..300).contains(&response.status))
    {
        return Err(Error::ServerSaidNo(error));
    }
    if !(200..300).contains(&response.status) {
        return Err(invalid(if fields.is_some() {
            "error status without an OAuth error code"
        } else {
            "error status with a body that is not an OAuth error"
        }));
    }
    let Some(fields) = fields else {
        return Err(invalid("body is neither a JSON object nor a form"));
    };
    let fields =
        follow_path(fields, &quirks.path, strictness).map_err(|reason| invalid(&reason))?;
    token_set_from_fields(
        TokenObject::from_map(fields),
        requested_scopes,
        now,
        strictness,
    )
    .map_err(|reason| invalid(&reason))
}

/// A token response object split in two: the token members (`TOKEN_MEMBERS`), each
/// `Some` when present (`Some(Member::Other(Value::Null))` for an explicit `null`), and every
/// other member. Read from JSON directly, no key of a token member is allocated, no map holds
/// them, and their strings are borrowed from the body until the token set takes them.
#[derive(Default)]
struct TokenObject<'de> {
    access_token: Option<Member<'de>>,
    refresh_token: Option<Member<'de>>,
    id_token: Option<Member<'de>>,
    token_type: Option<Member<'de>>,
    expires_in: Option<Member<'de>>,
    scope: Option<Member<'de>>,
    others: Map<String, Value>,
}

impl<'de> TokenObject<'de> {
    /// The slot of a token member, `None` for any other name.
    fn slot(&mut self, name: &str) -> Option<&mut Option<Member<'de>>> {
        match name {
            "access_token" => Some(&mut self.access_token),
            "refresh_token" => Some(&mut self.refresh_token),
            "id_token" => Some(&mut self.id_token),
            "token_type" => Some(&mut self.token_type),
            "expires_in" => Some(&mut self.expires_in),
            "scope" => Some(&mut self.scope),
            _ => None,
        }
    }

    /// The object `others` holds, its token members moved to their slots.
    fn from_map(mut others: Map<String, Value>) -> Self {
        let mut object = Self::default();
        for name in TOKEN_MEMBERS {
            if let Some(slot) = object.slot(name) {
                *slot = others.remove(name).map(Member::from);
            }
        }
        object.others = others;
        object
    }
}

/// Reads a JSON object into the `TokenObject` it is given, as `serde_json::Map` would read it
/// (a repeated member: the last one wins). Filled in place: the object is a few hundred bytes,
/// and returning it through the deserializer's layers copied it at each.
impl<'de> DeserializeSeed<'de> for &mut TokenObject<'de> {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        struct ObjectVisitor<'a, 'de>(&'a mut TokenObject<'de>);
        impl<'de> Visitor<'de> for ObjectVisitor<'_, 'de> {
            type Value = ();

            fn expecting(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
                f.write_str("a JSON object")
            }

            // Any other value is refused here without serde's "invalid type" message, whose
            // float formatting alone is ~16 KB of the component (`deserialize_map` would
            // format one for a number).
            fn visit_unit<E: de::Error>(self) -> Result<(), E> {
                Err(not_an_object())
            }

            fn visit_bool<E: de::Error>(self, _: bool) -> Result<(), E> {
                Err(not_an_object())
            }

            fn visit_u64<E: de::Error>(self, _: u64) -> Result<(), E> {
                Err(not_an_object())
            }

            fn visit_i64<E: de::Error>(self, _: i64) -> Result<(), E> {
                Err(not_an_object())
            }

            fn visit_f64<E: de::Error>(self, _: f64) -> Result<(), E> {
                Err(not_an_object())
            }

            fn visit_str<E: de::Error>(self, _: &str) -> Result<(), E> {
                Err(not_an_object())
            }

            fn visit_seq<A: SeqAccess<'de>>(self, _: A) -> Result<(), A::Error> {
                Err(not_an_object())
            }

            fn visit_map<A: MapAccess<'de>>(self, mut members: A) -> Result<(), A::Error> {
                let object = self.0;
                while let Some(MemberName(name)) = members.next_key()? {
                    match object.slot(&name) {
                        Some(slot) => *slot = Some(members.next_value()?),
                        None => {
                            let value: Value = members.next_value()?;
                            object.others.insert(name.into_owned(), value);
                        }
                    }
                }
                Ok(())
            }
        }
        fn not_an_object<E: de::Error>() -> E {
            E::custom("not a JSON object")
        }
        deserializer.deserialize_any(ObjectVisitor(self))
    }
}

/// A token member's value: a string, borrowed from the body when it has no escapes (so that
/// it is copied once, into the token set), or any other JSON value as `Value` reads it.
enum Member<'de> {
    Text(Cow<'de, str>),
    Other(Value),
}

impl From<Value> for Member<'_> {
    fn from(value: Value) -> Self {
        match value {
            Value::String(text) => Member::Text(Cow::Owned(text)),
            other => Member::Other(other),
        }
    }
}

/// Reads any JSON value as `Value` would, keeping a string borrowed where it can.
impl<'de> Deserialize<'de> for Member<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct MemberVisitor;
        impl<'de> Visitor<'de> for MemberVisitor {
            type Value = Member<'de>;

            fn expecting(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
                f.write_str("a JSON value")
            }

            fn visit_borrowed_str<E: de::Error>(self, text: &'de str) -> Result<Self::Value, E> {
                Ok(Member::Text(Cow::Borrowed(text)))
            }

            fn visit_str<E: de::Error>(self, text: &str) -> Result<Self::Value, E> {
                Ok(Member::Text(Cow::Owned(text.to_owned())))
            }

            fn visit_string<E: de::Error>(self, text: String) -> Result<Self::Value, E> {
                Ok(Member::Text(Cow::Owned(text)))
            }

            fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
                Ok(Member::Other(Value::Null))
            }

            fn visit_bool<E: de::Error>(self, value: bool) -> Result<Self::Value, E> {
                Ok(Member::Other(Value::Bool(value)))
            }

            fn visit_u64<E: de::Error>(self, value: u64) -> Result<Self::Value, E> {
                Ok(Member::Other(Value::Number(value.into())))
            }

            fn visit_i64<E: de::Error>(self, value: i64) -> Result<Self::Value, E> {
                Ok(Member::Other(Value::Number(value.into())))
            }

            fn visit_f64<E: de::Error>(self, value: f64) -> Result<Self::Value, E> {
                // As `Value` reads a float (`null` for one JSON cannot hold).
                Ok(Member::Other(
                    serde_json::Number::from_f64(value).map_or(Value::Null, Value::Number),
                ))
            }

            fn visit_seq<A: SeqAccess<'de>>(self, items: A) -> Result<Self::Value, A::Error> {
                Value::deserialize(de::value::SeqAccessDeserializer::new(items)).map(Member::Other)
            }

            fn visit_map<A: MapAccess<'de>>(self, members: A) -> Result<Self::Value, A::Error> {
                Value::deserialize(de::value::MapAccessDeserializer::new(members))
                    .map(Member::Other)
            }
        }
        deserializer.deserialize_any(MemberVisitor)
    }
}

/// A member name, borrowed from the body when it has no escapes.
struct MemberName<'de>(Cow<'de, str>);

impl<'de> Deserialize<'de> for MemberName<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct NameVisitor;
        impl<'de> Visitor<'de> for NameVisitor {
            type Value = MemberName<'de>;

            fn expecting(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
                f.write_str("a member name")
            }

            fn visit_borrowed_str<E: de::Error>(self, name: &'de str) -> Result<Self::Value, E> {
                Ok(MemberName(Cow::Borrowed(name)))
            }

            fn visit_str<E: de::Error>(self, name: &str) -> Result<Self::Value, E> {
                Ok(MemberName(Cow::Owned(name.to_owned())))
            }

            fn visit_string<E: de::Error>(self, name: String) -> Result<Self::Value, E> {
                Ok(MemberName(Cow::Owned(name)))
            }
        }
        deserializer.deserialize_str(NameVisitor)
    }
}

/// Descends `path` to the object holding the token fields. A member that is an array stands
/// for its first element (Meta answers `{"data": [{"access_token": ...}]}`). The members left
/// behind at each level join it as extras, except token members (an outer `refresh_token`
/// must never be taken for the inner token's). Leniently, a missing object means the top
/// level holds the tokens (refresh answers are often flat).
fn follow_path(
    mut fields: Map<String, Value>,
    path: &[String],
    strictness: Strictness,
) -> Result<Map<String, Value>, String> {
    for member in path {
        let found = match fields.remove(member) {
            Some(Value::Array(items)) if matches!(items.first(), Some(Value::Object(_))) => {
                items.into_iter().next()
            }
            other => other,
        };
        let mut inner = match found {
            Some(Value::Object(inner)) => inner,
            other if strictness == Strictness::Lenient => {
                if let Some(value) = other {
                    fields.insert(member.clone(), value);
                }
                return Ok(fields);
            }
            _ => return Err(format!("no object `{member}` holding the tokens")),
        };
        for (name, value) in fields {
            if !TOKEN_MEMBERS.contains(&name.as_str()) {
                inner.entry(name).or_insert(value);
            }
        }
        fields = inner;
    }
    Ok(fields)
}

/// `server-unavailable` for a 429 or 5xx (with `Retry-After` as a hint, in delta-seconds or
/// as an HTTP-date counted from the response's `Date` or else `now`, and any OAuth error in
/// the body), else `None`.
pub fn unavailable(
    response: &HttpResponse,
    fields: Option<&Map<String, Value>>,
    now: u64,
    secrets: &[&str],
) -> Option<Error> {
    let status = response.status;
    if status != 429 && !(500..600).contains(&status) {
        return None;
    }
    Some(Error::ServerUnavailable(ServerUnavailable {
        status,
        retry_after_seconds: retry_after(response, now),
        error: fields.and_then(|fields| scrubbed_oauth_error(fields, secrets)),
    }))
}

/// The JSON object of an answer that is not a token response (device authorization,
/// introspection): 429/5xx is `server-unavailable`, an OAuth error body `server-said-no`,
/// anything but a 2xx JSON object `invalid-response`.
pub fn json_answer(
    response: &HttpResponse,
    secrets: &[&str],
    now: u64,
) -> Result<Map<String, Value>, Error> {
    if response.body.len() > MAX_TOKEN_RESPONSE_BYTES {
        return Err(Error::InvalidResponse(InvalidResponse {
            status: response.status,
            reason: format!("body over {MAX_TOKEN_RESPONSE_BYTES} bytes"),
            excerpt: String::new(),
        }));
    }
    let fields = parse_fields(response);
    if let Some(error) = unavailable(response, fields.as_ref(), now, secrets) {
        return Err(error);
    }
    if let Some(error) = fields
        .as_ref()
        .and_then(|fields| scrubbed_oauth_error(fields, secrets))
    {
        return Err(Error::ServerSaidNo(error));
    }
    if !(200..300).contains(&response.status) {
        return Err(invalid_answer(
            response,
            "error status without an OAuth error code",
            secrets,
        ));
    }
    fields.ok_or_else(|| invalid_answer(response, "body is not a JSON object", secrets))
}

/// The `Retry-After` of `response` in seconds (RFC 9110 §10.2.3): delta-seconds as sent,
/// or an HTTP-date counted from the response's `Date` (else `now`); `None` when absent or
/// unreadable.
pub fn retry_after(response: &HttpResponse, now: u64) -> Option<u64> {
    let value = response.header("retry-after")?;
    crate::http_date::retry_after_seconds(value, response.header("date"), now)
}

/// An `invalid-response` error for `response`, with a scrubbed excerpt: `secrets` and, as for
/// token responses, the credentials the answer itself carries (a device code) are removed
/// wherever they appear.
pub fn invalid_answer(response: &HttpResponse, reason: &str, secrets: &[&str]) -> Error {
    let mut found = vec![];
    if let Some(fields) = parse_fields(response) {
        credentials_in(&fields, 3, &mut found);
    }
    let mut all_secrets: Vec<&str> = secrets.to_vec();
    all_secrets.extend(found.iter().map(String::as_str));
    Error::InvalidResponse(InvalidResponse {
        status: response.status,
        reason: reason.to_owned(),
        excerpt: excerpt(&response.body, &all_secrets),
    })
}

/// The response body as an object: JSON, or a form for `application/x-www-form-urlencoded`
/// (some vendors answer that way unless asked for JSON).
pub fn parse_fields(response: &HttpResponse) -> Option<Map<String, Value>> {
    // A hostile body could expand into far more memory than its size as a JSON tree.
    if response.body.len() > MAX_TOKEN_RESPONSE_BYTES {
        return None;
    }
    if let Ok(Value::Object(map)) = serde_json::from_slice::<Value>(&response.body) {
        return Some(map);
    }
    let is_form = response.media_type().as_deref() == Some("application/x-www-form-urlencoded");
    if !is_form {
        return None;
    }
    let mut map = Map::new();
    for pair in form::decode(&response.body) {
        map.entry(pair.name).or_insert(Value::String(pair.value));
    }
    Some(map)
}

/// An RFC 6749 §5.2 error, if the object carries a string `error`.
pub fn oauth_error(fields: &Map<String, Value>) -> Option<OAuthError> {
    let code = fields.get("error")?.as_str()?;
    let text = |name: &str| fields.get(name).and_then(Value::as_str).map(str::to_owned);
    Some(OAuthError {
        code: ErrorCode::parse(code),
        description: text("error_description"),
        uri: text("error_uri"),
    })
}

/// Longest `error_description` or `error_uri` kept, in bytes: a hostile server's page-long
/// description does not fill every log line and terminal it reaches.
pub const MAX_ERROR_TEXT_BYTES: usize = 1024;

/// [`oauth_error`] with the request's own `secrets` (a client secret, a refresh token, a code
/// a server echoes back) replaced by `[redacted]` in its description and URI, which are cut
/// to [`MAX_ERROR_TEXT_BYTES`].
pub fn scrubbed_oauth_error(fields: &Map<String, Value>, secrets: &[&str]) -> Option<OAuthError> {
    let scrub = |text: String| {
        let mut text = secrets
            .iter()
            .filter(|secret| !secret.is_empty())
            .fold(text, |text, secret| text.replace(secret, "[redacted]"));
        text.truncate(text.floor_char_boundary(MAX_ERROR_TEXT_BYTES));
        text
    };
    oauth_error(fields).map(|error| OAuthError {
        description: error.description.map(scrub),
        uri: error.uri.map(scrub),
        ..error
    })
}

fn token_set_from_fields(
    fields: TokenObject<'_>,
    requested_scopes: &[String],
    now: u64,
    strictness: Strictness,
) -> Result<TokenSet, String> {
    // Leniently, a malformed optional member is treated as absent.
    fn optional<T>(
        result: Result<T, String>,
        absent: impl FnOnce() -> T,
        strictness: Strictness,
    ) -> Result<T, String> {
        match result {
            Err(_) if strictness == Strictness::Lenient => Ok(absent()),
            other => other,
        }
    }
    let access_token = match fields.access_token {
        Some(Member::Text(token)) if !token.is_empty() => Secret::new(token.into_owned()),
        Some(_) => return Err("`access_token` is not a non-empty string".into()),
        None => return Err("no `access_token`".into()),
    };
    let token_type = optional(
        match fields.token_type {
            Some(Member::Text(kind)) => Ok(kind.to_ascii_lowercase()),
            // RFC 6749 §5.1 requires it, but several vendors omit it for bearer tokens.
            None | Some(Member::Other(Value::Null)) => Ok("bearer".to_owned()),
            Some(_) => Err("`token_type` is not a string".into()),
        },
        || "bearer".to_owned(),
        strictness,
    )?;
    let expires_in = optional(
        match fields.expires_in {
            None | Some(Member::Other(Value::Null)) => Ok(None),
            Some(Member::Other(Value::Number(number))) => number
                .as_u64()
                .or_else(|| number.as_f64().filter(|f| *f >= 0.0).map(|f| f as u64))
                .map(Some)
                .ok_or_else(|| "`expires_in` is negative".to_owned()),
            Some(Member::Text(text)) => text
                .trim()
                .parse::<u64>()
                .map(Some)
                .map_err(|_| "`expires_in` is not a whole number of seconds".to_owned()),
            Some(_) => Err("`expires_in` is not a number".into()),
        },
        || None,
        strictness,
    )?;
    let optional_secret = |value: Option<Member<'_>>, name: &str| {
        optional(
            match value {
                None | Some(Member::Other(Value::Null)) => Ok(None),
                Some(Member::Text(text)) if text.is_empty() => Ok(None),
                Some(Member::Text(text)) => Ok(Some(Secret::new(text.into_owned()))),
                Some(_) => Err(format!("`{name}` is not a string")),
            },
            || None,
            strictness,
        )
    };
    let refresh_token = optional_secret(fields.refresh_token, "refresh_token")?;
    let id_token = optional_secret(fields.id_token, "id_token")?;
    let scopes = optional(
        match fields.scope {
            None | Some(Member::Other(Value::Null)) => Ok(requested_scopes.to_vec()),
            Some(Member::Text(text)) => Ok(split_scopes(&text)),
            Some(Member::Other(Value::Array(items))) => Ok(items
                .into_iter()
                .filter_map(|item| item.as_str().map(str::to_owned))
                .collect()),
            Some(_) => Err("`scope` is not a string".into()),
        },
        || requested_scopes.to_vec(),
        strictness,
    )?;
    let extras = fields
        .others
        .into_iter()
        .map(|(name, value)| KeyValue::new(name, value.to_string()))
        .collect();
    Ok(TokenSet {
        access_token,
        token_type,
        expires_at: expires_in.map(|seconds| now.saturating_add(seconds)),
        refresh_token,
        id_token,
        scopes,
        obtained_at: now,
        extras,
        dpop_key_thumbprint: None,
    })
}

/// Splits a scope string on spaces and commas (RFC 6749 §3.3 uses spaces; several vendors
/// answer with commas), dropping empty items.
pub fn split_scopes(text: &str) -> Vec<String> {
    // One separator per search lets `str::split` find it with `memchr`, several bytes per
    // step. Commas are rare: only a text that holds one has its parts split again.
    let commas = text.contains(',');
    let mut scopes = Vec::new();
    for part in text.split(' ') {
        if commas {
            scopes.extend(
                part.split(',')
                    .filter(|scope| !scope.is_empty())
                    .map(str::to_owned),
            );
        } else if !part.is_empty() {
            scopes.push(part.to_owned());
        }
    }
    scopes
}

/// Keys whose values are credentials wherever they appear in a body.
const SCRUBBED_KEYS: [&str; 8] = [
    "access_token",
    "refresh_token",
    "id_token",
    "device_code",
    "client_secret",
    "code",
    "code_verifier",
    "password",
];

/// Replaces the values of credential keys, in JSON (`"key": "value"`) and form
/// (`key=value`, the key percent-decoded) notation, with `[redacted]`, whatever their
/// encoding. One pass: keys are only tried where a JSON string or a form pair can start.
fn scrub_credential_values(text: &str) -> String {
    let json_keys = SCRUBBED_KEYS.map(|key| format!("\"{key}\""));
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    'scan: while let Some(c) = rest.chars().next() {
        if c == '"' {
            for json_key in &json_keys {
                let Some(after) = rest.strip_prefix(json_key.as_str()) else {
                    continue;
                };
                let value = after.trim_start().strip_prefix(':').map(str::trim_start);
                if let Some(quoted) = value.and_then(|v| v.strip_prefix('"')) {
                    out.push_str(json_key);
                    out.push_str(":\"[redacted]\"");
                    rest = quoted
                        .get(json_string_end(quoted) + 1..)
                        .unwrap_or_default();
                    continue 'scan;
                }
                // Not JSON after all (`"access_token": abc123}`): the bare value up to the
                // next delimiter, unless it is a JSON number or literal (`"code": 400`).
                if let Some(bare) = value {
                    let end = bare
                        .find(|c: char| ",}]".contains(c) || c.is_whitespace())
                        .unwrap_or(bare.len());
                    let word = &bare[..end];
                    // Checked by hand: parsing a float would add its tables to the component.
                    let number = word
                        .trim_start_matches('-')
                        .starts_with(|c: char| c.is_ascii_digit())
                        && word
                            .bytes()
                            .all(|b| b.is_ascii_digit() || b"+-.eE".contains(&b));
                    let literal = number || matches!(word, "true" | "false" | "null");
                    if end > 0 && !literal {
                        out.push_str(json_key);
                        out.push_str(":[redacted]");
                        rest = &bare[end..];
                        continue 'scan;
                    }
                }
            }
        }
        let at_boundary = out.is_empty() || out.ends_with(['&', '?', ' ', '\n']);
        if at_boundary && let Some((key, value)) = form_credential(rest) {
            out.push_str(key);
            out.push_str("=[redacted]");
            rest = &value[value.find(['&', ' ', '\n']).unwrap_or(value.len())..];
            continue 'scan;
        }
        out.push(c);
        rest = &rest[c.len_utf8()..];
    }
    out
}

/// The byte offset of the closing quote of a JSON string whose opening quote was just
/// consumed (the end of `quoted` when it is unterminated).
fn json_string_end(quoted: &str) -> usize {
    let mut escaped = false;
    for (at, c) in quoted.char_indices() {
        match c {
            '\\' if !escaped => escaped = true,
            '"' if !escaped => return at,
            _ => escaped = false,
        }
    }
    quoted.len()
}

/// When `text` starts with a form pair whose (percent-decoded) key is a credential key:
/// the raw key and the text after its `=`.
fn form_credential(text: &str) -> Option<(&str, &str)> {
    // Credential keys are short; a longer run is not a key worth decoding.
    // Bytes, not `str`: a 64-byte window may end inside a character (`=` is ASCII).
    let window = &text.as_bytes()[..text.len().min(64)];
    let equals = window.iter().position(|&byte| byte == b'=')?;
    let raw_key = &text[..equals];
    if raw_key.is_empty() || raw_key.contains(['&', ' ', '\n', '"']) {
        return None;
    }
    let is_credential = if raw_key.contains(['%', '+']) {
        url::form_urlencoded::parse(raw_key.as_bytes())
            .next()
            .is_some_and(|(key, _)| SCRUBBED_KEYS.contains(&key.as_ref()))
    } else {
        SCRUBBED_KEYS.contains(&raw_key)
    };
    is_credential.then(|| (raw_key, &text[equals + 1..]))
}

/// A JSON body re-written with every credential member's value replaced (members compared
/// after JSON unescaping, at any depth), or `None` when the body is not JSON.
fn scrubbed_json(body: &[u8]) -> Option<String> {
    fn scrub(value: &mut Value) {
        match value {
            Value::Object(members) => {
                for (name, member) in members.iter_mut() {
                    let credential_like = matches!(member, Value::String(_) | Value::Array(_));
                    if credential_like && SCRUBBED_KEYS.contains(&name.as_str()) {
                        *member = Value::String("[redacted]".to_owned());
                    } else {
                        scrub(member);
                    }
                }
            }
            Value::Array(items) => items.iter_mut().for_each(scrub),
            _ => {}
        }
    }
    let mut value: Value = serde_json::from_slice(body).ok()?;
    scrub(&mut value);
    serde_json::to_string(&value).ok()
}

/// A short, secret-free excerpt of a body for diagnosis: at most `EXCERPT_CHARS` characters,
/// the request's own secrets replaced, and any run of 20 or more token-like characters
/// (which could be a token or key the server echoed) replaced by `[redacted]`.
pub fn excerpt(body: &[u8], secrets: &[&str]) -> String {
    // JSON is parsed and re-written, so that escapes (`acc\u0065ss_token`) cannot hide a
    // credential member; anything else is scrubbed as text.
    // Only a body small enough to parse cheaply (and within the instance's memory) is
    // re-written; a larger one is scrubbed as text.
    let rewritten = (body.len() <= EXCERPT_SCAN_BYTES)
        .then(|| scrubbed_json(body))
        .flatten();
    let mut text = rewritten.unwrap_or_else(|| String::from_utf8_lossy(body).into_owned());
    // The request's secrets go first, over the whole body, so that the cut below cannot
    // leave a secret's first half behind.
    for secret in secrets.iter().filter(|secret| !secret.is_empty()) {
        text = text.replace(secret, "[redacted]");
    }
    // The excerpt shows the first `EXCERPT_CHARS`; scanning more than this only costs time
    // (a hostile server can send a megabyte of error page).
    text.truncate(text.floor_char_boundary(EXCERPT_SCAN_BYTES));
    let text = scrub_credential_values(&text);
    let mut scrubbed = String::with_capacity(text.len().min(EXCERPT_CHARS * 2));
    let mut run = String::new();
    let is_token_char = |c: char| c.is_ascii_alphanumeric() || "-._~+/=".contains(c);
    let flush = |run: &mut String, out: &mut String| {
        if run.chars().count() >= 20 {
            out.push_str("[redacted]");
        } else {
            out.push_str(run);
        }
        run.clear();
    };
    for c in text.chars() {
        if is_token_char(c) {
            run.push(c);
        } else {
            flush(&mut run, &mut scrubbed);
            scrubbed.push(if c.is_control() { ' ' } else { c });
        }
        if scrubbed.chars().count() >= EXCERPT_CHARS {
            break;
        }
    }
    flush(&mut run, &mut scrubbed);
    scrubbed.chars().take(EXCERPT_CHARS).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn response(status: u16, content_type: &str, body: &str) -> HttpResponse {
        HttpResponse {
            status,
            headers: vec![KeyValue::new("Content-Type", content_type)],
            body: body.as_bytes().to_vec(),
        }
    }

    fn parse(response: &HttpResponse) -> Result<TokenSet, Error> {
        parse_token_response(
            response,
            &["requested".to_owned()],
            &TokenResponseQuirks::default(),
            1000,
            &["client-secret"],
        )
    }

    fn invalid(result: Result<TokenSet, Error>) -> InvalidResponse {
        match result {
            Err(Error::InvalidResponse(invalid)) => invalid,
            other => panic!("expected an invalid response, got {other:?}"),
        }
    }

    #[test]
    fn full_json_response() {
        let set = parse(&response(
            200,
            "application/json; charset=utf-8",
            r#"{"access_token":"at","token_type":"Bearer","expires_in":3600,
                "refresh_token":"rt","id_token":"idt","scope":"openid profile",
                "custom":{"a":1},"user_id":42}"#,
        ))
        .unwrap();
        assert_eq!(set.access_token.expose(), "at");
        assert_eq!(set.token_type, "bearer");
        assert_eq!(set.expires_at, Some(4600));
        assert_eq!(set.refresh_token.as_ref().map(Secret::expose), Some("rt"));
        assert_eq!(set.id_token.as_ref().map(Secret::expose), Some("idt"));
        assert_eq!(set.scopes, ["openid", "profile"]);
        assert_eq!(set.obtained_at, 1000);
        assert_eq!(
            set.extras,
            [
                KeyValue::new("custom", r#"{"a":1}"#),
                KeyValue::new("user_id", "42")
            ]
        );
    }

    #[test]
    fn form_response_string_expiry_comma_scopes() {
        let set = parse(&response(
            200,
            "application/x-www-form-urlencoded",
            "access_token=gho_abc&token_type=bearer&scope=repo%2Cuser&expires_in=%20120",
        ))
        .unwrap();
        assert_eq!(set.access_token.expose(), "gho_abc");
        assert_eq!(set.scopes, ["repo", "user"]);
        assert_eq!(set.expires_at, Some(1120));
        assert!(set.refresh_token.is_none());
    }

    #[test]
    fn missing_expiry_scope_and_type() {
        let set = parse(&response(
            200,
            "application/json",
            r#"{"access_token":"at"}"#,
        ))
        .unwrap();
        assert_eq!(set.expires_at, None);
        assert_eq!(set.scopes, ["requested"]);
        assert_eq!(set.token_type, "bearer");
        let set = parse(&response(
            200,
            "application/json",
            r#"{"access_token":"at","expires_in":"7"}"#,
        ))
        .unwrap();
        assert_eq!(set.expires_at, Some(1007));
    }

    #[test]
    fn error_bodies_become_oauth_errors() {
        for (status, content_type) in [
            (400, "application/json"),
            (401, "application/json"),
            (200, "application/json"),
        ] {
            let error = parse(&response(
                status,
                content_type,
                r#"{"error":"invalid_grant","error_description":"code expired","error_uri":"https://a.example/e"}"#,
            ))
            .unwrap_err();
            assert_eq!(
                error,
                Error::ServerSaidNo(OAuthError {
                    code: ErrorCode::InvalidGrant,
                    description: Some("code expired".into()),
                    uri: Some("https://a.example/e".into()),
                })
            );
        }
        let error = parse(&response(
            400,
            "application/x-www-form-urlencoded",
            "error=bad_verification_code",
        ))
        .unwrap_err();
        assert_eq!(
            error,
            Error::ServerSaidNo(OAuthError {
                code: ErrorCode::Extension("bad_verification_code".into()),
                description: None,
                uri: None,
            })
        );
    }

    /// Security review: a server that echoes the request's secret in `error_description`
    /// (some do, "invalid client_secret 'abc'") must not put it into the error.
    #[test]
    fn error_descriptions_are_scrubbed_of_the_requests_secrets_and_bounded() {
        let echo = response(
            401,
            "application/json",
            r#"{"error":"invalid_client","error_description":"bad secret client-secret for you","error_uri":"https://a.example/?s=client-secret"}"#,
        );
        assert_eq!(
            parse(&echo).unwrap_err(),
            Error::ServerSaidNo(OAuthError {
                code: ErrorCode::InvalidClient,
                description: Some("bad secret [redacted] for you".into()),
                uri: Some("https://a.example/?s=[redacted]".into()),
            })
        );
        let mut busy = response(
            503,
            "application/json",
            r#"{"error":"temporarily_unavailable","error_description":"client-secret"}"#,
        );
        busy.headers.push(KeyValue::new("Retry-After", "1"));
        assert_eq!(
            parse(&busy).unwrap_err(),
            Error::ServerUnavailable(ServerUnavailable {
                status: 503,
                retry_after_seconds: Some(1),
                error: Some(OAuthError {
                    code: ErrorCode::TemporarilyUnavailable,
                    description: Some("[redacted]".into()),
                    uri: None,
                }),
            })
        );
        let long = format!(
            r#"{{"error":"invalid_request","error_description":"{}"}}"#,
            "é".repeat(2000)
        );
        let Error::ServerSaidNo(error) =
            parse(&response(400, "application/json", &long)).unwrap_err()
        else {
            panic!("not the server's refusal");
        };
        assert_eq!(
            error.description,
            Some("é".repeat(MAX_ERROR_TEXT_BYTES / 2))
        );
    }

    #[test]
    fn garbage_is_an_invalid_response_with_a_scrubbed_excerpt() {
        let page = invalid(parse(&response(
            404,
            "text/html",
            "<html><body>Bad gateway client-secret eyJhbGciOiJSUzI1NiJ9.payload.sig</body></html>",
        )));
        assert_eq!(page.status, 404);
        assert_eq!(
            page.reason,
            "error status with a body that is not an OAuth error"
        );
        assert_eq!(
            page.excerpt,
            "<html><body>Bad gateway [redacted] [redacted]</body></html>"
        );

        let not_json = invalid(parse(&response(200, "text/html", "<html>login</html>")));
        assert_eq!(not_json.reason, "body is neither a JSON object nor a form");

        let no_token = invalid(parse(&response(
            200,
            "application/json",
            r#"{"token_type":"bearer"}"#,
        )));
        assert_eq!(no_token.reason, "no `access_token`");

        let wrong_type = invalid(parse(&response(
            200,
            "application/json",
            r#"{"access_token":5}"#,
        )));
        assert_eq!(
            wrong_type.reason,
            "`access_token` is not a non-empty string"
        );

        let bad_expiry = invalid(parse(&response(
            200,
            "application/json",
            r#"{"access_token":"a","expires_in":"soon"}"#,
        )));
        assert_eq!(
            bad_expiry.reason,
            "`expires_in` is not a whole number of seconds"
        );

        let negative = invalid(parse(&response(
            200,
            "application/json",
            r#"{"access_token":"a","expires_in":-5}"#,
        )));
        assert_eq!(negative.reason, "`expires_in` is negative");

        let array = invalid(parse(&response(200, "application/json", "[1,2]")));
        assert_eq!(array.reason, "body is neither a JSON object nor a form");

        let status_json = invalid(parse(&response(
            403,
            "application/json",
            r#"{"message":"oops"}"#,
        )));
        assert_eq!(
            status_json.reason,
            "error status without an OAuth error code"
        );
    }

    #[test]
    fn overload_and_server_errors_are_retryable() {
        let mut busy = response(429, "text/plain", "slow down");
        busy.headers.push(KeyValue::new("Retry-After", "17"));
        assert_eq!(
            parse(&busy).unwrap_err(),
            Error::ServerUnavailable(ServerUnavailable {
                status: 429,
                retry_after_seconds: Some(17),
                error: None,
            })
        );
        let mut dated = response(
            503,
            "application/json",
            r#"{"error":"temporarily_unavailable"}"#,
        );
        // An HTTP-date (RFC 9110 §10.2.3) counts from the response's own `Date`.
        dated.headers.push(KeyValue::new(
            "Retry-After",
            "Wed, 21 Oct 2015 07:28:00 GMT",
        ));
        dated
            .headers
            .push(KeyValue::new("Date", "Wed, 21 Oct 2015 07:27:30 GMT"));
        assert_eq!(
            parse(&dated).unwrap_err(),
            Error::ServerUnavailable(ServerUnavailable {
                status: 503,
                retry_after_seconds: Some(30),
                error: Some(OAuthError {
                    code: ErrorCode::TemporarilyUnavailable,
                    description: None,
                    uri: None,
                }),
            })
        );
        assert!(matches!(
            parse(&response(502, "text/html", "<html>bad gateway</html>")).unwrap_err(),
            Error::ServerUnavailable(ServerUnavailable { status: 502, .. })
        ));
    }

    #[test]
    fn refresh_answers_are_read_leniently_so_a_rotated_token_is_kept() {
        let quirks = TokenResponseQuirks {
            path: vec!["authed_user".into()],
            ..TokenResponseQuirks::default()
        };
        // Flat answer (no `authed_user`), malformed optional members: still a token set.
        let fresh = parse_refresh_response(
            &response(
                200,
                "application/json",
                r#"{"access_token":"at2","refresh_token":"rt2","token_type":7,"expires_in":"soon","scope":5}"#,
            ),
            &["old".to_owned()],
            &quirks,
            100,
            &[],
        )
        .unwrap();
        assert_eq!(fresh.refresh_token.unwrap().expose(), "rt2");
        assert_eq!(fresh.token_type, "bearer");
        assert_eq!(fresh.expires_at, None);
        assert_eq!(fresh.scopes, ["old"]);
        // The same answer to a code exchange is refused.
        assert!(matches!(
            parse_token_response(
                &response(
                    200,
                    "application/json",
                    r#"{"access_token":"at2","expires_in":"soon"}"#
                ),
                &[],
                &TokenResponseQuirks::default(),
                100,
                &[]
            ),
            Err(Error::InvalidResponse(_))
        ));
    }

    #[test]
    fn a_path_member_that_is_an_array_stands_for_its_first_object() {
        let quirks = TokenResponseQuirks {
            path: vec!["data".into()],
            ..TokenResponseQuirks::default()
        };
        let set = parse_token_response(
            &response(
                200,
                "application/json",
                r#"{"data":[{"access_token":"ig","user_id":"1020","permissions":"a,b"}]}"#,
            ),
            &[],
            &quirks,
            0,
            &[],
        )
        .unwrap();
        assert_eq!(set.access_token.expose(), "ig");
        assert_eq!(
            set.extras,
            [
                KeyValue::new("permissions", "\"a,b\""),
                KeyValue::new("user_id", "\"1020\"")
            ]
        );
        // An empty array, or one of strings, holds no tokens.
        for body in [r#"{"data":[]}"#, r#"{"data":["x"]}"#] {
            assert!(matches!(
                parse_token_response(
                    &response(200, "application/json", body),
                    &[],
                    &quirks,
                    0,
                    &[]
                ),
                Err(Error::InvalidResponse(_))
            ));
        }
    }

    #[test]
    fn outer_token_members_are_not_promoted_into_the_nested_set() {
        let quirks = TokenResponseQuirks {
            path: vec!["authed_user".into()],
            ..TokenResponseQuirks::default()
        };
        let set = parse_token_response(
            &response(
                200,
                "application/json",
                r#"{"access_token":"bot","refresh_token":"bot-rt","expires_in":60,"team":"T",
                    "authed_user":{"access_token":"user"}}"#,
            ),
            &[],
            &quirks,
            0,
            &[],
        )
        .unwrap();
        assert_eq!(set.access_token.expose(), "user");
        assert!(
            set.refresh_token.is_none(),
            "the bot's refresh token is not the user's"
        );
        assert_eq!(set.expires_at, None);
        assert_eq!(set.extras, [KeyValue::new("team", "\"T\"")]);
    }

    #[test]
    fn response_credentials_are_scrubbed_from_excerpts() {
        let error = parse(&response(
            200,
            "application/json",
            r#"{"access_token":"short\/tok","refresh_token":"r%2B1","token_type":5}"#,
        ))
        .unwrap_err();
        match error {
            Error::InvalidResponse(invalid) => {
                assert_eq!(
                    invalid.excerpt,
                    r#"{"access_token":"[redacted]","refresh_token":"[redacted]","token_type":5}"#
                );
                let form = excerpt(b"error=x&refresh_token=abc%2Bdef&code=123", &[]);
                assert_eq!(form, "error=x&refresh_token=[redacted]&code=[redacted]");
                // Bodies that are neither: a truncated object, a bare (unquoted) value.
                for (body, expected) in [
                    (
                        r#"{"access_token":"SECRET3","#,
                        r#"{"access_token":"[redacted]","#,
                    ),
                    (
                        r#"{"access_token": SECRET7, "refresh_token" :SECRET8}"#,
                        r#"{"access_token":[redacted], "refresh_token":[redacted]}"#,
                    ),
                    ("access_token=SECRET6&&", "access_token=[redacted]&&"),
                ] {
                    assert_eq!(excerpt(body.as_bytes(), &[]), expected, "{body}");
                }
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn oversized_answers_are_refused_before_parsing() {
        let big = format!("[{}0]", "0,".repeat(MAX_TOKEN_RESPONSE_BYTES));
        assert!(parse_fields(&response(200, "application/json", &big)).is_none());
        assert!(matches!(
            json_answer(&response(200, "application/json", &big), &[], 0),
            Err(Error::InvalidResponse(InvalidResponse { excerpt, .. })) if excerpt.is_empty()
        ));
    }

    #[test]
    fn debug_output_holds_no_credentials() {
        let set = parse(&response(
            200,
            "application/json",
            r#"{"access_token":"AT-SECRET","refresh_token":"RT-SECRET","id_token":"ID-SECRET",
                "authed_user":{"access_token":"NESTED-SECRET"}}"#,
        ))
        .unwrap();
        let request = crate::http::HttpRequest {
            method: crate::http::Method::Post,
            url: "https://a.example/token".into(),
            headers: vec![KeyValue::new("Authorization", "Basic Q0xJRU5ULVNFQ1JFVA==")],
            body: b"refresh_token=RT-SECRET&client_secret=CS".to_vec(),
        };
        let printed = format!("{set:?} {request:?}");
        for secret in [
            "AT-SECRET",
            "RT-SECRET",
            "ID-SECRET",
            "NESTED-SECRET",
            "Q0xJRU5U",
            "CS&",
        ] {
            assert!(!printed.contains(secret), "{secret} in {printed}");
        }
        assert!(printed.contains("authed_user"));
    }

    #[test]
    fn scopes_split_on_spaces_and_commas_without_empty_items() {
        assert_eq!(split_scopes("a  b,,c "), ["a", "b", "c"]);
        assert_eq!(split_scopes(",é,ü x"), ["é", "ü", "x"]);
        assert!(split_scopes("").is_empty());
        assert!(split_scopes(" , ").is_empty());
    }

    /// The one-pass reading of common answers gives what the general reading gives.
    #[test]
    fn plain_answers_read_in_one_pass_as_the_general_path_reads_them() {
        let bodies = [
            r#"{"access_token":"at","token_type":"Bearer","expires_in":3600,
                "refresh_token":"rt","id_token":"idt","scope":"openid profile",
                "custom":{"a":1},"user_id":42,"error":"ignored"}"#,
            r#"{"access_token":"at"}"#,
            r#"{"access_token":"first","access_token":"last","zz":1,"aa":[true,null]}"#,
            r#"{"acc\u0065ss_token":"escaped","sc\u006fpe":"a,b c","t\u00e9":"é"}"#,
            r#"{"access_token":"at","token_type":null,"expires_in":null,"scope":null,
                "refresh_token":"","id_token":null}"#,
            r#"{"access_token":"at","expires_in":"60","scope":["a","b",3]}"#,
            r#"{"access_token":"at","expires_in":12.7,"scope":",,a,,b,"}"#,
            r#"{"access_token":"at","token_type":7,"expires_in":"soon","scope":5}"#,
            r#"{"access_token":"at","refresh_token":{"nested":true}}"#,
            r#"{"access_token":""}"#,
        ];
        let requested = ["requested".to_owned()];
        let quirks = TokenResponseQuirks::default();
        let mut plain = 0;
        for body in bodies {
            let answer = response(200, "application/json", body);
            for strictness in [Strictness::Strict, Strictness::Lenient] {
                let Some(fast) = plain_token_set(&answer, &requested, &quirks, 5, strictness)
                else {
                    continue;
                };
                plain += 1;
                let general =
                    general_token_set(&answer, &requested, &quirks, 5, &[], strictness).unwrap();
                let secrets = |set: &TokenSet| {
                    [
                        Some(set.access_token.expose().to_owned()),
                        set.refresh_token.as_ref().map(|s| s.expose().to_owned()),
                        set.id_token.as_ref().map(|s| s.expose().to_owned()),
                    ]
                };
                assert_eq!(secrets(&fast), secrets(&general), "{body}");
                assert_eq!(fast.token_type, general.token_type, "{body}");
                assert_eq!(fast.expires_at, general.expires_at, "{body}");
                assert_eq!(fast.scopes, general.scopes, "{body}");
                assert_eq!(fast.obtained_at, general.obtained_at, "{body}");
                assert_eq!(fast.extras, general.extras, "{body}");
            }
        }
        // Both readings of every body, but the strict ones of the two malformed bodies and
        // both of the empty token.
        assert_eq!(plain, 16);
    }

    #[test]
    fn oversized_body_is_refused_without_excerpt() {
        let big = "x".repeat(MAX_TOKEN_RESPONSE_BYTES + 1);
        let error = invalid(parse(&response(200, "application/json", &big)));
        assert_eq!(error.excerpt, "");
    }

    /// Found while fuzzing (reported by the fuzzing pass): credential members written with
    /// escapes, or form keys percent-encoded, kept their values in the excerpt.
    #[test]
    fn escaped_credential_members_are_scrubbed() {
        let json = br#"{"acc\u0065ss_token":"abcdefgh\u0069jk","nested":{"c\u006fde":"xyzzy"},"code":400}"#;
        assert_eq!(
            excerpt(json, &[]),
            r#"{"access_token":"[redacted]","code":400,"nested":{"code":"[redacted]"}}"#
        );
        assert_eq!(
            excerpt(b"error=x&access%5Ftoken=abcdef&refresh_token=ghi", &[]),
            "error=x&access%5Ftoken=[redacted]&refresh_token=[redacted]"
        );
        // A multi-byte character across the 64-byte key window does not hide a form key.
        let long = format!("error=bad&password=hunter2!&note={}é", "a".repeat(40));
        assert!(!excerpt(long.as_bytes(), &[]).contains("hunter2"));
        // Not JSON: scrubbed as text, as before.
        assert_eq!(
            excerpt(br#"<p>"access_token": "abc" and more"#, &[]),
            r#"<p>"access_token":"[redacted]" and more"#
        );
    }

    #[test]
    fn excerpt_is_bounded() {
        let text = "word ".repeat(100);
        assert_eq!(excerpt(text.as_bytes(), &[]).chars().count(), EXCERPT_CHARS);
        assert_eq!(excerpt("line\nbreak\u{0}".as_bytes(), &[]), "line break ");
    }
}

//! Reading a JSON profile into a [`ProviderProfile`], by hand (see `crate::json` for why).
//!
//! The format is the one the `serde` attributes on the profile's types describe: kebab-case
//! members, every member but `token-url` optional, unknown members refused. Those
//! attributes stay as the format's reference: the unit tests and the `profile` fuzz target
//! check that this reader and serde's derived one accept the same documents and read them
//! the same way.

use crate::prelude::*;

use crate::client_auth::SigningAlgorithm;
use crate::json::{self, At, Invalid, Json, Object};

use super::{
    AssertionAudience, BodyFormat, ClientAuthMethod, KeyValue, OfflineAccess, PkceMethod,
    ProviderProfile, RequestExtras, TokenHeader, TokenPlacement, TokenRejection,
    TokenRequestExtras, TokenResponseQuirks,
};

/// A profile's members, in the order of its fields (the order serde lists them in).
const PROFILE: &[&str] = &[
    "id",
    "issuer",
    "authorize-url",
    "token-url",
    "refresh-url",
    "revocation-url",
    "introspection-url",
    "device-authorization-url",
    "pushed-authorization-request-url",
    "requires-pushed-authorization-requests",
    "registration-url",
    "dpop-algorithms",
    "api-base-url",
    "userinfo-url",
    "variables",
    "scope-separator",
    "default-scopes",
    "pkce",
    "client-auth",
    "assertion-audience",
    "requires-iss",
    "authorize-params",
    "token-requests",
    "token-request-format",
    "offline-access",
    "token-response",
    "token-placement",
    "token-rejection",
    "client-id-parameter",
    "refresh-redirect-uri",
];

/// Reads a profile document; nothing is validated beyond the format.
pub fn profile(value: Json) -> Result<ProviderProfile, Invalid> {
    let mut object = Object::new(value, At::ROOT, "a provider profile", PROFILE)?;
    let o = &mut object;
    let token_url = o.require("token-url")?;
    let mut p = ProviderProfile::new(json::string(token_url, &o.at().member("token-url"))?);
    // Each member read into the field that holds its default, so that an error drops one
    // profile rather than every field read so far (which made this function 16 KB).
    set(o, "id", &mut p.id, json::string)?;
    set(o, "issuer", &mut p.issuer, json::optional_string)?;
    set(
        o,
        "authorize-url",
        &mut p.authorize_url,
        json::optional_string,
    )?;
    set(o, "refresh-url", &mut p.refresh_url, json::optional_string)?;
    set(
        o,
        "revocation-url",
        &mut p.revocation_url,
        json::optional_string,
    )?;
    set(
        o,
        "introspection-url",
        &mut p.introspection_url,
        json::optional_string,
    )?;
    set(
        o,
        "device-authorization-url",
        &mut p.device_authorization_url,
        json::optional_string,
    )?;
    set(
        o,
        "pushed-authorization-request-url",
        &mut p.pushed_authorization_request_url,
        json::optional_string,
    )?;
    set(
        o,
        "requires-pushed-authorization-requests",
        &mut p.requires_pushed_authorization_requests,
        json::boolean,
    )?;
    set(
        o,
        "registration-url",
        &mut p.registration_url,
        json::optional_string,
    )?;
    set(o, "dpop-algorithms", &mut p.dpop_algorithms, |value, at| {
        json::array(value, at, signing_algorithm)
    })?;
    set(
        o,
        "api-base-url",
        &mut p.api_base_url,
        json::optional_string,
    )?;
    set(
        o,
        "userinfo-url",
        &mut p.userinfo_url,
        json::optional_string,
    )?;
    set(o, "variables", &mut p.variables, strings)?;
    set(o, "scope-separator", &mut p.scope_separator, json::string)?;
    set(o, "default-scopes", &mut p.default_scopes, strings)?;
    set(o, "pkce", &mut p.pkce, pkce_method)?;
    set(o, "client-auth", &mut p.client_auth, client_auth_method)?;
    set(
        o,
        "assertion-audience",
        &mut p.assertion_audience,
        assertion_audience,
    )?;
    set(o, "requires-iss", &mut p.requires_iss, json::boolean)?;
    set(o, "authorize-params", &mut p.authorize_params, key_values)?;
    set(
        o,
        "token-requests",
        &mut p.token_requests,
        token_request_extras,
    )?;
    set(
        o,
        "token-request-format",
        &mut p.token_request_format,
        body_format,
    )?;
    set(o, "offline-access", &mut p.offline_access, offline_access)?;
    set(
        o,
        "token-response",
        &mut p.token_response,
        token_response_quirks,
    )?;
    set(
        o,
        "token-placement",
        &mut p.token_placement,
        token_placement,
    )?;
    set(
        o,
        "token-rejection",
        &mut p.token_rejection,
        token_rejection,
    )?;
    set(
        o,
        "client-id-parameter",
        &mut p.client_id_parameter,
        json::optional_string,
    )?;
    set(
        o,
        "refresh-redirect-uri",
        &mut p.refresh_redirect_uri,
        json::boolean,
    )?;
    Ok(p)
}

/// Reads the member `name`, if present, into `field` (which keeps its default otherwise).
fn set<T>(
    object: &mut Object<'_>,
    name: &'static str,
    field: &mut T,
    read: impl FnOnce(Json, &At<'_>) -> Result<T, Invalid>,
) -> Result<(), Invalid> {
    if let Some(value) = object.take(name) {
        *field = read(value, &object.at().member(name))?;
    }
    Ok(())
}

fn strings(value: Json, at: &At<'_>) -> Result<Vec<String>, Invalid> {
    json::array(value, at, json::string)
}

fn key_values(value: Json, at: &At<'_>) -> Result<Vec<KeyValue>, Invalid> {
    json::array(value, at, |value, at| {
        let mut o = Object::new(
            value,
            *at,
            "an object with `name` and `value`",
            &["name", "value"],
        )?;
        let name = o.require("name")?;
        let name = json::string(name, &at.member("name"))?;
        let value = o.require("value")?;
        let value = json::string(value, &at.member("value"))?;
        Ok(KeyValue { name, value })
    })
}

fn request_extras(value: Json, at: &At<'_>) -> Result<RequestExtras, Invalid> {
    let o = &mut Object::new(value, *at, "an object", &["params", "headers"])?;
    let mut extras = RequestExtras::default();
    set(o, "params", &mut extras.params, key_values)?;
    set(o, "headers", &mut extras.headers, key_values)?;
    Ok(extras)
}

fn token_request_extras(value: Json, at: &At<'_>) -> Result<TokenRequestExtras, Invalid> {
    const KINDS: &[&str] = &[
        "code-exchange",
        "refresh",
        "client-credentials",
        "device",
        "token-exchange",
        "jwt-bearer",
        "pushed-authorization",
    ];
    let o = &mut Object::new(value, *at, "an object", KINDS)?;
    let mut extras = TokenRequestExtras::default();
    set(
        o,
        "code-exchange",
        &mut extras.code_exchange,
        request_extras,
    )?;
    set(o, "refresh", &mut extras.refresh, request_extras)?;
    set(
        o,
        "client-credentials",
        &mut extras.client_credentials,
        request_extras,
    )?;
    set(o, "device", &mut extras.device, request_extras)?;
    set(
        o,
        "token-exchange",
        &mut extras.token_exchange,
        request_extras,
    )?;
    set(o, "jwt-bearer", &mut extras.jwt_bearer, request_extras)?;
    set(
        o,
        "pushed-authorization",
        &mut extras.pushed_authorization,
        request_extras,
    )?;
    Ok(extras)
}

fn offline_access(value: Json, at: &At<'_>) -> Result<OfflineAccess, Invalid> {
    let o = &mut Object::new(value, *at, "an object", &["scopes", "authorize-params"])?;
    let mut access = OfflineAccess::default();
    set(o, "scopes", &mut access.scopes, strings)?;
    set(
        o,
        "authorize-params",
        &mut access.authorize_params,
        key_values,
    )?;
    Ok(access)
}

fn token_response_quirks(value: Json, at: &At<'_>) -> Result<TokenResponseQuirks, Invalid> {
    const MEMBERS: &[&str] = &["path", "success-flag", "default-expires-in"];
    let o = &mut Object::new(value, *at, "an object", MEMBERS)?;
    let mut quirks = TokenResponseQuirks::default();
    set(o, "path", &mut quirks.path, strings)?;
    set(
        o,
        "success-flag",
        &mut quirks.success_flag,
        json::optional_string,
    )?;
    set(
        o,
        "default-expires-in",
        &mut quirks.default_expires_in,
        |value, at| match value {
            Json::Null => Ok(None),
            value => json::unsigned(value, at, u64::MAX, "u64").map(Some),
        },
    )?;
    Ok(quirks)
}

fn token_rejection(value: Json, at: &At<'_>) -> Result<TokenRejection, Invalid> {
    let o = &mut Object::new(value, *at, "an object", &["statuses", "body-markers"])?;
    let mut rejection = TokenRejection::default();
    set(o, "statuses", &mut rejection.statuses, |value, at| {
        json::array(value, at, |value, at| {
            let status = json::unsigned(value, at, u16::MAX.into(), "u16")?;
            Ok(u16::try_from(status).unwrap_or(u16::MAX))
        })
    })?;
    set(o, "body-markers", &mut rejection.body_markers, strings)?;
    Ok(rejection)
}

/// `authorization-header`, `{"header": {"name": ..., "prefix": ...}}` or
/// `{"query": name}` (serde's external tagging; `{"authorization-header": null}` too).
fn token_placement(value: Json, at: &At<'_>) -> Result<TokenPlacement, Invalid> {
    const VARIANTS: &str = "one of `authorization-header`, `header`, `query`";
    let (variant, inner) = match value {
        Json::String(variant) => (variant, None),
        Json::Object(mut members) if members.len() == 1 => match members.pop() {
            Some((variant, inner)) => (variant, Some(inner)),
            None => return Err(at.invalid("an empty map")),
        },
        other => return Err(at.wrong_type(&other, VARIANTS)),
    };
    let inner_at = at.member(&variant);
    match (variant.as_str(), inner) {
        ("authorization-header", None | Some(Json::Null)) => {
            Ok(TokenPlacement::AuthorizationHeader)
        }
        ("authorization-header", Some(other)) => Err(inner_at.wrong_type(&other, "null")),
        ("header", Some(inner)) => {
            let o = &mut Object::new(inner, inner_at, "an object", &["name", "prefix"])?;
            let name = o.require("name")?;
            let mut header = TokenHeader {
                name: json::string(name, &inner_at.member("name"))?,
                prefix: String::new(),
            };
            set(o, "prefix", &mut header.prefix, json::string)?;
            Ok(TokenPlacement::Header(header))
        }
        ("query", Some(inner)) => json::string(inner, &inner_at).map(TokenPlacement::Query),
        ("header" | "query", None) => Err(at.invalid(format_args!(
            "`{variant}` needs a value: {{\"{variant}\": ...}}"
        ))),
        (_, _) => Err(at.invalid(format_args!(
            "unknown variant `{variant}`, expected {VARIANTS}"
        ))),
    }
}

fn pkce_method(value: Json, at: &At<'_>) -> Result<PkceMethod, Invalid> {
    json::one_of(
        value,
        at,
        &[
            ("s256", PkceMethod::S256),
            ("plain", PkceMethod::Plain),
            ("disabled", PkceMethod::Disabled),
        ],
    )
}

fn client_auth_method(value: Json, at: &At<'_>) -> Result<ClientAuthMethod, Invalid> {
    json::one_of(
        value,
        at,
        &[
            ("client-secret-basic", ClientAuthMethod::ClientSecretBasic),
            ("client-secret-post", ClientAuthMethod::ClientSecretPost),
            ("none", ClientAuthMethod::None),
            ("client-secret-jwt", ClientAuthMethod::ClientSecretJwt),
            ("private-key-jwt", ClientAuthMethod::PrivateKeyJwt),
        ],
    )
}

fn assertion_audience(value: Json, at: &At<'_>) -> Result<AssertionAudience, Invalid> {
    json::one_of(
        value,
        at,
        &[
            ("token-url", AssertionAudience::TokenUrl),
            ("request-url", AssertionAudience::RequestUrl),
            ("issuer", AssertionAudience::Issuer),
        ],
    )
}

fn body_format(value: Json, at: &At<'_>) -> Result<BodyFormat, Invalid> {
    json::one_of(
        value,
        at,
        &[("form", BodyFormat::Form), ("json", BodyFormat::Json)],
    )
}

fn signing_algorithm(value: Json, at: &At<'_>) -> Result<SigningAlgorithm, Invalid> {
    json::one_of(
        value,
        at,
        &[
            ("rs256", SigningAlgorithm::Rs256),
            ("ps256", SigningAlgorithm::Ps256),
            ("es256", SigningAlgorithm::Es256),
            ("es384", SigningAlgorithm::Es384),
            ("eddsa", SigningAlgorithm::EdDsa),
        ],
    )
}

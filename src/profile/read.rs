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
    let mut p = ProviderProfile::new(o.required("token-url", json::string)?);
    // Each member read into the field that holds its default, so that an error drops one
    // profile rather than every field read so far (which made this function 16 KB).
    o.read_into("id", &mut p.id, json::string)?;
    o.read_into("issuer", &mut p.issuer, json::optional_string)?;
    o.read_into("authorize-url", &mut p.authorize_url, json::optional_string)?;
    o.read_into("refresh-url", &mut p.refresh_url, json::optional_string)?;
    o.read_into(
        "revocation-url",
        &mut p.revocation_url,
        json::optional_string,
    )?;
    o.read_into(
        "introspection-url",
        &mut p.introspection_url,
        json::optional_string,
    )?;
    o.read_into(
        "device-authorization-url",
        &mut p.device_authorization_url,
        json::optional_string,
    )?;
    o.read_into(
        "pushed-authorization-request-url",
        &mut p.pushed_authorization_request_url,
        json::optional_string,
    )?;
    o.read_into(
        "requires-pushed-authorization-requests",
        &mut p.requires_pushed_authorization_requests,
        json::boolean,
    )?;
    o.read_into(
        "registration-url",
        &mut p.registration_url,
        json::optional_string,
    )?;
    o.read_into("dpop-algorithms", &mut p.dpop_algorithms, |value, at| {
        json::array(value, at, signing_algorithm)
    })?;
    o.read_into("api-base-url", &mut p.api_base_url, json::optional_string)?;
    o.read_into("userinfo-url", &mut p.userinfo_url, json::optional_string)?;
    o.read_into("variables", &mut p.variables, strings)?;
    o.read_into("scope-separator", &mut p.scope_separator, json::string)?;
    o.read_into("default-scopes", &mut p.default_scopes, strings)?;
    o.read_into("pkce", &mut p.pkce, pkce_method)?;
    o.read_into("client-auth", &mut p.client_auth, client_auth_method)?;
    o.read_into(
        "assertion-audience",
        &mut p.assertion_audience,
        assertion_audience,
    )?;
    o.read_into("requires-iss", &mut p.requires_iss, json::boolean)?;
    o.read_into("authorize-params", &mut p.authorize_params, key_values)?;
    o.read_into(
        "token-requests",
        &mut p.token_requests,
        token_request_extras,
    )?;
    o.read_into(
        "token-request-format",
        &mut p.token_request_format,
        body_format,
    )?;
    o.read_into("offline-access", &mut p.offline_access, offline_access)?;
    o.read_into(
        "token-response",
        &mut p.token_response,
        token_response_quirks,
    )?;
    o.read_into("token-placement", &mut p.token_placement, token_placement)?;
    o.read_into("token-rejection", &mut p.token_rejection, token_rejection)?;
    o.read_into(
        "client-id-parameter",
        &mut p.client_id_parameter,
        json::optional_string,
    )?;
    o.read_into(
        "refresh-redirect-uri",
        &mut p.refresh_redirect_uri,
        json::boolean,
    )?;
    Ok(p)
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
        let name = o.required("name", json::string)?;
        let value = o.required("value", json::string)?;
        Ok(KeyValue { name, value })
    })
}

fn request_extras(value: Json, at: &At<'_>) -> Result<RequestExtras, Invalid> {
    let o = &mut Object::new(value, *at, "an object", &["params", "headers"])?;
    let mut extras = RequestExtras::default();
    o.read_into("params", &mut extras.params, key_values)?;
    o.read_into("headers", &mut extras.headers, key_values)?;
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
    o.read_into("code-exchange", &mut extras.code_exchange, request_extras)?;
    o.read_into("refresh", &mut extras.refresh, request_extras)?;
    o.read_into(
        "client-credentials",
        &mut extras.client_credentials,
        request_extras,
    )?;
    o.read_into("device", &mut extras.device, request_extras)?;
    o.read_into("token-exchange", &mut extras.token_exchange, request_extras)?;
    o.read_into("jwt-bearer", &mut extras.jwt_bearer, request_extras)?;
    o.read_into(
        "pushed-authorization",
        &mut extras.pushed_authorization,
        request_extras,
    )?;
    Ok(extras)
}

fn offline_access(value: Json, at: &At<'_>) -> Result<OfflineAccess, Invalid> {
    let o = &mut Object::new(value, *at, "an object", &["scopes", "authorize-params"])?;
    let mut access = OfflineAccess::default();
    o.read_into("scopes", &mut access.scopes, strings)?;
    o.read_into("authorize-params", &mut access.authorize_params, key_values)?;
    Ok(access)
}

fn token_response_quirks(value: Json, at: &At<'_>) -> Result<TokenResponseQuirks, Invalid> {
    const MEMBERS: &[&str] = &["path", "success-flag", "default-expires-in"];
    let o = &mut Object::new(value, *at, "an object", MEMBERS)?;
    let mut quirks = TokenResponseQuirks::default();
    o.read_into("path", &mut quirks.path, strings)?;
    o.read_into(
        "success-flag",
        &mut quirks.success_flag,
        json::optional_string,
    )?;
    o.read_into(
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
    o.read_into("statuses", &mut rejection.statuses, |value, at| {
        json::array(value, at, |value, at| {
            let status = json::unsigned(value, at, u16::MAX.into(), "u16")?;
            Ok(u16::try_from(status).unwrap_or(u16::MAX))
        })
    })?;
    o.read_into("body-markers", &mut rejection.body_markers, strings)?;
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
            let mut header = TokenHeader {
                name: o.required("name", json::string)?,
                prefix: String::new(),
            };
            o.read_into("prefix", &mut header.prefix, json::string)?;
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

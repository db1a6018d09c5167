//! Provider profiles and connection configuration: the data that describes a server, its
//! quirks, the client and what a connection asks for.
//!
//! The JSON profile format is these types with kebab-case keys; every field except
//! `token-url` has a default, so a minimal profile is two lines. Their `serde` attributes
//! describe the format; `read` reads it (serde's derived deserialisers cost the component
//! too much code), and the tests check that both read every document the same way.

use crate::prelude::*;

use serde::Deserialize;

use crate::client_auth::SigningAlgorithm;
use crate::endpoint::parse_endpoint;
use crate::error::{ConfigError, Error};
use crate::json::{Invalid, Json};
use crate::secret::Secret;

mod read;

/// A name and a value: a parameter or a header.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KeyValue {
    /// The name.
    pub name: String,
    /// The value, unencoded.
    pub value: String,
}

impl KeyValue {
    /// A pair from anything string-like.
    pub fn new(name: impl Into<String>, value: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            value: value.into(),
        }
    }
}

/// The PKCE method (RFC 7636 §4.2).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum PkceMethod {
    /// SHA-256 challenge; the default.
    #[default]
    S256,
    /// The verifier itself as the challenge.
    Plain,
    /// No PKCE.
    Disabled,
}

/// The client authentication method at the token endpoint (RFC 6749 §2.3.1; RFC 7591 §2
/// `token_endpoint_auth_method`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ClientAuthMethod {
    /// HTTP Basic; the default.
    #[default]
    ClientSecretBasic,
    /// Credentials in the form body.
    ClientSecretPost,
    /// Public client: `client_id` only.
    None,
    /// An HS256 assertion keyed by the client secret (OpenID Connect Core §9).
    ClientSecretJwt,
    /// An assertion the host signs with its private key (OpenID Connect Core §9,
    /// RFC 7523 §2.2).
    PrivateKeyJwt,
}

impl ClientAuthMethod {
    /// Whether the method needs the client secret.
    pub fn needs_secret(self) -> bool {
        matches!(
            self,
            Self::ClientSecretBasic | Self::ClientSecretPost | Self::ClientSecretJwt
        )
    }

    /// The RFC 7591 §2 name, for example `client_secret_basic`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::ClientSecretBasic => "client_secret_basic",
            Self::ClientSecretPost => "client_secret_post",
            Self::None => "none",
            Self::ClientSecretJwt => "client_secret_jwt",
            Self::PrivateKeyJwt => "private_key_jwt",
        }
    }
}

/// What the `aud` claim of a client assertion names (the WIT `assertion-audience`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum AssertionAudience {
    /// The token URL, whatever endpoint the request goes to (RFC 7523 §3); the default.
    #[default]
    TokenUrl,
    /// The URL the request goes to, without its query.
    RequestUrl,
    /// The issuer identifier.
    Issuer,
}

/// Extra parameters and headers for one kind of token request.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RequestExtras {
    /// Form parameters added after the grant's own.
    pub params: Vec<KeyValue>,
    /// Headers added to the request.
    pub headers: Vec<KeyValue>,
}

/// Extras for each kind of token request (the WIT `token-request-extras`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(default, rename_all = "kebab-case", deny_unknown_fields)]
pub struct TokenRequestExtras {
    /// The code exchange.
    pub code_exchange: RequestExtras,
    /// The refresh request.
    pub refresh: RequestExtras,
    /// The client-credentials request.
    pub client_credentials: RequestExtras,
    /// The device authorization request and polls.
    pub device: RequestExtras,
    /// The token-exchange request (RFC 8693).
    pub token_exchange: RequestExtras,
    /// The JWT bearer grant request (RFC 7523 §2.1).
    pub jwt_bearer: RequestExtras,
    /// The pushed authorization request (RFC 9126).
    pub pushed_authorization: RequestExtras,
}

/// The kinds of token-endpoint request, for choosing extras.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RequestKind {
    /// RFC 6749 §4.1.3
    CodeExchange,
    /// RFC 6749 §6
    Refresh,
    /// RFC 6749 §4.4.2
    ClientCredentials,
    /// RFC 8628 §3.1, §3.4
    Device,
    /// RFC 8693 §2.1
    TokenExchange,
    /// RFC 7523 §2.1
    JwtBearer,
    /// RFC 9126 §2.1
    PushedAuthorization,
}

impl TokenRequestExtras {
    /// The extras for one kind of request.
    pub fn for_kind(&self, kind: RequestKind) -> &RequestExtras {
        match kind {
            RequestKind::CodeExchange => &self.code_exchange,
            RequestKind::Refresh => &self.refresh,
            RequestKind::ClientCredentials => &self.client_credentials,
            RequestKind::Device => &self.device,
            RequestKind::TokenExchange => &self.token_exchange,
            RequestKind::JwtBearer => &self.jwt_bearer,
            RequestKind::PushedAuthorization => &self.pushed_authorization,
        }
    }
}

/// A custom header carrying the access token.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TokenHeader {
    /// The header name.
    pub name: String,
    /// Written before the token.
    #[serde(default)]
    pub prefix: String,
}

/// Where API calls carry the access token (the WIT `token-placement`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum TokenPlacement {
    /// `Authorization: Bearer` (RFC 6750 §2.1).
    #[default]
    AuthorizationHeader,
    /// A custom header.
    Header(TokenHeader),
    /// A query parameter (RFC 6750 §2.3).
    Query(String),
}

/// How API responses signal a rejected token beyond 401 (the WIT `token-rejection`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(default, rename_all = "kebab-case", deny_unknown_fields)]
pub struct TokenRejection {
    /// More statuses that mean rejection.
    pub statuses: Vec<u16>,
    /// Body substrings that mean rejection.
    pub body_markers: Vec<String>,
}

/// How token-request bodies are encoded (the WIT `body-format`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum BodyFormat {
    /// `application/x-www-form-urlencoded`.
    #[default]
    Form,
    /// A JSON object of strings.
    Json,
}

/// How to obtain a refresh token (the WIT `offline-access`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(default, rename_all = "kebab-case", deny_unknown_fields)]
pub struct OfflineAccess {
    /// Scopes to add.
    pub scopes: Vec<String>,
    /// Authorize parameters to add.
    pub authorize_params: Vec<KeyValue>,
}

/// Deviations of token responses (the WIT `token-response-quirks`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(default, rename_all = "kebab-case", deny_unknown_fields)]
pub struct TokenResponseQuirks {
    /// The members leading to the object with the token fields.
    pub path: Vec<String>,
    /// A boolean member that is false on failure.
    pub success_flag: Option<String>,
    /// Validity to assume without `expires_in`.
    pub default_expires_in: Option<u64>,
}

/// One OAuth 2.0 server and its quirks (the WIT `provider-profile`).
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct ProviderProfile {
    /// A short identifier.
    #[serde(default)]
    pub id: String,
    /// The issuer identifier (RFC 8414 §2), for the RFC 9207 `iss` check.
    #[serde(default)]
    pub issuer: Option<String>,
    /// The authorization endpoint (RFC 6749 §3.1).
    #[serde(default)]
    pub authorize_url: Option<String>,
    /// The token endpoint (RFC 6749 §3.2).
    pub token_url: String,
    /// A separate refresh endpoint.
    #[serde(default)]
    pub refresh_url: Option<String>,
    /// The revocation endpoint (RFC 7009).
    #[serde(default)]
    pub revocation_url: Option<String>,
    /// The introspection endpoint (RFC 7662).
    #[serde(default)]
    pub introspection_url: Option<String>,
    /// The device authorization endpoint (RFC 8628).
    #[serde(default)]
    pub device_authorization_url: Option<String>,
    /// The pushed authorization request endpoint (RFC 9126 §5).
    #[serde(default)]
    pub pushed_authorization_request_url: Option<String>,
    /// The server accepts authorization requests only through PAR (RFC 9126 §5).
    #[serde(default)]
    pub requires_pushed_authorization_requests: bool,
    /// The dynamic client registration endpoint (RFC 7591 §3).
    #[serde(default)]
    pub registration_url: Option<String>,
    /// The JWS algorithms the server accepts in DPoP proofs (RFC 9449 §5.1); empty: unknown.
    #[serde(default)]
    pub dpop_algorithms: Vec<SigningAlgorithm>,
    /// The API's base URL.
    #[serde(default)]
    pub api_base_url: Option<String>,
    /// The userinfo endpoint.
    #[serde(default)]
    pub userinfo_url: Option<String>,
    /// The URL placeholders every connection must fill.
    #[serde(default)]
    pub variables: Vec<String>,
    /// The scope separator; a space by default (RFC 6749 §3.3).
    #[serde(default = "default_scope_separator")]
    pub scope_separator: String,
    /// Scopes requested when the connection names none.
    #[serde(default)]
    pub default_scopes: Vec<String>,
    /// The PKCE method.
    #[serde(default)]
    pub pkce: PkceMethod,
    /// The default client authentication method, for clients that name none.
    #[serde(default)]
    pub client_auth: ClientAuthMethod,
    /// What client assertions' `aud` names.
    #[serde(default)]
    pub assertion_audience: AssertionAudience,
    /// The server always sends `iss` on authorization responses (RFC 9207 §2).
    #[serde(default)]
    pub requires_iss: bool,
    /// Extra authorize parameters.
    #[serde(default)]
    pub authorize_params: Vec<KeyValue>,
    /// Extras per kind of token request.
    #[serde(default)]
    pub token_requests: TokenRequestExtras,
    /// How token-request bodies are encoded.
    #[serde(default)]
    pub token_request_format: BodyFormat,
    /// How to obtain a refresh token.
    #[serde(default)]
    pub offline_access: OfflineAccess,
    /// Deviations of token responses.
    #[serde(default)]
    pub token_response: TokenResponseQuirks,
    /// Where API calls carry the token.
    #[serde(default)]
    pub token_placement: TokenPlacement,
    /// Rejection signals beyond 401.
    #[serde(default)]
    pub token_rejection: TokenRejection,
    /// The name under which authorize and token requests carry the client id, when it is not
    /// `client_id` (TikTok's `client_key`).
    #[serde(default)]
    pub client_id_parameter: Option<String>,
    /// Refresh requests repeat the connection's `redirect_uri`, for servers that require it
    /// (Gusto, Deel).
    #[serde(default)]
    pub refresh_redirect_uri: bool,
}

fn is_placeholder_name(name: &str) -> bool {
    !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
}

fn url_starts_with_placeholder(url: &str, name: &str) -> bool {
    url.strip_prefix('{')
        .and_then(|rest| rest.strip_prefix(name))
        .is_some_and(|rest| rest.starts_with('}'))
}

/// Fills the `{name}` placeholders of `template` (the field `field`) with `value(name)`.
///
/// A placeholder that starts the URL takes an absolute http(s) URL without query, fragment
/// or braces (trailing slashes dropped), for a base URL; anywhere else the value may hold
/// only letters, digits, `.`, `-` and `_`, so that a tenant or subdomain can never change
/// the URL's host, path or query. Braces that do not enclose a placeholder name are kept.
pub fn fill(
    field: &str,
    template: &str,
    declared: &[String],
    value: impl Fn(&str) -> Option<String>,
) -> Result<String, ConfigError> {
    let mut out = String::with_capacity(template.len());
    let mut rest = template;
    while let Some(open) = rest.find('{') {
        let Some(close) = rest[open..].find('}').map(|c| open + c) else {
            break;
        };
        let name = &rest[open + 1..close];
        if !is_placeholder_name(name) {
            out.push_str(&rest[..=open]);
            rest = &rest[open + 1..];
            continue;
        }
        if !declared.iter().any(|d| d == name) {
            return Err(ConfigError::InvalidValue(field.to_owned()));
        }
        let filled = value(name).ok_or_else(|| ConfigError::MissingVariable(name.to_owned()))?;
        let at_start = out.is_empty() && open == 0;
        let valid = if at_start {
            // No braces: the filled URL is filled again by every `validate`, where they would
            // read as placeholders (the URL parser accepts `https:{x}}` as a host).
            !filled.contains(['{', '}'])
                && crate::endpoint::parse_url(&filled).is_some_and(|url| {
                    matches!(url.scheme(), "http" | "https")
                        && url.has_host()
                        && url.query().is_none()
                        && url.fragment().is_none()
                })
        } else {
            // `.` and `..` would be path segments the URL parser resolves.
            !filled.is_empty()
                && !filled.chars().all(|c| c == '.')
                && !filled.contains("..")
                && filled
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_'))
        };
        if !valid {
            return Err(ConfigError::InvalidVariable(name.to_owned()));
        }
        out.push_str(&rest[..open]);
        out.push_str(if at_start {
            filled.trim_end_matches('/')
        } else {
            &filled
        });
        rest = &rest[close + 1..];
    }
    out.push_str(rest);
    // Braces the template keeps must not enclose a value (`{{tenant}}`): the result would hold
    // a placeholder, which the next `validate` of the filled profile refuses.
    if has_placeholder(&out) {
        return Err(ConfigError::InvalidValue(field.to_owned()));
    }
    Ok(out)
}

/// Whether `text` holds a `{name}` placeholder, as `fill` reads them.
fn has_placeholder(text: &str) -> bool {
    let mut open = None;
    for (at, c) in text.char_indices() {
        match c {
            '{' => open = Some(at + 1),
            '}' => {
                if let Some(start) = open.take()
                    && is_placeholder_name(&text[start..at])
                {
                    return true;
                }
            }
            _ => {}
        }
    }
    false
}

fn default_scope_separator() -> String {
    " ".to_owned()
}

/// The profile's URL fields by WIT field name, through `$as` (`as_ref` or `as_mut`); the
/// token URL, which is not optional, is `$token`.
macro_rules! url_fields {
    ($profile:ident, $as:ident, $token:expr) => {
        [
            ("issuer", $profile.issuer.$as()),
            ("authorize-url", $profile.authorize_url.$as()),
            ("token-url", Some($token)),
            ("refresh-url", $profile.refresh_url.$as()),
            ("revocation-url", $profile.revocation_url.$as()),
            ("introspection-url", $profile.introspection_url.$as()),
            (
                "device-authorization-url",
                $profile.device_authorization_url.$as(),
            ),
            (
                "pushed-authorization-request-url",
                $profile.pushed_authorization_request_url.$as(),
            ),
            ("registration-url", $profile.registration_url.$as()),
            ("api-base-url", $profile.api_base_url.$as()),
            ("userinfo-url", $profile.userinfo_url.$as()),
        ]
    };
}

impl ProviderProfile {
    /// A profile with this token URL and every other field at its default, as a JSON
    /// profile of only `token-url` reads.
    pub fn new(token_url: String) -> Self {
        Self {
            id: String::new(),
            issuer: None,
            authorize_url: None,
            token_url,
            refresh_url: None,
            revocation_url: None,
            introspection_url: None,
            device_authorization_url: None,
            pushed_authorization_request_url: None,
            requires_pushed_authorization_requests: false,
            registration_url: None,
            dpop_algorithms: vec![],
            api_base_url: None,
            userinfo_url: None,
            variables: vec![],
            scope_separator: default_scope_separator(),
            default_scopes: vec![],
            pkce: PkceMethod::default(),
            client_auth: ClientAuthMethod::default(),
            assertion_audience: AssertionAudience::default(),
            requires_iss: false,
            authorize_params: vec![],
            token_requests: TokenRequestExtras::default(),
            token_request_format: BodyFormat::default(),
            offline_access: OfflineAccess::default(),
            token_response: TokenResponseQuirks::default(),
            token_placement: TokenPlacement::default(),
            token_rejection: TokenRejection::default(),
            client_id_parameter: None,
            refresh_redirect_uri: false,
        }
    }

    /// Parses and validates a JSON profile.
    pub fn from_json(json: &str) -> Result<Self, Error> {
        let profile = Self::read_json(json).map_err(ConfigError::InvalidProfile)?;
        profile.validate()?;
        Ok(profile)
    }

    /// Reads a JSON profile without validating it. The error is a syntax error with its
    /// line and column, or names the member that does not fit the format by its path
    /// ("`pkce`: unknown variant `md5`, expected one of `s256`, `plain`, `disabled`").
    pub fn read_json(json: &str) -> Result<Self, String> {
        let document = Json::parse(json).map_err(|error| error.to_string())?;
        read::profile(document).map_err(|Invalid(reason)| reason)
    }

    /// The URL fields, by WIT field name.
    fn urls_mut(&mut self) -> [(&'static str, Option<&mut String>); 11] {
        url_fields!(self, as_mut, &mut self.token_url)
    }

    /// The URL fields, read-only.
    fn urls(&self) -> [(&'static str, Option<&String>); 11] {
        url_fields!(self, as_ref, &self.token_url)
    }

    /// The profile with every `{name}` placeholder in its URLs filled from `variables`.
    ///
    /// Errors: `MissingVariable(name)`; `InvalidVariable(name)` for a value not allowed at
    /// its position (see `fill`); `InvalidValue(field)` for a placeholder the profile does
    /// not declare in `variables`.
    pub fn resolve(&self, variables: &[KeyValue]) -> Result<Self, ConfigError> {
        let mut resolved = self.clone();
        resolved.resolve_in_place(variables)?;
        Ok(resolved)
    }

    /// [`ProviderProfile::resolve`] on this profile itself.
    fn resolve_in_place(&mut self, variables: &[KeyValue]) -> Result<(), ConfigError> {
        let declared = core::mem::take(&mut self.variables);
        let filled = self.urls_mut().into_iter().try_for_each(|(field, url)| {
            // Without a brace there is nothing to fill, and `fill` would copy it unchanged.
            if let Some(url) = url.filter(|url| url.contains('{')) {
                *url = fill(field, url, &declared, |name| {
                    variables
                        .iter()
                        .find(|kv| kv.name == name)
                        .map(|kv| kv.value.clone())
                })?;
            }
            Ok(())
        });
        self.variables = declared;
        filled
    }

    /// Checks every endpoint URL and value the connector relies on.
    ///
    /// Errors: `InvalidUrl` / `InsecureUrl` for an endpoint, `InvalidValue("scope-separator")`
    /// for an empty separator, `InvalidValue("issuer")` for an issuer that is not a URL or
    /// that is missing while `requires-iss` is set.
    pub fn validate(&self) -> Result<(), ConfigError> {
        // A profile without placeholders (every resolved one, as the component's connections
        // hold) is checked as it is: filling would copy it unchanged.
        if !self
            .urls()
            .iter()
            .any(|(_, url)| url.is_some_and(|url| url.contains('{')))
        {
            return self.validate_resolved();
        }
        // Placeholders are checked with stand-in values; the real ones come per connection.
        let sample: Vec<KeyValue> = self
            .variables
            .iter()
            .map(|name| KeyValue::new(name, "x"))
            .collect();
        let mut profile = self.clone();
        for (field, url) in profile.urls_mut() {
            if let Some(url) = url {
                *url = fill(field, url, &self.variables, |name| {
                    let value = &sample.iter().find(|kv| kv.name == name)?.value;
                    Some(if url_starts_with_placeholder(url, name) {
                        "https://placeholder.invalid".to_owned()
                    } else {
                        value.clone()
                    })
                })?;
            }
        }
        profile.validate_resolved()
    }

    /// The name of the parameter that carries the client id (`client_id` unless the profile
    /// names another).
    pub fn client_id_param(&self) -> &str {
        self.client_id_parameter.as_deref().unwrap_or("client_id")
    }

    fn validate_resolved(&self) -> Result<(), ConfigError> {
        self.check_resolved().map(drop)
    }

    /// [`ProviderProfile::validate_resolved`], answering the endpoints it parsed, by field.
    fn check_resolved(&self) -> Result<Vec<(&'static str, url::Url)>, ConfigError> {
        let mut endpoints = vec![("token-url", parse_endpoint("token-url", &self.token_url)?)];
        if let Some(name) = &self.client_id_parameter {
            // A parameter name of its own: not one the flows set for something else.
            let usable = !name.is_empty()
                && name.len() <= 64
                && name
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-' || b == b'.')
                && (name == "client_id"
                    || !(crate::authorize::RESERVED_AUTHORIZE_PARAMS.contains(&name.as_str())
                        || crate::token_request::RESERVED_BODY_PARAMS.contains(&name.as_str())));
            if !usable {
                return Err(ConfigError::InvalidValue("client-id-parameter".into()));
            }
        }
        // The other endpoints, in the profile's order (the issuer is an identifier, checked
        // below; the token URL was first).
        for (field, url) in self.urls() {
            if let Some(url) = url
                && !matches!(field, "issuer" | "token-url")
            {
                endpoints.push((field, parse_endpoint(field, url)?));
            }
        }
        match &self.token_placement {
            TokenPlacement::Header(header) if header.name.is_empty() => {
                return Err(ConfigError::InvalidValue("token-placement".into()));
            }
            TokenPlacement::Query(name) if name.is_empty() => {
                return Err(ConfigError::InvalidValue("token-placement".into()));
            }
            _ => {}
        }
        match &self.issuer {
            Some(issuer) => {
                crate::endpoint::parse_url(issuer)
                    .ok_or_else(|| ConfigError::InvalidValue("issuer".into()))?;
            }
            // `requires-iss` compares the callback's `iss` with the issuer: it needs one.
            None if self.requires_iss => return Err(ConfigError::InvalidValue("issuer".into())),
            None => {}
        }
        if self.scope_separator.is_empty() {
            return Err(ConfigError::InvalidValue("scope-separator".into()));
        }
        Ok(endpoints)
    }
}

/// The registered client (RFC 6749 §2).
#[derive(Clone, Debug)]
pub struct Client {
    /// The client identifier.
    pub client_id: String,
    /// The client secret, for confidential clients (and the `client_secret_jwt` key).
    pub client_secret: Option<Secret>,
    /// How the client authenticates; `None`: the profile's default.
    pub auth_method: Option<ClientAuthMethod>,
}

/// One connection's configuration (the WIT `connection-config`).
#[derive(Clone, Debug)]
pub struct ConnectionConfig {
    /// The server.
    pub profile: ProviderProfile,
    /// The client.
    pub client: Client,
    /// The registered redirect URI, if one is sent.
    pub redirect_uri: Option<String>,
    /// Requested scopes; empty means the profile's defaults.
    pub scopes: Vec<String>,
    /// The caller's extra authorize parameters.
    pub authorize_params: Vec<KeyValue>,
    /// The caller's extras per kind of token request.
    pub token_requests: TokenRequestExtras,
    /// Values for the profile's URL placeholders.
    pub variables: Vec<KeyValue>,
    /// Whether to ask for a refresh token the profile's way.
    pub offline_access: bool,
    /// The resources the tokens are for (RFC 8707 `resource`).
    pub resources: Vec<String>,
    /// Bind the tokens to the host's DPoP key (RFC 9449).
    pub dpop: bool,
}

impl ConnectionConfig {
    /// The secrets a request for this connection carries besides `extra`, for scrubbing
    /// error excerpts: the client secret, if any, then `extra`.
    pub fn secrets<'a>(&'a self, extra: &[&'a str]) -> Vec<&'a str> {
        let mut secrets: Vec<&str> = self
            .client
            .client_secret
            .iter()
            .map(|s| s.expose())
            .collect();
        secrets.extend_from_slice(extra);
        secrets
    }

    /// The profile with its placeholders filled from `variables`, validated.
    pub fn resolved_profile(&self) -> Result<ProviderProfile, ConfigError> {
        let profile = self.profile.resolve(&self.variables)?;
        profile.validate_resolved()?;
        Ok(profile)
    }

    /// The configuration every operation works on: placeholders filled, offline access
    /// applied (its scopes added to the effective scopes, its authorize parameters after the
    /// profile's), everything validated.
    pub fn prepare(&self) -> Result<Prepared, ConfigError> {
        self.clone().into_prepared()
    }

    /// [`ConnectionConfig::prepare`], consuming the configuration.
    pub fn into_prepared(mut self) -> Result<Prepared, ConfigError> {
        self.profile.resolve_in_place(&self.variables)?;
        // Parsed once here, for every request.
        let endpoints = self.profile.check_resolved()?;
        for resource in &self.resources {
            check_resource("resources", resource)?;
        }
        // Only flows that send the redirect URI need it usable: its refusal is kept for
        // them rather than refusing the whole configuration.
        let redirect_uri = self
            .redirect_uri
            .as_deref()
            .map_or(Ok(()), |uri| parse_endpoint("redirect-uri", uri).map(drop));
        let profile_authorize_params = self.profile.authorize_params.len();
        if self.offline_access {
            let mut scopes = self.effective_scopes().to_vec();
            for scope in &self.profile.offline_access.scopes {
                if !scopes.contains(scope) {
                    scopes.push(scope.clone());
                }
            }
            self.scopes = scopes;
            let offline = self.profile.offline_access.authorize_params.clone();
            self.profile.authorize_params.extend(offline);
        }
        Ok(Prepared {
            config: self,
            endpoints,
            redirect_uri,
            profile_authorize_params,
        })
    }

    /// How the client authenticates: its own method, else the profile's default.
    pub fn client_auth_method(&self) -> ClientAuthMethod {
        self.client.auth_method.unwrap_or(self.profile.client_auth)
    }

    /// The scopes to request: the connection's, else the profile's defaults.
    pub fn effective_scopes(&self) -> &[String] {
        if self.scopes.is_empty() {
            &self.profile.default_scopes
        } else {
            &self.scopes
        }
    }
}

/// A [`ConnectionConfig`] ready for the flows, made only by [`ConnectionConfig::prepare`]:
/// placeholders filled, offline access applied, the profile validated, and its endpoints
/// parsed once. The flows take it instead of a raw configuration, so that none
/// of them validates the profile again on every call (a `connection` of the component holds
/// one for its lifetime). It reads as the configuration it wraps.
#[derive(Clone, Debug)]
pub struct Prepared {
    config: ConnectionConfig,
    /// The profile's endpoints, parsed, by field name (`token-url`, ...).
    endpoints: Vec<(&'static str, url::Url)>,
    /// Whether the redirect URI is a usable endpoint.
    redirect_uri: Result<(), ConfigError>,
    /// How many of the profile's authorize parameters are its own, before offline access
    /// added its own.
    profile_authorize_params: usize,
}

impl Prepared {
    /// The profile with its placeholders filled, without what offline access adds: what the
    /// WIT `connection.resolved-profile` reports.
    pub fn configured_profile(&self) -> ProviderProfile {
        let mut profile = self.config.profile.clone();
        profile
            .authorize_params
            .truncate(self.profile_authorize_params);
        profile
    }

    /// The profile's endpoint `field` (`token-url`, `authorize-url`, `refresh-url`, ...),
    /// parsed; `None` when the profile has none.
    pub fn endpoint(&self, field: &str) -> Option<&url::Url> {
        self.endpoints
            .iter()
            .find(|(name, _)| *name == field)
            .map(|(_, url)| url)
    }

    /// `Ok` when there is no redirect URI or it is an absolute URL with TLS off loopback;
    /// else why not (`invalid-url` / `insecure-url` of `redirect-uri`).
    pub fn check_redirect_uri(&self) -> Result<(), ConfigError> {
        self.redirect_uri.clone()
    }
}

impl core::ops::Deref for Prepared {
    type Target = ConnectionConfig;

    fn deref(&self) -> &ConnectionConfig {
        &self.config
    }
}

/// Checks an RFC 8707 resource indicator: an absolute URI without a fragment (§2). Plain
/// HTTP is allowed: the value only names the resource, nothing is sent to it. The value is
/// sent as it is written, so whitespace or control characters, which the URL parser would
/// drop before checking, are refused: they would make it another string than the one checked.
pub fn check_resource(field: &str, resource: &str) -> Result<(), ConfigError> {
    let plain = !resource
        .chars()
        .any(|c| c.is_whitespace() || c.is_control());
    match url::Url::parse(resource) {
        Ok(url) if plain && url.fragment().is_none() => Ok(()),
        _ => Err(ConfigError::InvalidValue(field.into())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resources_are_absolute_uris_without_fragment_or_whitespace() {
        for good in [
            "https://api.example.com/",
            "urn:example:api",
            "http://127.0.0.1:8/x?y=1",
        ] {
            assert_eq!(check_resource("resources", good), Ok(()), "{good}");
        }
        for bad in [
            "/relative",
            "https://api.example.com/#top",
            " https://api.example.com/",
            "https://api.example.com/\t",
            "https://api.example.com/a b",
            "",
        ] {
            assert_eq!(
                check_resource("resources", bad),
                Err(ConfigError::InvalidValue("resources".into())),
                "{bad:?}"
            );
        }
    }

    /// `prepare` fills placeholders, applies offline access, parses the authorize endpoint
    /// once and keeps a refused redirect URI for the flows that send it; the configured
    /// profile is the filled one without what offline access added.
    #[test]
    fn prepare_fills_applies_offline_access_and_keeps_the_redirect_verdict() {
        let profile = ProviderProfile::from_json(
            r#"{"authorize-url": "https://{tenant}.example.com/authorize?x=1",
                "token-url": "https://{tenant}.example.com/token",
                "variables": ["tenant"],
                "default-scopes": ["read"],
                "authorize-params": [{"name": "prompt", "value": "login"}],
                "offline-access": {"scopes": ["offline_access", "read"],
                                   "authorize-params": [{"name": "access_type", "value": "offline"}]}}"#,
        )
        .unwrap();
        let config = ConnectionConfig {
            profile,
            client: Client {
                client_id: "id".into(),
                client_secret: None,
                auth_method: None,
            },
            redirect_uri: Some("http://app.example.com/callback".into()),
            scopes: vec![],
            authorize_params: vec![],
            token_requests: TokenRequestExtras::default(),
            variables: vec![KeyValue::new("tenant", "acme")],
            offline_access: true,
            resources: vec![],
            dpop: false,
        };
        let prepared = config.prepare().unwrap();
        assert_eq!(prepared.profile.token_url, "https://acme.example.com/token");
        assert_eq!(
            prepared.endpoint("token-url").map(url::Url::as_str),
            Some("https://acme.example.com/token")
        );
        assert_eq!(prepared.endpoint("revocation-url"), None);
        assert_eq!(
            prepared.endpoint("authorize-url").map(url::Url::as_str),
            Some("https://acme.example.com/authorize?x=1")
        );
        assert_eq!(prepared.effective_scopes(), ["read", "offline_access"]);
        assert_eq!(
            prepared.profile.authorize_params,
            [
                KeyValue::new("prompt", "login"),
                KeyValue::new("access_type", "offline")
            ]
        );
        let configured = prepared.configured_profile();
        assert_eq!(
            configured.authorize_params,
            [KeyValue::new("prompt", "login")]
        );
        assert_eq!(
            configured.authorize_url.as_deref(),
            Some("https://acme.example.com/authorize?x=1")
        );
        assert_eq!(
            prepared.check_redirect_uri(),
            Err(ConfigError::InsecureUrl("redirect-uri".into()))
        );
        // The configuration it was prepared from is untouched.
        assert_eq!(
            config.profile.token_url,
            "https://{tenant}.example.com/token"
        );
        assert!(config.scopes.is_empty());
    }

    #[test]
    fn minimal_profile_takes_defaults() {
        let profile =
            ProviderProfile::from_json(r#"{"token-url": "https://auth.example.com/token"}"#)
                .unwrap();
        assert_eq!(profile.scope_separator, " ");
        assert_eq!(profile.pkce, PkceMethod::S256);
        assert_eq!(profile.client_auth, ClientAuthMethod::ClientSecretBasic);
        assert!(!profile.requires_iss);
        assert_eq!(profile.authorize_url, None);
        assert!(profile.authorize_params.is_empty());
    }

    #[test]
    fn full_profile_parses() {
        let profile = ProviderProfile::from_json(
            r#"{
                "id": "example",
                "issuer": "https://auth.example.com",
                "authorize-url": "https://auth.example.com/authorize?tenant=t1",
                "token-url": "https://auth.example.com/token?api-version=2",
                "scope-separator": ",",
                "default-scopes": ["read", "write"],
                "pkce": "plain",
                "client-auth": "client-secret-post",
                "requires-iss": true,
                "authorize-params": [{"name": "access_type", "value": "offline"}],
                "token-requests": {"code-exchange": {"headers": [{"name": "X-Api", "value": "1"}]}},
                "refresh-url": "https://auth.example.com/refresh",
                "revocation-url": "https://auth.example.com/revoke",
                "api-base-url": "https://api.example.com",
                "token-placement": {"header": {"name": "X-Token", "prefix": "Token "}},
                "token-rejection": {"statuses": [403], "body-markers": ["invalid_auth"]}
            }"#,
        )
        .unwrap();
        assert_eq!(profile.id, "example");
        assert_eq!(profile.scope_separator, ",");
        assert_eq!(profile.default_scopes, ["read", "write"]);
        assert_eq!(profile.pkce, PkceMethod::Plain);
        assert_eq!(profile.client_auth, ClientAuthMethod::ClientSecretPost);
        assert!(profile.requires_iss);
        assert_eq!(
            profile.authorize_params,
            [KeyValue::new("access_type", "offline")]
        );
        assert_eq!(
            profile.token_requests.code_exchange.headers,
            [KeyValue::new("X-Api", "1")]
        );
        assert!(profile.token_requests.code_exchange.params.is_empty());
        assert_eq!(
            profile.refresh_url.as_deref(),
            Some("https://auth.example.com/refresh")
        );
        assert_eq!(
            profile.token_placement,
            TokenPlacement::Header(TokenHeader {
                name: "X-Token".into(),
                prefix: "Token ".into()
            })
        );
        assert_eq!(profile.token_rejection.statuses, [403]);
        assert_eq!(profile.token_rejection.body_markers, ["invalid_auth"]);
        let query = ProviderProfile::from_json(
            r#"{"token-url": "https://a.example/t", "token-placement": {"query": "access_token"}}"#,
        )
        .unwrap();
        assert_eq!(
            query.token_placement,
            TokenPlacement::Query("access_token".into())
        );
    }

    /// Found by fuzzing (target `profile`, minimised input): the base URL `https:{d}}/`
    /// parses (`{d}}` is a valid host to the URL parser) and was inserted as is, so the
    /// prepared profile held the undeclared placeholder `{d}` and every operation's
    /// `validate` refused it with `InvalidValue("token-url")`.
    #[test]
    fn a_base_url_value_cannot_bring_placeholders() {
        let profile =
            ProviderProfile::from_json(r#"{"token-url":"{base-url}","variables": ["base-url" ]}"#)
                .unwrap();
        for value in ["https:{d}}/", "https://sso.example.com/{realm}"] {
            assert_eq!(
                profile
                    .resolve(&[KeyValue::new("base-url", value)])
                    .unwrap_err(),
                ConfigError::InvalidVariable("base-url".into()),
                "{value}"
            );
        }
        let resolved = profile
            .resolve(&[KeyValue::new("base-url", "https://sso.example.com/")])
            .unwrap();
        assert_eq!(resolved.token_url, "https://sso.example.com");
        assert_eq!(resolved.validate(), Ok(()));
    }

    /// Found by analysis while writing the fuzz target `profile` (its invariant "a prepared
    /// configuration passes `validate`"): braces around a placeholder are kept, so
    /// `{{tenant}}` filled to the placeholder `{contoso}`, which every operation's `validate`
    /// then refused as undeclared.
    #[test]
    fn kept_braces_cannot_turn_a_value_into_a_placeholder() {
        let json = r#"{"token-url": "https://a.example/{{tenant}}", "variables": ["tenant"]}"#;
        assert_eq!(
            ProviderProfile::from_json(json).unwrap_err(),
            Error::Configuration(ConfigError::InvalidValue("token-url".into()))
        );
        let unchecked: ProviderProfile = serde_json::from_str(json).unwrap();
        assert_eq!(
            unchecked
                .resolve(&[KeyValue::new("tenant", "contoso")])
                .unwrap_err(),
            ConfigError::InvalidValue("token-url".into())
        );
        // Braces that stay text are still kept.
        let literal = ProviderProfile::from_json(
            r#"{"token-url": "https://a.example/{tenant}/{x y}?q={}", "variables": ["tenant"]}"#,
        )
        .unwrap();
        assert_eq!(
            literal
                .resolve(&[KeyValue::new("tenant", "contoso")])
                .unwrap()
                .token_url,
            "https://a.example/contoso/{x y}?q={}"
        );
    }

    /// The reader against the format's reference, serde's derived deserialiser: the same
    /// documents accepted, read to the same profile. (The `profile` fuzz target checks this
    /// on arbitrary input.)
    #[test]
    fn the_reader_reads_what_the_derived_deserialiser_reads() {
        let full = r#"{
            "id": "acme", "issuer": "https://a.example", "authorize-url": "https://a.example/a",
            "token-url": "https://a.example/t", "refresh-url": null, "revocation-url": "https://a.example/r",
            "introspection-url": "https://a.example/i", "device-authorization-url": "https://a.example/d",
            "pushed-authorization-request-url": "https://a.example/p",
            "requires-pushed-authorization-requests": true, "registration-url": "https://a.example/reg",
            "dpop-algorithms": ["es256", "eddsa", "rs256", "ps256", "es384"],
            "api-base-url": "https://api.a.example", "userinfo-url": "https://a.example/u",
            "variables": ["tenant"], "scope-separator": ",", "default-scopes": ["a", "b"],
            "pkce": "plain", "client-auth": "private-key-jwt", "assertion-audience": "issuer",
            "requires-iss": true, "authorize-params": [{"name": "n", "value": "v"}],
            "token-requests": {"code-exchange": {"params": [{"name": "a", "value": "1"}]},
                "refresh": {"headers": [{"name": "H", "value": "2"}]}, "client-credentials": {},
                "device": {}, "token-exchange": {}, "jwt-bearer": {}, "pushed-authorization": {}},
            "token-request-format": "json",
            "offline-access": {"scopes": ["offline_access"], "authorize-params": []},
            "token-response": {"path": ["data"], "success-flag": "ok", "default-expires-in": 3600},
            "token-placement": {"header": {"name": "X-Token", "prefix": "Token "}},
            "token-rejection": {"statuses": [403, 65535], "body-markers": ["expired"]},
            "client-id-parameter": "client_key", "refresh-redirect-uri": true
        }"#;
        let minimal = r#"{"token-url": "https://a.example/t"}"#;
        let with = |member: &str| format!(r#"{{"token-url": "https://a.example/t", {member}}}"#);
        let mut documents: Vec<String> = vec![full.into(), minimal.into()];
        documents.extend(
            [
                // Accepted.
                r#""token-placement": "authorization-header""#,
                r#""token-placement": {"authorization-header": null}"#,
                r#""token-placement": {"query": "access_token"}"#,
                r#""token-placement": {"header": {"name": "X"}}"#,
                r#""token-response": {"success-flag": null, "default-expires-in": null}"#,
                r#""issuer": null, "client-id-parameter": null"#,
                r#""offline-access": {}, "token-rejection": {}, "token-requests": {}"#,
                r#""id": "xé
""#,
                // Refused.
                r#""token-url": "https://a.example/u""#,
                r#""colour": "red""#,
                r#""id": null"#,
                r#""issuer": 5"#,
                r#""variables": null"#,
                r#""variables": "a""#,
                r#""variables": [1]"#,
                r#""scope-separator": null"#,
                r#""requires-iss": "true""#,
                r#""pkce": "S256""#,
                r#""pkce": 1"#,
                r#""client-auth": "client_secret_basic""#,
                r#""dpop-algorithms": ["ES256"]"#,
                r#""authorize-params": [{"name": "n"}]"#,
                r#""authorize-params": [{"name": "n", "value": "v", "x": 1}]"#,
                r#""authorize-params": [["n", "v"]]"#,
                r#""authorize-params": [["n"]]"#,
                r#""authorize-params": [["n", "v", "w"]]"#,
                r#""token-requests": [{}, {"params": [["a", "1"]]}]"#,
                r#""token-placement": {"header": ["X-Token", "Token "]}"#,
                r#""token-requests": {"refresh": {"params": {}}}"#,
                r#""token-requests": {"renew": {}}"#,
                r#""token-requests": []"#,
                r#""token-response": {"default-expires-in": -1}"#,
                r#""token-response": {"default-expires-in": 1.5}"#,
                r#""token-response": {"default-expires-in": 18446744073709551616}"#,
                r#""token-rejection": {"statuses": [65536]}"#,
                r#""token-rejection": {"statuses": [-1]}"#,
                r#""token-placement": "header""#,
                r#""token-placement": "query""#,
                r#""token-placement": "cookie""#,
                r#""token-placement": {}"#,
                r#""token-placement": {"query": "a", "header": {"name": "X"}}"#,
                r#""token-placement": {"authorization-header": 1}"#,
                r#""token-placement": {"header": {"prefix": "p"}}"#,
                r#""token-placement": {"header": {"name": "X", "x": 1}}"#,
                r#""token-placement": {"query": null}"#,
                r#""token-placement": 5"#,
            ]
            .map(with),
        );
        documents.extend(
            [
                "{}",
                "[]",
                "null",
                "5",
                r#"{"token-url": null}"#,
                "not json",
                r#"["acme", null, null, "https://a.example/t"]"#,
                r#"["acme", null, null]"#,
            ]
            .map(String::from),
        );
        for json in &documents {
            match (
                serde_json::from_str::<ProviderProfile>(json),
                ProviderProfile::read_json(json),
            ) {
                (Ok(derived), Ok(read)) => assert_eq!(derived, read, "{json}"),
                (Err(_), Err(_)) => {}
                (derived, read) => panic!("{json}: derived {derived:?}, read {read:?}"),
            }
        }
        // Both kinds of answer occur.
        assert!(ProviderProfile::read_json(full).is_ok());
        assert!(ProviderProfile::read_json(&with(r#""colour": "red""#)).is_err());
        // A repeated member is refused, as the derived deserialiser refuses it.
        let repeated =
            r#"{"token-url": "https://a.example/t", "token-url": "https://b.example/t"}"#;
        assert!(serde_json::from_str::<ProviderProfile>(repeated).is_err());
        assert_eq!(
            ProviderProfile::read_json(repeated).unwrap_err(),
            "duplicate field `token-url` at line 1 column 48"
        );
    }

    #[test]
    fn a_profile_that_is_not_one_names_the_member_at_fault() {
        let reason = |json: &str| ProviderProfile::read_json(json).unwrap_err();
        assert_eq!(reason("{}"), "missing field `token-url`");
        assert_eq!(
            reason("true"),
            "invalid type: boolean `true`, expected a provider profile"
        );
        assert_eq!(
            reason(r#"{"token-url": 5}"#),
            "`token-url`: invalid type: integer `5`, expected a string"
        );
        assert_eq!(
            reason(r#"{"token-url": "t", "pkce": "md5"}"#),
            "`pkce`: unknown variant `md5`, expected one of `s256`, `plain`, `disabled`"
        );
        assert_eq!(
            reason(r#"{"token-url": "t", "colour": "red"}"#)
                .split_once(", expected")
                .unwrap()
                .0,
            "`colour`: unknown field `colour`"
        );
        assert_eq!(
            reason(
                r#"{"token-url": "t", "token-requests": {"refresh": {"params": [{"name": "a"}]}}}"#
            ),
            "`token-requests.refresh.params[0]`: missing field `value`"
        );
        assert_eq!(
            reason(r#"{"token-url": "t", "token-rejection": {"statuses": [200, 70000]}}"#),
            "`token-rejection.statuses[1]`: invalid value: integer `70000`, expected u16"
        );
        assert_eq!(
            reason(r#"{"token-url": "t", "token-placement": {"header": {"name": 1}}}"#),
            "`token-placement.header.name`: invalid type: integer `1`, expected a string"
        );
        assert_eq!(
            reason(r#"{"token-url": "t", "token-placement": "query"}"#),
            "`token-placement`: `query` needs a value: {\"query\": ...}"
        );
        assert_eq!(
            reason("{ not json"),
            "key must be a string at line 1 column 3"
        );
    }

    #[test]
    fn bad_profiles_are_typed_configuration_errors() {
        let invalid_profile = |json: &str| match ProviderProfile::from_json(json) {
            Err(Error::Configuration(ConfigError::InvalidProfile(_))) => {}
            other => panic!("{json}: {other:?}"),
        };
        invalid_profile("not json");
        invalid_profile("{}");
        invalid_profile(r#"{"token-url": 5}"#);
        invalid_profile(r#"{"token-url": "https://a.example/t", "pkce": "md5"}"#);
        invalid_profile(r#"{"token-url": "https://a.example/t", "colour": "red"}"#);

        assert_eq!(
            ProviderProfile::from_json(r#"{"token-url": "http://a.example/t"}"#).unwrap_err(),
            Error::Configuration(ConfigError::InsecureUrl("token-url".into()))
        );
        assert_eq!(
            ProviderProfile::from_json(
                r#"{"token-url": "https://a.example/t", "authorize-url": "nope"}"#
            )
            .unwrap_err(),
            Error::Configuration(ConfigError::InvalidUrl("authorize-url".into()))
        );
        assert_eq!(
            ProviderProfile::from_json(
                r#"{"token-url": "https://a.example/t", "scope-separator": ""}"#
            )
            .unwrap_err(),
            Error::Configuration(ConfigError::InvalidValue("scope-separator".into()))
        );
        assert_eq!(
            ProviderProfile::from_json(r#"{"token-url": "https://a.example/t", "issuer": "x"}"#)
                .unwrap_err(),
            Error::Configuration(ConfigError::InvalidValue("issuer".into()))
        );
        assert_eq!(
            ProviderProfile::from_json(
                r#"{"token-url": "https://a.example/t", "requires-iss": true}"#
            )
            .unwrap_err(),
            Error::Configuration(ConfigError::InvalidValue("issuer".into()))
        );
    }
}

//! Human-readable text for the component's typed errors (the CLI's messages), and the views
//! of a stored connection that `list`, `show` and `status` print.
//!
//! These describe the error's kind and the fields it names; the component never puts a
//! secret in an error, so neither does this.

use crate::bindings::types::{
    CallbackError, ClientAuthMethod, ConfigurationError, Error, OauthError, SigningError,
    TransportError,
};
use std::path::PathBuf;

use serde::Serialize;

use crate::connections::{Health, health};
use crate::store::{
    ConnectionState, Grant, Reauthorization, SecretSource, StoredConnection, TokenSource,
};
use crate::types::ConnectionConfig;

/// `text` with control characters (terminal escapes from a hostile server) replaced by `?`.
pub fn printable(text: &str) -> String {
    text.chars()
        .map(|c| if c.is_control() { '?' } else { c })
        .collect()
}

/// Unix seconds as RFC 3339 UTC (civil-from-days, H. Hinnant's algorithm).
pub fn format_time(unix: u64) -> String {
    let days = (unix / 86_400) as i64;
    let seconds = unix % 86_400;
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        seconds / 3600,
        seconds % 3600 / 60,
        seconds % 60
    )
}

/// A connection's state in a few words: `active`, `revoked at TIME (by `revoke`)`, or
/// `needs re-authorization since TIME (CODE)` with the server's error code.
pub fn connection_state(state: &ConnectionState) -> String {
    match state {
        ConnectionState::Active => "active".to_owned(),
        ConnectionState::NeedsReauthorization {
            reason: Reauthorization::Revoked,
            since,
        } => format!("revoked at {} (by `revoke`)", format_time(*since)),
        ConnectionState::NeedsReauthorization {
            reason: Reauthorization::RefreshRefused(code),
            since,
        } => format!(
            "needs re-authorization since {} (the server refused to renew it: {})",
            format_time(*since),
            printable(code)
        ),
        ConnectionState::NeedsReauthorization {
            reason: Reauthorization::RefreshInterrupted(code),
            since,
        } => format!(
            "needs re-authorization since {} (a refresh was interrupted before its new tokens \
             were stored, and the server then refused the old refresh token: {})",
            format_time(*since),
            printable(code)
        ),
    }
}

/// One line describing `error`.
pub fn error(error: &Error) -> String {
    match error {
        Error::ServerSaidNo(error) => format!("the server refused: {}", oauth_error(error)),
        Error::ReauthorizationRequired(error) => format!(
            "the connection must be authorized again (connect again): {}",
            oauth_error(error)
        ),
        Error::ServerUnavailable(unavailable) => {
            let mut text = format!("the server is unavailable (HTTP {})", unavailable.status);
            if let Some(seconds) = unavailable.retry_after_seconds {
                text.push_str(&format!("; retry after {seconds} s"));
            }
            if let Some(error) = &unavailable.error {
                text.push_str(&format!(": {}", oauth_error(error)));
            }
            text
        }
        Error::Transport(error) => format!("transport: {}", transport_error(error)),
        Error::InvalidResponse(response) => format!(
            "invalid response (HTTP {}): {}; body starts: {:?}",
            response.status, response.reason, response.excerpt
        ),
        Error::Configuration(error) => format!("configuration: {}", configuration_error(error)),
        Error::Callback(error) => format!("callback refused: {}", callback_error(error)),
        Error::Discovery(error) => format!("discovery failed: {}", discovery_error(error)),
        Error::Signing(error) => format!(
            "the client assertion could not be signed: {}",
            signing_error(error)
        ),
    }
}

/// Which front end an error is explained to: the fix it names differs (a flag of the CLI,
/// a field of the service's API).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FrontEnd {
    /// `connector-host` on the command line.
    Cli,
    /// `connector-host serve`'s API.
    Service,
}

/// What the user of `front` changes to fix `error`, when that is a setting of theirs (a
/// missing client secret, variable or key); `None` for every other error. The messages of
/// [`error`] name no front end's settings, so that one message serves both.
pub fn fix(error: &Error, front: FrontEnd) -> Option<String> {
    Some(match (error, front) {
        (Error::Configuration(ConfigurationError::MissingClientSecret), FrontEnd::Cli) => {
            "pass --client-secret-env VAR; for a public client, --client-auth none".to_owned()
        }
        (Error::Configuration(ConfigurationError::MissingClientSecret), FrontEnd::Service) => {
            "give the integration a `client_secret`; for a public client, `\"client_auth\": \
             \"none\"`"
                .to_owned()
        }
        (Error::Configuration(ConfigurationError::MissingVariable(name)), FrontEnd::Cli) => {
            format!("pass --var {name}=VALUE")
        }
        (Error::Configuration(ConfigurationError::MissingVariable(name)), FrontEnd::Service) => {
            format!("give the integration `\"vars\": {{\"{name}\": VALUE}}`")
        }
        (Error::Configuration(ConfigurationError::InvalidValue(field)), FrontEnd::Cli)
            if field == "resources" =>
        {
            "pass each --resource as an absolute URI, for example https://api.example.com/"
                .to_owned()
        }
        (Error::Configuration(ConfigurationError::InvalidValue(field)), FrontEnd::Service)
            if field == "resources" =>
        {
            "give the integration `\"resources\": [\"https://api.example.com/\"]`, absolute \
             URIs"
                .to_owned()
        }
        (Error::Configuration(ConfigurationError::UnknownPreset(_)), FrontEnd::Cli) => {
            "`connector-host providers --search TEXT` finds one; --presets FILE|DIR adds \
             your own"
                .to_owned()
        }
        (Error::Configuration(ConfigurationError::UnknownPreset(_)), FrontEnd::Service) => {
            "`provider` names a built-in preset or one of the service's --presets".to_owned()
        }
        (Error::Signing(SigningError::NoKey), FrontEnd::Cli) => {
            "pass --private-key FILE".to_owned()
        }
        _ => return None,
    })
}

/// One line for a signer that did not sign.
pub fn signing_error(error: &SigningError) -> String {
    match error {
        SigningError::NoKey => {
            "the host holds no private key for this client and purpose (a private_key_jwt \
             client key, a DPoP key or a JWT bearer assertion key)"
                .to_owned()
        }
        SigningError::Denied(reason) => format!("the host's signer refused: {}", printable(reason)),
        SigningError::Unsupported(reason) => format!("unsupported key: {}", printable(reason)),
        SigningError::Failed(reason) => format!("the signer failed: {}", printable(reason)),
    }
}

/// The RFC 7591 name of a client authentication method, for example `client_secret_basic`.
pub fn client_auth_method(method: ClientAuthMethod) -> &'static str {
    match method {
        ClientAuthMethod::ClientSecretBasic => "client_secret_basic",
        ClientAuthMethod::ClientSecretPost => "client_secret_post",
        ClientAuthMethod::None => "none",
        ClientAuthMethod::ClientSecretJwt => "client_secret_jwt",
        ClientAuthMethod::PrivateKeyJwt => "private_key_jwt",
    }
}

/// One line for a failed discovery.
pub fn discovery_error(error: &crate::bindings::types::DiscoveryError) -> String {
    use crate::bindings::types::DiscoveryError as D;
    match error {
        D::NotFound(status) => format!("no metadata document (last status {status})"),
        D::IssuerMismatch(issuer) => format!(
            "the metadata names another issuer, `{}` (RFC 8414 §3.3)",
            printable(issuer)
        ),
        D::MissingField(name) => format!("the metadata has no `{name}`"),
        D::ResourceMismatch(resource) => format!(
            "the protected-resource metadata names another resource, `{}`, than the URL asked \
             for (RFC 9728 §3.3: possible impersonation)",
            printable(resource)
        ),
        D::NoAuthorizationServer => "the protected resource names no authorization server \
             the connector can use (RFC 9728 `authorization_servers`)"
            .to_owned(),
    }
}

/// One line for a refused callback.
pub fn callback_error(error: &CallbackError) -> String {
    match error {
        CallbackError::Malformed(reason) => {
            format!("malformed callback URL: {}", printable(reason))
        }
        CallbackError::MissingState => "no `state` parameter".to_owned(),
        CallbackError::StateMismatch => {
            "`state` does not match the pending authorization (possible forgery)".to_owned()
        }
        CallbackError::Expired => "the pending authorization has expired; start again".to_owned(),
        CallbackError::IssuerMismatch => {
            "`iss` names another authorization server (possible mix-up attack)".to_owned()
        }
        CallbackError::IssuerMissing => "the server must send `iss` and did not".to_owned(),
        CallbackError::MissingCode => "no `code` parameter".to_owned(),
    }
}

/// `code: description (uri)`.
pub fn oauth_error(error: &OauthError) -> String {
    let mut text = printable(&error_code(&error.code));
    if let Some(description) = &error.description {
        text.push_str(": ");
        text.push_str(&printable(description));
    }
    if let Some(uri) = &error.uri {
        text.push_str(&format!(" ({})", printable(uri)));
    }
    text
}

/// The wire form of an error code, for example `access_denied`.
pub fn error_code(code: &crate::bindings::types::ErrorCode) -> String {
    use crate::bindings::types::ErrorCode as C;
    match code {
        C::InvalidRequest => "invalid_request",
        C::InvalidClient => "invalid_client",
        C::InvalidGrant => "invalid_grant",
        C::UnauthorizedClient => "unauthorized_client",
        C::UnsupportedGrantType => "unsupported_grant_type",
        C::InvalidScope => "invalid_scope",
        C::AccessDenied => "access_denied",
        C::UnsupportedResponseType => "unsupported_response_type",
        C::ServerError => "server_error",
        C::TemporarilyUnavailable => "temporarily_unavailable",
        C::AuthorizationPending => "authorization_pending",
        C::SlowDown => "slow_down",
        C::ExpiredToken => "expired_token",
        C::InvalidToken => "invalid_token",
        C::Extension(code) => code,
    }
    .to_owned()
}

/// One line for a transport failure.
pub fn transport_error(error: &TransportError) -> String {
    match error {
        TransportError::Denied(host) => format!(
            "host `{}` is not on the allow-list (the origins of the profile's endpoints and \
             api-base-url; `connector-host show NAME` lists them)",
            printable(host)
        ),
        TransportError::InvalidRequest(reason) => format!("invalid request: {reason}"),
        TransportError::ConnectionFailed(reason) => {
            format!("connection failed: {}", printable(reason))
        }
        TransportError::Tls(reason) => format!("TLS failed: {}", printable(reason)),
        TransportError::Timeout => "timed out".to_owned(),
        TransportError::ResponseTooLarge(cap) => format!("response body over the {cap}-byte cap"),
        TransportError::Other(reason) => printable(reason),
    }
}

/// One line for a configuration error.
pub fn configuration_error(error: &ConfigurationError) -> String {
    match error {
        ConfigurationError::MissingEndpoint(field) => format!("the profile has no `{field}`"),
        ConfigurationError::InvalidUrl(field) => {
            format!("`{field}` is not an absolute http(s) URL")
        }
        ConfigurationError::InsecureUrl(field) => {
            format!("`{field}` uses plain HTTP on a host other than loopback; use https")
        }
        ConfigurationError::ReservedParameter(name) => {
            format!("extra parameter `{name}` would override one the flow sets itself")
        }
        ConfigurationError::InvalidValue(field) if field == "resources" => {
            "a resource (RFC 8707) must be an absolute URI without a fragment, spaces or control \
             characters, such as https://api.example.com/"
                .to_owned()
        }
        ConfigurationError::InvalidValue(field) => format!("`{field}` has an unusable value"),
        ConfigurationError::MissingClientSecret => {
            "the client's authentication method needs a client secret and none is configured"
                .to_owned()
        }
        ConfigurationError::NoRefreshToken => {
            "the connection has no refresh token; connect again".to_owned()
        }
        ConfigurationError::MissingVariable(name) => {
            format!("the profile needs a value for `{name}`")
        }
        ConfigurationError::InvalidVariable(name) => format!(
            "the value of `{name}` is not allowed in its URL: inside a URL a value may hold only \
             letters, digits, `.`, `-` and `_` (not `.` or `..` alone), so that it cannot \
             change the URL's host, path or query; a placeholder that starts the URL takes an \
             absolute http(s) URL without query or fragment"
        ),
        ConfigurationError::UnknownPreset(id) => format!("no preset named `{id}`"),
        ConfigurationError::InvalidProfile(reason) => format!("invalid provider profile: {reason}"),
    }
}

/// The machine-readable view of a stored connection (`list --json`, `show --json`): its
/// settings and state, never a secret or a token. The field names are stable (README,
/// "Machine-readable output"); times are RFC 3339 UTC.
#[derive(Debug, Serialize)]
pub struct ConnectionView {
    /// The connection's name.
    pub name: String,
    /// The provider profile's id.
    pub provider: String,
    /// The profile's issuer, if it names one.
    pub issuer: Option<String>,
    /// The token endpoint.
    pub token_url: String,
    /// The base URL of the provider's API, if the profile names one.
    pub api_base_url: Option<String>,
    /// How the connection was obtained: `authorization-code`, `client-credentials`, `device`.
    pub grant: Grant,
    /// The client identifier.
    pub client_id: String,
    /// The client's authentication method (RFC 7591 name, for example `client_secret_basic`).
    pub client_auth: &'static str,
    /// Whether that method is the profile's default (the client named none).
    pub client_auth_from_profile: bool,
    /// Where the client's credential comes from: `none`, `stored-secret`,
    /// `secret-from-environment`, `private-key` (a key file) or `stored-private-key` (a key
    /// stored, sealed, with the connection: a service integration's).
    pub credential: &'static str,
    /// For `secret-from-environment`: the variable's name.
    pub secret_env: Option<String>,
    /// For `private-key`: the key file.
    pub private_key: Option<PathBuf>,
    /// For `private-key` and `stored-private-key`: the key id (`kid`), if any.
    pub key_id: Option<String>,
    /// The redirect URI the authorization code was delivered to.
    pub redirect_uri: Option<String>,
    /// The scopes requested (empty: the profile's defaults).
    pub requested_scopes: Vec<String>,
    /// The scopes actually asked for: [`requested_scopes`](Self::requested_scopes), else the
    /// profile's defaults, plus its offline-access scopes with `--offline`
    /// ([`effective_requested_scopes`]).
    pub effective_requested_scopes: Vec<String>,
    /// The scopes granted (RFC 6749 §5.1 `scope`).
    pub scopes: Vec<String>,
    /// The access token's type, for example `bearer`.
    pub token_type: String,
    /// `valid`, `expiring-soon`, `expired-refreshable`, `needs-reauthorization` or `revoked`
    /// (see `status`).
    pub status: &'static str,
    /// Why and since when the connection must be connected again; null when it is active.
    pub mark: Option<MarkView>,
    /// When the access token expires; null when the server sent no expiry.
    pub expires_at: Option<String>,
    /// Whether a refresh token is stored.
    pub refresh_token: bool,
    /// Whether an ID token is stored.
    pub id_token: bool,
    /// The stored ID token's `sub` claim, as stored and not verified (see [`IdTokenClaims`]);
    /// null without an ID token or when it cannot be read.
    pub subject: Option<String>,
    /// The stored ID token's `iss` claim, as stored and not verified; null without an ID
    /// token or when it cannot be read.
    pub subject_issuer: Option<String>,
    /// When the tokens were obtained.
    pub obtained_at: String,
    /// When the connection was first stored.
    pub created_at: String,
    /// When its tokens were last written.
    pub updated_at: String,
    /// How many times its tokens were written.
    pub token_writes: u64,
    /// The RFC 7638 thumbprint of the DPoP key the tokens are bound to (RFC 9449), or
    /// `null` for bearer tokens. Public: it names the key, it is not the key.
    pub dpop_key_thumbprint: Option<String>,
    /// The resources the tokens are for (RFC 8707 `resource`).
    pub resources: Vec<String>,
    /// For a token exchange: the stored connection whose token is exchanged, or `null`.
    pub subject_connection: Option<String>,
    /// For a token exchange: the environment variable the subject token was read from at
    /// `connect`, or `null`.
    pub subject_env: Option<String>,
    /// For a token exchange: the `audience` values asked for.
    pub audiences: Vec<String>,
    /// Whether the client was registered dynamically by `connect --resource` (RFC 7591).
    pub registered_client: bool,
}

/// Why a connection must be connected again.
#[derive(Debug, Serialize)]
pub struct MarkView {
    /// `revoked` (by `revoke`) or `refresh-refused`.
    pub reason: &'static str,
    /// For `refresh-refused`: the server's OAuth error code, for example `invalid_grant`.
    pub error: Option<String>,
    /// Since when.
    pub since: String,
}

/// `connection`'s machine-readable view at `now` (Unix seconds).
pub fn connection_view(connection: &StoredConnection, now: u64) -> ConnectionView {
    let config = &connection.config;
    let tokens = &connection.tokens;
    let (credential, secret_env, private_key, key_id) = match &connection.secret {
        SecretSource::None => ("none", None, None, None),
        SecretSource::Stored(_) => ("stored-secret", None, None, None),
        SecretSource::Environment(var) => {
            ("secret-from-environment", Some(var.clone()), None, None)
        }
        SecretSource::PrivateKey { path, key_id } => {
            ("private-key", None, Some(path.clone()), key_id.clone())
        }
        SecretSource::StoredPrivateKey { key_id, .. } => {
            ("stored-private-key", None, None, key_id.clone())
        }
    };
    let mark = match &connection.state {
        ConnectionState::Active => None,
        ConnectionState::NeedsReauthorization { reason, since } => Some(MarkView {
            reason: reason.name(),
            error: reason.error().map(str::to_owned),
            since: format_time(*since),
        }),
    };
    let claims = stored_id_token_claims(connection);
    let exchange = connection.secrets.exchange();
    ConnectionView {
        name: connection.name.clone(),
        provider: config.profile.id.clone(),
        issuer: config.profile.issuer.clone(),
        token_url: config.profile.token_url.clone(),
        api_base_url: config.profile.api_base_url.clone(),
        grant: connection.grant,
        client_id: config.client.client_id.clone(),
        client_auth: client_auth_method(
            config
                .client
                .auth_method
                .unwrap_or(config.profile.client_auth),
        ),
        client_auth_from_profile: config.client.auth_method.is_none(),
        credential,
        secret_env,
        private_key,
        key_id,
        redirect_uri: config.redirect_uri.clone(),
        requested_scopes: config.scopes.clone(),
        effective_requested_scopes: effective_requested_scopes(config),
        scopes: tokens.scopes.clone(),
        token_type: tokens.token_type.clone(),
        status: health(connection, now).name(),
        mark,
        expires_at: tokens.expires_at.map(format_time),
        refresh_token: tokens.refresh_token.is_some(),
        id_token: tokens.id_token.is_some(),
        subject: claims.subject,
        subject_issuer: claims.issuer,
        obtained_at: format_time(tokens.obtained_at),
        created_at: format_time(connection.created_at),
        updated_at: format_time(connection.updated_at),
        token_writes: connection.token_writes,
        dpop_key_thumbprint: dpop_thumbprint(connection),
        resources: config.resources.clone(),
        subject_connection: exchange.and_then(|settings| match &settings.subject {
            TokenSource::Connection(name) => Some(name.clone()),
            TokenSource::Environment(_) => None,
        }),
        subject_env: exchange.and_then(|settings| match &settings.subject {
            TokenSource::Environment(var) => Some(var.clone()),
            TokenSource::Connection(_) => None,
        }),
        audiences: exchange.map_or_else(Vec::new, |settings| settings.audiences.clone()),
        registered_client: connection.secrets.registration.is_some(),
    }
}

/// The RFC 7638 thumbprint of the DPoP key `connection`'s tokens are bound to: the one the
/// token set records, else its stored key's; `None` for a connection that is not DPoP-bound.
pub fn dpop_thumbprint(connection: &StoredConnection) -> Option<String> {
    if let Some(thumbprint) = &connection.tokens.dpop_key_thumbprint {
        return Some(thumbprint.clone());
    }
    let pem = connection.secrets.dpop_key.as_deref()?;
    crate::signer::KeyFileSigner::from_pem(pem, None)
        .ok()
        .map(|key| key.thumbprint())
}

/// `status`'s detail for `connection` at `now`: when it expires, or what fixes it.
pub fn status_detail(connection: &StoredConnection, now: u64) -> String {
    let name = printable(&connection.name);
    let expires = |at: Option<u64>| at.map_or_else(|| "no expiry sent".to_owned(), format_time);
    match (health(connection, now), &connection.state) {
        (_, marked @ ConnectionState::NeedsReauthorization { .. }) => format!(
            "{}; run `connector-host reconnect {name}`",
            connection_state(marked)
        ),
        (Health::NeedsReauthorization, _) => format!(
            "expired at {} and nothing can renew it without you; run `connector-host \
             reconnect {name}`",
            expires(connection.tokens.expires_at)
        ),
        (Health::ExpiredRefreshable, _) => format!(
            "expired at {}; renewed on next use",
            expires(connection.tokens.expires_at)
        ),
        (_, ConnectionState::Active) => match connection.tokens.expires_at {
            None => "no expiry sent".to_owned(),
            Some(at) => format!("expires at {}", format_time(at)),
        },
    }
}

/// Who signed in, as the stored ID token (OpenID Connect Core §2) says: its `sub` and `iss`
/// claims.
///
/// Shown as stored, never as proof: nothing here checks the token's signature, and the
/// connector does not validate ID tokens where it obtains them either (no signature, `iss`,
/// `aud` or `nonce` check; it keeps the `id_token` of the token response it received from
/// the profile's token endpoint). The token itself is never printed.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct IdTokenClaims {
    /// The `sub` claim, when it is a non-empty string.
    pub subject: Option<String>,
    /// The `iss` claim, when it is a non-empty string.
    pub issuer: Option<String>,
}

/// The claims of `id_token`, a JWS compact serialization (`HEADER.PAYLOAD.SIGNATURE`, RFC
/// 7515 §7.1) whose payload is base64url without padding over a JSON object (RFC 7519 §7.2).
///
/// Never fails: anything else (an encrypted ID token, bad base64url, a payload that is not
/// a JSON object, a claim that is not a string) gives no value for the claims concerned.
pub fn id_token_claims(id_token: &str) -> IdTokenClaims {
    use base64::Engine as _;
    let mut parts = id_token.split('.');
    let (Some(_header), Some(payload), Some(_signature), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return IdTokenClaims::default();
    };
    let Ok(json) = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(payload) else {
        return IdTokenClaims::default();
    };
    let Ok(serde_json::Value::Object(claims)) = serde_json::from_slice(&json) else {
        return IdTokenClaims::default();
    };
    let text = |name: &str| {
        claims
            .get(name)
            .and_then(serde_json::Value::as_str)
            .filter(|value| !value.is_empty())
            .map(str::to_owned)
    };
    IdTokenClaims {
        subject: text("sub"),
        issuer: text("iss"),
    }
}

/// The claims of `connection`'s stored ID token; none without one.
pub fn stored_id_token_claims(connection: &StoredConnection) -> IdTokenClaims {
    connection
        .tokens
        .id_token
        .as_deref()
        .map(id_token_claims)
        .unwrap_or_default()
}

/// The issuer `show` prints: the ID token's `iss`, followed by the profile's issuer in
/// parentheses when that differs; else the profile's issuer; else none.
pub fn shown_issuer(profile_issuer: Option<&str>, claims: &IdTokenClaims) -> Option<String> {
    match (claims.issuer.as_deref(), profile_issuer) {
        (Some(claimed), Some(profile)) if claimed != profile => {
            Some(format!("{claimed} (the profile names {profile})"))
        }
        (Some(claimed), _) => Some(claimed.to_owned()),
        (None, profile) => profile.map(str::to_owned),
    }
}

/// The scopes `config` asks for, as the component computes them
/// (`ConnectionConfig::prepare`): its own, else the profile's defaults, plus the profile's
/// offline-access scopes (once each) when it asks for offline access.
pub fn effective_requested_scopes(config: &ConnectionConfig) -> Vec<String> {
    let mut scopes = if config.scopes.is_empty() {
        config.profile.default_scopes.clone()
    } else {
        config.scopes.clone()
    };
    if config.offline_access {
        for scope in &config.profile.offline_access.scopes {
            if !scopes.contains(scope) {
                scopes.push(scope.clone());
            }
        }
    }
    scopes
}

/// `show`'s scopes: the granted ones, then `(requested: ...)` when the requested ones are a
/// different set (in any order). Nothing requested (the server chose) adds nothing.
pub fn scopes_text(granted: &[String], requested: &[String]) -> String {
    use std::collections::BTreeSet;
    let same = granted.iter().collect::<BTreeSet<_>>() == requested.iter().collect();
    if requested.is_empty() || same {
        return granted.join(" ");
    }
    let granted = if granted.is_empty() {
        "none".to_owned()
    } else {
        granted.join(" ")
    };
    format!("{granted} (requested: {})", requested.join(" "))
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::Engine as _;

    #[test]
    fn messages_name_no_front_end_and_each_front_end_names_its_own_fix() {
        let secret = Error::Configuration(ConfigurationError::MissingClientSecret);
        let variable =
            Error::Configuration(ConfigurationError::MissingVariable("tenant".to_owned()));
        let key = Error::Signing(SigningError::NoKey);
        for other in [&secret, &variable, &key] {
            assert!(!error(other).contains("--"), "{}", error(other));
            assert!(!error(other).contains('`') || error(other).contains("`tenant`"));
        }
        assert_eq!(
            fix(&secret, FrontEnd::Cli).unwrap(),
            "pass --client-secret-env VAR; for a public client, --client-auth none"
        );
        let resource =
            Error::Configuration(ConfigurationError::InvalidValue("resources".to_owned()));
        assert!(!error(&resource).contains("--"), "{}", error(&resource));
        assert_eq!(
            fix(&resource, FrontEnd::Cli).unwrap(),
            "pass each --resource as an absolute URI, for example https://api.example.com/"
        );
        assert_eq!(
            fix(&secret, FrontEnd::Service).unwrap(),
            concat!(
                "give the integration a `client_secret`; for a public client, ",
                "`\"client_auth\": \"none\"`"
            )
        );
        assert_eq!(
            fix(&variable, FrontEnd::Cli).unwrap(),
            "pass --var tenant=VALUE"
        );
        assert_eq!(
            fix(&variable, FrontEnd::Service).unwrap(),
            "give the integration `\"vars\": {\"tenant\": VALUE}`"
        );
        assert_eq!(fix(&key, FrontEnd::Cli).unwrap(), "pass --private-key FILE");
        assert_eq!(fix(&key, FrontEnd::Service), None);
        let refused = Error::Configuration(ConfigurationError::InvalidUrl("token-url".to_owned()));
        assert_eq!(fix(&refused, FrontEnd::Cli), None);
    }

    /// A JWS-shaped token over `payload` (the signature is not looked at).
    fn jwt(payload: &str) -> String {
        let encode = |text: &str| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(text);
        format!(
            "{}.{}.c2lnbmF0dXJl",
            encode(r#"{"alg":"RS256","kid":"k1"}"#),
            encode(payload)
        )
    }

    fn claims(subject: Option<&str>, issuer: Option<&str>) -> IdTokenClaims {
        IdTokenClaims {
            subject: subject.map(str::to_owned),
            issuer: issuer.map(str::to_owned),
        }
    }

    #[test]
    fn an_id_token_gives_its_subject_and_issuer() {
        let token =
            jwt(r#"{"iss":"https://login.example.com","sub":"alice","aud":"web","exp":1,"iat":0}"#);
        assert_eq!(
            id_token_claims(&token),
            claims(Some("alice"), Some("https://login.example.com"))
        );
        // An unsecured JWT (RFC 7519 §6.1) has an empty signature part; still readable.
        let unsigned = token.rsplit_once('.').unwrap().0.to_owned() + ".";
        assert_eq!(id_token_claims(&unsigned), id_token_claims(&token));
    }

    #[test]
    fn a_missing_or_non_string_claim_is_none() {
        assert_eq!(
            id_token_claims(&jwt(r#"{"iss":"https://login.example.com"}"#)),
            claims(None, Some("https://login.example.com"))
        );
        assert_eq!(
            id_token_claims(&jwt(r#"{"sub":42,"iss":["a"]}"#)),
            claims(None, None)
        );
        assert_eq!(
            id_token_claims(&jwt(r#"{"sub":"","iss":"x"}"#)),
            claims(None, Some("x"))
        );
    }

    #[test]
    fn a_malformed_id_token_gives_no_claims() {
        let payload = |text: &str| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(text);
        for token in [
            String::new(),
            "not-a-jwt".to_owned(),
            // Two parts, or five (an encrypted ID token, RFC 7516 §7.1).
            format!("e30.{}", payload(r#"{"sub":"alice"}"#)),
            format!("a.{}.c.d.e", payload(r#"{"sub":"alice"}"#)),
            // Not base64url: standard alphabet, padding, stray characters.
            "e30.eyJzdWIiOiJhbGljZSJ9+/.sig".to_owned(),
            "e30.eyJzdWIiOiJhbGljZSJ9==.sig".to_owned(),
            "e30.!!!.sig".to_owned(),
            // Base64url of text that is not JSON, of a JSON array, of a JSON string, of bytes
            // that are not UTF-8.
            format!("e30.{}.sig", payload("sub=alice")),
            format!("e30.{}.sig", payload(r#"[{"sub":"alice"}]"#)),
            format!("e30.{}.sig", payload(r#""alice""#)),
            format!(
                "e30.{}.sig",
                base64::engine::general_purpose::URL_SAFE_NO_PAD.encode([0xff, 0xfe, b'{'])
            ),
        ] {
            assert_eq!(id_token_claims(&token), IdTokenClaims::default(), "{token}");
        }
    }

    #[test]
    fn the_shown_issuer_prefers_the_id_token_and_names_a_different_profile_issuer() {
        let profile = Some("https://login.example.com");
        let from_token = claims(Some("alice"), Some("https://login.example.com"));
        assert_eq!(
            shown_issuer(profile, &from_token).as_deref(),
            Some("https://login.example.com")
        );
        let other = claims(Some("alice"), Some("https://other.example"));
        assert_eq!(
            shown_issuer(profile, &other).as_deref(),
            Some("https://other.example (the profile names https://login.example.com)")
        );
        assert_eq!(
            shown_issuer(None, &other).as_deref(),
            Some("https://other.example")
        );
        let none = IdTokenClaims::default();
        assert_eq!(
            shown_issuer(profile, &none).as_deref(),
            Some("https://login.example.com")
        );
        assert_eq!(shown_issuer(None, &none), None);
    }

    #[test]
    fn scopes_name_the_requested_ones_only_when_they_differ() {
        let s =
            |text: &str| -> Vec<String> { text.split_whitespace().map(str::to_owned).collect() };
        assert_eq!(
            scopes_text(&s("openid profile"), &s("openid profile email")),
            "openid profile (requested: openid profile email)"
        );
        assert_eq!(
            scopes_text(&s("profile openid"), &s("openid profile")),
            "profile openid"
        );
        assert_eq!(scopes_text(&s("openid"), &s("")), "openid");
        assert_eq!(scopes_text(&s(""), &s("")), "");
        assert_eq!(
            scopes_text(&s(""), &s("openid")),
            "none (requested: openid)"
        );
    }

    #[test]
    fn requested_scopes_are_the_connections_else_the_profiles_plus_offline_ones() {
        let mut config = crate::config_with_defaults(
            crate::types::ProviderProfile {
                default_scopes: vec!["openid".into(), "profile".into()],
                ..crate::profile_with_defaults("p", "https://login.example.com/token")
            },
            "web",
        );
        assert_eq!(effective_requested_scopes(&config), ["openid", "profile"]);
        config.profile.offline_access.scopes = vec!["offline_access".into(), "openid".into()];
        config.offline_access = true;
        assert_eq!(
            effective_requested_scopes(&config),
            ["openid", "profile", "offline_access"]
        );
        config.scopes = vec!["email".into()];
        assert_eq!(
            effective_requested_scopes(&config),
            ["email", "offline_access", "openid"]
        );
    }
}

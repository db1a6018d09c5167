//! Building token-endpoint requests (RFC 6749 §3.2, §4.1.3) with the client's
//! authentication (§2.3.1; RFC 7523 §2.2 for JWT assertions) and extras.

use crate::prelude::*;

use crate::authorize::PendingAuthorization;
use crate::callback::AuthorizationCode;
use crate::client_auth::{self, AuthContext};
use crate::error::{ConfigError, Error};
use crate::form;
use crate::http::{HttpRequest, Method};
use crate::profile::{
    BodyFormat, ClientAuthMethod, ConnectionConfig, KeyValue, Prepared, RequestKind,
};
use crate::secret::Secret;

/// Body parameters the connector sets; an extra parameter may not override them.
pub const RESERVED_BODY_PARAMS: [&str; 10] = [
    "grant_type",
    "code",
    "redirect_uri",
    "code_verifier",
    "client_id",
    "client_secret",
    "refresh_token",
    "device_code",
    "client_assertion",
    "client_assertion_type",
];

/// Headers the transport or the connector owns; an extra header may not set them.
const RESERVED_HEADERS: [&str; 4] = [
    "content-type",
    "content-length",
    "host",
    "transfer-encoding",
];

/// The code-exchange request (RFC 6749 §4.1.3): `grant_type=authorization_code`, the code, the
/// `redirect_uri` when one was sent with the authorize request, the PKCE `code_verifier`
/// (RFC 7636 §4.5), then client authentication, then the profile's and the caller's extras.
pub fn code_exchange(
    config: &Prepared,
    pending: &PendingAuthorization,
    code: &AuthorizationCode,
    auth: &AuthContext<'_>,
) -> Result<HttpRequest, Error> {
    let mut params = vec![
        KeyValue::new("grant_type", "authorization_code"),
        KeyValue::new("code", code.code.expose()),
    ];
    if let Some(redirect_uri) = &pending.redirect_uri {
        params.push(KeyValue::new("redirect_uri", redirect_uri));
    }
    if let Some(verifier) = &pending.code_verifier {
        params.push(KeyValue::new("code_verifier", verifier.expose()));
    }
    push_resources(config, &mut params);
    authenticated_post(
        config,
        "token-url",
        params,
        Some(RequestKind::CodeExchange),
        auth,
    )
}

/// The refresh request (RFC 6749 §6), to `refresh-url` when the profile has one.
pub fn refresh(
    config: &Prepared,
    refresh_token: &Secret,
    auth: &AuthContext<'_>,
) -> Result<HttpRequest, Error> {
    let mut params = vec![
        KeyValue::new("grant_type", "refresh_token"),
        KeyValue::new("refresh_token", refresh_token.expose()),
    ];
    if config.profile.refresh_redirect_uri
        && let Some(redirect_uri) = &config.redirect_uri
    {
        params.push(KeyValue::new("redirect_uri", redirect_uri));
    }
    push_resources(config, &mut params);
    let endpoint = match &config.profile.refresh_url {
        Some(_) => "refresh-url",
        None => "token-url",
    };
    authenticated_post(config, endpoint, params, Some(RequestKind::Refresh), auth)
}

/// The client-credentials request (RFC 6749 §4.4.2), with `scope` when there are scopes.
pub fn client_credentials(config: &Prepared, auth: &AuthContext<'_>) -> Result<HttpRequest, Error> {
    let mut params = vec![KeyValue::new("grant_type", "client_credentials")];
    push_scope(config, &mut params);
    push_resources(config, &mut params);
    authenticated_post(
        config,
        "token-url",
        params,
        Some(RequestKind::ClientCredentials),
        auth,
    )
}

/// The device authorization request (RFC 8628 §3.1).
pub fn device_authorization(
    config: &Prepared,
    auth: &AuthContext<'_>,
) -> Result<HttpRequest, Error> {
    let mut params = vec![];
    push_scope(config, &mut params);
    authenticated_post(
        config,
        "device-authorization-url",
        params,
        Some(RequestKind::Device),
        auth,
    )
}

/// One device token poll (RFC 8628 §3.4).
pub fn device_poll(
    config: &Prepared,
    device_code: &Secret,
    auth: &AuthContext<'_>,
) -> Result<HttpRequest, Error> {
    let params = vec![
        KeyValue::new("grant_type", DEVICE_CODE_GRANT),
        KeyValue::new("device_code", device_code.expose()),
    ];
    authenticated_post(config, "token-url", params, Some(RequestKind::Device), auth)
}

/// The RFC 8628 grant type.
pub const DEVICE_CODE_GRANT: &str = "urn:ietf:params:oauth:grant-type:device_code";

/// A revocation request (RFC 7009 §2.1).
pub fn revocation(
    config: &Prepared,
    token: &Secret,
    hint: &str,
    auth: &AuthContext<'_>,
) -> Result<HttpRequest, Error> {
    let params = vec![
        KeyValue::new("token", token.expose()),
        KeyValue::new("token_type_hint", hint),
    ];
    authenticated_post(config, "revocation-url", params, None, auth)
}

/// An introspection request (RFC 7662 §2.1).
pub fn introspection(
    config: &Prepared,
    token: &Secret,
    hint: Option<&str>,
    auth: &AuthContext<'_>,
) -> Result<HttpRequest, Error> {
    let mut params = vec![KeyValue::new("token", token.expose())];
    if let Some(hint) = hint {
        params.push(KeyValue::new("token_type_hint", hint));
    }
    authenticated_post(config, "introspection-url", params, None, auth)
}

/// `resource` for each of the connection's resources (RFC 8707 §2.2).
pub fn push_resources(config: &ConnectionConfig, params: &mut Vec<KeyValue>) {
    for resource in &config.resources {
        params.push(KeyValue::new("resource", resource));
    }
}

/// `scope`: the effective scopes joined by the profile's separator, when there are any.
pub fn push_scope(config: &ConnectionConfig, params: &mut Vec<KeyValue>) {
    let scopes = config.effective_scopes();
    if !scopes.is_empty() {
        params.push(KeyValue::new(
            "scope",
            scopes.join(&config.profile.scope_separator),
        ));
    }
}

/// A form POST to the profile's endpoint `field` (`token-url`, ...) with `params`, client
/// authentication by the client's method, then the profile's and the caller's extras for
/// `kind`. The URL's own query string is kept. An extra may not repeat a parameter the
/// request already carries, nor set a reserved one.
///
/// Errors: `missing-endpoint(field)` when the profile has no such endpoint.
pub fn authenticated_post(
    config: &Prepared,
    field: &str,
    mut params: Vec<KeyValue>,
    kind: Option<RequestKind>,
    auth: &AuthContext<'_>,
) -> Result<HttpRequest, Error> {
    let profile = &config.profile;
    let url = config
        .endpoint(field)
        .ok_or_else(|| ConfigError::MissingEndpoint(field.to_owned()))?;
    let client = &config.client;
    if client.client_id.is_empty() {
        return Err(ConfigError::InvalidValue("client-id".into()).into());
    }
    let method = config.client_auth_method();
    // A pushed authorization request already carries `client_id` (RFC 9126 §2.1), under the
    // profile's name for it.
    let client_id_param = profile.client_id_param();
    let has_client_id = params
        .iter()
        .any(|param| param.name == "client_id" || param.name == client_id_param);
    let secret = || {
        client
            .client_secret
            .as_ref()
            .map(|secret| secret.expose())
            .ok_or(ConfigError::MissingClientSecret)
    };
    let content_type = match profile.token_request_format {
        BodyFormat::Form => "application/x-www-form-urlencoded",
        BodyFormat::Json => "application/json",
    };
    let mut headers = vec![
        KeyValue::new("Content-Type", content_type),
        KeyValue::new("Accept", "application/json"),
    ];
    match method {
        ClientAuthMethod::ClientSecretBasic => headers.push(KeyValue::new(
            "Authorization",
            form::basic_authorization(&client.client_id, secret()?),
        )),
        ClientAuthMethod::ClientSecretPost => {
            if !has_client_id {
                params.push(KeyValue::new("client_id", &client.client_id));
            }
            params.push(KeyValue::new("client_secret", secret()?));
        }
        ClientAuthMethod::None if has_client_id => {}
        ClientAuthMethod::None => params.push(KeyValue::new("client_id", &client.client_id)),
        ClientAuthMethod::ClientSecretJwt | ClientAuthMethod::PrivateKeyJwt => {
            let assertion = client_auth::assertion(config, method, url, auth)?;
            let [client_id, kind, assertion] =
                client_auth::assertion_params(&client.client_id, assertion);
            if !has_client_id {
                params.push(client_id);
            }
            params.extend([kind, assertion]);
        }
    }
    // The client id under the profile's name for it (TikTok's `client_key`).
    if client_id_param != "client_id" {
        for param in params.iter_mut().filter(|param| param.name == "client_id") {
            param.name = client_id_param.to_owned();
        }
    }
    let basic = method == ClientAuthMethod::ClientSecretBasic;
    let extras = kind.map(|kind| {
        [
            profile.token_requests.for_kind(kind),
            config.token_requests.for_kind(kind),
        ]
    });
    for extra in extras.iter().flatten() {
        for param in &extra.params {
            let taken = params.iter().any(|p| p.name == param.name);
            if taken
                || RESERVED_BODY_PARAMS.contains(&param.name.as_str())
                || param.name == client_id_param
            {
                return Err(ConfigError::ReservedParameter(param.name.clone()).into());
            }
            params.push(param.clone());
        }
        for header in &extra.headers {
            let name = header.name.to_ascii_lowercase();
            if RESERVED_HEADERS.contains(&name.as_str()) || (basic && name == "authorization") {
                return Err(ConfigError::ReservedParameter(header.name.clone()).into());
            }
            match headers
                .iter_mut()
                .find(|h| h.name.eq_ignore_ascii_case(&header.name))
            {
                Some(existing) => existing.value.clone_from(&header.value),
                None => headers.push(header.clone()),
            }
        }
    }
    Ok(HttpRequest {
        method: Method::Post,
        url: url.as_str().to_owned(),
        headers,
        body: match profile.token_request_format {
            BodyFormat::Form => form::encode(&params).into_bytes(),
            BodyFormat::Json => json_body(&params),
        },
    })
}

/// A JSON object of string members, in order (for vendors that want JSON token requests).
fn json_body(params: &[KeyValue]) -> Vec<u8> {
    let members: Vec<String> = params
        .iter()
        .map(|p| {
            format!(
                "{}:{}",
                serde_json::Value::from(p.name.as_str()),
                serde_json::Value::from(p.value.as_str())
            )
        })
        .collect();
    format!("{{{}}}", members.join(",")).into_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::profile::{Client, ProviderProfile, RequestExtras, TokenRequestExtras};
    use crate::secret::PkceVerifier;

    fn config(client_auth: ClientAuthMethod, secret: Option<&str>) -> ConnectionConfig {
        let mut profile = ProviderProfile::from_json(
            r#"{"authorize-url": "https://a.example/authorize",
                "token-url": "https://a.example/token?api-version=2"}"#,
        )
        .unwrap();
        profile.client_auth = client_auth;
        ConnectionConfig {
            profile,
            client: Client {
                client_id: "client id".into(),
                client_secret: secret.map(Secret::new),
                auth_method: None,
            },
            redirect_uri: None,
            scopes: vec![],
            authorize_params: vec![],
            token_requests: TokenRequestExtras::default(),
            variables: vec![],
            offline_access: false,
            resources: vec![],
            dpop: false,
        }
    }

    fn pending(verifier: Option<&str>, redirect_uri: Option<&str>) -> PendingAuthorization {
        PendingAuthorization {
            state: "s".into(),
            code_verifier: verifier.map(PkceVerifier::new),
            redirect_uri: redirect_uri.map(str::to_owned),
            requested_scopes: vec![],
            created_at: 0,
            expires_at: 600,
        }
    }

    fn code() -> AuthorizationCode {
        AuthorizationCode {
            code: Secret::new("the/code+1"),
        }
    }

    fn headers(request: &HttpRequest) -> Vec<(String, String)> {
        request
            .headers
            .iter()
            .map(|h| (h.name.clone(), h.value.clone()))
            .collect()
    }

    #[test]
    fn basic_with_pkce_and_redirect() {
        let request = code_exchange(
            &config(ClientAuthMethod::ClientSecretBasic, Some("p+a:s&s%w/o=r d"))
                .prepare()
                .unwrap(),
            &pending(Some("verifier"), Some("http://127.0.0.1:8765/callback")),
            &code(),
            &AuthContext::without_assertions(),
        )
        .unwrap();
        assert_eq!(request.method, Method::Post);
        assert_eq!(request.url, "https://a.example/token?api-version=2");
        assert_eq!(
            headers(&request),
            [
                (
                    "Content-Type".into(),
                    "application/x-www-form-urlencoded".into()
                ),
                ("Accept".into(), "application/json".into()),
                (
                    "Authorization".into(),
                    form::basic_authorization("client id", "p+a:s&s%w/o=r d")
                ),
            ]
        );
        assert_eq!(
            String::from_utf8(request.body).unwrap(),
            "grant_type=authorization_code&code=the%2Fcode%2B1\
             &redirect_uri=http%3A%2F%2F127.0.0.1%3A8765%2Fcallback&code_verifier=verifier"
        );
    }

    #[test]
    fn post_and_none() {
        let post = code_exchange(
            &config(ClientAuthMethod::ClientSecretPost, Some("s e"))
                .prepare()
                .unwrap(),
            &pending(None, None),
            &code(),
            &AuthContext::without_assertions(),
        )
        .unwrap();
        assert_eq!(post.headers.len(), 2);
        assert_eq!(
            String::from_utf8(post.body).unwrap(),
            "grant_type=authorization_code&code=the%2Fcode%2B1&client_id=client+id&client_secret=s+e"
        );
        let public = code_exchange(
            &config(ClientAuthMethod::None, None).prepare().unwrap(),
            &pending(Some("v"), None),
            &code(),
            &AuthContext::without_assertions(),
        )
        .unwrap();
        assert_eq!(
            String::from_utf8(public.body).unwrap(),
            "grant_type=authorization_code&code=the%2Fcode%2B1&code_verifier=v&client_id=client+id"
        );
    }

    #[test]
    fn the_client_id_goes_under_the_profiles_name_for_it() {
        // TikTok calls it `client_key`, on every request that carries it.
        let mut post = config(ClientAuthMethod::ClientSecretPost, Some("s"));
        post.profile.client_id_parameter = Some("client_key".into());
        let request = refresh(
            &post.prepare().unwrap(),
            &Secret::new("rt"),
            &AuthContext::without_assertions(),
        )
        .unwrap();
        assert_eq!(
            String::from_utf8(request.body).unwrap(),
            "grant_type=refresh_token&refresh_token=rt&client_key=client+id&client_secret=s"
        );
        let mut public = config(ClientAuthMethod::None, None);
        public.profile.client_id_parameter = Some("client_key".into());
        let request = code_exchange(
            &public.prepare().unwrap(),
            &pending(Some("v"), None),
            &code(),
            &AuthContext::without_assertions(),
        )
        .unwrap();
        assert_eq!(
            String::from_utf8(request.body).unwrap(),
            "grant_type=authorization_code&code=the%2Fcode%2B1&code_verifier=v&client_key=client+id"
        );
        // An extra may not set it either.
        public.token_requests.refresh.params = vec![KeyValue::new("client_key", "other")];
        public.client.client_secret = None;
        let refused = refresh(
            &public.prepare().unwrap(),
            &Secret::new("rt"),
            &AuthContext::without_assertions(),
        );
        assert_eq!(
            refused.unwrap_err(),
            Error::Configuration(ConfigError::ReservedParameter("client_key".into()))
        );
        // A name the flows use for something else is not a client id parameter.
        for bad in ["", "state", "redirect_uri", "code", "client id", "a&b"] {
            public.profile.client_id_parameter = Some(bad.into());
            assert_eq!(
                public.profile.validate(),
                Err(ConfigError::InvalidValue("client-id-parameter".into())),
                "{bad}"
            );
        }
    }

    #[test]
    fn a_refresh_repeats_the_redirect_uri_when_the_profile_says_so() {
        let mut config = config(ClientAuthMethod::ClientSecretBasic, Some("s"));
        config.redirect_uri = Some("https://app.example.com/cb".into());
        let body = |config: &ConnectionConfig| {
            let request = refresh(
                &config.prepare().unwrap(),
                &Secret::new("rt"),
                &AuthContext::without_assertions(),
            )
            .unwrap();
            String::from_utf8(request.body).unwrap()
        };
        assert_eq!(body(&config), "grant_type=refresh_token&refresh_token=rt");
        config.profile.refresh_redirect_uri = true;
        assert_eq!(
            body(&config),
            "grant_type=refresh_token&refresh_token=rt\
             &redirect_uri=https%3A%2F%2Fapp.example.com%2Fcb"
        );
        // Without a redirect URI there is nothing to repeat.
        config.redirect_uri = None;
        assert_eq!(body(&config), "grant_type=refresh_token&refresh_token=rt");
    }

    #[test]
    fn extras_from_profile_then_caller() {
        let mut config = config(ClientAuthMethod::None, None);
        config.profile.token_requests.code_exchange = RequestExtras {
            params: vec![KeyValue::new("resource", "https://api.example")],
            headers: vec![
                KeyValue::new("X-Vendor", "1"),
                KeyValue::new("Accept", "application/vnd+json"),
            ],
        };
        config.token_requests.code_exchange = RequestExtras {
            params: vec![KeyValue::new("audience", "api")],
            headers: vec![KeyValue::new("x-vendor", "2")],
        };
        let request = code_exchange(
            &config.prepare().unwrap(),
            &pending(None, None),
            &code(),
            &AuthContext::without_assertions(),
        )
        .unwrap();
        assert_eq!(
            headers(&request),
            [
                (
                    "Content-Type".into(),
                    "application/x-www-form-urlencoded".into()
                ),
                ("Accept".into(), "application/vnd+json".into()),
                ("X-Vendor".into(), "2".into()),
            ]
        );
        assert_eq!(
            String::from_utf8(request.body).unwrap(),
            "grant_type=authorization_code&code=the%2Fcode%2B1&client_id=client+id\
             &resource=https%3A%2F%2Fapi.example&audience=api"
        );
    }

    #[test]
    fn configuration_errors() {
        let err = |config: &ConnectionConfig| {
            config
                .prepare()
                .map_err(Error::from)
                .and_then(|config| {
                    code_exchange(
                        &config,
                        &pending(None, None),
                        &code(),
                        &AuthContext::without_assertions(),
                    )
                })
                .unwrap_err()
        };
        assert_eq!(
            err(&config(ClientAuthMethod::ClientSecretBasic, None)),
            Error::Configuration(ConfigError::MissingClientSecret)
        );
        assert_eq!(
            err(&config(ClientAuthMethod::ClientSecretPost, None)),
            Error::Configuration(ConfigError::MissingClientSecret)
        );
        for name in RESERVED_BODY_PARAMS {
            let mut c = config(ClientAuthMethod::None, None);
            c.token_requests.code_exchange.params = vec![KeyValue::new(name, "x")];
            assert_eq!(
                err(&c),
                Error::Configuration(ConfigError::ReservedParameter(name.into()))
            );
        }
        for name in [
            "Content-Type",
            "content-length",
            "Host",
            "Transfer-Encoding",
        ] {
            let mut c = config(ClientAuthMethod::None, None);
            c.profile.token_requests.code_exchange.headers = vec![KeyValue::new(name, "x")];
            assert_eq!(
                err(&c),
                Error::Configuration(ConfigError::ReservedParameter(name.into()))
            );
        }
        let mut basic = config(ClientAuthMethod::ClientSecretBasic, Some("s"));
        basic.token_requests.code_exchange.headers =
            vec![KeyValue::new("Authorization", "Bearer x")];
        assert_eq!(
            err(&basic),
            Error::Configuration(ConfigError::ReservedParameter("Authorization".into()))
        );
        let mut insecure = config(ClientAuthMethod::None, None);
        insecure.profile.token_url = "http://a.example/token".into();
        assert_eq!(
            err(&insecure),
            Error::Configuration(ConfigError::InsecureUrl("token-url".into()))
        );
    }
}

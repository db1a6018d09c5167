//! Authorized API calls (RFC 6750): attaching the token and reading rejection signals.

use crate::prelude::*;

use url::Url;

use crate::endpoint::parse_endpoint;
use crate::error::{ConfigError, Error};
use crate::http::{HttpRequest, HttpResponse};
use crate::profile::{KeyValue, ProviderProfile, TokenPlacement};
use crate::token::TokenSet;

/// `request` with the access token attached as the profile says. The URL must be https, or
/// http on loopback (RFC 6750 §5.3: never send a bearer token in clear).
pub fn authorize_request(
    profile: &ProviderProfile,
    tokens: &TokenSet,
    mut request: HttpRequest,
) -> Result<HttpRequest, Error> {
    let mut url: Url = parse_endpoint("url", &request.url)?;
    let token = tokens.access_token.expose();
    let set_header = |headers: &mut Vec<KeyValue>, name: &str, value: String| {
        headers.retain(|header| !header.name.eq_ignore_ascii_case(name));
        headers.push(KeyValue::new(name, value));
    };
    match &profile.token_placement {
        // A DPoP-bound token goes with its own scheme (RFC 9449 §7.1); the proof is added
        // by `dpop::exchange`.
        TokenPlacement::AuthorizationHeader if tokens.token_type == "dpop" => {
            set_header(
                &mut request.headers,
                "Authorization",
                format!("DPoP {token}"),
            );
        }
        TokenPlacement::AuthorizationHeader => {
            set_header(
                &mut request.headers,
                "Authorization",
                format!("Bearer {token}"),
            );
        }
        TokenPlacement::Header(header) => {
            if header.name.is_empty() {
                return Err(ConfigError::InvalidValue("token-placement".into()).into());
            }
            set_header(
                &mut request.headers,
                &header.name,
                format!("{}{token}", header.prefix),
            );
        }
        TokenPlacement::Query(name) => {
            let kept: Vec<(String, String)> = url
                .query_pairs()
                .filter(|(key, _)| key != name.as_str())
                .map(|(key, value)| (key.into_owned(), value.into_owned()))
                .collect();
            url.query_pairs_mut()
                .clear()
                .extend_pairs(kept)
                .append_pair(name, token);
            request.url = url.into();
        }
    }
    Ok(request)
}

/// Whether `response` means the token was rejected: any 401 (RFC 6750 §3.1; a
/// `WWW-Authenticate` with `invalid_token` or none at all), a status the profile lists, or a
/// body marker the profile lists.
pub fn token_rejected(profile: &ProviderProfile, response: &HttpResponse) -> bool {
    let rejection = &profile.token_rejection;
    if response.status == 401 || rejection.statuses.contains(&response.status) {
        return true;
    }
    if rejection.body_markers.is_empty() {
        return false;
    }
    let body = String::from_utf8_lossy(&response.body);
    rejection
        .body_markers
        .iter()
        .any(|marker| !marker.is_empty() && body.contains(marker.as_str()))
}

/// For a 429 or 503, the `Retry-After` delay in seconds (see `token::retry_after`), which a
/// host may honour before retrying an idempotent request.
pub fn retry_after(response: &HttpResponse, now: u64) -> Option<u64> {
    matches!(response.status, 429 | 503)
        .then(|| crate::token::retry_after(response, now))
        .flatten()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::Method;
    use crate::profile::{TokenHeader, TokenRejection};
    use crate::secret::Secret;

    fn tokens() -> TokenSet {
        TokenSet {
            access_token: Secret::new("tok"),
            token_type: "bearer".into(),
            expires_at: None,
            refresh_token: None,
            id_token: None,
            scopes: vec![],
            obtained_at: 0,
            extras: vec![],
            dpop_key_thumbprint: None,
        }
    }

    fn profile(extra: &str) -> ProviderProfile {
        ProviderProfile::from_json(&format!(r#"{{"token-url": "https://a.example/t"{extra}}}"#))
            .unwrap()
    }

    fn get(url: &str, headers: Vec<KeyValue>) -> HttpRequest {
        HttpRequest {
            method: Method::Get,
            url: url.into(),
            headers,
            body: vec![],
        }
    }

    #[test]
    fn placements() {
        let bearer = authorize_request(
            &profile(""),
            &tokens(),
            get(
                "https://api.example/me",
                vec![KeyValue::new("authorization", "x"), KeyValue::new("X", "1")],
            ),
        )
        .unwrap();
        assert_eq!(
            bearer.headers,
            [
                KeyValue::new("X", "1"),
                KeyValue::new("Authorization", "Bearer tok")
            ]
        );

        let mut custom = profile("");
        custom.token_placement = TokenPlacement::Header(TokenHeader {
            name: "X-Token".into(),
            prefix: "Token ".into(),
        });
        let request =
            authorize_request(&custom, &tokens(), get("https://api.example/me", vec![])).unwrap();
        assert_eq!(request.headers, [KeyValue::new("X-Token", "Token tok")]);

        let query = profile(r#", "token-placement": {"query": "access_token"}"#);
        let request = authorize_request(
            &query,
            &tokens(),
            get("https://api.example/me?a=1&access_token=old", vec![]),
        )
        .unwrap();
        assert_eq!(request.url, "https://api.example/me?a=1&access_token=tok");
        assert!(request.headers.is_empty());
    }

    #[test]
    fn refuses_clear_text_off_loopback() {
        assert_eq!(
            authorize_request(
                &profile(""),
                &tokens(),
                get("http://api.example/me", vec![])
            )
            .unwrap_err(),
            Error::Configuration(ConfigError::InsecureUrl("url".into()))
        );
        assert!(
            authorize_request(
                &profile(""),
                &tokens(),
                get("http://127.0.0.1:9/me", vec![])
            )
            .is_ok()
        );
    }

    #[test]
    fn rejection_signals() {
        let response = |status: u16, body: &str| HttpResponse {
            status,
            headers: vec![],
            body: body.as_bytes().to_vec(),
        };
        let plain = profile("");
        assert!(token_rejected(&plain, &response(401, "")));
        assert!(!token_rejected(&plain, &response(403, "")));
        assert!(!token_rejected(
            &plain,
            &response(200, r#"{"ok":false,"error":"invalid_auth"}"#)
        ));
        let mut quirky = profile("");
        quirky.token_rejection = TokenRejection {
            statuses: vec![403],
            body_markers: vec![r#""error":"invalid_auth""#.into()],
        };
        assert!(token_rejected(&quirky, &response(403, "")));
        assert!(token_rejected(
            &quirky,
            &response(200, r#"{"ok":false,"error":"invalid_auth"}"#)
        ));
        assert!(!token_rejected(&quirky, &response(200, r#"{"ok":true}"#)));
    }
}

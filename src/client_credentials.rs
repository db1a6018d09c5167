//! The Client Credentials grant (RFC 6749 §4.4).

use crate::client_auth::AuthContext;
use crate::error::Error;
use crate::http::{HttpRequest, HttpResponse};
use crate::profile::{ConnectionConfig, Prepared};
use crate::token::{TokenSet, parse_token_response};
use crate::token_request;

/// The token request (RFC 6749 §4.4.2).
pub fn request(config: &Prepared, auth: &AuthContext<'_>) -> Result<HttpRequest, Error> {
    token_request::client_credentials(config, auth)
}

/// Reads the token response (RFC 6749 §4.4.3); absent `scope` means the requested scopes.
pub fn finish(
    config: &ConnectionConfig,
    response: &HttpResponse,
    now: u64,
) -> Result<TokenSet, Error> {
    let secrets = config.secrets(&[]);
    parse_token_response(
        response,
        config.effective_scopes(),
        &config.profile.token_response,
        now,
        &secrets,
    )
}

//! Completing an authorization-code flow: the sans-IO steps around the one HTTP exchange.
//!
//! `prepare` validates the callback and builds the token request; the caller sends it (the
//! binding layer through the host's transport, tests however they like) and hands the
//! response to `finish`. A refused callback never produces a request.

use crate::authorize::PendingAuthorization;
use crate::callback::{self, AuthorizationCode};
use crate::error::Error;
use crate::http::{HttpRequest, HttpResponse};
use crate::profile::{ConnectionConfig, Prepared};
use crate::token::{TokenSet, parse_token_response};

/// Validates `callback_url` against `pending` and builds the code-exchange request.
pub fn prepare(
    config: &Prepared,
    pending: &PendingAuthorization,
    callback_url: &str,
    now: u64,
    auth: &crate::client_auth::AuthContext<'_>,
) -> Result<HttpRequest, Error> {
    let code = validate(config, pending, callback_url, now)?;
    crate::token_request::code_exchange(config, pending, &code, auth)
}

/// Validates `callback_url` against `pending` (see `callback::validate`): the code to
/// exchange, or why the callback is refused.
pub fn validate(
    config: &Prepared,
    pending: &PendingAuthorization,
    callback_url: &str,
    now: u64,
) -> Result<AuthorizationCode, Error> {
    callback::validate(&config.profile, pending, callback_url, now)
}

/// Interprets the token endpoint's answer to the request `prepare` built.
pub fn finish(
    config: &ConnectionConfig,
    pending: &PendingAuthorization,
    response: &HttpResponse,
    now: u64,
) -> Result<TokenSet, Error> {
    let verifier = pending.code_verifier.as_ref().map(|v| v.expose());
    let secrets = config.secrets(verifier.as_slice());
    parse_token_response(
        response,
        &pending.requested_scopes,
        &config.profile.token_response,
        now,
        &secrets,
    )
}

//! The Device Authorization grant (RFC 8628): `device::finish_begin` on arbitrary device
//! authorization answers and `device::finish_poll` on arbitrary poll answers, for a public
//! client and for one with a secret.
//!
//! Input: an HTTP response (see `fuzz_support`), read both as the device authorization answer
//! and as a poll answer.
#![no_main]

use fuzz_support::{
    CLIENT_SECRET, DEVICE_CODE, body_credentials, check_error, checkable, http_response,
};
use libfuzzer_sys::fuzz_target;
use oauth_connector::device::{
    self, DeviceAuthorization, DevicePoll, MAX_INTERVAL_SECS, SLOW_DOWN_STEP_SECS,
};
use oauth_connector::error::{Error, ErrorCode};
use oauth_connector::http::HttpResponse;
use oauth_connector::profile::{Client, ConnectionConfig, ProviderProfile};
use oauth_connector::secret::Secret;
use oauth_connector::token;
use serde_json::Value;

const NOW: u64 = 1_700_000_000;

fn config(secret: bool) -> ConnectionConfig {
    let profile = ProviderProfile::from_json(if secret {
        r#"{"token-url": "https://auth.example.com/token", "client-auth": "client-secret-post",
            "device-authorization-url": "https://auth.example.com/device"}"#
    } else {
        r#"{"token-url": "https://auth.example.com/token", "client-auth": "none",
            "device-authorization-url": "https://auth.example.com/device",
            "default-scopes": ["openid", "offline_access"]}"#
    })
    .expect("fixed profile");
    ConnectionConfig {
        profile,
        client: Client {
            client_id: "device-client".into(),
            client_secret: secret.then(|| Secret::new(CLIENT_SECRET)),
            auth_method: None,
        },
        redirect_uri: None,
        scopes: if secret { vec!["read".into()] } else { vec![] },
        authorize_params: vec![],
        token_requests: Default::default(),
        variables: vec![],
        offline_access: false,
        resources: vec![],
        dpop: false,
    }
}

fn started(config: &ConnectionConfig, interval_seconds: u64) -> DeviceAuthorization {
    DeviceAuthorization {
        device_code: Secret::new(DEVICE_CODE),
        user_code: "WDJB-MJHT".into(),
        verification_uri: "https://auth.example.com/device".into(),
        verification_uri_complete: None,
        expires_at: NOW + 600,
        interval_seconds,
        requested_scopes: config.effective_scopes().to_vec(),
    }
}

fuzz_target!(|data: &[u8]| {
    let input = http_response(data);
    let response = &input.response;
    let fields = token::parse_fields(response);
    let found = body_credentials(fields.as_ref(), &[]);
    for secret in [false, true] {
        let config = config(secret);
        // What the core can scrub: the request's secrets and the body's credentials.
        let mut secrets = config.secrets(&[]);
        secrets.extend(found.iter().map(String::as_str));

        let begun = device::finish_begin(&config, response, NOW);
        match &begun {
            Ok(device) => check_device(&config, response, device),
            Err(error) => check_error(error, &secrets),
        }
        secrets.push(DEVICE_CODE);

        // Intervals: the default and the ceiling (slow_down is clamped), and the floor.
        let mut devices = if secret {
            vec![started(&config, 1)]
        } else {
            vec![started(&config, 5), started(&config, MAX_INTERVAL_SECS)]
        };
        devices.extend(begun.ok());
        for device in &devices {
            check_poll(&config, device, response, &secrets);
        }
    }
});

fn check_device(config: &ConnectionConfig, response: &HttpResponse, device: &DeviceAuthorization) {
    assert!((200..300).contains(&response.status));
    assert!((1..=MAX_INTERVAL_SECS).contains(&device.interval_seconds));
    assert!(device.expires_at >= NOW);
    assert_eq!(device.requested_scopes, config.effective_scopes());
    let fields = token::parse_fields(response).expect("device answer without fields");
    let text = |name: &str| fields.get(name).and_then(Value::as_str);
    assert_eq!(Some(device.device_code.expose()), text("device_code"));
    assert_eq!(Some(device.user_code.as_str()), text("user_code"));
    let present = |name: &str| text(name).filter(|value| !value.is_empty());
    assert_eq!(
        present("verification_uri").or(present("verification_url")),
        Some(device.verification_uri.as_str())
    );
    assert_eq!(
        present("verification_uri_complete"),
        device.verification_uri_complete.as_deref()
    );
    for value in [&device.user_code, &device.verification_uri] {
        assert!(!value.is_empty());
    }
    let debug = format!("{device:?}");
    let code = device.device_code.expose();
    let shown = format!(
        "{:?} {:?} {:?} {:?}",
        device.user_code,
        device.verification_uri,
        device.verification_uri_complete,
        device.requested_scopes
    );
    if checkable(code) && !shown.contains(code) && !"DeviceAuthorization device_code Secret user_code verification_uri verification_uri_complete expires_at interval_seconds requested_scopes".contains(code) {
        assert!(!debug.contains(code), "device code in {debug}");
    }
}

fn check_poll(
    config: &ConnectionConfig,
    device: &DeviceAuthorization,
    response: &HttpResponse,
    secrets: &[&str],
) {
    let poll = device::finish_poll(config, device, response, NOW);
    // The poll is the token response, with two refusals turned into waits.
    let tokens = token::parse_token_response(
        response,
        &device.requested_scopes,
        &config.profile.token_response,
        NOW,
        &config.secrets(&[device.device_code.expose()]),
    );
    match (&poll, &tokens) {
        (Ok(DevicePoll::Complete(got)), Ok(want)) => {
            assert_eq!(got.access_token.expose(), want.access_token.expose());
            assert_eq!(got.expires_at, want.expires_at);
            assert_eq!(got.scopes, want.scopes);
        }
        (Ok(DevicePoll::Pending(interval)), Err(Error::ServerSaidNo(error))) => {
            assert_eq!(error.code, ErrorCode::AuthorizationPending);
            assert_eq!(*interval, device.interval_seconds);
        }
        (Ok(DevicePoll::SlowDown(interval)), Err(Error::ServerSaidNo(error))) => {
            assert_eq!(error.code, ErrorCode::SlowDown);
            assert_eq!(
                *interval,
                (device.interval_seconds + SLOW_DOWN_STEP_SECS).min(MAX_INTERVAL_SECS)
            );
            assert!(*interval > 0 && *interval <= MAX_INTERVAL_SECS);
        }
        (Err(got), Err(want)) => {
            assert_eq!(got, want);
            assert!(!matches!(
                got,
                Error::ServerSaidNo(e) if matches!(e.code, ErrorCode::AuthorizationPending | ErrorCode::SlowDown)
            ));
            check_error(got, secrets);
        }
        (got, want) => panic!("finish_poll {got:?} but the token response is {want:?}"),
    }
}

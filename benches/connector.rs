//! The connector's costs, each measured in the same run as its comparison.
//!
//! - `cargo bench --bench connector` measures everything and writes `BENCHMARKS.md`.
//! - `cargo test --benches` (CI) runs every measurement once, without timing, so that the
//!   benchmarks keep compiling and working.
//!
//! Measured: component size (and what each crate costs) and the component's imports; engine
//! start (compile vs loading precompiled, pre-instantiation, fresh instances with and without
//! pooling, a fresh instance plus its first call); per operation the core natively vs the
//! component in wasmtime vs the `oauth2` crate natively; a code exchange and a refresh on
//! 127.0.0.1 through host and component vs the same request sent directly; a refresh storm of
//! concurrent calls; the resident memory of a CLI `call`; the `connector-host` binary as
//! separate processes (`token` vs `list`, and 32 concurrent `call`s on an expired connection);
//! `connector-host serve` answering `/token` to 64 concurrent clients, next to a static file.
//!
//! The report opens with the targets of the speed issue, each measured figure (or ratio) next
//! to its target; quick mode prints that table too, with the rows it does not time as `n/a`.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use connector_host::connections::Connections;
use connector_host::loopback::{LoopbackServer, Reply};
use connector_host::runtime::BUILT_COMPONENT;
use connector_host::store::{Grant, SecretSource, Store};
use connector_host::types::{
    Client, ConnectionConfig, HttpMethod, HttpRequest, HttpResponse, KeyValue, TokenSet,
    TransportError,
};
use connector_host::{Allocation, AllowList, HttpTransport, Limits, Runtime, Transport};
use std::hint::black_box;

use criterion::Criterion;
use oauth_connector::authorize::{self, BeginRandom};
use oauth_connector::client_auth::AuthContext;
use oauth_connector::{lifecycle, profile, token};
use wasmtime::component::Component;

/// The throwaway PostgreSQL cluster of the fleet tests (`initdb` + `pg_ctl` on a free port),
/// for the service benchmark on a PostgreSQL store. Only `start` and `url` are used here.
#[allow(dead_code, unused_imports)]
#[path = "../tests/e2e/postgres.rs"]
mod postgres;

/// The build's merging of identical functions, for the named build's attribution.
#[path = "../host-example/build/merge_functions.rs"]
mod merge_functions;
/// The build's rustc flags for the component, so that the named build is the shipped one.
#[path = "../host-example/build/rustflags.rs"]
mod rustflags;

const TOKEN_JSON: &str = r#"{"access_token":"ya29.a0AfH6SMBx3f-example-access-token-value","token_type":"Bearer","expires_in":3599,"refresh_token":"1//0gexample-refresh-token-value","scope":"openid https://www.googleapis.com/auth/userinfo.email","id_token":"eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiIxMjMifQ.c2lnbmF0dXJl"}"#;

fn main() {
    if std::env::var_os("BENCH_ROLE_RSS").is_some() {
        return rss_child();
    }
    // `cargo bench` passes --bench; under `cargo test` each measurement runs once.
    let full = std::env::args().any(|arg| arg == "--bench");
    let mut criterion = Criterion::default()
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2))
        .sample_size(30)
        .configure_from_args();
    let mut report = Report::default();
    let storm_server = StormServer::start();
    let cli = CliFixture::new();

    sizes(&mut report, full);
    imports(&mut report, &cli.cache);
    engine_start(&mut criterion, full);
    operations(&mut criterion, &mut report, full);
    round_trips(&mut criterion, &mut report, full);
    storm(
        &mut report,
        &storm_server,
        if full { &[1, 16, 256] } else { &[1, 4] },
    );
    memory(&mut report);
    cli_token_vs_list(&mut report, &cli, if full { 31 } else { 1 });
    cli_storm(&mut report, &cli, &storm_server, if full { 3 } else { 1 });
    service_token(&mut report, &cli, if full { 200 } else { 1 });
    service_token_postgres(&mut report, &cli, if full { 200 } else { 1 });
    node_host(&mut report, full);

    criterion.final_summary();
    if full {
        let estimates = read_estimates();
        let markdown = report.markdown(&estimates);
        std::fs::write(
            Path::new(env!("CARGO_MANIFEST_DIR")).join("BENCHMARKS.md"),
            markdown,
        )
        .expect("write BENCHMARKS.md");
        eprintln!("wrote BENCHMARKS.md");
    } else {
        // Criterion does not time anything in quick mode: its rows read `n/a`.
        eprintln!("\n{}", report.targets(&BTreeMap::new()));
        eprintln!(
            "benchmarks ran once each (quick mode): {} notes",
            report.lines.len()
        );
    }
}

/// Non-timing results and notes gathered for the report.
struct Report {
    lines: Vec<(String, String)>,
    crate_sizes: Vec<(String, usize)>,
    /// The component's imports, by name (`wasi:clocks/wall-clock@0.2.0`).
    imports: Vec<String>,
    /// Median wall times of `connector-host token` and `list`, and the number of runs.
    cli_latency: Option<CliLatency>,
    /// Each run of 32 concurrent CLI `call`s on one expired connection.
    cli_storm: Vec<CliStormRun>,
    /// The service's `/token` and a static file under 64 concurrent clients.
    service: Option<ServiceLoad>,
    /// The service's `/token` on PostgreSQL, with 1 and 3 replicas.
    postgres: Option<PostgresLoad>,
    /// The same component in Node.js (`node/bench/bench.mjs`), or why it was not measured.
    node: Result<NodeFigures, String>,
    /// Ratios measured in alternating rounds ([`paired_ratio`]), by the criterion ids of
    /// their two sides.
    paired: BTreeMap<(String, String), f64>,
}

impl Default for Report {
    fn default() -> Self {
        Self {
            lines: vec![],
            crate_sizes: vec![],
            imports: vec![],
            cli_latency: None,
            cli_storm: vec![],
            service: None,
            postgres: None,
            node: Err("not run".into()),
            paired: BTreeMap::new(),
        }
    }
}

impl Report {
    fn note(&mut self, key: &str, value: String) {
        eprintln!("{key}: {value}");
        self.lines.push((key.to_owned(), value));
    }

    /// Measures `a` against `b` in alternating rounds and keeps the ratio for the rows that
    /// compare the criterion benchmarks `a_id` and `b_id`.
    fn pair<A, B>(
        &mut self,
        (a_id, b_id): (&str, &str),
        full: bool,
        a: impl FnMut() -> A,
        b: impl FnMut() -> B,
    ) {
        let ratio = paired_ratio(full, a, b);
        self.note(&format!("paired {a_id} / {b_id}"), format!("{ratio:.2}×"));
        self.paired
            .insert((a_id.to_owned(), b_id.to_owned()), ratio);
    }

    /// The ratio of two benchmarks: measured in alternating rounds where it was, else from
    /// criterion's medians.
    fn ratio(&self, est: &BTreeMap<String, (f64, f64)>, a: &str, b: &str) -> Option<f64> {
        if let Some(ratio) = self.paired.get(&(a.to_owned(), b.to_owned())) {
            return Some(*ratio);
        }
        let median = |key: &str| est.get(key).map(|(median, _)| *median);
        Some(median(a)? / median(b)?).filter(|ratio| ratio.is_finite())
    }

    /// [`Report::ratio`] as a table cell ([`times_cell`]).
    fn ratio_cell(&self, est: &BTreeMap<String, (f64, f64)>, a: &str, b: &str) -> String {
        times_cell(self.ratio(est, a, b))
    }

    fn get(&self, key: &str) -> &str {
        self.lines
            .iter()
            .find(|(k, _)| k == key)
            .map_or("n/a", |(_, v)| v.as_str())
    }
}

// ---- 1. size --------------------------------------------------------------------------

fn sizes(report: &mut Report, full: bool) {
    let size = std::fs::metadata(BUILT_COMPONENT)
        .expect("the built component")
        .len();
    report.note("component-bytes", size.to_string());
    if !full {
        return;
    }
    // A build that keeps the name section, to attribute code to crates.
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let target_dir = root.join("target").join("component-build");
    let mut build = Command::new(env!("CARGO"));
    if let Some(flags) = rustflags::component_rustflags() {
        build.env(rustflags::VARIABLE, flags);
    }
    let status = build
        .args([
            "build",
            "--locked",
            "--package",
            "oauth-connector",
            "--target",
            "wasm32-wasip2",
        ])
        .args(["--profile", "component-names", "--target-dir"])
        .arg(&target_dir)
        .current_dir(root)
        .env_remove("CARGO_ENCODED_RUSTFLAGS")
        .env_remove("RUSTFLAGS")
        .status()
        .expect("run cargo");
    assert!(status.success());
    let named = target_dir.join("wasm32-wasip2/component-names/oauth_connector.wasm");
    let bytes = std::fs::read(&named).expect("the named build");
    // Merged like the shipped component, so that the attribution adds up to it.
    let (merged, stats) = merge_functions::merge_functions(&bytes)
        .expect("merge the named build's identical and similar functions");
    report.note(
        "merged-functions",
        format!(
            "{} → {} functions, then {} thunks into {} shared bodies ({} → {} bytes with names)",
            stats.functions_before,
            stats.functions_after,
            stats.thunks,
            stats.shared,
            bytes.len(),
            merged.len()
        ),
    );
    report.crate_sizes = wasm_size::code_by_crate(&merged);
}

/// Just enough of the binary format to attribute the core module's code to crates.
mod wasm_size {
    use std::collections::BTreeMap;

    fn leb(bytes: &[u8], at: &mut usize) -> usize {
        let (mut value, mut shift) = (0usize, 0);
        loop {
            let byte = bytes[*at];
            *at += 1;
            value |= usize::from(byte & 0x7f) << shift;
            shift += 7;
            if byte < 0x80 {
                return value;
            }
        }
    }

    /// Sections of a module or component: (id, body).
    fn sections(bytes: &[u8]) -> Vec<(u8, &[u8])> {
        let mut at = 8;
        let mut out = vec![];
        while at < bytes.len() {
            let id = bytes[at];
            at += 1;
            let size = leb(bytes, &mut at);
            out.push((id, &bytes[at..at + size]));
            at += size;
        }
        out
    }

    /// Code bytes per crate (from mangled function names), largest first; the data section
    /// and unnamed code are their own rows.
    pub fn code_by_crate(component: &[u8]) -> Vec<(String, usize)> {
        // The largest nested core module (component section id 1) is the guest.
        let module = sections(component)
            .into_iter()
            .filter(|(id, _)| *id == 1)
            .map(|(_, body)| body)
            .max_by_key(|body| body.len())
            .expect("a core module");
        let mut imported_functions = 0;
        let mut bodies: Vec<usize> = vec![];
        let mut names: BTreeMap<usize, String> = BTreeMap::new();
        let mut data = 0;
        for (id, body) in sections(module) {
            match id {
                2 => {
                    let mut at = 0;
                    let count = leb(body, &mut at);
                    for _ in 0..count {
                        for _ in 0..2 {
                            let len = leb(body, &mut at);
                            at += len;
                        }
                        let kind = body[at];
                        at += 1;
                        match kind {
                            0 => {
                                leb(body, &mut at);
                                imported_functions += 1;
                            }
                            1 => {
                                at += 1;
                                let flags = leb(body, &mut at);
                                leb(body, &mut at);
                                if flags & 1 == 1 {
                                    leb(body, &mut at);
                                }
                            }
                            2 => {
                                let flags = leb(body, &mut at);
                                leb(body, &mut at);
                                if flags & 1 == 1 {
                                    leb(body, &mut at);
                                }
                            }
                            _ => {
                                at += 2;
                            }
                        }
                    }
                }
                10 => {
                    let mut at = 0;
                    let count = leb(body, &mut at);
                    for _ in 0..count {
                        let size = leb(body, &mut at);
                        bodies.push(size);
                        at += size;
                    }
                }
                11 => data = body.len(),
                0 => {
                    let mut at = 0;
                    let len = leb(body, &mut at);
                    if &body[at..at + len] != b"name" {
                        continue;
                    }
                    at += len;
                    while at < body.len() {
                        let sub = body[at];
                        at += 1;
                        let size = leb(body, &mut at);
                        let end = at + size;
                        if sub == 1 {
                            let count = leb(body, &mut at);
                            for _ in 0..count {
                                let index = leb(body, &mut at);
                                let len = leb(body, &mut at);
                                let name =
                                    String::from_utf8_lossy(&body[at..at + len]).into_owned();
                                at += len;
                                names.insert(index, name);
                            }
                        }
                        at = end;
                    }
                }
                _ => {}
            }
        }
        let mut by_crate: BTreeMap<String, usize> = BTreeMap::new();
        for (i, size) in bodies.iter().enumerate() {
            let name = names
                .get(&(i + imported_functions))
                .map(String::as_str)
                .unwrap_or("");
            *by_crate.entry(crate_of(name)).or_default() += size;
        }
        by_crate.insert("(data section)".into(), data);
        let mut rows: Vec<(String, usize)> = by_crate.into_iter().collect();
        rows.sort_by_key(|row| std::cmp::Reverse(row.1));
        rows
    }

    /// The crate a (legacy- or v0-mangled, or plain) symbol belongs to.
    fn crate_of(symbol: &str) -> String {
        let path = if let Some(rest) = symbol.strip_prefix("_ZN") {
            // Legacy: _ZN<len><ident>...; the first identifier is the crate.
            let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
            let len: usize = digits.parse().unwrap_or(0);
            rest[digits.len()..].chars().take(len).collect::<String>()
        } else if let Some(rest) = symbol.strip_prefix("_R") {
            // v0: the innermost path starts at the crate root `C[s<disambiguator>_]<len><ident>`.
            v0_crate(rest).unwrap_or_else(|| "(unnamed)".into())
        } else if symbol.is_empty() {
            "(unnamed)".into()
        } else if symbol.contains('#') || symbol.contains('@') {
            "(export glue)".into()
        } else {
            symbol
                .split("::")
                .next()
                .unwrap_or(symbol)
                .trim_start_matches('<')
                .to_owned()
        };
        let trait_impl = path.starts_with('_') && path.contains('$');
        if trait_impl || path.starts_with('<') {
            "(trait impls)".into()
        } else if ["core", "alloc", "std"].contains(&path.as_str()) || path.starts_with("__") {
            "std/core/alloc".into()
        } else {
            path
        }
    }

    fn v0_crate(mangled: &str) -> Option<String> {
        let at = mangled.find('C')?;
        let mut rest = &mangled[at + 1..];
        if let Some(after) = rest.strip_prefix('s') {
            rest = &after[after.find('_')? + 1..];
        }
        let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
        let len: usize = digits.parse().ok()?;
        let ident = rest.get(digits.len()..digits.len() + len)?;
        Some(ident.trim_start_matches('_').to_owned())
    }
}

// ---- 2. engine start ------------------------------------------------------------------

fn engine_start(c: &mut Criterion, full: bool) {
    let bytes = std::fs::read(BUILT_COMPONENT).unwrap();
    let engine = Runtime::engine().unwrap();
    let mut group = c.benchmark_group("engine");
    group.sample_size(10);
    if full {
        group.measurement_time(Duration::from_secs(4));
    }
    group.bench_function("compile", |b| {
        b.iter(|| Component::new(&engine, black_box(&bytes)).unwrap())
    });
    let serialized = engine.precompile_component(&bytes).unwrap();
    group.bench_function("load-precompiled", |b| {
        // SAFETY: `serialized` was produced just above by this engine's precompile.
        b.iter(|| unsafe { Component::deserialize(&engine, black_box(&serialized)) }.unwrap())
    });
    let component = Component::new(&engine, &bytes).unwrap();
    group.bench_function("pre-instantiate", |b| {
        b.iter(|| Runtime::from_component(engine.clone(), &component).unwrap())
    });
    group.finish();

    let pooled = Runtime::from_component(engine.clone(), &component).unwrap();
    let on_demand_engine = Runtime::engine_with(Allocation::OnDemand).unwrap();
    let on_demand_component = Component::new(&on_demand_engine, &bytes).unwrap();
    let on_demand = Runtime::from_component(on_demand_engine, &on_demand_component).unwrap();
    let config = host_config(&pooled, "https://auth.example.com");
    let mut group = c.benchmark_group("instance");
    group.bench_function("fresh-pooling", |b| {
        b.iter(|| pooled.instantiate(Canned::unused()).unwrap())
    });
    group.bench_function("fresh-on-demand", |b| {
        b.iter(|| on_demand.instantiate(Canned::unused()).unwrap())
    });
    group.bench_function("fresh-pooling+authorize-url", |b| {
        b.iter(|| {
            pooled
                .instantiate(Canned::unused())
                .unwrap()
                .begin(&config)
                .unwrap()
        })
    });
    group.finish();
}

// ---- 3. operations, three ways ----------------------------------------------------------

/// A transport that answers every request with the same canned response (no network), so
/// that the component's own cost is measured.
struct Canned(Option<HttpResponse>);

impl Canned {
    fn unused() -> Self {
        Self(None)
    }
    fn json(body: &str) -> Self {
        Self(Some(HttpResponse {
            status: 200,
            headers: vec![KeyValue {
                name: "content-type".into(),
                value: "application/json".into(),
            }],
            body: body.as_bytes().to_vec(),
        }))
    }
}

impl Transport for Canned {
    fn send(&self, _: HttpRequest) -> Result<HttpResponse, TransportError> {
        self.0
            .clone()
            .ok_or(TransportError::Other("no canned response".into()))
    }
}

fn profile_json(base: &str) -> String {
    format!(
        r#"{{"id":"bench","authorize-url":"{base}/authorize","token-url":"{base}/token",
            "default-scopes":["openid","email"],"client-auth":"client-secret-basic"}}"#
    )
}

fn host_config(runtime: &Runtime, base: &str) -> ConnectionConfig {
    let profile = runtime
        .instantiate(Canned::unused())
        .unwrap()
        .parse_profile(&profile_json(base))
        .unwrap();
    ConnectionConfig {
        profile,
        client: Client {
            client_id: "bench-client".into(),
            client_secret: Some("bench-secret".into()),
            auth_method: None,
        },
        redirect_uri: Some("http://127.0.0.1:8765/callback".into()),
        scopes: vec![],
        authorize_params: vec![],
        token_requests: connector_host::no_token_extras(),
        variables: vec![],
        offline_access: false,
        resources: vec![],
        dpop: false,
    }
}

fn core_config(base: &str) -> profile::ConnectionConfig {
    profile::ConnectionConfig {
        profile: profile::ProviderProfile::from_json(&profile_json(base)).unwrap(),
        client: profile::Client {
            client_id: "bench-client".into(),
            client_secret: Some(oauth_connector::secret::Secret::new("bench-secret")),
            auth_method: None,
        },
        redirect_uri: Some("http://127.0.0.1:8765/callback".into()),
        scopes: vec![],
        authorize_params: vec![],
        token_requests: Default::default(),
        variables: vec![],
        offline_access: false,
        resources: vec![],
        dpop: false,
    }
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

fn expired_tokens(refresh_token: &str) -> TokenSet {
    TokenSet {
        access_token: "expired".into(),
        token_type: "bearer".into(),
        expires_at: Some(now() - 10),
        refresh_token: Some(refresh_token.into()),
        id_token: None,
        scopes: vec!["openid".into()],
        obtained_at: now() - 3610,
        extras: vec![],
        dpop_key_thumbprint: None,
    }
}

fn operations(c: &mut Criterion, report: &mut Report, full: bool) {
    let runtime = Runtime::load_built().unwrap();
    let base = "https://auth.example.com";
    let host = host_config(&runtime, base);
    let core = core_config(base).prepare().unwrap();
    let oauth2_client =
        oauth2::basic::BasicClient::new(oauth2::ClientId::new("bench-client".into()))
            .set_client_secret(oauth2::ClientSecret::new("bench-secret".into()))
            .set_auth_uri(oauth2::AuthUrl::new(format!("{base}/authorize")).unwrap())
            .set_token_uri(oauth2::TokenUrl::new(format!("{base}/token")).unwrap())
            .set_redirect_uri(
                oauth2::RedirectUrl::new("http://127.0.0.1:8765/callback".into()).unwrap(),
            );

    let mut group = c.benchmark_group("authorize-url");
    // Fresh randomness from the same generator the `oauth2` crate uses (rand's thread-local
    // CSPRNG), so that both sides pay the same for it (the `no_std` core takes its random
    // bytes as an argument and names no source).
    let mut core_url = || {
        let mut bytes = [0; 64];
        rand::RngCore::fill_bytes(&mut rand::thread_rng(), &mut bytes);
        let (state, verifier) = bytes.split_at(32);
        let random = BeginRandom {
            state: state.try_into().unwrap(),
            verifier: verifier.try_into().unwrap(),
        };
        authorize::begin(black_box(&core), now(), &random, None).unwrap()
    };
    let mut session = runtime.instantiate(Canned::unused()).unwrap();
    let mut component_url = || session.begin(black_box(&host)).unwrap();
    let mut oauth2_url = || {
        let (challenge, verifier) = oauth2::PkceCodeChallenge::new_random_sha256();
        let (url, state) = oauth2_client
            .authorize_url(oauth2::CsrfToken::new_random)
            .add_scope(oauth2::Scope::new("openid".into()))
            .add_scope(oauth2::Scope::new("email".into()))
            .set_pkce_challenge(challenge)
            .url();
        (url, state, verifier)
    };
    group.bench_function("core-native", |b| b.iter(&mut core_url));
    group.bench_function("component", |b| b.iter(&mut component_url));
    group.bench_function("oauth2-crate", |b| b.iter(&mut oauth2_url));
    group.finish();
    report.pair(
        ("authorize-url/component", "authorize-url/core-native"),
        full,
        &mut component_url,
        &mut core_url,
    );
    report.pair(
        ("authorize-url/core-native", "authorize-url/oauth2-crate"),
        full,
        &mut core_url,
        &mut oauth2_url,
    );

    let response = oauth_connector::http::HttpResponse {
        status: 200,
        headers: vec![profile::KeyValue::new("content-type", "application/json")],
        body: TOKEN_JSON.as_bytes().to_vec(),
    };
    let mut group = c.benchmark_group("parse-token-response");
    let requested = vec!["openid".to_owned()];
    let core_parse = || {
        token::parse_token_response(
            black_box(&response),
            &requested,
            &Default::default(),
            0,
            &[],
        )
        .unwrap()
    };
    let oauth2_parse = || {
        serde_json::from_slice::<oauth2::basic::BasicTokenResponse>(black_box(
            TOKEN_JSON.as_bytes(),
        ))
        .unwrap()
    };
    group.bench_function("core-native", |b| b.iter(core_parse));
    group.bench_function("oauth2-crate", |b| b.iter(oauth2_parse));
    group.finish();
    report.pair(
        (
            "parse-token-response/core-native",
            "parse-token-response/oauth2-crate",
        ),
        full,
        core_parse,
        oauth2_parse,
    );

    // Refresh = build the request + parse and merge the answer; the component's transport
    // answers from memory, so only computation is compared.
    let mut group = c.benchmark_group("refresh-request-and-parse");
    let core_old = oauth_connector::token::TokenSet {
        access_token: oauth_connector::secret::Secret::new("expired"),
        token_type: "bearer".into(),
        expires_at: Some(0),
        refresh_token: Some(oauth_connector::secret::Secret::new("rt")),
        id_token: None,
        scopes: vec!["openid".into()],
        obtained_at: 0,
        extras: vec![],
        dpop_key_thumbprint: None,
    };
    let core_refresh = || {
        let request = lifecycle::refresh_request(
            black_box(&core),
            &core_old,
            &AuthContext::without_assertions(),
        )
        .unwrap();
        black_box(request);
        lifecycle::finish_refresh(&core, &core_old, &response, now()).unwrap()
    };
    let mut canned = runtime.instantiate(Canned::json(TOKEN_JSON)).unwrap();
    let old = expired_tokens("rt");
    let mut component_refresh = || canned.refresh(black_box(&host), &old).unwrap();
    group.bench_function("core-native", |b| b.iter(core_refresh));
    group.bench_function("component", |b| b.iter(&mut component_refresh));
    group.finish();
    report.pair(
        (
            "refresh-request-and-parse/component",
            "refresh-request-and-parse/core-native",
        ),
        full,
        &mut component_refresh,
        core_refresh,
    );

    let mut group = c.benchmark_group("needs-refresh");
    let core_decision = || lifecycle::needs_refresh(black_box(&core_old), None, now());
    let mut component_decision = || session.needs_refresh(black_box(&old), None).unwrap();
    group.bench_function("core-native", |b| b.iter(core_decision));
    group.bench_function("component", |b| b.iter(&mut component_decision));
    group.finish();
    report.pair(
        ("needs-refresh/component", "needs-refresh/core-native"),
        full,
        &mut component_decision,
        core_decision,
    );
}

// ---- 4. round trips on 127.0.0.1 --------------------------------------------------------

fn round_trips(c: &mut Criterion, report: &mut Report, full: bool) {
    let server = LoopbackServer::start(|_| Reply::json(200, TOKEN_JSON));
    let runtime = Runtime::load_built().unwrap();
    let host = host_config(&runtime, &server.url(""));
    let allow = || AllowList::from_urls([server.url("/").as_str()]);
    let transport = || HttpTransport::new(allow(), Limits::default());
    let pending = runtime
        .instantiate(transport())
        .unwrap()
        .begin(&host)
        .unwrap()
        .pending;
    let callback = format!(
        "http://127.0.0.1:8765/callback?code=bench-code&state={}",
        pending.state
    );
    // The exact request the component sends, for the direct comparison.
    let exchange_request = direct_request(&server, "grant_type=authorization_code&code=bench-code");
    let refresh_request = direct_request(&server, "grant_type=refresh_token&refresh_token=rt");
    let direct = transport();

    let mut group = c.benchmark_group("code-exchange-loopback");
    let direct_exchange = || direct.send(exchange_request.clone()).unwrap();
    let component_exchange = || {
        runtime
            .instantiate(transport())
            .unwrap()
            .complete(&host, &pending, &callback)
            .unwrap()
    };
    group.bench_function("direct-http", |b| b.iter(direct_exchange));
    group.bench_function("host+component", |b| b.iter(component_exchange));
    group.finish();
    report.pair(
        (
            "code-exchange-loopback/host+component",
            "code-exchange-loopback/direct-http",
        ),
        full,
        component_exchange,
        direct_exchange,
    );
    let old = expired_tokens("rt");
    let mut group = c.benchmark_group("refresh-loopback");
    let direct_refresh = || direct.send(refresh_request.clone()).unwrap();
    let component_refresh = || {
        runtime
            .instantiate(transport())
            .unwrap()
            .refresh(&host, &old)
            .unwrap()
    };
    group.bench_function("direct-http", |b| b.iter(direct_refresh));
    group.bench_function("host+component", |b| b.iter(component_refresh));
    group.finish();
    report.pair(
        (
            "refresh-loopback/host+component",
            "refresh-loopback/direct-http",
        ),
        full,
        component_refresh,
        direct_refresh,
    );
}

fn direct_request(server: &LoopbackServer, body: &str) -> HttpRequest {
    HttpRequest {
        method: HttpMethod::Post,
        url: server.url("/token"),
        headers: vec![
            KeyValue {
                name: "Content-Type".into(),
                value: "application/x-www-form-urlencoded".into(),
            },
            KeyValue {
                name: "Accept".into(),
                value: "application/json".into(),
            },
            KeyValue {
                name: "Authorization".into(),
                value: "Basic YmVuY2gtY2xpZW50OmJlbmNoLXNlY3JldA==".into(),
            },
        ],
        body: body.as_bytes().to_vec(),
    }
}

/// A configuration whose API is `server`.
fn api_config(runtime: &Runtime, server: &LoopbackServer) -> ConnectionConfig {
    let mut config = host_config(runtime, &server.url(""));
    config.profile.api_base_url = Some(server.url(""));
    config
}

/// A store at `path` holding the connection `conn` with `tokens`.
fn seed_store(path: &Path, config: &ConnectionConfig, tokens: &TokenSet) {
    Store::open(path)
        .unwrap()
        .save(
            "conn",
            config,
            &SecretSource::Stored("bench-secret".into()),
            Grant::AuthorizationCode,
            tokens,
        )
        .unwrap();
}

// ---- 5. refresh storm -------------------------------------------------------------------

/// The token endpoint and API of the refresh storms (in-process and CLI): `/token` counts
/// the refresh requests it answers and rotates the tokens; every other path is the API.
struct StormServer {
    server: LoopbackServer,
    refreshes: Arc<AtomicUsize>,
}

impl StormServer {
    fn start() -> Self {
        let refreshes = Arc::new(AtomicUsize::new(0));
        let counter = Arc::clone(&refreshes);
        let server = LoopbackServer::start(move |request| {
            if request.target == "/token" {
                let n = counter.fetch_add(1, Ordering::SeqCst) + 1;
                Reply::json(
                    200,
                    &format!(
                        r#"{{"access_token":"at-{n}","expires_in":3600,"refresh_token":"rt-{n}"}}"#
                    ),
                )
            } else {
                Reply::json(200, r#"{"ok":true}"#)
            }
        });
        Self { server, refreshes }
    }
}

fn storm(report: &mut Report, storm_server: &StormServer, sizes: &[usize]) {
    let StormServer { server, refreshes } = storm_server;
    let runtime = Runtime::load_built().unwrap();
    let config = api_config(&runtime, server);
    let dir = std::env::temp_dir().join(format!("connector-bench-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let env = |_: &str| None;
    for &n in sizes {
        refreshes.store(0, Ordering::SeqCst);
        let path = dir.join(format!("storm-{n}.db"));
        seed_store(&path, &config, &expired_tokens("rt-0"));
        let barrier = Barrier::new(n);
        let request = HttpRequest {
            method: HttpMethod::Get,
            url: server.url("/api"),
            headers: vec![],
            body: vec![],
        };
        let mut latencies: Vec<Duration> = std::thread::scope(|scope| {
            let handles: Vec<_> = (0..n)
                .map(|_| {
                    scope.spawn(|| {
                        let connections = Connections::open(&runtime, &path, &env).unwrap();
                        barrier.wait();
                        let started = Instant::now();
                        let outcome = connections.call("conn", &request).unwrap();
                        assert_eq!(outcome.response.status, 200);
                        started.elapsed()
                    })
                })
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).collect()
        });
        latencies.sort();
        let percentile = |p: f64| latencies[((latencies.len() as f64 - 1.0) * p).round() as usize];
        let made = refreshes.load(Ordering::SeqCst);
        assert_eq!(
            made, 1,
            "{n} concurrent calls must make exactly one refresh request"
        );
        report.note(
            &format!("storm-{n}"),
            format!(
                "{made} refresh request; p50 {:.2} ms, p99 {:.2} ms",
                percentile(0.5).as_secs_f64() * 1e3,
                percentile(0.99).as_secs_f64() * 1e3
            ),
        );
    }
    let _ = std::fs::remove_dir_all(&dir);
}

// ---- 6. memory ----------------------------------------------------------------------------

/// Runs one CLI `call` in a fresh process (this benchmark, re-run as a child) and reads its
/// peak resident size.
fn memory(report: &mut Report) {
    let server = LoopbackServer::start(|_| Reply::json(200, r#"{"ok":true}"#));
    let runtime = Runtime::load_built().unwrap();
    let config = api_config(&runtime, &server);
    let dir = std::env::temp_dir().join(format!("connector-bench-rss-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let store = dir.join("store.db");
    let mut fresh = expired_tokens("rt");
    fresh.expires_at = Some(now() + 3600);
    fresh.obtained_at = now();
    seed_store(&store, &config, &fresh);
    let output = Command::new(std::env::current_exe().unwrap())
        .env("BENCH_ROLE_RSS", "1")
        .env("BENCH_STORE", &store)
        .env("BENCH_URL", server.url("/api"))
        .output()
        .expect("run the memory child");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let value = stdout
        .lines()
        .find_map(|l| l.strip_prefix("rss "))
        .unwrap_or("n/a")
        .to_owned();
    report.note("cli-call-rss", value);
    let _ = std::fs::remove_dir_all(&dir);
}

fn rss_child() {
    let store = std::env::var("BENCH_STORE").unwrap();
    let url = std::env::var("BENCH_URL").unwrap();
    let args = [
        "connector-host",
        "--store",
        &store,
        "call",
        "conn",
        "GET",
        &url,
    ];
    let env = |_: &str| None;
    let (mut out, mut err) = (Vec::new(), Vec::new());
    let code = connector_host::cli::run(
        args.iter().map(std::ffi::OsString::from),
        &mut connector_host::cli::Io {
            env: &env,
            out: &mut out,
            err: &mut err,
            err_is_terminal: false,
            out_is_terminal: false,
            log: std::sync::Arc::new(std::sync::Mutex::new(std::io::sink())),
        },
    );
    assert_eq!(code, 0, "{}", String::from_utf8_lossy(&err));
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .map(|v| v.trim().to_owned())
            .unwrap_or_else(|| "n/a".into())
    };
    println!("rss peak {} (current {})", field("VmHWM:"), field("VmRSS:"));
}

// ---- 7. the CLI as processes ------------------------------------------------------------

/// The `connector-host` binary and a private directory for its stores and compile cache.
struct CliFixture {
    binary: PathBuf,
    dir: PathBuf,
    /// The compile cache (`CONNECTOR_CACHE_DIR`) every CLI process of the benchmark shares.
    cache: PathBuf,
}

impl CliFixture {
    fn new() -> Self {
        let binary = cli_binary();
        let dir = std::env::temp_dir().join(format!("connector-bench-cli-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("create the CLI benchmark directory");
        let cache = dir.join("cache");
        Self { binary, dir, cache }
    }

    /// `connector-host --store STORE ARGS…` with the benchmark's compile cache.
    fn command(&self, store: &Path, args: &[&str]) -> Command {
        let mut command = Command::new(&self.binary);
        command
            .env(connector_host::compile_cache::CACHE_ENV, &self.cache)
            .env_remove(connector_host::store::STORE_ENV)
            .arg("--store")
            .arg(store)
            .args(args)
            .stdin(Stdio::null());
        command
    }

    /// Runs the CLI to completion; panics with its stderr when it fails.
    fn run(&self, store: &Path, args: &[&str]) -> (Duration, String) {
        let started = Instant::now();
        let output = self
            .command(store, args)
            .output()
            .expect("run connector-host");
        let elapsed = started.elapsed();
        assert!(
            output.status.success(),
            "connector-host {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&output.stderr)
        );
        (
            elapsed,
            String::from_utf8_lossy(&output.stdout).into_owned(),
        )
    }
}

impl Drop for CliFixture {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// The `connector-host` executable, as cargo builds it for this benchmark's profile.
///
/// Cargo sets `CARGO_BIN_EXE_<name>` only for binaries of the benchmark's own package, and
/// the CLI belongs to another one (artifact dependencies are unstable), so the benchmark
/// asks cargo for it: `cargo build` of the binary together with this benchmark, in the
/// profile cargo runs benchmarks (`cargo bench`, `cargo test --release`) or tests (`cargo
/// test`) with. Selecting the benchmark keeps its dev-dependencies in feature unification,
/// so every library is the one already built and cargo only links the binary; built alone,
/// `connector-host` unifies fewer features (sha2, serde_json) and would compile a second
/// wasmtime. Cargo holds no lock while a benchmark runs, and its JSON messages name the
/// executable, wherever the target directory is.
///
/// The nested cargo gets the environment the outer one had: the variables cargo sets for
/// the run (`CARGO_MANIFEST_DIR`, `CARGO_PKG_*`…) are removed, since build scripts that
/// read them (ring's) would look changed and everything above them would be rebuilt, this
/// running benchmark included.
fn cli_binary() -> PathBuf {
    let profile = if cfg!(debug_assertions) {
        "test"
    } else {
        "bench"
    };
    let mut cargo = Command::new(env!("CARGO"));
    for (name, _) in std::env::vars_os() {
        if name.to_str().is_some_and(set_by_cargo_for_the_run) {
            cargo.env_remove(name);
        }
    }
    let output = cargo
        .args(["build", "--locked", "--profile", profile])
        .args(["--package", "oauth-connector", "--bench", "connector"])
        .args(["--package", "connector-host", "--bin", "connector-host"])
        .arg("--message-format=json-render-diagnostics")
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .stderr(Stdio::inherit())
        .output()
        .expect("run cargo build for connector-host");
    assert!(output.status.success(), "building connector-host failed");
    let artifacts: Vec<serde_json::Value> = String::from_utf8_lossy(&output.stdout)
        .lines()
        .filter_map(|line| serde_json::from_str(line).ok())
        .filter(|message: &serde_json::Value| message["reason"] == "compiler-artifact")
        .collect();
    let artifact = |name: &str, kind: &str| {
        artifacts.iter().find(|message| {
            message["target"]["name"] == name && message["target"]["kind"][0] == kind
        })
    };
    assert!(
        artifact("connector", "bench").is_some_and(|bench| bench["fresh"] == true),
        "the nested cargo build rebuilt this benchmark (its settings or environment differ \
         from the outer cargo's); run the benchmark again"
    );
    artifact("connector-host", "bin")
        .and_then(|message| message["executable"].as_str().map(PathBuf::from))
        .expect("cargo names the connector-host executable")
}

/// Whether cargo sets `name` for the processes it runs (rather than the user for cargo).
fn set_by_cargo_for_the_run(name: &str) -> bool {
    [
        "CARGO_MANIFEST_",
        "CARGO_PKG_",
        "CARGO_BIN_",
        "CARGO_CRATE_NAME",
        "CARGO_PRIMARY_PACKAGE",
        "CARGO_TARGET_TMPDIR",
        "CARGO_RUSTC_CURRENT_DIR",
        "OUT_DIR",
    ]
    .iter()
    .any(|prefix| name.starts_with(prefix))
}

/// Median wall times of the two CLI commands.
struct CliLatency {
    token: Duration,
    list: Duration,
    runs: usize,
}

/// `connector-host token NAME` (a valid token: no refresh, no network) against `list` (no
/// component), each a fresh process with a warm compile cache; the median of `runs` each,
/// alternating so that both see the same machine.
fn cli_token_vs_list(report: &mut Report, cli: &CliFixture, runs: usize) {
    let store = cli.dir.join("token.db");
    let runtime = Runtime::load_built().unwrap();
    let mut valid = expired_tokens("rt");
    valid.access_token = "bench-valid-access-token".into();
    valid.expires_at = Some(now() + 3600);
    valid.obtained_at = now();
    seed_store(
        &store,
        &host_config(&runtime, "https://auth.example.com"),
        &valid,
    );
    // Warm-up. `imports` compiled the component into this cache already; a binary whose
    // engine differs from this benchmark's would compile it here, once.
    cli.run(&store, &["token", "conn"]);
    cli.run(&store, &["list"]);
    let cached = std::fs::read_dir(&cli.cache).map_or(0, |files| files.count());
    assert!(
        cached > 0,
        "the compile cache {} is empty",
        cli.cache.display()
    );
    let (mut token, mut list) = (vec![], vec![]);
    for _ in 0..runs {
        let (elapsed, out) = cli.run(&store, &["list"]);
        assert!(
            out.lines()
                .nth(1)
                .is_some_and(|row| row.starts_with("conn\t")),
            "list printed {out:?}"
        );
        list.push(elapsed);
        let (elapsed, out) = cli.run(&store, &["token", "conn"]);
        assert_eq!(out.trim_end(), "bench-valid-access-token");
        token.push(elapsed);
    }
    let latency = CliLatency {
        token: median_duration(&mut token),
        list: median_duration(&mut list),
        runs,
    };
    eprintln!(
        "cli: token {:.2} ms, list {:.2} ms (median of {runs})",
        millis(latency.token),
        millis(latency.list)
    );
    report.cli_latency = Some(latency);
}

/// One run of 32 concurrent CLI `call`s.
struct CliStormRun {
    wall: Duration,
    succeeded: usize,
    refreshes: usize,
}

/// Concurrent CLI processes in the storm.
const CLI_STORM: usize = 32;

/// 32 `connector-host call`s started at once on one expired connection (each its own
/// process, as a workflow host or a shell loop starts them), against the storm's token
/// endpoint and API: the wall time until the last exits, how many succeeded, and how many
/// refresh requests the token endpoint saw. `runs` times, each on a fresh store.
fn cli_storm(report: &mut Report, cli: &CliFixture, storm_server: &StormServer, runs: usize) {
    let StormServer { server, refreshes } = storm_server;
    let runtime = Runtime::load_built().unwrap();
    let config = api_config(&runtime, server);
    let url = server.url("/api");
    for run in 0..runs {
        let store = cli.dir.join(format!("storm-{run}.db"));
        seed_store(&store, &config, &expired_tokens("rt-0"));
        refreshes.store(0, Ordering::SeqCst);
        let logs: Vec<PathBuf> = (0..CLI_STORM)
            .map(|i| cli.dir.join(format!("storm-{run}-{i}.stderr")))
            .collect();
        let started = Instant::now();
        let children: Vec<_> = logs
            .iter()
            .map(|log| {
                // stderr to a file: a child never blocks on a pipe nobody reads yet.
                cli.command(&store, &["call", "conn", "GET", &url])
                    .stdout(Stdio::null())
                    .stderr(std::fs::File::create(log).expect("create a stderr file"))
                    .spawn()
                    .expect("start connector-host")
            })
            .collect();
        let statuses: Vec<_> = children
            .into_iter()
            .map(|mut child| child.wait().expect("wait for connector-host"))
            .collect();
        let wall = started.elapsed();
        let succeeded = statuses.iter().filter(|status| status.success()).count();
        if let Some(failed) = statuses.iter().position(|status| !status.success()) {
            eprintln!(
                "cli storm: a call failed ({}): {}",
                statuses[failed],
                std::fs::read_to_string(&logs[failed]).unwrap_or_default()
            );
        }
        let outcome = CliStormRun {
            wall,
            succeeded,
            refreshes: refreshes.load(Ordering::SeqCst),
        };
        eprintln!(
            "cli storm: {} calls, {} succeeded, {} refresh requests, {:.2} s",
            CLI_STORM,
            outcome.succeeded,
            outcome.refreshes,
            outcome.wall.as_secs_f64()
        );
        report.cli_storm.push(outcome);
    }
}

// ---- the service: `/token` under concurrent clients ----------------------------------

/// Concurrent clients of the service benchmark.
const SERVICE_CLIENTS: usize = 64;

/// How one kind of request fared under [`SERVICE_CLIENTS`] concurrent keep-alive clients.
struct Throughput {
    requests: usize,
    per_second: f64,
    p50: Duration,
    p99: Duration,
}

/// `/token` for a valid token next to a static file, both from one `connector-host serve`.
struct ServiceLoad {
    token: Throughput,
    baseline: Throughput,
}

/// A running `connector-host serve`, stopped when dropped.
struct Service {
    child: std::process::Child,
    address: std::net::SocketAddr,
}

impl Drop for Service {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One HTTP/1.1 connection kept alive across requests.
struct KeepAlive {
    reader: std::io::BufReader<std::net::TcpStream>,
}

impl KeepAlive {
    fn connect(address: std::net::SocketAddr) -> Self {
        let stream = std::net::TcpStream::connect(address).expect("connect to the service");
        stream.set_nodelay(true).unwrap();
        Self {
            reader: std::io::BufReader::new(stream),
        }
    }

    /// Sends one request and reads the whole answer: its status and body.
    fn send(&mut self, method: &str, path: &str, key: Option<&str>, body: &str) -> (u16, String) {
        use std::io::{BufRead as _, Read as _};
        let mut request = format!(
            "{method} {path} HTTP/1.1\r\nHost: bench\r\nContent-Type: application/json\r\n\
             Content-Length: {}\r\n",
            body.len()
        );
        if let Some(key) = key {
            write!(request, "Authorization: Bearer {key}\r\n").unwrap();
        }
        request.push_str("\r\n");
        request.push_str(body);
        std::io::Write::write_all(self.reader.get_mut(), request.as_bytes()).unwrap();
        let mut line = String::new();
        self.reader.read_line(&mut line).unwrap();
        let status: u16 = line
            .split(' ')
            .nth(1)
            .and_then(|code| code.parse().ok())
            .unwrap_or_else(|| panic!("not an HTTP status line: {line:?}"));
        let mut length = 0;
        loop {
            line.clear();
            self.reader.read_line(&mut line).unwrap();
            if line == "\r\n" || line.is_empty() {
                break;
            }
            if let Some((name, value)) = line.split_once(':')
                && name.eq_ignore_ascii_case("content-length")
            {
                length = value.trim().parse().unwrap();
            }
        }
        let mut body = vec![0; length];
        self.reader.read_exact(&mut body).unwrap();
        (status, String::from_utf8_lossy(&body).into_owned())
    }
}

/// Starts `connector-host serve` on a free loopback port with `store` sealed by `key`.
fn start_service(cli: &CliFixture, store: &Path, key: &str) -> Service {
    use std::io::BufRead as _;
    let mut child = cli
        .command(store, &["serve", "--listen", "127.0.0.1:0"])
        .env(connector_host::seal::KEY_ENV, key)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("start connector-host serve");
    let mut first = String::new();
    std::io::BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut first)
        .unwrap();
    let address = first
        .trim_end()
        .strip_prefix("listening on http://")
        .and_then(|address| address.parse().ok())
        .unwrap_or_else(|| panic!("serve printed {first:?}"));
    Service { child, address }
}

/// `clients` keep-alive clients, each sending `per_client` requests as fast as answers come;
/// every answer must be `status` with a body containing `expect`. Client `i` keeps its
/// connection to `addresses[i % addresses.len()]` (round-robin over replicas).
#[allow(clippy::too_many_arguments)]
fn load(
    addresses: &[std::net::SocketAddr],
    clients: usize,
    per_client: usize,
    method: &str,
    path: &str,
    key: Option<&str>,
    status: u16,
    expect: &str,
) -> Throughput {
    let start = Barrier::new(clients + 1);
    let (elapsed, mut latencies) = std::thread::scope(|scope| {
        let workers: Vec<_> = (0..clients)
            .map(|i| {
                let (start, address) = (&start, addresses[i % addresses.len()]);
                scope.spawn(move || {
                    let mut client = KeepAlive::connect(address);
                    let mut latencies = Vec::with_capacity(per_client);
                    start.wait();
                    for _ in 0..per_client {
                        let sent = Instant::now();
                        let (got, body) = client.send(method, path, key, "");
                        latencies.push(sent.elapsed());
                        assert_eq!(got, status, "{method} {path}: {body}");
                        assert!(body.contains(expect), "{method} {path}: {body}");
                    }
                    latencies
                })
            })
            .collect();
        start.wait();
        let started = Instant::now();
        let latencies: Vec<Duration> = workers
            .into_iter()
            .flat_map(|worker| worker.join().unwrap())
            .collect();
        (started.elapsed(), latencies)
    });
    latencies.sort_unstable();
    let at = |fraction: f64| latencies[((latencies.len() - 1) as f64 * fraction).round() as usize];
    Throughput {
        requests: latencies.len(),
        per_second: latencies.len() as f64 / elapsed.as_secs_f64(),
        p50: at(0.5),
        p99: at(0.99),
    }
}

/// The sealing key every service of the benchmark runs with (`CONNECTOR_KEY`).
fn service_sealing_key() -> String {
    "5e".repeat(32)
}

/// The token endpoint of the service benchmarks: every request gets a token valid for an
/// hour, so that `/token` never refreshes and the endpoint sees exactly one request.
fn service_token_server() -> LoopbackServer {
    LoopbackServer::start(|_| {
        Reply::json(
            200,
            r#"{"access_token":"bench-service-token","token_type":"Bearer","expires_in":3600}"#,
        )
    })
}

/// `connector-host --store STORE tenants add bench`, sealed by `key`: the tenant's API key.
fn add_bench_tenant(cli: &CliFixture, store: &Path, key: &str) -> String {
    let output = cli
        .command(store, &["tenants", "add", "bench"])
        .env(connector_host::seal::KEY_ENV, key)
        .output()
        .expect("run connector-host tenants add");
    assert!(output.status.success(), "{output:?}");
    let out = String::from_utf8(output.stdout).unwrap();
    out.lines().last().expect("the key's line").to_owned()
}

/// Through the service at `address`: the client-credentials integration `api`, whose token
/// endpoint is `token_server`, and its connection `c1`.
fn create_bench_connection(
    address: std::net::SocketAddr,
    tenant_key: &str,
    token_server: &LoopbackServer,
) {
    let mut client = KeepAlive::connect(address);
    let integration = format!(
        r#"{{"id":"api","profile":{},"grant":"client-credentials","client_id":"bench-client","client_secret":"bench-secret"}}"#,
        profile_json(&token_server.url(""))
    );
    let created = client.send("POST", "/v1/integrations", Some(tenant_key), &integration);
    assert_eq!(created.0, 201, "{}", created.1);
    let connected = client.send(
        "POST",
        "/v1/connections",
        Some(tenant_key),
        r#"{"integration":"api","connection":"c1"}"#,
    );
    assert_eq!(connected.0, 201, "{}", connected.1);
}

/// `POST /v1/connections/c1/token` by [`SERVICE_CLIENTS`] keep-alive clients, spread
/// round-robin over `addresses`, `per_client` requests each.
fn token_load(
    addresses: &[std::net::SocketAddr],
    per_client: usize,
    tenant_key: &str,
) -> Throughput {
    load(
        addresses,
        SERVICE_CLIENTS,
        per_client,
        "POST",
        "/v1/connections/c1/token",
        Some(tenant_key),
        200,
        "bench-service-token",
    )
}

/// Prints one service figure to stderr.
fn print_service_line(name: &str, figures: &Throughput) {
    eprintln!(
        "service {name}: {:.0} requests/s, p50 {:.2} ms, p99 {:.2} ms ({} requests, \
         {SERVICE_CLIENTS} clients)",
        figures.per_second,
        millis(figures.p50),
        millis(figures.p99),
        figures.requests
    );
}

/// `POST /v1/connections/{id}/token` for a valid token (no refresh) from 64 concurrent
/// clients of one `connector-host serve` (sealed store, as it runs by default), next to a
/// static file the same server serves: requests per second and latency.
fn service_token(report: &mut Report, cli: &CliFixture, per_client: usize) {
    let store = cli.dir.join("service.db");
    let key = service_sealing_key();
    let token_server = service_token_server();
    let tenant_key = add_bench_tenant(cli, &store, &key);
    let service = start_service(cli, &store, &key);
    create_bench_connection(service.address, &tenant_key, &token_server);
    // Warm-up: every store thread opens the store and instantiates once.
    token_load(&[service.address], 2, &tenant_key);
    let token = token_load(&[service.address], per_client, &tenant_key);
    let baseline = load(
        &[service.address],
        SERVICE_CLIENTS,
        per_client,
        "GET",
        connector_host::serve::STYLESHEET_PATH,
        None,
        200,
        "",
    );
    assert_eq!(
        token_server.requests().len(),
        1,
        "a valid token was fetched once and never refreshed"
    );
    print_service_line("token", &token);
    print_service_line("static file", &baseline);
    report.service = Some(ServiceLoad { token, baseline });
}

/// The target of a figure the issue asks to report without a target (the PostgreSQL rows,
/// next to the SQLite figure).
const NO_TARGET: &str = "— (reported next to SQLite)";

/// The replica counts of the PostgreSQL service benchmark, in the order they are measured.
const PG_REPLICAS: [usize; 2] = [1, 3];

/// `/token` on a PostgreSQL store: for each replica count, how it fared.
struct PostgresLoad {
    /// (replicas, figures), in the order of [`PG_REPLICAS`].
    runs: Vec<(usize, Throughput)>,
    /// Requests the token endpoint saw over all runs (1: fetched once, never refreshed).
    token_requests: usize,
}

/// `POST /v1/connections/{id}/token` for a valid token from 64 concurrent keep-alive clients,
/// as [`service_token`] measures it, but on a PostgreSQL store (a throwaway cluster): first
/// with one `serve` replica, then with three sharing the database, the clients spread
/// round-robin over them (each keeps its connection to one replica). One tenant, integration
/// and connection `c1`, created through replica 1; every replica runs with the same sealing
/// key. The token endpoint must see exactly one request over both runs.
fn service_token_postgres(report: &mut Report, cli: &CliFixture, per_client: usize) {
    // Declared first, so that it is dropped (stopped and removed) after the replicas.
    let cluster = postgres::PgCluster::start();
    let url = cluster.url();
    let store = Path::new(&url);
    let key = service_sealing_key();
    let token_server = service_token_server();
    let tenant_key = add_bench_tenant(cli, store, &key);
    let mut replicas = vec![start_service(cli, store, &key)];
    create_bench_connection(replicas[0].address, &tenant_key, &token_server);
    let mut runs = vec![];
    for count in PG_REPLICAS {
        while replicas.len() < count {
            replicas.push(start_service(cli, store, &key));
        }
        let addresses: Vec<std::net::SocketAddr> =
            replicas.iter().map(|replica| replica.address).collect();
        // Warm-up: every replica's store threads open their database sessions and
        // instantiate once.
        token_load(&addresses, 2, &tenant_key);
        let token = token_load(&addresses, per_client, &tenant_key);
        let name = format!(
            "token, PostgreSQL, {count} replica{}",
            if count == 1 { "" } else { "s" }
        );
        print_service_line(&name, &token);
        runs.push((count, token));
    }
    let token_requests = token_server.requests().len();
    eprintln!(
        "service PostgreSQL: {token_requests} token endpoint request(s) over all runs \
         (expected 1: valid token, never refreshed)"
    );
    assert_eq!(
        token_requests, 1,
        "a valid token was fetched once and never refreshed, across all replicas"
    );
    report.postgres = Some(PostgresLoad {
        runs,
        token_requests,
    });
}

fn median_duration(samples: &mut [Duration]) -> Duration {
    samples.sort();
    samples[samples.len() / 2]
}

fn millis(duration: Duration) -> f64 {
    duration.as_secs_f64() * 1e3
}

// ---- 10. the same component in Node.js ------------------------------------------------

/// What `node/bench/bench.mjs --json` measured (the Node host, `node/`).
struct NodeFigures {
    /// Starting the worker: loading jco's glue, compiling and instantiating.
    worker_ready_ms: f64,
    /// The first instance alone (compile and instantiate the core modules).
    first_instance_ms: f64,
    /// A replacement instance after a trap (the compiled modules reused).
    replacement_instance_ms: f64,
    /// An authorize URL through the async API (a round trip to the worker).
    authorize_async_us: f64,
    /// An authorize URL inside the worker (the component and jco's glue).
    authorize_in_worker_us: f64,
    /// A loopback code exchange through the component.
    exchange_async_us: f64,
    /// The same request through the Node transport alone.
    exchange_direct_us: f64,
    /// `node --version`.
    version: String,
}

/// Runs the Node host's benchmark script on the component this suite measures (after
/// transpiling it, when `node/node_modules` is installed: `cargo test` installs it).
fn node_host(report: &mut Report, full: bool) {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("node");
    report.node = (|| {
        if !dir.join("node_modules").is_dir() {
            return Err(
                "not measured: node/node_modules is missing (`npm ci` in node/)".to_owned(),
            );
        }
        let node = |args: &[&str]| {
            Command::new("node")
                .args(args)
                .current_dir(&dir)
                .env("CONNECTOR_COMPONENT_WASM", BUILT_COMPONENT)
                .stderr(Stdio::inherit())
                .output()
                .map_err(|error| format!("not measured: running node: {error}"))
        };
        let build = node(&["scripts/build.mjs"])?;
        if !build.status.success() {
            return Err(format!(
                "not measured: the Node build failed ({})",
                build.status
            ));
        }
        let mut args = vec!["bench/bench.mjs", "--json"];
        if !full {
            args.push("--quick");
        }
        let run = node(&args)?;
        if !run.status.success() {
            return Err(format!("not measured: bench.mjs failed ({})", run.status));
        }
        let json: serde_json::Value = serde_json::from_slice(&run.stdout)
            .map_err(|error| format!("not measured: bench.mjs printed no JSON: {error}"))?;
        let number = |key: &str| {
            json[key]
                .as_f64()
                .ok_or_else(|| format!("not measured: bench.mjs gave no `{key}`"))
        };
        Ok(NodeFigures {
            worker_ready_ms: number("worker_ready_ms")?,
            first_instance_ms: number("first_instance_ms")?,
            replacement_instance_ms: number("replacement_instance_ms")?,
            authorize_async_us: number("authorize_url_async_us")?,
            authorize_in_worker_us: number("authorize_url_in_worker_us")?,
            exchange_async_us: number("code_exchange_async_us")?,
            exchange_direct_us: number("code_exchange_direct_http_us")?,
            version: json["node"].as_str().unwrap_or("node").to_owned(),
        })
    })();
    match &report.node {
        Ok(figures) => eprintln!(
            "node: authorize URL {:.1} µs (async API), {:.1} µs (in the worker); code exchange {:.1} µs (direct {:.1} µs); worker ready {:.1} ms",
            figures.authorize_async_us,
            figures.authorize_in_worker_us,
            figures.exchange_async_us,
            figures.exchange_direct_us,
            figures.worker_ready_ms
        ),
        Err(why) => eprintln!("node: {why}"),
    }
}

// ---- 8. the component's imports -----------------------------------------------------------

/// The interfaces the component imports, as wasmtime reads them from its type. Compiled
/// through the CLI's compile cache, so that the CLI processes later find it warm.
fn imports(report: &mut Report, cache: &Path) {
    let engine = Runtime::engine().unwrap();
    let wasm = std::fs::read(BUILT_COMPONENT).expect("the built component");
    let (component, _) = connector_host::compile_cache::load(&engine, &wasm, Some(cache))
        .expect("compile the component");
    let names: Vec<String> = component
        .component_type()
        .imports(&engine)
        .map(|(name, _)| name.to_owned())
        .collect();
    report.note("component-imports", names.join(", "));
    report.imports = names;
}

/// An import's short name: the interface for our own package (`transport`), else
/// `package/interface` (`clocks/wall-clock`), without the version.
fn short_import(name: &str) -> String {
    let unversioned = name.split('@').next().unwrap_or(name);
    let (package, interface) = unversioned.split_once('/').unwrap_or(("", unversioned));
    match package.split_once(':') {
        Some(("oauth-connector", _)) | None => interface.to_owned(),
        Some((_, package)) => format!("{package}/{interface}"),
    }
}

/// Whether the import is one the target allows: our own interfaces (transport, signer and
/// the types they use), `wasi:clocks`, `wasi:random`, and `wasi:io/poll` (what the monotonic
/// clock needs).
fn import_allowed(name: &str) -> bool {
    name.starts_with("oauth-connector:")
        || name.starts_with("wasi:clocks/")
        || name.starts_with("wasi:random/")
        || name.starts_with("wasi:io/poll@")
}

// ---- the report ---------------------------------------------------------------------------

/// Criterion's medians and median absolute deviations, by "group/function", in nanoseconds.
fn read_estimates() -> BTreeMap<String, (f64, f64)> {
    let root = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("target"))
        .join("criterion");
    let mut estimates = BTreeMap::new();
    let Ok(groups) = std::fs::read_dir(&root) else {
        return estimates;
    };
    for group in groups.flatten() {
        let Ok(functions) = std::fs::read_dir(group.path()) else {
            continue;
        };
        for function in functions.flatten() {
            let file = function.path().join("new").join("estimates.json");
            let Ok(text) = std::fs::read_to_string(&file) else {
                continue;
            };
            let Ok(json) = serde_json::from_str::<serde_json::Value>(&text) else {
                continue;
            };
            let median = json["median"]["point_estimate"]
                .as_f64()
                .unwrap_or(f64::NAN);
            let mad = json["median_abs_dev"]["point_estimate"]
                .as_f64()
                .unwrap_or(f64::NAN);
            let key = format!(
                "{}/{}",
                group.file_name().to_string_lossy(),
                function.file_name().to_string_lossy()
            );
            estimates.insert(key, (median, mad));
        }
    }
    estimates
}

fn human(ns: f64) -> String {
    if ns >= 1e6 {
        format!("{:.2} ms", ns / 1e6)
    } else if ns >= 1e3 {
        format!("{:.2} µs", ns / 1e3)
    } else {
        format!("{ns:.0} ns")
    }
}

/// A criterion estimate as `median ± deviation`, or `n/a` when it was not measured.
fn estimate_cell(est: &BTreeMap<String, (f64, f64)>, key: &str) -> String {
    match est.get(key) {
        Some((median, mad)) => format!("{} ± {}", human(*median), human(*mad)),
        None => "n/a".into(),
    }
}

/// A ratio as a table cell: `1.23×`, or `n/a` when there is none (or it is not finite).
fn times_cell(ratio: Option<f64>) -> String {
    ratio
        .filter(|ratio| ratio.is_finite())
        .map_or("n/a".into(), |ratio| format!("{ratio:.2}×"))
}

/// How many alternating rounds [`paired_ratio`] runs, and how long each side runs in a round.
const PAIRED_ROUNDS: usize = 21;
const PAIRED_SLICE: Duration = Duration::from_millis(100);

/// The time per call of `a` over that of `b`, as the median of [`PAIRED_ROUNDS`] rounds that
/// each run both for about [`PAIRED_SLICE`], the first side alternating. Criterion measures
/// two benchmarks seconds or minutes apart, and on a shared machine whose speed drifts
/// (this one's varied by half between runs of the suite), their ratio drifts with it; here
/// both sides of every round run within a fraction of a second. Quick mode: one short round.
fn paired_ratio<A, B>(full: bool, mut a: impl FnMut() -> A, mut b: impl FnMut() -> B) -> f64 {
    let mut a = move || drop(black_box(a()));
    let mut b = move || drop(black_box(b()));
    let (rounds, slice) = if full {
        (PAIRED_ROUNDS, PAIRED_SLICE)
    } else {
        (1, Duration::from_millis(2))
    };
    let seconds_per_call = |f: &mut dyn FnMut(), calls: u64| {
        let start = Instant::now();
        for _ in 0..calls {
            f();
        }
        start.elapsed().as_secs_f64() / calls as f64
    };
    // Calls that fill a slice: doubled until a batch takes a tenth of it, then scaled.
    let calls_per_slice = |f: &mut dyn FnMut()| {
        let mut calls = 1_u64;
        loop {
            let per_call = seconds_per_call(f, calls);
            if per_call * calls as f64 >= slice.as_secs_f64() / 10.0 || calls >= 1 << 24 {
                return ((slice.as_secs_f64() / per_call.max(1e-12)) as u64).clamp(1, 1 << 28);
            }
            calls *= 2;
        }
    };
    let a_calls = calls_per_slice(&mut a);
    let b_calls = calls_per_slice(&mut b);
    let mut ratios: Vec<f64> = (0..rounds)
        .map(|round| {
            if round % 2 == 0 {
                let a_time = seconds_per_call(&mut a, a_calls);
                a_time / seconds_per_call(&mut b, b_calls)
            } else {
                let b_time = seconds_per_call(&mut b, b_calls);
                seconds_per_call(&mut a, a_calls) / b_time
            }
        })
        .collect();
    ratios.sort_by(f64::total_cmp);
    ratios[ratios.len() / 2]
}

impl Report {
    fn markdown(&self, est: &BTreeMap<String, (f64, f64)>) -> String {
        let cell = |key: &str| estimate_cell(est, key);
        let ratio = |a: &str, b: &str| self.ratio_cell(est, a, b);
        let mut md = String::new();
        let cpu = std::fs::read_to_string("/proc/cpuinfo")
            .ok()
            .and_then(|info| {
                info.lines()
                    .find_map(|l| l.strip_prefix("model name"))
                    .map(|v| v.trim_start_matches([' ', '\t', ':']).to_owned())
            })
            .unwrap_or_else(|| "unknown CPU".into());
        let rustc = Command::new("rustc")
            .arg("--version")
            .output()
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
            .unwrap_or_default();
        let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
        let date = Command::new("date")
            .args(["-u", "+%Y-%m-%d %H:%M UTC"])
            .output()
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
            .unwrap_or_default();
        let _ = writeln!(md, "# Benchmarks\n");
        let _ = writeln!(
            md,
            "Generated by `cargo bench --bench connector` (one run; every comparison measured side by side).\n"
        );
        let _ = writeln!(
            md,
            "- Machine: {cpu}, {cores} cores; {rustc}; wasmtime 48 (cranelift, pooling allocator)"
        );
        let _ = writeln!(md, "- Date: {date}");
        let _ = writeln!(
            md,
            "- Timings: criterion median ± median absolute deviation (release build); CLI processes: median wall time.\n- Ratios of two timed operations (sections 3, 4 and the targets): the median of {PAIRED_ROUNDS} rounds that each run both sides for about {} ms, the first side alternating, so that a drift of the machine's speed during the run slows both alike (criterion times the two sides seconds or minutes apart).\n",
            PAIRED_SLICE.as_millis()
        );
        let _ = writeln!(md, "{}", self.targets(est));
        let _ = writeln!(md, "## 1. Component size\n");
        let _ = writeln!(md, "| what | bytes | target |\n|---|---|---|");
        let _ = writeln!(
            md,
            "| component (`--profile component`) | {} | ≤ 350,000 |",
            self.get("component-bytes")
        );
        let _ = writeln!(
            md,
            "\nCode bytes by crate in the core module (from a build that keeps the name section, \
             its identical functions merged as the build merges the shipped component's: {}):\n",
            self.get("merged-functions")
        );
        let _ = writeln!(md, "| crate | bytes |\n|---|---|");
        for (name, bytes) in self.crate_sizes.iter().take(20) {
            let _ = writeln!(md, "| {name} | {bytes} |");
        }
        let _ = writeln!(md, "\n## 2. Engine start\n");
        let _ = writeln!(md, "| step | time | target |\n|---|---|---|");
        for (key, label, target) in [
            ("engine/compile", "compile the component", ""),
            (
                "engine/load-precompiled",
                "load a precompiled component",
                "",
            ),
            ("engine/pre-instantiate", "link and pre-instantiate", ""),
            (
                "instance/fresh-pooling",
                "fresh instance, pooling allocator",
                "≤ 10 µs",
            ),
            (
                "instance/fresh-on-demand",
                "fresh instance, on-demand allocation",
                "",
            ),
            (
                "instance/fresh-pooling+authorize-url",
                "fresh instance + first call (authorize URL)",
                "≤ 30 µs",
            ),
        ] {
            let _ = writeln!(md, "| {label} | {} | {target} |", cell(key));
        }
        let _ = writeln!(
            md,
            "\nCompile / load precompiled: {}.\n",
            ratio("engine/compile", "engine/load-precompiled")
        );
        let _ = writeln!(
            md,
            "## 3. Per operation: core natively, component in wasmtime, `oauth2` crate natively\n"
        );
        let _ = writeln!(
            md,
            "| operation | core native | component | oauth2 crate | component / core (target ≤ 2×) | core / oauth2 (target ≤ 1×) |\n|---|---|---|---|---|---|"
        );
        for (group, label) in [
            ("authorize-url", "authorize URL with PKCE S256"),
            ("parse-token-response", "parse a token response"),
            (
                "refresh-request-and-parse",
                "refresh: build request + parse answer",
            ),
            ("needs-refresh", "refresh decision"),
        ] {
            let core = format!("{group}/core-native");
            let comp = format!("{group}/component");
            let o2 = format!("{group}/oauth2-crate");
            let _ = writeln!(
                md,
                "| {label} | {} | {} | {} | {} | {} |",
                cell(&core),
                cell(&comp),
                cell(&o2),
                ratio(&comp, &core),
                ratio(&core, &o2)
            );
        }
        let _ = writeln!(
            md,
            "\nTargets: component ≤ 2× core; core no slower than the `oauth2` crate. Component calls reuse one instance; see section 2 for a fresh instance per call. `n/a`: no such export (the component parses token responses only inside `complete`/`refresh`, measured in the refresh row).\n"
        );
        let _ = writeln!(md, "## 4. Round trips on 127.0.0.1\n");
        let _ = writeln!(
            md,
            "| request | direct (host HTTP client) | host + fresh component instance | ratio (target ≤ 1.2×) |\n|---|---|---|---|"
        );
        for (group, label) in [
            ("code-exchange-loopback", "code exchange"),
            ("refresh-loopback", "refresh"),
        ] {
            let d = format!("{group}/direct-http");
            let h = format!("{group}/host+component");
            let _ = writeln!(
                md,
                "| {label} | {} | {} | {} |",
                cell(&d),
                cell(&h),
                ratio(&h, &d)
            );
        }
        let _ = writeln!(
            md,
            "\n## 5. Refresh storm: N concurrent `call`s on one expired connection\n"
        );
        let _ = writeln!(
            md,
            "Each thread opens the store like a separate process, then all call at once (SQLite store, per-connection lock file, loopback token endpoint and API).\n"
        );
        let _ = writeln!(md, "| N | result |\n|---|---|");
        for n in [1, 16, 256] {
            let _ = writeln!(md, "| {n} | {} |", self.get(&format!("storm-{n}")));
        }
        let _ = writeln!(md, "\n## 6. Memory\n");
        let _ = writeln!(
            md,
            "Resident size of one CLI `call` (the CLI code in a fresh process, component compiled at start): {}.",
            self.get("cli-call-rss")
        );
        self.cli_sections(&mut md);
        self.service_section(&mut md);
        self.node_section(&mut md, est);
        md
    }

    /// Section 9: the service's `/token` under concurrent clients, on SQLite and PostgreSQL.
    fn service_section(&self, md: &mut String) {
        let _ = writeln!(
            md,
            "\n## 9. The service: `/token` under {SERVICE_CLIENTS} concurrent clients\n"
        );
        let _ = writeln!(
            md,
            "`connector-host serve` (sealed store) answering `POST /v1/connections/c1/token` for a valid client-credentials token (no refresh) to {SERVICE_CLIENTS} concurrent keep-alive clients, next to a static file the same SQLite-backed server serves. PostgreSQL: a throwaway local cluster (fsync off), every replica started with the same sealing key, the clients spread round-robin over the replicas (each keeps its connection to one), all on the one connection.\n"
        );
        let _ = writeln!(
            md,
            "| store | replicas | requests | requests/s | p50 | p99 | requests/s / SQLite `/token` | p99 / SQLite `/token` |\n|---|---|---|---|---|---|---|---|"
        );
        let sqlite = self.service.as_ref().map(|load| &load.token);
        let row = |md: &mut String, store: &str, replicas: usize, figures: &Throughput| {
            let _ = writeln!(
                md,
                "| {store} | {replicas} | {} | {:.0} | {:.2} ms | {:.2} ms | {} | {} |",
                figures.requests,
                figures.per_second,
                millis(figures.p50),
                millis(figures.p99),
                times_cell(sqlite.map(|base| figures.per_second / base.per_second)),
                times_cell(sqlite.map(|base| figures.p99.as_secs_f64() / base.p99.as_secs_f64())),
            );
        };
        if let Some(ServiceLoad { token, baseline }) = &self.service {
            row(md, "SQLite, static file (baseline)", 1, baseline);
            row(md, "SQLite", 1, token);
        }
        if let Some(postgres) = &self.postgres {
            for (replicas, figures) in &postgres.runs {
                row(md, "PostgreSQL", *replicas, figures);
            }
            let _ = writeln!(
                md,
                "\nToken endpoint requests over the PostgreSQL runs: {} (the token was fetched once and never refreshed).",
                postgres.token_requests
            );
        }
        let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
        let _ = writeln!(
            md,
            "\nThe replicas, PostgreSQL and the {SERVICE_CLIENTS} client threads all share this machine's {cores} cores: the 3-replica figure measures the cost of coordinating replicas through one database, not scale-out."
        );
    }

    /// Section 10: the Node host's figures beside wasmtime's and the core's.
    fn node_section(&self, md: &mut String, est: &BTreeMap<String, (f64, f64)>) {
        let cell = |key: &str| estimate_cell(est, key);
        let ratio = |a: &str, b: &str| self.ratio_cell(est, a, b);
        let _ = writeln!(
            md,
            "\n## 10. The same component in Node.js (`node/`: jco, a worker thread)\n"
        );
        match &self.node {
            Ok(node) => {
                let _ = writeln!(
                    md,
                    "The same `.wasm` file, measured in this run ({}; `node/bench/bench.mjs`). Node figures are medians of 5 rounds of many calls.\n",
                    node.version
                );
                let _ = writeln!(
                    md,
                    "| operation | core native | wasmtime (component) | Node, inside the worker | Node, async API |\n|---|---|---|---|---|"
                );
                let _ = writeln!(
                    md,
                    "| authorize URL with PKCE S256 | {} | {} | {:.1} µs | {:.1} µs |",
                    cell("authorize-url/core-native"),
                    cell("authorize-url/component"),
                    node.authorize_in_worker_us,
                    node.authorize_async_us
                );
                let _ = writeln!(
                    md,
                    "\n| loopback code exchange | direct HTTP | through the component | ratio |\n|---|---|---|---|"
                );
                let _ = writeln!(
                    md,
                    "| wasmtime host | {} | {} | {} |",
                    cell("code-exchange-loopback/direct-http"),
                    cell("code-exchange-loopback/host+component"),
                    ratio(
                        "code-exchange-loopback/host+component",
                        "code-exchange-loopback/direct-http"
                    )
                );
                let _ = writeln!(
                    md,
                    "| Node host | {:.1} µs | {:.1} µs | {:.2}× |",
                    node.exchange_direct_us,
                    node.exchange_async_us,
                    node.exchange_async_us / node.exchange_direct_us
                );
                let _ = writeln!(
                    md,
                    "\nStarting: the worker ready in {:.1} ms (the first instance {:.1} ms of it); a replacement instance after a trap {:.2} ms.",
                    node.worker_ready_ms, node.first_instance_ms, node.replacement_instance_ms
                );
            }
            Err(why) => {
                let _ = writeln!(md, "{why}");
            }
        }
    }

    /// Sections 7 and 8: the CLI as processes, and the component's imports.
    fn cli_sections(&self, md: &mut String) {
        let _ = writeln!(
            md,
            "\n## 7. The `connector-host` binary, as separate processes\n"
        );
        let _ = writeln!(
            md,
            "Each command is a fresh process of the built binary with a warm compile cache (`{}` in a private temporary directory), against a store holding one connection.\n",
            connector_host::compile_cache::CACHE_ENV
        );
        let _ = writeln!(md, "| command | median wall time | runs |\n|---|---|---|");
        if let Some(latency) = &self.cli_latency {
            let _ = writeln!(
                md,
                "| `connector-host list` (no component) | {:.2} ms | {} |",
                millis(latency.list),
                latency.runs
            );
            let _ = writeln!(
                md,
                "| `connector-host token NAME` (valid token, no refresh) | {:.2} ms | {} |",
                millis(latency.token),
                latency.runs
            );
        }
        let _ = writeln!(
            md,
            "\n{CLI_STORM} `connector-host call`s started at once on one expired connection (loopback token endpoint and API of section 5):\n"
        );
        let _ = writeln!(
            md,
            "| run | wall time until the last exits | succeeded | refresh requests |\n|---|---|---|---|"
        );
        for (i, run) in self.cli_storm.iter().enumerate() {
            let _ = writeln!(
                md,
                "| {} | {:.2} s | {}/{CLI_STORM} | {} |",
                i + 1,
                run.wall.as_secs_f64(),
                run.succeeded,
                run.refreshes
            );
        }
        let _ = writeln!(md, "\n## 8. Component imports\n");
        let _ = writeln!(
            md,
            "What every embedder must provide, as wasmtime reads it from the component's type. Allowed by the target: our own interfaces, `wasi:clocks`, `wasi:random`, and `wasi:io/poll` (what the monotonic clock needs).\n"
        );
        let _ = writeln!(md, "| import | allowed |\n|---|---|");
        for name in &self.imports {
            let allowed = if import_allowed(name) { "yes" } else { "no" };
            let _ = writeln!(md, "| `{name}` | {allowed} |");
        }
    }

    /// The speed issue's targets, each next to what this run measured (`n/a`: not measured).
    fn targets(&self, est: &BTreeMap<String, (f64, f64)>) -> String {
        let median = |key: &str| est.get(key).map(|(median, _)| *median);
        let ratio = |a: &str, b: &str| self.ratio(est, a, b);
        let mut rows: Vec<(String, String, &str, Option<bool>)> = vec![];

        rows.push(match &self.cli_latency {
            Some(latency) => {
                let r = latency.token.as_secs_f64() / latency.list.as_secs_f64();
                (
                    "`connector-host token NAME` (valid token, no refresh) / `connector-host list`"
                        .into(),
                    format!(
                        "{r:.2}× (token {:.2} ms, list {:.2} ms; median of {})",
                        millis(latency.token),
                        millis(latency.list),
                        latency.runs
                    ),
                    "≤ 3× (milliseconds)",
                    Some(r <= 3.0),
                )
            }
            None => (
                "`connector-host token NAME` / `connector-host list`".into(),
                "n/a".into(),
                "≤ 3× (milliseconds)",
                None,
            ),
        });

        let storm_label = format!("{CLI_STORM} concurrent CLI `call`s on one expired connection");
        let storm_target = "all succeed, exactly 1 refresh, ≤ 2 s";
        rows.push(if self.cli_storm.is_empty() {
            (storm_label, "n/a".into(), storm_target, None)
        } else {
            let mut walls: Vec<Duration> = self.cli_storm.iter().map(|run| run.wall).collect();
            let wall = median_duration(&mut walls);
            let succeeded = self.cli_storm.iter().map(|run| run.succeeded).min();
            let refreshes: Vec<String> = self
                .cli_storm
                .iter()
                .map(|run| run.refreshes.to_string())
                .collect();
            let ok = self
                .cli_storm
                .iter()
                .all(|run| run.succeeded == CLI_STORM && run.refreshes == 1)
                && wall <= Duration::from_secs(2);
            (
                storm_label,
                format!(
                    "{:.2} s{}, {}/{CLI_STORM} succeeded, refresh requests: {}",
                    wall.as_secs_f64(),
                    match self.cli_storm.len() {
                        1 => String::new(),
                        runs => format!(" (median of {runs} runs)"),
                    },
                    succeeded.unwrap_or(0),
                    refreshes.join(", ")
                ),
                storm_target,
                Some(ok),
            )
        });

        let service_label =
            format!("service `/token` (valid token), {SERVICE_CLIENTS} concurrent clients");
        let service_target = "≥ ½ the static file's requests/s, p99 ≤ 5 ms";
        rows.push(match &self.service {
            Some(ServiceLoad { token, baseline }) => {
                let share = token.per_second / baseline.per_second;
                (
                    service_label,
                    format!(
                        "{:.0} requests/s ({share:.2}× the static file's {:.0}), p50 {:.2} ms, \
                         p99 {:.2} ms (static file p99 {:.2} ms)",
                        token.per_second,
                        baseline.per_second,
                        millis(token.p50),
                        millis(token.p99),
                        millis(baseline.p99)
                    ),
                    service_target,
                    Some(share >= 0.5 && token.p99 <= Duration::from_millis(5)),
                )
            }
            None => (service_label, "n/a".into(), service_target, None),
        });

        let sqlite = self.service.as_ref().map(|load| &load.token);
        for replicas in PG_REPLICAS {
            let label = format!(
                "service `/token` on PostgreSQL, {replicas} replica{}, {SERVICE_CLIENTS} concurrent clients",
                if replicas == 1 { "" } else { "s" }
            );
            let run = self.postgres.as_ref().and_then(|postgres| {
                let (_, figures) = postgres.runs.iter().find(|(r, _)| *r == replicas)?;
                Some((figures, postgres.token_requests))
            });
            let measured = match run {
                Some((figures, token_requests)) => {
                    let versus = sqlite.map_or(String::new(), |base| {
                        format!(
                            " ({:.2}× SQLite's {:.0})",
                            figures.per_second / base.per_second,
                            base.per_second
                        )
                    });
                    let p99_versus = sqlite.map_or(String::new(), |base| {
                        format!(
                            " ({:.2}× SQLite's {:.2} ms)",
                            figures.p99.as_secs_f64() / base.p99.as_secs_f64(),
                            millis(base.p99)
                        )
                    });
                    format!(
                        "{:.0} requests/s{versus}, p50 {:.2} ms, p99 {:.2} ms{p99_versus}; \
                         token endpoint requests over both runs: {token_requests}",
                        figures.per_second,
                        millis(figures.p50),
                        millis(figures.p99),
                    )
                }
                None => "n/a".into(),
            };
            rows.push((label, measured, NO_TARGET, None));
        }

        let bytes = self.get("component-bytes").parse::<u64>().ok();
        rows.push((
            "component size (`--profile component`)".into(),
            bytes.map_or("n/a".into(), |b| {
                format!("{b} B ({:.2}× the target)", b as f64 / 350_000.0)
            }),
            "≤ 350,000 B",
            bytes.map(|b| b <= 350_000),
        ));

        for (key, label, target, limit_ns) in [
            (
                "instance/fresh-pooling",
                "fresh instance (pooling)",
                "≤ 10 µs",
                10e3,
            ),
            (
                "instance/fresh-pooling+authorize-url",
                "fresh instance + first authorize URL",
                "≤ 30 µs",
                30e3,
            ),
        ] {
            let time = median(key);
            rows.push((
                label.into(),
                time.map_or("n/a".into(), human),
                target,
                time.map(|ns| ns <= limit_ns),
            ));
        }

        for (a, b, label, target, limit) in [
            (
                "authorize-url/component",
                "authorize-url/core-native",
                "component / core: authorize URL",
                "≤ 2×",
                2.0,
            ),
            (
                "refresh-request-and-parse/component",
                "refresh-request-and-parse/core-native",
                "component / core: refresh (build request + parse answer)",
                "≤ 2×",
                2.0,
            ),
            (
                "needs-refresh/component",
                "needs-refresh/core-native",
                "component / core: refresh decision",
                "≤ 2×",
                2.0,
            ),
            (
                "authorize-url/core-native",
                "authorize-url/oauth2-crate",
                "core / `oauth2` crate: authorize URL",
                "≤ 1.0×",
                1.0,
            ),
            (
                "parse-token-response/core-native",
                "parse-token-response/oauth2-crate",
                "core / `oauth2` crate: token parse",
                "≤ 1.0×",
                1.0,
            ),
            (
                "code-exchange-loopback/host+component",
                "code-exchange-loopback/direct-http",
                "loopback code exchange, host+component / direct",
                "≤ 1.2×",
                1.2,
            ),
            (
                "refresh-loopback/host+component",
                "refresh-loopback/direct-http",
                "loopback refresh, host+component / direct",
                "≤ 1.2×",
                1.2,
            ),
        ] {
            let r = ratio(a, b);
            rows.push((label.into(), times_cell(r), target, r.map(|r| r <= limit)));
        }

        rows.push((
            "component imports".into(),
            if self.imports.is_empty() {
                "n/a".into()
            } else {
                import_summary(&self.imports)
            },
            "transport, clocks, random (and what they need)",
            (!self.imports.is_empty())
                .then(|| self.imports.iter().all(|name| import_allowed(name))),
        ));

        let mut md =
            String::from("## Targets\n\n| figure | measured | target | met |\n|---|---|---|---|\n");
        for (label, measured, target, ok) in rows {
            let met = match ok {
                Some(true) => "yes",
                Some(false) => "no",
                None if target == NO_TARGET => "—",
                None => "n/a",
            };
            let _ = writeln!(md, "| {label} | {measured} | {target} | {met} |");
        }
        md
    }
}

/// The imports grouped by package, as the issue writes them: our own interfaces by name,
/// then each WASI package with its interfaces (`clocks (wall-clock)`).
fn import_summary(names: &[String]) -> String {
    let mut own: Vec<String> = vec![];
    let mut wasi: Vec<(String, Vec<String>)> = vec![];
    for name in names {
        let short = short_import(name);
        match short.split_once('/') {
            None => own.push(short),
            Some((package, interface)) => {
                match wasi.iter_mut().find(|(known, _)| known == package) {
                    Some((_, interfaces)) => interfaces.push(interface.to_owned()),
                    None => wasi.push((package.to_owned(), vec![interface.to_owned()])),
                }
            }
        }
    }
    own.into_iter()
        .chain(
            wasi.into_iter()
                .map(|(package, interfaces)| format!("{package} ({})", interfaces.join(", "))),
        )
        .collect::<Vec<_>>()
        .join(", ")
}

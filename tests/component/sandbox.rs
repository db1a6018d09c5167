//! Sandbox limits: a hostile component (`tests/guests/hostile`) that loops, allocates,
//! overflows its stack or panics is stopped with a typed error, and the same runtime keeps
//! serving. Also the transport's caps on response heads.

use std::sync::OnceLock;
use std::time::{Duration, Instant};

use connector_host::runtime::{BUILT_HOSTILE_COMPONENT, thread_cpu_time};
use connector_host::transport::MAX_RESPONSE_HEADERS;
use connector_host::types::TransportError;
use connector_host::{
    Allocation, AllowList, CallError, HttpTransport, LimitExceeded, Limits, Runtime, SandboxLimits,
    Session,
};
use wasmtime::Trap;

use crate::common::{Reply, TestServer, config, get, profile, runtime};

const MEMORY_CAP: usize = 32 << 20;
const BUDGET: Duration = Duration::from_millis(300);

fn limits() -> SandboxLimits {
    SandboxLimits {
        memory_bytes: MEMORY_CAP,
        compute_time: BUDGET,
    }
}

fn hostile(allocation: Allocation) -> &'static Runtime {
    static POOLED: OnceLock<Runtime> = OnceLock::new();
    static ON_DEMAND: OnceLock<Runtime> = OnceLock::new();
    let cell = match allocation {
        Allocation::Pooling => &POOLED,
        Allocation::OnDemand => &ON_DEMAND,
    };
    cell.get_or_init(|| {
        Runtime::load_limited(BUILT_HOSTILE_COMPONENT.as_ref(), allocation, limits())
            .expect("load the hostile guest")
    })
}

fn session_on(runtime: &Runtime, allow: AllowList) -> Session {
    runtime
        .instantiate(HttpTransport::new(allow, Limits::default()))
        .expect("instantiate")
}

/// Runs the hostile guest's `begin` with `behaviour` as the client id; its token URL is
/// `token_url`.
fn provoke(runtime: &Runtime, behaviour: &str, token_url: &str) -> Result<String, CallError> {
    let mut config = config(profile("http://127.0.0.1:9/authorize", token_url));
    config.client.client_id = behaviour.into();
    let mut session = session_on(runtime, AllowList::from_urls([token_url]));
    session.begin(&config).map(|request| request.url)
}

/// The runtime still serves: a fresh instance answers normally.
fn assert_still_serving(runtime: &Runtime) {
    assert_eq!(
        provoke(runtime, "behave", "http://127.0.0.1:9/token").unwrap(),
        "ok"
    );
}

fn trap_of(result: Result<String, CallError>) -> Trap {
    match result {
        Err(CallError::Runtime(error)) => *error
            .downcast_ref::<Trap>()
            .unwrap_or_else(|| panic!("not a trap: {error:?}")),
        other => panic!("expected a trap, got {other:?}"),
    }
}

#[test]
fn a_runaway_loop_is_stopped_by_the_compute_budget() {
    let runtime = hostile(Allocation::Pooling);
    // The guest runs on this thread: its CPU clock measures what the budget counts, however
    // busy the machine is.
    let (started, cpu_started) = (Instant::now(), thread_cpu_time());
    let result = provoke(runtime, "spin", "http://127.0.0.1:9/token");
    let (took, cpu) = (started.elapsed(), thread_cpu_time() - cpu_started);
    eprintln!("runaway loop: budget {BUDGET:?}, stopped after {cpu:?} of CPU ({took:?} wall)");
    assert!(
        matches!(
            result,
            Err(CallError::Limit(LimitExceeded::ComputeTime { limit })) if limit == BUDGET
        ),
        "{result:?}"
    );
    assert!(
        cpu >= BUDGET,
        "stopped after {cpu:?} of CPU, before the budget"
    );
    // One epoch tick (10 ms) after the budget, plus instantiation and a little slack.
    assert!(
        cpu < BUDGET + Duration::from_millis(200),
        "stopped only after {cpu:?} of CPU"
    );
    assert_still_serving(runtime);
}

#[test]
fn unbounded_allocation_is_stopped_at_the_memory_cap() {
    for allocation in [Allocation::Pooling, Allocation::OnDemand] {
        let runtime = hostile(allocation);
        let started = Instant::now();
        let result = provoke(runtime, "allocate", "http://127.0.0.1:9/token");
        eprintln!(
            "unbounded allocation ({allocation:?}): {result:?} after {:?}",
            started.elapsed()
        );
        match result {
            Err(CallError::Limit(LimitExceeded::Memory {
                limit_bytes,
                requested_bytes,
            })) => {
                assert_eq!(limit_bytes, MEMORY_CAP, "{allocation:?}");
                // The refused growth is the one that crosses the cap: one block (1 MiB)
                // plus allocator slack.
                assert!(
                    requested_bytes > MEMORY_CAP && requested_bytes <= MEMORY_CAP + (4 << 20),
                    "{allocation:?}: asked for {requested_bytes}"
                );
            }
            other => panic!("{allocation:?}: expected the memory limit, got {other:?}"),
        }
        assert_still_serving(runtime);
    }
}

#[test]
fn stack_exhaustion_and_panic_are_traps_not_host_crashes() {
    let runtime = hostile(Allocation::Pooling);
    // Rust keeps its stack frames' data on a shadow stack in linear memory (1 MiB below
    // the data segment); running off its end is an out-of-bounds access, caught by
    // wasmtime's guard pages before wasm's own call stack (512 KiB) runs out.
    assert_eq!(
        trap_of(provoke(runtime, "recurse", "http://127.0.0.1:9/token")),
        Trap::MemoryOutOfBounds
    );
    assert_eq!(
        trap_of(provoke(runtime, "panic", "http://127.0.0.1:9/token")),
        Trap::UnreachableCodeReached
    );
    assert_still_serving(runtime);
}

#[test]
fn time_in_the_transport_does_not_count_against_the_budget() {
    let server = TestServer::start(|_| {
        let mut reply = Reply::json(200, "{}");
        reply.delay = BUDGET * 3;
        reply
    });
    let runtime = hostile(Allocation::Pooling);
    let started = Instant::now();
    let outcome = provoke(runtime, "slow-transport", &server.url("/token"));
    assert_eq!(outcome.unwrap(), "status 200");
    assert!(started.elapsed() >= BUDGET * 3);
    assert_eq!(server.requests().len(), 1);
}

#[test]
fn compute_after_a_slow_transport_is_still_limited() {
    let server = TestServer::start(|_| {
        let mut reply = Reply::json(200, "{}");
        reply.delay = BUDGET * 2;
        reply
    });
    let runtime = hostile(Allocation::Pooling);
    let started = Instant::now();
    let result = provoke(runtime, "spin-after-transport", &server.url("/token"));
    let took = started.elapsed();
    eprintln!(
        "loop after a {:?} transport wait: stopped after {took:?}",
        BUDGET * 2
    );
    assert!(
        matches!(
            result,
            Err(CallError::Limit(LimitExceeded::ComputeTime { .. }))
        ),
        "{result:?}"
    );
    // The budget starts counting again once the response is back.
    assert!(took >= BUDGET * 3, "stopped after {took:?}");
    assert_eq!(server.requests().len(), 1);
}

#[test]
fn stopped_instances_give_their_pool_slots_back() {
    let runtime = hostile(Allocation::Pooling);
    let calls = 2 * connector_host::runtime::POOL_INSTANCES as usize;
    let started = Instant::now();
    for call in 0..calls {
        assert_eq!(
            trap_of(provoke(runtime, "panic", "http://127.0.0.1:9/token")),
            Trap::UnreachableCodeReached,
            "call {call}"
        );
    }
    eprintln!(
        "{calls} trapping instances in {:?} ({:?} each)",
        started.elapsed(),
        started.elapsed() / calls as u32
    );
    assert_still_serving(runtime);
}

#[test]
fn the_connector_runs_within_the_default_limits() {
    assert_eq!(runtime().limits(), SandboxLimits::default());
    let mut session = runtime()
        .instantiate(HttpTransport::new(AllowList::default(), Limits::default()))
        .unwrap();
    let request = session
        .begin(&config(profile(
            "https://auth.example.com/authorize",
            "https://auth.example.com/token",
        )))
        .unwrap();
    assert!(
        request
            .url
            .starts_with("https://auth.example.com/authorize?")
    );
}

#[test]
fn oversized_response_heads_are_typed_errors() {
    let big_header = "v".repeat(80 * 1024);
    let huge = TestServer::start(move |_| Reply::new(200, &[("X-Big", big_header.as_str())], "{}"));
    let names: Vec<String> = (0..=MAX_RESPONSE_HEADERS)
        .map(|n| format!("X-Header-{n}"))
        .collect();
    let many = TestServer::start(move |_| {
        let headers: Vec<(&str, &str)> = names.iter().map(|name| (name.as_str(), "1")).collect();
        Reply::new(200, &headers, "{}")
    });
    let allow = AllowList::from_urls([huge.url("/").as_str(), many.url("/").as_str()]);
    let mut session = runtime()
        .instantiate(HttpTransport::new(allow, Limits::default()))
        .unwrap();

    let error = session.transport_send(get(&huge.url("/big"))).unwrap_err();
    assert_eq!(
        error,
        TransportError::Other(format!(
            "{}: response headers over the host's limit",
            huge.url("")
        ))
    );
    let error = session.transport_send(get(&many.url("/many"))).unwrap_err();
    assert_eq!(
        error,
        TransportError::Other(format!(
            "{}: response has more than {MAX_RESPONSE_HEADERS} headers",
            many.url("")
        ))
    );
}

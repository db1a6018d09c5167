//! The wasmtime side: one engine and one pre-instantiated component per process, and a
//! fresh, sandboxed instance per call.
//!
//! Each instance runs under [`SandboxLimits`]: a cap on its linear memory (a `memory.grow`
//! past it traps at once) and a compute-time budget per call, enforced with epoch
//! interruption. The budget counts the calling thread's CPU time (on Unix; wall time
//! elsewhere), less what the host's transport used: a slow server is the transport's
//! business (its own timeouts), and neither a slow server nor a descheduled thread may stop
//! the component after a token response arrived, which would throw away a rotated refresh
//! token.

use std::path::Path;
use std::time::{Duration, Instant};

use wasmtime::component::{
    Component, ComponentExportIndex, ComponentNamedList, HasSelf, Lift, Linker, Lower, ResourceAny,
    TypedFunc,
};
use wasmtime::error::Context as _;
use wasmtime::{
    Config, Engine, InstanceAllocationStrategy, PoolingAllocationConfig, ResourceLimiter, Store,
    UpdateDeadline,
};

use crate::bindings::exports::oauth_connector::oauth2 as exported;
use crate::bindings::exports::oauth_connector::oauth2::api::ApiResponse;
use crate::bindings::exports::oauth_connector::oauth2::device_authorization::{
    DeviceAuthorization, DevicePoll,
};
use crate::bindings::exports::oauth_connector::oauth2::jwt_bearer::AssertionClaims;
use crate::bindings::exports::oauth_connector::oauth2::registration::{
    ClientMetadata, ProtectedResource, RegisteredClient,
};
use crate::bindings::exports::oauth_connector::oauth2::token_exchange::{
    ExchangeRequest, ExchangedToken,
};
use crate::bindings::exports::oauth_connector::oauth2::tokens::Introspection;
use crate::bindings::oauth_connector::oauth2::{signer, transport};
use crate::bindings::types::{self, HttpRequest, HttpResponse, TransportError};
use crate::bindings::wasi::clocks::wall_clock;
use crate::bindings::wasi::random::random;
use crate::bindings::{AuthorizationRequest, Connector, ConnectorPre};
use crate::signer::{NoSigner, Signer};
use crate::transport::Transport;

/// How instances get their memory.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Allocation {
    /// Pre-reserved slots (the default): a fresh instance costs microseconds.
    Pooling,
    /// Fresh allocations per instance (wasmtime's default).
    OnDemand,
}

/// Concurrent instances the pooling allocator provides.
pub const POOL_INSTANCES: u32 = 512;

/// How much of a pooled instance's written memory (and table) is reset in place rather than
/// unmapped when the slot is freed, where the kernel reports written pages (see
/// [`Runtime::engine_limited`]). A call writes the top of its 1 MiB stack, the data and a few
/// hundred KiB of heap.
pub const KEEP_RESIDENT: usize = 2 << 20;

/// How often the engine's epoch advances: the granularity of the compute-time budget.
pub const EPOCH_TICK: Duration = Duration::from_millis(10);

/// What one component instance may use.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SandboxLimits {
    /// The largest linear memory an instance may grow to, in bytes. An instance holds each
    /// response it receives (up to the transport's body cap, 8 MiB by default) and what it
    /// builds from it, so keep this several times the body cap; the cap stops a runaway
    /// allocation.
    pub memory_bytes: usize,
    /// The CPU time one exported call may use, not counting the host's transport. The
    /// component's calls take microseconds.
    pub compute_time: Duration,
}

impl Default for SandboxLimits {
    fn default() -> Self {
        Self {
            memory_bytes: 64 << 20,
            compute_time: Duration::from_secs(2),
        }
    }
}

/// A sandbox limit that stopped a call. The instance is discarded; the runtime keeps
/// serving new instances.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LimitExceeded {
    /// The call computed for longer than its budget.
    ComputeTime {
        /// The budget.
        limit: Duration,
    },
    /// The instance tried to grow its memory past the cap.
    Memory {
        /// The cap, in bytes.
        limit_bytes: usize,
        /// The size it asked for, in bytes.
        requested_bytes: usize,
    },
}

impl std::fmt::Display for LimitExceeded {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::ComputeTime { limit } => write!(
                f,
                "the component computed for longer than its {} ms budget and was stopped",
                limit.as_millis()
            ),
            Self::Memory {
                limit_bytes,
                requested_bytes,
            } => write!(
                f,
                "the component asked for {requested_bytes} bytes of memory, over its \
                 {limit_bytes}-byte cap, and was stopped"
            ),
        }
    }
}

impl std::error::Error for LimitExceeded {}

/// The component's path as built by `host-example/build.rs` (in the build tree: tests and
/// benchmarks read it; the CLI uses [`EMBEDDED_COMPONENT`]).
pub const BUILT_COMPONENT: &str = env!("CONNECTOR_COMPONENT_WASM");

/// The component's bytes, carried inside the binary, so that a copied or installed
/// `connector-host` needs no build tree. It is compiled on first use and then loaded from
/// the compile cache.
pub const EMBEDDED_COMPONENT: &[u8] = include_bytes!(env!("CONNECTOR_COMPONENT_WASM"));

/// The SHA-256 of [`EMBEDDED_COMPONENT`], in hex, computed by `build.rs`: the compile cache's
/// key, so that loading from the cache reads nothing of the embedded bytes.
pub const EMBEDDED_COMPONENT_SHA256: &str = env!("CONNECTOR_COMPONENT_SHA256");

/// The hostile test guest (`tests/guests/hostile`) as built by `host-example/build.rs`: a
/// component of the same world that loops, allocates or traps on request. For the sandbox
/// tests only.
pub const BUILT_HOSTILE_COMPONENT: &str = env!("CONNECTOR_HOSTILE_WASM");

/// Per-instance state: the random source, the transport and the signer. The component's
/// only WASI imports are the wall clock and the random source (no files, environment,
/// streams or sockets), so the host implements those two itself.
pub struct HostState {
    random: Randomness,
    transport: Box<dyn Transport>,
    /// Signs `private-key-jwt` assertions; [`NoSigner`] unless the session is given one.
    signer: Box<dyn Signer>,
    /// When the transport last received a response: the start of the window in which a
    /// rotated refresh token exists only in memory (see `connections`).
    last_response_at: Option<Instant>,
    /// The instance's limits, and what the current call has used of them.
    guard: Guard,
}

/// Enforces [`SandboxLimits`] for one instance and remembers which limit stopped it.
struct Guard {
    limits: SandboxLimits,
    /// The thread's CPU clock at the current call's first epoch tick (none before it). The
    /// CPU clock is a system call (about 0.7 µs, not in the vDSO), so calls that end before
    /// a tick (most: ticks are 10 ms apart) never read it; the budget misses at most the one
    /// tick before its start.
    call_started: Option<Duration>,
    /// CPU time the current call has spent in the transport.
    in_transport: Duration,
    /// The limit that stopped the instance, if one did.
    exceeded: Option<LimitExceeded>,
}

impl Guard {
    fn new(limits: SandboxLimits) -> Self {
        Self {
            limits,
            call_started: None,
            in_transport: Duration::ZERO,
            exceeded: None,
        }
    }

    /// Runs the host's `work` (sending, signing) outside the budget: its CPU time is
    /// subtracted once the budget is running.
    fn outside_budget<T>(&mut self, work: impl FnOnce() -> T) -> T {
        if self.call_started.is_none() {
            return work();
        }
        let started = thread_cpu_time();
        let result = work();
        self.in_transport += thread_cpu_time().saturating_sub(started);
        result
    }

    /// Called by the epoch callback: keep going while the call's compute time (CPU time
    /// minus transport time) is within budget.
    fn on_epoch(&mut self) -> wasmtime::Result<UpdateDeadline> {
        let now = thread_cpu_time();
        let Some(started) = self.call_started else {
            self.call_started = Some(now);
            return Ok(UpdateDeadline::Continue(1));
        };
        let computed = now
            .saturating_sub(started)
            .saturating_sub(self.in_transport);
        if computed < self.limits.compute_time {
            return Ok(UpdateDeadline::Continue(1));
        }
        let exceeded = LimitExceeded::ComputeTime {
            limit: self.limits.compute_time,
        };
        self.exceeded = Some(exceeded);
        Err(exceeded.into())
    }
}

impl ResourceLimiter for Guard {
    fn memory_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        if desired <= self.limits.memory_bytes {
            return Ok(true);
        }
        // An error (rather than `Ok(false)`) traps at the `memory.grow` itself: the guest
        // gets no chance to misreport the failure, and the host knows exactly why it stopped.
        let exceeded = LimitExceeded::Memory {
            limit_bytes: self.limits.memory_bytes,
            requested_bytes: desired,
        };
        self.exceeded = Some(exceeded);
        Err(exceeded.into())
    }

    fn table_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        // Tables hold function references; the component's own need a few hundred entries.
        Ok(desired <= 100_000)
    }
}

/// Where `wasi:random/random` gets its bytes.
enum Randomness {
    /// The operating system's generator.
    System(ring::rand::SystemRandom),
    /// A scripted generator (tests that need predictable `state` and PKCE values).
    Scripted(Box<dyn rand_core::Rng + Send>),
}

impl Randomness {
    fn fill(&mut self, bytes: &mut [u8]) -> wasmtime::Result<()> {
        match self {
            Self::System(system) => ring::rand::SecureRandom::fill(system, bytes)
                .map_err(|_| wasmtime::Error::msg("the system's random source failed")),
            Self::Scripted(rng) => {
                rng.fill_bytes(bytes);
                Ok(())
            }
        }
    }
}

/// The most bytes one `get-random-bytes` call may ask for; the component asks for 8 at a
/// time. A larger request traps instead of making the host allocate it.
const MAX_RANDOM_BYTES: u64 = 64 * 1024;

impl random::Host for HostState {
    fn get_random_bytes(&mut self, len: u64) -> wasmtime::Result<Vec<u8>> {
        if len > MAX_RANDOM_BYTES {
            wasmtime::bail!("asked for {len} random bytes, over the {MAX_RANDOM_BYTES}-byte cap");
        }
        let mut bytes = vec![0; len as usize];
        self.random.fill(&mut bytes)?;
        Ok(bytes)
    }

    fn get_random_u64(&mut self) -> wasmtime::Result<u64> {
        let mut bytes = [0; 8];
        self.random.fill(&mut bytes)?;
        Ok(u64::from_le_bytes(bytes))
    }
}

impl wall_clock::Host for HostState {
    fn now(&mut self) -> wall_clock::Datetime {
        let since_epoch = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default();
        wall_clock::Datetime {
            seconds: since_epoch.as_secs(),
            nanoseconds: since_epoch.subsec_nanos(),
        }
    }

    fn resolution(&mut self) -> wall_clock::Datetime {
        wall_clock::Datetime {
            seconds: 0,
            nanoseconds: 1,
        }
    }
}

impl types::Host for HostState {}

impl transport::Host for HostState {
    fn send(&mut self, request: HttpRequest) -> Result<HttpResponse, TransportError> {
        let transport = &self.transport;
        let response = self.guard.outside_budget(|| transport.send(request));
        self.last_response_at = Some(Instant::now());
        response
    }
}

impl signer::Host for HostState {
    fn key(
        &mut self,
        purpose: types::KeyPurpose,
        client_id: String,
    ) -> Result<signer::SigningKey, types::SigningError> {
        self.signer.key(purpose, &client_id)
    }

    fn sign(
        &mut self,
        purpose: types::KeyPurpose,
        client_id: String,
        signing_input: Vec<u8>,
    ) -> Result<Vec<u8>, types::SigningError> {
        // Signing is the host's work, like sending: it does not count against the budget
        // (an HSM or KMS may take a while).
        let signer = &self.signer;
        self.guard
            .outside_budget(|| signer.sign(purpose, &client_id, &signing_input))
    }
}

/// A failed call: the component answered with its typed error, a sandbox limit stopped it,
/// or the call itself failed (a trap, a broken component).
#[derive(Debug)]
pub enum CallError {
    /// The component's typed answer.
    Connector(types::Error),
    /// A sandbox limit stopped the call.
    Limit(LimitExceeded),
    /// The call did not complete: the component trapped (a panic, a bug) or could not be
    /// instantiated.
    Runtime(wasmtime::Error),
    /// A retryable failure (the server unavailable, the connection failed) persisted
    /// through the retries the policy allows; `last` is the final attempt's error.
    GaveUp {
        /// How many attempts were made.
        attempts: u32,
        /// How long was waited between them, in all.
        waited: Duration,
        /// Why no further attempt was made.
        reason: crate::retry::GaveUp,
        /// The last attempt's error.
        last: Box<CallError>,
    },
}

impl CallError {
    /// The error of the last attempt: `self`, or what a [`CallError::GaveUp`] wraps.
    pub fn last(&self) -> &CallError {
        match self {
            Self::GaveUp { last, .. } => last.last(),
            other => other,
        }
    }
}

impl std::fmt::Display for CallError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Connector(error) => crate::describe::error(error).fmt(f),
            Self::Limit(limit) => limit.fmt(f),
            Self::Runtime(error) => write!(f, "the component call failed: {error:#}"),
            Self::GaveUp {
                attempts,
                waited,
                reason,
                last,
            } => write!(
                f,
                "{last} (gave up after {attempts} attempts over {:.1} s: {reason})",
                waited.as_secs_f64()
            ),
        }
    }
}

impl std::error::Error for CallError {}

/// The engine, linker and pre-instantiated component, built once and shared by all calls.
pub struct Runtime {
    engine: Engine,
    pre: ConnectorPre<HostState>,
    exports: std::sync::Arc<ExportIndices>,
    hot: std::sync::Arc<HotFunctions>,
    limits: SandboxLimits,
    origin: crate::compile_cache::Origin,
    /// The presets connections may name; the built-in ones unless a front end set others.
    presets: Option<std::sync::Arc<crate::presets::Catalogue>>,
}

/// Declares, for each exported interface, where its functions are (found once per runtime)
/// and a session's lazily loaded handles to them.
///
/// wasmtime type-checks an interface's functions when it loads them into an instance; for
/// every interface at once that is most of a fresh instance's cost (about 25 of 32 µs), so a
/// session loads only the interfaces it calls, on first use.
macro_rules! exported_interfaces {
    ($($field:ident: $interface:ident),* $(,)?) => {
        /// Where each exported interface's functions are in the component.
        struct ExportIndices {
            $($field: exported::$interface::GuestIndices,)*
        }

        impl ExportIndices {
            fn new(pre: &wasmtime::component::InstancePre<HostState>) -> wasmtime::Result<Self> {
                Ok(Self {
                    $($field: exported::$interface::GuestIndices::new(pre)?,)*
                })
            }
        }

        /// The interfaces a session has loaded so far.
        #[derive(Default)]
        struct LoadedInterfaces {
            $($field: Option<exported::$interface::Guest>,)*
        }

        impl Session {
            $(
                /// The session's handle to this interface, loaded (and type-checked) on
                /// first use.
                fn $field(&mut self) -> Result<exported::$interface::Guest, CallError> {
                    if let Some(loaded) = &self.loaded.$field {
                        return Ok(loaded.clone());
                    }
                    let result = self.exports.$field.load(&mut self.store, &self.instance);
                    let loaded = settle(&self.store, result)?;
                    self.loaded.$field = Some(loaded.clone());
                    Ok(loaded)
                }
            )*
        }
    };
}

/// One exported function on a hot path, fetched by itself instead of with its interface.
struct HotFunction {
    /// Where it is in the component.
    index: ComponentExportIndex,
    /// Whether an instance of this runtime's component has type-checked it (against the one
    /// signature its accessor uses): later instances fetch it without checking again.
    checked: std::sync::atomic::AtomicBool,
}

/// The functions a fresh instance's first call needs on the hot paths: opening a connection,
/// beginning a sign-in, deciding whether tokens are due.
///
/// Loading an interface type-checks all of its functions against their Rust types (walking
/// records such as `connection-config` and the `error` variant), which was most of a fresh
/// instance's first call. These are fetched one function at a time, and each is checked once
/// per runtime, by the first instance that calls it: every instance of one component has
/// the same types.
struct HotFunctions {
    open: HotFunction,
    begin: HotFunction,
    needs_refresh: HotFunction,
}

impl HotFunctions {
    fn new(component: &Component) -> wasmtime::Result<Self> {
        let find = |interface: &str, function: &str| -> wasmtime::Result<HotFunction> {
            let interface_name = format!("oauth-connector:oauth2/{interface}@0.4.0");
            let interface = component
                .get_export_index(None, &interface_name)
                .with_context(|| format!("the component exports no `{interface_name}`"))?;
            let index = component
                .get_export_index(Some(&interface), function)
                .with_context(|| format!("`{interface_name}` has no `{function}`"))?;
            Ok(HotFunction {
                index,
                checked: std::sync::atomic::AtomicBool::new(false),
            })
        };
        Ok(Self {
            open: find("connections", "[static]connection.open")?,
            begin: find("authorization-code", "begin")?,
            needs_refresh: find("tokens", "needs-refresh")?,
        })
    }
}

/// `connections.connection.open`'s signature.
type OpenFunction<'a> =
    TypedFunc<(&'a types::ConnectionConfig,), (Result<ResourceAny, types::Error>,)>;

/// `authorization-code.begin`'s signature.
type BeginFunction = TypedFunc<(ResourceAny,), (Result<AuthorizationRequest, types::Error>,)>;

/// `tokens.needs-refresh`'s signature.
type NeedsRefreshFunction<'a> = TypedFunc<(&'a types::TokenSet, Option<u64>), (bool,)>;

exported_interfaces! {
    connections: connections,
    authorization_code: authorization_code,
    client_credentials: client_credentials,
    device_authorization: device_authorization,
    tokens: tokens,
    api: api,
    providers: providers,
    token_exchange: token_exchange,
    jwt_bearer: jwt_bearer,
    registration: registration,
}

impl Runtime {
    /// Loads the component built by `build.rs`.
    pub fn load_built() -> wasmtime::Result<Self> {
        Self::load(Path::new(BUILT_COMPONENT))
    }

    /// Compiles the component at `path` and pre-instantiates it.
    pub fn load(path: &Path) -> wasmtime::Result<Self> {
        Self::load_with(path, Allocation::Pooling)
    }

    /// Loads the component at `path`, compiling it only when `cache` holds no compiled form
    /// for exactly these bytes and this engine (see [`crate::compile_cache`]); `None`: always
    /// compile.
    pub fn load_cached(path: &Path, cache: Option<&Path>) -> wasmtime::Result<Self> {
        let wasm = std::fs::read(path)
            .with_context(|| format!("reading the component {}", path.display()))?;
        Self::load_bytes_cached(&wasm, cache)
            .with_context(|| format!("loading the component {}", path.display()))
    }

    /// [`Runtime::load_cached`] for a component given as bytes.
    pub fn load_bytes_cached(wasm: &[u8], cache: Option<&Path>) -> wasmtime::Result<Self> {
        let digest = ring::digest::digest(&ring::digest::SHA256, wasm);
        Self::load_digested_cached(wasm, digest.as_ref(), cache)
    }

    /// [`Runtime::load_cached`] for the component built into this binary.
    pub fn load_embedded_cached(cache: Option<&Path>) -> wasmtime::Result<Self> {
        let digest = (0..EMBEDDED_COMPONENT_SHA256.len())
            .step_by(2)
            .map(|at| u8::from_str_radix(&EMBEDDED_COMPONENT_SHA256[at..at + 2], 16))
            .collect::<Result<Vec<u8>, _>>()
            .context("build.rs wrote a malformed component digest")?;
        Self::load_digested_cached(EMBEDDED_COMPONENT, &digest, cache)
    }

    fn load_digested_cached(
        wasm: &[u8],
        wasm_sha256: &[u8],
        cache: Option<&Path>,
    ) -> wasmtime::Result<Self> {
        let limits = SandboxLimits::default();
        let engine = Self::engine_limited(Allocation::Pooling, &limits)?;
        let (component, origin) =
            crate::compile_cache::load_digested(&engine, wasm, wasm_sha256, cache)?;
        let mut runtime = Self::from_component_limited(engine, &component, limits)?;
        runtime.origin = origin;
        Ok(runtime)
    }

    /// Whether the component was compiled by this process or loaded from the compile cache.
    pub fn origin(&self) -> crate::compile_cache::Origin {
        self.origin
    }

    /// Compiles the component at `path` for an engine with `allocation`.
    pub fn load_with(path: &Path, allocation: Allocation) -> wasmtime::Result<Self> {
        Self::load_limited(path, allocation, SandboxLimits::default())
    }

    /// Compiles the component at `path` for an engine with `allocation`; every instance runs
    /// under `limits`.
    pub fn load_limited(
        path: &Path,
        allocation: Allocation,
        limits: SandboxLimits,
    ) -> wasmtime::Result<Self> {
        let engine = Self::engine_limited(allocation, &limits)?;
        let component = Component::from_file(&engine, path)
            .with_context(|| format!("compiling the component {}", path.display()))?;
        Self::from_component_limited(engine, &component, limits)
    }

    /// An engine with the pooling allocator: instances are created from pre-reserved slots,
    /// which makes a fresh instance per call cost microseconds.
    pub fn engine() -> wasmtime::Result<Engine> {
        Self::engine_with(Allocation::Pooling)
    }

    /// An engine with the given instance allocation (benchmarks compare the two).
    pub fn engine_with(allocation: Allocation) -> wasmtime::Result<Engine> {
        Self::engine_limited(allocation, &SandboxLimits::default())
    }

    /// An engine with the given instance allocation whose pooled memories are sized for
    /// `limits`, with epoch interruption on and a thread advancing the epoch every
    /// [`EPOCH_TICK`] for as long as the engine lives.
    pub fn engine_limited(
        allocation: Allocation,
        limits: &SandboxLimits,
    ) -> wasmtime::Result<Engine> {
        let mut config = Config::new();
        config.wasm_component_model(true);
        config.epoch_interruption(true);
        let engine = match allocation {
            Allocation::OnDemand => Engine::new(&config),
            Allocation::Pooling => {
                let mut pooling = PoolingAllocationConfig::default();
                pooling.total_component_instances(POOL_INSTANCES);
                pooling.total_core_instances(POOL_INSTANCES);
                pooling.total_memories(POOL_INSTANCES);
                pooling.total_tables(POOL_INSTANCES);
                pooling.max_memory_size(limits.memory_bytes);
                // Where the kernel can say which pages an instance wrote (Linux 6.7+,
                // `PAGEMAP_SCAN`), a slot's written pages are reset in place, up to
                // `KEEP_RESIDENT`, instead of being unmapped: the next instance in the slot
                // takes no page faults and the reset sends no TLB shootdowns. Either way the
                // slot is back to the component's initial memory before it is reused.
                // Without the ioctl, keeping pages resident would mean clearing that many
                // bytes on every reset, so it is only asked for with it.
                let mut resident = pooling.clone();
                resident.pagemap_scan(wasmtime::Enabled::Yes);
                resident.linear_memory_keep_resident(KEEP_RESIDENT);
                resident.table_keep_resident(KEEP_RESIDENT);
                let mut with_scan = config.clone();
                with_scan.allocation_strategy(InstanceAllocationStrategy::Pooling(resident));
                Engine::new(&with_scan).or_else(|_| {
                    config.allocation_strategy(InstanceAllocationStrategy::Pooling(pooling));
                    Engine::new(&config)
                })
            }
        }
        .context("creating the wasmtime engine")?;
        start_epoch_ticker(&engine).context("starting the epoch thread")?;
        Ok(engine)
    }

    /// Links the host's imports (transport, signer, wall clock, random), then pre-instantiates `component` (default limits).
    pub fn from_component(engine: Engine, component: &Component) -> wasmtime::Result<Self> {
        Self::from_component_limited(engine, component, SandboxLimits::default())
    }

    /// Links the host's imports (transport, signer, wall clock, random), then pre-instantiates `component`; every instance runs
    /// under `limits`. `engine` must come from [`Runtime::engine_limited`] (or its
    /// shorthands): the compute budget needs its epoch thread.
    pub fn from_component_limited(
        engine: Engine,
        component: &Component,
        limits: SandboxLimits,
    ) -> wasmtime::Result<Self> {
        // Exactly the world's imports: the transport, the signer, the wall clock and the
        // random source.
        let mut linker = Linker::<HostState>::new(&engine);
        Connector::add_to_linker::<_, HasSelf<_>>(&mut linker, |state| state)
            .context("linking the host's imports")?;
        let instance_pre = linker
            .instantiate_pre(component)
            .context("pre-instantiating the component")?;
        let exports =
            ExportIndices::new(&instance_pre).context("checking the component's exports")?;
        let hot = HotFunctions::new(component).context("checking the component's exports")?;
        let pre = ConnectorPre::new(instance_pre).context("checking the component's exports")?;
        Ok(Self {
            engine,
            pre,
            exports: std::sync::Arc::new(exports),
            hot: std::sync::Arc::new(hot),
            limits,
            origin: crate::compile_cache::Origin::Compiled,
            presets: None,
        })
    }

    /// The presets connections configured through this runtime may name
    /// (`configure::ProfileSource::Preset`): the built-in catalogue unless
    /// [`Runtime::set_presets`] gave another. (Presets are data beside the component since
    /// contract 0.4.0, and every preset's profile is parsed by it.)
    pub fn presets(&self) -> &crate::presets::Catalogue {
        self.presets
            .as_deref()
            .unwrap_or_else(|| crate::presets::Catalogue::built_in())
    }

    /// Makes `catalogue` (built-in and local presets, from
    /// [`Catalogue::with_local`](crate::presets::Catalogue::with_local)) the one this
    /// runtime's connections name presets from.
    pub fn set_presets(&mut self, catalogue: crate::presets::Catalogue) {
        self.presets = Some(std::sync::Arc::new(catalogue));
    }

    /// The engine, for precompiling or sharing.
    pub fn engine_ref(&self) -> &Engine {
        &self.engine
    }

    /// The names of the component's imports (`wasi:clocks/wall-clock@0.2.0`, ...): what
    /// every embedder must provide.
    pub fn imports(&self) -> Vec<String> {
        let component = self.pre.instance_pre().component();
        component
            .component_type()
            .imports(&self.engine)
            .map(|(name, _)| name.to_owned())
            .collect()
    }

    /// The limits every instance runs under.
    pub fn limits(&self) -> SandboxLimits {
        self.limits
    }

    /// A fresh instance whose transport is `transport`.
    pub fn instantiate(&self, transport: impl Transport + 'static) -> Result<Session, CallError> {
        self.instantiate_with(
            transport,
            Randomness::System(ring::rand::SystemRandom::new()),
        )
    }

    /// A fresh instance whose `wasi:random/random` is `random` instead of the operating
    /// system's generator. For tests that need predictable `state` and PKCE values (RFC
    /// vectors); never for real flows.
    pub fn instantiate_with_random(
        &self,
        transport: impl Transport + 'static,
        random: impl rand_core::Rng + Send + 'static,
    ) -> Result<Session, CallError> {
        self.instantiate_with(transport, Randomness::Scripted(Box::new(random)))
    }

    fn instantiate_with(
        &self,
        transport: impl Transport + 'static,
        random: Randomness,
    ) -> Result<Session, CallError> {
        let state = HostState {
            random,
            transport: Box::new(transport),
            signer: Box::new(NoSigner),
            last_response_at: None,
            guard: Guard::new(self.limits),
        };
        let mut store = Store::new(&self.engine, state);
        store.limiter(|state| &mut state.guard);
        store.epoch_deadline_callback(|mut context| context.data_mut().guard.on_epoch());
        // Instantiation runs the component's start code: it gets the budget too.
        store.set_epoch_deadline(1);
        let result = self.pre.instance_pre().instantiate(&mut store);
        let instance = settle(&store, result)?;
        Ok(Session {
            store,
            instance,
            exports: self.exports.clone(),
            hot: self.hot.clone(),
            loaded: LoadedInterfaces::default(),
            opened: None,
        })
    }
}

/// The CPU time the calling thread has used: time it spends descheduled or blocked (on a
/// socket, a lock) does not count. The clock of the compute budget (tests use it too).
#[cfg(unix)]
#[allow(unsafe_code)] // one libc call with a valid out-pointer
pub fn thread_cpu_time() -> Duration {
    let mut now = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `now` is a valid, writable timespec; the clock id is a constant.
    let status = unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut now) };
    if status != 0 {
        return wall_clock();
    }
    Duration::new(now.tv_sec as u64, now.tv_nsec as u32)
}

/// Elsewhere, wall time since the process's first call.
#[cfg(not(unix))]
pub fn thread_cpu_time() -> Duration {
    wall_clock()
}

/// Time since the first call, a monotonic fallback for the CPU clock.
fn wall_clock() -> Duration {
    static ORIGIN: std::sync::OnceLock<Instant> = std::sync::OnceLock::new();
    ORIGIN.get_or_init(Instant::now).elapsed()
}

/// Advances `engine`'s epoch every [`EPOCH_TICK`] until the engine is dropped.
fn start_epoch_ticker(engine: &Engine) -> std::io::Result<()> {
    let engine = engine.weak();
    std::thread::Builder::new()
        .name("wasm-epoch".to_owned())
        .spawn(move || {
            loop {
                std::thread::sleep(EPOCH_TICK);
                match engine.upgrade() {
                    Some(engine) => engine.increment_epoch(),
                    None => return,
                }
            }
        })
        .map(drop)
}

/// `result` of a call into `store`'s instance, with a failure caused by a sandbox limit
/// reported as that limit.
fn settle<T>(store: &Store<HostState>, result: wasmtime::Result<T>) -> Result<T, CallError> {
    result.map_err(|error| match store.data().guard.exceeded {
        Some(limit) => {
            tracing::warn!(%limit, "sandbox limit stopped a component call");
            CallError::Limit(limit)
        }
        None => {
            tracing::warn!(error = %format!("{error:#}"), "component call trapped");
            CallError::Runtime(error)
        }
    })
}

/// One instance of the component, for one or a few calls.
///
/// The calls take a configuration; the session opens it as the component's `connection`
/// resource on first use and lends that handle to every later call with an equal
/// configuration, so the record crosses the boundary once per instance, not per call.
pub struct Session {
    store: Store<HostState>,
    instance: wasmtime::component::Instance,
    exports: std::sync::Arc<ExportIndices>,
    hot: std::sync::Arc<HotFunctions>,
    loaded: LoadedInterfaces,
    /// The connection opened last, with the configuration it was opened from.
    opened: Option<(types::ConnectionConfig, ResourceAny)>,
}

/// The result of a call whose answer is the component's typed result.
fn flatten<T>(
    store: &Store<HostState>,
    result: wasmtime::Result<Result<T, types::Error>>,
) -> Result<T, CallError> {
    settle(store, result)?.map_err(CallError::Connector)
}

impl Session {
    /// The component's `connection` for `config`: the one already open when it was opened
    /// from an equal configuration, else a new one (the previous one is dropped).
    fn connection(&mut self, config: &types::ConnectionConfig) -> Result<ResourceAny, CallError> {
        if let Some((opened_from, handle)) = &self.opened
            && opened_from == config
        {
            return Ok(*handle);
        }
        if let Some((_, previous)) = self.opened.take() {
            self.arm();
            let result = previous.resource_drop(&mut self.store);
            settle(&self.store, result)?;
        }
        self.arm();
        let open = self.open_function()?;
        let result = open
            .call(&mut self.store, (config,))
            .map(|(opened,)| opened);
        let handle = flatten(&self.store, result)?;
        self.opened = Some((config.clone(), handle));
        Ok(handle)
    }

    /// `connections.connection.open`, as a typed function.
    fn open_function<'a>(&mut self) -> Result<OpenFunction<'a>, CallError> {
        let hot = self.hot.clone();
        self.hot_function(&hot.open)
    }

    /// `authorization-code.begin`, as a typed function.
    fn begin_function(&mut self) -> Result<BeginFunction, CallError> {
        let hot = self.hot.clone();
        self.hot_function(&hot.begin)
    }

    /// `tokens.needs-refresh`, as a typed function.
    fn needs_refresh_function<'a>(&mut self) -> Result<NeedsRefreshFunction<'a>, CallError> {
        let hot = self.hot.clone();
        self.hot_function(&hot.needs_refresh)
    }

    /// `function` of this instance, typed as `P -> R`: type-checked by the first instance
    /// of the runtime that asks for it, fetched unchecked by every later one. Each
    /// [`HotFunction`] is asked for through one accessor above, with one signature.
    #[allow(unsafe_code)] // a typed function whose type an instance of the same component checked
    fn hot_function<P, R>(&mut self, function: &HotFunction) -> Result<TypedFunc<P, R>, CallError>
    where
        P: ComponentNamedList + Lower,
        R: ComponentNamedList + Lift,
    {
        use std::sync::atomic::Ordering;
        if function.checked.load(Ordering::Acquire) {
            let func = self
                .instance
                .get_func(&mut self.store, function.index)
                .ok_or_else(|| {
                    CallError::Runtime(wasmtime::Error::msg(
                        "the component lost an export it had when it was checked",
                    ))
                })?;
            // SAFETY: `checked` is set only after `get_typed_func::<P, R>` succeeded for
            // this function on an instance of the same component (this runtime's), and the
            // function is only ever asked for with that one signature (its accessor). An
            // instance's export types are the component's, so the check holds here too;
            // wasmtime's generated bindings rely on the same (`TypedFunc::new_unchecked`
            // in every call after their load-time check).
            return Ok(unsafe { TypedFunc::new_unchecked(func) });
        }
        let result = self
            .instance
            .get_typed_func::<P, R>(&mut self.store, function.index);
        let typed = settle(&self.store, result)?;
        function.checked.store(true, Ordering::Release);
        Ok(typed)
    }

    /// Starts the compute budget of the next call.
    fn arm(&mut self) {
        let guard = &mut self.store.data_mut().guard;
        guard.call_started = None;
        guard.in_transport = Duration::ZERO;
        self.store.set_epoch_deadline(1);
    }

    /// `authorization-code.begin`.
    pub fn begin(
        &mut self,
        config: &types::ConnectionConfig,
    ) -> Result<AuthorizationRequest, CallError> {
        let connection = self.connection(config)?;
        self.arm();
        let begin = self.begin_function()?;
        let result = begin
            .call(&mut self.store, (connection,))
            .map(|(begun,)| begun);
        flatten(&self.store, result)
    }

    /// `authorization-code.check`.
    pub fn check(&mut self, config: &types::ConnectionConfig) -> Result<(), CallError> {
        let connection = self.connection(config)?;
        self.arm();
        let exports = self.authorization_code()?;
        let result = exports.call_check(&mut self.store, connection);
        flatten(&self.store, result)
    }

    /// `authorization-code.complete`.
    pub fn complete(
        &mut self,
        config: &types::ConnectionConfig,
        pending: &types::PendingAuthorization,
        callback_url: &str,
    ) -> Result<types::TokenSet, CallError> {
        let connection = self.connection(config)?;
        self.arm();
        let exports = self.authorization_code()?;
        let result = exports.call_complete(&mut self.store, connection, pending, callback_url);
        flatten(&self.store, result)
    }

    /// `authorization-code.state-from-callback`.
    pub fn state_from_callback(&mut self, callback_url: &str) -> Result<String, CallError> {
        self.arm();
        let exports = self.authorization_code()?;
        let result = exports.call_state_from_callback(&mut self.store, callback_url);
        flatten(&self.store, result)
    }

    /// `client-credentials.fetch`.
    pub fn fetch_client_credentials(
        &mut self,
        config: &types::ConnectionConfig,
    ) -> Result<types::TokenSet, CallError> {
        let connection = self.connection(config)?;
        self.arm();
        let exports = self.client_credentials()?;
        let result = exports.call_fetch(&mut self.store, connection);
        flatten(&self.store, result)
    }

    /// `device-authorization.begin`.
    pub fn begin_device(
        &mut self,
        config: &types::ConnectionConfig,
    ) -> Result<DeviceAuthorization, CallError> {
        let connection = self.connection(config)?;
        self.arm();
        let exports = self.device_authorization()?;
        let result = exports.call_begin(&mut self.store, connection);
        flatten(&self.store, result)
    }

    /// `device-authorization.poll`.
    pub fn poll_device(
        &mut self,
        config: &types::ConnectionConfig,
        device: &DeviceAuthorization,
    ) -> Result<DevicePoll, CallError> {
        let connection = self.connection(config)?;
        self.arm();
        let exports = self.device_authorization()?;
        let result = exports.call_poll(&mut self.store, connection, device);
        flatten(&self.store, result)
    }

    /// `tokens.needs-refresh`.
    pub fn needs_refresh(
        &mut self,
        tokens: &types::TokenSet,
        margin_seconds: Option<u64>,
    ) -> Result<bool, CallError> {
        self.arm();
        let needs_refresh = self.needs_refresh_function()?;
        let result = needs_refresh
            .call(&mut self.store, (tokens, margin_seconds))
            .map(|(due,)| due);
        settle(&self.store, result)
    }

    /// `tokens.refresh`.
    pub fn refresh(
        &mut self,
        config: &types::ConnectionConfig,
        tokens: &types::TokenSet,
    ) -> Result<types::TokenSet, CallError> {
        let connection = self.connection(config)?;
        self.arm();
        let exports = self.tokens()?;
        let result = exports.call_refresh(&mut self.store, connection, tokens);
        flatten(&self.store, result)
    }

    /// `tokens.revoke`.
    pub fn revoke(
        &mut self,
        config: &types::ConnectionConfig,
        tokens: &types::TokenSet,
    ) -> Result<(), CallError> {
        let connection = self.connection(config)?;
        self.arm();
        let exports = self.tokens()?;
        let result = exports.call_revoke(&mut self.store, connection, tokens);
        flatten(&self.store, result)
    }

    /// `tokens.introspect`.
    pub fn introspect(
        &mut self,
        config: &types::ConnectionConfig,
        token: &str,
        token_type_hint: Option<&str>,
    ) -> Result<Introspection, CallError> {
        let connection = self.connection(config)?;
        self.arm();
        let exports = self.tokens()?;
        let result = exports.call_introspect(&mut self.store, connection, token, token_type_hint);
        flatten(&self.store, result)
    }

    /// `api.call`.
    pub fn call_api(
        &mut self,
        config: &types::ConnectionConfig,
        tokens: &types::TokenSet,
        request: &HttpRequest,
    ) -> Result<ApiResponse, CallError> {
        let connection = self.connection(config)?;
        self.arm();
        let exports = self.api()?;
        let result = exports.call_call(&mut self.store, connection, tokens, request);
        flatten(&self.store, result)
    }

    /// `token-exchange.exchange` (RFC 8693).
    pub fn exchange_token(
        &mut self,
        config: &types::ConnectionConfig,
        request: &ExchangeRequest,
    ) -> Result<ExchangedToken, CallError> {
        let connection = self.connection(config)?;
        self.arm();
        let exports = self.token_exchange()?;
        let result = exports.call_exchange(&mut self.store, connection, request);
        flatten(&self.store, result)
    }

    /// `jwt-bearer.fetch` (RFC 7523 §2.1): the assertion is signed by this instance's signer
    /// (purpose `authorization-grant`).
    pub fn fetch_jwt_bearer(
        &mut self,
        config: &types::ConnectionConfig,
        claims: &AssertionClaims,
    ) -> Result<types::TokenSet, CallError> {
        let connection = self.connection(config)?;
        self.arm();
        let exports = self.jwt_bearer()?;
        let result = exports.call_fetch(&mut self.store, connection, claims);
        flatten(&self.store, result)
    }

    /// `registration.discover-resource` (RFC 9728; the transport must allow the resource
    /// URL's origin).
    pub fn discover_resource(
        &mut self,
        resource_url: &str,
    ) -> Result<ProtectedResource, CallError> {
        self.arm();
        let exports = self.registration()?;
        let result = exports.call_discover_resource(&mut self.store, resource_url);
        flatten(&self.store, result)
    }

    /// `registration.register` (RFC 7591; the transport must allow the registration
    /// endpoint's origin).
    pub fn register_client(
        &mut self,
        registration_url: &str,
        metadata: &ClientMetadata,
        initial_access_token: Option<&str>,
    ) -> Result<RegisteredClient, CallError> {
        self.arm();
        let exports = self.registration()?;
        let result = exports.call_register(
            &mut self.store,
            registration_url,
            metadata,
            initial_access_token,
        );
        flatten(&self.store, result)
    }

    /// `connection.resolved-profile` of `config`'s connection.
    pub fn resolve_profile(
        &mut self,
        config: &types::ConnectionConfig,
    ) -> Result<types::ProviderProfile, CallError> {
        let connection = self.connection(config)?;
        self.arm();
        let exports = self.connections()?;
        let result = exports
            .connection()
            .call_resolved_profile(&mut self.store, connection);
        settle(&self.store, result)
    }

    /// `providers.discover` (the transport must allow the issuer's origin).
    pub fn discover(&mut self, issuer: &str) -> Result<types::ProviderProfile, CallError> {
        self.arm();
        let exports = self.providers()?;
        let result = exports.call_discover(&mut self.store, issuer);
        flatten(&self.store, result)
    }

    /// `providers.parse-profile`.
    pub fn parse_profile(&mut self, json: &str) -> Result<types::ProviderProfile, CallError> {
        self.arm();
        let exports = self.providers()?;
        let result = exports.call_parse_profile(&mut self.store, json);
        flatten(&self.store, result)
    }

    /// `providers.validate-profile`.
    pub fn validate_profile(&mut self, profile: &types::ProviderProfile) -> Result<(), CallError> {
        self.arm();
        let exports = self.providers()?;
        let result = exports.call_validate_profile(&mut self.store, profile);
        flatten(&self.store, result)
    }

    /// Signs this instance's JWTs with `signer`: `private-key-jwt` client assertions, DPoP
    /// proofs and JWT bearer grant assertions, by [`types::KeyPurpose`] (instances start
    /// with [`NoSigner`]).
    pub fn set_signer(&mut self, signer: impl Signer + 'static) {
        self.store.data_mut().signer = Box::new(signer);
    }

    /// When this instance's transport last received a response.
    pub fn last_response_at(&self) -> Option<Instant> {
        self.store.data().last_response_at
    }

    /// Sends a request through this instance's transport, as the component would. For
    /// tests and diagnostics of the host policy.
    pub fn transport_send(&mut self, request: HttpRequest) -> Result<HttpResponse, TransportError> {
        self.store.data().transport.send(request)
    }
}

//! The wasmtime side: one engine and one pre-instantiated component per process, and a
//! fresh, sandboxed instance per call.

use std::path::Path;

use wasmtime::component::{Component, HasSelf, Linker, ResourceTable};
use wasmtime::error::Context as _;
use wasmtime::{Config, Engine, InstanceAllocationStrategy, PoolingAllocationConfig, Store};
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};

use crate::bindings::exports::oauth_connector::oauth2::api::ApiResponse;
use crate::bindings::exports::oauth_connector::oauth2::device_authorization::{
    DeviceAuthorization, DevicePoll,
};
use crate::bindings::exports::oauth_connector::oauth2::providers::PresetInfo;
use crate::bindings::exports::oauth_connector::oauth2::tokens::Introspection;
use crate::bindings::oauth_connector::oauth2::transport;
use crate::bindings::types::{self, HttpRequest, HttpResponse, TransportError};
use crate::bindings::{AuthorizationRequest, Connector, ConnectorPre};
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

/// The component's path as built by `host-example/build.rs`.
pub const BUILT_COMPONENT: &str = env!("CONNECTOR_COMPONENT_WASM");

/// Per-instance state: an empty WASI context (no files, environment, arguments or sockets:
/// only clocks and random are useful to the component) and the transport.
pub struct HostState {
    wasi: WasiCtx,
    table: ResourceTable,
    transport: Box<dyn Transport>,
    /// When the transport last received a response: the start of the window in which a
    /// rotated refresh token exists only in memory (see `connections`).
    last_response_at: Option<std::time::Instant>,
}

impl WasiView for HostState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

impl types::Host for HostState {}

impl transport::Host for HostState {
    fn send(&mut self, request: HttpRequest) -> Result<HttpResponse, TransportError> {
        let response = self.transport.send(request);
        self.last_response_at = Some(std::time::Instant::now());
        response
    }
}

/// A failed call: either the component answered with its typed error, or the call itself
/// failed (a trap, a resource limit, a broken component).
#[derive(Debug)]
pub enum CallError {
    /// The component's typed answer.
    Connector(types::Error),
    /// The call did not complete.
    Runtime(wasmtime::Error),
}

impl std::fmt::Display for CallError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Connector(error) => crate::describe::error(error).fmt(f),
            Self::Runtime(error) => write!(f, "the component call failed: {error:#}"),
        }
    }
}

impl std::error::Error for CallError {}

/// The engine, linker and pre-instantiated component, built once and shared by all calls.
pub struct Runtime {
    engine: Engine,
    pre: ConnectorPre<HostState>,
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

    /// Compiles the component at `path` for an engine with `allocation`.
    pub fn load_with(path: &Path, allocation: Allocation) -> wasmtime::Result<Self> {
        let engine = Self::engine_with(allocation)?;
        let component = Component::from_file(&engine, path)
            .with_context(|| format!("compiling the component {}", path.display()))?;
        Self::from_component(engine, &component)
    }

    /// An engine with the pooling allocator: instances are created from pre-reserved slots,
    /// which makes a fresh instance per call cost microseconds.
    pub fn engine() -> wasmtime::Result<Engine> {
        Self::engine_with(Allocation::Pooling)
    }

    /// An engine with the given instance allocation (benchmarks compare the two).
    pub fn engine_with(allocation: Allocation) -> wasmtime::Result<Engine> {
        let mut config = Config::new();
        config.wasm_component_model(true);
        if allocation == Allocation::OnDemand {
            return Engine::new(&config).context("creating the wasmtime engine");
        }
        let mut pooling = PoolingAllocationConfig::default();
        pooling.total_component_instances(POOL_INSTANCES);
        pooling.total_core_instances(POOL_INSTANCES);
        pooling.total_memories(POOL_INSTANCES);
        pooling.total_tables(POOL_INSTANCES);
        pooling.max_memory_size(64 << 20);
        config.allocation_strategy(InstanceAllocationStrategy::Pooling(pooling));
        Engine::new(&config).context("creating the wasmtime engine")
    }

    /// Links WASI and the transport, then pre-instantiates `component`.
    pub fn from_component(engine: Engine, component: &Component) -> wasmtime::Result<Self> {
        let mut linker = Linker::<HostState>::new(&engine);
        wasmtime_wasi::p2::add_to_linker_sync(&mut linker).context("linking WASI")?;
        Connector::add_to_linker::<_, HasSelf<_>>(&mut linker, |state| state)
            .context("linking the transport")?;
        let instance_pre = linker
            .instantiate_pre(component)
            .context("pre-instantiating the component")?;
        let pre = ConnectorPre::new(instance_pre).context("checking the component's exports")?;
        Ok(Self { engine, pre })
    }

    /// The engine, for precompiling or sharing.
    pub fn engine_ref(&self) -> &Engine {
        &self.engine
    }

    /// A fresh instance whose transport is `transport`.
    pub fn instantiate(&self, transport: impl Transport + 'static) -> Result<Session, CallError> {
        self.instantiate_with(transport, WasiCtx::builder().build())
    }

    /// A fresh instance whose `wasi:random/random` is `random` instead of the operating
    /// system's generator. For tests that need predictable `state` and PKCE values (RFC
    /// vectors); never for real flows.
    pub fn instantiate_with_random(
        &self,
        transport: impl Transport + 'static,
        random: impl rand_core::Rng + Send + 'static,
    ) -> Result<Session, CallError> {
        self.instantiate_with(transport, WasiCtx::builder().secure_random(random).build())
    }

    fn instantiate_with(
        &self,
        transport: impl Transport + 'static,
        wasi: WasiCtx,
    ) -> Result<Session, CallError> {
        let state = HostState {
            wasi,
            table: ResourceTable::new(),
            transport: Box::new(transport),
            last_response_at: None,
        };
        let mut store = Store::new(&self.engine, state);
        let connector = self
            .pre
            .instantiate(&mut store)
            .map_err(CallError::Runtime)?;
        Ok(Session { store, connector })
    }
}

/// One instance of the component, for one or a few calls.
pub struct Session {
    store: Store<HostState>,
    connector: Connector,
}

fn flatten<T>(result: wasmtime::Result<Result<T, types::Error>>) -> Result<T, CallError> {
    result
        .map_err(CallError::Runtime)?
        .map_err(CallError::Connector)
}

impl Session {
    /// `authorization-code.begin`.
    pub fn begin(
        &mut self,
        config: &types::ConnectionConfig,
    ) -> Result<AuthorizationRequest, CallError> {
        let exports = self.connector.oauth_connector_oauth2_authorization_code();
        flatten(exports.call_begin(&mut self.store, config))
    }

    /// `authorization-code.complete`.
    pub fn complete(
        &mut self,
        config: &types::ConnectionConfig,
        pending: &types::PendingAuthorization,
        callback_url: &str,
    ) -> Result<types::TokenSet, CallError> {
        let exports = self.connector.oauth_connector_oauth2_authorization_code();
        flatten(exports.call_complete(&mut self.store, config, pending, callback_url))
    }

    /// `authorization-code.state-from-callback`.
    pub fn state_from_callback(&mut self, callback_url: &str) -> Result<String, CallError> {
        let exports = self.connector.oauth_connector_oauth2_authorization_code();
        flatten(exports.call_state_from_callback(&mut self.store, callback_url))
    }

    /// `client-credentials.fetch`.
    pub fn fetch_client_credentials(
        &mut self,
        config: &types::ConnectionConfig,
    ) -> Result<types::TokenSet, CallError> {
        let exports = self.connector.oauth_connector_oauth2_client_credentials();
        flatten(exports.call_fetch(&mut self.store, config))
    }

    /// `device-authorization.begin`.
    pub fn begin_device(
        &mut self,
        config: &types::ConnectionConfig,
    ) -> Result<DeviceAuthorization, CallError> {
        let exports = self.connector.oauth_connector_oauth2_device_authorization();
        flatten(exports.call_begin(&mut self.store, config))
    }

    /// `device-authorization.poll`.
    pub fn poll_device(
        &mut self,
        config: &types::ConnectionConfig,
        device: &DeviceAuthorization,
    ) -> Result<DevicePoll, CallError> {
        let exports = self.connector.oauth_connector_oauth2_device_authorization();
        flatten(exports.call_poll(&mut self.store, config, device))
    }

    /// `tokens.needs-refresh`.
    pub fn needs_refresh(
        &mut self,
        tokens: &types::TokenSet,
        margin_seconds: Option<u64>,
    ) -> Result<bool, CallError> {
        let exports = self.connector.oauth_connector_oauth2_tokens();
        exports
            .call_needs_refresh(&mut self.store, tokens, margin_seconds)
            .map_err(CallError::Runtime)
    }

    /// `tokens.refresh`.
    pub fn refresh(
        &mut self,
        config: &types::ConnectionConfig,
        tokens: &types::TokenSet,
    ) -> Result<types::TokenSet, CallError> {
        let exports = self.connector.oauth_connector_oauth2_tokens();
        flatten(exports.call_refresh(&mut self.store, config, tokens))
    }

    /// `tokens.revoke`.
    pub fn revoke(
        &mut self,
        config: &types::ConnectionConfig,
        tokens: &types::TokenSet,
    ) -> Result<(), CallError> {
        let exports = self.connector.oauth_connector_oauth2_tokens();
        flatten(exports.call_revoke(&mut self.store, config, tokens))
    }

    /// `tokens.introspect`.
    pub fn introspect(
        &mut self,
        config: &types::ConnectionConfig,
        token: &str,
        token_type_hint: Option<&str>,
    ) -> Result<Introspection, CallError> {
        let exports = self.connector.oauth_connector_oauth2_tokens();
        flatten(exports.call_introspect(&mut self.store, config, token, token_type_hint))
    }

    /// `api.call`.
    pub fn call_api(
        &mut self,
        config: &types::ConnectionConfig,
        tokens: &types::TokenSet,
        request: &HttpRequest,
    ) -> Result<ApiResponse, CallError> {
        let exports = self.connector.oauth_connector_oauth2_api();
        flatten(exports.call_call(&mut self.store, config, tokens, request))
    }

    /// `providers.resolve-profile`.
    pub fn resolve_profile(
        &mut self,
        config: &types::ConnectionConfig,
    ) -> Result<types::ProviderProfile, CallError> {
        let exports = self.connector.oauth_connector_oauth2_providers();
        flatten(exports.call_resolve_profile(&mut self.store, config))
    }

    /// `providers.list-presets`.
    pub fn list_presets(&mut self) -> Result<Vec<PresetInfo>, CallError> {
        let exports = self.connector.oauth_connector_oauth2_providers();
        exports
            .call_list_presets(&mut self.store)
            .map_err(CallError::Runtime)
    }

    /// `providers.preset`.
    pub fn preset(&mut self, id: &str) -> Result<types::ProviderProfile, CallError> {
        let exports = self.connector.oauth_connector_oauth2_providers();
        flatten(exports.call_preset(&mut self.store, id))
    }

    /// `providers.discover` (the transport must allow the issuer's origin).
    pub fn discover(&mut self, issuer: &str) -> Result<types::ProviderProfile, CallError> {
        let exports = self.connector.oauth_connector_oauth2_providers();
        flatten(exports.call_discover(&mut self.store, issuer))
    }

    /// `providers.parse-profile`.
    pub fn parse_profile(&mut self, json: &str) -> Result<types::ProviderProfile, CallError> {
        let exports = self.connector.oauth_connector_oauth2_providers();
        flatten(exports.call_parse_profile(&mut self.store, json))
    }

    /// `providers.validate-profile`.
    pub fn validate_profile(&mut self, profile: &types::ProviderProfile) -> Result<(), CallError> {
        let exports = self.connector.oauth_connector_oauth2_providers();
        flatten(exports.call_validate_profile(&mut self.store, profile))
    }

    /// When this instance's transport last received a response.
    pub fn last_response_at(&self) -> Option<std::time::Instant> {
        self.store.data().last_response_at
    }

    /// Sends a request through this instance's transport, as the component would. For
    /// tests and diagnostics of the host policy.
    pub fn transport_send(&mut self, request: HttpRequest) -> Result<HttpResponse, TransportError> {
        self.store.data().transport.send(request)
    }
}

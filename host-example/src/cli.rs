//! The `connector-host` command line, as a library function so that tests can run it
//! in-process with their own environment and output streams.

use std::cell::RefCell;
use std::ffi::OsString;
use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::process::{Child, Command as Process, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{Context as _, anyhow, bail};
use clap::{Args, CommandFactory as _, Parser, Subcommand};

use crate::bindings::exports::oauth_connector::oauth2::device_authorization::DevicePoll;
use crate::configure::{self, ClientSettings, ConfigureError};
use crate::connect::{self, ConnectUi, RedirectListener};
use crate::connections::{ConnectionError, Connections, RefreshOutcome, api_url, health};
/// Unix seconds as RFC 3339 UTC (kept here for callers of the CLI's earlier API).
pub use crate::describe::format_time;
use crate::describe::{connection_state, connection_view, printable, status_detail};
use crate::logging::{self, LogSink};
use crate::presets::{Catalogue, Origin as PresetOrigin, Preset, PresetView};
use crate::retry::{self, RetryNotice, RetryPolicy};
use crate::seal::{self, SealingKey};
use crate::signer::KeyFileSigner;
use crate::store::{
    self, ConnectionSecrets, ConnectionState, ExchangeSettings, Grant, GrantSettings,
    JwtBearerSettings, Registration, SecretSource, Store, StoreError, StoredConnection,
    TokenSource, now,
};
use crate::types::{
    ClientAuthMethod, ConnectionConfig, HttpMethod, HttpRequest, HttpResponse, KeyValue,
    ProviderProfile, TokenSet,
};
use crate::{AllowList, HttpTransport, Limits, Runtime, connection_allow_list};

mod output;

/// The exit codes, at the end of `--help` (the README carries the same list, and
/// `host-example/tests/readme_help.rs` compares them). Each code is one item: its number,
/// then its meaning, continued on lines indented further.
const EXIT_CODES_HELP: &str = "\
Exit codes:
  0  success (a reader of stdout that stops early, as `| head` does, is no failure)
  1  an error; for `call`, also an HTTP answer of 400 or above (its body still printed)
  2  usage: clap's errors, and a command that needs another option to go ahead (for
     example `connect` on a stored name without --force, an option the grant does not
     use, a --var the profile does not declare)
  3  the connection must be authorized again: `token` or `call` on a revoked connection
     or one that needs re-authorization; `status` when any connection does";

/// A wasmtime host for the oauth-connector component.
#[derive(Parser)]
#[command(
    name = "connector-host",
    version,
    about,
    after_help = "Exit codes: 0 success, 1 error, 2 usage, 3 authorize again (details: --help).",
    after_long_help = EXIT_CODES_HELP
)]
struct Cli {
    /// The component to load (default: the one built into this binary).
    #[arg(long, global = true, value_name = "WASM")]
    component: Option<PathBuf>,
    /// The connection store: an SQLite file (default: $CONNECTOR_STORE, else the platform's
    /// data directory), or a PostgreSQL database shared by a fleet,
    /// `postgres://USER@HOST:PORT/DB` (its password in $PGPASSWORD, not in the URL, which
    /// other users can see in the process list; `?sslmode=require` for TLS, the server
    /// verified against the Mozilla roots and $PGSSLROOTCERT).
    #[arg(long, global = true, value_name = "FILE|URL")]
    store: Option<PathBuf>,
    /// The key file that seals the store's secrets and tokens (default: $CONNECTOR_KEY, 64
    /// hex characters). Opt-in for the CLI; `serve` needs one (or --no-encryption).
    #[arg(long, global = true, value_name = "FILE")]
    key_file: Option<PathBuf>,
    /// Log diagnostics to stderr: -v the flow's steps, -vv our debug lines, -vvv also request
    /// lines and dependencies' internals. Never logs secrets, tokens, header values or bodies.
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    verbose: u8,
    /// Local presets: a preset file (one document, or an array of them) or a directory of
    /// `*.json` files, in the built-in presets' format; repeatable (default: the paths in
    /// $CONNECTOR_PRESETS, separated like PATH). Checked on load; a local preset replaces a
    /// built-in one of the same id, with a warning.
    #[arg(long, global = true, value_name = "FILE|DIR")]
    presets: Vec<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

// Parsed once per process: the size of its largest variant (`connect`'s many flags) costs
// nothing worth a box.
#[allow(clippy::large_enum_variant)]
#[derive(Subcommand)]
enum Command {
    /// Print the authorize URL for a profile and client (the first half of the
    /// authorization-code flow), so the component can be tried by hand.
    AuthorizeUrl {
        #[command(flatten)]
        client: ClientArgs,
        /// The redirect URI registered for the client.
        #[arg(long, value_name = "URI")]
        redirect_uri: Option<String>,
        /// The environment variable holding the client secret: a server with a
        /// pushed-authorization endpoint (RFC 9126) is sent the request first, with client
        /// authentication, and the URL printed carries only its reference.
        #[arg(long, value_name = "VAR")]
        client_secret_env: Option<String>,
    },
    /// Connect: sign in through the browser, receive the redirect on a loopback listener,
    /// exchange the code and store the connection under NAME.
    Connect {
        /// The connection's name in the store.
        name: String,
        #[command(flatten)]
        client: ClientArgs,
        /// The environment variable holding the client secret (never pass it on the command line).
        #[arg(long, value_name = "VAR")]
        client_secret_env: Option<String>,
        /// Store only the variable's name, and read the secret from it whenever needed,
        /// instead of keeping the secret in the (owner-only) store.
        #[arg(long, requires = "client_secret_env")]
        secret_ref: bool,
        /// The loopback redirect URI to listen on (port 0 picks a free port); default
        /// http://127.0.0.1:8765/callback. Authorization code only.
        #[arg(long, value_name = "URI")]
        redirect_uri: Option<String>,
        #[command(flatten)]
        browser: BrowserArgs,
        /// Replace the connection of the same name. Without it an existing name is refused
        /// (exit 2) before anything is sent; `reconnect NAME` signs in again with its stored
        /// settings instead.
        #[arg(long)]
        force: bool,
        /// The grant: `authorization-code` (browser sign-in), `client-credentials` (the
        /// client on its own behalf), or `device` (approve on another device, RFC 8628).
        #[arg(long, value_enum, default_value = "authorization-code")]
        grant: GrantArg,
        /// How the client authenticates at the token endpoint, as registered (RFC 7591
        /// `token_endpoint_auth_method`). Default: `private-key-jwt` with --private-key;
        /// `none` for a client without a secret found through --issuer; else the profile's.
        #[arg(long, value_enum, value_name = "METHOD")]
        client_auth: Option<ClientAuthArg>,
        /// The client's private key for `private-key-jwt` (PKCS#8 PEM, RSA, P-256, P-384
        /// or Ed25519; readable by its owner only). Only its path is stored; the host signs
        /// with it and the key never enters the component.
        #[arg(long, value_name = "FILE", conflicts_with = "client_secret_env")]
        private_key: Option<PathBuf>,
        /// The key id (`kid`) the server knows the private key by.
        #[arg(long, value_name = "KID", requires = "private_key")]
        key_id: Option<String>,
        /// Bind the tokens to a key the host makes for this connection (DPoP, RFC 9449): a
        /// fresh P-256 key, stored sealed with the connection, signs a proof for every token
        /// request and API call; the tokens are useless without it.
        #[arg(long)]
        dpop: bool,
        #[command(flatten)]
        exchange: ExchangeArgs,
        #[command(flatten)]
        assertion: AssertionArgs,
    },
    /// Connect a stored connection again with its stored settings (clears a revoked or
    /// needs-re-authorization mark).
    ///
    /// Runs its grant again with the stored provider profile (its variables filled in),
    /// client (id, authentication method, secret or secret variable, private key), scopes,
    /// extra authorize parameters and redirect URI, and replaces its tokens. Options given
    /// here override the stored ones; to change the provider or client, `connect NAME
    /// --force`.
    Reconnect {
        /// The connection's name.
        name: String,
        /// Request this scope instead of the stored ones (repeatable).
        #[arg(long = "scope", value_name = "SCOPE")]
        scopes: Vec<String>,
        /// Read the client secret from this environment variable instead of the stored
        /// secret (or secret variable).
        #[arg(long, value_name = "VAR")]
        client_secret_env: Option<String>,
        /// Store only the variable's name, as `connect --secret-ref` does.
        #[arg(long, requires = "client_secret_env")]
        secret_ref: bool,
        /// Listen on this loopback redirect URI instead of the stored one.
        #[arg(long, value_name = "URI")]
        redirect_uri: Option<String>,
        #[command(flatten)]
        browser: BrowserArgs,
    },
    /// Make an authorized API call; on a rejected token, refresh once and retry once.
    /// Status and headers go to stderr, the body to stdout (or one JSON object with --json).
    /// An answer of HTTP 400 or above exits 1, its body still printed.
    Call {
        /// The connection's name.
        name: String,
        /// The HTTP method.
        method: String,
        /// The URL (its origin must be one of the profile's, usually `api-base-url`), or a
        /// path such as `/user`, appended to the profile's `api-base-url`.
        url: String,
        /// A request header, `NAME: VALUE` (repeatable).
        #[arg(short = 'H', long = "header", value_name = "NAME: VALUE", value_parser = parse_header)]
        headers: Vec<KeyValue>,
        /// The request body.
        #[arg(long, conflicts_with = "data_file")]
        data: Option<String>,
        /// Read the request body from a file.
        #[arg(long, value_name = "FILE")]
        data_file: Option<PathBuf>,
        /// Print one JSON object: `status`, `headers` (`[name, value]` pairs) and the body
        /// as exactly one of `json` (a body that is JSON, parsed), `body` (other UTF-8 text)
        /// or `body_base64` (anything else).
        #[arg(long)]
        json: bool,
    },
    /// Revoke the connection's tokens at the server (RFC 7009); the connection stays stored,
    /// marked revoked, and `token` and `call` exit 3 until it is connected again.
    Revoke {
        /// The connection's name.
        name: String,
    },
    /// Delete the connection from the store (nothing is sent to the server; revoke first).
    Remove {
        /// The connection's name.
        name: String,
    },
    /// List the provider presets (built in, and local ones from --presets): id, name, where
    /// it comes from, and the variables each needs.
    Providers {
        /// Only the presets whose id, name or a domain contains every word of TEXT (ignoring
        /// case).
        #[arg(long, value_name = "TEXT")]
        search: Option<String>,
        /// Print one JSON array: id, display_name, origin (`built-in` or `local`), path
        /// (local only), variables, domains, notes, sources.
        #[arg(long)]
        json: bool,
    },
    /// Show one preset: endpoints, quirks, notes and the documentation its facts come from.
    ShowProvider {
        /// The preset's id.
        name: String,
        /// Print the preset document itself (the format --presets reads), a start for a
        /// local preset of your own.
        #[arg(long)]
        json: bool,
    },
    /// List stored connections (no secrets) under a header row: name, provider, expiry (or
    /// why the connection must be connected again), scopes.
    List {
        /// Print one JSON array of the connections (the fields of `show --json`).
        #[arg(long)]
        json: bool,
    },
    /// Show one connection: provider, client, scopes, state and expiry (never secrets or
    /// tokens).
    Show {
        /// The connection's name.
        name: String,
        /// Print one JSON object (stable field names, listed in the README).
        #[arg(long)]
        json: bool,
    },
    /// Every connection's status: valid, expiring-soon (within 5 minutes),
    /// expired-refreshable, needs-reauthorization or revoked. Exits 3 when any connection
    /// needs re-authorization (or is revoked), else 0. Nothing is sent.
    Status,
    /// Print a valid access token for the connection, refreshing first when it is due.
    Token {
        /// The connection's name.
        name: String,
    },
    /// Run the multi-tenant connection service: the JSON API under /v1 (a tenant's API key
    /// required), the connect pages and the one callback URL.
    ///
    /// Prints `listening on http://ADDRESS` and `public URL: URL` on stdout once it accepts
    /// requests, then serves until it is stopped. The routes are described in
    /// docs/openapi.json; the README's "Run it as a service" shows a session.
    Serve {
        /// The address to listen on (port 0 takes a free one).
        #[arg(long, value_name = "ADDRESS", default_value = "127.0.0.1:8080")]
        listen: std::net::SocketAddr,
        /// The URL the service is reached at from outside (an http or https origin, no
        /// path); connect URLs and the callback (`<URL>/oauth/callback`, to register with
        /// each provider) are made from it. Default: `http://` and the bound address.
        #[arg(long, value_name = "URL")]
        public_url: Option<String>,
        /// Another origin a connect session's `return_to` may be on (repeatable); the public
        /// URL's origin always is.
        #[arg(long = "return-origin", value_name = "ORIGIN")]
        return_origins: Vec<String>,
        /// How long a connect session's URL can be used, in seconds.
        #[arg(long, value_name = "SECONDS", default_value_t = 600)]
        session_ttl: u64,
        /// How often, in seconds, the background sweep refreshes idle connections and
        /// looks for status changes to send to webhooks (at least 1).
        #[arg(long, value_name = "SECONDS", default_value_t = 300,
              value_parser = clap::value_parser!(u64).range(1..))]
        keep_alive_interval: u64,
        /// Refresh a connection whose tokens were not renewed for this many seconds (7 days
        /// by default), so that its refresh token does not expire unused; 0 turns
        /// keep-alive refreshes off.
        #[arg(long, value_name = "SECONDS", default_value_t = 604_800)]
        keep_alive_after: u64,
        /// An origin (scheme, host, port) tenants' webhooks may be sent to (repeatable).
        /// Without any, a webhook may be any https URL.
        #[arg(long = "webhook-origin", value_name = "ORIGIN")]
        webhook_origins: Vec<String>,
        /// How many store threads serve requests, each with its own store session: with a
        /// PostgreSQL store, the replica's pool of database sessions (2 more serve its
        /// background work). Default: 4 per core, at least 4 and at most 32.
        #[arg(long, value_name = "N", value_parser = clap::value_parser!(u16).range(1..=256))]
        store_threads: Option<u16>,
        /// Keep secrets and tokens in the store in clear, without a key: for development
        /// only. Without it, `serve` needs --key-file or $CONNECTOR_KEY.
        #[arg(long)]
        no_encryption: bool,
    },
    /// Manage the service's tenants (in the store `serve` uses): add, list, rotate-key.
    Tenants {
        #[command(subcommand)]
        command: TenantsCommand,
    },
    /// Manage the key that seals the store's secrets and tokens: generate, seal, rotate.
    Keys {
        #[command(subcommand)]
        command: KeysCommand,
    },
    /// Print the shell completion script for SHELL on stdout (needs no store or component).
    ///
    /// Save it where the shell looks for completions, for example:
    ///
    /// bash: `connector-host completions bash > ~/.local/share/bash-completion/completions/connector-host`
    ///
    /// zsh: `connector-host completions zsh > "${fpath[1]}/_connector-host"`
    ///
    /// fish: `connector-host completions fish > ~/.config/fish/completions/connector-host.fish`
    Completions {
        /// The shell.
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
}

impl Command {
    /// The subcommand's name, for the logs.
    fn name(&self) -> &'static str {
        match self {
            Self::AuthorizeUrl { .. } => "authorize-url",
            Self::Connect { .. } => "connect",
            Self::Reconnect { .. } => "reconnect",
            Self::Call { .. } => "call",
            Self::Revoke { .. } => "revoke",
            Self::Remove { .. } => "remove",
            Self::Providers { .. } => "providers",
            Self::ShowProvider { .. } => "show-provider",
            Self::List { .. } => "list",
            Self::Status => "status",
            Self::Show { .. } => "show",
            Self::Token { .. } => "token",
            Self::Completions { .. } => "completions",
            Self::Serve { .. } => "serve",
            Self::Tenants { .. } => "tenants",
            Self::Keys { .. } => "keys",
        }
    }
}

/// `connector-host tenants …`.
#[derive(Subcommand)]
enum TenantsCommand {
    /// Create a tenant; its API key is printed once, as the last line of stdout.
    Add {
        /// The tenant's name (letters, digits, `.`, `_`, `-`).
        name: String,
    },
    /// List the tenants: name, id, created, key made (never keys).
    List,
    /// Make a tenant a new API key (printed once, as the last line of stdout); the old key
    /// stops working at once.
    RotateKey {
        /// The tenant's name.
        name: String,
    },
}

/// `connector-host keys …`.
#[derive(Subcommand)]
enum KeysCommand {
    /// Write a new random key to a new owner-only file and print its id (never the key,
    /// unless --print).
    Generate {
        /// The file to create (an existing file is not overwritten).
        #[arg(long, value_name = "FILE")]
        out: PathBuf,
        /// Also print the key itself (64 hex characters), as the last line of stdout, for
        /// $CONNECTOR_KEY.
        #[arg(long)]
        print: bool,
    },
    /// Seal every secret and token in the store that is in clear with the key (--key-file
    /// or $CONNECTOR_KEY); prints how many records were sealed.
    Seal,
    /// Re-seal the store under a new key (a store in clear is sealed); the current key comes
    /// from --key-file or $CONNECTOR_KEY. Prints how many records were re-sealed. Stop
    /// `serve` first.
    Rotate {
        /// The new key's file (make one with `keys generate`).
        #[arg(long, value_name = "FILE")]
        new_key_file: PathBuf,
    },
}

/// The sealing key: `--key-file`, else `$CONNECTOR_KEY`; `None` when neither is given.
fn read_sealing_key(
    flag: Option<&PathBuf>,
    env: &dyn Fn(&str) -> Option<String>,
) -> anyhow::Result<Option<SealingKey>> {
    if let Some(path) = flag {
        return Ok(Some(SealingKey::from_file(path)?));
    }
    match env(seal::KEY_ENV).filter(|value| !value.is_empty()) {
        Some(value) => Ok(Some(SealingKey::from_env_value(&value)?)),
        None => Ok(None),
    }
}

/// `serve` without a key and without `--no-encryption`: what to do.
const SERVE_NEEDS_KEY: &str = "serve keeps the store's client secrets, tokens and PKCE \
    verifiers sealed and needs a key: pass --key-file FILE or set CONNECTOR_KEY (64 hex \
    characters); make a key with `connector-host keys generate --out FILE`; or pass \
    --no-encryption to keep them in clear (for development only)";

/// The `--client-auth` values (RFC 7591 §2 `token_endpoint_auth_method`).
#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum ClientAuthArg {
    /// HTTP Basic with the client id and secret.
    ClientSecretBasic,
    /// The client id and secret in the request body.
    ClientSecretPost,
    /// A public client: the client id only.
    None,
    /// An HS256 assertion keyed by the client secret.
    ClientSecretJwt,
    /// An assertion signed with --private-key.
    PrivateKeyJwt,
}

impl ClientAuthArg {
    fn method(self) -> ClientAuthMethod {
        match self {
            Self::ClientSecretBasic => ClientAuthMethod::ClientSecretBasic,
            Self::ClientSecretPost => ClientAuthMethod::ClientSecretPost,
            Self::None => ClientAuthMethod::None,
            Self::ClientSecretJwt => ClientAuthMethod::ClientSecretJwt,
            Self::PrivateKeyJwt => ClientAuthMethod::PrivateKeyJwt,
        }
    }
}

/// The `--grant` values.
#[derive(Clone, Copy, clap::ValueEnum)]
enum GrantArg {
    AuthorizationCode,
    ClientCredentials,
    Device,
    TokenExchange,
    JwtBearer,
}

impl GrantArg {
    fn stored(self) -> Grant {
        match self {
            Self::AuthorizationCode => Grant::AuthorizationCode,
            Self::ClientCredentials => Grant::ClientCredentials,
            Self::Device => Grant::Device,
            Self::TokenExchange => Grant::TokenExchange,
            Self::JwtBearer => Grant::JwtBearer,
        }
    }
}

/// What `connect --grant token-exchange` exchanges (RFC 8693 §2.1).
#[derive(Args)]
struct ExchangeArgs {
    /// The environment variable holding the token to exchange (token exchange). It is not
    /// kept: when the issued token expires, connect again.
    #[arg(long, value_name = "VAR", conflicts_with = "subject_connection")]
    subject_token_env: Option<String>,
    /// Exchange this stored connection's access token (token exchange), refreshed first when
    /// due; exchanged again on its own whenever the issued token expires.
    #[arg(long, value_name = "NAME")]
    subject_connection: Option<String>,
    /// The subject token's type (`subject_token_type`); default
    /// urn:ietf:params:oauth:token-type:access_token.
    #[arg(long, value_name = "URI")]
    subject_token_type: Option<String>,
    /// The environment variable holding the actor token (`actor_token`), read at every
    /// exchange.
    #[arg(long, value_name = "VAR")]
    actor_token_env: Option<String>,
    /// The actor token's type; default urn:ietf:params:oauth:token-type:access_token.
    #[arg(long, value_name = "URI", requires = "actor_token_env")]
    actor_token_type: Option<String>,
    /// A target service's logical name (`audience`, repeatable).
    #[arg(long = "audience", value_name = "AUDIENCE")]
    audiences: Vec<String>,
    /// The type of token wanted (`requested_token_type`); the server chooses without it.
    #[arg(long, value_name = "URI")]
    requested_token_type: Option<String>,
}

impl ExchangeArgs {
    fn given(&self) -> [(&'static str, bool); 7] {
        [
            ("--subject-token-env", self.subject_token_env.is_some()),
            ("--subject-connection", self.subject_connection.is_some()),
            ("--subject-token-type", self.subject_token_type.is_some()),
            ("--actor-token-env", self.actor_token_env.is_some()),
            ("--actor-token-type", self.actor_token_type.is_some()),
            ("--audience", !self.audiences.is_empty()),
            (
                "--requested-token-type",
                self.requested_token_type.is_some(),
            ),
        ]
    }
}

/// The access token type URI (RFC 8693 §3), the default subject and actor token type.
const ACCESS_TOKEN_TYPE: &str = "urn:ietf:params:oauth:token-type:access_token";

/// The assertion of `connect --grant jwt-bearer` (RFC 7523 §2.1). (`--private-key` is the
/// client's own key for `private_key_jwt` client authentication, a different key; with
/// `--grant jwt-bearer` and no `--assertion-key` it is the assertion's key.)
#[derive(Args, Clone)]
struct AssertionArgs {
    /// The key that signs the grant assertion (jwt-bearer; PKCS#8 PEM, RSA, P-256, P-384 or
    /// Ed25519; owner-only); without it, `--private-key` is that key. It is stored sealed with the connection, so that an expired
    /// token is fetched again unattended; the key never enters the component.
    #[arg(long, value_name = "FILE")]
    assertion_key: Option<PathBuf>,
    /// The assertion key's `kid`.
    #[arg(long, value_name = "KID", requires = "assertion_key")]
    assertion_key_id: Option<String>,
    /// The assertion's `iss` (default: the client id), for example a service account.
    #[arg(long, value_name = "ISS")]
    assertion_issuer: Option<String>,
    /// The assertion's `sub` (default: its issuer), for example a user to act as.
    #[arg(long, value_name = "SUB")]
    assertion_subject: Option<String>,
    /// The assertion's `aud` (default: the token URL).
    #[arg(long, value_name = "AUD")]
    assertion_audience: Option<String>,
    /// Put the scopes in the assertion's `scope` claim instead of the request's `scope`
    /// parameter (as Google's service accounts want).
    #[arg(long)]
    scope_in_claims: bool,
}

impl AssertionArgs {
    fn given(&self) -> [(&'static str, bool); 6] {
        [
            ("--assertion-key", self.assertion_key.is_some()),
            ("--assertion-key-id", self.assertion_key_id.is_some()),
            ("--assertion-issuer", self.assertion_issuer.is_some()),
            ("--assertion-subject", self.assertion_subject.is_some()),
            ("--assertion-audience", self.assertion_audience.is_some()),
            ("--scope-in-claims", self.scope_in_claims),
        ]
    }
}

/// How a sign-in is shown to the user (`connect` and `reconnect`).
#[derive(Args)]
struct BrowserArgs {
    /// Print the authorize URL instead of opening a browser.
    #[arg(long)]
    no_browser: bool,
    /// The command that opens the authorize URL (it is passed as the last argument);
    /// default: the platform's opener.
    #[arg(long, value_name = "COMMAND", conflicts_with = "no_browser")]
    browser: Option<String>,
    /// Give up after this many seconds without a valid callback (or, for the device
    /// grant, without approval); default 300.
    #[arg(long, value_name = "SECONDS")]
    timeout: Option<u64>,
}

impl BrowserArgs {
    /// How long the user has to sign in or approve.
    fn timeout(&self) -> Duration {
        Duration::from_secs(self.timeout.unwrap_or(300))
    }

    /// The options given, by flag, for refusing those a grant does not use.
    fn given(&self) -> [(&'static str, bool); 3] {
        [
            ("--browser", self.browser.is_some()),
            ("--no-browser", self.no_browser),
            ("--timeout", self.timeout.is_some()),
        ]
    }

    fn browser(&self) -> Browser {
        if self.no_browser {
            Browser::Print
        } else {
            self.browser
                .clone()
                .map_or(Browser::Platform, Browser::Command)
        }
    }
}

/// Where the profile comes from: at most one of these (`connect --resource URL` alone finds
/// it from the resource).
#[derive(Args)]
#[group(required = false, multiple = false)]
struct ProfileSource {
    /// The provider profile, a JSON file (format in the README).
    #[arg(long, value_name = "FILE")]
    profile: Option<PathBuf>,
    /// A built-in preset (see `providers`).
    #[arg(long, value_name = "PRESET")]
    provider: Option<String>,
    /// Discover the profile from this issuer's metadata (RFC 8414 / OpenID Connect).
    #[arg(long, value_name = "URL")]
    issuer: Option<String>,
}

#[derive(Args)]
struct ClientArgs {
    #[command(flatten)]
    source: ProfileSource,
    /// A value for a URL placeholder of the profile, `NAME=VALUE` (repeatable), for example
    /// `--var tenant=contoso`.
    #[arg(long = "var", value_name = "NAME=VALUE", value_parser = parse_key_value)]
    variables: Vec<KeyValue>,
    /// Ask for a refresh token the way the profile says (a scope such as `offline_access`,
    /// or parameters such as `access_type=offline`).
    #[arg(long)]
    offline: bool,
    /// The client identifier. Only `connect --resource URL` without a provider may leave it
    /// out: a client is then registered (RFC 7591).
    #[arg(long)]
    client_id: Option<String>,
    /// A scope to request (repeatable); none means the profile's defaults.
    #[arg(long = "scope", value_name = "SCOPE")]
    scopes: Vec<String>,
    /// An extra authorize parameter, `NAME=VALUE` (repeatable).
    #[arg(long = "param", value_name = "NAME=VALUE", value_parser = parse_key_value)]
    params: Vec<KeyValue>,
    /// A resource the tokens are for (RFC 8707 `resource`, repeatable), sent on the
    /// authorize and token requests; its origin may be called. Without --profile,
    /// --provider or --issuer: the protected resource to connect to, whose authorization
    /// server is found from its metadata (RFC 9728) and, without --client-id, registered
    /// with (RFC 7591).
    #[arg(long = "resource", value_name = "URL")]
    resources: Vec<String>,
}

fn parse_key_value(text: &str) -> Result<KeyValue, String> {
    let (name, value) = text
        .split_once('=')
        .ok_or_else(|| format!("`{text}` is not NAME=VALUE"))?;
    if name.is_empty() {
        return Err(format!("`{text}` has an empty name"));
    }
    Ok(KeyValue {
        name: name.to_owned(),
        value: value.to_owned(),
    })
}

fn parse_header(text: &str) -> Result<KeyValue, String> {
    let (name, value) = text
        .split_once(':')
        .ok_or_else(|| format!("`{text}` is not `NAME: VALUE`"))?;
    if name.trim().is_empty() {
        return Err(format!("`{text}` has an empty name"));
    }
    Ok(KeyValue {
        name: name.trim().to_owned(),
        value: value.trim().to_owned(),
    })
}

/// The exit code when the connection must be authorized again: it is marked (revoked, or a
/// refresh was refused), or the server just refused to renew it, or it cannot be renewed
/// without the user. `status` exits with it when any connection is in that state.
pub const EXIT_REAUTHORIZE: i32 = 3;

/// The exit code of a command line that cannot be run as given: clap's usage errors, and
/// a request that needs an option to go ahead (for example `connect` on an existing name
/// without `--force`).
pub const EXIT_USAGE: i32 = 2;

/// The command has said what it had to; it ends with this exit code (not an error).
#[derive(Debug)]
struct ExitWith(i32);

impl std::fmt::Display for ExitWith {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "exit {}", self.0)
    }
}

impl std::error::Error for ExitWith {}

/// A command that needs another option or command to go ahead; nothing was changed or sent
/// ([`EXIT_USAGE`]).
#[derive(Debug)]
struct UsageError(String);

impl std::fmt::Display for UsageError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for UsageError {}

/// What the CLI reads from its surroundings: the environment and the output streams.
pub struct Io<'a> {
    /// Looks up an environment variable.
    pub env: &'a dyn Fn(&str) -> Option<String>,
    /// Standard output: results for scripts.
    pub out: &'a mut dyn Write,
    /// Standard error: progress and diagnostics.
    pub err: &'a mut dyn Write,
    /// Whether `err` is a terminal (for the progress spinner).
    pub err_is_terminal: bool,
    /// Whether `out` is a terminal: `call` then ends a body that does not end with a newline
    /// with one, so that the prompt starts on its own line. A pipe gets the body unchanged.
    pub out_is_terminal: bool,
    /// Where diagnostic log lines go (`-v`).
    pub log: LogSink,
}

/// Runs the CLI with `args` (the first is the program name); returns the exit code.
pub fn run(args: impl IntoIterator<Item = OsString>, io: &mut Io<'_>) -> i32 {
    let mut out = output::Output(&mut *io.out);
    let io = &mut Io {
        env: io.env,
        out: &mut out,
        err: &mut *io.err,
        err_is_terminal: io.err_is_terminal,
        out_is_terminal: io.out_is_terminal,
        log: Arc::clone(&io.log),
    };
    let cli = match Cli::try_parse_from(args) {
        Ok(cli) => cli,
        Err(error) => {
            // Help and version are the answer (stdout, exit 0), so that they can be piped;
            // usage errors go to stderr with exit 2.
            if error.use_stderr() {
                let _ = write!(io.err, "{}", error.render());
                return EXIT_USAGE;
            }
            let _ = write!(io.out, "{}", error.render());
            return 0;
        }
    };
    let verbosity = cli.verbose;
    let log = Arc::clone(&io.log);
    let result = logging::with_logging(verbosity, log, || {
        tracing::debug!(command = cli.command.name(), "starting");
        execute(cli, io)
    });
    match result {
        Ok(()) => 0,
        Err(error) if error.is::<ExitWith>() => error.downcast_ref::<ExitWith>().map_or(1, |e| e.0),
        // The reader of standard output went away (`connector-host providers | head`): it
        // has all it wanted, so there is nothing to report and the command stops there.
        Err(error) if output::closed(&error) => 0,
        Err(error) => {
            // Errors can quote what a server sent (an issuer, a description): one sanitiser
            // for the whole line keeps terminal escapes off the screen.
            let fix = connector_error(&error)
                .and_then(|error| crate::describe::fix(error, crate::describe::FrontEnd::Cli))
                .map(|fix| format!(" ({fix})"))
                .unwrap_or_default();
            let _ = writeln!(io.err, "error: {}{fix}", printable(&format!("{error:#}")));
            let reauthorize = error
                .downcast_ref::<ConnectionError>()
                .is_some_and(ConnectionError::needs_reauthorization);
            if reauthorize {
                EXIT_REAUTHORIZE
            } else if error.is::<UsageError>() {
                EXIT_USAGE
            } else {
                1
            }
        }
    }
}

/// The component's error behind `error`, if a call of the component failed.
fn connector_error(error: &anyhow::Error) -> Option<&crate::types::Error> {
    error.chain().find_map(|cause| {
        let call = cause.downcast_ref::<crate::CallError>().or_else(|| {
            match cause.downcast_ref::<ConnectionError>() {
                Some(ConnectionError::Call(call)) => Some(call),
                _ => None,
            }
        })?;
        match call.last() {
            crate::CallError::Connector(error) => Some(error),
            _ => None,
        }
    })
}

/// The CLI on the process's real environment and streams.
pub fn main() -> i32 {
    let env = |name: &str| std::env::var(name).ok();
    let mut out = std::io::stdout();
    let mut err = std::io::stderr();
    let err_is_terminal = err.is_terminal();
    let out_is_terminal = out.is_terminal();
    run(
        std::env::args_os(),
        &mut Io {
            env: &env,
            out: &mut out,
            err: &mut err,
            err_is_terminal,
            out_is_terminal,
            log: Arc::new(Mutex::new(std::io::stderr())),
        },
    )
}

/// The shell completion script for `shell`, generated from the clap definition.
fn completion_script(shell: clap_complete::Shell) -> String {
    const BIN_NAME: &str = "connector-host";
    let mut script = Vec::new();
    clap_complete::generate(shell, &mut Cli::command(), BIN_NAME, &mut script);
    let script = String::from_utf8_lossy(&script).into_owned();
    match shell {
        // clap_complete 4.6's bash script, for a program name with a hyphen, labels each
        // subcommand's case `connector__subcmd__host__subcmd__call` but matches the state
        // `connector__host__subcmd__call` against them, so nothing after a subcommand
        // completes (clap-rs/clap#6421). The state's spelling is the one the script derives
        // everywhere else; once clap_complete is fixed, there is nothing left to replace.
        clap_complete::Shell::Bash => script.replace(
            "connector__subcmd__host__subcmd__",
            "connector__host__subcmd__",
        ),
        _ => script,
    }
}

/// The store's path: `--store`, else `$CONNECTOR_STORE`, else the platform's data directory.
fn store_path(
    flag: Option<&PathBuf>,
    env: &dyn Fn(&str) -> Option<String>,
) -> anyhow::Result<PathBuf> {
    flag.cloned()
        .or_else(|| {
            env(store::STORE_ENV)
                .filter(|p| !p.is_empty())
                .map(PathBuf::from)
        })
        .or_else(store::default_path)
        .ok_or_else(|| anyhow!("no store path: pass --store or set {}", store::STORE_ENV))
}

fn execute(cli: Cli, io: &mut Io<'_>) -> anyhow::Result<()> {
    let (flag, env) = (cli.store.clone(), io.env);
    execute_command(cli, io).map_err(|error| {
        // "No connection named X" says where it looked.
        let missing = error.chain().find_map(|cause| {
            let not_found = match cause.downcast_ref::<ConnectionError>() {
                Some(ConnectionError::Store(error)) => Some(error),
                _ => cause.downcast_ref::<StoreError>(),
            };
            match not_found {
                Some(StoreError::NotFound(name)) => Some(name.clone()),
                _ => None,
            }
        });
        match (missing, store_path(flag.as_ref(), env)) {
            (Some(name), Ok(path)) => anyhow!(
                "no connection named `{name}` in the store {} (`connector-host list` shows \
                 its connections; pass --store FILE for another store)",
                store::shown(&path)
            ),
            _ => error,
        }
    })
}

fn execute_command(cli: Cli, io: &mut Io<'_>) -> anyhow::Result<()> {
    let store_path = || store_path(cli.store.as_ref(), io.env);
    let sealing_key = || read_sealing_key(cli.key_file.as_ref(), io.env);
    // Compile once: the compiled component is kept in the cache directory
    // ($CONNECTOR_CACHE_DIR, else the platform's cache folder; set it empty for none).
    let cache_dir = match (io.env)(crate::compile_cache::CACHE_ENV) {
        Some(dir) if dir.is_empty() => None,
        Some(dir) => Some(PathBuf::from(dir)),
        None => crate::compile_cache::default_dir(io.env),
    };
    // Local presets: --presets, else $CONNECTOR_PRESETS; loaded by the commands that name
    // presets (so that `token` and `call` never pay for them).
    let preset_paths: Vec<PathBuf> = if cli.presets.is_empty() {
        (io.env)(crate::presets::PRESETS_ENV)
            .map(|paths| {
                std::env::split_paths(&paths)
                    .filter(|p| !p.as_os_str().is_empty())
                    .collect()
            })
            .unwrap_or_default()
    } else {
        cli.presets.clone()
    };
    let load_runtime = || -> anyhow::Result<Runtime> {
        let runtime = match &cli.component {
            Some(path) => Runtime::load_cached(path, cache_dir.as_deref()),
            // wasmtime's own error type takes wasmtime's `Context`, not anyhow's.
            None => wasmtime::error::Context::context(
                Runtime::load_embedded_cached(cache_dir.as_deref()),
                "loading the component built into connector-host",
            ),
        }
        .map_err(|error| anyhow!("{error:#}"))?;
        tracing::debug!(origin = ?runtime.origin(), "component loaded");
        Ok(runtime)
    };
    match cli.command {
        Command::Completions { shell } => {
            // From the clap definition alone: no store is opened and no component loaded.
            io.out.write_all(completion_script(shell).as_bytes())?;
            Ok(())
        }
        Command::Serve {
            listen,
            ref public_url,
            ref return_origins,
            session_ttl,
            keep_alive_interval,
            keep_alive_after,
            ref webhook_origins,
            store_threads,
            no_encryption,
        } => {
            let key = match (sealing_key()?, no_encryption) {
                (Some(_), true) => {
                    return Err(UsageError(
                        "--no-encryption and a key (--key-file or CONNECTOR_KEY) contradict \
                         each other: give one or the other"
                            .to_owned(),
                    )
                    .into());
                }
                (None, false) => return Err(UsageError(SERVE_NEEDS_KEY.to_owned()).into()),
                (key, _) => key,
            };
            let options = crate::serve::ServeOptions {
                listen,
                public_url: public_url.clone(),
                store: store_path()?,
                return_origins: return_origins.clone(),
                session_ttl: Duration::from_secs(session_ttl),
                key,
                keep_alive_interval: Duration::from_secs(keep_alive_interval),
                keep_alive_after: (keep_alive_after > 0)
                    .then(|| Duration::from_secs(keep_alive_after)),
                webhook_origins: webhook_origins.clone(),
                store_threads: store_threads.map_or_else(crate::serve::store_threads, usize::from),
            };
            let mut runtime = load_runtime()?;
            add_local_presets(&mut runtime, &preset_paths, io.err)?;
            let out = &mut *io.out;
            crate::serve::serve(runtime, options, |address, public_url| {
                let _ = writeln!(out, "listening on http://{address}");
                let _ = writeln!(out, "public URL: {public_url}");
                let _ = out.flush();
            })?;
            Ok(())
        }
        Command::Tenants { ref command } => {
            use crate::serve::tenants;
            let store = Store::open_with_key(&store_path()?, sealing_key()?)?;
            match command {
                TenantsCommand::Add { name } => {
                    let (tenant, key) = tenants::add(&store, name)?;
                    writeln!(
                        io.err,
                        "created tenant `{}` (id {})",
                        tenant.name, tenant.id
                    )?;
                    writeln!(io.out, "{}", key.0)?;
                }
                TenantsCommand::List => {
                    writeln!(io.out, "NAME\tID\tCREATED\tKEY MADE")?;
                    for tenant in tenants::list(&store)? {
                        writeln!(io.out, "{}", tenants::list_line(&tenant))?;
                    }
                }
                TenantsCommand::RotateKey { name } => {
                    let key = tenants::rotate_key(&store, name)?;
                    writeln!(
                        io.err,
                        "tenant `{name}` has a new key; the old one no longer works"
                    )?;
                    writeln!(io.out, "{}", key.0)?;
                }
            }
            Ok(())
        }
        Command::Keys { ref command } => keys(command, &store_path, &sealing_key, io),
        Command::AuthorizeUrl {
            ref client,
            ref redirect_uri,
            ref client_secret_env,
        } => {
            if client.client_id.is_none() {
                return Err(UsageError("authorize-url needs --client-id".to_owned()).into());
            }
            let secret = match client_secret_env {
                Some(var) => Some(read_secret(io.env, var)?),
                None => None,
            };
            let mut runtime = load_runtime()?;
            add_local_presets(&mut runtime, &preset_paths, io.err)?;
            let mut config = connection_config(&runtime, client, secret)?;
            config.redirect_uri.clone_from(redirect_uri);
            let transport = HttpTransport::new(connection_allow_list(&config), Limits::default());
            let request = runtime.instantiate(transport)?.begin(&config)?;
            writeln!(io.out, "{}", request.url)?;
            writeln!(
                io.err,
                "state: {} (the pending authorization expires at {})",
                request.pending.state,
                format_time(request.pending.expires_at)
            )?;
            Ok(())
        }
        Command::Connect {
            ref name,
            ref client,
            ref client_secret_env,
            secret_ref,
            ref redirect_uri,
            ref browser,
            force,
            grant,
            client_auth,
            ref private_key,
            ref key_id,
            dpop,
            ref exchange,
            ref assertion,
        } => {
            let grant = grant.stored();
            // `--grant jwt-bearer --private-key FILE`: without --assertion-key, the private
            // key is the one that signs the grant's assertion (a service account's key), not
            // a client assertion's.
            let (no_key, no_kid, grant_key): (Option<PathBuf>, Option<String>, AssertionArgs);
            let (assertion, private_key, key_id) = if grant == Grant::JwtBearer
                && assertion.assertion_key.is_none()
                && private_key.is_some()
            {
                (no_key, no_kid) = (None, None);
                grant_key = AssertionArgs {
                    assertion_key: private_key.clone(),
                    assertion_key_id: key_id.clone(),
                    ..assertion.clone()
                };
                (&grant_key, &no_key, &no_kid)
            } else {
                (assertion, private_key, key_id)
            };
            let mut given = vec![
                ("--redirect-uri", redirect_uri.is_some()),
                ("--param", !client.params.is_empty()),
                ("--offline", client.offline),
            ];
            given.extend(browser.given());
            given.extend(exchange.given());
            given.extend(assertion.given());
            refuse_unused(grant, &given, "pass another --grant")?;
            let source = &client.source;
            let from_resource =
                source.profile.is_none() && source.provider.is_none() && source.issuer.is_none();
            check_connect_usage(grant, client, exchange, assertion, from_resource)?;
            let secret = match client_secret_env {
                Some(var) => Some(read_secret(io.env, var)?),
                None => None,
            };
            // The method is the client's (RFC 7591 §2): as the user says; else implied by a
            // private key; else, for a server found by discovery, `none` for a client with
            // no secret (its metadata lists what the server supports, not what this client
            // was registered with); else the profile's default.
            let method = match (client_auth, private_key) {
                (Some(method), _) => Some(method.method()),
                (None, Some(_)) => Some(ClientAuthMethod::PrivateKeyJwt),
                (None, None) if (source.issuer.is_some() || from_resource) && secret.is_none() => {
                    Some(ClientAuthMethod::None)
                }
                (None, None) => None,
            };
            match (method, private_key) {
                (Some(ClientAuthMethod::PrivateKeyJwt), None) => {
                    bail!(
                        "--client-auth private-key-jwt needs the client's key: pass --private-key FILE"
                    )
                }
                (Some(method), Some(_)) if method != ClientAuthMethod::PrivateKeyJwt => {
                    bail!("--private-key is only used with --client-auth private-key-jwt")
                }
                _ => {}
            }
            let mut secret_source = match (&secret, client_secret_env, private_key) {
                (_, _, Some(path)) => SecretSource::PrivateKey {
                    path: std::path::absolute(path)
                        .with_context(|| format!("resolving {}", path.display()))?,
                    key_id: key_id.clone(),
                },
                (None, _, None) => SecretSource::None,
                (Some(_), Some(var), None) if secret_ref => SecretSource::Environment(var.clone()),
                (Some(secret), _, None) => SecretSource::Stored(secret.clone()),
            };
            let mut secrets = connection_secrets(grant, dpop, exchange, assertion)?;
            // Read now, and not kept: the token to exchange (see `--subject-token-env`).
            let given_subject = exchange
                .subject_token_env
                .as_ref()
                .map(|var| read_secret(io.env, var))
                .transpose()?;
            let store = Store::open_with_key(&store_path()?, sealing_key()?)?;
            // Refused before anything is sent or the user signs in. (A connection of this
            // name created meanwhile by another process is replaced.)
            if !force && store.contains(name)? {
                return Err(UsageError(format!(
                    "a connection named `{}` already exists in {}; pass --force to replace it, \
                     or run `connector-host reconnect {}` to sign in again with its stored \
                     settings",
                    printable(name),
                    store.path().display(),
                    printable(name)
                ))
                .into());
            }
            let mut runtime = load_runtime()?;
            add_local_presets(&mut runtime, &preset_paths, io.err)?;
            let redirect_uri = redirect_uri
                .clone()
                .unwrap_or_else(|| connect::DEFAULT_REDIRECT_URI.to_owned());
            let config = if from_resource {
                // The redirect URI is registered: a concrete port, not 0.
                let redirect_uri = with_free_port(&redirect_uri)?;
                let resource_url = &client.resources[0];
                let settings = client_settings(client, secret);
                let found =
                    configure::from_resource(&runtime, resource_url, settings, &redirect_uri)
                        .map_err(configure_error)?;
                writeln!(
                    io.err,
                    "{} is protected by {}{}",
                    printable(&found.resource.resource),
                    printable(&found.config.profile.issuer.clone().unwrap_or_default()),
                    if found.registration.is_some() {
                        format!(
                            "; registered client `{}`",
                            printable(&found.config.client.client_id)
                        )
                    } else {
                        String::new()
                    }
                )?;
                if let Some(registered) = found.registration {
                    if let Some(secret) = &registered.client.client_secret {
                        secret_source = SecretSource::Stored(secret.clone());
                    }
                    secrets.registration = Some(Registration {
                        resource: Some(found.resource.resource.clone()),
                        registration_access_token: registered.registration_access_token,
                        registration_client_uri: registered.registration_client_uri,
                        client_secret_expires_at: registered.client_secret_expires_at,
                        metadata: registered.metadata,
                    });
                }
                let mut config = found.config;
                config.dpop = dpop;
                if method.is_some() && config.client.auth_method.is_none() {
                    config.client.auth_method = method;
                }
                config
            } else {
                let mut config = connection_config(&runtime, client, secret)?;
                config.client.auth_method = method;
                config.dpop = dpop;
                config
            };
            let signer = crate::connections::connection_signer(&secret_source, &secrets)?;
            let flow = Flow {
                grant,
                redirect_uri: config.redirect_uri.clone().unwrap_or(redirect_uri),
                browser: browser.browser(),
                timeout: browser.timeout(),
                options: connect::FlowOptions {
                    signer,
                    retry: RetryPolicy::default(),
                },
                secrets,
                given_subject,
            };
            let env = io.env;
            let connections =
                Connections::open_with_key(&runtime, store.path(), env, sealing_key()?)?;
            obtain_and_store(
                io,
                &runtime,
                &connections,
                name,
                config,
                &secret_source,
                flow,
            )
        }
        Command::Reconnect {
            ref name,
            ref scopes,
            ref client_secret_env,
            secret_ref,
            ref redirect_uri,
            ref browser,
        } => {
            let store = open_existing(&store_path()?, sealing_key()?)?;
            let stored = store.get(name)?;
            let mut given = vec![("--redirect-uri", redirect_uri.is_some())];
            given.extend(browser.given());
            let hint = format!(
                "to change the grant, run `connector-host connect {} --force ...`",
                printable(name)
            );
            refuse_unused(stored.grant, &given, &hint)?;
            let runtime = load_runtime()?;
            let env = io.env;
            let connections =
                Connections::open_with_key(&runtime, store.path(), env, sealing_key()?)?;
            let (mut config, source, signer) = match client_secret_env {
                // The stored key (private_key_jwt) is the client's credential: a secret
                // would change how the client authenticates, which is `connect --force`.
                Some(_) if stored.secret.is_private_key() => {
                    return Err(UsageError(format!(
                        "`{}` authenticates with a private key, not a secret: to change the \
                         client's authentication, run `connector-host connect {} --force ...`",
                        printable(name),
                        printable(name)
                    ))
                    .into());
                }
                Some(var) => {
                    let secret = read_secret(io.env, var)?;
                    let mut config = stored.config.clone();
                    config.client.client_secret = Some(secret.clone());
                    let source = if secret_ref {
                        SecretSource::Environment(var.clone())
                    } else {
                        SecretSource::Stored(secret)
                    };
                    // The connection's own keys (DPoP, grant assertion) stay.
                    let signer = crate::connections::connection_signer(&source, &stored.secrets)?;
                    (config, source, signer)
                }
                None => (
                    connections.config(&stored)?,
                    stored.secret.clone(),
                    connections.signer(&stored)?,
                ),
            };
            if !scopes.is_empty() {
                config.scopes.clone_from(scopes);
            }
            // A token exchanged from an environment variable's token: read it again.
            let given_subject = match stored.secrets.exchange().map(|settings| &settings.subject) {
                Some(TokenSource::Environment(var)) => Some(read_secret(io.env, var)?),
                _ => None,
            };
            let flow = Flow {
                grant: stored.grant,
                redirect_uri: redirect_uri
                    .clone()
                    .or_else(|| stored.config.redirect_uri.clone())
                    .unwrap_or_else(|| connect::DEFAULT_REDIRECT_URI.to_owned()),
                browser: browser.browser(),
                timeout: browser.timeout(),
                options: connect::FlowOptions {
                    signer,
                    retry: RetryPolicy::default(),
                },
                secrets: stored.secrets.clone(),
                given_subject,
            };
            obtain_and_store(io, &runtime, &connections, name, config, &source, flow)
        }
        Command::Providers { ref search, json } => {
            let mut runtime = load_runtime()?;
            add_local_presets(&mut runtime, &preset_paths, io.err)?;
            let catalogue = runtime.presets();
            let presets: Vec<&Preset> = match search {
                Some(text) => catalogue.search(text).collect(),
                None => catalogue.presets().iter().collect(),
            };
            if json {
                let views: Vec<PresetView<'_>> =
                    presets.into_iter().map(PresetView::from).collect();
                writeln!(io.out, "{}", serde_json::to_string_pretty(&views)?)?;
                return Ok(());
            }
            if presets.is_empty() {
                writeln!(
                    io.err,
                    "no preset matches; `connector-host providers` lists them all"
                )?;
                return Ok(());
            }
            for preset in presets {
                let needs = if preset.variables.is_empty() {
                    String::new()
                } else {
                    let vars: Vec<String> = preset
                        .variables
                        .iter()
                        .map(|v| format!("--var {v}=..."))
                        .collect();
                    format!("needs {}", vars.join(" "))
                };
                let origin = match &preset.origin {
                    PresetOrigin::BuiltIn => "built-in".to_owned(),
                    PresetOrigin::Local(path) => format!("local {}", path.display()),
                };
                writeln!(
                    io.out,
                    "{}\t{}\t{origin}\t{needs}",
                    preset.id,
                    printable(&preset.display_name)
                )?;
            }
            Ok(())
        }
        Command::ShowProvider { ref name, json } => {
            let mut runtime = load_runtime()?;
            add_local_presets(&mut runtime, &preset_paths, io.err)?;
            let catalogue = runtime.presets();
            let mut session =
                runtime.instantiate(HttpTransport::new(AllowList::default(), Limits::default()))?;
            let profile = catalogue.profile(name, &mut session)?;
            let Some(preset) = catalogue.get(name) else {
                unreachable!("`profile` found the preset");
            };
            if json {
                writeln!(
                    io.out,
                    "{}",
                    serde_json::to_string_pretty(&preset.document()?)?
                )?;
                return Ok(());
            }
            write_provider(io.out, &profile, Some(preset))?;
            Ok(())
        }
        Command::List { json } => {
            let store = open_existing(&store_path()?, sealing_key()?)?;
            let connections = store.list()?;
            if json {
                let now = now();
                let views: Vec<_> = connections
                    .iter()
                    .map(|connection| connection_view(connection, now))
                    .collect();
                writeln!(io.out, "{}", serde_json::to_string_pretty(&views)?)?;
                return Ok(());
            }
            if connections.is_empty() {
                writeln!(io.err, "no connections in {}", store.path().display())?;
                return Ok(());
            }
            writeln!(io.out, "NAME\tPROVIDER\tEXPIRES OR STATE\tSCOPES")?;
            for connection in connections {
                // A DPoP-bound connection says so after its state, with its key's thumbprint.
                let dpop = crate::describe::dpop_thumbprint(&connection)
                    .map_or_else(String::new, |thumbprint| format!(" (dpop {thumbprint})"));
                // A marked connection's expiry would read as if its tokens were usable.
                let status = match connection.state {
                    ConnectionState::Active => expiry_text(connection.tokens.expires_at),
                    ref marked => connection_state(marked),
                };
                writeln!(
                    io.out,
                    "{}\t{}\t{}{}\t{}",
                    printable(&connection.name),
                    printable(&connection.config.profile.id),
                    status,
                    printable(&dpop),
                    printable(&connection.tokens.scopes.join(" "))
                )?;
            }
            Ok(())
        }
        Command::Show { ref name, json } => {
            let store = open_existing(&store_path()?, sealing_key()?)?;
            let connection = store.get(name)?;
            if json {
                let view = connection_view(&connection, now());
                writeln!(io.out, "{}", serde_json::to_string_pretty(&view)?)?;
            } else {
                write_show(io.out, &connection)?;
            }
            Ok(())
        }
        Command::Status => {
            let store = open_existing(&store_path()?, sealing_key()?)?;
            let connections = store.list()?;
            if connections.is_empty() {
                writeln!(io.err, "no connections in {}", store.path().display())?;
                return Ok(());
            }
            let now = now();
            let healths: Vec<_> = connections.iter().map(|c| health(c, now)).collect();
            let needing_action = healths.iter().filter(|h| h.needs_action()).count();
            let mut table = || -> std::io::Result<()> {
                writeln!(io.out, "NAME\tSTATUS\tDETAIL")?;
                for (connection, health) in connections.iter().zip(&healths) {
                    writeln!(
                        io.out,
                        "{}\t{}\t{}",
                        printable(&connection.name),
                        health.name(),
                        status_detail(connection, now)
                    )?;
                }
                Ok(())
            };
            // A reader that stopped early (`| head`) does not change what the exit code
            // says of the connections.
            if let Err(error) = table()
                && !(needing_action > 0 && output::closed_io(&error))
            {
                return Err(error.into());
            }
            if needing_action > 0 {
                writeln!(
                    io.err,
                    "{needing_action} of {} connections must be authorized again",
                    connections.len()
                )?;
                return Err(ExitWith(EXIT_REAUTHORIZE).into());
            }
            Ok(())
        }
        Command::Token { ref name } => {
            let runtime = load_runtime()?;
            let outcome = {
                let err = RefCell::new(&mut *io.err);
                let notify = notify_on(&err);
                Connections::open_with_key(&runtime, &store_path()?, io.env, sealing_key()?)?
                    .with_retries(RetryPolicy::default(), &notify)
                    .valid_tokens(name)?
            };
            report_refresh(io.err, &outcome)?;
            writeln!(io.out, "{}", outcome.tokens.access_token)?;
            Ok(())
        }
        Command::Call {
            ref name,
            ref method,
            ref url,
            ref headers,
            ref data,
            ref data_file,
            json,
        } => {
            let body = match (data, data_file) {
                (Some(data), _) => data.clone().into_bytes(),
                (None, Some(file)) => {
                    std::fs::read(file).with_context(|| format!("reading {}", file.display()))?
                }
                (None, None) => Vec::new(),
            };
            let mut request = HttpRequest {
                method: http_method(method),
                url: url.clone(),
                headers: headers.clone(),
                body,
            };
            let runtime = load_runtime()?;
            let outcome = {
                let err = RefCell::new(&mut *io.err);
                let notify = notify_on(&err);
                let connections =
                    Connections::open_with_key(&runtime, &store_path()?, io.env, sealing_key()?)?
                        .with_retries(RetryPolicy::default(), &notify);
                let stored_config = connections.store().get(name)?.config;
                let profile = &stored_config.profile;
                request.url = api_url(profile, url).ok_or_else(|| {
                    UsageError(format!(
                        "`{}` is a path, and the profile `{}` of `{}` has no api-base-url to \
                         append it to: pass the full URL",
                        printable(url),
                        printable(&profile.id),
                        printable(name)
                    ))
                })?;
                // The transport would refuse it too; here the message can say why.
                let refusal = url::Url::parse(&request.url)
                    .ok()
                    .and_then(|target| connection_allow_list(&stored_config).refusal(&target));
                if let Some(refusal) = refusal {
                    bail!(
                        "{refusal}; nothing was sent (`{}` may reach only the origins of its \
                         profile's endpoints, api-base-url and resources)",
                        printable(name)
                    );
                }
                connections.call(name, &request)?
            };
            if outcome.retried {
                writeln!(io.err, "the token was rejected; refreshed and retried once")?;
            }
            let status = outcome.response.status;
            if matches!(status, 429 | 503) && !crate::connections::is_idempotent(&request.method) {
                writeln!(
                    io.err,
                    "the API answered HTTP {status}; a {} is not sent again on its own (it may \
                     not be idempotent)",
                    method.to_ascii_uppercase()
                )?;
            }
            if let Some(reason) = &outcome.gave_up {
                writeln!(
                    io.err,
                    "the API still answered HTTP {} after {} attempts ({reason})",
                    outcome.response.status, outcome.attempts
                )?;
            }
            let written = write_response(io, &outcome.response, json);
            // A reader that stopped early (`| head`) does not change what the exit code says
            // of an error answer.
            if let Err(error) = written
                && !(status >= 400 && output::closed(&error))
            {
                return Err(error);
            }
            // As `gh api`: the body is the answer, and the exit code says it is an error.
            if status >= 400 {
                writeln!(io.err, "error: the API answered HTTP {status}")?;
                return Err(ExitWith(1).into());
            }
            Ok(())
        }
        Command::Revoke { ref name } => {
            let runtime = load_runtime()?;
            {
                let err = RefCell::new(&mut *io.err);
                let notify = notify_on(&err);
                Connections::open_with_key(&runtime, &store_path()?, io.env, sealing_key()?)?
                    .with_retries(RetryPolicy::default(), &notify)
                    .revoke(name)?;
            }
            writeln!(
                io.err,
                "revoked the tokens of `{name}`; run `connector-host reconnect {name}` to use it again"
            )?;
            Ok(())
        }
        Command::Remove { ref name } => {
            let store = Store::open_with_key(&store_path()?, sealing_key()?)?;
            crate::connections::remove(&store, name)?;
            writeln!(io.err, "removed `{name}` from {}", store.path().display())?;
            Ok(())
        }
    }
}

/// The client secret from the environment variable `var`: set and not empty.
fn read_secret(env: &dyn Fn(&str) -> Option<String>, var: &str) -> anyhow::Result<String> {
    match env(var) {
        Some(value) if !value.is_empty() => Ok(value),
        Some(_) => bail!("environment variable {var} is empty"),
        None => bail!("environment variable {var} is not set"),
    }
}

/// The `--grant` name of `grant`.
fn grant_name(grant: Grant) -> &'static str {
    grant.name()
}

/// Whether `grant` uses the option `flag` (of those that not every grant uses).
fn grant_uses(grant: Grant, flag: &str) -> bool {
    let unattended = matches!(
        grant,
        Grant::ClientCredentials | Grant::TokenExchange | Grant::JwtBearer
    );
    match flag {
        // Only a browser sign-in has a redirect and an authorize request.
        "--redirect-uri" | "--param" => grant == Grant::AuthorizationCode,
        // Client credentials, token exchange and JWT bearer involve no user (and client
        // credentials get no refresh token, RFC 6749 §4.4.3).
        "--browser" | "--no-browser" | "--timeout" | "--offline" => !unattended,
        flag if flag.starts_with("--subject-")
            || flag.starts_with("--actor-")
            || flag == "--audience"
            || flag == "--requested-token-type" =>
        {
            grant == Grant::TokenExchange
        }
        flag if flag.starts_with("--assertion-") || flag == "--scope-in-claims" => {
            grant == Grant::JwtBearer
        }
        _ => true,
    }
}

/// What `connect` refuses before anything is sent, besides the options a grant does not
/// use: a grant without what it needs, and a connection from a resource URL that is not a
/// browser sign-in ([`EXIT_USAGE`]).
fn check_connect_usage(
    grant: Grant,
    client: &ClientArgs,
    exchange: &ExchangeArgs,
    assertion: &AssertionArgs,
    from_resource: bool,
) -> anyhow::Result<()> {
    let usage = |message: &str| Err(UsageError(message.to_owned()).into());
    if from_resource {
        if client.resources.is_empty() {
            return usage(
                "pass --profile, --provider or --issuer, or --resource URL alone to find the \
                 authorization server from the protected resource (RFC 9728)",
            );
        }
        if client.resources.len() > 1 {
            return usage(
                "connecting from a resource takes one --resource URL (with --profile, \
                 --provider or --issuer, --resource may be repeated)",
            );
        }
        if grant != Grant::AuthorizationCode {
            return usage(&format!(
                "--resource without --profile, --provider or --issuer signs in through the \
                 browser (authorization-code); the {} grant needs a provider",
                grant.name()
            ));
        }
        if !client.variables.is_empty() {
            return usage("--var needs a profile or preset with placeholders");
        }
    } else if client.client_id.is_none() {
        return usage(
            "--client-id is needed (only `connect NAME --resource URL`, without a provider, \
             registers a client of its own)",
        );
    }
    if grant == Grant::TokenExchange
        && exchange.subject_token_env.is_none()
        && exchange.subject_connection.is_none()
    {
        return usage(
            "the token-exchange grant needs the token to exchange: pass --subject-connection \
             NAME (a stored connection's token, exchanged again when it expires) or \
             --subject-token-env VAR",
        );
    }
    if grant == Grant::JwtBearer && assertion.assertion_key.is_none() {
        return usage(
            "the jwt-bearer grant needs the key that signs its assertion: pass \
             --private-key FILE (or --assertion-key FILE, when --private-key is the client's \
             own key for private_key_jwt)",
        );
    }
    Ok(())
}

/// What a new connection keeps sealed beside its client's credential: a fresh DPoP key
/// (`--dpop`), and its grant's settings (token exchange, JWT bearer).
fn connection_secrets(
    grant: Grant,
    dpop: bool,
    exchange: &ExchangeArgs,
    assertion: &AssertionArgs,
) -> anyhow::Result<ConnectionSecrets> {
    let mut secrets = ConnectionSecrets::default();
    if dpop {
        secrets.dpop_key = Some(crate::signer::generate_dpop_key().map_err(|_| {
            anyhow!("could not make the connection's DPoP key: the system's random source failed")
        })?);
    }
    secrets.grant = match grant {
        Grant::TokenExchange => {
            let subject = match (&exchange.subject_connection, &exchange.subject_token_env) {
                (Some(other), _) => TokenSource::Connection(other.clone()),
                (None, Some(var)) => TokenSource::Environment(var.clone()),
                (None, None) => bail!("the token-exchange grant needs a subject token"),
            };
            Some(GrantSettings::TokenExchange(ExchangeSettings {
                subject,
                subject_token_type: exchange
                    .subject_token_type
                    .clone()
                    .unwrap_or_else(|| ACCESS_TOKEN_TYPE.to_owned()),
                actor: exchange.actor_token_env.clone().map(|var| {
                    let token_type = exchange
                        .actor_token_type
                        .clone()
                        .unwrap_or_else(|| ACCESS_TOKEN_TYPE.to_owned());
                    (var, token_type)
                }),
                audiences: exchange.audiences.clone(),
                requested_token_type: exchange.requested_token_type.clone(),
            }))
        }
        Grant::JwtBearer => {
            let Some(path) = &assertion.assertion_key else {
                bail!("the jwt-bearer grant needs --assertion-key FILE");
            };
            // Checked as a signer reads it (owner-only, one supported key), then kept as
            // text, sealed with the connection.
            KeyFileSigner::from_pem_file(path, assertion.assertion_key_id.clone())?;
            let pem = std::fs::read_to_string(path)
                .with_context(|| format!("reading {}", path.display()))?;
            Some(GrantSettings::JwtBearer(JwtBearerSettings {
                pem,
                key_id: assertion.assertion_key_id.clone(),
                issuer: assertion.assertion_issuer.clone(),
                subject: assertion.assertion_subject.clone(),
                audience: assertion.assertion_audience.clone(),
                scope_in_claims: assertion.scope_in_claims,
            }))
        }
        Grant::AuthorizationCode | Grant::ClientCredentials | Grant::Device => None,
    };
    Ok(secrets)
}

/// `uri` with port 0 replaced by a port free on its loopback address now: a redirect URI
/// to register must be the one the listener binds.
fn with_free_port(uri: &str) -> anyhow::Result<String> {
    let Ok(mut parsed) = url::Url::parse(uri) else {
        return Ok(uri.to_owned());
    };
    if parsed.port() != Some(0) {
        return Ok(uri.to_owned());
    }
    let host = match parsed.host_str() {
        Some("localhost") | None => "127.0.0.1".to_owned(),
        Some(host) => host.trim_matches(['[', ']']).to_owned(),
    };
    let port = std::net::TcpListener::bind((host.as_str(), 0))
        .and_then(|listener| listener.local_addr())
        .with_context(|| format!("finding a free port on {host}"))?
        .port();
    let _ = parsed.set_port(Some(port));
    Ok(parsed.to_string())
}

/// Refuses the options `given` (flag, whether given) that `grant` does not use, rather than
/// ignoring them; `hint` says what else to do. Nothing has been sent ([`EXIT_USAGE`]).
fn refuse_unused(grant: Grant, given: &[(&'static str, bool)], hint: &str) -> anyhow::Result<()> {
    let unused: Vec<&str> = given
        .iter()
        .filter(|&&(flag, given)| given && !grant_uses(grant, flag))
        .map(|&(flag, _)| flag)
        .collect();
    if unused.is_empty() {
        return Ok(());
    }
    let why = match grant {
        Grant::ClientCredentials => "no user, browser, redirect or refresh token",
        Grant::Device => "the user approves on another device: no redirect or authorize request",
        Grant::TokenExchange => "a token is exchanged: no user, browser or redirect",
        Grant::JwtBearer => "a signed assertion stands for the grant: no user, browser or redirect",
        Grant::AuthorizationCode => "a browser sign-in",
    };
    let (verb, pronoun) = if unused.len() == 1 {
        ("does", "it")
    } else {
        ("do", "them")
    };
    Err(UsageError(format!(
        "{} {verb} not apply to the {} grant ({why}); remove {pronoun}, or {hint}",
        unused.join(", "),
        grant_name(grant)
    ))
    .into())
}

/// How `connect` and `reconnect` obtain tokens: the grant and how the user takes part.
struct Flow {
    grant: Grant,
    /// The loopback redirect URI to listen on (authorization code only).
    redirect_uri: String,
    browser: Browser,
    timeout: Duration,
    options: connect::FlowOptions,
    /// What the connection keeps sealed beside its client's credential.
    secrets: ConnectionSecrets,
    /// The token to exchange, for a token exchange whose subject token was read from the
    /// environment. A secret.
    given_subject: Option<String>,
}

/// Runs `flow` for `config`, stores the tokens under `name` (replacing a connection of that
/// name and clearing its mark) and prints the stored connection.
fn obtain_and_store(
    io: &mut Io<'_>,
    runtime: &Runtime,
    connections: &Connections<'_>,
    name: &str,
    mut config: ConnectionConfig,
    source: &SecretSource,
    flow: Flow,
) -> anyhow::Result<()> {
    let Flow {
        grant,
        redirect_uri,
        browser,
        timeout,
        options,
        secrets,
        given_subject,
    } = flow;
    let tokens = match grant {
        Grant::AuthorizationCode => {
            // Everything that can fail before the user signs in fails here, before a
            // listener is bound or a browser opened.
            config.redirect_uri = Some(redirect_uri.clone());
            connect::check(runtime, &config, &options.signer)?;
            let listener = RedirectListener::bind(&redirect_uri).map_err(|error| {
                let busy = matches!(&error, connect::ConnectError::Listen(_, io)
                    if io.kind() == std::io::ErrorKind::AddrInUse);
                let any_port = url::Url::parse(&redirect_uri).is_ok_and(|u| u.port() == Some(0));
                if busy && !any_port {
                    anyhow!(
                        "{error}: another program holds the redirect port; if the server \
                         accepts any loopback port (RFC 8252 §7.3), pass --redirect-uri \
                         http://127.0.0.1:0/callback to take a free one, else stop that program"
                    )
                } else {
                    error.into()
                }
            })?;
            let mut ui = CliUi::new(browser, &mut *io);
            let tokens = connect::authorize_in_browser(
                runtime,
                &mut config,
                &listener,
                timeout,
                &options,
                &mut ui,
            );
            ui.finish_line();
            tokens?
        }
        Grant::ClientCredentials => {
            let mut ui = CliUi::new(browser, &mut *io);
            let tokens = retry::call(
                &options.retry,
                None,
                &mut |notice| ui.retrying(notice),
                || {
                    connect::instance(runtime, &config, &options.signer)?
                        .fetch_client_credentials(&config)
                },
            );
            tokens?
        }
        Grant::Device => {
            let mut ui = CliUi::new(browser, &mut *io);
            let tokens = device_flow(runtime, &config, timeout, &options, &mut ui);
            ui.finish_line();
            tokens?
        }
        Grant::TokenExchange | Grant::JwtBearer => connections.obtain_unattended(
            name,
            &config,
            grant,
            &secrets,
            &options.signer,
            given_subject,
        )?,
    };
    // The scopes come from the server: `?` escapes control characters.
    tracing::info!(
        connection = name,
        grant = grant.name(),
        scopes = ?tokens.scopes,
        expires_in_s = tokens.expires_at.map(|at| at.saturating_sub(tokens.obtained_at)),
        refresh_token = tokens.refresh_token.is_some(),
        id_token = tokens.id_token.is_some(),
        "tokens obtained"
    );
    // Under the connection's lock, so that a refresh of an older connection of the same
    // name cannot overwrite the new tokens.
    connections.save_locked_with(name, &config, source, &secrets, grant, &tokens)?;
    let store = connections.store();
    let stored = store.get(name)?;
    writeln!(
        io.err,
        "connected `{name}`; stored in {}",
        store.path().display()
    )?;
    write_show(io.out, &stored)?;
    Ok(())
}

/// A retry notifier that prints the progress line on `err`.
fn notify_on<'w, 'x, 'y>(err: &'w RefCell<&'x mut (dyn Write + 'y)>) -> impl Fn(&RetryNotice) + 'w {
    move |notice| {
        let _ = writeln!(err.borrow_mut(), "{}", retry_line(notice));
    }
}

/// The progress line of a retry: why, how long, which attempt.
fn retry_line(notice: &RetryNotice) -> String {
    let source = if notice.from_server {
        " (the server's Retry-After)"
    } else {
        ""
    };
    format!(
        "{}; retrying in {:.1} s{source} (attempt {} of {})",
        printable(&notice.reason),
        notice.delay.as_secs_f64(),
        notice.attempt + 1,
        notice.max_attempts
    )
}

/// The store at `path` for a command that only reads: a mistyped path is an error, never a
/// new, empty store.
fn open_existing(path: &std::path::Path, key: Option<SealingKey>) -> anyhow::Result<Store> {
    if store::database_url(path).is_none() && !path.try_exists().unwrap_or(true) {
        bail!(
            "no store at {} (connect first, or pass the right --store)",
            path.display()
        );
    }
    Ok(Store::open_with_key(path, key)?)
}

/// `connector-host keys …`.
fn keys(
    command: &KeysCommand,
    store_path: &dyn Fn() -> anyhow::Result<PathBuf>,
    sealing_key: &dyn Fn() -> anyhow::Result<Option<SealingKey>>,
    io: &mut Io<'_>,
) -> anyhow::Result<()> {
    use crate::serve::tenants;
    match command {
        KeysCommand::Generate { out, print } => {
            let key = SealingKey::generate();
            key.write_new_file(out)?;
            writeln!(
                io.err,
                "wrote a new sealing key to {}; keep it (and a copy) safe: without it the \
                 store cannot be read",
                out.display()
            )?;
            writeln!(io.out, "{}", key.id())?;
            if *print {
                writeln!(io.out, "{}", key.reveal_hex())?;
            }
        }
        KeysCommand::Seal => {
            let Some(key) = sealing_key()? else {
                return Err(StoreError::NoKey.into());
            };
            let id = key.id().to_owned();
            let store = open_existing(&store_path()?, Some(key))?;
            let sealed = store.seal_all_with(&[tenants::reseal])?;
            writeln!(io.err, "sealed the store with key {id}")?;
            writeln!(io.out, "{sealed}")?;
        }
        KeysCommand::Rotate { new_key_file } => {
            let new = SealingKey::from_file(new_key_file)?;
            let id = new.id().to_owned();
            let mut store = open_existing(&store_path()?, sealing_key()?)?;
            let resealed = store.rotate_key_with(new, &[tenants::reseal])?;
            writeln!(
                io.err,
                "re-sealed the store with key {id}; from now on use {} (the old key no \
                 longer opens it)",
                new_key_file.display()
            )?;
            writeln!(io.out, "{resealed}")?;
        }
    }
    Ok(())
}

fn report_refresh(err: &mut dyn Write, outcome: &RefreshOutcome) -> std::io::Result<()> {
    if outcome.refreshed {
        let window = outcome.window.map_or_else(String::new, |w| {
            format!(
                " (persisted {:.1} ms after the server's answer)",
                w.as_secs_f64() * 1e3
            )
        });
        writeln!(err, "refreshed the tokens{window}")?;
    }
    Ok(())
}

fn http_method(name: &str) -> HttpMethod {
    match name.to_ascii_uppercase().as_str() {
        "GET" => HttpMethod::Get,
        "HEAD" => HttpMethod::Head,
        "POST" => HttpMethod::Post,
        "PUT" => HttpMethod::Put,
        "PATCH" => HttpMethod::Patch,
        "DELETE" => HttpMethod::Delete,
        "OPTIONS" => HttpMethod::Options,
        other => HttpMethod::Other(other.to_owned()),
    }
}

/// Prints `call`'s answer: status and headers on stderr and the body on stdout (ended with a
/// newline on a terminal), or, with `json`, one object on stdout: `status`, `headers`, and
/// exactly one of `json` (the body parsed, when it is JSON), `body` (other UTF-8 text) and
/// `body_base64` (anything else), so that `call ... --json | jq .json.login` works.
fn write_response(io: &mut Io<'_>, response: &HttpResponse, json: bool) -> anyhow::Result<()> {
    if json {
        let (key, body) = match serde_json::from_slice::<serde_json::Value>(&response.body) {
            Ok(value) => ("json", value),
            Err(_) => match std::str::from_utf8(&response.body) {
                Ok(text) => ("body", serde_json::Value::from(text)),
                Err(_) => {
                    use base64::Engine as _;
                    let encoded = base64::engine::general_purpose::STANDARD.encode(&response.body);
                    ("body_base64", serde_json::Value::from(encoded))
                }
            },
        };
        let headers: Vec<[&str; 2]> = response
            .headers
            .iter()
            .map(|h| [h.name.as_str(), h.value.as_str()])
            .collect();
        let mut object = serde_json::Map::new();
        object.insert("status".to_owned(), response.status.into());
        object.insert("headers".to_owned(), serde_json::json!(headers));
        object.insert(key.to_owned(), body);
        writeln!(io.out, "{}", serde_json::Value::Object(object))?;
    } else {
        writeln!(io.err, "HTTP {}", response.status)?;
        for header in &response.headers {
            writeln!(
                io.err,
                "{}: {}",
                printable(&header.name),
                printable(&header.value)
            )?;
        }
        io.out.write_all(&response.body)?;
        // Without it the shell's prompt would follow the body on its last line.
        if io.out_is_terminal && response.body.last().is_some_and(|&byte| byte != b'\n') {
            writeln!(io.out)?;
        }
    }
    Ok(())
}

/// The device flow (RFC 8628): show the code, optionally open the verification page, poll.
fn device_flow(
    runtime: &Runtime,
    config: &ConnectionConfig,
    timeout: Duration,
    options: &connect::FlowOptions,
    ui: &mut CliUi<'_, '_>,
) -> anyhow::Result<TokenSet> {
    let instance = || connect::instance(runtime, config, &options.signer);
    let flow_deadline = std::time::Instant::now() + timeout;
    let mut device = retry::call(
        &options.retry,
        Some(flow_deadline),
        &mut |notice| ui.retrying(notice),
        || instance()?.begin_device(config),
    )?;
    // Not the user code: whoever has it can approve the sign-in.
    tracing::info!(
        verification_uri = %logging::loggable_url(&device.verification_uri),
        "device authorization: code issued; waiting for approval"
    );
    writeln!(
        ui.io.err,
        "to approve, visit {} and enter the code {}",
        printable(&device.verification_uri),
        printable(&device.user_code)
    )?;
    if !matches!(ui.browser, Browser::Print) {
        let page = device
            .verification_uri_complete
            .clone()
            .unwrap_or_else(|| device.verification_uri.clone());
        ui.open(&page);
    }
    let started = std::time::Instant::now();
    loop {
        let waited = started.elapsed();
        let left_for_code = device.expires_at.saturating_sub(now());
        if waited >= timeout || left_for_code == 0 {
            anyhow::bail!("the device code was not approved in time; run connect again");
        }
        // Never wait past the deadline, whatever interval the server asked for.
        let wait = Duration::from_secs(device.interval_seconds).min(timeout.saturating_sub(waited));
        let until = std::time::Instant::now() + wait;
        while std::time::Instant::now() < until {
            ui.waiting(started.elapsed(), timeout);
            std::thread::sleep(Duration::from_millis(100));
        }
        // An overloaded token endpoint is waited out within the flow's deadline; the device
        // code stays valid meanwhile.
        // Never poll faster than the server's interval (RFC 8628 §3.5), retries included:
        // a backoff waits 50-100 % of its step, so the first step is twice the interval.
        let base_delay = options
            .retry
            .base_delay
            .max(Duration::from_secs(device.interval_seconds) * 2);
        let polling = RetryPolicy {
            base_delay,
            max_delay: options.retry.max_delay.max(base_delay),
            ..options.retry
        };
        let poll = retry::call(
            &polling,
            Some(flow_deadline),
            &mut |notice| ui.retrying(notice),
            || instance()?.poll_device(config, &device),
        )?;
        match poll {
            DevicePoll::Pending(interval) => device.interval_seconds = interval,
            DevicePoll::SlowDown(interval) => device.interval_seconds = interval,
            DevicePoll::Complete(tokens) => return Ok(tokens),
        }
    }
}

/// Reads the profile through the component and builds the configuration
/// ([`configure::connection_config`]).
fn connection_config(
    runtime: &Runtime,
    client: &ClientArgs,
    client_secret: Option<String>,
) -> anyhow::Result<ConnectionConfig> {
    let source = &client.source;
    let source = match (&source.profile, &source.provider, &source.issuer) {
        (Some(path), _, _) => {
            configure::ProfileSource::Profile(Box::new(load_profile(runtime, path)?))
        }
        (None, Some(preset), _) => configure::ProfileSource::Preset(preset.clone()),
        (None, None, Some(issuer)) => configure::ProfileSource::Issuer(issuer.clone()),
        (None, None, None) => anyhow::bail!("pass --profile, --provider or --issuer"),
    };
    let settings = client_settings(client, client_secret);
    configure::connection_config(runtime, source, settings).map_err(configure_error)
}

/// The client's settings as `client` gives them (no client id: empty, which only
/// [`configure::from_resource`] takes, to register one).
fn client_settings(client: &ClientArgs, client_secret: Option<String>) -> ClientSettings {
    ClientSettings {
        client_id: client.client_id.clone().unwrap_or_default(),
        client_secret,
        scopes: client.scopes.clone(),
        params: client.params.clone(),
        variables: client.variables.clone(),
        offline: client.offline,
        resources: client.resources.clone(),
        dpop: false,
    }
}

/// A configuration error as the CLI reports it.
fn configure_error(error: ConfigureError) -> anyhow::Error {
    match error {
        // A `--var` the profile does not declare would be ignored: most likely a misspelling.
        ConfigureError::UnknownVariable {
            name,
            profile,
            declared,
        } => UsageError(format!(
            "--var {name}: the profile `{profile}` has no variable `{name}`; {}",
            configure::declared_text(&declared, "--var")
        ))
        .into(),
        ConfigureError::Discovery { issuer, error } => {
            anyhow::Error::new(error).context(format!("discovering {issuer}"))
        }
        ConfigureError::ResourceDiscovery { url, error } => anyhow::Error::new(error).context(
            format!("finding the authorization server of the protected resource {url}"),
        ),
        ConfigureError::Registration { issuer, error } => {
            anyhow::Error::new(error).context(format!(
                "registering a client with {issuer} (RFC 7591; if the server does not allow \
                 open registration, register one there and pass --client-id)"
            ))
        }
        ConfigureError::Call(error) => anyhow::Error::new(error),
    }
}

/// Puts the local presets in `paths` over the built-in ones in `runtime`'s catalogue (each
/// checked by the component), writing their warnings to `err`. No paths: nothing to do.
fn add_local_presets(
    runtime: &mut Runtime,
    paths: &[PathBuf],
    err: &mut dyn Write,
) -> anyhow::Result<()> {
    if paths.is_empty() {
        return Ok(());
    }
    let mut session =
        runtime.instantiate(HttpTransport::new(AllowList::default(), Limits::default()))?;
    let catalogue = Catalogue::with_local(paths, &mut session)?;
    for warning in catalogue.warnings() {
        writeln!(err, "warning: {warning}")?;
    }
    runtime.set_presets(catalogue);
    Ok(())
}

fn load_profile(runtime: &Runtime, path: &PathBuf) -> anyhow::Result<ProviderProfile> {
    let json = std::fs::read_to_string(path)
        .with_context(|| format!("reading the profile {}", path.display()))?;
    // Parsing needs no network: an empty allow-list.
    let transport = HttpTransport::new(AllowList::default(), Limits::default());
    let profile = runtime
        .instantiate(transport)?
        .parse_profile(&json)
        .with_context(|| format!("in the profile {}", path.display()))?;
    Ok(profile)
}

fn write_provider(
    out: &mut dyn Write,
    profile: &ProviderProfile,
    info: Option<&Preset>,
) -> anyhow::Result<()> {
    // A profile can come from a discovery document: every value through the sanitiser.
    let line = |out: &mut dyn Write, label: &str, value: &str| {
        writeln!(out, "{label:<28}{}", printable(value))
    };
    line(out, "id:", &profile.id)?;
    if let Some(info) = info {
        line(out, "name:", &info.display_name)?;
        line(
            out,
            "origin:",
            &match &info.origin {
                PresetOrigin::BuiltIn => "built-in".to_owned(),
                PresetOrigin::Local(path) => format!("local ({})", path.display()),
            },
        )?;
    }
    if !profile.variables.is_empty() {
        line(out, "variables:", &profile.variables.join(", "))?;
    }
    for (label, value) in [
        ("issuer:", &profile.issuer),
        ("authorize url:", &profile.authorize_url),
        ("token url:", &Some(profile.token_url.clone())),
        ("refresh url:", &profile.refresh_url),
        ("revocation url:", &profile.revocation_url),
        ("introspection url:", &profile.introspection_url),
        (
            "device authorization url:",
            &profile.device_authorization_url,
        ),
        (
            "pushed authorization url:",
            &profile.pushed_authorization_request_url,
        ),
        ("registration url:", &profile.registration_url),
        ("userinfo url:", &profile.userinfo_url),
        ("api base url:", &profile.api_base_url),
    ] {
        if let Some(value) = value {
            line(out, label, value)?;
        }
    }
    // RFC 9126 §5: whether a plain authorize URL is refused.
    line(
        out,
        "pushed authorization:",
        match (
            profile.requires_pushed_authorization_requests,
            profile.pushed_authorization_request_url.is_some(),
        ) {
            (true, _) => "required",
            (false, true) => "used (the server accepts it)",
            (false, false) => "not offered",
        },
    )?;
    let dpop: Vec<&str> = profile
        .dpop_algorithms
        .iter()
        .map(|algorithm| crate::signer::jws_name(*algorithm))
        .collect();
    line(
        out,
        "dpop algorithms:",
        &if dpop.is_empty() {
            "unknown (the server did not say)".to_owned()
        } else {
            dpop.join(" ")
        },
    )?;
    line(out, "default scopes:", &profile.default_scopes.join(" "))?;
    line(
        out,
        "scope separator:",
        &format!("{:?}", profile.scope_separator),
    )?;
    use crate::types::{BodyFormat, PkceMethod};
    let pkce = match profile.pkce {
        PkceMethod::S256 => "s256",
        PkceMethod::Plain => "plain",
        PkceMethod::Disabled => "disabled",
    };
    let client_auth = crate::describe::client_auth_method(profile.client_auth);
    let body = match profile.token_request_format {
        BodyFormat::Form => "form",
        BodyFormat::Json => "json",
    };
    line(out, "pkce:", pkce)?;
    line(out, "client auth:", client_auth)?;
    if let Some(name) = &profile.client_id_parameter {
        line(out, "client id parameter:", name)?;
    }
    if profile.refresh_redirect_uri {
        line(out, "refresh sends:", "redirect_uri (the connection's)")?;
    }
    line(out, "token request body:", body)?;
    let offline = &profile.offline_access;
    let params: Vec<String> = offline
        .authorize_params
        .iter()
        .map(|kv| format!("{}={}", kv.name, kv.value))
        .collect();
    line(
        out,
        "offline access (--offline):",
        &format!(
            "scopes [{}] params [{}]",
            offline.scopes.join(" "),
            params.join("&")
        ),
    )?;
    if let Some(info) = info {
        line(out, "notes:", &info.notes)?;
        for source in &info.sources {
            line(out, "source:", source)?;
        }
    }
    Ok(())
}

/// Prints `connection` for `show` (and after `connect`): its settings, who signed in and the
/// state of its tokens, never a secret or a token.
///
/// `issuer:` and `subject:` are the stored ID token's `iss` and `sub` as stored, not verified
/// (see [`crate::describe::IdTokenClaims`]); without a readable ID token, `issuer:` is the
/// profile's issuer and there is no `subject:` line. `scopes:` are the granted ones, followed
/// by the requested ones when they differ.
fn write_show(out: &mut dyn Write, connection: &StoredConnection) -> anyhow::Result<()> {
    let config = &connection.config;
    let tokens = &connection.tokens;
    let secret = match &connection.secret {
        SecretSource::None => "none (public client)".to_owned(),
        SecretSource::Stored(_) => "stored".to_owned(),
        SecretSource::Environment(var) => format!("from ${var}"),
        SecretSource::PrivateKey { path, key_id } => format!(
            "none; signs with the private key {}{}",
            path.display(),
            key_id
                .as_ref()
                .map_or_else(String::new, |kid| format!(" (kid {kid})"))
        ),
        SecretSource::StoredPrivateKey { key_id, .. } => format!(
            "none; signs with the private key stored with it{}",
            key_id
                .as_ref()
                .map_or_else(String::new, |kid| format!(" (kid {kid})"))
        ),
    };
    let yes_no = |present: bool| if present { "yes" } else { "no" };
    // Scopes, token type and URLs come from servers (a token response, a discovery
    // document): everything is printed through the one sanitiser.
    let p = printable;
    writeln!(out, "name:           {}", p(&connection.name))?;
    writeln!(out, "provider:       {}", p(&config.profile.id))?;
    let claims = crate::describe::stored_id_token_claims(connection);
    if let Some(issuer) = crate::describe::shown_issuer(config.profile.issuer.as_deref(), &claims) {
        writeln!(out, "issuer:         {}", p(&issuer))?;
    }
    if let Some(subject) = &claims.subject {
        writeln!(out, "subject:        {}", p(subject))?;
    }
    writeln!(out, "token url:      {}", p(&config.profile.token_url))?;
    writeln!(
        out,
        "api base url:   {}",
        config
            .profile
            .api_base_url
            .as_deref()
            .map_or_else(|| "none (call takes full URLs)".to_owned(), p)
    )?;
    // What `call` may reach: the origins of the profile's endpoints and API base URL.
    let origins: Vec<String> = connection_allow_list(config)
        .origins()
        .map(ToString::to_string)
        .collect();
    writeln!(out, "allow-list:     {}", p(&origins.join(", ")))?;
    writeln!(out, "client id:      {}", p(&config.client.client_id))?;
    let method = config
        .client
        .auth_method
        .unwrap_or(config.profile.client_auth);
    writeln!(
        out,
        "client auth:    {}{}",
        crate::describe::client_auth_method(method),
        if config.client.auth_method.is_none() {
            " (the profile's default)"
        } else {
            ""
        }
    )?;
    writeln!(out, "client secret:  {}", p(&secret))?;
    if let Some(registration) = &connection.secrets.registration {
        writeln!(
            out,
            "registered:     yes (RFC 7591{})",
            registration
                .registration_access_token
                .as_ref()
                .map_or("", |_| "; registration access token stored")
        )?;
    }
    if let Some(exchange) = connection.secrets.exchange() {
        let subject = match &exchange.subject {
            TokenSource::Connection(other) => {
                format!("connection `{}` (exchanged again when due)", p(other))
            }
            TokenSource::Environment(var) => format!("${var} at connect (not kept)"),
        };
        writeln!(out, "exchanges:      {subject}")?;
        if !exchange.audiences.is_empty() {
            writeln!(out, "audiences:      {}", p(&exchange.audiences.join(" ")))?;
        }
    }
    if let Some(assertion) = connection.secrets.jwt_bearer() {
        writeln!(
            out,
            "assertion key:  stored with it{}",
            assertion
                .key_id
                .as_ref()
                .map_or_else(String::new, |kid| format!(" (kid {})", p(kid)))
        )?;
    }
    if !config.resources.is_empty() {
        writeln!(out, "resources:      {}", p(&config.resources.join(" ")))?;
    }
    // The thumbprint names the key; it is public (the tokens carry it as `cnf.jkt`).
    if let Some(thumbprint) = crate::describe::dpop_thumbprint(connection) {
        writeln!(out, "dpop:           bound to key {}", p(&thumbprint))?;
    }
    let requested = crate::describe::effective_requested_scopes(config);
    writeln!(
        out,
        "scopes:         {}",
        p(&crate::describe::scopes_text(&tokens.scopes, &requested))
    )?;
    writeln!(out, "token type:     {}", p(&tokens.token_type))?;
    writeln!(
        out,
        "state:          {}",
        connection_state(&connection.state)
    )?;
    match connection.state {
        ConnectionState::Active => {
            writeln!(out, "expires:        {}", expiry_text(tokens.expires_at))?;
            writeln!(
                out,
                "refresh token:  {}",
                yes_no(tokens.refresh_token.is_some())
            )?;
        }
        // The stored tokens are kept but no longer used: say how to get new ones instead.
        ConnectionState::NeedsReauthorization { .. } => writeln!(
            out,
            "tokens:         unusable; connect again: connector-host reconnect {}",
            p(&connection.name)
        )?,
    }
    writeln!(out, "id token:       {}", yes_no(tokens.id_token.is_some()))?;
    writeln!(out, "obtained:       {}", format_time(tokens.obtained_at))?;
    writeln!(out, "token writes:   {}", connection.token_writes)?;
    Ok(())
}

fn expiry_text(expires_at: Option<u64>) -> String {
    let now = now();
    match expires_at {
        None => "unknown (the server sent no expiry)".to_owned(),
        Some(at) if at <= now => format!("{} (expired)", format_time(at)),
        Some(at) => format!("{} (in {} s)", format_time(at), at - now),
    }
}

enum Browser {
    Print,
    Platform,
    Command(String),
}

struct CliUi<'a, 'b> {
    browser: Browser,
    children: Vec<Child>,
    io: &'a mut Io<'b>,
    spinner: usize,
}

impl<'a, 'b> CliUi<'a, 'b> {
    fn new(browser: Browser, io: &'a mut Io<'b>) -> Self {
        Self {
            browser,
            children: Vec::new(),
            io,
            spinner: 0,
        }
    }

    /// Opens `url` with the configured browser; false when it could not (or printing only).
    /// Only http(s) URLs are opened: a device flow's verification URI comes from the server,
    /// and an opener given a file path or another scheme could run anything.
    fn open(&mut self, url: &str) -> bool {
        let is_web = url::Url::parse(url).is_ok_and(|u| matches!(u.scheme(), "http" | "https"));
        if !is_web {
            return false;
        }
        match &self.browser {
            Browser::Print => false,
            Browser::Command(command) => {
                let mut words = command.split_whitespace();
                let program = words.next().unwrap_or_default().to_owned();
                let args: Vec<String> = words.map(str::to_owned).collect();
                let args: Vec<&str> = args.iter().map(String::as_str).collect();
                self.spawn(&program, &args, url)
            }
            Browser::Platform => {
                if cfg!(target_os = "macos") {
                    self.spawn("open", &[], url)
                } else if cfg!(windows) {
                    // Not `cmd /C start`: cmd would treat the URL's `&` as command separators.
                    self.spawn("rundll32", &["url.dll,FileProtocolHandler"], url)
                } else {
                    self.spawn("xdg-open", &[], url)
                }
            }
        }
    }

    fn spawn(&mut self, program: &str, args: &[&str], url: &str) -> bool {
        match Process::new(program)
            .args(args)
            .arg(url)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
        {
            Ok(child) => {
                self.children.push(child);
                true
            }
            Err(_) => false,
        }
    }

    fn finish_line(&mut self) {
        if self.io.err_is_terminal && self.spinner > 0 {
            let _ = write!(self.io.err, "\r\x1b[K");
        }
    }
}

impl ConnectUi for CliUi<'_, '_> {
    fn authorize_url(&mut self, url: &str) {
        let opened = self.open(url);
        if opened {
            tracing::info!("authorization: opened the authorize URL in the browser");
        } else {
            tracing::info!("authorization: printed the authorize URL for the user to open");
        }
        if opened {
            let _ = writeln!(
                self.io.err,
                "opened the browser; waiting for the authorization"
            );
        } else {
            let _ = writeln!(self.io.err, "open this URL in a browser to authorize:");
            let _ = writeln!(self.io.out, "{url}");
        }
    }

    fn waiting(&mut self, elapsed: Duration, timeout: Duration) {
        if !self.io.err_is_terminal {
            return;
        }
        const FRAMES: [char; 4] = ['|', '/', '-', '\\'];
        self.spinner += 1;
        let left = timeout.saturating_sub(elapsed).as_secs();
        let _ = write!(
            self.io.err,
            "\r{} waiting for the browser ({left} s left)\x1b[K",
            FRAMES[self.spinner % FRAMES.len()]
        );
        let _ = self.io.err.flush();
    }

    fn ignored(&mut self, reason: &str) {
        self.finish_line();
        let _ = writeln!(self.io.err, "ignored {reason}; still waiting");
    }

    fn retrying(&mut self, notice: &RetryNotice) {
        self.finish_line();
        let _ = writeln!(self.io.err, "{}", retry_line(notice));
    }
}

impl Drop for CliUi<'_, '_> {
    fn drop(&mut self) {
        for child in &mut self.children {
            // A browser opener exits at once; a scripted user agent once it has delivered the
            // callback. Give it a moment, then stop it, and always reap it.
            for _ in 0..50 {
                if matches!(child.try_wait(), Ok(Some(_))) {
                    break;
                }
                std::thread::sleep(Duration::from_millis(100));
            }
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

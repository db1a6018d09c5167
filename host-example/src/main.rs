//! `connector-host`: a command-line host for the oauth-connector component.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context as _;
use clap::{Parser, Subcommand};
use connector_host::types::{Client, ConnectionConfig, KeyValue, RequestExtras};
use connector_host::{CallError, HttpTransport, Limits, Runtime, default_allow_list};

/// A wasmtime host for the oauth-connector component.
#[derive(Parser)]
#[command(version, about)]
struct Cli {
    /// The component to load (default: the one built with this binary).
    #[arg(long, global = true, value_name = "WASM")]
    component: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Print the authorize URL for a profile and client (the first half of the
    /// authorization-code flow), so the component can be tried by hand.
    AuthorizeUrl {
        /// The provider profile, a JSON file (format in the README).
        #[arg(long, value_name = "FILE")]
        profile: PathBuf,
        /// The client identifier.
        #[arg(long)]
        client_id: String,
        /// A scope to request (repeatable); none means the profile's defaults.
        #[arg(long = "scope", value_name = "SCOPE")]
        scopes: Vec<String>,
        /// An extra authorize parameter, `NAME=VALUE` (repeatable).
        #[arg(long = "param", value_name = "NAME=VALUE", value_parser = parse_key_value)]
        params: Vec<KeyValue>,
        /// The redirect URI registered for the client.
        #[arg(long, value_name = "URI")]
        redirect_uri: Option<String>,
    },
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

fn main() -> ExitCode {
    match run(Cli::parse()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli) -> anyhow::Result<()> {
    let runtime = match &cli.component {
        Some(path) => Runtime::load(path),
        None => Runtime::load_built(),
    }
    .map_err(anyhow::Error::from)?;
    match cli.command {
        Command::AuthorizeUrl {
            profile,
            client_id,
            scopes,
            params,
            redirect_uri,
        } => {
            let json = std::fs::read_to_string(&profile)
                .with_context(|| format!("reading the profile {}", profile.display()))?;
            // Parsing needs no network: an empty allow-list.
            let mut session =
                runtime.instantiate(HttpTransport::new(Default::default(), Limits::default()))?;
            let profile = session.parse_profile(&json).map_err(call_error)?;
            let config = ConnectionConfig {
                client: Client {
                    client_id,
                    client_secret: None,
                },
                redirect_uri,
                scopes,
                authorize_params: params,
                code_exchange: RequestExtras {
                    params: vec![],
                    headers: vec![],
                },
                profile,
            };
            let transport =
                HttpTransport::new(default_allow_list(&config.profile), Limits::default());
            let request = runtime
                .instantiate(transport)?
                .begin(&config)
                .map_err(call_error)?;
            println!("{}", request.url);
            eprintln!(
                "state: {} (the pending record expires at {} Unix time)",
                request.pending.state, request.pending.expires_at
            );
            Ok(())
        }
    }
}

fn call_error(error: CallError) -> anyhow::Error {
    anyhow::anyhow!("{error}")
}

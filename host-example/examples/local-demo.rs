//! The main job end to end on one machine: start the local authorization server
//! (`oidc-provider` on 127.0.0.1), run `connector-host connect` against it with a scripted
//! user agent in place of the browser, then `show` the stored connection.
//!
//! ```sh
//! cargo run -p connector-host --example local-demo
//! ```

use std::ffi::OsString;
use std::io::IsTerminal;

use connector_host::cli::{Io, run};
use connector_host::local_server::LocalServer;

fn main() -> anyhow::Result<()> {
    let server = LocalServer::start(&[])?;
    eprintln!("local authorization server: {}", server.issuer());

    let dir = std::env::temp_dir().join(format!("oauth-connector-demo-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let profile = dir.join("local-oidc.json");
    std::fs::write(&profile, server.profile_json(""))?;
    let store = dir.join("connections.db");
    let browser = LocalServer::user_agent_command("");

    // The client secret travels in an environment variable, never in argv.
    let env = |name: &str| (name == "DEMO_CLIENT_SECRET").then(|| "p+a:s&s%w/o=r d".to_owned());
    let cli = |args: &[&str]| {
        let argv = std::iter::once("connector-host")
            .chain(args.iter().copied())
            .map(OsString::from);
        let (mut out, mut err) = (std::io::stdout(), std::io::stderr());
        let (out_is_terminal, err_is_terminal) = (out.is_terminal(), err.is_terminal());
        let mut io = Io {
            env: &env,
            out: &mut out,
            err: &mut err,
            err_is_terminal,
            out_is_terminal,
            log: std::sync::Arc::new(std::sync::Mutex::new(std::io::stderr())),
        };
        run(argv, &mut io)
    };
    let store_arg = store.to_str().expect("a UTF-8 temp path");
    let profile_arg = profile.to_str().expect("a UTF-8 temp path");
    let status = cli(&[
        "--store",
        store_arg,
        "connect",
        "demo",
        "--profile",
        profile_arg,
        "--client-id",
        "special-client",
        "--client-secret-env",
        "DEMO_CLIENT_SECRET",
        "--redirect-uri",
        "http://127.0.0.1:0/callback",
        "--browser",
        &browser,
        "--timeout",
        "60",
    ]);
    anyhow::ensure!(status == 0, "connect failed");
    println!("--- connector-host list");
    anyhow::ensure!(cli(&["--store", store_arg, "list"]) == 0, "list failed");
    std::fs::remove_dir_all(&dir)?;
    Ok(())
}

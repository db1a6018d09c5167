//! What the integration tests share: `connector-host` run in-process.

use std::ffi::OsString;
use std::io::Write;
use std::sync::{Arc, Mutex};

use connector_host::cli::{Io, run};

/// `connector-host ARGS` run in-process with an empty environment and no terminal, writing
/// to `out` and `err` (log lines are dropped); its exit code.
pub fn connector_host_into(args: &[&str], out: &mut dyn Write, err: &mut dyn Write) -> i32 {
    let env = |_: &str| None;
    let argv = std::iter::once("connector-host")
        .chain(args.iter().copied())
        .map(OsString::from);
    run(
        argv,
        &mut Io {
            env: &env,
            out,
            err,
            err_is_terminal: false,
            out_is_terminal: false,
            log: Arc::new(Mutex::new(std::io::sink())),
        },
    )
}

//! `connector-host`: the command-line host for the oauth-connector component. All logic is in
//! the library (`connector_host::cli`), so that tests run the same code in-process.

fn main() -> std::process::ExitCode {
    std::process::ExitCode::from(connector_host::cli::main().clamp(0, 255) as u8)
}

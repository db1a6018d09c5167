//! `connector-host completions SHELL`: the script on stdout, from the clap definition alone
//! (no store opened, no component loaded); another shell is a usage error; and the bash
//! script, sourced into bash, completes subcommands' arguments.

use std::process::Command;

use connector_host::cli::EXIT_USAGE;

mod support;
use support::connector_host_into;

/// What a run printed and returned.
struct Outcome {
    code: i32,
    out: String,
    err: String,
}

/// `connector-host ARGS` run in-process with an empty environment.
fn connector_host(args: &[&str]) -> Outcome {
    let (mut out, mut err) = (Vec::new(), Vec::new());
    let code = connector_host_into(args, &mut out, &mut err);
    Outcome {
        code,
        out: String::from_utf8(out).unwrap(),
        err: String::from_utf8(err).unwrap(),
    }
}

#[test]
fn each_shell_gets_its_script_without_a_store_or_a_component() {
    let missing = std::env::temp_dir().join(format!("no-such-dir-{}", std::process::id()));
    let store = missing.join("store.db");
    let component = missing.join("component.wasm");
    for (shell, start) in [
        ("bash", "_connector__host() {\n"),
        ("zsh", "#compdef connector-host\n"),
        (
            "fish",
            "# Print an optspec for argparse to handle cmd's options that are independent of \
             any subcommand.\n",
        ),
        ("elvish", "\nuse builtin;\nuse str;\n"),
        (
            "powershell",
            "\nusing namespace System.Management.Automation\n",
        ),
    ] {
        // A store and a component that do not exist: neither is needed.
        let outcome = connector_host(&[
            "--store",
            store.to_str().unwrap(),
            "--component",
            component.to_str().unwrap(),
            "completions",
            shell,
        ]);
        assert_eq!((outcome.code, outcome.err.as_str()), (0, ""), "{shell}");
        assert!(outcome.out.starts_with(start), "{shell}: {}", outcome.out);
        for command in ["connect", "call", "show-provider", "completions"] {
            assert!(outcome.out.contains(command), "{shell}: no `{command}`");
        }
    }
    assert!(!missing.exists(), "the store's folder was created");
}

#[test]
fn another_shell_is_a_usage_error() {
    let outcome = connector_host(&["completions", "tcsh"]);
    assert_eq!(outcome.code, EXIT_USAGE);
    assert_eq!(outcome.out, "");
    assert!(
        outcome
            .err
            .starts_with("error: invalid value 'tcsh' for '<SHELL>'\n"),
        "{}",
        outcome.err
    );
    let outcome = connector_host(&["completions"]);
    assert_eq!((outcome.code, outcome.out.as_str()), (EXIT_USAGE, ""));
}

/// The words bash offers for the command line `words` (the cursor on the last word), with the
/// bash script sourced.
fn bash_completes(script: &std::path::Path, words: &[&str]) -> String {
    let quoted: Vec<String> = words.iter().map(|word| format!("'{word}'")).collect();
    let (current, previous) = (words[words.len() - 1], words[words.len() - 2]);
    let program = format!(
        "source '{}'; COMP_WORDS=({}); COMP_CWORD={}; \
         _connector__host connector-host '{current}' '{previous}'; echo \"${{COMPREPLY[*]}}\"",
        script.display(),
        quoted.join(" "),
        words.len() - 1
    );
    let output = Command::new("bash")
        .args(["--norc", "--noprofile", "-c", &program])
        .output()
        .expect("run bash");
    assert!(output.status.success(), "{output:?}");
    String::from_utf8(output.stdout).unwrap()
}

#[test]
fn the_bash_script_completes_subcommand_arguments() {
    let outcome = connector_host(&["completions", "bash"]);
    assert_eq!(outcome.code, 0);
    let path = std::env::temp_dir().join(format!("connector-host-{}.bash", std::process::id()));
    std::fs::write(&path, &outcome.out).unwrap();

    let top = bash_completes(&path, &["connector-host", "sho"]);
    let shells = bash_completes(&path, &["connector-host", "completions", ""]);
    // After a subcommand: what clap_complete 4.6 alone gets wrong for a hyphenated name.
    let call = bash_completes(&path, &["connector-host", "call", "--j"]);
    let _ = std::fs::remove_file(&path);

    assert_eq!(top, "show-provider show\n");
    assert_eq!(
        shells,
        "-v -h --component --store --key-file --verbose --presets --help bash elvish fish powershell zsh\n"
    );
    assert_eq!(call, "--json\n");
}

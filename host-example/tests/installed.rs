//! An installed `connector-host` stands alone: the component travels inside the binary, so
//! a copy outside the build tree (as `cargo install` or a package makes) runs with the
//! source and build trees out of sight.
//!
//! Where the test may make a mount namespace (root, or a user namespace), the source tree
//! and the target directory are covered by empty file systems for the copied binary, so a
//! read of anything under them fails; elsewhere the copy runs from a directory of its own
//! with a clean environment, and the test says so on stderr.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// A scratch directory, removed at the end.
struct TempDir(PathBuf);

impl TempDir {
    fn new(label: &str) -> Self {
        let dir = std::env::temp_dir().join(format!("connector-{label}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        Self(dir)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// The directories the build used: the workspace (sources, and the default target
/// directory) and the target directory the binary was built in.
fn build_trees() -> Vec<PathBuf> {
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("host-example sits in the workspace")
        .to_owned();
    let binary = Path::new(env!("CARGO_BIN_EXE_connector-host"));
    // <target>/<profile>/connector-host
    let target = binary
        .ancestors()
        .nth(2)
        .expect("the binary sits in <target>/<profile>/")
        .to_owned();
    let mut trees = vec![workspace];
    if !trees.iter().any(|tree| target.starts_with(tree)) {
        trees.push(target);
    }
    trees
}

/// Whether this process may make a mount namespace and mount in it.
fn can_hide_directories() -> bool {
    Command::new("unshare")
        .args(["--mount", "--", "mount", "-t", "tmpfs", "none", "/mnt"])
        .output()
        .is_ok_and(|output| output.status.success())
}

/// Runs `binary ARGS` with only `home` as its home, cache and data directories, and, when
/// `hide` is set, with every build tree covered by an empty file system.
fn run(binary: &Path, home: &Path, args: &[&str], hide: bool) -> Output {
    let mut command = if hide {
        // sh -c 'mount … "$1"; mount … "$2"; shift N; exec "$@"' sh TREE… BINARY ARGS…
        let trees = build_trees();
        let mounts: String = (1..=trees.len())
            .map(|n| format!("mount -t tmpfs none \"${n}\" && "))
            .collect();
        let script = format!("{mounts}shift {} && exec \"$@\"", trees.len());
        let mut command = Command::new("unshare");
        command.args(["--mount", "--", "sh", "-c", &script, "sh"]);
        command.args(&trees);
        command.arg(binary);
        command
    } else {
        Command::new(binary)
    };
    command
        .args(args)
        .env_clear()
        .env("PATH", "/usr/local/bin:/usr/bin:/bin")
        .env("HOME", home)
        .env("XDG_CACHE_HOME", home.join("cache"))
        .env("XDG_DATA_HOME", home.join("data"))
        .current_dir(home)
        .output()
        .expect("run the copied connector-host")
}

#[test]
fn a_copied_binary_runs_with_the_build_tree_out_of_sight() {
    let dir = TempDir::new("installed");
    let copy = dir.0.join("bin").join("connector-host");
    std::fs::create_dir_all(copy.parent().unwrap()).unwrap();
    std::fs::copy(env!("CARGO_BIN_EXE_connector-host"), &copy).unwrap();

    // What the binary in the build tree prints: the presets, listed by the component.
    let reference = dir.0.join("reference");
    std::fs::create_dir_all(&reference).unwrap();
    let expected = run(
        Path::new(env!("CARGO_BIN_EXE_connector-host")),
        &reference,
        &["providers"],
        false,
    );
    assert!(expected.status.success(), "{expected:?}");
    let listed = String::from_utf8(expected.stdout).unwrap();
    assert!(
        listed
            .lines()
            .any(|line| line == "github\tGitHub\tbuilt-in\t"),
        "{listed}"
    );

    let hide = can_hide_directories();
    if !hide {
        eprintln!("note: no mount namespace here; the copy runs without the build tree hidden");
    }
    let home = dir.0.join("home");
    std::fs::create_dir_all(&home).unwrap();
    // The first run compiles the embedded component into the (empty) cache; the second
    // loads it from there.
    for run_number in 1..=2 {
        let outcome = run(&copy, &home, &["providers"], hide);
        assert_eq!(
            (
                outcome.status.code(),
                String::from_utf8_lossy(&outcome.stderr).as_ref()
            ),
            (Some(0), ""),
            "run {run_number}"
        );
        assert_eq!(
            String::from_utf8(outcome.stdout).unwrap(),
            listed,
            "run {run_number}"
        );
    }
    let cached = std::fs::read_dir(home.join("cache").join("oauth-connector"))
        .map(|entries| entries.count())
        .unwrap_or(0);
    assert!(
        cached > 0,
        "the first run left a compiled component in the cache"
    );
}

//! The README's command table and exit codes match `connector-host --help`: every subcommand
//! is documented (and no removed one lingers), with the summary `--help` gives it, and each
//! exit code means the same in both. A subcommand added without a README row fails here.

use std::collections::BTreeMap;

use connector_host::cli::{EXIT_REAUTHORIZE, EXIT_USAGE};

mod support;
use support::connector_host_into;

/// The README's section that holds the command table and the exit codes.
const SECTION: &str = "### Commands and exit codes";

/// `connector-host ARGS` run in-process with an empty environment: (exit code, stdout).
fn connector_host(args: &[&str]) -> (i32, String) {
    let (mut out, mut err) = (Vec::new(), Vec::new());
    let code = connector_host_into(args, &mut out, &mut err);
    assert_eq!(
        String::from_utf8(err).unwrap(),
        "",
        "{args:?} wrote to stderr"
    );
    (code, String::from_utf8(out).unwrap())
}

/// The README's section [`SECTION`], up to the next heading.
fn readme_section() -> String {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../README.md");
    let readme = std::fs::read_to_string(path).unwrap();
    let start = readme
        .find(&format!("\n{SECTION}\n"))
        .unwrap_or_else(|| panic!("README.md has no section `{SECTION}`"));
    let rest = &readme[start + SECTION.len() + 2..];
    let end = rest.find("\n#").map_or(rest.len(), |end| end + 1);
    rest[..end].to_owned()
}

/// The subcommands of `--help`'s `Commands:` list: name → one-line summary (clap's own
/// `help` subcommand left out).
fn help_commands(help: &str) -> BTreeMap<String, String> {
    let list = help
        .split_once("\nCommands:\n")
        .expect("--help lists the commands")
        .1;
    list.lines()
        .take_while(|line| !line.is_empty())
        .map(|line| {
            let (name, summary) = line.trim().split_once(' ').expect("NAME  SUMMARY");
            (name.to_owned(), summary.trim().to_owned())
        })
        .filter(|(name, _)| name != "help")
        .collect()
}

/// The README's command table: rows `` | `NAME` | SUMMARY | ``, name → summary.
fn readme_commands(section: &str) -> BTreeMap<String, String> {
    section
        .lines()
        .filter_map(|line| line.strip_prefix("| `"))
        .map(|row| {
            let (name, rest) = row.split_once("` |").expect("| `NAME` | SUMMARY |");
            let summary = rest.trim().strip_suffix('|').expect("a row ends with |");
            (name.to_owned(), summary.trim().to_owned())
        })
        .collect()
}

/// The items after the line `heading` in `text`: lines whose first word (after `indent`) is
/// the exit code (`marker` around it), continued on lines indented further; code → meaning,
/// its lines joined by single spaces. The list ends at a blank line or the text's end.
fn exit_codes(text: &str, heading: &str, indent: &str, marker: char) -> BTreeMap<i32, String> {
    let list = text
        .split_once(&format!("{heading}\n"))
        .unwrap_or_else(|| panic!("no line `{heading}`"))
        .1;
    let mut codes: BTreeMap<i32, String> = BTreeMap::new();
    let mut current = None;
    for line in list.lines().take_while(|line| !line.trim().is_empty()) {
        let item = line
            .strip_prefix(indent)
            .filter(|item| !item.starts_with(' '));
        match item.and_then(|item| item.split_once(' ')) {
            Some((code, meaning)) => {
                let code: i32 = code
                    .trim_matches(marker)
                    .parse()
                    .unwrap_or_else(|_| panic!("not an exit code item: {line:?}"));
                codes.insert(code, meaning.trim().to_owned());
                current = Some(code);
            }
            None => {
                let code = current.unwrap_or_else(|| panic!("a continuation first: {line:?}"));
                let meaning = codes.get_mut(&code).unwrap();
                meaning.push(' ');
                meaning.push_str(line.trim());
            }
        }
    }
    codes
}

#[test]
fn the_readme_documents_every_command_with_its_help_summary() {
    let (code, help) = connector_host(&["--help"]);
    assert_eq!(code, 0);
    let in_help = help_commands(&help);
    let in_readme = readme_commands(&readme_section());
    assert!(in_help.contains_key("completions"), "{help}");

    for (name, summary) in &in_help {
        let row = format!("| `{name}` | {summary} |");
        assert_eq!(
            in_readme.get(name),
            Some(summary),
            "README.md, `{SECTION}`: the row for `{name}` should be\n{row}"
        );
    }
    let removed: Vec<&String> = in_readme
        .keys()
        .filter(|name| !in_help.contains_key(*name))
        .collect();
    assert!(
        removed.is_empty(),
        "README.md documents commands that --help does not list: {removed:?}"
    );
}

#[test]
fn the_readme_and_help_give_the_same_exit_codes() {
    let (code, help) = connector_host(&["--help"]);
    assert_eq!(code, 0);
    let in_help = exit_codes(&help, "Exit codes:", "  ", ' ');
    let in_readme = exit_codes(&readme_section(), "Exit codes:", "- ", '`');
    assert_eq!(
        in_help.keys().copied().collect::<Vec<_>>(),
        [0, 1, 2, 3],
        "{help}"
    );
    assert_eq!(in_readme, in_help, "README.md, `{SECTION}`");
    // The codes the CLI returns are the ones described.
    assert!(in_help[&EXIT_USAGE].starts_with("usage:"), "{in_help:?}");
    assert!(
        in_help[&EXIT_REAUTHORIZE].starts_with("the connection must be authorized again"),
        "{in_help:?}"
    );
    // The short help points at the list.
    let (code, short) = connector_host(&["-h"]);
    assert_eq!(code, 0);
    assert!(
        short.ends_with(
            "Exit codes: 0 success, 1 error, 2 usage, 3 authorize again (details: --help).\n"
        ),
        "{short}"
    );
}

/// The README's vendor list, between these markers, is generated from the built-in catalogue
/// (`presets/*.json`); `UPDATE_README=1` rewrites it.
const VENDORS_START: &str = "<!-- vendors: generated from presets/*.json by readme_help.rs -->\n";
const VENDORS_END: &str = "<!-- end of vendors -->\n";

#[test]
fn the_readme_lists_every_built_in_preset() {
    let catalogue = connector_host::presets::Catalogue::built_in();
    let mut list = format!(
        "{} presets:\n\n| vendor | `--provider` | `--var` |\n|---|---|---|\n",
        catalogue.presets().len()
    );
    for preset in catalogue.presets() {
        let variables: Vec<String> = preset.variables.iter().map(|v| format!("`{v}`")).collect();
        list.push_str(&format!(
            "| {} | `{}` | {} |\n",
            preset.display_name.replace('|', "\\|"),
            preset.id,
            variables.join(", ")
        ));
    }
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../README.md");
    let readme = std::fs::read_to_string(path).unwrap();
    let start = readme
        .find(VENDORS_START)
        .expect("the vendors' start marker")
        + VENDORS_START.len();
    let end = readme.find(VENDORS_END).expect("the vendors' end marker");
    if std::env::var_os("UPDATE_README").is_some() {
        let updated = format!("{}{list}{}", &readme[..start], &readme[end..]);
        std::fs::write(path, updated).unwrap();
    } else {
        assert_eq!(
            &readme[start..end],
            list,
            "run with UPDATE_README=1 and review the diff"
        );
    }
}

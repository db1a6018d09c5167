//! The preset catalogue (data beside the component since contract 0.4.0): every built-in
//! document is sourced and keeps its endpoints on the vendor's domains; local presets load
//! from a file or a directory, replace a built-in one with a warning, and a broken file is
//! refused with its name and the field to blame.

use std::path::{Path, PathBuf};

use connector_host::presets::{Catalogue, Origin, PresetError, template_host};
use connector_host::{AllowList, HttpTransport, Limits, Session, profile_endpoints};

use crate::common::{Scratch, runtime};

fn session() -> Session {
    runtime()
        .instantiate(HttpTransport::new(AllowList::default(), Limits::default()))
        .unwrap()
}

/// An empty scratch directory, removed with its files when the test ends.
fn temp_dir(name: &str) -> Scratch {
    let dir = Scratch::new(&format!("presets-{name}"));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// A valid local preset document.
fn document(id: &str, token_url: &str) -> String {
    format!(
        r#"{{
  "id": "{id}",
  "display-name": "Acme {id}",
  "domains": ["acme.example"],
  "notes": "A local preset.",
  "sources": ["https://docs.acme.example/oauth"],
  "profile": {{
    "id": "{id}",
    "authorize-url": "https://auth.acme.example/authorize",
    "token-url": "{token_url}",
    "variables": []
  }}
}}
"#
    )
}

fn load(paths: &[PathBuf]) -> Result<Catalogue, PresetError> {
    Catalogue::with_local(paths, &mut session())
}

/// The error's text, with the temporary directory shortened to `DIR`.
fn message(error: PresetError, dir: &Path) -> String {
    error.to_string().replace(&dir.display().to_string(), "DIR")
}

#[test]
fn every_built_in_preset_is_sourced_and_stays_on_its_vendors_domains() {
    let catalogue = Catalogue::built_in();
    // Every document in presets/ made it in (the catalogue leaves out one it cannot read).
    let files = std::fs::read_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/presets"))
        .unwrap()
        .filter(|entry| {
            let path = entry.as_ref().unwrap().path();
            path.extension().is_some_and(|ext| ext == "json")
        })
        .count();
    assert_eq!(catalogue.presets().len(), files);
    assert!(files >= 100, "{files}");
    let mut session = session();
    let mut ids: Vec<&str> = vec![];
    for preset in catalogue.presets() {
        let id = preset.id.as_str();
        ids.push(id);
        assert_eq!(preset.origin, Origin::BuiltIn);
        assert!(!preset.notes.trim().is_empty(), "{id}: notes");
        assert!(!preset.sources.is_empty(), "{id}: no documentation source");
        for source in &preset.sources {
            assert!(source.starts_with("https://"), "{id}: source {source}");
        }
        let profile = preset.profile(&mut session).unwrap();
        let mut checked = 0;
        for (field, url) in profile_endpoints(&profile) {
            // Every endpoint is https, or starts with a base-URL placeholder the vendor
            // documents (self-hosted servers: Keycloak, Gitea, ...).
            assert!(
                url.starts_with("https://") || url.starts_with('{'),
                "{id}: {field} {url}"
            );
            // On a host of the vendor's, unless the whole host is a placeholder (Okta's
            // `{domain}`).
            if let Some(host) = template_host(url) {
                checked += 1;
                assert!(
                    preset
                        .domains
                        .iter()
                        .any(|domain| host == *domain || host.ends_with(&format!(".{domain}"))),
                    "{id}: {field} host {host} is not on {:?}",
                    preset.domains
                );
            }
        }
        assert!(
            checked == 0 || !preset.domains.is_empty(),
            "{id}: endpoints on fixed hosts, but no domains"
        );
    }
    let mut sorted = ids.clone();
    sorted.sort_unstable();
    sorted.dedup();
    assert_eq!(ids, sorted, "ids are unique and listed in order");
}

#[test]
fn a_local_directory_adds_presets_and_replaces_a_built_in_one_with_a_warning() {
    let dir = temp_dir("local");
    std::fs::write(
        dir.join("acme.json"),
        document("acme", "https://auth.acme.example/token"),
    )
    .unwrap();
    // An array of documents in one file; the second replaces the built-in `github`.
    let github = document("github", "https://auth.acme.example/github-token")
        .replace("Acme github", "GitHub Enterprise at Acme");
    std::fs::write(
        dir.join("more.json"),
        format!(
            "[{}, {github}]",
            document("acme-eu", "https://eu.acme.example/token")
        ),
    )
    .unwrap();
    // Files that are not `*.json` are not read.
    std::fs::write(dir.join("README.md"), "not a preset").unwrap();

    let catalogue = load(&[dir.to_path_buf()]).unwrap();
    assert_eq!(
        catalogue.warnings(),
        [format!(
            "the preset `github` in {} replaces the built-in one",
            dir.join("more.json").display()
        )]
    );
    let acme = catalogue.get("acme").unwrap();
    assert_eq!(acme.origin, Origin::Local(dir.join("acme.json")));
    assert_eq!(acme.display_name, "Acme acme");
    let github = catalogue.get("github").unwrap();
    assert_eq!(github.display_name, "GitHub Enterprise at Acme");
    assert_eq!(github.origin, Origin::Local(dir.join("more.json")));
    let mut session = session();
    assert_eq!(
        catalogue.profile("github", &mut session).unwrap().token_url,
        "https://auth.acme.example/github-token"
    );
    assert_eq!(
        catalogue
            .profile("acme-eu", &mut session)
            .unwrap()
            .token_url,
        "https://eu.acme.example/token"
    );
    // The built-in catalogue itself is untouched, and the rest of it is still there.
    assert_eq!(
        Catalogue::built_in().get("github").unwrap().origin,
        Origin::BuiltIn
    );
    assert_eq!(
        catalogue.presets().len(),
        Catalogue::built_in().presets().len() + 2
    );
    let found: Vec<&str> = catalogue
        .search("ACME eu")
        .map(|preset| preset.id.as_str())
        .collect();
    assert_eq!(found, ["acme-eu"]);
}

#[test]
fn a_broken_local_preset_is_refused_with_its_file_and_field() {
    let dir = temp_dir("broken");
    let file = dir.join("acme.json");
    let valid = document("acme", "https://auth.acme.example/token");
    let cases: Vec<(String, &str)> = vec![
        // The document's own members.
        (
            "{ not json".into(),
            "DIR/acme.json: not JSON: key must be a string at line 1 column 3",
        ),
        (
            valid.replace("\"display-name\"", "\"display_name\""),
            "DIR/acme.json: `display_name`: unknown field `display_name`, expected one of `id`, \
             `display-name`, `domains`, `notes`, `sources`, `profile`",
        ),
        (
            valid.replace("\"https://docs.acme.example/oauth\"", "7"),
            "DIR/acme.json: `sources[0]`: invalid type: integer `7`, expected a string",
        ),
        (
            valid.replace(
                "https://docs.acme.example/oauth",
                "http://docs.acme.example/oauth",
            ),
            "DIR/acme.json: `sources[0]`: must be an https URL",
        ),
        (
            valid.replace(
                "\"id\": \"acme\",\n  \"display",
                "\"id\": \"Acme!\",\n  \"display",
            ),
            "DIR/acme.json: `id`: must be 1 to 64 lower-case letters, digits and `-`, not \
             starting with `-`",
        ),
        (
            valid.replace(
                "\"id\": \"acme\",\n    \"authorize",
                "\"id\": \"other\",\n    \"authorize",
            ),
            "DIR/acme.json: `profile.id`: must be `acme`, the preset's id",
        ),
        // The profile, as the component reads it.
        (
            valid.replace("\"https://auth.acme.example/token\"", "5"),
            "DIR/acme.json: `profile.token-url`: invalid type: integer `5`, expected a string",
        ),
        (
            valid.replace(
                "\"variables\": []",
                "\"scope-separator\": \",\", \"pkce\": \"sha1\"",
            ),
            "DIR/acme.json: `profile.pkce`: unknown variant `sha1`, expected one of `s256`, \
             `plain`, `disabled`",
        ),
        (
            valid.replace(
                "https://auth.acme.example/token",
                "http://auth.acme.example/token",
            ),
            "DIR/acme.json: `profile.token-url`: `token-url` uses plain HTTP on a host other \
             than loopback; use https",
        ),
        (
            valid.replace(
                "https://auth.acme.example/token",
                "https://auth.evil.example/token",
            ),
            "DIR/acme.json: `profile.token-url`: host `auth.evil.example` is not one of the \
             preset's domains (acme.example) nor below one",
        ),
    ];
    for (text, expected) in cases {
        std::fs::write(&file, &text).unwrap();
        let error = load(std::slice::from_ref(&file)).unwrap_err();
        assert_eq!(message(error, &dir), expected, "{text}");
    }
    // In an array, the document's position is part of the field.
    std::fs::write(
        &file,
        format!(
            "[{valid}, {}]",
            valid.replace("\"notes\": \"A local preset.\"", "\"notes\": 1")
        ),
    )
    .unwrap();
    assert_eq!(
        message(load(std::slice::from_ref(&file)).unwrap_err(), &dir),
        "DIR/acme.json: `[1].notes`: invalid type: integer `1`, expected a string"
    );
    // Two local files with one id.
    std::fs::write(&file, &valid).unwrap();
    std::fs::write(dir.join("copy.json"), &valid).unwrap();
    assert_eq!(
        message(load(&[dir.to_path_buf()]).unwrap_err(), &dir),
        "preset `acme` is defined twice: in DIR/acme.json and in DIR/copy.json"
    );
    // A file too large to be a preset file.
    std::fs::write(&file, " ".repeat(4 * 1024 * 1024 + 1)).unwrap();
    assert_eq!(
        message(load(std::slice::from_ref(&file)).unwrap_err(), &dir),
        "DIR/acme.json: larger than 4 MiB"
    );
    let missing = dir.join("missing.json");
    assert!(
        message(load(&[missing]).unwrap_err(), &dir)
            .starts_with("cannot read DIR/missing.json: No such file or directory")
    );
}

//! Compile once: the compiled component is kept in an owner-only cache and loaded only when
//! it was written for exactly these bytes and this engine, by this user, and not tampered
//! with; anything else is compiled again.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use connector_host::compile_cache::Origin;
use connector_host::runtime::{BUILT_COMPONENT, BUILT_HOSTILE_COMPONENT};
use connector_host::{AllowList, HttpTransport, Limits, Runtime};

use crate::common::Scratch;

/// A scratch directory for one test's cache; each holds compiled components of a few
/// megabytes, removed when the test ends.
fn temp_dir(label: &str) -> Scratch {
    Scratch::new(&format!("compile-cache-{label}"))
}

fn origin(component: &str, cache: &Path) -> Origin {
    Runtime::load_cached(Path::new(component), Some(cache))
        .expect("the component loads")
        .origin()
}

/// The cache's files (name, mode).
fn files(cache: &Path) -> Vec<(String, u32)> {
    let mut files: Vec<(String, u32)> = std::fs::read_dir(cache)
        .unwrap()
        .map(|entry| {
            let entry = entry.unwrap();
            let mode = entry.metadata().unwrap().permissions().mode() & 0o777;
            (entry.file_name().into_string().unwrap(), mode)
        })
        .collect();
    files.sort();
    files
}

#[test]
fn the_second_load_uses_the_compiled_form_and_works() {
    let scratch = temp_dir("real");
    let cache = scratch.join("nested");
    assert_eq!(origin(BUILT_COMPONENT, &cache), Origin::Compiled);
    let runtime = Runtime::load_cached(Path::new(BUILT_COMPONENT), Some(&cache)).unwrap();
    assert_eq!(runtime.origin(), Origin::Cache);
    let mut session = runtime
        .instantiate(HttpTransport::new(AllowList::default(), Limits::default()))
        .unwrap();
    let github = connector_host::presets::Catalogue::built_in()
        .profile("github", &mut session)
        .unwrap();
    assert_eq!(
        github.token_url,
        "https://github.com/login/oauth/access_token"
    );
    assert_eq!(
        std::fs::metadata(&cache).unwrap().permissions().mode() & 0o777,
        0o700
    );
    let kept = files(&cache);
    assert_eq!(kept.len(), 1);
    assert!(
        kept[0].0.ends_with(".cwasm") && kept[0].0.len() == 64 + 6,
        "{kept:?}"
    );
    assert_eq!(kept[0].1, 0o600);
}

#[test]
fn anything_that_is_not_a_private_compiled_form_for_these_bytes_is_compiled_again() {
    let cache = temp_dir("tamper");
    assert_eq!(origin(BUILT_HOSTILE_COMPONENT, &cache), Origin::Compiled);
    assert_eq!(origin(BUILT_HOSTILE_COMPONENT, &cache), Origin::Cache);
    let (name, _) = files(&cache).remove(0);
    let cached = cache.join(&name);
    let good = std::fs::read(&cached).unwrap();

    // Readable by others: not trusted, compiled, and replaced by a private file.
    std::fs::set_permissions(&cached, std::fs::Permissions::from_mode(0o644)).unwrap();
    assert_eq!(origin(BUILT_HOSTILE_COMPONENT, &cache), Origin::Compiled);
    assert_eq!(files(&cache), [(name.clone(), 0o600)]);
    assert_eq!(origin(BUILT_HOSTILE_COMPONENT, &cache), Origin::Cache);

    // Damaged bytes, or compiled code torn short (its digest no longer matches): compiled
    // again and replaced, never loaded.
    std::fs::write(&cached, b"not compiled code").unwrap();
    assert_eq!(origin(BUILT_HOSTILE_COMPONENT, &cache), Origin::Compiled);
    assert_eq!(std::fs::read(&cached).unwrap(), good);
    std::fs::write(&cached, &good[..good.len() - 100]).unwrap();
    assert_eq!(origin(BUILT_HOSTILE_COMPONENT, &cache), Origin::Compiled);
    let mut flipped = good.clone();
    let last = flipped.len() - 1;
    flipped[last] ^= 1;
    std::fs::write(&cached, &flipped).unwrap();
    assert_eq!(origin(BUILT_HOSTILE_COMPONENT, &cache), Origin::Compiled);
    assert_eq!(std::fs::read(&cached).unwrap(), good);

    // A symlink to a good compiled form is not followed.
    let elsewhere = temp_dir("elsewhere");
    std::fs::create_dir_all(&elsewhere).unwrap();
    let target = elsewhere.join("good.cwasm");
    std::fs::write(&target, &good).unwrap();
    std::fs::set_permissions(&target, std::fs::Permissions::from_mode(0o600)).unwrap();
    std::fs::remove_file(&cached).unwrap();
    std::os::unix::fs::symlink(&target, &cached).unwrap();
    assert_eq!(origin(BUILT_HOSTILE_COMPONENT, &cache), Origin::Compiled);

    // A cache directory others can write to is not used at all.
    let open = temp_dir("open");
    std::fs::create_dir_all(&open).unwrap();
    std::fs::set_permissions(&open, std::fs::Permissions::from_mode(0o777)).unwrap();
    assert_eq!(origin(BUILT_HOSTILE_COMPONENT, &open), Origin::Compiled);
    assert_eq!(origin(BUILT_HOSTILE_COMPONENT, &open), Origin::Compiled);
    assert!(files(&open).is_empty(), "nothing is written there");
}

#[test]
fn another_component_gets_its_own_entry() {
    let cache = temp_dir("two");
    assert_eq!(origin(BUILT_HOSTILE_COMPONENT, &cache), Origin::Compiled);
    assert_eq!(origin(BUILT_COMPONENT, &cache), Origin::Compiled);
    assert_eq!(files(&cache).len(), 2);
    assert_eq!(origin(BUILT_COMPONENT, &cache), Origin::Cache);
}

//! The component imports what its world names and nothing else: no `wasi:cli`, `wasi:io`,
//! filesystem or sockets, so an embedder provides four interfaces (and their types).

use crate::common::runtime;

#[test]
fn the_component_imports_only_the_transport_the_signer_the_clock_and_random() {
    // The world imports the WASI interfaces at 0.2.0; the target's component linker raises
    // that to the WASI 0.2 release it was built with (0.2.6 today), a semver-compatible
    // version that any WASI 0.2 host serves. Compare up to the minor version.
    let mut imports: Vec<String> = runtime()
        .imports()
        .into_iter()
        .map(|name| match name.split_once("@0.2.") {
            Some((interface, _patch)) if name.starts_with("wasi:") => format!("{interface}@0.2"),
            _ => name,
        })
        .collect();
    imports.sort();
    assert_eq!(
        imports,
        [
            "oauth-connector:oauth2/signer@0.4.0",
            "oauth-connector:oauth2/transport@0.4.0",
            "oauth-connector:oauth2/types@0.4.0",
            "wasi:clocks/wall-clock@0.2",
            "wasi:random/random@0.2",
        ]
    );
}

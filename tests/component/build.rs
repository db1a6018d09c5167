//! What the build does to the component after cargo made it: identical functions merged
//! (`host-example/build/merge_functions.rs`), and an initial memory that holds a typical
//! call's heap (`build.rs`, `src/allocator.rs`).

use std::collections::HashSet;

use connector_host::runtime::BUILT_COMPONENT;

/// The core modules of the built component, as byte ranges of it.
fn core_modules(component: &[u8]) -> Vec<&[u8]> {
    let mut modules = vec![];
    for payload in wasmparser::Parser::new(0).parse_all(component) {
        if let wasmparser::Payload::ModuleSection {
            unchecked_range, ..
        } = payload.expect("the built component parses")
        {
            modules.push(&component[unchecked_range]);
        }
    }
    modules
}

#[test]
fn no_two_functions_of_the_built_component_have_one_type_and_one_body() {
    let component = std::fs::read(BUILT_COMPONENT).expect("the built component");
    let modules = core_modules(&component);
    assert!(!modules.is_empty());
    let mut defined = 0;
    for module in modules {
        let mut types = vec![];
        let mut seen = HashSet::new();
        let mut at = 0;
        for payload in wasmparser::Parser::new(0).parse_all(module) {
            match payload.expect("a core module parses") {
                wasmparser::Payload::FunctionSection(section) => {
                    types = section.into_iter().map(Result::unwrap).collect();
                }
                wasmparser::Payload::CodeSectionEntry(body) => {
                    let bytes = &module[body.range()];
                    assert!(
                        seen.insert((types[at], bytes.to_vec())),
                        "defined function {at} repeats an earlier one"
                    );
                    at += 1;
                }
                _ => {}
            }
        }
        defined += at;
    }
    // The merging ran on a component of this size (about 1,500 functions today).
    assert!(defined > 1_000, "{defined} functions");
}

#[test]
fn the_initial_memory_holds_the_stack_the_data_and_a_heap() {
    let component = std::fs::read(BUILT_COMPONENT).expect("the built component");
    let main = core_modules(&component)
        .into_iter()
        .max_by_key(|module| module.len())
        .expect("a core module");
    let memories: Vec<wasmparser::MemoryType> = wasmparser::Parser::new(0)
        .parse_all(main)
        .find_map(|payload| match payload.unwrap() {
            wasmparser::Payload::MemorySection(section) => {
                Some(section.into_iter().map(Result::unwrap).collect())
            }
            _ => None,
        })
        .expect("the component's module defines its memory");
    assert_eq!(memories.len(), 1);
    // 32 pages of 64 KiB: the 1 MiB stack, the static data, the rest a heap.
    assert_eq!(memories[0].initial, 32);
}

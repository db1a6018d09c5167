//! Merging identical functions in a built component (`build.rs` runs it on the component it
//! builds; the benchmarks run it on the build that keeps names, to attribute sizes).
//!
//! rustc merges identical functions on most targets but not on wasm32, where its
//! `merge-functions` setting is off, so the component carries many byte-identical copies
//! (drop glue, monomorphised code of equal layout, the canonical ABI's lowering of one type in
//! several exports): about a tenth of its code. Two functions of one type whose bodies are the
//! same bytes, once their calls name the surviving copies, behave the same; every reference
//! to a dropped copy (calls, the function table, exports, names) is pointed at the survivor
//! and the functions are numbered again. Nothing else in the module changes.

use std::collections::HashMap;

use wasm_encoder::reencode::{self, Reencode};

/// What merging did to one component.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Merged {
    /// Functions defined in the core modules before merging.
    pub functions_before: usize,
    /// Functions defined after merging.
    pub functions_after: usize,
}

/// `component` with the identical functions of each of its core modules merged.
pub fn merge_identical_functions(component: &[u8]) -> Result<(Vec<u8>, Merged), String> {
    let header_len = 8;
    if component.len() < header_len || !wasmparser::Parser::is_component(component) {
        return Err("not a WebAssembly component".into());
    }
    let mut out = component[..header_len].to_vec();
    let mut merged = Merged {
        functions_before: 0,
        functions_after: 0,
    };
    let mut at = header_len;
    while at < component.len() {
        let id = component[at];
        let (len, len_bytes) = read_u32(&component[at + 1..])?;
        let start = at + 1 + len_bytes;
        let end = start
            .checked_add(len as usize)
            .filter(|end| *end <= component.len())
            .ok_or("a section runs past the end of the component")?;
        let body = &component[start..end];
        // Section 1 of a component is a core module.
        if id == 1 {
            let (module, stats) = merge_in_module(body)?;
            merged.functions_before += stats.functions_before;
            merged.functions_after += stats.functions_after;
            out.push(1);
            write_u32(
                &mut out,
                u32::try_from(module.len()).map_err(|_| "module too large")?,
            );
            out.extend_from_slice(&module);
        } else {
            out.extend_from_slice(&component[at..end]);
        }
        at = end;
    }
    // What comes out must still be a valid component.
    wasmparser::Validator::new_with_features(wasmparser::WasmFeatures::all())
        .validate_all(&out)
        .map_err(|error| format!("merging functions made an invalid component: {error}"))?;
    Ok((out, merged))
}

/// One core module with its identical functions merged.
fn merge_in_module(module: &[u8]) -> Result<(Vec<u8>, Merged), String> {
    let mut imported = 0u32;
    let mut types = Vec::new();
    let mut bodies = Vec::new();
    for payload in wasmparser::Parser::new(0).parse_all(module) {
        match payload.map_err(|error| error.to_string())? {
            wasmparser::Payload::ImportSection(section) => {
                for import in section.into_imports() {
                    let import = import.map_err(|error| error.to_string())?;
                    if matches!(import.ty, wasmparser::TypeRef::Func(_)) {
                        imported += 1;
                    }
                }
            }
            wasmparser::Payload::FunctionSection(section) => {
                for ty in section {
                    types.push(ty.map_err(|error| error.to_string())?);
                }
            }
            wasmparser::Payload::CodeSectionEntry(body) => bodies.push(body),
            _ => {}
        }
    }
    let total = imported as usize + bodies.len();
    // `survivor[f]`: the function that stands for `f` (itself unless merged away). Merging
    // can make more bodies equal (their calls now name one survivor), so it runs until
    // nothing changes.
    let mut survivor: Vec<u32> = (0..total as u32).collect();
    loop {
        let mut first_of: HashMap<(u32, Vec<u8>), u32> = HashMap::new();
        let mut changed = false;
        for (defined, body) in bodies.iter().enumerate() {
            let index = imported + defined as u32;
            if survivor[index as usize] != index {
                continue;
            }
            let key = (types[defined], encode_body(body, &survivor)?);
            match first_of.get(&key) {
                Some(&first) => {
                    survivor[index as usize] = first;
                    changed = true;
                }
                None => {
                    first_of.insert(key, index);
                }
            }
        }
        // A survivor may itself have been merged in this round: follow the chain.
        for index in 0..total {
            let mut target = survivor[index];
            while survivor[target as usize] != target {
                target = survivor[target as usize];
            }
            survivor[index] = target;
        }
        if !changed {
            break;
        }
    }
    // The new numbering: survivors in order, merged functions at their survivor's number.
    let mut kept = vec![false; total];
    let mut new_index = vec![0u32; total];
    let mut next = 0u32;
    for index in 0..total {
        if survivor[index] == index as u32 {
            kept[index] = true;
            new_index[index] = next;
            next += 1;
        }
    }
    for index in 0..total {
        new_index[index] = new_index[survivor[index] as usize];
    }
    let mut renumber = Renumber {
        new_index,
        kept,
        imported,
        next_defined: 0,
    };
    let mut out = wasm_encoder::Module::new();
    renumber
        .parse_core_module(&mut out, wasmparser::Parser::new(0), module)
        .map_err(|error| format!("re-encoding the module: {error:?}"))?;
    let stats = Merged {
        functions_before: bodies.len(),
        functions_after: next as usize - imported as usize,
    };
    Ok((out.finish(), stats))
}

/// `body` re-encoded with every function index replaced by its survivor.
fn encode_body(body: &wasmparser::FunctionBody<'_>, survivor: &[u32]) -> Result<Vec<u8>, String> {
    let mut mapper = Survivors(survivor);
    let mut code = wasm_encoder::CodeSection::new();
    mapper
        .parse_function_body(&mut code, body.clone())
        .map_err(|error| format!("reading a function body: {error:?}"))?;
    let mut bytes = Vec::new();
    wasm_encoder::Encode::encode(&code, &mut bytes);
    Ok(bytes)
}

/// Maps function indices to their survivors (to compare bodies).
struct Survivors<'a>(&'a [u32]);

impl Reencode for Survivors<'_> {
    type Error = std::convert::Infallible;

    fn function_index(&mut self, func: u32) -> Result<u32, reencode::Error<Self::Error>> {
        Ok(self.0[func as usize])
    }
}

/// Re-encodes a module without its merged functions, everything renumbered.
struct Renumber {
    /// The new number of each old function (a merged one's is its survivor's).
    new_index: Vec<u32>,
    /// Whether each old function stays.
    kept: Vec<bool>,
    /// How many functions the module imports (numbered before the defined ones).
    imported: u32,
    /// The next defined function the code section reaches.
    next_defined: u32,
}

impl Reencode for Renumber {
    type Error = std::convert::Infallible;

    fn function_index(&mut self, func: u32) -> Result<u32, reencode::Error<Self::Error>> {
        Ok(self.new_index[func as usize])
    }

    fn parse_function_section(
        &mut self,
        functions: &mut wasm_encoder::FunctionSection,
        section: wasmparser::FunctionSectionReader<'_>,
    ) -> Result<(), reencode::Error<Self::Error>> {
        for (defined, ty) in section.into_iter().enumerate() {
            if self.kept[self.imported as usize + defined] {
                functions.function(self.type_index(ty?)?);
            }
        }
        Ok(())
    }

    fn parse_function_body(
        &mut self,
        code: &mut wasm_encoder::CodeSection,
        func: wasmparser::FunctionBody<'_>,
    ) -> Result<(), reencode::Error<Self::Error>> {
        let index = (self.imported + self.next_defined) as usize;
        self.next_defined += 1;
        if self.kept[index] {
            reencode::utils::parse_function_body(self, code, func)?;
        }
        Ok(())
    }

    fn parse_custom_name_subsection(
        &mut self,
        names: &mut wasm_encoder::NameSection,
        section: wasmparser::Name<'_>,
    ) -> Result<(), reencode::Error<Self::Error>> {
        // A merged function's name goes with it: its survivor keeps its own.
        match section {
            wasmparser::Name::Function(map) => {
                let mut functions = wasm_encoder::NameMap::new();
                for naming in map {
                    let naming = naming?;
                    if self.kept[naming.index as usize] {
                        functions.append(self.new_index[naming.index as usize], naming.name);
                    }
                }
                names.functions(&functions);
                Ok(())
            }
            // Locals and labels are per function; other maps name no functions.
            wasmparser::Name::Local(_) | wasmparser::Name::Label(_) => Ok(()),
            other => reencode::utils::parse_custom_name_subsection(self, names, other),
        }
    }
}

/// Reads an unsigned LEB128 `u32`: the value and how many bytes it took.
fn read_u32(bytes: &[u8]) -> Result<(u32, usize), String> {
    let mut value = 0u32;
    for (at, &byte) in bytes.iter().take(5).enumerate() {
        value |= u32::from(byte & 0x7f) << (7 * at);
        if byte & 0x80 == 0 {
            return Ok((value, at + 1));
        }
    }
    Err("a malformed section length".into())
}

/// Appends `value` as unsigned LEB128.
fn write_u32(out: &mut Vec<u8>, mut value: u32) {
    loop {
        let byte = (value & 0x7f) as u8;
        value >>= 7;
        if value == 0 {
            out.push(byte);
            return;
        }
        out.push(byte | 0x80);
    }
}

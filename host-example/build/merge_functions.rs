//! Merging identical and similar functions in a built component (`build.rs` runs it on the
//! component it builds; the benchmarks run it on the build that keeps names, to attribute
//! sizes).
//!
//! rustc merges identical functions on most targets but not on wasm32, where its
//! `merge-functions` setting is off, so the component carries many byte-identical copies
//! (drop glue, monomorphised code of equal layout, the canonical ABI's lowering of one type in
//! several exports): about a tenth of its code. Two functions of one type whose bodies are the
//! same bytes, once their calls name the surviving copies, behave the same; every reference
//! to a dropped copy (calls, the function table, exports, names) is pointed at the survivor
//! and the functions are numbered again. Nothing else in the module changes.
//!
//! Then functions that are equal but for the functions some of their calls name share one
//! body, each keeping its index as a thunk into it (`merge_similar_in_module`).

use std::collections::HashMap;

use wasm_encoder::reencode::{self, Reencode};

/// What merging did to one component.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Merged {
    /// Functions defined in the core modules before merging.
    pub functions_before: usize,
    /// Functions defined after merging identical ones.
    pub functions_after: usize,
    /// Functions that became thunks into a body shared with similar ones.
    pub thunks: usize,
    /// The shared bodies those thunks call (defined functions added).
    pub shared: usize,
}

/// `component` with the identical functions of each of its core modules merged, then each
/// group of similar ones sharing one body (see `merge_similar_in_module`).
pub fn merge_functions(component: &[u8]) -> Result<(Vec<u8>, Merged), String> {
    let header_len = 8;
    if component.len() < header_len || !wasmparser::Parser::is_component(component) {
        return Err("not a WebAssembly component".into());
    }
    let mut out = component[..header_len].to_vec();
    let mut merged = Merged::default();
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
            let (module, similar) = merge_similar_in_module(&module)?;
            merged.thunks += similar.thunks;
            merged.shared += similar.shared;
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
        ..Merged::default()
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

/// Appends `value` as signed LEB128.
fn write_i32(out: &mut Vec<u8>, mut value: i32) {
    loop {
        let byte = (value & 0x7f) as u8;
        value >>= 7;
        let done = (value == 0 && byte & 0x40 == 0) || (value == -1 && byte & 0x40 != 0);
        if done {
            out.push(byte);
            return;
        }
        out.push(byte | 0x80);
    }
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

/// Bodies smaller than this are left alone: a thunk per copy and a table entry per call
/// that differs would cost about as much as they save.
const SIMILAR_MIN_BODY: usize = 128;

/// A group of functions of one type whose bodies are the same but for the functions some
/// of their calls name.
struct Similar {
    /// The members, by function index, in order.
    members: Vec<u32>,
    /// The shared type.
    ty: u32,
    /// For each call (in body order) that differs between members: its position among the
    /// body's calls, the callees' type, and each member's callee.
    differing: Vec<(usize, u32, Vec<u32>)>,
}

/// `module` with each group of similar functions (equal type and body but for the
/// functions some calls name) turned into one shared body plus a thunk per member: the
/// shared body takes the member's number as an extra last parameter and makes each call
/// that differs through the function table (`call_indirect` into entries appended for
/// it); each member keeps its index and passes its arguments and number on. Returns the
/// module and how many thunks and shared bodies it made.
///
/// The canonical ABI's lowering of one result type in several exports is the case this
/// is for: wit-bindgen inlines it into each export, whose bodies then differ only in the
/// implementation they call.
fn merge_similar_in_module(module: &[u8]) -> Result<(Vec<u8>, Merged), String> {
    let unchanged = |module: &[u8]| Ok((module.to_vec(), Merged::default()));
    let mut types: Vec<wasmparser::FuncType> = Vec::new();
    let mut function_types: Vec<u32> = Vec::new();
    let mut imported_tables = 0;
    let mut tables: Vec<wasmparser::Table<'_>> = Vec::new();
    let mut has_elements = false;
    let mut bodies = Vec::new();
    let mut imported = 0u32;
    for payload in wasmparser::Parser::new(0).parse_all(module) {
        match payload.map_err(|error| error.to_string())? {
            wasmparser::Payload::TypeSection(section) => {
                for ty in section.into_iter_err_on_gc_types() {
                    match ty {
                        Ok(ty) => types.push(ty),
                        // Only plain function types are handled.
                        Err(_) => return unchanged(module),
                    }
                }
            }
            wasmparser::Payload::ImportSection(section) => {
                for import in section.into_imports() {
                    match import.map_err(|error| error.to_string())?.ty {
                        wasmparser::TypeRef::Func(ty) => {
                            function_types.push(ty);
                            imported += 1;
                        }
                        wasmparser::TypeRef::Table(_) => imported_tables += 1,
                        _ => {}
                    }
                }
            }
            wasmparser::Payload::FunctionSection(section) => {
                for ty in section {
                    function_types.push(ty.map_err(|error| error.to_string())?);
                }
            }
            wasmparser::Payload::TableSection(section) => {
                for table in section {
                    tables.push(table.map_err(|error| error.to_string())?);
                }
            }
            wasmparser::Payload::ElementSection(_) => has_elements = true,
            wasmparser::Payload::CodeSectionEntry(body) => bodies.push(body),
            _ => {}
        }
    }
    // The calls go through the module's own function table, which must be there to grow.
    let usable_table = imported_tables == 0
        && has_elements
        && tables.first().is_some_and(|table| {
            table.ty.element_type == wasmparser::RefType::FUNCREF
                && !table.ty.table64
                && matches!(table.init, wasmparser::TableInit::RefNull)
        });
    if !usable_table {
        return unchanged(module);
    }

    // Group the bodies by type and by their bytes with every call's callee left out:
    // (type, shape) → [(function, its callees)].
    type Shape = (u32, Vec<u8>);
    let mut groups: HashMap<Shape, Vec<(u32, Vec<u32>)>> = HashMap::new();
    for (defined, body) in bodies.iter().enumerate() {
        if body.range().len() < SIMILAR_MIN_BODY {
            continue;
        }
        let index = imported + defined as u32;
        let (shape, calls) = body_shape(module, body)?;
        groups
            .entry((function_types[index as usize], shape))
            .or_default()
            .push((index, calls));
    }
    let mut similar: Vec<Similar> = groups
        .into_iter()
        .filter(|(_, members)| members.len() > 1)
        .filter_map(|((ty, _), members)| {
            let calls = members[0].1.len();
            let mut differing = Vec::new();
            for position in 0..calls {
                let callees: Vec<u32> = members.iter().map(|(_, calls)| calls[position]).collect();
                if callees.iter().all(|callee| *callee == callees[0]) {
                    continue;
                }
                let callee_type = function_types[callees[0] as usize];
                // A table call names one type: every member's callee must have it.
                if callees
                    .iter()
                    .any(|callee| function_types[*callee as usize] != callee_type)
                {
                    return None;
                }
                differing.push((position, callee_type, callees));
            }
            Some(Similar {
                members: members.into_iter().map(|(index, _)| index).collect(),
                ty,
                differing,
            })
        })
        .collect();
    if similar.is_empty() {
        return unchanged(module);
    }
    // A stable order, whatever the hash map's.
    similar.sort_by_key(|group| group.members[0]);

    let total = function_types.len() as u32;
    let table_start = u32::try_from(tables[0].ty.initial).map_err(|_| "a huge table")?;
    let mut plan = Plan {
        module,
        imported,
        table_written: false,
        new_types: Vec::new(),
        type_count: types.len() as u32,
        shared_types: Vec::new(),
        thunks: HashMap::new(),
        shared_bodies: Vec::new(),
        elements: Vec::new(),
        table_start,
        names: Vec::new(),
    };
    for (number, group) in similar.iter().enumerate() {
        let shared = total + number as u32;
        let ty = &types[group.ty as usize];
        let mut params = ty.params().to_vec();
        params.push(wasmparser::ValType::I32);
        let shared_type = plan.function_type(&types, &params, ty.results());
        plan.shared_types.push(shared_type);
        // Table entries: for each differing call, one per member, in member order.
        let mut bases = Vec::new();
        for (_, _, callees) in &group.differing {
            bases.push(table_start + plan.elements.len() as u32);
            plan.elements.extend_from_slice(callees);
        }
        let first = &bodies[(group.members[0] - imported) as usize];
        plan.shared_bodies.push(shared_body(
            module,
            first,
            ty.params().len() as u32,
            group,
            &bases,
        )?);
        for (member, &index) in group.members.iter().enumerate() {
            plan.thunks.insert(
                index,
                thunk(ty.params().len() as u32, member as u32, shared),
            );
        }
        plan.names.push((shared, group.members[0]));
    }
    let stats = Merged {
        thunks: plan.thunks.len(),
        shared: plan.shared_bodies.len(),
        ..Merged::default()
    };
    let mut out = wasm_encoder::Module::new();
    plan.parse_core_module(&mut out, wasmparser::Parser::new(0), module)
        .map_err(|error| format!("re-encoding the module: {error:?}"))?;
    Ok((out.finish(), stats))
}

/// A body's bytes with every call's callee left out, and the callees in order.
fn body_shape(
    module: &[u8],
    body: &wasmparser::FunctionBody<'_>,
) -> Result<(Vec<u8>, Vec<u32>), String> {
    let mut shape = Vec::with_capacity(body.range().len());
    let mut calls = Vec::new();
    let mut operators = body.get_operators_reader().map_err(|e| e.to_string())?;
    shape.extend_from_slice(&module[body.range().start..operators.original_position()]);
    while !operators.eof() {
        let (operator, offset) = operators.read_with_offset().map_err(|e| e.to_string())?;
        if let wasmparser::Operator::Call { function_index } = operator {
            shape.push(0x10);
            calls.push(function_index);
        } else {
            shape.extend_from_slice(&module[offset..operators.original_position()]);
        }
    }
    Ok((shape, calls))
}

/// The shared body of `group`, from its first member's (`params` parameters): locals
/// numbered one higher for the member's number, the new last parameter, and each
/// differing call made through the table at `bases[i]` plus that number.
fn shared_body(
    module: &[u8],
    body: &wasmparser::FunctionBody<'_>,
    params: u32,
    group: &Similar,
    bases: &[u32],
) -> Result<Vec<u8>, String> {
    let mut out = Vec::with_capacity(body.range().len() + 16);
    let mut operators = body.get_operators_reader().map_err(|e| e.to_string())?;
    out.extend_from_slice(&module[body.range().start..operators.original_position()]);
    let mut call = 0;
    let mut differing = group.differing.iter().zip(bases).peekable();
    while !operators.eof() {
        let (operator, offset) = operators.read_with_offset().map_err(|e| e.to_string())?;
        let end = operators.original_position();
        let local = |opcode: u8, index: u32, out: &mut Vec<u8>| {
            out.push(opcode);
            write_u32(out, if index >= params { index + 1 } else { index });
        };
        match operator {
            wasmparser::Operator::Call { .. } => {
                match differing.peek() {
                    Some(((position, callee_type, _), base)) if *position == call => {
                        // local.get <number>; i32.const <base>; i32.add; call_indirect
                        out.push(0x20);
                        write_u32(&mut out, params);
                        out.push(0x41);
                        write_i32(&mut out, **base as i32);
                        out.push(0x6a);
                        out.push(0x11);
                        write_u32(&mut out, *callee_type);
                        out.push(0x00);
                        differing.next();
                    }
                    _ => out.extend_from_slice(&module[offset..end]),
                }
                call += 1;
            }
            wasmparser::Operator::LocalGet { local_index } => local(0x20, local_index, &mut out),
            wasmparser::Operator::LocalSet { local_index } => local(0x21, local_index, &mut out),
            wasmparser::Operator::LocalTee { local_index } => local(0x22, local_index, &mut out),
            _ => out.extend_from_slice(&module[offset..end]),
        }
    }
    Ok(out)
}

/// A member's new body: its `params` arguments and its `number`, passed to `shared`.
fn thunk(params: u32, number: u32, shared: u32) -> Vec<u8> {
    let mut out = vec![0x00]; // no locals
    for param in 0..params {
        out.push(0x20);
        write_u32(&mut out, param);
    }
    out.push(0x41);
    write_i32(&mut out, number as i32);
    out.push(0x10);
    write_u32(&mut out, shared);
    out.push(0x0b);
    out
}

/// What `merge_similar_in_module` adds to and replaces in the module.
struct Plan<'a> {
    /// The module's bytes.
    module: &'a [u8],
    /// How many functions it imports.
    imported: u32,
    /// Whether table 0 has been written (grown).
    table_written: bool,
    /// Function types to append: (params, results).
    new_types: Vec<(Vec<wasmparser::ValType>, Vec<wasmparser::ValType>)>,
    /// How many types the module had.
    type_count: u32,
    /// Each shared body's type.
    shared_types: Vec<u32>,
    /// The members' thunk bodies, by function index.
    thunks: HashMap<u32, Vec<u8>>,
    /// The shared bodies, appended after the module's functions.
    shared_bodies: Vec<Vec<u8>>,
    /// The table entries to append.
    elements: Vec<u32>,
    /// Where they start (the table's old size).
    table_start: u32,
    /// Each shared body's index and the member whose name it takes.
    names: Vec<(u32, u32)>,
}

impl Plan<'_> {
    /// The index of the function type (params → results), appended if new.
    fn function_type(
        &mut self,
        types: &[wasmparser::FuncType],
        params: &[wasmparser::ValType],
        results: &[wasmparser::ValType],
    ) -> u32 {
        if let Some(index) = types
            .iter()
            .position(|ty| ty.params() == params && ty.results() == results)
        {
            return index as u32;
        }
        let new = (params.to_vec(), results.to_vec());
        let at = match self.new_types.iter().position(|ty| *ty == new) {
            Some(at) => at,
            None => {
                self.new_types.push(new);
                self.new_types.len() - 1
            }
        };
        self.type_count + at as u32
    }
}

impl Reencode for Plan<'_> {
    type Error = std::convert::Infallible;

    fn parse_type_section(
        &mut self,
        types: &mut wasm_encoder::TypeSection,
        section: wasmparser::TypeSectionReader<'_>,
    ) -> Result<(), reencode::Error<Self::Error>> {
        reencode::utils::parse_type_section(self, types, section)?;
        for (params, results) in self.new_types.clone() {
            let params: Vec<_> = params
                .into_iter()
                .map(|ty| self.val_type(ty))
                .collect::<Result<_, _>>()?;
            let results: Vec<_> = results
                .into_iter()
                .map(|ty| self.val_type(ty))
                .collect::<Result<_, _>>()?;
            types.ty().function(params, results);
        }
        Ok(())
    }

    fn parse_function_section(
        &mut self,
        functions: &mut wasm_encoder::FunctionSection,
        section: wasmparser::FunctionSectionReader<'_>,
    ) -> Result<(), reencode::Error<Self::Error>> {
        reencode::utils::parse_function_section(self, functions, section)?;
        for &ty in &self.shared_types {
            functions.function(ty);
        }
        Ok(())
    }

    fn parse_table(
        &mut self,
        tables: &mut wasm_encoder::TableSection,
        table: wasmparser::Table<'_>,
    ) -> Result<(), reencode::Error<Self::Error>> {
        let mut ty = self.table_type(table.ty)?;
        // Table 0, the one `call_indirect` names, grows by the appended entries.
        if !self.table_written {
            self.table_written = true;
            ty.minimum += self.elements.len() as u64;
            ty.maximum = ty.maximum.map(|maximum| maximum.max(ty.minimum));
        }
        tables.table(ty);
        Ok(())
    }

    fn parse_custom_name_subsection(
        &mut self,
        names: &mut wasm_encoder::NameSection,
        section: wasmparser::Name<'_>,
    ) -> Result<(), reencode::Error<Self::Error>> {
        // A shared body takes its first member's name, so that sizes are still attributed.
        match section {
            wasmparser::Name::Function(map) => {
                let mut functions = wasm_encoder::NameMap::new();
                let mut member_names = HashMap::new();
                for naming in map {
                    let naming = naming?;
                    functions.append(naming.index, naming.name);
                    member_names.insert(naming.index, naming.name);
                }
                for (shared, member) in &self.names {
                    if let Some(name) = member_names.get(member) {
                        functions.append(*shared, name);
                    }
                }
                names.functions(&functions);
                Ok(())
            }
            other => reencode::utils::parse_custom_name_subsection(self, names, other),
        }
    }

    fn parse_element_section(
        &mut self,
        elements: &mut wasm_encoder::ElementSection,
        section: wasmparser::ElementSectionReader<'_>,
    ) -> Result<(), reencode::Error<Self::Error>> {
        reencode::utils::parse_element_section(self, elements, section)?;
        elements.active(
            None,
            &wasm_encoder::ConstExpr::i32_const(self.table_start as i32),
            wasm_encoder::Elements::Functions(std::borrow::Cow::Borrowed(&self.elements)),
        );
        Ok(())
    }

    fn parse_code_section(
        &mut self,
        code: &mut wasm_encoder::CodeSection,
        section: wasmparser::CodeSectionReader<'_>,
    ) -> Result<(), reencode::Error<Self::Error>> {
        for (defined, body) in section.into_iter().enumerate() {
            let body = body?;
            match self.thunks.get(&(self.imported + defined as u32)) {
                Some(thunk) => code.raw(thunk),
                None => code.raw(&self.module[body.range()]),
            };
        }
        for body in &self.shared_bodies {
            code.raw(body);
        }
        Ok(())
    }
}

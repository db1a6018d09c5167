// Build step: transpiles the component cargo built into gen/ (jco, build time only) and copies
// the preset documents beside it. Skipped when gen/ already holds this exact component.
//
//   CONNECTOR_COMPONENT_WASM=path/to/oauth_connector.wasm npm run build
//
// Also transpiles the hostile test guest (tests/guests/hostile) into gen/hostile/ when it is
// built (CONNECTOR_HOSTILE_WASM, else its default path): the trap tests load it.

import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import {
  cpSync, existsSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync,
} from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const repo = resolve(root, '..');
const builtDir = join(repo, 'target', 'component-build', 'wasm32-wasip2', 'component');
const gen = join(root, 'gen');

const component = resolve(process.env.CONNECTOR_COMPONENT_WASM || join(builtDir, 'oauth_connector.wasm'));
const hostile = resolve(process.env.CONNECTOR_HOSTILE_WASM || join(builtDir, 'hostile_guest.wasm'));

function sha256(bytes) {
  return createHash('sha256').update(bytes).digest('hex');
}

// The generated glue has a debug logger that reads `process.env.JCO_DEBUG` on every call
// (174 call sites). The worker runs with an empty environment anyway; this makes the logger
// a no-op so that nothing in the glue reads the environment at all.
const DEBUG_LOGGER = `const _debugLog = (...args) => {
    if (!globalThis?.process?.env?.JCO_DEBUG) { return; }
    console.debug(...args);
  };`;

const INSTANTIATE_LINE = 'export function instantiate(getCoreModule, imports, instantiateCore = (module, importObject) => new WebAssembly.Instance(module, importObject)) {';
// Bumped when the patches below change, so that gen/ is transpiled again.
const PATCHES = 2;

function transpile(wasm, outDir, name) {
  const bytes = readFileSync(wasm);
  const digest = sha256(bytes);
  const manifestPath = join(outDir, 'manifest.json');
  if (existsSync(manifestPath)) {
    const manifest = JSON.parse(readFileSync(manifestPath, 'utf8'));
    if (manifest.sha256 === digest && manifest.jco === jcoVersion() && manifest.patches === PATCHES) {
      return { digest, fresh: false };
    }
  }
  rmSync(outDir, { recursive: true, force: true });
  mkdirSync(outDir, { recursive: true });
  const jco = join(root, 'node_modules', '@bytecodealliance', 'jco', 'dist', 'jco.js');
  execFileSync(process.execPath, [
    jco,
    'transpile', wasm, '-o', outDir, '--name', name,
    '--instantiation', 'sync', '--no-nodejs-compat', '--no-typescript', '--quiet',
  ], { stdio: ['ignore', 'inherit', 'inherit'] });
  const glue = join(outDir, `${name}.js`);
  const text = readFileSync(glue, 'utf8');
  if (!text.includes(DEBUG_LOGGER)) {
    throw new Error(`${glue}: the debug logger to neutralise was not found (jco's output changed)`);
  }
  let patched = text.replace(DEBUG_LOGGER, 'const _debugLog = () => {};');
  // Without JSPI (Node 20), each of the glue's `WebAssembly.promising(f)` throws a TypeError
  // that its `catch` turns into `f`; each throw makes V8 collect the source positions of the
  // 27,000-line init function, which was 95% of an instance's cost (about 100 ms). Same
  // result, no throw: `f` itself when `WebAssembly.promising` is absent.
  const promising = patched.split('= WebAssembly.promising(').length - 1;
  patched = patched
    .replaceAll('= WebAssembly.promising(', '= _promisingOrSelf(')
    .replace(INSTANTIATE_LINE, `${INSTANTIATE_LINE}\n  const _promisingOrSelf = typeof WebAssembly.promising === 'function' ? WebAssembly.promising : (fn) => fn;`);
  if (!patched.includes('const _promisingOrSelf') || patched.includes('WebAssembly.promising(')) {
    throw new Error(`${glue}: the WebAssembly.promising calls to rewrite were not found as expected (jco's output changed)`);
  }
  if (/\bprocess\b/.test(patched.replace(/\/\/.*$/gm, ''))) {
    throw new Error(`${glue}: the glue still names \`process\` after the patch`);
  }
  writeFileSync(glue, patched);
  writeFileSync(manifestPath, `${JSON.stringify({
    source: wasm, sha256: digest, bytes: bytes.length, jco: jcoVersion(), patches: PATCHES, name, promising,
  }, null, 2)}\n`);
  return { digest, fresh: true };
}

let jcoVersionCache;
function jcoVersion() {
  jcoVersionCache ??= JSON.parse(readFileSync(
    join(root, 'node_modules', '@bytecodealliance', 'jco', 'package.json'),
    'utf8',
  )).version;
  return jcoVersionCache;
}

if (!existsSync(component)) {
  console.error(`build: no component at ${component}; build it first (cargo build -p connector-host) or set CONNECTOR_COMPONENT_WASM`);
  process.exit(1);
}
const started = performance.now();
const main = transpile(component, join(gen, 'connector'), 'connector');
const guest = existsSync(hostile) ? transpile(hostile, join(gen, 'hostile'), 'hostile') : null;

// The presets ship with the library (since contract 0.4.0 they are not in the component).
const presetsDir = join(repo, 'presets');
rmSync(join(gen, 'presets'), { recursive: true, force: true });
mkdirSync(join(gen, 'presets'), { recursive: true });
const presetFiles = readdirSync(presetsDir).filter((f) => f.endsWith('.json'));
for (const file of presetFiles) cpSync(join(presetsDir, file), join(gen, 'presets', file));

console.error(`build: component ${main.digest.slice(0, 12)} (${main.fresh ? 'transpiled' : 'up to date'}), `
  + `hostile guest ${guest ? `${guest.digest.slice(0, 12)} (${guest.fresh ? 'transpiled' : 'up to date'})` : 'absent'}, `
  + `${presetFiles.length} presets, ${Math.round(performance.now() - started)} ms`);

// The worker thread that hosts the component: one instance at a time, replaced after a trap.
//
// The component's imports are synchronous and Node 20 has no JSPI, so `transport.send` and the
// signer block this thread (Atomics.wait) while the main thread does the work asynchronously
// and answers on a MessagePort, read back with receiveMessageOnPort. The origin allow-list is
// checked here, before anything leaves the thread: a denied request never reaches the main
// thread's HTTP client.
//
// WASI: the component imports only wasi:clocks/wall-clock and wasi:random/random; both are
// implemented here (no environment, files, streams or sockets exist for it). The worker is
// started with an empty process.env, and the generated glue's env-reading debug logger is
// removed at build time.

import { randomFillSync } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { parentPort, receiveMessageOnPort, workerData } from 'node:worker_threads';

import { ConnectorError, jsonSafe, originOf, profileUrls } from './records.js';

const {
  genDir, name, hostPort, flag: flagBuffer, extraOrigins, scriptedRandom, hostWaitMs,
  maxConnections, memoryBytes,
} = workerData;
// flag[0]: raised by the main thread when the host's answer is posted. flag[1]: 1 while the
// component computes (an operation runs and is not waiting for the host), else 0.
// CLOCK[0]: when the running operation started, CLOCK[1]: how long it has waited for the
// host (both in ms since the epoch, performance.timeOrigin-based, as the main thread reads
// them). The main thread's watchdog charges the operation for the difference.
const flag = new Int32Array(flagBuffer, 0, 2);
const CLOCK = new Float64Array(flagBuffer, 8, 3);
const epochMs = () => performance.timeOrigin + performance.now();
const startedAt = performance.now();
// Errors never carry their stack across to the main thread, and capturing one costs more than
// the call that failed (V8 walks the glue's frames): none are captured here.
Error.stackTraceLimit = 0;
const { instantiate } = await import(pathToFileURL(join(genDir, `${name}.js`)).href);
const glueLoadMs = performance.now() - startedAt;

// ---------------------------------------------------------------- the memory cap

const PAGE = 64 * 1024;

function readLeb(bytes, offset) {
  let value = 0;
  let shift = 0;
  let at = offset;
  let byte;
  do {
    byte = bytes[at];
    at += 1;
    value += (byte & 0x7f) * 2 ** shift;
    shift += 7;
  } while (byte & 0x80);
  return [value, at];
}

function leb(value) {
  const out = [];
  let rest = value;
  do {
    let byte = rest % 128;
    rest = Math.floor(rest / 128);
    if (rest > 0) byte |= 0x80;
    out.push(byte);
  } while (rest > 0);
  return out;
}

/**
 * A core module whose memory may grow to at most `maxBytes`: its memory section's limits get
 * that maximum, so a `memory.grow` past it fails and the component's allocator traps, as under
 * the wasmtime host's memory cap (a resource limiter there; the module's own limits here).
 * Modules without a memory, or with a shared or 64-bit one, are returned as they are.
 */
export function capMemory(bytes, maxBytes) {
  const maxPages = Math.floor(maxBytes / PAGE);
  let at = 8; // magic and version
  while (at < bytes.length) {
    const id = bytes[at];
    const [size, contentAt] = readLeb(bytes, at + 1);
    const end = contentAt + size;
    if (id === 5) {
      const [count, limitsAt] = readLeb(bytes, contentAt);
      const flags = bytes[limitsAt];
      if (count !== 1 || (flags !== 0 && flags !== 1)) return bytes;
      const [min, afterMin] = readLeb(bytes, limitsAt + 1);
      const [max, afterLimits] = flags === 1 ? readLeb(bytes, afterMin) : [Infinity, afterMin];
      const cap = Math.max(min, Math.min(max, maxPages));
      const content = [...leb(1), 1, ...leb(min), ...leb(cap), ...bytes.subarray(afterLimits, end)];
      return Buffer.concat([
        bytes.subarray(0, at), Buffer.from([5, ...leb(content.length), ...content]), bytes.subarray(end),
      ]);
    }
    at = end;
  }
  return bytes;
}

// Core modules are compiled once per worker; a replacement instance only instantiates them.
const modules = new Map();
function getCoreModule(file) {
  let module = modules.get(file);
  if (!module) {
    module = new WebAssembly.Module(capMemory(readFileSync(join(genDir, file)), memoryBytes));
    modules.set(file, module);
  }
  return module;
}

// ---------------------------------------------------------------- WASI: random and clock

// The most bytes one call may ask for (the component asks for 8 or 32 at a time); more traps,
// as in the wasmtime host, instead of making the host allocate it.
const MAX_RANDOM_BYTES = 64 * 1024;
// Random bytes come from one pooled buffer, refilled by the OS generator when spent: one
// randomFillSync per 64 KiB instead of one crypto call per 8 bytes. Each byte is handed out
// once (the glue copies the slice into the component's memory at once).
const POOL_BYTES = 64 * 1024;
let pool = new Uint8Array(0);
let poolOffset = 0;
// Tests only: a fixed byte sequence (then zeros) instead of the OS generator, to reproduce
// the RFC 7636 vector. `createConnector` names the option `insecureScriptedRandom`.
const scripted = scriptedRandom ? Uint8Array.from(scriptedRandom) : null;
let scriptedOffset = 0;

function getRandomBytes(len) {
  const n = Number(len);
  if (!(n >= 0 && n <= MAX_RANDOM_BYTES)) {
    throw new RangeError(`asked for ${len} random bytes, over the ${MAX_RANDOM_BYTES}-byte cap`);
  }
  if (scripted) {
    const out = new Uint8Array(n);
    const taken = scripted.subarray(scriptedOffset, scriptedOffset + n);
    out.set(taken);
    scriptedOffset += taken.length;
    return out;
  }
  if (poolOffset + n > pool.length) {
    pool = randomFillSync(new Uint8Array(POOL_BYTES));
    poolOffset = 0;
  }
  const out = pool.subarray(poolOffset, poolOffset + n);
  poolOffset += n;
  return out;
}

function getRandomU64() {
  const bytes = getRandomBytes(8);
  return new DataView(bytes.buffer, bytes.byteOffset, 8).getBigUint64(0, true);
}

function now() {
  const ms = Date.now();
  return { seconds: BigInt(Math.floor(ms / 1000)), nanoseconds: (ms % 1000) * 1e6 };
}

// ---------------------------------------------------------------- blocking calls to the host

/** A host import that could not be served: thrown into the component, which traps. */
class HostFailure extends Error {}

// Every host call carries an id (`hid`) that the main thread echoes in its reply: a reply
// with another id (a late answer to a call that gave up waiting) is discarded, never read as
// this call's answer. After a wait times out the main thread replaces this worker and its
// port (see `hostTimedOut`), so a late answer cannot reach a later call at all.
let hostSeq = 0;
let hostTimedOut = false;

function hostCall(message) {
  hostSeq += 1;
  const hid = hostSeq;
  Atomics.store(flag, 0, 0);
  const waitStarted = epochMs();
  const deadline = waitStarted + hostWaitMs;
  Atomics.store(flag, 1, 2);
  hostPort.postMessage({ ...message, hid });
  let answer = null;
  try {
    for (;;) {
      const remaining = deadline - epochMs();
      if (remaining <= 0 || Atomics.wait(flag, 0, 0, remaining) === 'timed-out') break;
      // Lowered before the port is drained: a reply posted after the drain raises it again.
      Atomics.store(flag, 0, 0);
      for (let reply = receiveMessageOnPort(hostPort); reply; reply = receiveMessageOnPort(hostPort)) {
        if (reply.message?.hid === hid) {
          answer = reply.message;
          break;
        }
      }
      if (answer) break;
    }
  } finally {
    CLOCK[1] += epochMs() - waitStarted;
    Atomics.store(flag, 1, 1);
  }
  if (!answer) {
    hostTimedOut = true;
    throw new HostFailure(`the host did not answer ${message.op} within ${hostWaitMs} ms`);
  }
  if (answer.fatal) throw new HostFailure(answer.fatal);
  return answer;
}

// The origins the current call may reach: its connection's endpoints, resources and API
// base URL (or the issuer, for discovery), plus the connector's `allowOrigins`.
let allowed = new Set(extraOrigins);
let sent = 0;

function send(request) {
  let url;
  try {
    url = new URL(request.url);
  } catch {
    return { tag: 'err', val: { tag: 'invalid-request', val: 'bad URL: it does not parse' } };
  }
  // User information in a URL would become Basic authentication in node:http: refused here,
  // before anything leaves the worker (a custom transport never sees it either).
  if (url.username || url.password) {
    return { tag: 'err', val: { tag: 'invalid-request', val: 'bad URL: it carries user information' } };
  }
  const origin = originOf(url);
  if (!origin || !allowed.has(origin)) {
    return { tag: 'err', val: { tag: 'denied', val: url.hostname } };
  }
  sent += 1;
  const reply = hostCall({ op: 'send', request });
  return 'ok' in reply ? { tag: 'ok', val: reply.ok } : { tag: 'err', val: reply.err };
}

function signerCall(op, args) {
  const reply = hostCall({ op, ...args });
  return 'ok' in reply ? { tag: 'ok', val: reply.ok } : { tag: 'err', val: reply.err };
}

const imports = {
  'oauth-connector:oauth2/types': {},
  'oauth-connector:oauth2/transport': { send },
  'oauth-connector:oauth2/signer': {
    key: (purpose, clientId) => signerCall('key', { purpose, clientId }),
    sign: (purpose, clientId, input) => signerCall('sign', { purpose, clientId, input }),
  },
  'wasi:clocks/wall-clock': { now, resolution: () => ({ seconds: 0n, nanoseconds: 1e6 }) },
  'wasi:random/random': { getRandomBytes, getRandomU64 },
};

// ---------------------------------------------------------------- the instance

const stats = {
  glueLoadMs, instances: 0, firstInstanceMs: null, lastInstanceMs: null, traps: 0, calls: 0,
};
let instance = null;

function current() {
  if (!instance) {
    const started = performance.now();
    const exports = instantiate(getCoreModule, imports);
    const ms = performance.now() - started;
    stats.instances += 1;
    stats.firstInstanceMs ??= ms;
    stats.lastInstanceMs = ms;
    instance = { exports, connections: new Map(), profiles: new Map() };
  }
  return instance;
}

const bigintSafe = (_, v) => (typeof v === 'bigint' ? `${v}n` : v);

function profileRecord(inst, profile) {
  if (typeof profile !== 'string') return profile;
  let parsed = inst.profiles.get(profile);
  if (!parsed) {
    parsed = inst.exports.providers.parseProfile(profile);
    // Bounded like the connections: a caller cycling through profiles cannot grow it forever.
    if (inst.profiles.size >= maxConnections) inst.profiles.clear();
    inst.profiles.set(profile, parsed);
  }
  return parsed;
}

// A connection handle for `config`, opened once per instance and lent to every later call
// with an equal configuration (the key holds the client secret: memory only, never logged).
function connection(inst, { allowOrigins = [], ...config }) {
  // Keyed by the configuration as sent (a JSON profile still a string: cheaper to serialise).
  const key = JSON.stringify(config, bigintSafe);
  let entry = inst.connections.get(key);
  if (!entry) {
    const record = { ...config, profile: profileRecord(inst, config.profile) };
    const handle = inst.exports.connections.Connection.open(record);
    // A profile without placeholders is its own resolved profile: one call less per open.
    const resolved = record.profile.variables?.length ? handle.resolvedProfile() : record.profile;
    const urls = [...profileUrls(resolved), ...record.resources];
    entry = { handle, origins: urls.map(originOf).filter(Boolean) };
    if (inst.connections.size >= maxConnections) inst.connections.clear();
    inst.connections.set(key, entry);
  }
  allowed = new Set([...extraOrigins, ...entry.origins, ...allowOrigins.map(originOf)]);
  return entry.handle;
}

function allowUrls(...urls) {
  allowed = new Set([...extraOrigins, ...urls.map(originOf).filter(Boolean)]);
}

const OPS = {
  parseProfile: (x, json) => x.providers.parseProfile(json),
  validateProfile: (x, profile) => x.providers.validateProfile(profile),
  discover: (x, issuer) => {
    allowUrls(issuer);
    return x.providers.discover(issuer);
  },
  resolvedProfile: (x, config, inst) => connection(inst, config).resolvedProfile(),
  begin: (x, config, inst) => x.authorizationCode.begin(connection(inst, config)),
  check: (x, config, inst) => x.authorizationCode.check(connection(inst, config)),
  complete: (x, config, pending, callbackUrl, inst) => x.authorizationCode.complete(
    connection(inst, config),
    pending,
    callbackUrl,
  ),
  stateFromCallback: (x, url) => x.authorizationCode.stateFromCallback(url),
  clientCredentials: (x, config, inst) => x.clientCredentials.fetch(connection(inst, config)),
  deviceBegin: (x, config, inst) => x.deviceAuthorization.begin(connection(inst, config)),
  devicePoll: (x, config, device, inst) => x.deviceAuthorization.poll(connection(inst, config), device),
  needsRefresh: (x, tokens, margin) => x.tokens.needsRefresh(tokens, margin),
  refresh: (x, config, tokens, inst) => x.tokens.refresh(connection(inst, config), tokens),
  revoke: (x, config, tokens, inst) => x.tokens.revoke(connection(inst, config), tokens),
  introspect: (x, config, token, hint, inst) => x.tokens.introspect(connection(inst, config), token, hint),
  call: (x, config, tokens, request, inst) => x.api.call(connection(inst, config), tokens, request),
  tokenExchange: (x, config, request, inst) => x.tokenExchange.exchange(connection(inst, config), request),
  jwtBearer: (x, config, claims, inst) => x.jwtBearer.fetch(connection(inst, config), claims),
  discoverResource: (x, url) => {
    allowUrls(url);
    return x.registration.discoverResource(url);
  },
  // Host-side measurements; no component call. `environment`: how many variables this
  // thread's process.env holds (none: the worker is started with an empty one).
  stats: () => ({ ...stats, environment: Object.keys(process.env).length }),
  // Tests only: how many requests left this thread for the main thread's transport.
  sentCount: () => sent,
  repeat: () => {}, // handled in the dispatcher
};

function isComponentError(error) {
  return error !== null && typeof error === 'object'
    && Object.prototype.hasOwnProperty.call(error, 'payload')
    && error.constructor?.name === 'ComponentError';
}

function toWire(error) {
  if (isComponentError(error)) {
    const payload = jsonSafe(error.payload);
    return { code: payload.tag, detail: payload.val ?? null };
  }
  if (error instanceof ConnectorError) {
    return { code: error.code, detail: error.detail, message: error.message };
  }
  // Anything else means the call did not complete: the component trapped (a panic, an
  // `unreachable`), or a host import failed and unwound through it. Its memory may be in
  // any state, so the instance is thrown away; the next call gets a fresh one.
  instance = null;
  stats.traps += 1;
  const detail = {
    name: error?.name ?? 'Error',
    message: String(error?.message ?? error),
    hostImport: error instanceof HostFailure,
  };
  return {
    code: 'trap',
    detail,
    message: `trap: the component call did not complete (${detail.name}: ${detail.message}); its instance was replaced`,
  };
}

parentPort.on('message', ({ id, op, args }) => {
  let reply;
  hostTimedOut = false;
  CLOCK[0] = epochMs();
  CLOCK[1] = 0;
  Atomics.store(flag, 1, 1);
  try {
    const fn = OPS[op];
    if (!fn) throw new ConnectorError('invalid-argument', { op }, `unknown operation ${op}`);
    let value;
    if (op === 'stats' || op === 'sentCount') {
      value = fn();
    } else if (op === 'repeat') {
      // Benchmarks: `n` calls of an operation inside the worker, no round trip; the time.
      const [n, inner, ...innerArgs] = args;
      const inst = current();
      const started = performance.now();
      for (let i = 0; i < n; i += 1) OPS[inner](inst.exports, ...innerArgs, inst);
      value = performance.now() - started;
    } else {
      stats.calls += 1;
      const inst = current();
      value = fn(inst.exports, ...args, inst);
    }
    reply = { id, ok: true, value: jsonSafe(value) };
  } catch (error) {
    reply = { id, ok: false, error: toWire(error) };
  } finally {
    Atomics.store(flag, 1, 0);
    allowed = new Set(extraOrigins);
  }
  // The main thread replaces this worker (and its port and flag) after a host wait timed out.
  if (hostTimedOut) reply.hostTimedOut = true;
  parentPort.postMessage(reply);
});

// The first instance is made before the worker says it is ready, so that its cost (compiling
// the core modules) never counts against a call's compute budget.
current();
parentPort.postMessage({ ready: true, glueLoadMs, firstInstanceMs: stats.firstInstanceMs });

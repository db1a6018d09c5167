// oauth-connector for Node.js: the component cargo builds, transpiled by jco at build time,
// run in a worker thread behind an async API. See README.md ("Use it from Node.js").

import { createHash } from 'node:crypto';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { MessageChannel, Worker } from 'node:worker_threads';

import {
  ConnectorError, connectionConfig, errorFromWire, httpRequest, methodName, originList,
  stringList,
} from './records.js';
import { customSigner, keySigner } from './signer.js';
import {
  DEFAULT_LIMITS, DEFAULT_TIMEOUTS, httpTransport, positiveInteger,
} from './transport.js';

export { ConnectorError, ERROR_CODES } from './records.js';
export { DEFAULT_LIMITS, DEFAULT_TIMEOUTS } from './transport.js';

/** The compute time one call may use, not counting the host's imports (as in wasmtime). */
export const DEFAULT_COMPUTE_MS = 2000;
/**
 * The largest linear memory the component may grow to (as the wasmtime host's default): it
 * holds each response (up to the 8 MiB body cap) and what it builds from it.
 */
export const DEFAULT_MEMORY_BYTES = 64 * 1024 * 1024;
/** How often the running call's budget is checked: a call is stopped at most this late. */
const WATCHDOG_TICK_MS = 50;

const GEN = fileURLToPath(new URL('../gen/', import.meta.url));

/** Thrown by a custom `transport` for a typed failure (`timeout`, `connection-failed`...). */
export class TransportFailure extends Error {
  constructor(tag, val = undefined) {
    super(`transport: ${tag}${val === undefined ? '' : ` (${val})`}`);
    this.name = 'TransportFailure';
    this.transportError = val === undefined ? { tag } : { tag, val };
  }
}

const bad = (what) => ({ err: { tag: 'other', val: `the custom transport ${what}` } });
const STRING_CASES = new Set(['denied', 'invalid-request', 'connection-failed', 'tls', 'other']);

/**
 * A custom transport's `TransportFailure` as the WIT `transport-error`; one the component
 * could not take (an unknown case, a missing or mistyped value) is `other`, not a trap.
 */
function transportFailure(failure) {
  const { tag, val } = failure ?? {};
  if (tag === 'timeout') return { tag };
  if (STRING_CASES.has(tag) && typeof val === 'string') return { tag, val };
  if (tag === 'response-too-large' && ((Number.isSafeInteger(val) && val >= 0) || (typeof val === 'bigint' && val >= 0n && val < 2n ** 64n))) {
    return { tag, val: BigInt(val) };
  }
  return { tag: 'other', val: 'the custom transport failed with an invalid TransportFailure' };
}

/**
 * A custom transport's response, checked as the HTTP client's would be: a status in
 * 100-599, headers a list of string pairs (`{name, value}` or `[name, value]`) within the
 * header caps, a body (string, Uint8Array or ArrayBuffer) within `maxResponseBytes`. Anything
 * else is a typed transport error (`other`, or `response-too-large`), not a trap; messages
 * never quote what the transport returned.
 */
function customResponse(response, limits) {
  if (response === null || typeof response !== 'object') return bad('returned no response object');
  const { status } = response;
  if (typeof status !== 'number' || !Number.isInteger(status) || status < 100 || status > 599) {
    return bad('returned a status outside 100-599');
  }
  const headers = [];
  let headerBytes = 0;
  if (response.headers !== undefined && response.headers !== null) {
    if (!Array.isArray(response.headers)) return bad('returned headers that are not a list');
    if (response.headers.length > limits.maxResponseHeaders) {
      return bad(`returned more than ${limits.maxResponseHeaders} headers`);
    }
    for (const entry of response.headers) {
      const [name, value] = Array.isArray(entry) ? entry : [entry?.name, entry?.value];
      if ((Array.isArray(entry) && entry.length !== 2) || typeof name !== 'string' || typeof value !== 'string') {
        return bad('returned a header that is not a pair of strings');
      }
      headerBytes += Buffer.byteLength(name) + Buffer.byteLength(value) + 4;
      headers.push({ name, value });
    }
    if (headerBytes > limits.maxHeaderBytes) {
      return bad(`returned headers over the host's limit of ${limits.maxHeaderBytes} bytes`);
    }
  }
  let body;
  const raw = response.body;
  if (raw === undefined || raw === null) body = new Uint8Array(0);
  else if (typeof raw === 'string') {
    if (raw.length > limits.maxResponseBytes) return { err: { tag: 'response-too-large', val: BigInt(limits.maxResponseBytes) } };
    body = new TextEncoder().encode(raw);
  } else if (raw instanceof Uint8Array) body = new Uint8Array(raw);
  else if (raw instanceof ArrayBuffer) body = new Uint8Array(raw.slice(0));
  else return bad('returned a body that is not a string, a Uint8Array or an ArrayBuffer');
  if (body.byteLength > limits.maxResponseBytes) {
    return { err: { tag: 'response-too-large', val: BigInt(limits.maxResponseBytes) } };
  }
  return { ok: { status, headers, body } };
}

function readManifest(dir) {
  const path = join(dir, 'manifest.json');
  if (!existsSync(path)) {
    throw new ConnectorError('invalid-argument', { field: 'genDir' }, `no transpiled component in ${dir}: run \`npm run build\` in node/`);
  }
  return JSON.parse(readFileSync(path, 'utf8'));
}

// ---------------------------------------------------------------- presets

let presetCache = null;

/** The preset documents shipped with the library (presets/*.json, copied at build time). */
function presetDocuments() {
  if (!presetCache) {
    const dir = join(GEN, 'presets');
    if (!existsSync(dir)) {
      throw new ConnectorError('invalid-argument', { field: 'presets' }, 'no presets in gen/: run `npm run build` in node/');
    }
    presetCache = new Map(readdirSync(dir).filter((f) => f.endsWith('.json')).sort()
      .map((f) => JSON.parse(readFileSync(join(dir, f), 'utf8')))
      .map((doc) => [doc.id, doc]));
  }
  return presetCache;
}

function presetSummary(doc) {
  return {
    id: doc.id,
    displayName: doc['display-name'],
    domains: doc.domains ?? [],
    variables: doc.profile?.variables ?? [],
    notes: doc.notes ?? null,
    sources: doc.sources ?? [],
  };
}

/** Id, name, domains, variables, notes and sources of every shipped preset, by id. */
export function listPresets() {
  return [...presetDocuments().values()].map(presetSummary);
}

function presetDocument(id) {
  const doc = presetDocuments().get(id);
  if (!doc) throw new ConnectorError('configuration', { tag: 'unknown-preset', val: String(id) });
  return doc;
}

// ---------------------------------------------------------------- records

/**
 * A profile object in the JSON form (kebab-case keys, as presets and profile files are), not
 * the record form (camelCase, as `discover` and `parseProfile` answer): any kebab-case key, or
 * no `tokenUrl`, which every record has.
 */
function isJsonProfile(profile) {
  return !Object.prototype.hasOwnProperty.call(profile, 'tokenUrl')
    || Object.keys(profile).some((key) => key.includes('-'));
}

// A token set's fields are checked by type before they reach the glue, whose conversion
// errors would quote the value (a token) in a trap's message. Messages name the field only.
const badToken = (field, expected) => new ConnectorError('invalid-argument', { field: `tokens.${field}` },
  `tokens.${field}: expected ${expected}`);

function optionalString(tokens, field) {
  const value = tokens[field] ?? null;
  if (value !== null && typeof value !== 'string') throw badToken(field, 'a string or null');
  return value;
}

function optionalSeconds(tokens, field, fallback) {
  const value = tokens[field] ?? fallback;
  if (value === null) return null;
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 0) {
    throw badToken(field, fallback === null ? 'a number of seconds or null' : 'a number of seconds');
  }
  return value;
}

function tokenExtras(extras) {
  if (extras === undefined || extras === null) return [];
  if (!Array.isArray(extras) || !extras.every((e) => e !== null && typeof e === 'object'
    && typeof e.name === 'string' && typeof e.value === 'string')) {
    throw badToken('extras', 'an array of {name, value} strings');
  }
  return extras.map(({ name, value }) => ({ name, value }));
}

function tokenSet(tokens) {
  if (!tokens || typeof tokens !== 'object' || typeof tokens.accessToken !== 'string') {
    throw new ConnectorError('invalid-argument', { field: 'tokens.accessToken' }, 'tokens.accessToken: expected a string');
  }
  return {
    accessToken: tokens.accessToken,
    tokenType: optionalString(tokens, 'tokenType') ?? 'bearer',
    expiresAt: optionalSeconds(tokens, 'expiresAt', null),
    refreshToken: optionalString(tokens, 'refreshToken'),
    idToken: optionalString(tokens, 'idToken'),
    scopes: stringList(tokens.scopes, 'tokens.scopes'),
    obtainedAt: optionalSeconds(tokens, 'obtainedAt', 0),
    extras: tokenExtras(tokens.extras),
    dpopKeyThumbprint: optionalString(tokens, 'dpopKeyThumbprint'),
  };
}

function devicePoll(poll) {
  if (poll.tag === 'complete') return { state: 'complete', tokens: poll.val };
  return { state: poll.tag, intervalSeconds: poll.val };
}

function apiResponse(answer) {
  const { status, headers, body } = answer.response;
  return {
    status,
    headers,
    body: Buffer.from(body.buffer, body.byteOffset, body.byteLength),
    tokenRejected: answer.tokenRejected,
    retryAfterSeconds: answer.retryAfterSeconds ?? null,
  };
}

// ---------------------------------------------------------------- the worker and its host side

class Host {
  #options;
  #worker = null;
  #ready = null;
  #queue = [];
  #running = null;
  #nextId = 0;
  #closed = false;
  #clock = null;
  #counters = {
    workers: 0, computeLimitStops: 0, workerExits: 0, hostTimeoutReplacements: 0,
  };

  constructor(options) {
    this.#options = options;
  }

  #spawn() {
    const o = this.#options;
    const { port1: mainPort, port2: hostPort } = new MessageChannel();
    // Shared with the worker: the host's answer flag, and the running call's clock (see
    // worker.js, CLOCK): the compute budget is measured from the worker's own timestamps.
    const flagBuffer = new SharedArrayBuffer(32);
    const flag = new Int32Array(flagBuffer, 0, 2);
    const clock = new Float64Array(flagBuffer, 8, 3);
    const worker = new Worker(new URL('./worker.js', import.meta.url), {
      workerData: {
        genDir: o.genDir,
        name: o.name,
        hostPort,
        flag: flagBuffer,
        extraOrigins: o.allowOrigins,
        scriptedRandom: o.scriptedRandom,
        hostWaitMs: o.hostWaitMs,
        maxConnections: 64,
        memoryBytes: o.memoryBytes,
      },
      transferList: [hostPort],
      // The component's host thread gets no environment: nothing in it can read secrets
      // from process.env, whatever the generated glue does.
      env: {},
    });
    this.#counters.workers += 1;
    // The worker blocks in Atomics.wait until the answer is posted and the flag raised.
    // Each reply echoes the request's id (`hid`): the worker discards a reply with another id.
    mainPort.on('message', (message) => {
      const hid = message?.hid;
      this.#serve(message).then((reply) => {
        try {
          mainPort.postMessage({ ...reply, hid });
        } catch (error) {
          // An answer that cannot be cloned (a function, a Promise in it): the import fails.
          // Only the error's name: its message could quote the answer.
          mainPort.postMessage({ hid, fatal: `the host's answer to ${message?.op} could not be passed to the component (${error?.name ?? 'Error'})` });
        }
      }).catch(() => {}).finally(() => {
        Atomics.store(flag, 0, 1);
        Atomics.notify(flag, 0);
      });
    });
    mainPort.unref();
    let rejectReady;
    this.#ready = new Promise((resolve, reject) => {
      rejectReady = reject;
      worker.once('error', reject);
      worker.on('message', (message) => {
        if (message.ready) {
          resolve(message);
          return;
        }
        const job = this.#running;
        if (!job || job.id !== message.id) return;
        this.#finish(job);
        if (message.ok) job.resolve(message.value);
        else job.reject(errorFromWire(message.error));
        // A host wait timed out: its answer may still arrive on this worker's port and flag.
        // The worker and its port are replaced, so that nothing can feed or wake a later call.
        if (message.hostTimedOut && this.#worker === worker) {
          this.#counters.hostTimeoutReplacements += 1;
          this.#stopWorker(null);
        }
      });
    });
    this.#ready.catch(() => {});
    this.#rejectReady = rejectReady;
    // A worker that dies (an out-of-memory abort, a crash in the glue) fails its running
    // call as a trap; the next call starts a new worker.
    const died = (why) => {
      if (this.#worker !== worker) return;
      this.#counters.workerExits += 1;
      this.#stopWorker(new ConnectorError('trap', { name: 'WorkerExit', message: why },
        `trap: the component's worker stopped (${why}); a new one serves the next call`));
    };
    worker.on('error', (error) => died(error?.name ?? 'error'));
    worker.on('exit', (code) => {
      // A worker that stops before it is ready never resolves #ready: reject it.
      rejectReady(new ConnectorError('trap', { name: 'WorkerExit', message: `exit code ${code}` },
        `trap: the component's worker stopped before it was ready (exit code ${code})`));
      died(`exit code ${code}`);
    });
    this.#worker = worker;
    this.#workerPort = mainPort;
    this.#clock = { flag, clock };
  }

  #workerPort = null;
  #rejectReady = null;

  /**
   * Throws the worker away (terminating a call that runs), failing the running call and a
   * start in progress with `error` (a `trap` when `error` is null).
   */
  #stopWorker(error) {
    const worker = this.#worker;
    this.#worker = null;
    this.#ready = null;
    this.#rejectReady?.(error ?? new ConnectorError('trap', { name: 'WorkerStopped', message: 'stopped' },
      'trap: the component\'s worker was stopped before it was ready'));
    this.#rejectReady = null;
    this.#workerPort?.close();
    this.#workerPort = null;
    this.#clock = null;
    const job = this.#running;
    if (job && error) {
      this.#finish(job);
      job.reject(error);
    }
    worker?.terminate();
  }

  #finish(job) {
    this.#running = null;
    if (this.#queue.length === 0) this.#worker?.unref();
    queueMicrotask(() => this.#pump());
  }

  // The compute budget: the wall time of the call in the worker less the time it waited for
  // the host (sending, signing), both from the worker's own timestamps, so that a busy main
  // thread never counts against the component. A call over it is stopped by terminating the
  // worker, the only way to stop a running wasm loop in Node; the next call gets a new one.
  #checkBudget(job) {
    if (this.#running !== job || !this.#clock) return;
    const { flag, clock } = this.#clock;
    // Not running (finished, its answer not read yet) or waiting for the host: no charge.
    if (Atomics.load(flag, 1) !== 1) return;
    const budget = this.#options.computeMs;
    const used = performance.timeOrigin + performance.now() - clock[0] - clock[1];
    if (used < budget) return;
    this.#counters.computeLimitStops += 1;
    this.#stopWorker(new ConnectorError('limit', { tag: 'compute-time', val: budget },
      `limit: the component computed for longer than its ${budget} ms budget and was stopped; a new worker serves the next call`));
  }

  async #serve(message) {
    try {
      switch (message.op) {
        case 'send': return await this.#options.transport(message.request);
        case 'key': return await this.#options.signer.key(message.purpose, message.clientId);
        case 'sign': return await this.#options.signer.sign(message.purpose, message.clientId, message.input);
        default: return { fatal: `unknown host operation ${message.op}` };
      }
    } catch (error) {
      // Only the error's name: a custom transport's message could quote a request.
      return { fatal: `the host's ${message.op} failed (${error?.name ?? 'Error'})` };
    }
  }

  // Calls run one at a time, in order: the component is synchronous, and the budget of a
  // call starts when the worker starts it.
  async #pump() {
    if (this.#running || this.#queue.length === 0 || this.#closed) return;
    const job = this.#queue.shift();
    this.#running = job;
    try {
      if (!this.#worker) this.#spawn();
      await this.#ready;
    } catch (error) {
      // The job may have been failed already (the worker exited, the connector was closed).
      if (this.#running !== job) return;
      this.#stopWorker(new ConnectorError('trap', { name: error?.name ?? 'Error', message: String(error?.message) },
        `trap: the component's worker did not start (${error?.message})`));
      return;
    }
    if (this.#running !== job) return;
    this.#nextId += 1;
    job.id = this.#nextId;
    try {
      this.#worker.postMessage({ id: job.id, op: job.op, args: job.args });
    } catch (error) {
      // An argument that cannot be cloned (a Promise, a function): nothing reached the worker.
      // Only the error's name: its message could quote the argument.
      this.#finish(job);
      const name = error?.name ?? 'Error';
      job.reject(new ConnectorError('invalid-argument', { field: 'arguments', name },
        `invalid-argument: an argument cannot be passed to the component's worker (${name})`));
      return;
    }
    job.started = performance.now();
    this.#worker.ref();
    job.budgeted = job.op !== 'stats' && job.op !== 'sentCount';
    this.#watchdog ??= setInterval(() => {
      const running = this.#running;
      if (running?.budgeted && running.started !== undefined) this.#checkBudget(running);
    }, WATCHDOG_TICK_MS).unref();
  }

  // One timer for the connector's life (unref'd), not one per call: a call costs a few
  // hundred microseconds, and a timer per call was a fifth of that.
  #watchdog = null;

  call(op, ...args) {
    if (this.#closed) return Promise.reject(new ConnectorError('closed', null, 'closed: the connector was closed'));
    return new Promise((resolve, reject) => {
      this.#queue.push({
        op, args, resolve, reject,
      });
      this.#pump();
    });
  }

  async ready() {
    if (this.#closed) throw new ConnectorError('closed', null, 'closed: the connector was closed');
    if (!this.#worker) this.#spawn();
    return this.#ready;
  }

  counters() {
    return { ...this.#counters };
  }

  async close() {
    this.#closed = true;
    clearInterval(this.#watchdog);
    const closed = new ConnectorError('closed', null, 'closed: the connector was closed');
    for (const job of this.#queue.splice(0)) job.reject(closed);
    const worker = this.#worker;
    this.#stopWorker(closed);
    if (worker) await worker.terminate();
  }
}

// ---------------------------------------------------------------- the connector

/**
 * Starts a connector: one worker thread holding one component instance.
 *
 * Options (all optional):
 * - `wasmPath`: the component the caller expects; its SHA-256 must be the one gen/ was
 *   transpiled from (one artifact for every host), else `invalid-argument`.
 * - `allowOrigins`: origins every call may reach besides its connection's own endpoints.
 * - `timeouts`: `{connectMs, totalMs, hostWaitMs}` (10 s, 30 s, totalMs + 10 s: how long the
 *   worker waits for one host answer); `limits`: `{maxResponseBytes,
 *   maxHeaderBytes, maxResponseHeaders, computeMs, memoryBytes}` (8 MiB, 64 KiB, 128, 2 s:
 *   the compute time of one call, less the host's sending and signing, a call over it stops
 *   the worker and fails with `limit`; 64 MiB: the component's memory, a growth past it traps).
 *   Each a positive integer; absent (undefined, null) is the default, anything else
 *   `invalid-argument` naming the field.
 * - `signer`: `{keys: [...]}` (see signer.js) or an object with `key` and `sign`.
 * - `transport`: `async (request) => ({status, headers, body})` instead of the HTTP client
 *   (after the allow-list check), throwing `TransportFailure` for a typed failure; any other
 *   exception fails the host import, which traps the instance. Its answers are checked (see
 *   customResponse): a malformed one is a typed transport error, not a trap.
 * - `genDir`: another transpiled component (tests: the hostile guest).
 * - `insecureScriptedRandom`: bytes the random source yields first (tests only).
 */
export function createConnector(options = {}) {
  const genDir = options.genDir ?? join(GEN, 'connector');
  const manifest = readManifest(genDir);
  if (options.wasmPath) {
    const digest = createHash('sha256').update(readFileSync(options.wasmPath)).digest('hex');
    if (digest !== manifest.sha256) {
      throw new ConnectorError('invalid-argument', { field: 'wasmPath', expected: manifest.sha256, actual: digest },
        `invalid-argument: ${options.wasmPath} is not the component gen/ was transpiled from; run \`CONNECTOR_COMPONENT_WASM=${options.wasmPath} npm run build\``);
    }
  }
  const http = httpTransport({ timeouts: options.timeouts, limits: options.limits });
  let transport = http.send;
  if (options.transport) {
    const custom = options.transport;
    if (typeof custom !== 'function') {
      throw new ConnectorError('invalid-argument', { field: 'transport' }, 'transport: expected a function');
    }
    transport = async (request) => {
      let response;
      try {
        response = await custom({
          method: methodName(request.method),
          url: request.url,
          headers: request.headers,
          body: request.body,
        });
      } catch (error) {
        if (error instanceof TransportFailure) return { err: transportFailure(error.transportError) };
        throw error;
      }
      return customResponse(response, http.limits);
    };
  }
  const signer = options.signer && typeof options.signer.sign === 'function'
    ? customSigner(options.signer) : keySigner(options.signer?.keys ?? []);
  const allowOrigins = originList(options.allowOrigins, 'allowOrigins');
  const host = new Host({
    genDir,
    name: manifest.name,
    allowOrigins,
    transport,
    signer,
    scriptedRandom: options.insecureScriptedRandom ?? null,
    hostWaitMs: positiveInteger('timeouts.hostWaitMs', options.timeouts?.hostWaitMs, http.timeouts.totalMs + 10_000),
    computeMs: positiveInteger('limits.computeMs', options.limits?.computeMs, DEFAULT_COMPUTE_MS),
    memoryBytes: positiveInteger('limits.memoryBytes', options.limits?.memoryBytes, DEFAULT_MEMORY_BYTES),
  });

  const prepare = (config) => {
    const c = connectionConfig(config);
    if (config.preset !== undefined) c.profile = JSON.stringify(presetDocument(config.preset).profile);
    else if (c.profile === undefined || c.profile === null || (typeof c.profile !== 'string' && typeof c.profile !== 'object')) {
      throw new ConnectorError('invalid-argument', { field: 'profile' }, 'profile: expected a profile, its JSON, or a `preset` id');
    } else if (typeof c.profile === 'object' && isJsonProfile(c.profile)) {
      // The JSON form (kebab-case): parsed by the component, whose errors are typed
      // (`configuration`), where the record form's missing fields would trap in the glue.
      c.profile = JSON.stringify(c.profile);
    }
    c.allowOrigins = originList(config.allowOrigins, 'allowOrigins');
    return c;
  };

  // One refresh in flight per refresh token: concurrent callers holding the same token set
  // share it (and its new set) instead of spending the same refresh token twice.
  const refreshes = new Map();
  const sharedRefresh = (c, tokens) => {
    const key = tokens.refreshToken;
    let pending = refreshes.get(key);
    if (!pending) {
      pending = host.call('refresh', c, tokens).then(tokenSet);
      refreshes.set(key, pending);
      const forget = () => { if (refreshes.get(key) === pending) refreshes.delete(key); };
      pending.then(forget, forget);
    }
    return pending;
  };

  const connector = {
    /** The component these bindings came from: its path at build time, SHA-256 and size. */
    component: { source: manifest.source, sha256: manifest.sha256, bytes: manifest.bytes, jco: manifest.jco },
    timeouts: http.timeouts,
    limits: http.limits,

    /** Resolves once the worker has loaded the bindings. */
    ready: () => host.ready(),

    parseProfile: async (json) => host.call('parseProfile', typeof json === 'string' ? json : JSON.stringify(json)),
    validateProfile: async (profile) => host.call('validateProfile', profile),
    discover: async (issuer) => host.call('discover', issuer),
    listPresets,
    get presets() { return listPresets(); },
    /** A preset's document, its `profile` parsed and checked by the component. */
    async getPreset(id) {
      const doc = presetDocument(id);
      const profile = await host.call('parseProfile', JSON.stringify(doc.profile));
      return { ...presetSummary(doc), profile };
    },
    resolvedProfile: async (config) => host.call('resolvedProfile', prepare(config)),

    beginAuthorization: async (config) => host.call('begin', prepare(config)),
    checkAuthorization: async (config) => host.call('check', prepare(config)).then(() => undefined),
    completeAuthorization: async (config, pending, callbackUrl) => host.call('complete', prepare(config), pending, String(callbackUrl)),
    stateFromCallback: async (callbackUrl) => host.call('stateFromCallback', String(callbackUrl)),

    clientCredentials: async (config) => host.call('clientCredentials', prepare(config)),
    deviceBegin: async (config) => host.call('deviceBegin', prepare(config)),
    devicePoll: async (config, device) => devicePoll(await host.call('devicePoll', prepare(config), device)),

    needsRefresh: async (tokens, { marginSeconds = null } = {}) => host.call('needsRefresh', tokenSet(tokens), marginSeconds),
    refresh: async (config, tokens) => host.call('refresh', prepare(config), tokenSet(tokens)),
    revoke: async (config, tokens) => host.call('revoke', prepare(config), tokenSet(tokens)).then(() => undefined),
    introspect: async (config, token, tokenTypeHint = null) => host.call('introspect', prepare(config), token, tokenTypeHint),

    /**
     * An authorized API call. Refreshes first when the tokens are due, and once more when
     * the response says the token was rejected, then retries once. `onRefresh(tokens)` is
     * awaited with each new token set before it is used (persist it there: a rotated
     * refresh token is the only one that works from then on). Resolves to the response with
     * `tokens` (the set in use) and `refreshed`. An error thrown after a refresh carries the
     * new set as `error.tokens` (and `error.refreshed = true`). Concurrent calls with the same
     * refresh token share one refresh.
     */
    async call(config, tokens, request, { onRefresh = null, refresh = true } = {}) {
      const c = prepare(config);
      const req = httpRequest(request);
      let current = tokenSet(tokens);
      let refreshed = false;
      const renew = async () => {
        current = await sharedRefresh(c, current);
        refreshed = true;
        if (onRefresh) await onRefresh(current);
      };
      try {
        if (refresh && current.refreshToken && await host.call('needsRefresh', current, null)) await renew();
        let answer = apiResponse(await host.call('call', c, current, req));
        if (answer.tokenRejected && refresh && !refreshed && current.refreshToken) {
          await renew();
          answer = apiResponse(await host.call('call', c, current, req));
        }
        return { ...answer, tokens: current, refreshed };
      } catch (error) {
        // After a refresh the caller's token set is spent (a rotated refresh token is the only
        // one that works now): every later failure carries the set in use.
        if (refreshed && error !== null && typeof error === 'object') {
          error.tokens = current;
          error.refreshed = true;
        }
        throw error;
      }
    },

    tokenExchange: async (config, request) => host.call('tokenExchange', prepare(config), request),
    jwtBearer: async (config, claims) => host.call('jwtBearer', prepare(config), claims),
    discoverResource: async (url) => host.call('discoverResource', url),

    /** Worker-side measurements: glue load, instances made, first/last instance cost, traps. */
    stats: async () => ({ ...(await host.call('stats')), ...host.counters() }),
    /** Benchmarks: the time of `n` calls of a worker operation, inside the worker (ms). */
    repeatInWorker: async (n, op, ...args) => host.call('repeat', n, op, ...args),
    /** Benchmarks: a connection configuration as the worker receives it. */
    prepareConfig: (config) => prepare(config),
    /** Tests: how many requests passed the allow-list to the transport. */
    sentCount: async () => host.call('sentCount'),
    /** Stops the worker and closes idle keep-alive connections. */
    async close() {
      await host.close();
      http.close();
    },
  };
  return connector;
}

// oauth-connector for Node.js: the component cargo builds, transpiled by jco at build time,
// run in a worker thread behind an async API. See README.md ("Use it from Node.js").

import { createHash } from 'node:crypto';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { MessageChannel, Worker } from 'node:worker_threads';

import {
  ConnectorError, connectionConfig, errorFromWire, httpRequest, methodName, originOf,
} from './records.js';
import { customSigner, keySigner } from './signer.js';
import { DEFAULT_LIMITS, DEFAULT_TIMEOUTS, httpTransport } from './transport.js';

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

function tokenSet(tokens) {
  if (!tokens || typeof tokens.accessToken !== 'string') {
    throw new ConnectorError('invalid-argument', { field: 'tokens.accessToken' }, 'tokens.accessToken: expected a string');
  }
  return {
    accessToken: tokens.accessToken,
    tokenType: tokens.tokenType ?? 'bearer',
    expiresAt: tokens.expiresAt ?? null,
    refreshToken: tokens.refreshToken ?? null,
    idToken: tokens.idToken ?? null,
    scopes: tokens.scopes ?? [],
    obtainedAt: tokens.obtainedAt ?? 0,
    extras: tokens.extras ?? [],
    dpopKeyThumbprint: tokens.dpopKeyThumbprint ?? null,
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
  #counters = { workers: 0, computeLimitStops: 0, workerExits: 0 };

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
    mainPort.on('message', (message) => {
      this.#serve(message).then((reply) => {
        mainPort.postMessage(reply);
        Atomics.store(flag, 0, 1);
        Atomics.notify(flag, 0);
      });
    });
    mainPort.unref();
    this.#ready = new Promise((resolve, reject) => {
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
      });
    });
    this.#ready.catch(() => {});
    // A worker that dies (an out-of-memory abort, a crash in the glue) fails its running
    // call as a trap; the next call starts a new worker.
    const died = (why) => {
      if (this.#worker !== worker) return;
      this.#counters.workerExits += 1;
      this.#stopWorker(new ConnectorError('trap', { name: 'WorkerExit', message: why },
        `trap: the component's worker stopped (${why}); a new one serves the next call`));
    };
    worker.on('error', (error) => died(error?.name ?? 'error'));
    worker.on('exit', (code) => died(`exit code ${code}`));
    this.#worker = worker;
    this.#workerPort = mainPort;
    this.#clock = { flag, clock };
  }

  #workerPort = null;

  /** Throws the worker away (terminating a call that runs), failing the running call. */
  #stopWorker(error) {
    const worker = this.#worker;
    this.#worker = null;
    this.#ready = null;
    this.#workerPort?.close();
    this.#workerPort = null;
    this.#clock = null;
    const job = this.#running;
    if (job) {
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
      this.#stopWorker(new ConnectorError('trap', { name: error?.name ?? 'Error', message: String(error?.message) },
        `trap: the component's worker did not start (${error?.message})`));
      return;
    }
    if (this.#running !== job) return;
    this.#nextId += 1;
    job.id = this.#nextId;
    job.started = performance.now();
    this.#worker.ref();
    this.#worker.postMessage({ id: job.id, op: job.op, args: job.args });
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
 * - `timeouts`: `{connectMs, totalMs}` (10 s, 30 s); `limits`: `{maxResponseBytes,
 *   maxHeaderBytes, maxResponseHeaders, computeMs, memoryBytes}` (8 MiB, 64 KiB, 128, 2 s:
 *   the compute time of one call, less the host's sending and signing, a call over it stops
 *   the worker and fails with `limit`; 64 MiB: the component's memory, a growth past it traps).
 * - `signer`: `{keys: [...]}` (see signer.js) or an object with `key` and `sign`.
 * - `transport`: `async (request) => ({status, headers, body})` instead of the HTTP client
 *   (after the allow-list check), throwing `TransportFailure` for a typed failure; any other
 *   exception fails the host import, which traps the instance.
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
    transport = async (request) => {
      try {
        const response = await custom({
          method: methodName(request.method),
          url: request.url,
          headers: request.headers,
          body: request.body,
        });
        const body = typeof response.body === 'string'
          ? new TextEncoder().encode(response.body) : new Uint8Array(response.body ?? []);
        return { ok: { status: response.status, headers: response.headers ?? [], body } };
      } catch (error) {
        if (error instanceof TransportFailure) return { err: error.transportError };
        throw error;
      }
    };
  }
  const signer = options.signer && typeof options.signer.sign === 'function'
    ? customSigner(options.signer) : keySigner(options.signer?.keys ?? []);
  const allowOrigins = (options.allowOrigins ?? []).map((o) => {
    const origin = originOf(o);
    if (!origin) throw new ConnectorError('invalid-argument', { field: 'allowOrigins' }, `allowOrigins: ${o} is not an http(s) origin`);
    return origin;
  });
  const host = new Host({
    genDir,
    name: manifest.name,
    allowOrigins,
    transport,
    signer,
    scriptedRandom: options.insecureScriptedRandom ?? null,
    hostWaitMs: http.timeouts.totalMs + 10_000,
    computeMs: options.limits?.computeMs ?? DEFAULT_COMPUTE_MS,
    memoryBytes: options.limits?.memoryBytes ?? DEFAULT_MEMORY_BYTES,
  });

  const prepare = (config) => {
    const c = connectionConfig(config);
    if (config.preset !== undefined) c.profile = JSON.stringify(presetDocument(config.preset).profile);
    else if (typeof c.profile === 'object' && c.profile !== null && 'token-url' in c.profile) c.profile = JSON.stringify(c.profile);
    else if (c.profile === undefined || c.profile === null) {
      throw new ConnectorError('invalid-argument', { field: 'profile' }, 'profile: expected a profile, its JSON, or a `preset` id');
    }
    c.allowOrigins = config.allowOrigins ?? [];
    return c;
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
     * `tokens` (the set in use) and `refreshed`.
     */
    async call(config, tokens, request, { onRefresh = null, refresh = true } = {}) {
      const c = prepare(config);
      const req = httpRequest(request);
      let current = tokenSet(tokens);
      let refreshed = false;
      const renew = async () => {
        current = tokenSet(await host.call('refresh', c, current));
        refreshed = true;
        if (onRefresh) await onRefresh(current);
      };
      if (refresh && current.refreshToken && await host.call('needsRefresh', current, null)) await renew();
      let answer = apiResponse(await host.call('call', c, current, req));
      if (answer.tokenRejected && refresh && !refreshed && current.refreshToken) {
        await renew();
        answer = apiResponse(await host.call('call', c, current, req));
      }
      return { ...answer, tokens: current, refreshed };
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

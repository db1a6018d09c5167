// Robustness of the host: late host answers, arguments and answers that cannot cross the
// thread boundary, lifecycle (ready/close), and option and configuration validation. A
// custom transport answers every request: nothing here touches the network.

import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';

import { createConnector, TransportFailure } from '../src/index.js';

const ORIGIN = 'http://127.0.0.1:9';
const sleep = (ms) => new Promise((resolve) => { setTimeout(resolve, ms); });

const config = (clientId, extra = {}) => ({
  profile: { 'token-url': `${ORIGIN}/token/${clientId}`, 'api-base-url': ORIGIN },
  client: { clientId, clientSecret: 'secret' },
  ...extra,
});

const json = (value, status = 200) => ({
  status,
  headers: [{ name: 'content-type', value: 'application/json' }],
  body: JSON.stringify(value),
});

/** A token answer naming the client the request was for (by its token URL). */
const tokenFor = (request) => json({
  access_token: `token-of-${request.url.split('/').at(-1)}`, token_type: 'Bearer', expires_in: 3600,
});

test('a late host answer never reaches a later call (no cross-client leak)', { timeout: 20_000 }, async () => {
  let lateAnswered;
  const late = new Promise((resolve) => { lateAnswered = resolve; });
  const connector = createConnector({
    timeouts: { hostWaitMs: 200 },
    async transport(request) {
      if (request.url.endsWith('/alice')) {
        // Answers after the worker gave up waiting for it.
        await sleep(500);
        lateAnswered();
      }
      return tokenFor(request);
    },
  });
  try {
    await assert.rejects(connector.clientCredentials(config('alice')), (error) => {
      assert.equal(error.code, 'trap');
      assert.equal(error.detail.hostImport, true);
      return true;
    });
    await late;
    await sleep(50); // the late answer has been posted (and the flag raised) by now
    const bob = await connector.clientCredentials(config('bob'));
    assert.equal(bob.accessToken, 'token-of-bob', 'bob gets his own answer, never alice\'s');
    const again = await connector.clientCredentials(config('carol'));
    assert.equal(again.accessToken, 'token-of-carol');
    const stats = await connector.stats();
    assert.equal(stats.hostTimeoutReplacements, 1);
    assert.equal(stats.workers, 2, 'the worker that timed out was replaced with its port');
  } finally {
    await connector.close();
  }
});

test('an argument that cannot be cloned is invalid-argument, and the next call works', { timeout: 10_000 }, async () => {
  const connector = createConnector({ transport: tokenFor });
  try {
    const secret = 'do-not-echo';
    const device = Promise.resolve({ deviceCode: secret });
    await assert.rejects(connector.devicePoll(config('dev'), device), (error) => {
      assert.equal(error.code, 'invalid-argument');
      assert.equal(error.detail.name, 'DataCloneError');
      assert.doesNotMatch(`${error.message} ${JSON.stringify(error)}`, /Promise|do-not-echo/);
      return true;
    });
    await assert.rejects(connector.refresh(config('dev'), { accessToken: 'a', refreshToken: 'r', extras: [() => 1] }),
      (error) => error.code === 'invalid-argument');
    const tokens = await connector.clientCredentials(config('after'));
    assert.equal(tokens.accessToken, 'token-of-after');
  } finally {
    await connector.close();
  }
});

test('a host answer that cannot be cloned fails the import as a trap, and the next call works', { timeout: 10_000 }, async () => {
  const connector = createConnector({
    timeouts: { hostWaitMs: 5000 },
    signer: {
      // An answer with a method in it cannot cross to the worker.
      key: () => ({ algorithm: 'es256', keyId: null, publicJwk: '{}', toString() { return 'x'; } }),
      sign: () => new Uint8Array(64),
    },
    transport: tokenFor,
  });
  try {
    const started = performance.now();
    await assert.rejects(
      connector.clientCredentials(config('jwt', { client: { clientId: 'jwt', authMethod: 'private-key-jwt' } })),
      (error) => {
        assert.equal(error.code, 'trap', error.message);
        assert.equal(error.detail.hostImport, true);
        assert.match(error.detail.message, /DataCloneError/);
        return true;
      },
    );
    assert.ok(performance.now() - started < 4000, 'answered at once, not after the host wait');
    assert.equal((await connector.clientCredentials(config('ok'))).accessToken, 'token-of-ok');
  } finally {
    await connector.close();
  }
});

test('a failure after a refresh carries the rotated token set (error.tokens, error.refreshed)', { timeout: 10_000 }, async () => {
  const connector = createConnector({
    async transport(request) {
      if (request.url.includes('/token/')) {
        return json({ access_token: 'at-2', refresh_token: 'rt-2', token_type: 'Bearer', expires_in: 3600 });
      }
      throw new TransportFailure('timeout');
    },
  });
  try {
    const now = Math.floor(Date.now() / 1000);
    const tokens = { accessToken: 'at-1', refreshToken: 'rt-1', expiresAt: now - 10, obtainedAt: now - 3600 };
    await assert.rejects(connector.call(config('rot'), tokens, { url: `${ORIGIN}/api` }), (error) => {
      assert.equal(error.code, 'transport');
      assert.equal(error.kind, 'timeout');
      assert.equal(error.refreshed, true);
      assert.equal(error.tokens.refreshToken, 'rt-2', 'the rotated refresh token is not lost');
      assert.equal(error.tokens.accessToken, 'at-2');
      return true;
    });
    // Without a refresh, nothing is attached.
    const fresh = { ...tokens, expiresAt: now + 3600, obtainedAt: now };
    await assert.rejects(connector.call(config('rot'), fresh, { url: `${ORIGIN}/api` }),
      (error) => error.kind === 'timeout' && error.tokens === undefined && error.refreshed === undefined);
  } finally {
    await connector.close();
  }
});

test('timeouts and limits: absent fields keep their defaults, invalid ones are refused by name', async () => {
  const defaults = createConnector({ timeouts: { totalMs: undefined }, limits: { maxResponseBytes: null } });
  try {
    assert.equal(defaults.timeouts.totalMs, 30_000, 'undefined keeps the default, not an endless wait');
    assert.equal(defaults.timeouts.connectMs, 10_000);
    assert.equal(defaults.limits.maxResponseBytes, 8 * 1024 * 1024, 'null keeps the cap');
  } finally {
    await defaults.close();
  }
  const cases = [
    [{ timeouts: { totalMs: Number.NaN } }, 'timeouts.totalMs'],
    [{ timeouts: { connectMs: Infinity } }, 'timeouts.connectMs'],
    [{ timeouts: { hostWaitMs: 0 } }, 'timeouts.hostWaitMs'],
    [{ timeouts: 5 }, 'timeouts'],
    [{ limits: { maxResponseBytes: -1 } }, 'limits.maxResponseBytes'],
    [{ limits: { maxHeaderBytes: 1.5 } }, 'limits.maxHeaderBytes'],
    [{ limits: { maxResponseHeaders: '128' } }, 'limits.maxResponseHeaders'],
    [{ limits: { computeMs: Number.NaN } }, 'limits.computeMs'],
    [{ limits: { memoryBytes: 2 ** 60 } }, 'limits.memoryBytes'],
  ];
  for (const [options, field] of cases) {
    assert.throws(() => createConnector(options), (error) => {
      assert.equal(error.code, 'invalid-argument', field);
      assert.deepEqual(error.detail, { field });
      return true;
    }, field);
  }
});

test('ready(): refused after close, and settled when close or an exit interrupts the start', { timeout: 10_000 }, async () => {
  const closed = createConnector();
  await closed.close();
  await assert.rejects(closed.ready(), (error) => error.code === 'closed');

  const closing = createConnector();
  const starting = assert.rejects(closing.ready(), (error) => error.code === 'closed');
  await closing.close();
  await starting;

  // A worker that exits while it loads the bindings.
  const dir = mkdtempSync(join(tmpdir(), 'connector-exit-'));
  try {
    writeFileSync(join(dir, 'manifest.json'), JSON.stringify({ name: 'exits', sha256: '0' }));
    writeFileSync(join(dir, 'exits.js'), 'process.exit(3);\n');
    const exiting = createConnector({ genDir: dir });
    try {
      await assert.rejects(exiting.ready(), (error) => error.code === 'trap' && /exit code 3/.test(error.message));
      await assert.rejects(exiting.stats(), (error) => error.code === 'trap');
    } finally {
      await exiting.close();
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('configuration and token sets are checked by type, typed and without echoing values', { timeout: 10_000 }, async () => {
  const connector = createConnector({ transport: tokenFor });
  const base = {
    profile: { 'token-url': `${ORIGIN}/token/x`, 'authorize-url': `${ORIGIN}/authorize` },
    client: { clientId: 'x' },
    redirectUri: 'http://127.0.0.1:8765/callback',
  };
  const invalid = (field) => (error) => {
    assert.equal(error.code, 'invalid-argument', error.message);
    assert.deepEqual(error.detail, { field });
    assert.doesNotMatch(`${error.message} ${JSON.stringify(error)}`, /SECRET/, 'no value echoed');
    return true;
  };
  try {
    await assert.rejects(connector.beginAuthorization({ ...base, scopes: 'openid' }), invalid('scopes'));
    await assert.rejects(connector.beginAuthorization({ ...base, scopes: ['openid', 7] }), invalid('scopes'));
    await assert.rejects(connector.beginAuthorization({ ...base, resources: `${ORIGIN}/api` }), invalid('resources'));
    await assert.rejects(connector.beginAuthorization({ ...base, allowOrigins: ['ftp://SECRET'] }), invalid('allowOrigins'));
    await assert.rejects(connector.beginAuthorization({ ...base, allowOrigins: 'http://127.0.0.1:1' }), invalid('allowOrigins'));
    assert.throws(() => createConnector({ allowOrigins: ['SECRET'] }), invalid('allowOrigins'));

    // A JSON-form (kebab-case) profile without token-url: the component's typed error, no trap.
    const { profile, ...rest } = base;
    await assert.rejects(connector.beginAuthorization({ ...rest, profile: { 'authorize-url': `${ORIGIN}/authorize` } }), (error) => {
      assert.equal(error.code, 'configuration', error.message);
      assert.equal(error.kind, 'invalid-profile');
      return true;
    });
    await assert.rejects(connector.beginAuthorization({ ...rest, profile: {} }), (error) => error.code === 'configuration');
    // The record form (what parseProfile answers) still works as it is.
    const record = await connector.parseProfile(profile);
    assert.ok((await connector.beginAuthorization({ ...rest, profile: record })).url.startsWith(`${ORIGIN}/authorize?`));

    const tokens = { accessToken: 'a', refreshToken: 'r' };
    await assert.rejects(connector.needsRefresh({ ...tokens, expiresAt: 'SECRET' }), invalid('tokens.expiresAt'));
    await assert.rejects(connector.needsRefresh({ ...tokens, expiresAt: 1.5 }), invalid('tokens.expiresAt'));
    await assert.rejects(connector.needsRefresh({ ...tokens, obtainedAt: { v: 'SECRET' } }), invalid('tokens.obtainedAt'));
    await assert.rejects(connector.refresh(config('x'), { ...tokens, refreshToken: 42 }), invalid('tokens.refreshToken'));
    await assert.rejects(connector.refresh(config('x'), { ...tokens, scopes: 'SECRET' }), invalid('tokens.scopes'));
    await assert.rejects(connector.refresh(config('x'), { ...tokens, extras: ['SECRET'] }), invalid('tokens.extras'));
    assert.equal(await connector.needsRefresh({ ...tokens, expiresAt: null }), false);
    assert.equal((await connector.stats()).traps, 0, 'none of these reached the glue');
  } finally {
    await connector.close();
  }
});

test('a custom transport\'s response is checked: a bad one is a typed transport error, never a trap', { timeout: 20_000 }, async () => {
  const answers = {
    'status-0': { status: 0 },
    'status-600': { status: 600, body: '{}' },
    'status-string': { status: '200' },
    'no-object': null,
    'headers-object': { status: 200, headers: { 'content-type': 'application/json' } },
    'header-method': { status: 200, headers: [{ name: 'x', value: { toString() { return 'SECRET'; } } }] },
    'header-number': { status: 200, headers: [['x', 1]] },
    'header-triple': { status: 200, headers: [['x', 'y', 'z']] },
    'too-many-headers': { status: 200, headers: Array.from({ length: 5 }, (_, i) => [`h${i}`, 'v']) },
    'header-bytes': { status: 200, headers: [['x', 'v'.repeat(600)]] },
    'body-number': { status: 200, body: 42 },
    'body-array': { status: 200, body: [1, 2, 3] },
    'body-string-large': { status: 200, body: 'x'.repeat(2000) },
    'body-bytes-large': { status: 200, body: new Uint8Array(2000) },
    'body-arraybuffer-large': { status: 200, body: new ArrayBuffer(2000) },
  };
  const failures = {
    'fail-no-value': new TransportFailure('connection-failed'),
    'fail-unknown': new TransportFailure('exploded', 'x'),
    'fail-too-large-string': new TransportFailure('response-too-large', 'big'),
  };
  const connector = createConnector({
    limits: { maxResponseBytes: 1024, maxResponseHeaders: 4, maxHeaderBytes: 512 },
    async transport(request) {
      const name = request.url.split('/').at(-1);
      if (failures[name]) throw failures[name];
      if (name in answers) return answers[name];
      if (name === 'bytes') return { status: 200, headers: [['content-type', 'application/json']], body: new TextEncoder().encode('{"ok":1}') };
      if (name === 'arraybuffer') return { status: 201, body: new TextEncoder().encode('{}').buffer };
      if (name === 'timeout') throw new TransportFailure('timeout');
      if (name === 'too-large') throw new TransportFailure('response-too-large', 7);
      return json({});
    },
  });
  const api = (name) => connector.call(config('t'), { accessToken: 'at' }, { url: `${ORIGIN}/api/${name}` });
  try {
    for (const name of [...Object.keys(answers), ...Object.keys(failures)]) {
      await assert.rejects(api(name), (error) => {
        assert.equal(error.code, 'transport', `${name}: ${error.message}`);
        const expected = /large/.test(name) && name.startsWith('body') ? 'response-too-large' : 'other';
        assert.equal(error.kind, expected, name);
        if (expected === 'response-too-large') assert.equal(error.detail.val, 1024, name);
        assert.doesNotMatch(`${error.message} ${JSON.stringify(error)}`, /SECRET/);
        return true;
      }, name);
    }
    // The good forms still work.
    const bytes = await api('bytes');
    assert.equal(bytes.body.toString(), '{"ok":1}');
    assert.deepEqual(bytes.headers, [{ name: 'content-type', value: 'application/json' }]);
    assert.equal((await api('arraybuffer')).status, 201);
    await assert.rejects(api('timeout'), (error) => error.kind === 'timeout');
    await assert.rejects(api('too-large'), (error) => error.kind === 'response-too-large' && error.detail.val === 7);
    assert.equal((await connector.stats()).traps, 0, 'no response trapped the instance');
  } finally {
    await connector.close();
  }
});

test('call: the retry carries the new token only after an async onRefresh resolved', { timeout: 10_000 }, async () => {
  const events = [];
  let refreshes = 0;
  const connector = createConnector({
    async transport(request) {
      if (request.url.includes('/token/')) {
        refreshes += 1;
        events.push('refresh');
        return json({ access_token: `at-${refreshes + 1}`, refresh_token: `rt-${refreshes + 1}`, token_type: 'Bearer', expires_in: 3600 });
      }
      const auth = request.headers.find((h) => h.name.toLowerCase() === 'authorization')?.value;
      events.push(`api ${auth}`);
      if (auth === 'Bearer at-2') return json({ ok: true });
      return {
        status: 401,
        headers: [['www-authenticate', 'Bearer error="invalid_token"']],
        body: '',
      };
    },
  });
  try {
    const tokens = { accessToken: 'at-1', refreshToken: 'rt-1' };
    const answer = await connector.call(config('r'), tokens, { url: `${ORIGIN}/api` }, {
      async onRefresh(fresh) {
        events.push(`onRefresh ${fresh.accessToken}`);
        await sleep(150);
        events.push('onRefresh resolved');
      },
    });
    assert.equal(answer.status, 200);
    assert.equal(answer.refreshed, true);
    assert.equal(answer.tokens.refreshToken, 'rt-2');
    assert.deepEqual(events, [
      'api Bearer at-1', 'refresh', 'onRefresh at-2', 'onRefresh resolved', 'api Bearer at-2',
    ], 'the retry waits for onRefresh');
  } finally {
    await connector.close();
  }
});

test('call: a token rejected again after the refresh is returned after exactly one retry', { timeout: 10_000 }, async () => {
  const seen = { api: 0, token: 0 };
  const connector = createConnector({
    async transport(request) {
      if (request.url.includes('/token/')) {
        seen.token += 1;
        return json({ access_token: 'at-new', refresh_token: 'rt-new', token_type: 'Bearer', expires_in: 3600 });
      }
      seen.api += 1;
      return { status: 401, headers: [['www-authenticate', 'Bearer error="invalid_token"']] };
    },
  });
  try {
    const persisted = [];
    const answer = await connector.call(config('r'), { accessToken: 'at-old', refreshToken: 'rt-old' }, { url: `${ORIGIN}/api` }, {
      onRefresh: (fresh) => { persisted.push(fresh); },
    });
    assert.equal(answer.status, 401);
    assert.equal(answer.tokenRejected, true);
    assert.equal(answer.refreshed, true);
    assert.equal(answer.tokens.refreshToken, 'rt-new', 'the rotated set is returned with the 401');
    assert.deepEqual(seen, { api: 2, token: 1 }, 'one refresh, one retry, no more');
    assert.equal(persisted.length, 1);
  } finally {
    await connector.close();
  }
});

// One artifact, two hosts: the RFC 7636 Appendix B vector and the exact authorize URL that
// wasmtime's tests/component/authorize.rs checks, from the same .wasm file (checked by hash).

import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';

import { createConnector } from '../src/index.js';
import { COMPONENT_WASM, sha256File } from './helpers.js';

/** RFC 7636 Appendix B octets. */
const RFC_OCTETS = [
  116, 24, 223, 180, 151, 153, 224, 37, 79, 250, 96, 125, 216, 173, 187, 186, 22, 212, 37, 77,
  105, 214, 191, 240, 91, 88, 5, 88, 83, 132, 141, 121,
];
/** base64url of 32 bytes of 7: the state the scripted source gives first. */
const STATE = 'BwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwc';
const AUTHORIZE = 'https://auth.example.com/authorize';
const TOKEN = 'https://auth.example.com/token';

/** The configuration of authorize.rs: client `my client`, scopes `openid profile`. */
const CONFIG = {
  profile: { id: 'test', 'authorize-url': AUTHORIZE, 'token-url': TOKEN },
  client: { clientId: 'my client' },
  redirectUri: 'http://127.0.0.1:8765/callback',
  scopes: ['openid', 'profile'],
};

test('the bindings come from the component cargo built, checked by SHA-256', () => {
  const connector = createConnector({ wasmPath: COMPONENT_WASM });
  try {
    const digest = sha256File(COMPONENT_WASM);
    assert.equal(connector.component.sha256, digest);
    // When cargo runs these tests (tests/node.rs), it passes the hash its build computed.
    if (process.env.CONNECTOR_COMPONENT_SHA256) {
      assert.equal(digest, process.env.CONNECTOR_COMPONENT_SHA256);
    }
  } finally {
    connector.close();
  }
  const other = join(tmpdir(), `not-the-component-${process.pid}.wasm`);
  writeFileSync(other, 'not the component');
  try {
    assert.throws(() => createConnector({ wasmPath: other }), (error) => {
      assert.equal(error.code, 'invalid-argument');
      assert.equal(error.detail.expected, sha256File(COMPONENT_WASM));
      return true;
    });
  } finally {
    rmSync(other, { force: true });
  }
});

test('RFC 7636 vector through the component: the exact authorize URL of authorize.rs', async (t) => {
  const started = performance.now();
  const connector = createConnector({
    wasmPath: COMPONENT_WASM,
    insecureScriptedRandom: [...new Array(32).fill(7), ...RFC_OCTETS],
  });
  try {
    const ready = await connector.ready();
    const readyMs = performance.now() - started;
    const { url, pending } = await connector.beginAuthorization(CONFIG);
    assert.equal(
      url,
      'https://auth.example.com/authorize?response_type=code&client_id=my+client'
      + '&redirect_uri=http%3A%2F%2F127.0.0.1%3A8765%2Fcallback&scope=openid+profile'
      + `&state=${STATE}&code_challenge=E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM`
      + '&code_challenge_method=S256',
    );
    assert.equal(pending.state, STATE);
    assert.equal(pending.codeVerifier, 'dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk');
    assert.equal(pending.redirectUri, 'http://127.0.0.1:8765/callback');
    assert.deepEqual(pending.requestedScopes, ['openid', 'profile']);
    assert.equal(pending.expiresAt - pending.createdAt, 600);
    t.diagnostic(`worker ready in ${readyMs.toFixed(1)} ms (glue load ${ready.glueLoadMs.toFixed(1)} ms, `
      + `first instance ${ready.firstInstanceMs.toFixed(1)} ms: compile and instantiate)`);
  } finally {
    await connector.close();
  }
});

test('system random: a fresh state per flow and a matching S256 challenge', async (t) => {
  const connector = createConnector();
  try {
    const first = await connector.beginAuthorization(CONFIG);
    const second = await connector.beginAuthorization(CONFIG);
    assert.notEqual(first.pending.state, second.pending.state);
    for (const { url, pending } of [first, second]) {
      assert.equal(pending.state.length, 43, '256 bits, base64url');
      assert.equal(pending.codeVerifier.length, 43);
      const challenge = createHash('sha256').update(pending.codeVerifier).digest('base64url');
      assert.equal(
        url,
        'https://auth.example.com/authorize?response_type=code&client_id=my+client'
        + '&redirect_uri=http%3A%2F%2F127.0.0.1%3A8765%2Fcallback&scope=openid+profile'
        + `&state=${pending.state}&code_challenge=${challenge}&code_challenge_method=S256`,
      );
    }
    // The authorize URL per call, through the async API (a round trip to the worker each),
    // after a warm-up (V8 tiers the component's code up while it runs).
    for (let i = 0; i < 500; i += 1) await connector.beginAuthorization(CONFIG);
    const n = 1000;
    const started = performance.now();
    for (let i = 0; i < n; i += 1) await connector.beginAuthorization(CONFIG);
    t.diagnostic(`authorize URL: ${(((performance.now() - started) / n) * 1000).toFixed(1)} µs per call (async API, ${n} calls)`);
  } finally {
    await connector.close();
  }
});

test('configuration errors are typed, naming the field', async () => {
  const connector = createConnector();
  try {
    await assert.rejects(
      connector.beginAuthorization({ ...CONFIG, profile: { ...CONFIG.profile, 'authorize-url': 'http://auth.example.com/authorize' } }),
      (error) => error.code === 'configuration' && error.kind === 'insecure-url' && error.detail.val === 'authorize-url',
    );
    await assert.rejects(
      connector.beginAuthorization({ ...CONFIG, authorizeParams: { state: 'mine' } }),
      (error) => error.code === 'configuration' && error.kind === 'reserved-parameter' && error.detail.val === 'state',
    );
    await assert.rejects(
      connector.parseProfile('{"token-url": "https://a.example/t", "tokn-url": 1}'),
      (error) => error.code === 'configuration' && error.kind === 'invalid-profile',
    );
    await assert.rejects(connector.beginAuthorization({ profile: CONFIG.profile, client: {} }), (error) => error.code === 'invalid-argument');
  } finally {
    await connector.close();
  }
});

test('concurrent calls are served in order by one instance, each with its own state', async () => {
  const connector = createConnector();
  try {
    const requests = await Promise.all(Array.from({ length: 32 }, () => connector.beginAuthorization(CONFIG)));
    assert.equal(new Set(requests.map((r) => r.pending.state)).size, 32);
    const stats = await connector.stats();
    assert.equal(stats.instances, 1);
    assert.equal(stats.workers, 1);
    assert.equal(stats.environment, 0, 'the worker has no environment variables');
  } finally {
    await connector.close();
  }
  await assert.rejects(connector.beginAuthorization(CONFIG), (error) => error.code === 'closed');
});

// The host transport's policy, observed through the component on servers on 127.0.0.1: the
// same cases as the wasmtime host's tests/component/transport.rs.

import assert from 'node:assert/strict';
import http from 'node:http';
import { after, before, test } from 'node:test';

import { createConnector } from '../src/index.js';
import { replyServer } from './helpers.js';

const TOKENS = { accessToken: 'at-123', obtainedAt: 0 };

/** A connection whose API base URL and token URL are on `server`'s origin. */
function configFor(server, extra = {}) {
  return {
    profile: {
      'token-url': server.url('/token'),
      'api-base-url': server.origin,
    },
    client: { clientId: 'id', clientSecret: 'secret' },
    ...extra,
  };
}

let allowed;
let other;
let connector;

before(async () => {
  allowed = await replyServer(() => ({ status: 200, headers: { 'content-type': 'application/json' }, body: '{}' }));
  other = await replyServer(() => ({ status: 200, body: '{}' }));
  connector = createConnector();
});

after(async () => {
  await connector.close();
  await allowed.close();
  await other.close();
});

test('a denied origin is a typed error and nothing is sent', async () => {
  const sentBefore = await connector.sentCount();
  await assert.rejects(
    connector.call(configFor(allowed), TOKENS, { method: 'GET', url: other.url('/steal') }),
    (error) => {
      assert.equal(error.code, 'transport');
      assert.equal(error.kind, 'denied');
      assert.deepEqual(error.detail, { tag: 'denied', val: '127.0.0.1' });
      return true;
    },
  );
  // Same host and port by another name is another origin.
  const port = new URL(allowed.origin).port;
  await assert.rejects(
    connector.call(configFor(allowed), TOKENS, { method: 'GET', url: `http://localhost:${port}/x` }),
    (error) => error.kind === 'denied' && error.detail.val === 'localhost',
  );
  assert.equal(other.requests.length, 0, 'nothing may reach a denied origin');
  assert.equal(await connector.sentCount(), sentBefore, 'the request never left the worker');

  // The allowed origin is reached, with the token attached by the component.
  const answer = await connector.call(configFor(allowed), TOKENS, { method: 'GET', url: allowed.url('/me') });
  assert.equal(answer.status, 200);
  assert.equal(allowed.requests.at(-1).headers.authorization, 'Bearer at-123');
});

test('allowOrigins extends a connection\'s allow-list', async () => {
  const answer = await connector.call(
    configFor(allowed, { allowOrigins: [other.origin] }),
    TOKENS,
    { method: 'GET', url: other.url('/extra') },
  );
  assert.equal(answer.status, 200);
  assert.equal(other.requests.length, 1);
});

test('a redirect is returned, not followed', async () => {
  const target = await replyServer(() => ({ status: 200, body: '{"stolen": true}' }));
  const redirecting = await replyServer(() => ({ status: 302, headers: { location: target.url('/elsewhere') } }));
  try {
    // Both origins allowed: the only thing stopping the redirect is the transport itself.
    const config = configFor(redirecting, { allowOrigins: [target.origin] });
    const answer = await connector.call(config, TOKENS, { method: 'GET', url: redirecting.url('/api') });
    assert.equal(answer.status, 302);
    assert.deepEqual(answer.headers.find((h) => h.name === 'location'), { name: 'location', value: target.url('/elsewhere') });

    // A token request answered with a redirect: the component refuses it as it is.
    await assert.rejects(connector.clientCredentials(config), (error) => {
      assert.equal(error.code, 'invalid-response');
      assert.equal(error.detail.status, 302);
      return true;
    });
    assert.equal(target.requests.length, 0, 'the redirect target must not be contacted');
    assert.equal(redirecting.requests.length, 2);
  } finally {
    await target.close();
    await redirecting.close();
  }
});

test('an oversized body is response-too-large, never truncated', async () => {
  const big = await replyServer(() => ({ status: 200, body: 'x'.repeat(4096) }));
  const capped = createConnector({ limits: { maxResponseBytes: 1024 } });
  try {
    await assert.rejects(
      capped.call(configFor(big), TOKENS, { method: 'GET', url: big.url('/big') }),
      (error) => error.code === 'transport' && error.kind === 'response-too-large' && error.detail.val === 1024,
    );
  } finally {
    await capped.close();
    await big.close();
  }
});

test('a chunked body over the cap is response-too-large (the streaming cap, no content-length)', async () => {
  let chunksSent = 0;
  const chunked = http.createServer((req, res) => {
    res.writeHead(200, { 'content-type': 'application/octet-stream' }); // no content-length: chunked
    const write = () => {
      if (chunksSent >= 64 || res.destroyed) { res.end(); return; }
      chunksSent += 1;
      res.write('x'.repeat(512), () => setImmediate(write));
    };
    write();
  });
  await new Promise((resolve) => { chunked.listen(0, '127.0.0.1', resolve); });
  const origin = `http://127.0.0.1:${chunked.address().port}`;
  const capped = createConnector({ limits: { maxResponseBytes: 4096 } });
  try {
    const config = { profile: { 'token-url': `${origin}/token`, 'api-base-url': origin }, client: { clientId: 'id' } };
    await assert.rejects(
      capped.call(config, TOKENS, { method: 'GET', url: `${origin}/stream` }),
      (error) => error.code === 'transport' && error.kind === 'response-too-large' && error.detail.val === 4096,
    );
    assert.ok(chunksSent > 8, 'the cap was crossed while streaming');
    assert.ok(chunksSent < 64, 'the transfer was cut off at the cap, not read to its end');
  } finally {
    await capped.close();
    chunked.closeAllConnections?.();
    await new Promise((resolve) => { chunked.close(resolve); });
  }
});

test('a slow server times out', async () => {
  const slow = await replyServer(() => new Promise((resolve) => {
    setTimeout(() => resolve({ status: 200, body: '{}' }), 3000).unref();
  }));
  const impatient = createConnector({ timeouts: { totalMs: 300 } });
  try {
    const started = performance.now();
    await assert.rejects(
      impatient.call(configFor(slow), TOKENS, { method: 'GET', url: slow.url('/slow') }),
      (error) => error.code === 'transport' && error.kind === 'timeout',
    );
    assert.ok(performance.now() - started < 2000);
  } finally {
    await impatient.close();
    await slow.close();
  }
});

test('a connection refused is connection-failed, naming the origin', async () => {
  const gone = await replyServer(() => ({ status: 200 }));
  await gone.close();
  await assert.rejects(
    connector.call(configFor(gone), TOKENS, { method: 'GET', url: gone.url('/x') }),
    (error) => error.code === 'transport' && error.kind === 'connection-failed'
      && error.detail.val === `${gone.origin}: ECONNREFUSED`,
  );
});

test('the request is sent exactly: method, target, headers, body', async () => {
  await connector.call(configFor(allowed), TOKENS, {
    method: 'POST',
    url: allowed.url('/token?api-version=2'),
    headers: [{ name: 'X-Custom', value: 'yes' }],
    body: 'a=1&b=2',
  });
  const request = allowed.requests.at(-1);
  assert.equal(request.method, 'POST');
  assert.equal(request.url, '/token?api-version=2');
  assert.equal(request.headers['x-custom'], 'yes');
  assert.equal(request.body, 'a=1&b=2');
});

test('a URL with user information is refused (never sent as Basic authentication)', async () => {
  const sentBefore = await connector.sentCount();
  const [, rest] = allowed.origin.split('//');
  for (const url of [`http://user:pass@${rest}/x`, `http://user@${rest}/x`]) {
    await assert.rejects(
      connector.call(configFor(allowed), TOKENS, { method: 'GET', url }),
      (error) => {
        assert.equal(error.code, 'transport');
        assert.equal(error.kind, 'invalid-request');
        assert.doesNotMatch(`${error.message} ${JSON.stringify(error)}`, /pass/);
        return true;
      },
    );
  }
  assert.equal(await connector.sentCount(), sentBefore, 'refused in the worker, nothing sent');
});

// The grants end to end against the project's authorization server (oidc-provider) on
// 127.0.0.1, through the component in a worker thread.

import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';

import { createConnector } from '../src/index.js';
import {
  approveDevice, localProfile, REDIRECT_URI, signIn, startServer,
} from './helpers.js';

let server;
let connector;

before(async () => {
  server = await startServer();
  connector = createConnector();
});

after(async () => {
  await connector?.close();
  await server?.close();
});

/** A basic-client connection to the local server, offline access and the API resource. */
function codeConfig(extra = {}) {
  return {
    profile: localProfile(server.issuer),
    client: { clientId: 'basic-client', clientSecret: 'basic-secret' },
    redirectUri: REDIRECT_URI,
    scopes: ['openid', 'api:read'],
    offlineAccess: true,
    resources: [`${server.issuer}/api`],
    ...extra,
  };
}

/** Signs in through the component: begin, the scripted browser, complete. */
async function connect(config) {
  const { url, pending } = await connector.beginAuthorization(config);
  const callback = await signIn(url);
  return connector.completeAuthorization(config, pending, callback);
}

describe('authorization code with PKCE', () => {
  test('signs in, exchanges the code with the verifier, and gets JSON-safe tokens', async () => {
    const config = codeConfig();
    const { url, pending } = await connector.beginAuthorization(config);
    const authorize = new URL(url);
    assert.equal(authorize.origin + authorize.pathname, `${server.issuer}/auth`);
    assert.equal(authorize.searchParams.get('code_challenge_method'), 'S256');
    assert.equal(authorize.searchParams.get('client_id'), 'basic-client');
    assert.equal(authorize.searchParams.get('prompt'), 'consent');
    assert.equal(pending.state.length, 43);
    assert.equal(typeof pending.expiresAt, 'number');

    const callback = await signIn(url);
    assert.equal(new URL(callback).searchParams.get('iss'), server.issuer);
    const tokens = await connector.completeAuthorization(config, pending, callback);
    assert.equal(tokens.tokenType, 'bearer');
    assert.equal(typeof tokens.accessToken, 'string');
    assert.equal(typeof tokens.refreshToken, 'string');
    assert.equal(typeof tokens.expiresAt, 'number');
    assert.equal(typeof tokens.obtainedAt, 'number');
    assert.ok(tokens.expiresAt > tokens.obtainedAt);
    JSON.stringify(tokens); // no BigInt anywhere

    const exchange = (await server.tokenRequests()).filter((r) => r.params.grant_type === 'authorization_code').at(-1);
    assert.equal(exchange.authorization, 'Basic');
    assert.equal(exchange.params.code_verifier, pending.codeVerifier);
    assert.equal(exchange.params.redirect_uri, REDIRECT_URI);
  });

  test('check: a client without the secret its method needs is refused before any browser', async () => {
    await connector.checkAuthorization(codeConfig());
    await assert.rejects(
      connector.checkAuthorization(codeConfig({ client: { clientId: 'basic-client' } })),
      (error) => error.code === 'configuration' && error.kind === 'missing-client-secret',
    );
  });

  test('a callback with another state is refused before any token request', async () => {
    const config = codeConfig();
    const { url, pending } = await connector.beginAuthorization(config);
    const callback = new URL(await signIn(url));
    callback.searchParams.set('state', `${pending.state}x`);
    const before = (await server.stats()).token_requests;
    await assert.rejects(connector.completeAuthorization(config, pending, callback.href), (error) => {
      assert.equal(error.code, 'callback');
      assert.equal(error.kind, 'state-mismatch');
      return true;
    });
    assert.equal((await server.stats()).token_requests, before);
  });
});

describe('refresh', () => {
  test('rotation: the new refresh token is kept and the old one is rejected by the server', async () => {
    const config = codeConfig();
    const first = await connect(config);
    const second = await connector.refresh(config, first);
    assert.notEqual(second.accessToken, first.accessToken);
    assert.equal(typeof second.refreshToken, 'string');
    assert.notEqual(second.refreshToken, first.refreshToken, 'the server rotates refresh tokens');

    // The old refresh token is spent: the server refuses it, and the grant is gone.
    await assert.rejects(connector.refresh(config, first), (error) => {
      assert.equal(error.code, 'reauthorization-required');
      assert.equal(error.kind, 'invalid-grant');
      const text = `${error.message} ${JSON.stringify(error)}`;
      for (const secret of [first.refreshToken, first.accessToken, 'basic-secret']) {
        assert.ok(!text.includes(secret), 'no token or secret in an error');
      }
      return true;
    });
  });

  test('needsRefresh: a fresh token is not due; one expiring in 10 s is', async () => {
    const now = Math.floor(Date.now() / 1000);
    const tokens = { accessToken: 'a', expiresAt: now + 3600, obtainedAt: now };
    assert.equal(await connector.needsRefresh(tokens), false);
    // A one-hour token is due in its last 5 minutes; a 10-second one in its last 5 seconds.
    assert.equal(await connector.needsRefresh({ ...tokens, expiresAt: now + 10, obtainedAt: now - 3590 }), true);
    assert.equal(await connector.needsRefresh({ ...tokens, expiresAt: now + 10, obtainedAt: now }), false);
    assert.equal(await connector.needsRefresh({ ...tokens, expiresAt: null }), false);
    assert.equal(await connector.needsRefresh(tokens, { marginSeconds: 7200 }), true);
  });
});

describe('client credentials', () => {
  test('fetches a token with Basic authentication and the requested scope', async () => {
    const config = {
      profile: localProfile(server.issuer),
      client: { clientId: 'service-client', clientSecret: 'service-secret' },
      scopes: ['api:read'],
    };
    const tokens = await connector.clientCredentials(config);
    assert.equal(tokens.tokenType, 'bearer');
    assert.equal(tokens.refreshToken, null);
    assert.deepEqual(tokens.scopes, ['api:read']);
    const request = (await server.tokenRequests()).at(-1);
    assert.equal(request.params.grant_type, 'client_credentials');
    assert.equal(request.authorization, 'Basic');
  });

  test('a wrong secret is the server saying no, typed', async () => {
    const config = {
      profile: localProfile(server.issuer),
      client: { clientId: 'service-client', clientSecret: 'wrong' },
    };
    await assert.rejects(connector.clientCredentials(config), (error) => {
      assert.equal(error.code, 'server-said-no');
      assert.equal(error.kind, 'invalid-client');
      assert.doesNotMatch(`${error.message} ${JSON.stringify(error)}`, /wrong/, 'no secret in an error');
      return true;
    });
  });
});

describe('device authorization', () => {
  test('begin, pending, approval, complete', async () => {
    const config = {
      profile: localProfile(server.issuer),
      client: { clientId: 'device-client', authMethod: 'none' },
      scopes: ['openid', 'offline_access'],
    };
    const device = await connector.deviceBegin(config);
    assert.equal(typeof device.userCode, 'string');
    assert.equal(typeof device.intervalSeconds, 'number');
    assert.ok(device.verificationUriComplete.startsWith(`${server.issuer}/device`));

    const pending = await connector.devicePoll(config, device);
    assert.equal(pending.state, 'pending');
    assert.equal(typeof pending.intervalSeconds, 'number');

    await approveDevice(device.verificationUriComplete);
    // The server may ask for patience (slow_down) after the quick first poll.
    let poll = await connector.devicePoll(config, device);
    for (let i = 0; poll.state !== 'complete' && i < 3; i += 1) {
      await new Promise((resolve) => { setTimeout(resolve, 1000 * Math.min(poll.intervalSeconds, 6)); });
      poll = await connector.devicePoll(config, device);
    }
    assert.equal(poll.state, 'complete');
    assert.equal(typeof poll.tokens.accessToken, 'string');
    assert.equal(typeof poll.tokens.refreshToken, 'string');
  });
});

describe('call', () => {
  test('a rejected token is refreshed once and the call retried', async () => {
    const config = codeConfig();
    const tokens = await connect(config);
    const whoami = `${server.issuer}/api/whoami`;

    const ok = await connector.call(config, tokens, { method: 'GET', url: whoami });
    assert.equal(ok.status, 200);
    assert.equal(ok.refreshed, false);
    assert.equal(JSON.parse(ok.body).client_id, 'basic-client');

    // An access token the API does not know (as after a server-side revocation): 401.
    const persisted = [];
    const stale = { ...tokens, accessToken: 'revoked-or-unknown' };
    const before = (await server.tokenRequests()).length;
    // An async onRefresh: the call waits for it (the set is persisted before it is used).
    const retried = await connector.call(config, stale, { method: 'GET', url: whoami }, {
      onRefresh: async (fresh) => {
        await new Promise((resolve) => { setTimeout(resolve, 150); });
        persisted.push(fresh);
      },
    });
    assert.equal(retried.status, 200);
    assert.equal(retried.refreshed, true);
    assert.equal(retried.tokenRejected, false);
    assert.equal(persisted.length, 1, 'the new token set is handed over before it is used');
    assert.equal(retried.tokens.accessToken, persisted[0].accessToken);
    assert.notEqual(retried.tokens.refreshToken, tokens.refreshToken);
    const sent = (await server.tokenRequests()).slice(before);
    assert.deepEqual(sent.map((r) => r.params.grant_type), ['refresh_token'], 'one refresh, no more');
  });

  test('concurrent calls with the same due tokens share one refresh', async () => {
    const config = codeConfig();
    const tokens = await connect(config);
    const due = { ...tokens, expiresAt: Math.floor(Date.now() / 1000) - 1 };
    const whoami = `${server.issuer}/api/whoami`;
    const before = (await server.tokenRequests()).length;
    const [a, b] = await Promise.all([
      connector.call(config, due, { method: 'GET', url: whoami }),
      connector.call(config, due, { method: 'GET', url: whoami }),
    ]);
    assert.equal(a.status, 200);
    assert.equal(b.status, 200);
    assert.equal(a.refreshed, true);
    assert.equal(b.refreshed, true);
    assert.deepEqual(a.tokens, b.tokens, 'both callers get the same new set');
    assert.notEqual(a.tokens.refreshToken, tokens.refreshToken);
    const sent = (await server.tokenRequests()).slice(before);
    assert.deepEqual(sent.map((r) => r.params.grant_type), ['refresh_token'], 'the token endpoint sees one refresh');
    // The shared refresh is forgotten once settled: the new set refreshes on its own.
    const next = await connector.refresh(config, a.tokens);
    assert.notEqual(next.refreshToken, a.tokens.refreshToken);
  });

  test('rejected again after the refresh: the 401 is returned, not retried twice', async () => {
    const config = codeConfig();
    const tokens = await connect(config);
    const before = (await server.tokenRequests()).length;
    const answer = await connector.call(config, tokens, { method: 'GET', url: `${server.issuer}/api/whoami`, headers: { authorization: 'x' } }, {});
    // The component replaces the caller's Authorization header: this one succeeds.
    assert.equal(answer.status, 200);
    // With refresh off, a rejection is returned as it is.
    const stale = { ...tokens, accessToken: 'unknown' };
    const rejected = await connector.call(config, stale, { method: 'GET', url: `${server.issuer}/api/whoami` }, { refresh: false });
    assert.equal(rejected.status, 401);
    assert.equal(rejected.tokenRejected, true);
    assert.equal((await server.tokenRequests()).length, before);
  });
});

describe('revoke', () => {
  test('revokes the refresh token: a later refresh needs re-authorization', async () => {
    const config = codeConfig();
    const tokens = await connect(config);
    await connector.revoke(config, tokens);
    await assert.rejects(connector.refresh(config, tokens), (error) => error.code === 'reauthorization-required');
  });
});

describe('discovery and presets', () => {
  test('discover builds a profile from the issuer metadata', async () => {
    const profile = await connector.discover(server.issuer);
    assert.equal(profile.issuer, server.issuer);
    assert.equal(profile.tokenUrl, `${server.issuer}/token`);
    assert.equal(profile.pkce, 's256');
    assert.equal(profile.requiresIss, true);
    // The discovered record works as a connection's profile as it is.
    const { url } = await connector.beginAuthorization({
      profile, client: { clientId: 'public-client', authMethod: 'none' }, redirectUri: REDIRECT_URI,
    });
    // The server offers pushed authorization requests: the URL carries only client_id and request_uri.
    assert.ok(url.startsWith(`${server.issuer}/auth?`), url);
    assert.ok(new URL(url).searchParams.get('request_uri'), url);
  });

  test('every shipped preset parses through the component', async () => {
    const presets = connector.listPresets();
    assert.ok(presets.length >= 100, `${presets.length} presets`);
    for (const { id } of presets) {
      const preset = await connector.getPreset(id);
      assert.equal(preset.profile.id, id);
      assert.equal(typeof preset.profile.tokenUrl, 'string');
    }
    await assert.rejects(connector.getPreset('no-such-vendor'), (error) => error.code === 'configuration' && error.kind === 'unknown-preset');
  });

  test('a preset with a placeholder, by id', async () => {
    const { url } = await connector.beginAuthorization({
      preset: 'microsoft',
      variables: { tenant: 'contoso.onmicrosoft.com' },
      client: { clientId: 'app' },
      redirectUri: REDIRECT_URI,
    });
    assert.ok(url.startsWith('https://login.microsoftonline.com/contoso.onmicrosoft.com/oauth2/v2.0/authorize?'), url);
  });
});

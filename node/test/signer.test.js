// The signer import served by Node's crypto: private_key_jwt client authentication (RS256,
// ES256, EdDSA) and a DPoP-bound sign-in, against the project's authorization server, whose
// clients' private keys it writes to CLIENT_KEYS_DIR.

import assert from 'node:assert/strict';
import { generateKeyPairSync } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';

import { createConnector } from '../src/index.js';
import {
  localProfile, REDIRECT_URI, signIn, startServer,
} from './helpers.js';

let server;
let keysDir;

before(async () => {
  keysDir = mkdtempSync(join(tmpdir(), 'connector-keys-'));
  server = await startServer({ CLIENT_KEYS_DIR: keysDir });
});

after(async () => {
  await server?.close();
  rmSync(keysDir, { recursive: true, force: true });
});

for (const [clientId, file, keyId, alg] of [
  ['rs256-client', 'rs256.pem', 'rs-1', 'RS256'],
  ['es256-client', 'es256.pem', 'ec-1', 'ES256'],
  ['eddsa-client', 'eddsa.pem', 'ed-1', 'EdDSA'],
]) {
  test(`private_key_jwt with ${alg}: the host signs, the server verifies`, async () => {
    const connector = createConnector({
      signer: { keys: [{ privateKey: readFileSync(join(keysDir, file), 'utf8'), keyId, purpose: 'client-assertion' }] },
    });
    try {
      const tokens = await connector.clientCredentials({
        profile: localProfile(server.issuer),
        client: { clientId, authMethod: 'private-key-jwt' },
        scopes: ['api:read'],
      });
      assert.equal(tokens.tokenType, 'bearer');
      const assertion = (await server.observe('/__assertions')).at(-1);
      assert.equal(assertion.client_id, clientId);
      assert.equal(assertion.status, 200);
      assert.deepEqual(
        { alg: assertion.header.alg, kid: assertion.header.kid },
        { alg, kid: keyId },
      );
      assert.equal(assertion.claims.iss, clientId);
      assert.equal(assertion.claims.aud, `${server.issuer}/token`);
    } finally {
      await connector.close();
    }
  });
}

test('no key for the purpose: a typed signing error, nothing sent', async () => {
  const connector = createConnector();
  try {
    const before = (await server.stats()).token_requests;
    await assert.rejects(connector.clientCredentials({
      profile: localProfile(server.issuer),
      client: { clientId: 'es256-client', authMethod: 'private-key-jwt' },
    }), (error) => error.code === 'signing' && error.kind === 'no-key');
    assert.equal((await server.stats()).token_requests, before);
  } finally {
    await connector.close();
  }
});

test('DPoP: a sign-in bound to a host-held P-256 key, and an API call with a proof', async () => {
  const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const connector = createConnector({ signer: { keys: [{ privateKey, purpose: 'dpop-proof' }] } });
  try {
    const config = {
      profile: localProfile(server.issuer),
      client: { clientId: 'dpop-client', clientSecret: 'dpop-secret' },
      redirectUri: REDIRECT_URI,
      scopes: ['openid', 'api:read'],
      resources: [`${server.issuer}/api`],
      dpop: true,
    };
    const { url, pending } = await connector.beginAuthorization(config);
    assert.ok(new URL(url).searchParams.get('dpop_jkt'), 'the authorize request names the key');
    const tokens = await connector.completeAuthorization(config, pending, await signIn(url));
    assert.equal(tokens.tokenType, 'dpop');
    assert.equal(typeof tokens.dpopKeyThumbprint, 'string');
    const answer = await connector.call(config, tokens, { method: 'GET', url: `${server.issuer}/api/whoami` });
    assert.equal(answer.status, 200, answer.body.toString());
    const proof = (await server.observe('/__dpop')).at(-1);
    assert.equal(proof.path, '/api/whoami');
    assert.equal(proof.header.alg, 'ES256');
    assert.equal(typeof proof.claims.ath, 'string');
  } finally {
    await connector.close();
  }
});

test('a key the signer cannot use is invalid-argument naming the key, not a TypeError', async () => {
  const cases = [
    [{ keys: [{ privateKey: 42 }] }, 'signer.keys[0].privateKey'],
    [{ keys: [{ privateKey: 'not a PEM' }] }, 'signer.keys[0].privateKey'],
    [{ keys: [{ privateKey: generateKeyPairSync('ec', { namedCurve: 'secp256k1' }).privateKey }] }, 'signer.keys[0].privateKey'],
    [{ keys: 'nope' }, 'signer.keys'],
    [{ sign: () => new Uint8Array(0) }, 'signer'],
  ];
  for (const [signer, field] of cases) {
    assert.throws(() => createConnector({ signer }), (error) => {
      assert.equal(error.name, 'ConnectorError');
      assert.equal(error.code, 'invalid-argument');
      assert.deepEqual(error.detail, { field });
      return true;
    }, field);
  }
});

// The signer behind the component's `signer` import, with Node's crypto: private keys stay in
// the host, and the component sees only the algorithm, the `kid` and the public JWK.
//
// Keys are given as `{ privateKey, keyId?, purpose?, clientId?, algorithm? }`: `privateKey`
// a PEM string (PKCS#8, or PKCS#1 RSA), a KeyObject or a private JWK; `purpose`
// (`client-assertion`, `dpop-proof`, `authorization-grant`) and `clientId` restrict which
// requests the key serves (absent: any). The key type decides the algorithm: RSA signs
// RS256 (or PS256 with `algorithm: 'ps256'`), P-256 ES256, P-384 ES384, Ed25519 EdDSA.
// A signer of one's own (an HSM, a KMS) is any object with `key(purpose, clientId)` and
// `sign(purpose, clientId, input)`, sync or async, answering as the WIT `signer` does.

import { createPrivateKey, createPublicKey, KeyObject, sign as cryptoSign, constants } from 'node:crypto';

import { ConnectorError } from './records.js';

function privateKeyObject(key) {
  if (key instanceof KeyObject) return key;
  if (typeof key === 'string' || Buffer.isBuffer(key)) return createPrivateKey(key);
  if (key && typeof key === 'object' && key.kty) return createPrivateKey({ key, format: 'jwk' });
  throw new TypeError('signer: privateKey must be a PEM string, a KeyObject or a private JWK');
}

function algorithmOf(keyObject, requested) {
  const type = keyObject.asymmetricKeyType;
  if (type === 'rsa') return requested === 'ps256' ? 'ps256' : 'rs256';
  if (type === 'ec') {
    const curve = keyObject.asymmetricKeyDetails?.namedCurve;
    if (curve === 'prime256v1') return 'es256';
    if (curve === 'secp384r1') return 'es384';
  }
  if (type === 'ed25519') return 'eddsa';
  throw new TypeError(`signer: unsupported key type ${type}${type === 'ec' ? ` (${keyObject.asymmetricKeyDetails?.namedCurve})` : ''}`);
}

/** Only the public members, in the order RFC 7638 lists them. */
function publicJwk(keyObject) {
  const jwk = createPublicKey(keyObject).export({ format: 'jwk' });
  const members = { EC: ['crv', 'kty', 'x', 'y'], RSA: ['e', 'kty', 'n'], OKP: ['crv', 'kty', 'x'] }[jwk.kty];
  return JSON.stringify(Object.fromEntries(members.map((m) => [m, jwk[m]])));
}

function signWith(entry, input) {
  const data = Buffer.from(input.buffer, input.byteOffset, input.byteLength);
  switch (entry.algorithm) {
    case 'rs256': return cryptoSign('sha256', data, entry.key);
    case 'ps256': return cryptoSign('sha256', data, {
      key: entry.key, padding: constants.RSA_PKCS1_PSS_PADDING, saltLength: 32,
    });
    case 'es256': return cryptoSign('sha256', data, { key: entry.key, dsaEncoding: 'ieee-p1363' });
    case 'es384': return cryptoSign('sha384', data, { key: entry.key, dsaEncoding: 'ieee-p1363' });
    case 'eddsa': return cryptoSign(null, data, entry.key);
    default: throw new TypeError(`signer: unknown algorithm ${entry.algorithm}`);
  }
}

/** A signer over `keys`; with no keys every request is `no-key`. */
export function keySigner(keys = []) {
  if (!Array.isArray(keys)) {
    throw new ConnectorError('invalid-argument', { field: 'signer.keys' }, 'signer.keys: expected an array');
  }
  const entries = keys.map((k, i) => {
    const field = `signer.keys[${i}]`;
    let key;
    let algorithm;
    let jwk;
    try {
      key = privateKeyObject(k?.privateKey);
      algorithm = algorithmOf(key, k.algorithm);
      jwk = publicJwk(key);
    } catch (error) {
      // The error's own text only when it is ours (no key material); crypto's by its code.
      const why = error instanceof TypeError && String(error.message).startsWith('signer: ')
        ? error.message.slice('signer: '.length) : `the private key could not be read (${error?.code ?? error?.name ?? 'Error'})`;
      throw new ConnectorError('invalid-argument', { field: `${field}.privateKey` }, `${field}.privateKey: ${why}`);
    }
    return {
      key,
      algorithm,
      keyId: k.keyId ?? null,
      publicJwk: jwk,
      purpose: k.purpose ?? null,
      clientId: k.clientId ?? null,
    };
  });
  const find = (purpose, clientId) => entries.find((e) => (e.purpose === null || e.purpose === purpose)
    && (e.clientId === null || e.clientId === clientId));
  return {
    key(purpose, clientId) {
      const entry = find(purpose, clientId);
      if (!entry) return { err: { tag: 'no-key' } };
      return { ok: { algorithm: entry.algorithm, keyId: entry.keyId, publicJwk: entry.publicJwk } };
    },
    sign(purpose, clientId, input) {
      const entry = find(purpose, clientId);
      if (!entry) return { err: { tag: 'no-key' } };
      try {
        return { ok: new Uint8Array(signWith(entry, input)) };
      } catch {
        return { err: { tag: 'failed', val: `the ${entry.algorithm} key could not sign` } };
      }
    },
  };
}

/**
 * Adapts a signer of one's own (`key`/`sign` returning the WIT values or throwing an object
 * with `signingError: {tag, val}`) to the `{ok}`/`{err}` answers the worker expects.
 */
export function customSigner(signer) {
  if (typeof signer.key !== 'function' || typeof signer.sign !== 'function') {
    throw new ConnectorError('invalid-argument', { field: 'signer' }, 'signer: expected `keys`, or `key` and `sign` functions');
  }
  const wrap = (fn) => async (...args) => {
    try {
      return { ok: await fn(...args) };
    } catch (error) {
      if (error?.signingError?.tag) return { err: error.signingError };
      return { err: { tag: 'failed', val: 'the signer failed' } };
    }
  };
  return { key: wrap(signer.key.bind(signer)), sign: wrap(signer.sign.bind(signer)) };
}

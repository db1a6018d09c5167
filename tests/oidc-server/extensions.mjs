// The parts of server.mjs that oidc-provider does not have itself: the token exchange
// (RFC 8693) and JWT bearer (RFC 7523 §2.1) grant handlers, registered with
// provider.registerGrantType, and a protected resource on the same origin (GET /api/whoami,
// RFC 9728 metadata), with JWS checks written on node:crypto. See README.md for the contract.

import * as crypto from 'node:crypto';

import { errors } from 'oidc-provider';

export const TOKEN_EXCHANGE = 'urn:ietf:params:oauth:grant-type:token-exchange';
export const JWT_BEARER = 'urn:ietf:params:oauth:grant-type:jwt-bearer';
export const ACCESS_TOKEN_TYPE = 'urn:ietf:params:oauth:token-type:access_token';

const epoch = () => Math.floor(Date.now() / 1000);
const b64url = (buf) => Buffer.from(buf).toString('base64url');

// The header and claims of a compact JWS/JWT, not verified ({header: null, claims: null} for
// parts that are not base64url JSON objects).
export function decodeJose(token) {
  const parts = typeof token === 'string' ? token.split('.') : [];
  const part = (p) => {
    try {
      const v = JSON.parse(Buffer.from(p, 'base64url').toString('utf8'));
      return v && typeof v === 'object' && !Array.isArray(v) ? v : null;
    } catch { return null; }
  };
  return { header: parts.length >= 2 ? part(parts[0]) : null, claims: parts.length >= 2 ? part(parts[1]) : null };
}

// JWS algorithms verified here, with the key type each needs.
const JWS_ALGS = {
  ES256: { hash: 'sha256', kty: 'ec', dsaEncoding: 'ieee-p1363' },
  ES384: { hash: 'sha384', kty: 'ec', dsaEncoding: 'ieee-p1363' },
  RS256: { hash: 'sha256', kty: 'rsa' },
  PS256: { hash: 'sha256', kty: 'rsa', padding: crypto.constants.RSA_PKCS1_PSS_PADDING, saltLength: 32 },
  EdDSA: { hash: null, kty: 'ed25519' },
};

// Whether the compact JWS `jws` carries a valid `alg` signature by `key` (a public KeyObject).
export function verifyJws(jws, alg, key) {
  const spec = JWS_ALGS[alg];
  const parts = jws.split('.');
  if (!spec || parts.length !== 3 || key.asymmetricKeyType !== spec.kty) return false;
  try {
    return crypto.verify(spec.hash, Buffer.from(`${parts[0]}.${parts[1]}`), {
      key, dsaEncoding: spec.dsaEncoding, padding: spec.padding, saltLength: spec.saltLength,
    }, Buffer.from(parts[2], 'base64url'));
  } catch {
    return false;
  }
}

// RFC 7638 JWK SHA-256 thumbprint (base64url), as DPoP's `jkt`.
export function jwkThumbprint(jwk) {
  const members = { EC: ['crv', 'kty', 'x', 'y'], RSA: ['e', 'kty', 'n'], OKP: ['crv', 'kty', 'x'] }[jwk.kty];
  if (!members) throw new Error(`unsupported kty ${jwk.kty}`);
  const json = `{${members.map((m) => `${JSON.stringify(m)}:${JSON.stringify(jwk[m])}`).join(',')}}`;
  return b64url(crypto.createHash('sha256').update(json).digest());
}

const publicKeyFromJwk = (jwk) => {
  const { kty, crv, x, y, n, e } = jwk;
  return crypto.createPublicKey({ key: { kty, crv, x, y, n, e }, format: 'jwk' });
};

// invalid_grant with our own error_description (oidc-provider's InvalidGrant always says
// "grant request is invalid" and keeps its argument as the unexposed error_detail).
function invalidGrant(description) {
  const err = new errors.InvalidGrant(description);
  err.error_description = description;
  return err;
}

const asList = (v) => {
  if (v === undefined || v === null || v === '') return [];
  return Array.isArray(v) ? v : [v];
};

// An access token this server issued and that is still valid: an AccessToken (user grants,
// token exchange, jwt-bearer) or a ClientCredentials token. Its grant must still exist.
export async function findAccessToken(provider, value) {
  if (typeof value !== 'string' || value === '') return undefined;
  const token = (await provider.AccessToken.find(value)) || (await provider.ClientCredentials.find(value));
  if (!token || !token.isValid) return undefined;
  if (token.grantId) {
    const grant = await provider.Grant.find(token.grantId);
    if (!grant || grant.clientId !== token.clientId || grant.accountId !== token.accountId) return undefined;
  }
  return token;
}

// A Grant for a token issued by a custom grant, so that introspection and userinfo (which both
// look the grant up) treat it like any other token of this server.
async function saveGrant(provider, accountId, clientId, scope) {
  const grant = new provider.Grant({ accountId, clientId });
  if (scope) grant.addOIDCScope(scope);
  return grant.save();
}

export function installGrants(provider, {
  issuer, knownScopes, serviceAccounts, exchangeAudiences, extraClaims,
}) {
  // ---------------------------------------------------------- RFC 8693 token exchange
  async function tokenExchange(ctx, next) {
    const { params, client } = ctx.oidc;
    if (!params.subject_token) throw new errors.InvalidRequest("missing required parameter 'subject_token'");
    if (!params.subject_token_type) throw new errors.InvalidRequest("missing required parameter 'subject_token_type'");
    if (params.subject_token_type !== ACCESS_TOKEN_TYPE) {
      throw new errors.InvalidRequest(`unsupported subject_token_type (only ${ACCESS_TOKEN_TYPE})`);
    }
    if (params.requested_token_type !== undefined && params.requested_token_type !== ACCESS_TOKEN_TYPE) {
      throw new errors.InvalidRequest(`unsupported requested_token_type (only ${ACCESS_TOKEN_TYPE})`);
    }
    if (params.actor_token !== undefined && params.actor_token_type !== ACCESS_TOKEN_TYPE) {
      throw new errors.InvalidRequest(params.actor_token_type === undefined
        ? "actor_token_type is required with 'actor_token'"
        : `unsupported actor_token_type (only ${ACCESS_TOKEN_TYPE})`);
    }
    if (params.actor_token === undefined && params.actor_token_type !== undefined) {
      throw new errors.InvalidRequest("actor_token_type must not be sent without 'actor_token'");
    }

    const subject = await findAccessToken(provider, params.subject_token);
    if (!subject) throw invalidGrant('subject_token is not an active access token issued by this server');
    let actor;
    if (params.actor_token !== undefined) {
      actor = await findAccessToken(provider, params.actor_token);
      if (!actor) throw invalidGrant('actor_token is not an active access token issued by this server');
    }

    const audiences = [...new Set([...asList(params.audience), ...asList(params.resource)])];
    for (const aud of audiences) {
      if (!exchangeAudiences.includes(aud)) {
        throw new errors.InvalidTarget(`audience/resource not allowed: ${aud} (allowed: ${exchangeAudiences.join(' ')})`);
      }
    }

    const subjectScopes = new Set((subject.scope || '').split(' ').filter(Boolean));
    let scope = [...subjectScopes].join(' ');
    if (params.scope !== undefined) {
      const requested = [...new Set(params.scope.split(' ').filter(Boolean))];
      const extra = requested.filter((s) => !subjectScopes.has(s));
      if (extra.length) {
        throw new errors.InvalidScope(`requested scope exceeds the subject token's scope: ${extra.join(' ')}`, extra.join(' '));
      }
      scope = requested.join(' ');
    }

    const accountId = subject.accountId ?? subject.clientId;
    const at = new provider.AccessToken({
      accountId,
      client,
      gty: 'token_exchange',
      grantId: await saveGrant(provider, accountId, client.clientId, scope),
      scope: scope || undefined,
    });
    if (audiences.length === 1) [at.aud] = audiences;
    else if (audiences.length > 1) at.aud = audiences;
    if (actor) extraClaims.set(at, { act: { sub: actor.accountId ?? actor.clientId } });

    ctx.oidc.entity('AccessToken', at);
    const value = await at.save();
    ctx.body = {
      access_token: value,
      issued_token_type: ACCESS_TOKEN_TYPE,
      token_type: 'Bearer',
      expires_in: at.expiration,
      scope: at.scope || undefined,
    };
    await next();
  }
  provider.registerGrantType(
    TOKEN_EXCHANGE,
    tokenExchange,
    ['subject_token', 'subject_token_type', 'actor_token', 'actor_token_type', 'requested_token_type', 'audience', 'resource', 'scope'],
    ['audience', 'resource'],
  );

  // ---------------------------------------------------- RFC 7523 §2.1 JWT bearer grant
  const usedJtis = new Map(); // `${iss}\0${jti}` -> exp
  const tokenUrl = `${issuer}/token`;
  const accounts = Object.fromEntries(Object.entries(serviceAccounts).map(([iss, { alg, jwk }]) => (
    [iss, { alg, key: publicKeyFromJwk(jwk) }])));

  async function jwtBearer(ctx, next) {
    const { params, client } = ctx.oidc;
    const { assertion } = params;
    if (!assertion) throw new errors.InvalidRequest("missing required parameter 'assertion'");
    const { header, claims } = decodeJose(assertion);
    if (!header || !claims || assertion.split('.').length !== 3) {
      throw invalidGrant('assertion is not a compact JWS with a JSON header and claims');
    }
    const account = typeof claims.iss === 'string' ? accounts[claims.iss] : undefined;
    if (!account) throw invalidGrant(`unknown assertion issuer (iss): ${JSON.stringify(claims.iss ?? null)}`);
    if (header.alg !== account.alg) {
      throw invalidGrant(`assertion alg ${JSON.stringify(header.alg ?? null)} does not match the key of ${claims.iss} (${account.alg})`);
    }
    if (!verifyJws(assertion, account.alg, account.key)) throw invalidGrant('assertion signature is invalid');

    const auds = asList(claims.aud);
    if (!auds.some((a) => a === tokenUrl || a === issuer)) {
      throw invalidGrant(`assertion aud must be ${tokenUrl} or ${issuer}, got ${JSON.stringify(claims.aud ?? null)}`);
    }
    const now = epoch();
    if (typeof claims.exp !== 'number') throw invalidGrant('assertion exp is missing');
    if (claims.exp <= now) throw invalidGrant('assertion is expired (exp)');
    if (claims.exp > now + 3600 + 60) throw invalidGrant('assertion exp is more than 1 hour in the future');
    if (claims.iat !== undefined && (typeof claims.iat !== 'number' || claims.iat > now + 60)) {
      throw invalidGrant('assertion iat is in the future');
    }
    if (claims.nbf !== undefined && (typeof claims.nbf !== 'number' || claims.nbf > now + 60)) {
      throw invalidGrant('assertion is not yet valid (nbf)');
    }
    if (typeof claims.jti !== 'string' || claims.jti === '') throw invalidGrant('assertion jti is missing');
    for (const [k, exp] of usedJtis) if (exp < now) usedJtis.delete(k);
    const jtiKey = `${claims.iss}\0${claims.jti}`;
    if (usedJtis.has(jtiKey)) throw invalidGrant('assertion jti was already used (replay)');
    if (typeof claims.sub !== 'string' || claims.sub === '') throw invalidGrant('assertion sub is missing');

    let requested = params.scope;
    if (requested === undefined && claims.scope !== undefined) {
      requested = Array.isArray(claims.scope) ? claims.scope.join(' ') : String(claims.scope);
    }
    const scopes = [...new Set((requested || '').split(' ').filter(Boolean))];
    const unknown = scopes.filter((s) => !knownScopes.includes(s));
    if (unknown.length) throw new errors.InvalidScope(`unknown scope: ${unknown.join(' ')}`, unknown.join(' '));
    const scope = scopes.join(' ');

    usedJtis.set(jtiKey, claims.exp);
    const at = new provider.AccessToken({
      accountId: claims.sub,
      client,
      gty: 'jwt_bearer',
      grantId: await saveGrant(provider, claims.sub, client.clientId, scope),
      scope: scope || undefined,
    });
    ctx.oidc.entity('AccessToken', at);
    const value = await at.save();
    ctx.body = {
      access_token: value,
      token_type: 'Bearer',
      expires_in: at.expiration,
      scope: at.scope || undefined,
    };
    await next();
  }
  provider.registerGrantType(JWT_BEARER, jwtBearer, ['assertion', 'scope']);
}

// ---------------------------------------------------------------- protected resource /api
export function protectedResource(provider, { issuer, resource, scopes, dpopAlgs }) {
  const metadataUrl = `${issuer}/.well-known/oauth-protected-resource/api`;
  const metadata = {
    resource,
    authorization_servers: [issuer],
    scopes_supported: scopes,
    bearer_methods_supported: ['header'],
  };
  const seenProofs = new Map(); // jti -> expiry (seconds)

  function refuse(ctx, scheme, error, description) {
    const fields = [`resource_metadata="${metadataUrl}"`];
    if (error) fields.push(`error="${error}"`, `error_description="${description.replace(/"/g, '\\"')}"`);
    if (scheme === 'DPoP') fields.push(`algs="${dpopAlgs.join(' ')}"`);
    ctx.status = 401;
    ctx.set('WWW-Authenticate', `${scheme} ${fields.join(', ')}`);
    ctx.set('Cache-Control', 'no-store');
    ctx.type = 'json';
    ctx.body = error ? { error, error_description: description } : { error: 'invalid_request', error_description: 'no access token provided' };
  }

  // A DPoP proof for this request and token, checked as RFC 9449 §4.3 says (no nonces here).
  function checkProof(ctx, token, value) {
    const proof = ctx.get('DPoP');
    if (!proof) return 'DPoP proof missing';
    const { header, claims } = decodeJose(proof);
    if (!header || !claims) return 'DPoP proof is not a JWS';
    if (header.typ !== 'dpop+jwt') return 'DPoP proof typ must be dpop+jwt';
    if (!dpopAlgs.includes(header.alg)) return `DPoP proof alg ${header.alg} not supported`;
    if (!header.jwk || typeof header.jwk !== 'object' || 'd' in header.jwk) return 'DPoP proof jwk missing or private';
    let key;
    try { key = publicKeyFromJwk(header.jwk); } catch { return 'DPoP proof jwk unusable'; }
    if (!verifyJws(proof, header.alg, key)) return 'DPoP proof signature invalid';
    if (claims.htm !== ctx.method) return 'DPoP proof htm mismatch';
    let htu;
    try { htu = new URL(claims.htu); htu.search = ''; htu.hash = ''; } catch { /* mismatch below */ }
    if (htu?.href !== `${issuer}${ctx.path}`) return 'DPoP proof htu mismatch';
    const now = epoch();
    if (typeof claims.iat !== 'number' || Math.abs(now - claims.iat) > 300) return 'DPoP proof iat is not recent enough';
    if (typeof claims.jti !== 'string' || !claims.jti) return 'DPoP proof jti missing';
    for (const [k, exp] of seenProofs) if (exp < now) seenProofs.delete(k);
    if (seenProofs.has(claims.jti)) return 'DPoP proof jti replayed';
    if (claims.ath !== b64url(crypto.createHash('sha256').update(value).digest())) return 'DPoP proof ath mismatch';
    if (jwkThumbprint(header.jwk) !== token.jkt) return 'DPoP proof key does not match the token binding (cnf.jkt)';
    seenProofs.set(claims.jti, now + 600);
    return null;
  }

  // Answers the request if it is ours; returns false to hand it on.
  return async function handle(ctx) {
    if (ctx.path === '/.well-known/oauth-protected-resource/api' && ctx.method === 'GET') {
      ctx.type = 'json';
      ctx.body = metadata;
      return true;
    }
    if (ctx.path !== '/api' && !ctx.path.startsWith('/api/')) return false;
    if (ctx.path !== '/api/whoami') {
      ctx.status = 404;
      ctx.type = 'json';
      ctx.body = { error: 'not_found' };
      return true;
    }
    if (ctx.method !== 'GET') {
      ctx.status = 405;
      ctx.set('Allow', 'GET');
      ctx.type = 'json';
      ctx.body = { error: 'method_not_allowed' };
      return true;
    }
    const auth = ctx.get('authorization');
    if (!auth) {
      refuse(ctx, 'Bearer');
      return true;
    }
    const [scheme, value, ...rest] = auth.split(' ');
    const kind = (scheme || '').toLowerCase();
    if (rest.length || !value || (kind !== 'bearer' && kind !== 'dpop')) {
      refuse(ctx, 'Bearer', 'invalid_token', 'expected Authorization: Bearer <token> or DPoP <token>');
      return true;
    }
    const token = await findAccessToken(provider, value);
    if (!token) {
      refuse(ctx, kind === 'dpop' ? 'DPoP' : 'Bearer', 'invalid_token', 'access token is unknown, expired or revoked');
      return true;
    }
    if (token.jkt) {
      if (kind !== 'dpop') {
        refuse(ctx, 'DPoP', 'invalid_token', 'DPoP-bound access token must be sent with the DPoP scheme and a proof');
        return true;
      }
      const problem = checkProof(ctx, token, value);
      if (problem) {
        refuse(ctx, 'DPoP', 'invalid_token', problem);
        return true;
      }
    } else if (kind === 'dpop') {
      refuse(ctx, 'Bearer', 'invalid_token', 'access token is not DPoP-bound; use the Bearer scheme');
      return true;
    }
    if (!asList(token.aud).includes(resource)) {
      refuse(ctx, token.jkt ? 'DPoP' : 'Bearer', 'invalid_token', `access token audience does not include ${resource}`);
      return true;
    }
    ctx.set('Cache-Control', 'no-store');
    ctx.type = 'json';
    ctx.body = {
      sub: token.accountId ?? null,
      aud: token.aud,
      scope: token.scope ?? '',
      client_id: token.clientId,
    };
    return true;
  };
}

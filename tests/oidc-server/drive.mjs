// End-to-end driver for server.mjs: walks every flow with plain HTTP (manual cookie jar, manual
// redirects, no browser) and prints each request/response step. Token values are redacted.
//
// Usage:  node drive.mjs http://127.0.0.1:<port>      (or ISSUER=... node drive.mjs)
//         node drive.mjs --spawn                       (starts server.mjs itself, kills it at end)

import { spawn } from 'node:child_process';
import * as crypto from 'node:crypto';
import { once } from 'node:events';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';

import {
  CookieJar, http, parseForms, walkToCallback,
} from './lib.mjs';

let failures = 0;
let passes = 0;
function check(cond, what) {
  if (cond) {
    passes += 1;
    console.log(`  ok   ${what}`);
  } else {
    failures += 1;
    console.log(`  FAIL ${what}`);
  }
}

const redact = (obj) => Object.fromEntries(Object.entries(obj).map(([k, v]) => (
  ['access_token', 'refresh_token', 'id_token', 'device_code'].includes(k) && typeof v === 'string'
    ? [k, `<${v.length} chars>`] : [k, v])));

const b64url = (buf) => buf.toString('base64url');
function pkce() {
  const verifier = b64url(crypto.randomBytes(32));
  return { verifier, challenge: b64url(crypto.createHash('sha256').update(verifier).digest()) };
}
const formEncode = (s) => new URLSearchParams({ x: s }).toString().slice(2);
const basic = (id, secret) => `Basic ${Buffer.from(`${formEncode(id)}:${formEncode(secret)}`).toString('base64')}`;

// ------------------------------------------------------------------------- flows
async function authorize(issuer, {
  clientId, redirectUri, scope = 'openid profile email', decision = 'approve', jar = new CookieJar(),
}) {
  const { verifier, challenge } = pkce();
  const state = b64url(crypto.randomBytes(12));
  const authUrl = new URL(`${issuer}/auth`);
  authUrl.search = new URLSearchParams({
    response_type: 'code',
    client_id: clientId,
    redirect_uri: redirectUri,
    scope,
    state,
    code_challenge: challenge,
    code_challenge_method: 'S256',
  }).toString();

  const callback = await walkToCallback(jar, authUrl.href, redirectUri, decision);
  return {
    callback, state, verifier, jar,
  };
}

async function token(issuer, form, headers = {}) {
  const res = await fetch(`${issuer}/token`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded', ...headers },
    body: new URLSearchParams(form).toString(),
  });
  const json = await res.json();
  const wwwa = res.headers.get('www-authenticate');
  console.log(`  POST /token grant_type=${form.grant_type} -> ${res.status} ${JSON.stringify(redact(json))}${wwwa ? ` WWW-Authenticate: ${wwwa}` : ''}`);
  return { status: res.status, json };
}

async function introspect(issuer, tok) {
  return (await fetch(`${issuer}/token/introspection`, {
    method: 'POST',
    headers: { authorization: basic('basic-client', 'basic-secret'), 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({ token: tok }).toString(),
  })).json();
}

async function stats(issuer) {
  return (await fetch(`${issuer}/__stats`)).json();
}

// ------------------------------------------------------- PAR, DPoP, token exchange, jwt-bearer,
// registration, resource indicators and the protected resource (extensions.mjs)
const sha256url = (s) => b64url(crypto.createHash('sha256').update(s).digest());
const nowSec = () => Math.floor(Date.now() / 1000);

function signJws(header, claims, key) {
  const input = `${b64url(Buffer.from(JSON.stringify(header)))}.${b64url(Buffer.from(JSON.stringify(claims)))}`;
  const options = header.alg.startsWith('ES') ? { key, dsaEncoding: 'ieee-p1363' } : key;
  return `${input}.${b64url(crypto.sign('sha256', Buffer.from(input), options))}`;
}

// An ES256 DPoP key (RFC 9449): proof(htm, htu, {nonce, accessToken}) makes a fresh proof.
function dpopKey() {
  const { privateKey, publicKey } = crypto.generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const { kty, crv, x, y } = publicKey.export({ format: 'jwk' });
  const jwk = { kty, crv, x, y };
  return {
    jkt: sha256url(JSON.stringify({ crv, kty, x, y })), // RFC 7638 member order
    proof(htm, htu, { nonce, accessToken } = {}) {
      return signJws({ typ: 'dpop+jwt', alg: 'ES256', jwk }, {
        jti: b64url(crypto.randomBytes(16)),
        htm,
        htu,
        iat: nowSec(),
        ...(nonce ? { nonce } : undefined),
        ...(accessToken ? { ath: sha256url(accessToken) } : undefined),
      }, privateKey);
    },
  };
}

// One request, any method; form (object or [[k, v], ...]) or JSON body; JSON (or text) answer.
async function call(method, url, { form, json, headers = {} } = {}) {
  const h = { ...headers };
  let body;
  if (form) {
    h['content-type'] = 'application/x-www-form-urlencoded';
    body = new URLSearchParams(form).toString();
  } else if (json) {
    h['content-type'] = 'application/json';
    body = JSON.stringify(json);
  }
  const res = await fetch(url, {
    method, headers: h, body, redirect: 'manual',
  });
  const text = await res.text();
  let data = text;
  try { data = JSON.parse(text); } catch { /* not JSON */ }
  const wwwa = res.headers.get('www-authenticate');
  const nonce = res.headers.get('dpop-nonce');
  const shown = data && typeof data === 'object' && !Array.isArray(data) ? JSON.stringify(redact(data)) : JSON.stringify(text.slice(0, 200));
  console.log(`  ${method} ${new URL(url).pathname} -> ${res.status} ${shown}${wwwa ? ` WWW-Authenticate: ${wwwa}` : ''}${nonce ? ' DPoP-Nonce: <set>' : ''}`);
  return {
    status: res.status, json: data, headers: res.headers, wwwa, nonce,
  };
}

// Authorize (PKCE, login + consent) with extra query parameters; returns the code and verifier.
async function authorizeWith(issuer, clientId, redirectUri, extra = {}, scope = 'openid profile email') {
  const { verifier, challenge } = pkce();
  const url = new URL(`${issuer}/auth`);
  url.search = new URLSearchParams({
    response_type: 'code', client_id: clientId, redirect_uri: redirectUri, scope, state: 's1', code_challenge: challenge, code_challenge_method: 'S256', ...extra,
  }).toString();
  const cb = await walkToCallback(new CookieJar(), url.href, redirectUri);
  return { code: cb.searchParams.get('code'), verifier, callback: cb };
}

async function extensionChecks(issuer, redirectUri, keysDir) {
  const tokenUrl = `${issuer}/token`;
  const api = `${issuer}/api`;
  const whoami = `${issuer}/api/whoami`;
  const rmUrl = `${issuer}/.well-known/oauth-protected-resource/api`;
  const TE = 'urn:ietf:params:oauth:grant-type:token-exchange';
  const JB = 'urn:ietf:params:oauth:grant-type:jwt-bearer';
  const AT = 'urn:ietf:params:oauth:token-type:access_token';
  const introspectAs = async (id, secret, tok) => (await call('POST', `${issuer}/token/introspection`, { form: { token: tok }, headers: { authorization: basic(id, secret) } })).json;

  console.log('\n== discovery: PAR, DPoP, registration, custom grants');
  const disc = await (await fetch(`${issuer}/.well-known/openid-configuration`)).json();
  for (const k of ['pushed_authorization_request_endpoint', 'require_pushed_authorization_requests', 'dpop_signing_alg_values_supported', 'registration_endpoint', 'grant_types_supported']) {
    console.log(`  ${k}: ${JSON.stringify(disc[k])}`);
  }
  check(disc.pushed_authorization_request_endpoint === `${issuer}/request` && !disc.require_pushed_authorization_requests, 'discovery: PAR endpoint /request, not globally required');
  check(disc.registration_endpoint === `${issuer}/reg`, 'discovery: registration_endpoint /reg');
  check(disc.dpop_signing_alg_values_supported?.includes('ES256'), 'discovery: DPoP ES256');
  check(disc.grant_types_supported.includes(TE) && disc.grant_types_supported.includes(JB), 'discovery: token-exchange and jwt-bearer grants');

  await call('POST', `${issuer}/__stats/reset`);
  check((await (await fetch(`${issuer}/__dpop`)).json()).length === 0 && (await (await fetch(`${issuer}/__token-requests`)).json()).length === 0, '__stats/reset clears /__dpop and /__token-requests');

  // ------------------------------------------------------------------ userinfo unchanged
  console.log('\n== userinfo still works for a plain code flow (basic-client, no resource)');
  const u = await authorizeWith(issuer, 'basic-client', redirectUri);
  const ut = await call('POST', tokenUrl, { form: { grant_type: 'authorization_code', code: u.code, redirect_uri: redirectUri, code_verifier: u.verifier }, headers: { authorization: basic('basic-client', 'basic-secret') } });
  const me = await call('GET', `${issuer}/me`, { headers: { authorization: `Bearer ${ut.json.access_token}` } });
  check(ut.json.token_type === 'Bearer' && me.status === 200 && me.json.sub === 'alice' && me.json.email === 'alice@example.test', '/me answers a token from a flow without resource');
  const uIntro = await introspect(issuer, ut.json.access_token);
  check(uIntro.active && uIntro.aud === undefined, 'that token has no aud');
  const userToken = ut.json.access_token;

  // ------------------------------------------------------------------------------- PAR
  console.log('\n== PAR (RFC 9126): par-client');
  const parPkce = pkce();
  const parForm = {
    response_type: 'code', client_id: 'par-client', redirect_uri: redirectUri, scope: 'openid profile', state: 'par-state', code_challenge: parPkce.challenge, code_challenge_method: 'S256',
  };
  const pushNoAuth = await call('POST', `${issuer}/request`, { form: parForm });
  check(pushNoAuth.status === 401 && pushNoAuth.json.error === 'invalid_client', 'PAR without client authentication -> 401 invalid_client');
  const push = await call('POST', `${issuer}/request`, { form: parForm, headers: { authorization: basic('par-client', 'par-secret') } });
  check(push.status === 201 && push.json.request_uri?.startsWith('urn:ietf:params:oauth:request_uri:') && push.json.expires_in === 60, 'PAR push -> 201 {request_uri, expires_in: 60}');
  const parAuth = `${issuer}/auth?${new URLSearchParams({ client_id: 'par-client', request_uri: push.json.request_uri })}`;
  const parCb = await walkToCallback(new CookieJar(), parAuth, redirectUri);
  check(parCb.searchParams.get('code') && parCb.searchParams.get('state') === 'par-state', 'authorize with request_uri -> code and the pushed state');
  const parTok = await call('POST', tokenUrl, { form: { grant_type: 'authorization_code', code: parCb.searchParams.get('code'), redirect_uri: redirectUri, code_verifier: parPkce.verifier }, headers: { authorization: basic('par-client', 'par-secret') } });
  check(parTok.status === 200 && parTok.json.access_token && parTok.json.refresh_token && parTok.json.id_token, 'par-client code exchange -> tokens');
  const reuse = await http(new CookieJar(), 'GET', parAuth);
  check(reuse.status === 400 || /error=invalid_request_uri/.test(reuse.location ?? ''), 'request_uri is single-use');
  const noPar = await http(new CookieJar(), 'GET', `${issuer}/auth?${new URLSearchParams(parForm)}`);
  const noParLoc = noPar.location ? new URL(noPar.location, issuer) : null;
  console.log(`    -> ${noParLoc ? JSON.stringify(Object.fromEntries(noParLoc.searchParams)) : noPar.text}`);
  check(noParLoc?.href.startsWith(redirectUri) && noParLoc.searchParams.get('error') === 'invalid_request' && /Pushed Authorization Request must be used/.test(noParLoc.searchParams.get('error_description')), 'par-client without PAR -> redirected with error=invalid_request (PAR must be used)');
  const optPush = await call('POST', `${issuer}/request`, { form: { ...parForm, client_id: 'basic-client', state: 'opt' }, headers: { authorization: basic('basic-client', 'basic-secret') } });
  const optCb = await walkToCallback(new CookieJar(), `${issuer}/auth?${new URLSearchParams({ client_id: 'basic-client', request_uri: optPush.json.request_uri })}`, redirectUri);
  check(optPush.status === 201 && optCb.searchParams.get('code'), 'PAR is optional for basic-client and works');
  const treq = await (await fetch(`${issuer}/__token-requests`)).json();
  const parRec = treq.find((r) => r.path === '/request' && r.params.client_id === 'par-client' && r.authorization === 'Basic');
  check(parRec && parRec.params.code_challenge === parPkce.challenge && parRec.dpop === false, `/__token-requests records the PAR push: ${JSON.stringify(parRec && { ...parRec, params: Object.keys(parRec.params) })}`);

  // ------------------------------------------------------------------------------ DPoP
  console.log('\n== DPoP (RFC 9449): dpop-client');
  const key = dpopKey();
  const d1 = await authorizeWith(issuer, 'dpop-client', redirectUri);
  const dForm = { grant_type: 'authorization_code', code: d1.code, redirect_uri: redirectUri, code_verifier: d1.verifier };
  const dAuth = { authorization: basic('dpop-client', 'dpop-secret') };
  const dNo = await call('POST', tokenUrl, { form: dForm, headers: dAuth });
  check(dNo.status === 400 && dNo.json.error === 'invalid_grant', 'dpop-client token request without a DPoP proof -> invalid_grant');
  const dTok = await call('POST', tokenUrl, { form: dForm, headers: { ...dAuth, dpop: key.proof('POST', tokenUrl) } });
  check(dTok.status === 200 && dTok.json.token_type === 'DPoP', 'with a proof -> 200, token_type DPoP');
  const dAt = dTok.json.access_token;
  const dIntro = await introspect(issuer, dAt);
  console.log(`  introspection: ${JSON.stringify(dIntro)}`);
  check(dIntro.active && dIntro.cnf?.jkt === key.jkt && dIntro.token_type === 'DPoP', 'introspection: cnf.jkt is the key thumbprint, token_type DPoP');
  const meBearer = await call('GET', `${issuer}/me`, { headers: { authorization: `Bearer ${dAt}` } });
  check(meBearer.status === 401 && /^DPoP /.test(meBearer.wwwa) && /invalid_token/.test(meBearer.wwwa), '/me refuses the DPoP-bound token as Bearer (401 invalid_token, DPoP challenge)');
  const meNoProof = await call('GET', `${issuer}/me`, { headers: { authorization: `DPoP ${dAt}` } });
  check(meNoProof.status === 400 || meNoProof.status === 401, '/me refuses DPoP scheme without a proof');
  const meOther = await call('GET', `${issuer}/me`, { headers: { authorization: `DPoP ${dAt}`, dpop: dpopKey().proof('GET', `${issuer}/me`, { accessToken: dAt }) } });
  check(meOther.status === 401, '/me refuses a proof made with another key');
  const meDpop = await call('GET', `${issuer}/me`, { headers: { authorization: `DPoP ${dAt}`, dpop: key.proof('GET', `${issuer}/me`, { accessToken: dAt }) } });
  check(meDpop.status === 200 && meDpop.json.sub === 'alice', '/me accepts Authorization: DPoP with a valid proof');

  console.log('  -- nonces required');
  const nOn = await call('POST', `${issuer}/__dpop-nonce?required=1`);
  check(nOn.json.required === true && (await (await fetch(`${issuer}/__dpop-nonce`)).json()).required === true, 'POST /__dpop-nonce?required=1 -> {"required":true}');
  const rForm = { grant_type: 'refresh_token', refresh_token: dTok.json.refresh_token };
  const rNo = await call('POST', tokenUrl, { form: rForm, headers: { ...dAuth, dpop: key.proof('POST', tokenUrl) } });
  check(rNo.status === 400 && rNo.json.error === 'use_dpop_nonce' && rNo.nonce, '/token: proof without nonce -> 400 use_dpop_nonce + DPoP-Nonce');
  const rYes = await call('POST', tokenUrl, { form: rForm, headers: { ...dAuth, dpop: key.proof('POST', tokenUrl, { nonce: rNo.nonce }) } });
  check(rYes.status === 200 && rYes.json.token_type === 'DPoP', '/token: retry with the nonce -> 200');
  const dAt2 = rYes.json.access_token;
  const meN = await call('GET', `${issuer}/me`, { headers: { authorization: `DPoP ${dAt2}`, dpop: key.proof('GET', `${issuer}/me`, { accessToken: dAt2 }) } });
  check(meN.status === 401 && /^DPoP /.test(meN.wwwa) && /error="use_dpop_nonce"/.test(meN.wwwa) && meN.nonce, '/me: proof without nonce -> 401 WWW-Authenticate: DPoP error="use_dpop_nonce" + DPoP-Nonce');
  const meN2 = await call('GET', `${issuer}/me`, { headers: { authorization: `DPoP ${dAt2}`, dpop: key.proof('GET', `${issuer}/me`, { accessToken: dAt2, nonce: meN.nonce }) } });
  check(meN2.status === 200, '/me: retry with the nonce -> 200');
  const nOff = await call('POST', `${issuer}/__dpop-nonce`, { json: { required: false } });
  const nBad = await call('POST', `${issuer}/__dpop-nonce?required=maybe`);
  check(nOff.json.required === false && nBad.status === 400, 'JSON body {"required":false} turns it off; a bad value -> 400');

  console.log('  -- dpop_jkt at /auth binds the code to a key');
  const other = dpopKey();
  const dj = await authorizeWith(issuer, 'dpop-client', redirectUri, { dpop_jkt: key.jkt });
  const djBad = await call('POST', tokenUrl, { form: { grant_type: 'authorization_code', code: dj.code, redirect_uri: redirectUri, code_verifier: dj.verifier }, headers: { ...dAuth, dpop: other.proof('POST', tokenUrl) } });
  check(djBad.status === 400 && djBad.json.error === 'invalid_grant', 'code bound with dpop_jkt, proof by another key -> invalid_grant');

  console.log('  -- a DPoP proof at PAR binds the code to its key');
  const pk = pkce();
  const pp = await call('POST', `${issuer}/request`, {
    form: {
      response_type: 'code', client_id: 'dpop-client', redirect_uri: redirectUri, scope: 'openid', code_challenge: pk.challenge, code_challenge_method: 'S256',
    },
    headers: { ...dAuth, dpop: key.proof('POST', `${issuer}/request`) },
  });
  const ppCb = await walkToCallback(new CookieJar(), `${issuer}/auth?${new URLSearchParams({ client_id: 'dpop-client', request_uri: pp.json.request_uri })}`, redirectUri);
  const ppForm = { grant_type: 'authorization_code', code: ppCb.searchParams.get('code'), redirect_uri: redirectUri, code_verifier: pk.verifier };
  const ppBad = await call('POST', tokenUrl, { form: ppForm, headers: { ...dAuth, dpop: other.proof('POST', tokenUrl) } });
  check(pp.status === 201 && ppBad.status === 400 && ppBad.json.error === 'invalid_grant', 'PAR with a proof, token request with another key -> invalid_grant');

  console.log('  -- DPoP is optional for other clients');
  const bkey = dpopKey();
  const bcc = await call('POST', tokenUrl, { form: { grant_type: 'client_credentials', scope: 'api:read' }, headers: { authorization: basic('service-client', 'service-secret'), dpop: bkey.proof('POST', tokenUrl) } });
  check(bcc.status === 200 && bcc.json.token_type === 'DPoP', 'service-client with a proof -> DPoP token');

  const proofs = await (await fetch(`${issuer}/__dpop`)).json();
  console.log(`  /__dpop: ${proofs.length} proofs, first ${JSON.stringify(proofs[0])}`);
  check(proofs.some((p) => p.path === '/token' && p.method === 'POST' && p.header.typ === 'dpop+jwt' && p.header.jwk.x && p.claims.htu === tokenUrl)
    && proofs.some((p) => p.path === '/me' && p.claims.ath && p.claims.nonce), '/__dpop logs the proofs at /token and /me, decoded');
  const treq2 = await (await fetch(`${issuer}/__token-requests`)).json();
  check(treq2.some((r) => r.path === '/token' && r.params.grant_type === 'refresh_token' && r.dpop === true && r.authorization === 'Basic')
    && treq2.some((r) => r.path === '/token' && r.params.client_id === undefined && r.dpop === false), '/__token-requests records dpop true/false and the auth scheme');

  // ------------------------------------------------------------------- token exchange
  console.log('\n== token exchange (RFC 8693): exchange-client');
  const xAuth = { authorization: basic('exchange-client', 'exchange-secret') };
  const sub = await authorizeWith(issuer, 'basic-client', redirectUri, {}, 'openid api:read api:write');
  const subTok = (await call('POST', tokenUrl, { form: { grant_type: 'authorization_code', code: sub.code, redirect_uri: redirectUri, code_verifier: sub.verifier }, headers: { authorization: basic('basic-client', 'basic-secret') } })).json;
  const svc = (await call('POST', tokenUrl, { form: { grant_type: 'client_credentials', scope: 'api:read' }, headers: { authorization: basic('service-client', 'service-secret') } })).json;
  const x1 = await call('POST', tokenUrl, { form: { grant_type: TE, subject_token: subTok.access_token, subject_token_type: AT, audience: 'https://api.example.test', scope: 'api:read' }, headers: xAuth });
  check(x1.status === 200 && x1.json.issued_token_type === AT && x1.json.token_type === 'Bearer' && x1.json.scope === 'api:read' && x1.json.expires_in > 0, 'exchange a user token -> 200 {issued_token_type, token_type Bearer, scope api:read}');
  const x1i = await introspectAs('exchange-client', 'exchange-secret', x1.json.access_token);
  console.log(`  introspection: ${JSON.stringify(x1i)}`);
  check(x1i.active && x1i.aud === 'https://api.example.test' && x1i.sub === 'alice' && x1i.client_id === 'exchange-client' && x1i.scope === 'api:read', 'introspection: aud, sub of the subject, client_id exchange-client');
  const x2 = await call('POST', tokenUrl, { form: [['grant_type', TE], ['subject_token', svc.access_token], ['subject_token_type', AT], ['audience', 'https://api.example.test'], ['audience', 'https://other.example.test'], ['actor_token', subTok.access_token], ['actor_token_type', AT]], headers: xAuth });
  const x2i = await introspectAs('exchange-client', 'exchange-secret', x2.json.access_token);
  console.log(`  introspection: ${JSON.stringify(x2i)}`);
  check(x2.status === 200 && x2.json.scope === 'api:read' && x2i.sub === 'service-client' && JSON.stringify(x2i.aud) === '["https://api.example.test","https://other.example.test"]' && x2i.act?.sub === 'alice', 'exchange a client_credentials token, two audiences and an actor -> aud array, act.sub, default scope');
  const xr = await call('POST', tokenUrl, { form: { grant_type: TE, subject_token: subTok.access_token, subject_token_type: AT, resource: api }, headers: xAuth });
  const xw = await call('GET', whoami, { headers: { authorization: `Bearer ${xr.json.access_token}` } });
  check(xr.status === 200 && xw.status === 200 && xw.json.client_id === 'exchange-client' && xw.json.scope === 'openid api:read api:write' && xw.json.aud === api, 'exchange with resource=<issuer>/api (scope defaults to the subject\'s) -> /api/whoami accepts it');
  const treq3 = await (await fetch(`${issuer}/__token-requests`)).json();
  check(treq3.some((r) => r.params.grant_type === TE && Array.isArray(r.params.audience) && r.params.audience.length === 2), '/__token-requests shows a repeated audience as an array');
  const xerr = async (what, form, status, error) => {
    const r = await call('POST', tokenUrl, { form: { grant_type: TE, subject_token: subTok.access_token, subject_token_type: AT, ...form }, headers: xAuth });
    check(r.status === status && r.json.error === error && r.json.error_description, `${what} -> ${status} ${error}`);
  };
  await xerr('subject_token_type id_token', { subject_token_type: 'urn:ietf:params:oauth:token-type:id_token' }, 400, 'invalid_request');
  await xerr('unknown subject_token', { subject_token: 'not-a-token' }, 400, 'invalid_grant');
  await xerr('refresh token as subject_token', { subject_token: subTok.refresh_token }, 400, 'invalid_grant');
  await xerr('requested_token_type refresh_token', { requested_token_type: 'urn:ietf:params:oauth:token-type:refresh_token' }, 400, 'invalid_request');
  await xerr('audience not allowed', { audience: 'https://evil.example.test' }, 400, 'invalid_target');
  await xerr('scope beyond the subject token', { scope: 'api:read email' }, 400, 'invalid_scope');
  await xerr('unknown actor_token', { actor_token: 'nope', actor_token_type: AT }, 400, 'invalid_grant');
  const xWrongClient = await call('POST', tokenUrl, { form: { grant_type: TE, subject_token: subTok.access_token, subject_token_type: AT }, headers: { authorization: basic('basic-client', 'basic-secret') } });
  check(xWrongClient.status === 400 && xWrongClient.json.error === 'invalid_request', 'basic-client may not use token exchange -> invalid_request');

  // ----------------------------------------------------------------------- jwt-bearer
  console.log('\n== JWT bearer grant (RFC 7523): jwt-bearer-client');
  if (!keysDir) {
    console.log('  (skipped: set CLIENT_KEYS_DIR to the server\'s key directory to run these)');
  } else {
    const ecKey = crypto.createPrivateKey(readFileSync(path.join(keysDir, 'es256.pem')));
    const rsKey = crypto.createPrivateKey(readFileSync(path.join(keysDir, 'rs256.pem')));
    const claims = (extra = {}) => ({
      iss: 'robot@service.test', sub: 'robot-user', aud: tokenUrl, iat: nowSec(), exp: nowSec() + 300, jti: b64url(crypto.randomBytes(12)), ...extra,
    });
    const es = (c, h = {}) => signJws({ alg: 'ES256', typ: 'JWT', kid: 'ec-1', ...h }, c, ecKey);
    const jb = (assertion, extra = {}) => call('POST', tokenUrl, { form: { grant_type: JB, assertion, client_id: 'jwt-bearer-client', ...extra } });
    const first = es(claims());
    const j1 = await jb(first, { scope: 'api:read' });
    check(j1.status === 200 && j1.json.token_type === 'Bearer' && j1.json.scope === 'api:read' && j1.json.expires_in > 0 && !j1.json.refresh_token, 'ES256 assertion (robot@service.test) -> 200 Bearer, scope api:read');
    const j1i = await introspect(issuer, j1.json.access_token);
    check(j1i.active && j1i.sub === 'robot-user' && j1i.client_id === 'jwt-bearer-client', 'introspection: sub from the assertion, client_id jwt-bearer-client');
    const j2 = await jb(signJws({ alg: 'RS256', kid: 'rs-1' }, claims({ iss: 'rs-robot@service.test', aud: issuer, scope: 'openid email' }), rsKey));
    check(j2.status === 200 && j2.json.scope === 'openid email', 'RS256 assertion (rs-robot@service.test), aud = issuer, scope from the claim -> 200');
    const j2me = await call('GET', `${issuer}/me`, { headers: { authorization: `Bearer ${j2.json.access_token}` } });
    check(j2me.status === 200 && j2me.json.sub === 'robot-user' && j2me.json.email, '/me answers the jwt-bearer token (openid scope)');
    const jerr = async (what, assertion, extra) => {
      const r = await jb(assertion, extra);
      check(r.status === 400 && r.json.error === 'invalid_grant' && r.json.error_description !== 'grant request is invalid', `${what} -> invalid_grant (${r.json.error_description})`);
    };
    await jerr('replayed jti', first);
    await jerr('wrong aud', es(claims({ aud: `${issuer}/other` })));
    await jerr('expired', es(claims({ iat: nowSec() - 600, exp: nowSec() - 10 })));
    await jerr('exp more than 1 hour ahead', es(claims({ exp: nowSec() + 7200 })));
    await jerr('iat in the future', es(claims({ iat: nowSec() + 600 })));
    await jerr('unknown iss', es(claims({ iss: 'stranger@service.test' })));
    await jerr('alg does not match the key (ES256 for rs-robot)', es(claims({ iss: 'rs-robot@service.test' })));
    await jerr('missing jti', es(claims({ jti: undefined })));
    await jerr('missing sub', es(claims({ sub: undefined })));
    const forged = `${first.split('.').slice(0, 2).join('.')}.${es(claims()).split('.')[2]}`;
    await jerr('bad signature', forged);
    const jScope = await jb(es(claims()), { scope: 'api:admin' });
    check(jScope.status === 400 && jScope.json.error === 'invalid_scope', 'unknown scope -> invalid_scope');
    const noId = await call('POST', tokenUrl, { form: { grant_type: JB, assertion: es(claims()) } });
    check(noId.status === 400 || noId.status === 401, 'without client_id -> refused (client must be identified)');
    const asserted = (await (await fetch(`${issuer}/__assertions`)).json()).filter((a) => a.grant_type === JB);
    console.log(`  /__assertions (jwt-bearer): ${asserted.length}, first ${JSON.stringify(asserted[0])}`);
    check(asserted.length >= 12 && asserted[0].status === 200 && asserted[0].claims.iss === 'robot@service.test' && asserted[0].header.alg === 'ES256' && asserted[0].client_assertion_type === null
      && asserted.some((a) => a.status === 400), '/__assertions logs the grant assertions with their status');
  }

  // ------------------------------------------- registration + resource indicators + /api
  console.log('\n== dynamic registration (RFC 7591) + resource indicators (RFC 8707) + /api (RFC 9728)');
  const rm = await call('GET', rmUrl);
  check(JSON.stringify(rm.json) === JSON.stringify({
    resource: api, authorization_servers: [issuer], scopes_supported: ['api:read', 'api:write'], bearer_methods_supported: ['header'],
  }), 'protected resource metadata');
  const regBody = {
    application_type: 'native', client_name: 'drive', redirect_uris: ['http://127.0.0.1:9/cb'], token_endpoint_auth_method: 'none', grant_types: ['authorization_code', 'refresh_token'], response_types: ['code'],
  };
  const reg = await call('POST', `${issuer}/reg`, { json: regBody });
  check(reg.status === 201 && reg.json.client_id && reg.json.registration_access_token && reg.json.registration_client_uri, 'register a public native client -> 201 with registration_access_token');
  const regRead = await call('GET', reg.json.registration_client_uri, { headers: { authorization: `Bearer ${reg.json.registration_access_token}` } });
  check(regRead.status === 200 && regRead.json.client_id === reg.json.client_id, 'read it back with the registration_access_token (RFC 7592)');
  const regC = await call('POST', `${issuer}/reg`, { json: { ...regBody, token_endpoint_auth_method: 'client_secret_basic' } });
  check(regC.status === 201 && regC.json.client_secret, 'register a confidential client -> client_secret');
  const regDel = await call('DELETE', regC.json.registration_client_uri, { headers: { authorization: `Bearer ${regC.json.registration_access_token}` } });
  const regGone = await call('POST', tokenUrl, { form: { grant_type: 'client_credentials' }, headers: { authorization: basic(regC.json.client_id, regC.json.client_secret) } });
  check(regDel.status === 204 && regGone.status === 401, 'DELETE it with its registration_access_token (RFC 7592) -> 204, then unknown');
  const regBad = await call('POST', `${issuer}/reg`, { json: { ...regBody, redirect_uris: ['not a url'] } });
  check(regBad.status === 400, 'invalid metadata -> 400');
  const regs = await (await fetch(`${issuer}/__registrations`)).json();
  check(regs.length >= 3 && regs.some((r) => r.status === 201 && r.body.client_name === 'drive' && r.client_id === reg.json.client_id) && regs.some((r) => r.status === 400), '/__registrations logs the bodies and statuses');

  const rcb = 'http://127.0.0.1:4567/cb'; // any port: loopback, native
  const ra = await authorizeWith(issuer, reg.json.client_id, rcb, { resource: api }, 'openid api:read');
  const rt = await call('POST', tokenUrl, { form: { grant_type: 'authorization_code', code: ra.code, redirect_uri: rcb, code_verifier: ra.verifier, client_id: reg.json.client_id } });
  const rti = await introspect(issuer, rt.json.access_token);
  check(rt.status === 200 && rt.json.scope === 'api:read' && rti.aud === api, 'resource on /auth only -> access token for <issuer>/api (scope api:read)');
  const rw = await call('GET', whoami, { headers: { authorization: `Bearer ${rt.json.access_token}` } });
  check(rw.status === 200 && rw.json.sub === 'alice' && rw.json.aud === api && rw.json.scope === 'api:read' && rw.json.client_id === reg.json.client_id, '/api/whoami with the resource token -> 200 {sub, aud, scope, client_id}');
  const rr = await call('POST', tokenUrl, { form: { grant_type: 'refresh_token', refresh_token: rt.json.refresh_token, client_id: reg.json.client_id } });
  check(rr.status === 200 && (await introspect(issuer, rr.json.access_token)).aud === api, 'refresh keeps the resource');
  const rb = await authorizeWith(issuer, reg.json.client_id, rcb, { resource: api }, 'api:read api:write');
  const rbt = await call('POST', tokenUrl, { form: { grant_type: 'authorization_code', code: rb.code, redirect_uri: rcb, code_verifier: rb.verifier, client_id: reg.json.client_id, resource: api } });
  check(rbt.status === 200 && rbt.json.scope === 'api:read api:write' && (await introspect(issuer, rbt.json.access_token)).aud === api, 'resource on /auth and /token -> token for <issuer>/api');
  const rc = await authorizeWith(issuer, 'basic-client', redirectUri, {}, 'openid api:read');
  const rct = await call('POST', tokenUrl, { form: { grant_type: 'authorization_code', code: rc.code, redirect_uri: redirectUri, code_verifier: rc.verifier, resource: api }, headers: { authorization: basic('basic-client', 'basic-secret') } });
  check(rct.status === 400 && rct.json.error === 'invalid_target', 'resource only on /token (not granted at /auth) -> invalid_target');
  const bad = await http(new CookieJar(), 'GET', `${issuer}/auth?${new URLSearchParams({
    response_type: 'code', client_id: 'basic-client', redirect_uri: redirectUri, scope: 'openid', code_challenge: pkce().challenge, code_challenge_method: 'S256', resource: 'https://unknown.example.test/',
  })}`);
  check(new URL(bad.location ?? 'x:/', issuer).searchParams.get('error') === 'invalid_target', 'unknown resource at /auth -> redirect with error=invalid_target');
  const ccr = await call('POST', tokenUrl, { form: { grant_type: 'client_credentials', scope: 'api:read', resource: api }, headers: { authorization: basic('service-client', 'service-secret') } });
  const ccw = await call('GET', whoami, { headers: { authorization: `Bearer ${ccr.json.access_token}` } });
  check(ccr.status === 200 && ccw.status === 200 && ccw.json.sub === null && ccw.json.client_id === 'service-client', 'client_credentials with resource -> /api/whoami 200 (sub null)');
  const meRes = await call('GET', `${issuer}/me`, { headers: { authorization: `Bearer ${rt.json.access_token}` } });
  check(meRes.status === 403 && meRes.json.error === 'insufficient_scope', '/me refuses the resource token (403 insufficient_scope: resource tokens carry only resource scopes)');

  const w0 = await call('GET', whoami);
  check(w0.status === 401 && w0.wwwa === `Bearer resource_metadata="${rmUrl}"`, '/api/whoami without a token -> 401 Bearer resource_metadata');
  const w1 = await call('GET', whoami, { headers: { authorization: `Bearer ${userToken}` } });
  check(w1.status === 401 && w1.wwwa.startsWith(`Bearer resource_metadata="${rmUrl}", error="invalid_token"`), '/api/whoami with a token without the audience -> 401 invalid_token');
  const w2 = await call('GET', whoami, { headers: { authorization: 'Bearer garbage' } });
  check(w2.status === 401 && /error="invalid_token"/.test(w2.wwwa) && /resource_metadata=/.test(w2.wwwa), '/api/whoami with an unknown token -> 401 invalid_token');

  const dk = dpopKey();
  const dr = await authorizeWith(issuer, 'dpop-client', redirectUri, { resource: api }, 'api:read');
  const drt = await call('POST', tokenUrl, { form: { grant_type: 'authorization_code', code: dr.code, redirect_uri: redirectUri, code_verifier: dr.verifier }, headers: { ...dAuth, dpop: dk.proof('POST', tokenUrl) } });
  const drB = await call('GET', whoami, { headers: { authorization: `Bearer ${drt.json.access_token}` } });
  const drD = await call('GET', whoami, { headers: { authorization: `DPoP ${drt.json.access_token}`, dpop: dk.proof('GET', whoami, { accessToken: drt.json.access_token }) } });
  check(drt.json.token_type === 'DPoP' && drB.status === 401 && /^DPoP /.test(drB.wwwa) && drD.status === 200 && drD.json.aud === api, '/api/whoami: DPoP-bound resource token refused as Bearer, accepted with a DPoP proof');
  const proofs2 = await (await fetch(`${issuer}/__dpop`)).json();
  check(proofs2.some((p) => p.path === '/api/whoami'), '/__dpop logs proofs sent to /api/*');
}

async function main(issuer, keysDir) {
  const port = 40000 + crypto.randomInt(20000);
  const redirectUri = `http://127.0.0.1:${port}/callback`;

  console.log(`== discovery ${issuer}/.well-known/openid-configuration`);
  const disc = await (await fetch(`${issuer}/.well-known/openid-configuration`)).json();
  for (const k of ['issuer', 'authorization_endpoint', 'token_endpoint', 'device_authorization_endpoint',
    'revocation_endpoint', 'introspection_endpoint', 'code_challenge_methods_supported',
    'token_endpoint_auth_methods_supported', 'authorization_response_iss_parameter_supported',
    'grant_types_supported', 'scopes_supported']) {
    console.log(`  ${k}: ${JSON.stringify(disc[k])}`);
  }
  check(disc.issuer === issuer, 'issuer matches');

  await fetch(`${issuer}/__stats/reset`, { method: 'POST' });
  check((await stats(issuer)).token_requests === 0, '__stats reset to 0');

  console.log(`\n== authorization code + PKCE, basic-client, redirect ${redirectUri}`);
  const a = await authorize(issuer, { clientId: 'basic-client', redirectUri });
  const q = Object.fromEntries(a.callback.searchParams);
  console.log(`  callback params: ${JSON.stringify({ ...q, code: q.code ? `<${q.code.length} chars>` : undefined })}`);
  check(q.code && q.state === a.state, 'callback has code and matching state');
  check(q.iss === issuer, 'callback has iss (RFC 9207)');
  check((await stats(issuer)).token_requests === 0, 'no token request before exchange');

  const t1 = await token(issuer, {
    grant_type: 'authorization_code', code: q.code, redirect_uri: redirectUri, code_verifier: a.verifier,
  }, { authorization: basic('basic-client', 'basic-secret') });
  check(t1.status === 200 && t1.json.access_token && t1.json.refresh_token && t1.json.id_token, 'code exchange returns access, refresh, id token');


  console.log('\n== refresh with rotation (basic-client)');
  const r1 = await token(issuer, { grant_type: 'refresh_token', refresh_token: t1.json.refresh_token }, { authorization: basic('basic-client', 'basic-secret') });
  check(r1.status === 200 && r1.json.refresh_token && r1.json.refresh_token !== t1.json.refresh_token, 'refresh returns a NEW refresh token (rotation on)');
  const sr = await stats(issuer);
  check(sr.by_grant.refresh_token === 1 && sr.by_grant.authorization_code === 1, `__stats counts exactly one refresh: ${JSON.stringify(sr)}`);
  const r2 = await token(issuer, { grant_type: 'refresh_token', refresh_token: r1.json.refresh_token }, { authorization: basic('basic-client', 'basic-secret') });
  check(r2.status === 200, 'rotated refresh token works');
  const replay = await token(issuer, { grant_type: 'refresh_token', refresh_token: t1.json.refresh_token }, { authorization: basic('basic-client', 'basic-secret') });
  check(replay.status === 400 && replay.json.error === 'invalid_grant', 'replay of old refresh token -> invalid_grant');
  const afterReplay = await token(issuer, { grant_type: 'refresh_token', refresh_token: r2.json.refresh_token }, { authorization: basic('basic-client', 'basic-secret') });
  check(afterReplay.status === 400 && afterReplay.json.error === 'invalid_grant', 'reuse detection revoked the whole grant (latest RT also invalid)');

  const intro = await introspect(issuer, r2.json.access_token);
  console.log(`  POST /token/introspection (access token of the revoked grant) -> ${JSON.stringify(intro)}`);
  check(intro.active === false, 'access tokens of that grant are revoked too');

  console.log('\n== authorization code replay (basic-client, same cookie jar => login skipped)');
  const ar = await authorize(issuer, { clientId: 'basic-client', redirectUri, jar: a.jar });
  const arCode = ar.callback.searchParams.get('code');
  const ar1 = await token(issuer, {
    grant_type: 'authorization_code', code: arCode, redirect_uri: redirectUri, code_verifier: ar.verifier,
  }, { authorization: basic('basic-client', 'basic-secret') });
  const replayCode = await token(issuer, {
    grant_type: 'authorization_code', code: arCode, redirect_uri: redirectUri, code_verifier: ar.verifier,
  }, { authorization: basic('basic-client', 'basic-secret') });
  check(replayCode.status === 400 && replayCode.json.error === 'invalid_grant', 'code replay -> invalid_grant');
  const arIntro = await introspect(issuer, ar1.json.access_token);
  console.log(`  POST /token/introspection (access token from the replayed code) -> ${JSON.stringify(arIntro)}`);
  check(arIntro.active === false, 'code replay revoked tokens issued from that code');

  console.log('\n== introspection + revocation (basic-client)');
  const a2 = await authorize(issuer, { clientId: 'basic-client', redirectUri, jar: a.jar });
  const t2 = await token(issuer, {
    grant_type: 'authorization_code', code: a2.callback.searchParams.get('code'), redirect_uri: redirectUri, code_verifier: a2.verifier,
  }, { authorization: basic('basic-client', 'basic-secret') });
  check(t2.status === 200, 'code exchange');
  const intro2 = await introspect(issuer, t2.json.access_token);
  console.log(`  POST /token/introspection -> ${JSON.stringify(intro2)}`);
  check(intro2.active === true, 'introspection active=true');
  const rev = await fetch(`${issuer}/token/revocation`, {
    method: 'POST',
    headers: { authorization: basic('basic-client', 'basic-secret'), 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({ token: t2.json.refresh_token, token_type_hint: 'refresh_token' }).toString(),
  });
  console.log(`  POST /token/revocation (refresh token) -> ${rev.status} body=${JSON.stringify(await rev.text())}`);
  const afterRev = await token(issuer, { grant_type: 'refresh_token', refresh_token: t2.json.refresh_token }, { authorization: basic('basic-client', 'basic-secret') });
  check(rev.status === 200 && afterRev.json.error === 'invalid_grant', 'revoked refresh token -> invalid_grant');

  console.log('\n== plain OAuth 2.0 scope without openid (basic-client, scope=api:read)');
  const o = await authorize(issuer, { clientId: 'basic-client', redirectUri, scope: 'api:read' });
  const ot = await token(issuer, {
    grant_type: 'authorization_code', code: o.callback.searchParams.get('code'), redirect_uri: redirectUri, code_verifier: o.verifier,
  }, { authorization: basic('basic-client', 'basic-secret') });
  check(ot.status === 200 && ot.json.scope === 'api:read' && !ot.json.id_token && ot.json.refresh_token, 'scope=api:read: access+refresh token, no id_token');

  console.log('\n== deny at consent (basic-client)');
  const d = await authorize(issuer, { clientId: 'basic-client', redirectUri, decision: 'deny' });
  console.log(`  callback params: ${JSON.stringify(Object.fromEntries(d.callback.searchParams))}`);
  check(d.callback.searchParams.get('error') === 'access_denied' && d.callback.searchParams.get('state') === d.state, 'deny -> error=access_denied with state');
  check(!d.callback.searchParams.has('code'), 'deny -> no code');

  console.log('\n== deny at login page (Cancel link) (basic-client)');
  const dl = await authorize(issuer, { clientId: 'basic-client', redirectUri, decision: 'deny-login' });
  console.log(`  callback params: ${JSON.stringify(Object.fromEntries(dl.callback.searchParams))}`);
  check(dl.callback.searchParams.get('error') === 'access_denied', 'cancel at login -> error=access_denied');

  console.log('\n== special-client (secret with + : & % / = space), Basic with form-urlencoded id/secret');
  const secret = 'p+a:s&s%w/o=r d';
  console.log(`  encoded secret: ${formEncode(secret)}`);
  const s = await authorize(issuer, { clientId: 'special-client', redirectUri });
  const sq = Object.fromEntries(s.callback.searchParams);
  const raw = await token(issuer, {
    grant_type: 'authorization_code', code: sq.code, redirect_uri: redirectUri, code_verifier: s.verifier,
  }, { authorization: `Basic ${Buffer.from(`special-client:${secret}`).toString('base64')}` });
  check(raw.status === 400, 'Basic with RAW (un-encoded) secret is rejected');
  const st = await token(issuer, {
    grant_type: 'authorization_code', code: sq.code, redirect_uri: redirectUri, code_verifier: s.verifier,
  }, { authorization: basic('special-client', secret) });
  check(st.status === 200 && st.json.access_token, 'special-client exchange with encoded Basic succeeds');

  console.log('\n== post-client (client_secret_post)');
  const p = await authorize(issuer, { clientId: 'post-client', redirectUri });
  const pt = await token(issuer, {
    grant_type: 'authorization_code', code: p.callback.searchParams.get('code'), redirect_uri: redirectUri, code_verifier: p.verifier, client_id: 'post-client', client_secret: 'post-secret',
  });
  check(pt.status === 200, 'post-client exchange with client_secret_post succeeds');

  console.log('\n== public-client (none + PKCE)');
  const pub = await authorize(issuer, { clientId: 'public-client', redirectUri });
  const pubBad = await token(issuer, {
    grant_type: 'authorization_code', code: pub.callback.searchParams.get('code'), redirect_uri: redirectUri, code_verifier: 'wrong-verifier-wrong-verifier-wrong-verifier-123', client_id: 'public-client',
  });
  check(pubBad.status === 400 && pubBad.json.error === 'invalid_grant', 'wrong code_verifier -> invalid_grant');
  const pub2 = await authorize(issuer, { clientId: 'public-client', redirectUri });
  const pubt = await token(issuer, {
    grant_type: 'authorization_code', code: pub2.callback.searchParams.get('code'), redirect_uri: redirectUri, code_verifier: pub2.verifier, client_id: 'public-client',
  });
  check(pubt.status === 200 && pubt.json.refresh_token, 'public-client exchange succeeds (refresh token issued)');

  console.log('\n== wrong secret / unregistered redirect');
  const bad = await token(issuer, { grant_type: 'client_credentials', scope: 'api:read' }, { authorization: basic('service-client', 'nope') });
  check(bad.status === 401 && bad.json.error === 'invalid_client', 'wrong secret -> 401 invalid_client');
  const badRedirect = await http(new CookieJar(), 'GET', `${issuer}/auth?response_type=code&client_id=basic-client&redirect_uri=${encodeURIComponent('http://127.0.0.1:1234/other')}&scope=openid&code_challenge=${pkce().challenge}&code_challenge_method=S256`);
  console.log(`    body: ${badRedirect.text}`);
  check(badRedirect.status === 400, 'unregistered redirect path -> 400 (no redirect)');

  console.log('\n== client credentials (service-client)');
  const cc = await token(issuer, { grant_type: 'client_credentials', scope: 'api:read' }, { authorization: basic('service-client', 'service-secret') });
  check(cc.status === 200 && cc.json.scope === 'api:read' && cc.json.token_type === 'Bearer', 'client_credentials scope=api:read');
  const cc2 = await token(issuer, { grant_type: 'client_credentials', scope: 'api:read api:write unknown:scope' }, { authorization: basic('service-client', 'service-secret') });
  console.log(`    (unknown scopes are silently dropped: scope=${cc2.json.scope})`);
  const cc3 = await token(issuer, { grant_type: 'authorization_code', code: 'x', redirect_uri: redirectUri }, { authorization: basic('service-client', 'service-secret') });
  check(cc3.status === 400 && cc3.json.error === 'invalid_request', 'grant not allowed for client -> invalid_request (not unauthorized_client)');

  console.log('\n== device flow (device-client, public)');
  const da = await fetch(`${issuer}/device/auth`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({ client_id: 'device-client', scope: 'openid' }).toString(),
  });
  const dj = await da.json();
  console.log(`  POST /device/auth -> ${da.status} ${JSON.stringify(redact(dj))}`);
  const grantType = 'urn:ietf:params:oauth:grant-type:device_code';
  const pending = await token(issuer, { grant_type: grantType, device_code: dj.device_code, client_id: 'device-client' });
  check(pending.json.error === 'authorization_pending', 'poll before approval -> authorization_pending');
  const dev = new CookieJar();
  const page = await http(dev, 'GET', dj.verification_uri);
  const [inputForm] = parseForms(page.text, dj.verification_uri);
  console.log(`    page form: ${inputForm.method} ${inputForm.action} fields=${JSON.stringify(inputForm.names)}`);
  const confirmPage = await http(dev, 'POST', inputForm.action, { form: { xsrf: inputForm.fields.xsrf, user_code: dj.user_code } });
  const [confirmForm] = parseForms(confirmPage.text, inputForm.action);
  console.log(`    page form: ${confirmForm.method} ${confirmForm.action} fields=${JSON.stringify(confirmForm.names)} (abort: add abort=yes instead of confirm)`);
  const go = await http(dev, 'POST', confirmForm.action, { form: confirmForm.fields });
  let url = new URL(go.location, confirmForm.action).href;
  for (let i = 0; i < 10; i += 1) {
    const r = await http(dev, 'GET', url);
    if (r.status === 303 || r.status === 302) {
      url = new URL(r.location, url).href;
      continue; // eslint-disable-line no-continue
    }
    const forms = parseForms(r.text, url);
    if (!forms.length) {
      console.log(`    final page: ${/<h1>([^<]*)<\/h1>/.exec(r.text)?.[1]} / ${/<p>([^<]*)<\/p>/.exec(r.text)?.[1]?.trim()}`);
      break;
    }
    const f = forms[0];
    console.log(`    page form: ${f.method} ${f.action} fields=${JSON.stringify(f.names)} hidden=${JSON.stringify(f.fields)}`);
    const payload = f.fields.prompt === 'login' ? { prompt: 'login', login: 'devuser', password: 'x' } : { prompt: 'consent' };
    const pr = await http(dev, 'POST', f.action, { form: payload });
    url = new URL(pr.location, f.action).href;
  }
  let dt = await token(issuer, { grant_type: grantType, device_code: dj.device_code, client_id: 'device-client' });
  if (dt.json.error === 'slow_down') {
    await new Promise((res) => { setTimeout(res, (dj.interval + 1) * 1000); });
    dt = await token(issuer, { grant_type: grantType, device_code: dj.device_code, client_id: 'device-client' });
  }
  check(dt.status === 200 && dt.json.access_token && dt.json.refresh_token, 'device flow poll after approval returns tokens');

  console.log('\n== device flow abort');
  const da2 = await (await fetch(`${issuer}/device/auth`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({ client_id: 'device-client', scope: 'openid' }).toString(),
  })).json();
  const dev2 = new CookieJar();
  const [f2] = parseForms((await http(dev2, 'GET', da2.verification_uri)).text, da2.verification_uri);
  await http(dev2, 'POST', f2.action, { form: { xsrf: f2.fields.xsrf, user_code: da2.user_code, abort: 'yes' } });
  const dt2 = await token(issuer, { grant_type: grantType, device_code: da2.device_code, client_id: 'device-client' });
  check(dt2.json.error === 'access_denied', 'device abort -> poll returns access_denied');

  await extensionChecks(issuer, redirectUri, keysDir);

  const st2 = await stats(issuer);
  console.log(`\n== /__stats -> ${JSON.stringify(st2)}`);
  check(st2.token_requests === Object.values(st2.by_grant).reduce((x, y) => x + y, 0), 'stats consistent');
  await fetch(`${issuer}/__stats/reset`, { method: 'POST' });

  console.log(`\n${passes} passed, ${failures} failed`);
  return failures === 0;
}

async function startServer(keysDir) {
  const child = spawn(process.execPath, [fileURLToPath(new URL('./server.mjs', import.meta.url))], {
    env: { ...process.env, PORT: '0', CLIENT_KEYS_DIR: keysDir }, stdio: ['ignore', 'pipe', 'inherit'],
  });
  let buf = '';
  for await (const chunk of child.stdout) {
    buf += chunk;
    const m = /^listening (http:\/\/127\.0\.0\.1:\d+)$/m.exec(buf);
    if (m) return { child, issuer: m[1] };
  }
  throw new Error('server exited before listening');
}

const arg = process.argv[2] || process.env.ISSUER;
let child;
let issuer = arg;
// The private keys of the jwt-bearer checks: a fresh directory for a spawned server, else
// $CLIENT_KEYS_DIR (the one the running server was given), else those checks are skipped.
let keysDir = process.env.CLIENT_KEYS_DIR || '';
let ownKeysDir = '';
if (!arg || arg === '--spawn') {
  ownKeysDir = mkdtempSync(path.join(os.tmpdir(), 'oidc-drive-keys-'));
  keysDir = ownKeysDir;
  ({ child, issuer } = await startServer(keysDir));
}
let ok = false;
try {
  ok = await main(issuer.replace(/\/$/, ''), keysDir);
} catch (err) {
  console.log(`ERROR ${err.stack}`);
} finally {
  if (child) {
    child.kill('SIGTERM');
    await once(child, 'exit');
  }
  if (ownKeysDir) rmSync(ownKeysDir, { recursive: true, force: true });
}
process.exit(ok ? 0 : 1);

// End-to-end driver for server.mjs: walks every flow with plain HTTP (manual cookie jar, manual
// redirects, no browser) and prints each request/response step. Token values are redacted.
//
// Usage:  node drive.mjs http://127.0.0.1:<port>      (or ISSUER=... node drive.mjs)
//         node drive.mjs --spawn                       (starts server.mjs itself, kills it at end)

import { spawn } from 'node:child_process';
import * as crypto from 'node:crypto';
import { once } from 'node:events';
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

async function main(issuer) {
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

  const st2 = await stats(issuer);
  console.log(`\n== /__stats -> ${JSON.stringify(st2)}`);
  check(st2.token_requests === Object.values(st2.by_grant).reduce((x, y) => x + y, 0), 'stats consistent');
  await fetch(`${issuer}/__stats/reset`, { method: 'POST' });

  console.log(`\n${passes} passed, ${failures} failed`);
  return failures === 0;
}

async function startServer() {
  const child = spawn(process.execPath, [fileURLToPath(new URL('./server.mjs', import.meta.url))], {
    env: { ...process.env, PORT: '0' }, stdio: ['ignore', 'pipe', 'inherit'],
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
if (!arg || arg === '--spawn') {
  ({ child, issuer } = await startServer());
}
let ok = false;
try {
  ok = await main(issuer.replace(/\/$/, ''));
} catch (err) {
  console.log(`ERROR ${err.stack}`);
} finally {
  if (child) {
    child.kill('SIGTERM');
    await once(child, 'exit');
  }
}
process.exit(ok ? 0 : 1);

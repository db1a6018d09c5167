// Local OAuth 2.0 / OpenID Connect authorization server for end-to-end tests.
//
// Built on the independent `oidc-provider` package (pinned 8.8.1). Binds 127.0.0.1 only.
// Prints exactly one line to stdout once ready:  listening http://127.0.0.1:<port>
// Everything else goes to stderr. See README.md for clients, env vars and the HTTP walk-through.

import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as http from 'node:http';
import * as path from 'node:path';
import * as querystring from 'node:querystring';

import Provider, { errors } from 'oidc-provider';

import {
  decodeJose, installGrants, JWT_BEARER, protectedResource, TOKEN_EXCHANGE,
} from './extensions.mjs';

// oidc-provider prints its development NOTICEs through console.info (stdout). stdout is reserved
// for the single "listening" line parsed by the test harness, so route every other log to stderr.
console.log = console.error; // eslint-disable-line no-console
console.info = console.error; // eslint-disable-line no-console

function intFromEnv(name, fallback) {
  const raw = process.env[name];
  if (raw === undefined || raw === '') return fallback;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < 0) {
    console.error(`invalid ${name}=${raw}`);
    process.exit(2);
  }
  return n;
}

const PORT = intFromEnv('PORT', 0);
const ACCESS_TOKEN_TTL = intFromEnv('ACCESS_TOKEN_TTL', 3600);
// Default redirect URI; clients are application_type "native", so oidc-provider accepts any
// port on the registered loopback host/path (RFC 8252 §7.3). REDIRECT_URIS replaces the list.
const REDIRECT_URIS = (process.env.REDIRECT_URIS || 'http://127.0.0.1:8765/callback')
  .split(',').map((s) => s.trim()).filter(Boolean);
// PKCE is required for every client by default in oidc-provider 8.x. PKCE_REQUIRED=0 relaxes it
// for confidential clients only (public clients always need it).
const PKCE_REQUIRED = process.env.PKCE_REQUIRED !== '0';
// OIDC_LOG=1 logs one line per token request to stderr (off by default so that a harness which
// pipes stderr without draining it can never block the server).
const LOG_REQUESTS = process.env.OIDC_LOG === '1';

const SCOPES = ['openid', 'profile', 'email', 'offline_access', 'api:read', 'api:write'];
// CLIENT_KEYS_DIR=<dir>: the private keys of the private_key_jwt clients are written there
// (PKCS#8 PEM, mode 0600: rs256.pem, es256.pem, eddsa.pem) for the client under test to
// sign with; the server registers only their public halves. Fresh keys per process.
const CLIENT_KEYS_DIR = process.env.CLIENT_KEYS_DIR || '';

// One key pair per private_key_jwt client; `kid` is what the client sends in its header.
function clientKey(kind, options, alg, kid) {
  const { publicKey, privateKey } = crypto.generateKeyPairSync(kind, options);
  if (CLIENT_KEYS_DIR) {
    const file = path.join(CLIENT_KEYS_DIR, `${alg.toLowerCase()}.pem`);
    fs.writeFileSync(file, privateKey.export({ format: 'pem', type: 'pkcs8' }), { mode: 0o600 });
  }
  return { keys: [{ ...publicKey.export({ format: 'jwk' }), kid, alg, use: 'sig' }] };
}
const rsaJwks = clientKey('rsa', { modulusLength: 2048 }, 'RS256', 'rs-1');
const ecJwks = clientKey('ec', { namedCurve: 'P-256' }, 'ES256', 'ec-1');
const edJwks = clientKey('ed25519', {}, 'EdDSA', 'ed-1');

// A client that authenticates with a JWT assertion, for every grant the tests use.
const jwtClient = (extra) => codeClient({
  grant_types: ['authorization_code', 'refresh_token', 'client_credentials'],
  ...extra,
});

const codeClient = (extra) => ({
  application_type: 'native',
  grant_types: ['authorization_code', 'refresh_token'],
  response_types: ['code'],
  redirect_uris: REDIRECT_URIS,
  ...extra,
});

const clients = [
  codeClient({ client_id: 'basic-client', client_secret: 'basic-secret', token_endpoint_auth_method: 'client_secret_basic' }),
  codeClient({ client_id: 'post-client', client_secret: 'post-secret', token_endpoint_auth_method: 'client_secret_post' }),
  codeClient({ client_id: 'special-client', client_secret: 'p+a:s&s%w/o=r d', token_endpoint_auth_method: 'client_secret_basic' }),
  codeClient({ client_id: 'public-client', token_endpoint_auth_method: 'none' }),
  // For the secret-hygiene test: a secret that can only come from here.
  codeClient({ client_id: 'hygiene-client', client_secret: 'HYGIENE-client-secret-5f0c2b9e71d4', token_endpoint_auth_method: 'client_secret_basic' }),
  // Issues no refresh token (like GitHub OAuth apps or Notion): only the code grant.
  codeClient({ client_id: 'norefresh-client', client_secret: 'norefresh-secret', token_endpoint_auth_method: 'client_secret_basic', grant_types: ['authorization_code'] }),
  jwtClient({ client_id: 'rs256-client', token_endpoint_auth_method: 'private_key_jwt', token_endpoint_auth_signing_alg: 'RS256', jwks: rsaJwks }),
  jwtClient({ client_id: 'es256-client', token_endpoint_auth_method: 'private_key_jwt', token_endpoint_auth_signing_alg: 'ES256', jwks: ecJwks }),
  jwtClient({ client_id: 'eddsa-client', token_endpoint_auth_method: 'private_key_jwt', token_endpoint_auth_signing_alg: 'EdDSA', jwks: edJwks }),
  jwtClient({ client_id: 'secret-jwt-client', client_secret: 'HS256-key-7f3a9c1e5b2d8f4a6c0e9b7d5f3a1c8e', token_endpoint_auth_method: 'client_secret_jwt', token_endpoint_auth_signing_alg: 'HS256' }),
  {
    client_id: 'service-client',
    client_secret: 'service-secret',
    token_endpoint_auth_method: 'client_secret_basic',
    grant_types: ['client_credentials'],
    response_types: [],
    redirect_uris: [],
  },
  // PAR (RFC 9126) is required for this client: /auth without a pushed request_uri is refused.
  codeClient({ client_id: 'par-client', client_secret: 'par-secret', token_endpoint_auth_method: 'client_secret_basic', require_pushed_authorization_requests: true }),
  // DPoP (RFC 9449) is required for this client's token requests: its tokens are DPoP-bound.
  codeClient({ client_id: 'dpop-client', client_secret: 'dpop-secret', token_endpoint_auth_method: 'client_secret_basic', dpop_bound_access_tokens: true }),
  // Token exchange (RFC 8693), see extensions.mjs.
  {
    client_id: 'exchange-client',
    client_secret: 'exchange-secret',
    token_endpoint_auth_method: 'client_secret_basic',
    grant_types: [TOKEN_EXCHANGE, 'client_credentials'],
    response_types: [],
    redirect_uris: [],
  },
  // JWT bearer grant (RFC 7523 §2.1), see extensions.mjs. Public: sends client_id in the body.
  {
    client_id: 'jwt-bearer-client',
    token_endpoint_auth_method: 'none',
    grant_types: [JWT_BEARER],
    response_types: [],
    redirect_uris: [],
  },
  {
    client_id: 'device-client',
    application_type: 'native',
    token_endpoint_auth_method: 'none',
    grant_types: ['urn:ietf:params:oauth:grant-type:device_code', 'refresh_token'],
    response_types: [],
    redirect_uris: [],
  },
];

// Fresh RS256 signing key per process (ID Tokens); nothing is read from disk.
const signingKey = {
  ...crypto.generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey.export({ format: 'jwk' }),
  kid: 'test-rs256',
  use: 'sig',
  alg: 'RS256',
};

// The "service accounts" of the JWT bearer grant: an assertion's `iss` picks the public key
// that must have signed it (the private halves are es256.pem and rs256.pem in CLIENT_KEYS_DIR).
const SERVICE_ACCOUNTS = {
  'robot@service.test': { alg: 'ES256', jwk: ecJwks.keys[0] },
  'rs-robot@service.test': { alg: 'RS256', jwk: rsaJwks.keys[0] },
};
// Audiences a token exchange may ask for (besides this server's own <issuer>/api).
const EXCHANGE_AUDIENCES = ['https://api.example.test', 'https://other.example.test'];
const API_SCOPES = ['api:read', 'api:write'];
const DPOP_ALGS = ['ES256', 'ES384', 'EdDSA', 'RS256', 'PS256'];

// --- test observation counters -------------------------------------------------------------
const stats = { token_requests: 0, by_grant: {} };
function resetStats() {
  stats.token_requests = 0;
  stats.by_grant = {};
  dpopProofs.length = 0;
  tokenRequests.length = 0;
  tokenDelay.delayed = 0;
  tokenDelay.dropped = 0;
  tokenDelay.processed_after_close = 0;
}

// A delay before oidc-provider handles each refresh_token grant, set at run time with
// POST /__token-delay (ms=0 clears it), for tests of a client that gives up on a slow token
// endpoint. `abandoned` says what happens to a request whose client closed its connection during
// the delay: `process` (the default) hands it to oidc-provider anyway, as a real server that has
// started work would (the refresh token is consumed and rotated); `drop` does not (it is not).
// GET /__token-delay shows the setting and counts what happened.
const tokenDelay = {
  ms: 0, abandoned: 'process', delayed: 0, dropped: 0, processed_after_close: 0,
};
const TOKEN_DELAY_MODES = ['process', 'drop'];

// The whole body of `req` as a string (at most `limit` bytes).
async function readBody(req, limit = 56 * 1024) {
  const chunks = [];
  let length = 0;
  for await (const chunk of req) {
    length += chunk.length;
    if (length > limit) throw new Error('request body too large');
    chunks.push(chunk);
  }
  return Buffer.concat(chunks).toString('utf8');
}

// The settings of a POST /__token-delay or /__dpop-nonce: its query, or its body (JSON or
// form-urlencoded).
async function knobSettings(ctx) {
  const raw = await readBody(ctx.req);
  const fromBody = () => {
    if (raw.trim() === '') return {};
    if (ctx.is('application/json')) return JSON.parse(raw);
    return Object.fromEntries(new URLSearchParams(raw));
  };
  return { ...fromBody(), ...ctx.query };
}

// Every credential that passed through the token endpoint (codes, PKCE verifiers, device codes,
// refresh tokens presented; access, refresh and ID tokens issued), for the secret-hygiene test:
// none of them may appear in the client's output. GET /__credentials lists them.
const credentials = new Set();
function recordCredentials(ctx, sent = ctx.oidc?.body ?? {}) {
  for (const key of ['code', 'code_verifier', 'device_code', 'refresh_token', 'client_secret',
    'assertion', 'subject_token', 'actor_token']) {
    if (typeof sent[key] === 'string' && sent[key] !== '') credentials.add(sent[key]);
  }
  // A client assertion is a credential too (until it expires).
  if (typeof sent.client_assertion === 'string') credentials.add(sent.client_assertion);
  const issued = ctx.body;
  if (issued && typeof issued === 'object') {
    for (const key of ['access_token', 'refresh_token', 'id_token']) {
      if (typeof issued[key] === 'string' && issued[key] !== '') credentials.add(issued[key]);
    }
  }
}

// The client assertions received at any endpoint, decoded (header and claims, not the
// signature), with the endpoint and outcome: GET /__assertions lists them.
const assertions = [];
function recordAssertion(ctx) {
  const assertion = ctx.oidc?.body?.client_assertion;
  if (typeof assertion !== 'string') return;
  const [header, claims] = assertion.split('.').slice(0, 2).map((part) => {
    try { return JSON.parse(Buffer.from(part, 'base64url').toString('utf8')); } catch { return null; }
  });
  assertions.push({
    path: ctx.path,
    grant_type: ctx.oidc?.body?.grant_type ?? null,
    client_assertion_type: ctx.oidc?.body?.client_assertion_type ?? null,
    client_id: ctx.oidc?.body?.client_id ?? null,
    status: ctx.status,
    header,
    claims,
  });
}

// A JWT bearer grant's assertion (RFC 7523 §2.1), recorded like a client assertion: the
// same entry shape, with client_assertion_type null.
function recordGrantAssertion(ctx) {
  const body = ctx.oidc?.body;
  if (body?.grant_type !== JWT_BEARER || typeof body.assertion !== 'string') return;
  const { header, claims } = decodeJose(body.assertion);
  assertions.push({
    path: ctx.path,
    grant_type: body.grant_type,
    client_assertion_type: null,
    client_id: body.client_id ?? null,
    status: ctx.status,
    header,
    claims,
  });
}

// Every DPoP proof header received, on any path, decoded (not verified): GET /__dpop.
const dpopProofs = [];
// Every POST to /token and /request (PAR), in arrival order: GET /__token-requests.
const tokenRequests = [];
// Every POST to /reg (dynamic client registration): GET /__registrations.
const registrations = [];
// Whether DPoP proofs must carry a server nonce (features.dPoP.requireNonce), set at run time
// with POST /__dpop-nonce.
const dpopNonce = { required: false };

function parseBool(v) {
  if (v === true || v === 1 || v === '1' || v === 'true') return true;
  if (v === false || v === 0 || v === '0' || v === 'false') return false;
  return undefined;
}

// The form parameters of a token or PAR request as sent (a repeated one as an array).
function sentParams(ctx) {
  const body = ctx.oidc?.body
    ?? (typeof ctx.req.body === 'string' ? querystring.parse(ctx.req.body) : undefined);
  return body && typeof body === 'object' ? JSON.parse(JSON.stringify(body)) : {};
}

const server = http.createServer();
server.listen(PORT, '127.0.0.1', () => {
  const { port } = server.address();
  const issuer = `http://127.0.0.1:${port}`;

  const apiResource = `${issuer}/api`;
  const extraClaims = new WeakMap(); // AccessToken -> extra claims (token exchange `act`)

  const provider = new Provider(issuer, {
    clients,
    jwks: { keys: [signingKey] },
    responseTypes: ['code'],
    scopes: SCOPES,
    claims: {
      openid: ['sub'],
      profile: ['name'],
      email: ['email', 'email_verified'],
    },
    async findAccount(ctx, id) {
      return {
        accountId: id,
        async claims() {
          return {
            sub: id, name: `Test User ${id}`, email: `${id}@example.test`, email_verified: true,
          };
        },
      };
    },
    cookies: {
      keys: ['oidc-test-server-cookie-key-1-not-a-secret', 'oidc-test-server-cookie-key-2-not-a-secret'],
    },
    enabledJWA: {
      clientAuthSigningAlgValues: ['HS256', 'RS256', 'PS256', 'ES256', 'ES384', 'EdDSA'],
      dPoPSigningAlgValues: DPOP_ALGS,
    },
    // The `act` claim of a token exchange with an actor_token (introspection shows it).
    async extraTokenClaims(ctx, token) {
      return extraClaims.get(token);
    },
    features: {
      devInteractions: { enabled: true },
      clientCredentials: { enabled: true },
      deviceFlow: { enabled: true },
      revocation: { enabled: true },
      introspection: { enabled: true },
      // RFC 9126, at /request. Optional for every client but par-client, which requires it.
      pushedAuthorizationRequests: { enabled: true, requirePushedAuthorizationRequests: false },
      // RFC 9449. Optional for every client but dpop-client (dpop_bound_access_tokens).
      dPoP: {
        enabled: true,
        nonceSecret: crypto.randomBytes(32),
        requireNonce: () => dpopNonce.required,
      },
      // RFC 7591 at /reg, open (no initial access token); RFC 7592 read/update/delete at
      // /reg/<client_id> with the registration_access_token.
      registration: { enabled: true, initialAccessToken: false, issueRegistrationAccessToken: true },
      registrationManagement: { enabled: true, rotateRegistrationAccessToken: false },
      // RFC 8707. One resource server: <issuer>/api. A request without `resource` is handled as
      // before (scopes checked against the top-level `scopes`, the access token is for userinfo).
      resourceIndicators: {
        enabled: true,
        defaultResource: async (ctx, client, oneOf) => oneOf,
        // A resource granted at /auth applies at /token even without `resource` there, also
        // with the openid scope.
        useGrantedResource: async () => true,
        getResourceServerInfo: async (ctx, resourceIndicator) => {
          if (resourceIndicator === apiResource) {
            return { scope: API_SCOPES.join(' '), accessTokenFormat: 'opaque' };
          }
          throw new errors.InvalidTarget(`unknown resource indicator (only ${apiResource})`);
        },
      },
    },
    pkce: {
      methods: ['S256'],
      required: (ctx, client) => PKCE_REQUIRED || client.clientAuthMethod === 'none',
    },
    ttl: {
      AccessToken: ACCESS_TOKEN_TTL,
      ClientCredentials: ACCESS_TOKEN_TTL,
      AuthorizationCode: 600,
      DeviceCode: 600,
      IdToken: 3600,
      RefreshToken: 14 * 24 * 3600,
      Interaction: 3600,
      Session: 14 * 24 * 3600,
      Grant: 14 * 24 * 3600,
    },
    rotateRefreshToken: true,
    async issueRefreshToken(ctx, client) {
      return client.grantTypeAllowed('refresh_token');
    },
    renderError(ctx, out) {
      ctx.type = 'json';
      ctx.body = out;
    },
  });

  installGrants(provider, {
    issuer,
    knownScopes: SCOPES,
    serviceAccounts: SERVICE_ACCOUNTS,
    exchangeAudiences: [...EXCHANGE_AUDIENCES, apiResource],
    extraClaims,
  });
  const resourceServer = protectedResource(provider, {
    issuer, resource: apiResource, scopes: API_SCOPES, dpopAlgs: DPOP_ALGS,
  });

  const tokenPath = '/token';
  provider.use(async (ctx, next) => {
    const proof = ctx.get('DPoP');
    if (proof) dpopProofs.push({ path: ctx.path, method: ctx.method, ...decodeJose(proof) });
    if (await resourceServer(ctx)) return undefined;
    if (ctx.path === '/__dpop' && ctx.method === 'GET') {
      ctx.type = 'json';
      ctx.body = dpopProofs;
      return undefined;
    }
    if (ctx.path === '/__token-requests' && ctx.method === 'GET') {
      ctx.type = 'json';
      ctx.body = tokenRequests;
      return undefined;
    }
    if (ctx.path === '/__registrations' && ctx.method === 'GET') {
      ctx.type = 'json';
      ctx.body = registrations;
      return undefined;
    }
    if (ctx.path === '/__dpop-nonce' && ctx.method === 'GET') {
      ctx.type = 'json';
      ctx.body = dpopNonce;
      return undefined;
    }
    if (ctx.path === '/__dpop-nonce' && ctx.method === 'POST') {
      let required;
      try {
        required = parseBool((await knobSettings(ctx)).required);
      } catch {
        required = undefined;
      }
      if (required === undefined) {
        ctx.status = 400;
        ctx.type = 'json';
        ctx.body = { error: 'expected required=1|0|true|false (query, form or JSON body)' };
        return undefined;
      }
      dpopNonce.required = required;
      ctx.type = 'json';
      ctx.body = dpopNonce;
      return undefined;
    }
    if (ctx.path === '/__stats' && ctx.method === 'GET') {
      ctx.type = 'json';
      ctx.body = stats;
      return undefined;
    }
    if (ctx.path === '/__assertions' && ctx.method === 'GET') {
      ctx.type = 'json';
      ctx.body = assertions;
      return undefined;
    }
    if (ctx.path === '/__credentials' && ctx.method === 'GET') {
      ctx.type = 'json';
      ctx.body = [...credentials];
      return undefined;
    }
    // Bodies that are not JSON, for `call --json`: UTF-8 text, and bytes that are not UTF-8.
    if (ctx.path === '/__text' && ctx.method === 'GET') {
      ctx.type = 'text/plain; charset=utf-8';
      ctx.body = ctx.query.text ?? 'plain text, no newline';
      return undefined;
    }
    if (ctx.path === '/__bytes' && ctx.method === 'GET') {
      ctx.type = 'application/octet-stream';
      ctx.body = Buffer.from([0xff, 0x00, 0x41]);
      return undefined;
    }
    if (ctx.path === '/__stats/reset' && ctx.method === 'POST') {
      resetStats();
      ctx.type = 'json';
      ctx.body = stats;
      return undefined;
    }
    if (ctx.path === '/__token-delay' && ctx.method === 'GET') {
      ctx.type = 'json';
      ctx.body = tokenDelay;
      return undefined;
    }
    if (ctx.path === '/__token-delay' && ctx.method === 'POST') {
      let settings;
      try {
        settings = await knobSettings(ctx);
      } catch (err) {
        ctx.status = 400;
        ctx.type = 'json';
        ctx.body = { error: `unreadable settings: ${err.message}` };
        return undefined;
      }
      const ms = Number(settings.ms ?? 0);
      const abandoned = settings.abandoned ?? 'process';
      if (!Number.isInteger(ms) || ms < 0 || !TOKEN_DELAY_MODES.includes(abandoned)) {
        ctx.status = 400;
        ctx.type = 'json';
        ctx.body = { error: 'expected ms=<integer >= 0> and abandoned=process|drop' };
        return undefined;
      }
      tokenDelay.ms = ms;
      tokenDelay.abandoned = ms === 0 ? 'process' : abandoned;
      ctx.type = 'json';
      ctx.body = tokenDelay;
      return undefined;
    }
    // Token and PAR requests, recorded on arrival; their parameters once they are parsed.
    let recorded = null;
    if ((ctx.path === tokenPath || ctx.path === '/request') && ctx.method === 'POST') {
      recorded = {
        path: ctx.path,
        params: {},
        authorization: ctx.get('authorization').split(' ')[0] || null,
        dpop: proof !== '',
      };
      tokenRequests.push(recorded);
    }
    if (ctx.path === tokenPath && ctx.method === 'POST') {
      stats.token_requests += 1;
      // With a delay set, the body is read here to find refresh_token grants; oidc-provider then
      // parses the same text from `req.body` (its fallback for an already read body).
      let early = null;
      if (tokenDelay.ms > 0 && ctx.is('application/x-www-form-urlencoded')) {
        ctx.req.body = await readBody(ctx.req);
        const sent = Object.fromEntries(new URLSearchParams(ctx.req.body));
        if (sent.grant_type === 'refresh_token') {
          // Counted on arrival, before the delay.
          early = sent;
          stats.by_grant.refresh_token = (stats.by_grant.refresh_token || 0) + 1;
          tokenDelay.delayed += 1;
          const { ms, abandoned } = tokenDelay;
          await new Promise((resolve) => { setTimeout(resolve, ms); });
          // A client that gave up has closed the connection: Node's HTTP server then ends our
          // side too, so the socket is destroyed, or at least no longer writable.
          const { socket } = ctx.req;
          if (socket.destroyed || !socket.writable) {
            if (abandoned === 'drop') {
              tokenDelay.dropped += 1;
              recordCredentials(ctx, sent);
              recorded.params = sentParams(ctx);
              if (LOG_REQUESTS) console.error('token request grant_type=refresh_token dropped');
              ctx.status = 408; // nobody reads it: the connection is gone
              return undefined;
            }
            tokenDelay.processed_after_close += 1;
          }
        }
      }
      try {
        await next();
      } finally {
        recorded.params = sentParams(ctx);
        recordCredentials(ctx);
        recordAssertion(ctx);
        recordGrantAssertion(ctx);
        const grant = ctx.oidc?.body?.grant_type ?? ctx.oidc?.params?.grant_type ?? 'unknown';
        if (!early) stats.by_grant[grant] = (stats.by_grant[grant] || 0) + 1;
        if (LOG_REQUESTS) console.error(`token request grant_type=${grant} status=${ctx.status}`);
      }
      return undefined;
    }
    if (ctx.method === 'POST') {
      const registration = ctx.path === '/reg' ? { body: null, status: null, client_id: null } : null;
      if (registration) registrations.push(registration);
      try {
        await next();
      } finally {
        if (recorded) recorded.params = sentParams(ctx);
        if (registration) {
          registration.body = ctx.oidc?.body ?? null;
          registration.status = ctx.status;
          registration.client_id = ctx.body?.client_id ?? null;
        }
        recordAssertion(ctx);
      }
      return undefined;
    }
    return next();
  });

  server.on('request', provider.callback());
  process.stdout.write(`listening ${issuer}\n`);
});

server.on('error', (err) => {
  console.error(`server error: ${err.message}`);
  process.exit(1);
});

for (const sig of ['SIGINT', 'SIGTERM']) {
  process.on(sig, () => {
    server.close();
    process.exit(0);
  });
}

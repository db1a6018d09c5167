// Test support: the project's authorization server (tests/oidc-server, oidc-provider) on
// 127.0.0.1, a scripted sign-in, and small local HTTP servers. Nothing here reaches beyond
// the loopback interface.

import { execFileSync, spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import http from 'node:http';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';

export const SERVER_DIR = fileURLToPath(new URL('../../tests/oidc-server/', import.meta.url));
export const REPO = fileURLToPath(new URL('../../', import.meta.url));
export const REDIRECT_URI = 'http://127.0.0.1:8765/callback';

/** The component the tests expect: the path cargo's build gave (or the default one). */
export const COMPONENT_WASM = process.env.CONNECTOR_COMPONENT_WASM
  || join(REPO, 'target', 'component-build', 'wasm32-wasip2', 'component', 'oauth_connector.wasm');

export function sha256File(path) {
  return createHash('sha256').update(readFileSync(path)).digest('hex');
}

// Installs the server's packages once, like the Rust harness (host-example/src/local_server.rs).
function ensureInstalled() {
  const manifest = JSON.parse(readFileSync(join(SERVER_DIR, 'package.json'), 'utf8'));
  const missing = Object.keys(manifest.dependencies ?? {})
    .filter((name) => !existsSync(join(SERVER_DIR, 'node_modules', name, 'package.json')));
  if (missing.length > 0) {
    execFileSync('npm', ['ci', '--no-audit', '--no-fund'], { cwd: SERVER_DIR, stdio: 'inherit' });
  }
}

/** Starts server.mjs on an ephemeral port; resolves once it prints `listening <issuer>`. */
export async function startServer(env = {}) {
  ensureInstalled();
  const child = spawn(process.execPath, ['server.mjs'], {
    cwd: SERVER_DIR,
    env: { ...process.env, PORT: '0', ...env },
    stdio: ['ignore', 'pipe', 'ignore'],
  });
  const lines = createInterface({ input: child.stdout });
  const first = await new Promise((resolve, reject) => {
    lines.once('line', resolve);
    child.once('exit', (code) => reject(new Error(`server.mjs exited with ${code} before listening`)));
  });
  const issuer = first.trim().replace(/^listening /, '');
  if (!issuer.startsWith('http://127.0.0.1:')) {
    child.kill();
    throw new Error(`server.mjs did not start (first line: ${first})`);
  }
  const observe = async (path, init) => (await fetch(`${issuer}${path}`, init)).json();
  return {
    issuer,
    observe,
    tokenRequests: () => observe('/__token-requests'),
    stats: () => observe('/__stats'),
    close() {
      child.kill();
      return new Promise((resolve) => { if (child.exitCode !== null) resolve(); else child.once('exit', resolve); });
    },
  };
}

/** The profile (the JSON format, kebab-case) of the local server. */
export function localProfile(issuer, extra = {}) {
  return {
    id: 'local-oidc',
    issuer,
    'authorize-url': `${issuer}/auth`,
    'token-url': `${issuer}/token`,
    'revocation-url': `${issuer}/token/revocation`,
    'introspection-url': `${issuer}/token/introspection`,
    'device-authorization-url': `${issuer}/device/auth`,
    'api-base-url': issuer,
    'default-scopes': ['openid', 'profile'],
    'requires-iss': true,
    // oidc-provider drops offline_access without prompt=consent (OpenID Connect Core §11).
    'offline-access': {
      scopes: ['offline_access'],
      'authorize-params': [{ name: 'prompt', value: 'consent' }],
    },
    ...extra,
  };
}

/**
 * Plays the browser: walks the server's login and consent pages from `authorizeUrl` and
 * returns the callback URL the browser would be redirected to (with code, state and iss).
 * The walk's request log (lib.mjs prints one line per request, codes redacted) is dropped.
 */
export async function signIn(authorizeUrl, decision = 'approve') {
  const { CookieJar, walkToCallback } = await import(new URL('lib.mjs', `file://${SERVER_DIR}`).href);
  const log = console.log;
  console.log = () => {};
  try {
    const callback = await walkToCallback(new CookieJar(), authorizeUrl, REDIRECT_URI, decision);
    return callback.href;
  } finally {
    console.log = log;
  }
}

/** Approves a device authorization through the server's pages. */
export async function approveDevice(verificationUrl) {
  const lib = await import(new URL('lib.mjs', `file://${SERVER_DIR}`).href);
  const log = console.log;
  console.log = () => {};
  try {
    return await lib.approveDevice(new lib.CookieJar(), verificationUrl, 'approve');
  } finally {
    console.log = log;
  }
}

/** A local HTTP server answering every request with `reply(req, body)`; it counts requests. */
export async function replyServer(reply) {
  const requests = [];
  const server = http.createServer(async (req, res) => {
    const chunks = [];
    for await (const chunk of req) chunks.push(chunk);
    const body = Buffer.concat(chunks).toString('utf8');
    requests.push({ method: req.method, url: req.url, headers: req.headers, body });
    const answer = await reply(req, body);
    res.writeHead(answer.status, answer.headers ?? {});
    res.end(answer.body ?? '');
  });
  await new Promise((resolve) => { server.listen(0, '127.0.0.1', resolve); });
  const origin = `http://127.0.0.1:${server.address().port}`;
  return {
    origin,
    url: (path) => `${origin}${path}`,
    requests,
    close: () => new Promise((resolve) => { server.closeAllConnections?.(); server.close(resolve); }),
  };
}

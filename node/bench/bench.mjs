// The Node column of the benchmark suite: the same component file in Node.js (jco bindings,
// a worker thread), measured on this machine. Prints one JSON object on stdout (with --json)
// or a table; everything runs on 127.0.0.1.
//
//   node bench/bench.mjs [--json] [--quick]
//
// --quick runs each measurement once (the suite's quick mode: it keeps the script working,
// its figures mean nothing).
//
// - worker start: loading the generated glue, and the first instance (compiling the core
//   modules, instantiating);
// - a replacement instance (after a trap: the compiled modules are reused);
// - the authorize URL: per call through the async API (a round trip to the worker), and per
//   call inside the worker (the component and jco's glue alone);
// - a loopback code exchange: through the component (async API, the worker blocked while
//   the main thread sends), and the host's HTTP transport alone with the same request.

import http from 'node:http';

import { createConnector } from '../src/index.js';

const TOKEN_JSON = JSON.stringify({
  access_token: 'bench-access-token', token_type: 'Bearer', expires_in: 3600,
  refresh_token: 'bench-refresh-token', scope: 'openid profile',
});

const quick = process.argv.includes('--quick');

const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

async function perCall(fn, options = {}) {
  const { warmup = 300, rounds = 5, n = 1000 } = quick ? { warmup: 1, rounds: 1, n: 1 } : options;
  for (let i = 0; i < warmup; i += 1) await fn();
  const samples = [];
  for (let r = 0; r < rounds; r += 1) {
    const started = performance.now();
    for (let i = 0; i < n; i += 1) await fn();
    samples.push(((performance.now() - started) / n) * 1000);
  }
  return median(samples);
}

const server = http.createServer((req, res) => {
  req.resume();
  req.on('end', () => {
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(TOKEN_JSON);
  });
});
await new Promise((resolve) => { server.listen(0, '127.0.0.1', resolve); });
const origin = `http://127.0.0.1:${server.address().port}`;

const config = {
  profile: { id: 'bench', 'authorize-url': `${origin}/authorize`, 'token-url': `${origin}/token` },
  client: { clientId: 'bench-client', clientSecret: 'bench-secret' },
  redirectUri: 'http://127.0.0.1:8765/callback',
  scopes: ['openid', 'profile'],
};

const results = {};
const started = performance.now();
const connector = createConnector();
const ready = await connector.ready();
results.worker_ready_ms = performance.now() - started;
results.glue_load_ms = ready.glueLoadMs;
results.first_instance_ms = ready.firstInstanceMs;

results.authorize_url_async_us = await perCall(() => connector.beginAuthorization(config));
{
  const prepared = connector.prepareConfig(config);
  const n = quick ? 1 : 2000;
  await connector.repeatInWorker(quick ? 1 : 500, 'begin', prepared);
  const samples = [];
  for (let r = 0; r < (quick ? 1 : 5); r += 1) samples.push(((await connector.repeatInWorker(n, 'begin', prepared)) / n) * 1000);
  results.authorize_url_in_worker_us = median(samples);
}

const { pending } = await connector.beginAuthorization(config);
const callback = `http://127.0.0.1:8765/callback?code=bench-code&state=${pending.state}`;
results.code_exchange_async_us = await perCall(
  () => connector.completeAuthorization(config, pending, callback),
  { warmup: 200, rounds: 5, n: 300 },
);
{
  const { httpTransport } = await import('../src/transport.js');
  const direct = httpTransport();
  const body = new TextEncoder().encode(`grant_type=authorization_code&code=bench-code&redirect_uri=${encodeURIComponent(config.redirectUri)}&code_verifier=${pending.codeVerifier}`);
  const request = {
    method: { tag: 'post' },
    url: `${origin}/token`,
    headers: [
      { name: 'content-type', value: 'application/x-www-form-urlencoded' },
      { name: 'accept', value: 'application/json' },
      { name: 'authorization', value: `Basic ${Buffer.from('bench-client:bench-secret').toString('base64')}` },
    ],
    body,
  };
  results.code_exchange_direct_http_us = await perCall(() => direct.send(request), { warmup: 200, rounds: 5, n: 300 });
  direct.close();
}

// A replacement instance: make the instance trap through a failing host import, then time
// the next call's instantiation (the compiled core modules are reused).
{
  const trapping = createConnector({
    async transport() { throw new Error('bench: trap on purpose'); },
  });
  await trapping.ready();
  await trapping.clientCredentials(config).catch(() => {});
  await trapping.beginAuthorization(config);
  results.replacement_instance_ms = (await trapping.stats()).lastInstanceMs;
  await trapping.close();
}

results.component_sha256 = connector.component.sha256;
results.node = process.version;
await connector.close();
server.close();

if (process.argv.includes('--json')) {
  process.stdout.write(`${JSON.stringify(results)}\n`);
} else {
  for (const [name, value] of Object.entries(results)) {
    console.log(`${name.padEnd(32)} ${typeof value === 'number' ? value.toFixed(1) : value}`);
  }
}

// A real browser on the web page of `connector-host serve`: headless Chromium (Debian's
// `chromium`, driven by playwright-core; no browser is downloaded) signs in, connects through
// the local authorization server, revokes, and reports what the page shows.
//
// Usage:
//   TENANT_API_KEY=ck_... node browser.mjs [--connect=INTEGRATION] [--revoke] [--login=NAME]
//                                          SERVICE_URL CONNECTION
//
//   1. opens SERVICE_URL and signs in with the tenant API key $TENANT_API_KEY (from the
//      environment, so that it never shows in the process list);
//   2. --connect=INTEGRATION: fills that integration's connect form with CONNECTION, clicks
//      Connect, follows the page on to the authorization server, signs in there as NAME
//      (default alice, any password), consents, and waits to be back on SERVICE_URL/;
//   3. --revoke: clicks Revoke in CONNECTION's row;
//   4. signs out, and prints one JSON line on stdout:
//      {"url": the last page, "status": CONNECTION's status at the end (null: not listed),
//       "connected": its status after connecting, "revoked": its status after Revoke,
//       "rows": [{"connection", "status"}], "csp": the page's Content-Security-Policy,
//       "signed_out": true, "pages": every top-level request ("METHOD URL", no query;
//       a connect token shown as "…"), "origins": every origin requested, "blocked":
//       [{"url", "from"}] requests refused because not to 127.0.0.1, "page_errors":
//       [{"url", "text"}] console errors and uncaught page errors}
//
// No internet: every request a page makes is recorded, and one to anything but 127.0.0.1 is
// aborted before it is sent. The run fails if any was, except the Google Fonts stylesheet
// that oidc-provider's development login and consent pages @import (blocked, and listed in
// "blocked"). Host names other than 127.0.0.1 do not resolve either (--host-resolver-rules),
// for requests the browser itself makes.
//
// Exit: 0 done; 1 a step failed or a request left 127.0.0.1 (the page's URL and text go to
// stderr); 2 usage; 3 Chromium is not installed. Every step waits at most 30 s.

import { existsSync } from 'node:fs';

import { chromium } from 'playwright-core';

const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';
const STEP_TIMEOUT_MS = 30_000;
const LOOPBACK = '127.0.0.1';
/** Off-loopback requests that are expected, blocked, and not a failure: oidc-provider's
 * development pages (not the service's) @import this stylesheet. */
const EXPECTED_OFFSITE = ['https://fonts.googleapis.com/'];

const args = process.argv.slice(2);
const option = (name) => args.find((a) => a.startsWith(`${name}=`))?.slice(name.length + 1);
const positional = args.filter((a) => !a.startsWith('--'));
const integration = option('--connect');
const revoke = args.includes('--revoke');
const login = option('--login') ?? 'alice';
const key = process.env.TENANT_API_KEY;
if (positional.length !== 2 || !key) {
  console.error('usage: TENANT_API_KEY=ck_... node browser.mjs [--connect=INTEGRATION] [--revoke] '
    + '[--login=NAME] SERVICE_URL CONNECTION');
  process.exit(2);
}
const service = new URL(positional[0]);
const connection = positional[1];
const home = new URL('/', service).href;

if (!existsSync(CHROMIUM)) {
  console.error(`browser: no Chromium at ${CHROMIUM}: install Debian's chromium `
    + '(apt-get install --no-install-recommends chromium; .ci/run does)');
  process.exit(3);
}

/** `url` without its query and fragment, with a connect token (a credential) elided. */
function shown(url) {
  const u = new URL(url);
  return `${u.origin}${u.pathname.replace(/^\/connect\/.+/, '/connect/…')}`;
}

const isLoopback = (url) => !/^https?:/.test(url) || new URL(url).hostname === LOOPBACK;

const report = {
  url: null,
  status: null,
  connected: null,
  revoked: null,
  rows: [],
  csp: null,
  signed_out: false,
  pages: [],
  origins: [],
  blocked: [],
  page_errors: [],
};
const origins = new Set();

const browser = await chromium.launch({
  executablePath: CHROMIUM,
  headless: true,
  timeout: STEP_TIMEOUT_MS,
  args: [
    '--no-sandbox',
    '--disable-background-networking',
    `--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE ${LOOPBACK}`,
  ],
});
const context = await browser.newContext();
const page = await context.newPage();
page.setDefaultTimeout(STEP_TIMEOUT_MS);
page.setDefaultNavigationTimeout(STEP_TIMEOUT_MS);

// Every request is seen here, redirects included; one off loopback is refused below.
context.on('request', (request) => {
  const url = request.url();
  if (!/^https?:/.test(url)) return;
  origins.add(new URL(url).origin);
  let frame = null;
  try {
    frame = request.frame();
  } catch { /* a service worker's request has no frame */ }
  if (!isLoopback(url)) {
    report.blocked.push({ url: shown(url), from: frame ? shown(frame.url()) : null });
  }
  if (request.isNavigationRequest() && frame === page.mainFrame()) {
    report.pages.push(`${request.method()} ${shown(url)}`);
  }
});
await context.route('**/*', (route) => (isLoopback(route.request().url())
  ? route.continue()
  : route.abort('blockedbyclient')));
page.on('console', (message) => {
  if (message.type() === 'error') report.page_errors.push({ url: shown(page.url()), text: message.text() });
});
page.on('pageerror', (error) => report.page_errors.push({ url: shown(page.url()), text: String(error) }));
page.on('response', async (response) => {
  if (response.request().isNavigationRequest() && response.url() === home && response.status() === 200) {
    report.csp = (await response.allHeaders())['content-security-policy'] ?? null;
  }
});

/** Clicks `button` and waits until the page it leads to has loaded (a form's POST, its
 * 303 and the GET, even when the URL ends up unchanged). */
async function clickAndLoad(button) {
  const navigated = page.waitForEvent('framenavigated', {
    predicate: (frame) => frame === page.mainFrame(),
  });
  await button.click();
  await navigated;
  await page.waitForLoadState('load');
}

/** The connections table: [{connection, status}]. */
async function rows() {
  const listed = [];
  for (const row of await page.locator('#connections tr[data-connection]').all()) {
    listed.push({
      connection: await row.getAttribute('data-connection'),
      status: (await row.locator('td.status').textContent()).trim(),
    });
  }
  return listed;
}

/** CONNECTION's status on the page (it must be listed). */
async function statusOf() {
  return (await page.locator(`#connections tr[data-connection="${connection}"] td.status`)
    .textContent()).trim();
}

/** From the interstitial to the service again: the authorization server's login (as
 * `login`, any password) and consent pages, whichever it shows. */
async function signInAtTheAuthorizationServer() {
  await page.waitForURL((url) => url.origin !== service.origin);
  for (let step = 0; new URL(page.url()).origin !== service.origin; step += 1) {
    if (step === 4) throw new Error('still at the authorization server after 4 pages');
    const form = page.locator('form:has(input[name="prompt"])');
    const prompt = await form.locator('input[name="prompt"]').getAttribute('value');
    if (prompt === 'login') {
      await form.locator('input[name="login"]').fill(login);
      await form.locator('input[name="password"]').fill('any password');
    } else if (prompt !== 'consent') {
      throw new Error(`an authorization server page with prompt ${prompt}`);
    }
    const from = page.url();
    await form.locator('button[type="submit"]').click();
    await page.waitForURL((url) => url.href !== from, { waitUntil: 'load' });
  }
  await page.waitForURL(home, { waitUntil: 'load' });
}

let failed = null;
try {
  await page.goto(home);
  const signIn = page.locator('form#sign-in');
  await signIn.locator('input#key[name="key"][type="password"]').fill(key);
  await clickAndLoad(signIn.locator('button[type="submit"]', { hasText: 'Sign in' }));
  const dashboard = page.locator('table#integrations');
  await dashboard.or(signIn).first().waitFor();
  if (!await dashboard.isVisible()) throw new Error('the sign-in page again: the key was refused');

  if (integration) {
    const form = page.locator(`#integrations tr[data-integration="${integration}"] form.connect`);
    await form.locator('input[name="connection"]').fill(connection);
    await form.getByRole('button', { name: 'Connect', exact: true }).click();
    await signInAtTheAuthorizationServer();
    report.connected = await statusOf();
  }

  if (revoke) {
    const row = page.locator(`#connections tr[data-connection="${connection}"]`);
    await clickAndLoad(row.getByRole('button', { name: 'Revoke', exact: true }));
    report.revoked = await statusOf();
  }

  report.rows = await rows();
  report.status = report.rows.find((row) => row.connection === connection)?.status ?? null;
  report.url = shown(page.url());

  await clickAndLoad(page.locator('form#sign-out').getByRole('button', { name: 'Sign out' }));
  await page.locator('form#sign-in').waitFor();
  report.signed_out = true;
} catch (error) {
  failed = error;
}

report.origins = [...origins].sort();
const offsite = report.blocked
  .filter(({ url, from }) => !(EXPECTED_OFFSITE.some((allowed) => url.startsWith(allowed))
    && from && !from.startsWith(service.origin)));
if (!failed && offsite.length) {
  failed = new Error(`requests left 127.0.0.1: ${JSON.stringify(offsite)}`);
}

if (failed) {
  console.error(`browser: ${failed.message}`);
  console.error(`browser: at ${shown(page.url())}`);
  const text = await page.locator('body').innerText({ timeout: 2_000 }).catch(() => '(no text)');
  console.error(`browser: the page says:\n${text}`);
  console.error(`browser: so far: ${JSON.stringify(report)}`);
  await browser.close();
  process.exit(1);
}
await browser.close();
console.log(JSON.stringify(report));

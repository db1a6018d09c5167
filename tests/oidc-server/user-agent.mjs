// A scripted user for `connector-host connect --browser "node user-agent.mjs [options]"`:
// it plays the browser the CLI would open. Given the authorize URL (last argument), it walks
// the local server's login and consent pages with plain HTTP, then delivers the redirect to
// the CLI's loopback callback listener, exactly as a browser following the redirect would.
// Given a device verification URL (path /device), it approves the device instead.
//
// Options:
//   --deny          abort at the consent page (the server redirects with error=access_denied)
//   --tamper-state  deliver the callback with `state` altered, and not the real one
//   --forge-first   deliver a callback with a forged `state` first, then the real one
//   --save-callback=FILE  after delivering the real callback, write its URL to FILE
//   --replay-first=FILE   before the real callback, deliver the one saved in FILE (an earlier,
//                         completed sign-in's callback, replayed)
//
// All output goes to stderr (stdout belongs to the CLI).

import { readFileSync, writeFileSync } from 'node:fs';

import { approveDevice, CookieJar, walkToCallback } from './lib.mjs';

console.log = console.error; // eslint-disable-line no-console

const args = process.argv.slice(2);
const flag = (name) => args.includes(name);
const option = (name) => args.find((a) => a.startsWith(`${name}=`))?.slice(name.length + 1);
const authorizeUrl = args.filter((a) => !a.startsWith('--')).pop();
if (!authorizeUrl) {
  console.error('usage: node user-agent.mjs [--deny|--tamper-state|--forge-first] AUTHORIZE_URL');
  process.exit(2);
}

// Null for a pushed request (RFC 9126): the callback is then the first redirect off the
// server's origin.
const redirectUri = new URL(authorizeUrl).searchParams.get('redirect_uri');

if (new URL(authorizeUrl).pathname.startsWith('/device')) {
  try {
    const page = await approveDevice(new CookieJar(), authorizeUrl, flag('--deny') ? 'deny' : 'approve');
    console.error(`user-agent: device approval ended on "${page}"`);
    process.exit(0);
  } catch (err) {
    console.error(`user-agent: ${err.message}`);
    process.exit(1);
  }
}

async function deliver(url) {
  const res = await fetch(url, { redirect: 'manual' });
  console.error(`user-agent: callback ${new URL(url).pathname} -> ${res.status}`);
  return res.status;
}

try {
  const callback = await walkToCallback(
    new CookieJar(),
    authorizeUrl,
    redirectUri,
    flag('--deny') ? 'deny' : 'approve',
  );
  const forged = new URL(callback);
  forged.searchParams.set('state', `${callback.searchParams.get('state')}-tampered`);
  if (flag('--tamper-state')) {
    await deliver(forged.href);
  } else if (flag('--forge-first')) {
    await deliver(forged.href);
    await deliver(callback.href);
  } else {
    const replay = option('--replay-first');
    if (replay) await deliver(readFileSync(replay, 'utf8'));
    await deliver(callback.href);
    const save = option('--save-callback');
    if (save) writeFileSync(save, callback.href);
  }
} catch (err) {
  console.error(`user-agent: ${err.message}`);
  process.exit(1);
}

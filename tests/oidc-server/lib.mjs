// Shared HTTP helpers for the scripted clients (drive.mjs, user-agent.mjs): a cookie jar,
// one-request fetch without redirect following, a form scraper, and the login/consent walk.

// ---------------------------------------------------------------- cookie jar (RFC 6265 subset)
export class CookieJar {
  constructor() { this.cookies = new Map(); } // key `${path}\0${name}`

  store(url, res) {
    for (const line of res.headers.getSetCookie()) {
      const [pair, ...attrs] = line.split(';').map((s) => s.trim());
      const eq = pair.indexOf('=');
      const name = pair.slice(0, eq);
      const value = pair.slice(eq + 1);
      let path = new URL(url).pathname.replace(/\/[^/]*$/, '') || '/';
      let expired = false;
      for (const a of attrs) {
        const [k, v = ''] = a.split('=');
        const key = k.toLowerCase();
        if (key === 'path') path = v;
        if (key === 'expires' && Date.parse(v) <= Date.now()) expired = true;
        if (key === 'max-age' && Number(v) <= 0) expired = true;
      }
      const id = `${path}\0${name}`;
      if (expired) this.cookies.delete(id);
      else this.cookies.set(id, { name, value, path });
    }
  }

  header(url) {
    const { pathname } = new URL(url);
    const matching = [...this.cookies.values()].filter(({ path }) => pathname === path
      || (pathname.startsWith(path) && (path.endsWith('/') || pathname[path.length] === '/')));
    matching.sort((a, b) => b.path.length - a.path.length);
    return matching.map(({ name, value }) => `${name}=${value}`).join('; ');
  }
}

// One HTTP request, no redirect following; logs method/url/status/location/cookies set.
export async function http(jar, method, url, { form, headers = {} } = {}) {
  const h = { ...headers };
  const cookie = jar?.header(url);
  if (cookie) h.cookie = cookie;
  let body;
  if (form) {
    body = new URLSearchParams(form).toString();
    h['content-type'] = 'application/x-www-form-urlencoded';
  }
  const res = await fetch(url, {
    method, headers: h, body, redirect: 'manual',
  });
  jar?.store(url, res);
  const text = await res.text();
  const loc = res.headers.get('location');
  const set = res.headers.getSetCookie().map((c) => {
    const [pair, ...attrs] = c.split(';').map((s) => s.trim());
    const p = attrs.find((a) => a.toLowerCase().startsWith('path=')) || '';
    return `${pair.split('=')[0]}(${p})`;
  });
  const shown = url.replace(/(code|refresh_token|access_token|device_code)=[^&]+/g, '$1=<redacted>');
  console.log(`  ${method} ${shown}${form ? ` form{${Object.keys(form).join(',')}}` : ''}`
    + ` -> ${res.status}${loc ? ` Location: ${loc.replace(/code=[^&]+/, 'code=<redacted>')}` : ''}`
    + `${set.length ? ` Set-Cookie: ${set.join(' ')}` : ''}`);
  return {
    status: res.status, location: loc, text, headers: res.headers,
  };
}

export function parseForms(html, base) {
  const forms = [];
  for (const m of html.matchAll(/<form\b([^>]*)>([\s\S]*?)<\/form>/g)) {
    const action = /action="([^"]*)"/.exec(m[1])?.[1];
    const method = /method="([^"]*)"/.exec(m[1])?.[1] || 'get';
    const fields = {};
    const names = [];
    for (const i of m[2].matchAll(/<input\b([^>]*)>/g)) {
      const name = /name="([^"]*)"/.exec(i[1])?.[1];
      if (!name) continue;
      names.push(name);
      fields[name] = /value="([^"]*)"/.exec(i[1])?.[1] ?? '';
    }
    forms.push({
      action: new URL(action, base).href, method: method.toUpperCase(), fields, names,
    });
  }
  return forms;
}


// Walks oidc-provider's development login and consent pages from `url` (an authorize URL or
// device interaction) until a redirect to `redirectUri`; returns that callback URL.
// decision: 'approve' | 'deny' (abort at consent) | 'deny-login' (abort at login).
export async function walkToCallback(jar, startUrl, redirectUri, decision = 'approve') {
  let url = startUrl;
  // Without a known redirect URI (a pushed authorization request's URL carries only
  // client_id and request_uri), the callback is where a browser would go next: the first
  // redirect that leaves the authorization server's origin.
  const serverOrigin = new URL(startUrl).origin;
  const isCallback = (candidate) => (redirectUri
    ? candidate.startsWith(redirectUri.split('?')[0])
    : new URL(candidate).origin !== serverOrigin);
  for (let hops = 0; hops < 12; hops += 1) {
    if (isCallback(url)) {
      return new URL(url);
    }
    const r = await http(jar, 'GET', url);
    if (r.status === 303 || r.status === 302) {
      url = new URL(r.location, url).href;
      continue; // eslint-disable-line no-continue
    }
    if (r.status !== 200) throw new Error(`unexpected ${r.status}: ${r.text.slice(0, 300)}`);
    const forms = parseForms(r.text, url);
    const form = forms[0];
    console.log(`    page form: ${form.method} ${form.action} fields=${JSON.stringify(form.names)} hidden=${JSON.stringify(form.fields)}`);
    const abortHref = /href="([^"]*\/abort)"/.exec(r.text)?.[1];
    if (abortHref) console.log(`    page abort link: ${abortHref}`);
    if (form.fields.prompt === 'login') {
      if (decision === 'deny-login') {
        url = new URL(abortHref, url).href;
        continue; // eslint-disable-line no-continue
      }
      const p = await http(jar, 'POST', form.action, { form: { prompt: 'login', login: 'alice', password: 'anything' } });
      url = new URL(p.location, form.action).href;
    } else if (form.fields.prompt === 'consent') {
      if (decision === 'deny') {
        url = new URL(abortHref, url).href;
        continue; // eslint-disable-line no-continue
      }
      const p = await http(jar, 'POST', form.action, { form: { prompt: 'consent' } });
      url = new URL(p.location, form.action).href;
    } else {
      throw new Error(`unknown page: ${r.text.slice(0, 300)}`);
    }
  }
  throw new Error('too many hops');
}

// Approves (or, with decision 'deny', aborts) a device authorization (RFC 8628) through
// oidc-provider's development pages, starting from the verification URI (complete or not).
// Returns the title of the final page.
export async function approveDevice(jar, verificationUrl, decision = 'approve') {
  const userCode = new URL(verificationUrl).searchParams.get('user_code');
  let url = verificationUrl;
  for (let hops = 0; hops < 16; hops += 1) {
    const r = await http(jar, 'GET', url);
    if (r.status === 303 || r.status === 302) {
      url = new URL(r.location, url).href;
      continue; // eslint-disable-line no-continue
    }
    const [form] = parseForms(r.text, url);
    if (!form) return /<h1>([^<]*)<\/h1>/.exec(r.text)?.[1] ?? `HTTP ${r.status}`;
    let payload;
    if (form.names.includes('confirm') || (form.names.includes('user_code') && form.fields.user_code)) {
      // The confirmation page: user code filled in; confirm or abort.
      payload = { ...form.fields };
      delete payload.confirm;
      payload[decision === 'deny' ? 'abort' : 'confirm'] = 'yes';
    } else if (form.names.includes('user_code')) {
      payload = { xsrf: form.fields.xsrf, user_code: userCode };
    } else if (form.fields.prompt === 'login') {
      payload = { prompt: 'login', login: 'device-user', password: 'x' };
    } else {
      payload = { prompt: 'consent' };
    }
    const p = await http(jar, 'POST', form.action, { form: payload });
    if (p.status === 303 || p.status === 302) {
      url = new URL(p.location, form.action).href;
    } else {
      const [next] = parseForms(p.text, form.action);
      if (!next) return /<h1>([^<]*)<\/h1>/.exec(p.text)?.[1] ?? `HTTP ${p.status}`;
      // A page with another form (the confirmation step): submit it on the next round.
      const c = await http(jar, 'POST', next.action, {
        form: (() => {
          const f = { ...next.fields };
          delete f.confirm;
          f[decision === 'deny' ? 'abort' : 'confirm'] = 'yes';
          return f;
        })(),
      });
      if (c.status === 303 || c.status === 302) url = new URL(c.location, next.action).href;
      else return /<h1>([^<]*)<\/h1>/.exec(c.text)?.[1] ?? `HTTP ${c.status}`;
    }
  }
  throw new Error('too many hops in the device approval');
}

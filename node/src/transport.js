// The main thread's HTTP transport: what the component's `transport.send` becomes once the
// worker has checked the origin against the allow-list. The same policy as the wasmtime
// host (host-example/src/transport.rs):
// - redirects are never followed (node:http never follows them): a 3xx is the response;
// - connect and total timeouts (`timeout`);
// - a cap on the response body (`response-too-large`, never a truncated body), on the size of
//   the response head (`other`), and on its header count (`other`);
// - no proxy from the environment (node:http reads none), and one typed error per kind of
//   failure. Messages name the origin and the cause, never a header value or a body.

import http from 'node:http';
import https from 'node:https';

import { ConnectorError, methodName, originOf } from './records.js';

export const DEFAULT_TIMEOUTS = Object.freeze({ connectMs: 10_000, totalMs: 30_000 });
export const DEFAULT_LIMITS = Object.freeze({
  // Token responses are a few KB; API responses can be larger. 8 MiB keeps a hostile server
  // from exhausting the host's (and the component's) memory.
  maxResponseBytes: 8 * 1024 * 1024,
  maxHeaderBytes: 64 * 1024,
  // The wasmtime host's HTTP client refuses more than 128 response headers.
  maxResponseHeaders: 128,
});

const USER_AGENT = 'oauth-connector-node/0.4.0';

const err = (tag, val) => ({ err: val === undefined ? { tag } : { tag, val } });

const CONNECTION_CODES = new Set(['ECONNREFUSED', 'ECONNRESET', 'ENOTFOUND', 'EAI_AGAIN',
  'EHOSTUNREACH', 'ENETUNREACH', 'EPIPE', 'ECONNABORTED', 'EADDRNOTAVAIL', 'UND_ERR_SOCKET']);

function classify(error, origin, limits) {
  const code = error?.code ?? '';
  if (code === 'ETIMEDOUT' || error?.timeout) return err('timeout');
  if (code === 'HPE_HEADER_OVERFLOW') return err('other', `${origin}: response headers over the host's limit of ${limits.maxHeaderBytes} bytes`);
  if (CONNECTION_CODES.has(code)) return err('connection-failed', `${origin}: ${code}`);
  if (/^(ERR_TLS|ERR_SSL|CERT_|UNABLE_TO_|DEPTH_ZERO|SELF_SIGNED|ERR_OSSL)/.test(code)
    || /certificate|tls|ssl/i.test(String(error?.message))) {
    return err('tls', `${origin}: ${code || 'TLS failure'}`);
  }
  if (code.startsWith('HPE_')) return err('other', `${origin}: malformed response (${code})`);
  return err('other', `${origin}: ${code || error?.message || 'request failed'}`);
}

/**
 * `value`, a positive integer (a time in ms, a size, a count), or `fallback` when absent
 * (`undefined` or `null`). Anything else (NaN, Infinity, 0, a negative or fractional number, a
 * string) would silently disable a cap or make a wait endless: `invalid-argument` naming the
 * field (never its value).
 */
export function positiveInteger(field, value, fallback) {
  const v = value ?? fallback;
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v <= 0) {
    throw new ConnectorError('invalid-argument', { field }, `${field}: expected a positive integer`);
  }
  return v;
}

/** `defaults` overridden field by field by `given` (absent fields keep their default). */
export function mergeOptions(name, defaults, given) {
  if (given !== undefined && given !== null && (typeof given !== 'object' || Array.isArray(given))) {
    throw new ConnectorError('invalid-argument', { field: name }, `${name}: expected an object`);
  }
  const out = {};
  for (const [key, fallback] of Object.entries(defaults)) {
    out[key] = positiveInteger(`${name}.${key}`, given?.[key], fallback);
  }
  return out;
}

/**
 * A transport with the policy above. `send(request)` resolves to `{ok: response}` or
 * `{err: transportError}` (the WIT records as jco represents them); it never rejects.
 */
export function httpTransport({ timeouts = {}, limits = {} } = {}) {
  const t = mergeOptions('timeouts', DEFAULT_TIMEOUTS, timeouts);
  const l = mergeOptions('limits', DEFAULT_LIMITS, limits);
  // Connection reuse is safe: the allow-list is checked per request, before this runs.
  const agents = {
    'http:': new http.Agent({ keepAlive: true }),
    'https:': new https.Agent({ keepAlive: true }),
  };

  function send(request) {
    let url;
    try {
      url = new URL(request.url);
    } catch {
      return Promise.resolve(err('invalid-request', 'bad URL: it does not parse'));
    }
    if (url.protocol !== 'http:' && url.protocol !== 'https:') {
      return Promise.resolve(err('invalid-request', `bad URL: unsupported scheme ${url.protocol}`));
    }
    // node:http would send a URL's user:password as Basic authentication: refused instead.
    if (url.username || url.password) {
      return Promise.resolve(err('invalid-request', 'bad URL: it carries user information'));
    }
    const origin = originOf(url);
    const headers = {};
    try {
      for (const { name, value } of request.headers) {
        http.validateHeaderName(name);
        http.validateHeaderValue(name, value);
        const key = name.toLowerCase();
        if (key in headers) headers[key] = [].concat(headers[key], value);
        else headers[key] = value;
      }
    } catch (error) {
      return Promise.resolve(err('invalid-request', `bad header: ${error.code ?? 'invalid'}`));
    }
    const body = Buffer.from(request.body.buffer, request.body.byteOffset, request.body.byteLength);
    if (body.length > 0 && !('content-length' in headers) && !('transfer-encoding' in headers)) {
      headers['content-length'] = String(body.length);
    }
    if (!('user-agent' in headers)) headers['user-agent'] = USER_AGENT;

    return new Promise((resolve) => {
      let settled = false;
      let req;
      const finish = (outcome) => {
        if (settled) return;
        settled = true;
        clearTimeout(total);
        resolve(outcome);
      };
      const total = setTimeout(() => {
        finish(err('timeout'));
        req?.destroy();
      }, t.totalMs);
      try {
        req = (url.protocol === 'https:' ? https : http).request(url, {
          method: methodName(request.method),
          headers,
          agent: agents[url.protocol],
          maxHeaderSize: l.maxHeaderBytes,
          // Certificates are always verified (the default, stated so no agent can change it).
          rejectUnauthorized: true,
        });
      } catch (error) {
        finish(err('invalid-request', `bad request: ${error.code ?? 'invalid'}`));
        return;
      }
      req.on('socket', (socket) => {
        if (!socket.connecting) return;
        const connect = setTimeout(() => {
          finish(err('timeout'));
          req.destroy();
        }, t.connectMs);
        socket.once(url.protocol === 'https:' ? 'secureConnect' : 'connect', () => clearTimeout(connect));
        socket.once('close', () => clearTimeout(connect));
      });
      req.on('error', (error) => finish(classify(error, origin, l)));
      req.on('response', (res) => {
        if (res.rawHeaders.length / 2 > l.maxResponseHeaders) {
          finish(err('other', `${origin}: response has more than ${l.maxResponseHeaders} headers`));
          req.destroy();
          return;
        }
        const tooLarge = () => {
          finish(err('response-too-large', BigInt(l.maxResponseBytes)));
          req.destroy();
        };
        const declared = Number(res.headers['content-length']);
        if (Number.isFinite(declared) && declared > l.maxResponseBytes) {
          tooLarge();
          return;
        }
        const chunks = [];
        let length = 0;
        res.on('data', (chunk) => {
          length += chunk.length;
          if (length > l.maxResponseBytes) tooLarge();
          else chunks.push(chunk);
        });
        res.on('error', (error) => finish(classify(error, origin, l)));
        res.on('aborted', () => finish(err('connection-failed', `${origin}: the response was cut off`)));
        res.on('end', () => {
          const list = [];
          for (let i = 0; i < res.rawHeaders.length; i += 2) {
            list.push({ name: res.rawHeaders[i].toLowerCase(), value: res.rawHeaders[i + 1] });
          }
          const bytes = Buffer.concat(chunks, length);
          finish({
            ok: {
              status: res.statusCode,
              headers: list,
              body: new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength),
            },
          });
        });
      });
      req.end(body);
    });
  }

  function close() {
    agents['http:'].destroy();
    agents['https:'].destroy();
  }

  return { send, close, timeouts: t, limits: l };
}

// Conversions between the library's JSON-safe records and jco's representation of the WIT
// records (camelCase fields, variants as {tag, val}, u64 as BigInt), and the typed error.
//
// Shared by the main thread and the worker; no IO.

/** The names of the WIT `error` variant's cases, plus the host's own. */
export const ERROR_CODES = Object.freeze([
  // The component's `error` variant (wit/types.wit).
  'server-said-no', 'reauthorization-required', 'server-unavailable', 'transport',
  'invalid-response', 'configuration', 'callback', 'discovery', 'signing',
  // The host's: the call did not complete (the component trapped, or a host import failed
  // unexpectedly; the instance was replaced), a sandbox limit stopped it (the worker was
  // replaced), the connector was closed, or an argument the library cannot convert.
  'trap', 'limit', 'closed', 'invalid-argument',
]);

/**
 * A typed failure. `code` is the case of the WIT `error` variant (`transport`,
 * `server-said-no`, `configuration`, ...) or one of the host's (`trap`, `closed`,
 * `invalid-argument`); `kind` the inner case where the payload is itself a variant
 * (`denied` for `transport`, `invalid-grant` for `server-said-no`, ...); `detail` the
 * payload, JSON-safe. Never carries a secret: the component scrubs what servers send, and
 * the host's messages name origins and fields, never values.
 */
export class ConnectorError extends Error {
  constructor(code, detail = null, message = undefined) {
    super(message ?? describe(code, detail));
    this.name = 'ConnectorError';
    this.code = code;
    this.kind = kindOf(code, detail);
    this.detail = detail;
  }

  toJSON() {
    return {
      name: this.name, code: this.code, kind: this.kind, detail: this.detail, message: this.message,
    };
  }
}

function kindOf(code, detail) {
  if (detail === null || typeof detail !== 'object') return null;
  switch (code) {
    case 'server-said-no':
    case 'reauthorization-required':
      return detail.code?.tag ?? null;
    case 'server-unavailable':
      return detail.error?.code?.tag ?? null;
    default:
      return typeof detail.tag === 'string' ? detail.tag : null;
  }
}

function describe(code, detail) {
  const kind = kindOf(code, detail);
  const val = detail && typeof detail === 'object' && 'val' in detail ? detail.val : undefined;
  const parts = [code];
  if (kind) parts.push(kind);
  if (val !== undefined && val !== null && typeof val !== 'object') parts.push(`(${val})`);
  if (typeof detail?.status === 'number') parts.push(`HTTP ${detail.status}`);
  if (typeof detail?.reason === 'string') parts.push(detail.reason);
  if (typeof detail?.description === 'string') parts.push(detail.description);
  if (typeof detail?.message === 'string') parts.push(detail.message);
  return parts.join(': ').replace(/: \(/, ' (');
}

/** Rebuilds a ConnectorError sent across the worker boundary. */
export function errorFromWire(wire) {
  return new ConnectorError(wire.code, wire.detail, wire.message);
}

/**
 * Deep copy with every BigInt turned into a Number (seconds and sizes fit in 2^53) and every
 * absent option (jco's `undefined`) into `null`, so that a record survives JSON unchanged.
 */
export function jsonSafe(value) {
  if (typeof value === 'bigint') return Number(value);
  if (value === undefined) return null;
  if (value === null || typeof value !== 'object') return value;
  if (ArrayBuffer.isView(value)) return value;
  if (Array.isArray(value)) return value.map(jsonSafe);
  const out = {};
  for (const [k, v] of Object.entries(value)) out[k] = jsonSafe(v);
  return out;
}

function kvList(value, field) {
  if (value === undefined || value === null) return [];
  if (Array.isArray(value)) {
    return value.map((entry) => {
      if (Array.isArray(entry) && entry.length === 2) return { name: String(entry[0]), value: String(entry[1]) };
      if (entry && typeof entry.name === 'string') return { name: entry.name, value: String(entry.value ?? '') };
      throw new ConnectorError('invalid-argument', { field }, `${field}: expected {name, value} entries`);
    });
  }
  if (typeof value === 'object') {
    return Object.entries(value).map(([name, v]) => ({ name, value: String(v) }));
  }
  throw new ConnectorError('invalid-argument', { field }, `${field}: expected a list or an object`);
}

/** A list of strings (absent: empty); anything else is `invalid-argument` naming the field. */
export function stringList(value, field) {
  if (value === undefined || value === null) return [];
  if (!Array.isArray(value) || !value.every((v) => typeof v === 'string')) {
    throw new ConnectorError('invalid-argument', { field }, `${field}: expected an array of strings`);
  }
  return [...value];
}

/** http(s) origins, normalised (scheme://host:port); anything else names the field. */
export function originList(value, field) {
  if (value === undefined || value === null) return [];
  if (!Array.isArray(value)) {
    throw new ConnectorError('invalid-argument', { field }, `${field}: expected an array of http(s) origins`);
  }
  return value.map((o) => {
    const origin = typeof o === 'string' ? originOf(o) : null;
    if (!origin) throw new ConnectorError('invalid-argument', { field }, `${field}: expected http(s) origins`);
    return origin;
  });
}

const EXTRA_KINDS = ['codeExchange', 'refresh', 'clientCredentials', 'device', 'tokenExchange',
  'jwtBearer', 'pushedAuthorization'];

function requestExtras(value, field) {
  const out = {};
  for (const kind of EXTRA_KINDS) {
    const extras = value?.[kind] ?? {};
    out[kind] = {
      params: kvList(extras.params, `${field}.${kind}.params`),
      headers: kvList(extras.headers, `${field}.${kind}.headers`),
    };
  }
  return out;
}

/**
 * A connection's configuration as the library takes it (every field but `profile` and
 * `client.clientId` optional) turned into the WIT `connection-config` record. `profile` is
 * left as given: the worker parses a JSON profile with the component first.
 */
export function connectionConfig(config) {
  if (!config || typeof config !== 'object') {
    throw new ConnectorError('invalid-argument', { field: 'config' }, 'config: expected an object');
  }
  const client = config.client ?? {};
  if (typeof client.clientId !== 'string') {
    throw new ConnectorError('invalid-argument', { field: 'client.clientId' }, 'client.clientId: expected a string');
  }
  return {
    profile: config.profile,
    client: {
      clientId: client.clientId,
      clientSecret: client.clientSecret ?? null,
      authMethod: client.authMethod ?? null,
    },
    redirectUri: config.redirectUri ?? null,
    scopes: stringList(config.scopes, 'scopes'),
    authorizeParams: kvList(config.authorizeParams, 'authorizeParams'),
    tokenRequests: requestExtras(config.tokenRequests, 'tokenRequests'),
    variables: kvList(config.variables, 'variables'),
    offlineAccess: Boolean(config.offlineAccess),
    resources: stringList(config.resources, 'resources'),
    dpop: Boolean(config.dpop),
  };
}

const METHODS = ['get', 'head', 'post', 'put', 'patch', 'delete', 'options'];

/** An HTTP request as the library takes it ({method: 'GET', url, headers, body}). */
export function httpRequest(request) {
  if (!request || typeof request.url !== 'string') {
    throw new ConnectorError('invalid-argument', { field: 'request.url' }, 'request.url: expected a string');
  }
  const name = String(request.method ?? 'GET');
  const lower = name.toLowerCase();
  const method = METHODS.includes(lower) && name === name.toUpperCase()
    ? { tag: lower } : { tag: 'other', val: name };
  let body = request.body ?? new Uint8Array(0);
  if (typeof body === 'string') body = new TextEncoder().encode(body);
  if (!(body instanceof Uint8Array)) {
    throw new ConnectorError('invalid-argument', { field: 'request.body' }, 'request.body: expected a string or bytes');
  }
  return {
    method, url: request.url, headers: kvList(request.headers, 'request.headers'), body,
  };
}

/** The method's name as sent on the wire. */
export function methodName(method) {
  return method.tag === 'other' ? method.val : method.tag.toUpperCase();
}

/** The origin (scheme, host, port) of an http(s) URL, or null. */
export function originOf(url) {
  let parsed;
  try {
    parsed = url instanceof URL ? url : new URL(url);
  } catch {
    return null;
  }
  if (parsed.protocol !== 'http:' && parsed.protocol !== 'https:') return null;
  if (!parsed.hostname) return null;
  const port = parsed.port || (parsed.protocol === 'https:' ? '443' : '80');
  return `${parsed.protocol}//${parsed.hostname.toLowerCase()}:${port}`;
}

/** The URLs of a profile record's endpoints and API base URL (the default allow-list). */
export function profileUrls(profile) {
  return [
    profile.tokenUrl, profile.authorizeUrl, profile.issuer, profile.refreshUrl,
    profile.revocationUrl, profile.introspectionUrl, profile.deviceAuthorizationUrl,
    profile.pushedAuthorizationRequestUrl, profile.registrationUrl, profile.apiBaseUrl,
    profile.userinfoUrl,
  ].filter((url) => typeof url === 'string');
}

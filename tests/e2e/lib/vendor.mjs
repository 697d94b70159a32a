// Small local "vendor" APIs for the action tests: each is a node:http server on 127.0.0.1, port 0,
// that records every request it received so a test can assert on what the app actually got.
//
// Every vendor resolves to an object with at least:
//   url            'http://127.0.0.1:PORT'
//   localhostUrl   'http://localhost:PORT' (the same server under another host name: localhost
//                  resolves to 127.0.0.1 here, see /etc/hosts)
//   port
//   requests       every request so far, oldest first: { method, url (path and query as sent),
//                  pathname, query (URLSearchParams), headers (lower-case names), body (string),
//                  json (parsed body or null), at (Date.now()) }
//   count(pred?)   how many requests (matching pred) so far
//   last()         the latest request (or undefined)
//   close()        closes the server and every connection (pending answers are dropped)
//
// startCrudVendor({ secrets = [] })
//   A JSON API that authenticates every call with one of `secrets` (addSecret(s) adds one), given
//   as 'X-Api-Key: <s>', 'Authorization: Bearer <s>' or the query parameter api_key=<s>;
//   anything else is 401 {error: 'unauthorized'}. Routes match at the end of the path, so a
//   connector's base path (/v1, /v2) does not matter:
//     GET  …/contacts                 {items: [...], query: {…the query…}}
//     POST …/contacts                 201 the contact {id, ...body}
//     GET|PUT|PATCH|DELETE …/contacts/:id   the contact (404 when unknown); PUT replaces,
//                                     PATCH merges, DELETE removes ({id, deleted: true})
//     POST …/contacts/:id/rename      the contact with body.name
//     POST …/payments                 201 {id, ...body}; 402 {error: 'card_declined'} when
//                                     body.decline is true
//     GET  …/marker/:name             {marker: name}
//     ANY  …/echo                     {method, path, query, body (parsed)}
//     ANY  …/echo-auth                {credential: <the credential as received>} — an app that
//                                     echoes the secret it got, for the redaction tests
//     anything else                   404 {error: 'not_found'}
//
// startFlakyVendor({ failures = 1, status = 429, retryAfter = '1' })
//   The first `failures` requests to each distinct path answer `status` with
//   'Retry-After: <retryAfter>' (omitted when retryAfter is null); later ones 200
//   {ok: true, attempt: n, path}. attempts(pathname) counts the requests to one path.
//   Set .failures / .status / .retryAfter to change the behaviour for paths not seen yet.
//
// startRefreshVendor({ clientId, clientSecret })
//   An OAuth token endpoint (POST /token, grant_type=refresh_token; the client authenticates
//   with HTTP Basic or client_id/client_secret in the body) and an API under /api that accepts
//   only the access token issued by the latest refresh: the token a test imports
//   (importedAccessToken) is never valid, so the first call answers 401 until agentgate
//   refreshes. GET /api/me → {ok: true, login: 'alice', path}.
//     tokenUrl, apiBaseUrl ('…/api'), importedAccessToken, refreshToken (to import with it)
//     stats() → {refreshes, failedRefreshes, unauthorized, ok}
//     issuedTokens() → every access and refresh token value (for leak checks)
//     rejectAll = true makes the API answer 401 whatever the token (a refresh does not help).
//
// startSlowVendor({ delayMs = 5000 })
//   Answers 200 {ok: true, path} after .delayMs milliseconds (settable).
//
// startRedirectVendor({ location = '/landing', status = 302 })
//   GET …/go answers `status` with 'Location: <.location>' (settable; a function of the request
//   is called). Anything else answers 200 {landed: true, path}.
//
// startRecorder({ status = 200 })
//   Answers every request with `status` and {ok: true}: a webhook receiver or a landing page on
//   another port.

import { randomBytes } from 'node:crypto';
import http from 'node:http';

async function startRecording(handle) {
  const requests = [];
  const timers = new Set();
  const server = http.createServer((req, res) => {
    const chunks = [];
    req.on('data', (c) => chunks.push(c));
    req.on('end', () => {
      const body = Buffer.concat(chunks).toString('utf8');
      const u = new URL(req.url, 'http://vendor.invalid');
      let json = null;
      try { json = body ? JSON.parse(body) : null; } catch { json = null; }
      const entry = {
        method: req.method, url: req.url, pathname: u.pathname, query: u.searchParams,
        headers: req.headers, body, json, at: Date.now(),
      };
      requests.push(entry);
      Promise.resolve(handle(entry, res, { timers })).catch((err) => {
        if (!res.headersSent) send(res, 500, { error: String(err?.message ?? err) });
        else res.destroy();
      });
    });
  });
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = server.address().port;
  return {
    url: `http://127.0.0.1:${port}`,
    localhostUrl: `http://localhost:${port}`,
    port,
    requests,
    count: (pred = () => true) => requests.filter(pred).length,
    last: () => requests.at(-1),
    close() {
      for (const t of timers) clearTimeout(t);
      server.closeAllConnections();
      return new Promise((resolve) => server.close(() => resolve()));
    },
  };
}

function send(res, status, body, headers = {}) {
  if (res.destroyed) return;
  res.writeHead(status, { 'Content-Type': 'application/json', ...headers });
  res.end(body === undefined ? '' : JSON.stringify(body));
}

const queryObject = (q) => {
  const out = {};
  for (const k of new Set(q.keys())) {
    const all = q.getAll(k);
    out[k] = all.length === 1 ? all[0] : all;
  }
  return out;
};

export async function startCrudVendor({ secrets = [] } = {}) {
  const accepted = new Set(secrets);
  const contacts = new Map();
  let next = 1;
  const credentialOf = (r) => {
    if (r.headers['x-api-key']) return r.headers['x-api-key'];
    const m = /^Bearer (.+)$/i.exec(r.headers.authorization ?? '');
    if (m) return m[1];
    return r.query.get('api_key');
  };
  const vendor = await startRecording((r, res) => {
    const credential = credentialOf(r);
    if (!credential || !accepted.has(credential)) {
      send(res, 401, { error: 'unauthorized' }, { 'WWW-Authenticate': 'Bearer' });
      return;
    }
    const p = r.pathname;
    let m;
    if (/\/echo-auth$/.test(p)) {
      send(res, 200, { credential });
    } else if (/\/echo$/.test(p)) {
      send(res, 200, { method: r.method, path: p, query: queryObject(r.query), body: r.json });
    } else if ((m = /\/marker\/([^/]+)$/.exec(p))) {
      send(res, 200, { marker: decodeURIComponent(m[1]) });
    } else if (/\/payments$/.test(p) && r.method === 'POST') {
      if (r.json?.decline === true) send(res, 402, { error: 'card_declined' });
      else send(res, 201, { id: `pay_${next++}`, ...(r.json ?? {}) });
    } else if (/\/contacts$/.test(p)) {
      if (r.method === 'GET') {
        send(res, 200, { items: [...contacts.values()], query: queryObject(r.query) });
      } else if (r.method === 'POST') {
        const c = { ...(r.json ?? {}), id: `c${next++}` };
        contacts.set(c.id, c);
        send(res, 201, c);
      } else {
        send(res, 405, { error: 'method_not_allowed' });
      }
    } else if ((m = /\/contacts\/([^/]+)\/rename$/.exec(p)) && r.method === 'POST') {
      const id = decodeURIComponent(m[1]);
      const c = { ...(contacts.get(id) ?? { id }), name: r.json?.name };
      contacts.set(id, c);
      send(res, 200, c);
    } else if ((m = /\/contacts\/([^/]+)$/.exec(p))) {
      const id = decodeURIComponent(m[1]);
      const have = contacts.get(id);
      if (r.method === 'GET') {
        if (have) send(res, 200, have); else send(res, 404, { error: 'not_found', id });
      } else if (r.method === 'PUT') {
        const c = { ...(r.json ?? {}), id };
        contacts.set(id, c);
        send(res, 200, c);
      } else if (r.method === 'PATCH') {
        const c = { ...(have ?? { id }), ...(r.json ?? {}), id };
        contacts.set(id, c);
        send(res, 200, c);
      } else if (r.method === 'DELETE') {
        contacts.delete(id);
        send(res, 200, { id, deleted: true });
      } else {
        send(res, 405, { error: 'method_not_allowed' });
      }
    } else {
      send(res, 404, { error: 'not_found', path: p });
    }
  });
  vendor.addSecret = (s) => { accepted.add(s); };
  vendor.contacts = contacts;
  return vendor;
}

export async function startFlakyVendor({ failures = 1, status = 429, retryAfter = '1' } = {}) {
  const perPath = new Map(); // pathname -> { seen, failures, status, retryAfter }
  const vendor = await startRecording((r, res) => {
    let entry = perPath.get(r.pathname);
    if (!entry) {
      entry = { seen: 0, failures: vendor.failures, status: vendor.status, retryAfter: vendor.retryAfter };
      perPath.set(r.pathname, entry);
    }
    entry.seen += 1;
    if (entry.seen <= entry.failures) {
      const headers = entry.retryAfter === null || entry.retryAfter === undefined
        ? {} : { 'Retry-After': String(entry.retryAfter) };
      send(res, entry.status, { error: 'slow_down', attempt: entry.seen }, headers);
      return;
    }
    send(res, 200, { ok: true, attempt: entry.seen, path: r.pathname });
  });
  vendor.failures = failures;
  vendor.status = status;
  vendor.retryAfter = retryAfter;
  vendor.attempts = (pathname) => vendor.requests.filter((r) => r.pathname === pathname).length;
  return vendor;
}

export async function startRefreshVendor({ clientId = 'refresh-client', clientSecret } = {}) {
  const token = (prefix) => `${prefix}-${randomBytes(18).toString('base64url')}`;
  const importedAccessToken = token('stale-access');
  const refreshToken = token('refresh');
  const issued = [importedAccessToken, refreshToken];
  const stats = { refreshes: 0, failedRefreshes: 0, unauthorized: 0, ok: 0 };
  let current = null; // the one valid access token
  const vendor = await startRecording((r, res) => {
    if (r.pathname === '/token') {
      const form = new URLSearchParams(r.body);
      let id = form.get('client_id');
      let secret = form.get('client_secret');
      const basic = /^Basic (\S+)$/i.exec(r.headers.authorization ?? '');
      if (basic) {
        const decoded = Buffer.from(basic[1], 'base64').toString('utf8');
        const i = decoded.indexOf(':');
        id = decodeURIComponent(decoded.slice(0, i));
        secret = decodeURIComponent(decoded.slice(i + 1));
      }
      if (r.method !== 'POST' || id !== clientId || (clientSecret !== undefined && secret !== clientSecret)) {
        stats.failedRefreshes += 1;
        send(res, 401, { error: 'invalid_client' });
        return;
      }
      if (form.get('grant_type') !== 'refresh_token' || form.get('refresh_token') !== refreshToken) {
        stats.failedRefreshes += 1;
        send(res, 400, { error: 'invalid_grant' });
        return;
      }
      stats.refreshes += 1;
      current = token('access');
      issued.push(current);
      send(res, 200, { access_token: current, token_type: 'Bearer', expires_in: 3600 },
        { 'Cache-Control': 'no-store' });
      return;
    }
    if (!r.pathname.startsWith('/api/')) {
      send(res, 404, { error: 'not_found' });
      return;
    }
    const m = /^Bearer (\S+)$/i.exec(r.headers.authorization ?? '');
    if (vendor.rejectAll || !m || current === null || m[1] !== current) {
      stats.unauthorized += 1;
      send(res, 401, { error: 'invalid_token' }, { 'WWW-Authenticate': 'Bearer error="invalid_token"' });
      return;
    }
    stats.ok += 1;
    send(res, 200, { ok: true, login: 'alice', path: r.pathname });
  });
  vendor.rejectAll = false;
  vendor.tokenUrl = `${vendor.url}/token`;
  vendor.authorizeUrl = `${vendor.url}/authorize`;
  vendor.apiBaseUrl = `${vendor.url}/api`;
  vendor.clientId = clientId;
  vendor.importedAccessToken = importedAccessToken;
  vendor.refreshToken = refreshToken;
  vendor.currentAccessToken = () => current;
  vendor.stats = () => ({ ...stats });
  vendor.issuedTokens = () => [...issued];
  return vendor;
}

export async function startSlowVendor({ delayMs = 5000 } = {}) {
  const vendor = await startRecording((r, res, { timers }) => new Promise((resolve) => {
    const t = setTimeout(() => {
      timers.delete(t);
      send(res, 200, { ok: true, path: r.pathname });
      resolve();
    }, vendor.delayMs);
    timers.add(t);
  }));
  vendor.delayMs = delayMs;
  return vendor;
}

export async function startRedirectVendor({ location = '/landing', status = 302 } = {}) {
  const vendor = await startRecording((r, res) => {
    if (/\/go$/.test(r.pathname)) {
      const where = typeof vendor.location === 'function' ? vendor.location(r) : vendor.location;
      res.writeHead(vendor.status, { Location: where, 'Content-Type': 'application/json' });
      res.end(JSON.stringify({ redirect: where }));
      return;
    }
    send(res, 200, { landed: true, path: r.pathname });
  });
  vendor.location = location;
  vendor.status = status;
  return vendor;
}

export async function startRecorder({ status = 200 } = {}) {
  const vendor = await startRecording((r, res) => send(res, vendor.status, { ok: true }));
  vendor.status = status;
  return vendor;
}

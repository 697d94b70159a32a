// Every error code of the catalogue that a client can reach, each in the one error shape, with a
// docs URL that resolves on the same server to a page naming the code.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import {
  startServer, api, registerAgent, signIn, uniqueEmail, rawHttp, parseRawResponse,
} from './lib/server.mjs';
import { expectError } from './lib/expect.mjs';

const ALL_CODES = [
  'unauthorized', 'forbidden', 'not_found', 'missing_fields', 'missing_params', 'invalid_email',
  'invalid_name', 'agent_not_found', 'permission_not_found', 'rate_limited', 'server_error',
  'invalid_json', 'invalid_field', 'invalid_expires_in', 'invalid_token', 'method_not_allowed',
  'payload_too_large', 'headers_too_large', 'bad_request', 'conflict', 'unavailable',
];
const MAX_BODY = 4096;

let srv;
let A; let B; // agents
let alice; let bob; // sessions (neither is admin: an admin is named and never signs in)
const seen = new Set();

before(async () => {
  srv = await startServer({
    args: ['--max-body', String(MAX_BODY), '--admin-email', 'root-admin@example.com'],
  });
  A = await registerAgent(srv.url);
  B = await registerAgent(srv.url);
  alice = await signIn(srv.url, uniqueEmail('alice'));
  bob = await signIn(srv.url, uniqueEmail('bob'));
});
after(async () => {
  if (srv) assert.equal(await srv.stop(), 0);
});

// Asserts the error shape and that its docs URL resolves on the same server to HTML naming it.
async function expectCode(res, status, code, opts = {}) {
  const body = expectError(res, status, code, { url: srv.url, ...opts });
  const docsUrl = new URL(body.docs);
  assert.equal(docsUrl.origin, new URL(srv.url).origin, 'docs URL points at this server');
  assert.equal(docsUrl.hash, `#${code}`);
  const page = await fetch(`${srv.url}${docsUrl.pathname}${docsUrl.search}`);
  assert.equal(page.status, 200, `GET ${body.docs}`);
  assert.match(page.headers.get('content-type') ?? '', /^text\/html/);
  const html = await page.text();
  assert.ok(html.includes(code), `${docsUrl.pathname} names ${code}`);
  seen.add(code);
  return body;
}

const check = (agent, action = 'book_flight', asAgent = agent) => api(srv.url, 'GET',
  `/permission/check?agent_id=${encodeURIComponent(agent.agent_id)}&action=${action}`, { bearer: asAgent.secret });

test('unauthorized: check without bearer, with an unknown secret; grant without session', async () => {
  await expectCode(await api(srv.url, 'GET', `/permission/check?agent_id=${A.agent_id}&action=x`), 401, 'unauthorized');
  await expectCode(await api(srv.url, 'GET', `/permission/check?agent_id=${A.agent_id}&action=x`,
    { bearer: `sk_ap_${'0'.repeat(64)}` }), 401, 'unauthorized');
  await expectCode(await api(srv.url, 'POST', '/permission/grant',
    { body: { agent_id: A.agent_id, action: 'x' } }), 401, 'unauthorized');
  await expectCode(await api(srv.url, 'POST', '/permission/grant',
    { cookie: 'not-a-session', body: { agent_id: A.agent_id, action: 'x' } }), 401, 'unauthorized');
  await expectCode(await api(srv.url, 'GET', `/agent/${A.agent_id}`), 401, 'unauthorized');
  await expectCode(await api(srv.url, 'GET', '/auth/session'), 401, 'unauthorized');
  await expectCode(await api(srv.url, 'GET', '/permissions'), 401, 'unauthorized');
});

test('forbidden: another agent\'s secret', async () => {
  await expectCode(await check(A, 'book_flight', B), 403, 'forbidden');
  await expectCode(await api(srv.url, 'POST', '/permission/check',
    { bearer: B.secret, body: { agent_id: A.agent_id, action: 'x' } }), 403, 'forbidden');
  await expectCode(await api(srv.url, 'GET', `/agent/${A.agent_id}`, { bearer: B.secret }), 403, 'forbidden');
});

test('forbidden: revoking someone else\'s grant (both forms); the grant stays', async () => {
  const g = await api(srv.url, 'POST', '/permission/grant', { cookie: alice, body: { agent_id: A.agent_id, action: 'alice_only' } });
  assert.equal(g.status, 201, g.text);
  await expectCode(await api(srv.url, 'POST', '/permission/revoke',
    { cookie: bob, body: { permission_id: g.json.permission_id } }), 403, 'forbidden');
  await expectCode(await api(srv.url, 'POST', '/permission/revoke',
    { cookie: bob, body: { agent_id: A.agent_id, action: 'alice_only' } }), 403, 'forbidden');
  const c = await check(A, 'alice_only');
  assert.equal(c.status, 200);
  assert.equal(c.json.allowed, true, 'a refused revoke leaves the grant active');
});

test('forbidden: CSRF — a cookie POST with a foreign Origin or Sec-Fetch-Site cross-site', async () => {
  const body = { agent_id: A.agent_id, action: 'csrf_probe' };
  await expectCode(await api(srv.url, 'POST', '/permission/grant',
    { cookie: alice, body, headers: { Origin: 'https://evil.example' } }), 403, 'forbidden');
  await expectCode(await api(srv.url, 'POST', '/permission/grant',
    { cookie: alice, body, headers: { 'Sec-Fetch-Site': 'cross-site' } }), 403, 'forbidden');
  await expectCode(await api(srv.url, 'POST', '/permission/revoke',
    { cookie: alice, body, headers: { Origin: 'http://127.0.0.1:1' } }), 403, 'forbidden');
  await expectCode(await api(srv.url, 'POST', '/auth/logout',
    { cookie: alice, headers: { Origin: 'https://evil.example' } }), 403, 'forbidden');
  // Nothing was granted by the refused requests; the session survived the refused logout.
  const c = await check(A, 'csrf_probe');
  assert.equal(c.json.allowed, false);
  assert.equal((await api(srv.url, 'GET', '/auth/session', { cookie: alice })).status, 200);
  // Same origin (the server's own base URL) and no Origin at all are accepted.
  const same = await api(srv.url, 'POST', '/permission/grant',
    { cookie: alice, body, headers: { Origin: srv.url, 'Sec-Fetch-Site': 'same-origin' } });
  assert.equal(same.status, 201, same.text);
  const none = await api(srv.url, 'POST', '/permission/grant', { cookie: alice, body });
  assert.equal(none.status, 201, none.text);
});

test('not_found: unknown paths', async () => {
  await expectCode(await api(srv.url, 'GET', '/no/such/path'), 404, 'not_found');
  await expectCode(await api(srv.url, 'GET', '/permission'), 404, 'not_found');
  await expectCode(await api(srv.url, 'POST', '/agent/register/extra', { body: {} }), 404, 'not_found');
});

test('missing_fields names the fields', async () => {
  await expectCode(await api(srv.url, 'POST', '/agent/register', { body: {} }), 400, 'missing_fields',
    { messageIncludes: ['name', 'developer_email'] });
  await expectCode(await api(srv.url, 'POST', '/agent/register', { body: { name: 'x' } }), 400, 'missing_fields',
    { messageIncludes: ['developer_email'] });
  await expectCode(await api(srv.url, 'POST', '/permission/grant', { cookie: alice, body: { agent_id: A.agent_id } }),
    400, 'missing_fields', { messageIncludes: ['action'] });
  await expectCode(await api(srv.url, 'POST', '/permission/revoke', { cookie: alice, body: {} }), 400, 'missing_fields');
  await expectCode(await api(srv.url, 'POST', '/permission/check', { bearer: A.secret, body: { agent_id: A.agent_id } }),
    400, 'missing_fields', { messageIncludes: ['action'] });
  await expectCode(await api(srv.url, 'POST', '/auth/magic-link', { body: {} }), 400, 'missing_fields',
    { messageIncludes: ['email'] });
});

test('missing_params names the parameters, and comes before authentication', async () => {
  await expectCode(await api(srv.url, 'GET', '/permission/check'), 400, 'missing_params',
    { messageIncludes: ['agent_id', 'action'] });
  await expectCode(await api(srv.url, 'GET', `/permission/check?agent_id=${A.agent_id}`, { bearer: A.secret }),
    400, 'missing_params', { messageIncludes: ['action'] });
  await expectCode(await api(srv.url, 'GET', '/permission/check?action=x', { bearer: A.secret }),
    400, 'missing_params', { messageIncludes: ['agent_id'] });
  await expectCode(await api(srv.url, 'GET', '/auth/verify'), 400, 'missing_params', { messageIncludes: ['token'] });
});

test('invalid_email', async () => {
  for (const bad of ['not-an-email', 'a@', '@b.com', 'a b@c.com', 'a@b@c.com']) {
    await expectCode(await api(srv.url, 'POST', '/agent/register',
      { body: { name: 'x', developer_email: bad } }), 400, 'invalid_email');
  }
  await expectCode(await api(srv.url, 'POST', '/auth/magic-link', { body: { email: 'nope' } }), 400, 'invalid_email');
});

test('invalid_name: empty or over 100 characters; 100 is fine', async () => {
  const email = uniqueEmail('dev');
  await expectCode(await api(srv.url, 'POST', '/agent/register',
    { body: { name: 'n'.repeat(101), developer_email: email } }), 400, 'invalid_name');
  await expectCode(await api(srv.url, 'POST', '/agent/register',
    { body: { name: '', developer_email: email } }), 400, 'invalid_name');
  const ok = await api(srv.url, 'POST', '/agent/register', { body: { name: 'n'.repeat(100), developer_email: email } });
  assert.equal(ok.status, 201, ok.text);
});

test('agent_not_found: check, grant and profile of an unknown agent', async () => {
  const ghost = { agent_id: 'ap_0000000000000000', secret: A.secret };
  await expectCode(await check(ghost), 404, 'agent_not_found');
  await expectCode(await api(srv.url, 'POST', '/permission/grant',
    { cookie: alice, body: { agent_id: ghost.agent_id, action: 'x' } }), 404, 'agent_not_found');
  await expectCode(await api(srv.url, 'GET', `/agent/${ghost.agent_id}`, { bearer: A.secret }), 404, 'agent_not_found');
});

test('permission_not_found: revoking what does not exist', async () => {
  await expectCode(await api(srv.url, 'POST', '/permission/revoke',
    { cookie: alice, body: { agent_id: A.agent_id, action: 'never_granted' } }), 404, 'permission_not_found');
  await expectCode(await api(srv.url, 'POST', '/permission/revoke',
    { cookie: alice, body: { permission_id: '00000000-0000-4000-8000-000000000000' } }), 404, 'permission_not_found');
});

test('rate_limited: the sixth magic link for one address in 15 minutes', async () => {
  const email = uniqueEmail('limited');
  for (let i = 0; i < 5; i++) {
    const r = await api(srv.url, 'POST', '/auth/magic-link', { body: { email } });
    assert.equal(r.status, 200, `link ${i + 1}: ${r.text}`);
  }
  const res = await api(srv.url, 'POST', '/auth/magic-link', { body: { email } });
  await expectCode(res, 429, 'rate_limited');
  const retry = Number(res.headers.get('retry-after'));
  assert.ok(Number.isInteger(retry) && retry > 0 && retry <= 900, `Retry-After ${res.headers.get('retry-after')}`);
});

test('invalid_json: broken, empty, non-object', async () => {
  for (const body of ['{"name": ', '', '[]', '"str"', '42', 'null', 'not json at all']) {
    await expectCode(await api(srv.url, 'POST', '/agent/register', { body }), 400, 'invalid_json');
  }
  await expectCode(await api(srv.url, 'POST', '/permission/grant', { cookie: alice, body: '{bad' }), 400, 'invalid_json');
  await expectCode(await api(srv.url, 'POST', '/permission/check', { bearer: A.secret, body: '[1,2]' }), 400, 'invalid_json');
});

test('invalid_field names the field', async () => {
  await expectCode(await api(srv.url, 'POST', '/agent/register',
    { body: { name: 'x', developer_email: uniqueEmail(), description: 5 } }), 400, 'invalid_field',
  { messageIncludes: ['description'] });
  await expectCode(await api(srv.url, 'POST', '/agent/register',
    { body: { name: 'x', developer_email: uniqueEmail(), metadata: 'str' } }), 400, 'invalid_field',
  { messageIncludes: ['metadata'] });
  await expectCode(await api(srv.url, 'POST', '/permission/grant',
    { cookie: alice, body: { agent_id: A.agent_id, action: 'has space' } }), 400, 'invalid_field',
  { messageIncludes: ['action'] });
  await expectCode(await api(srv.url, 'POST', '/permission/grant',
    { cookie: alice, body: { agent_id: A.agent_id, action: 'x', scope: [1] } }), 400, 'invalid_field',
  { messageIncludes: ['scope'] });
  await expectCode(await api(srv.url, 'GET', '/permissions?status=bogus', { cookie: alice }), 400, 'invalid_field',
    { messageIncludes: ['status'] });
});

test('invalid_expires_in', async () => {
  await expectCode(await api(srv.url, 'POST', '/permission/grant',
    { cookie: alice, body: { agent_id: A.agent_id, action: 'x', expires_in: '7D' } }), 400, 'invalid_expires_in');
});

test('invalid_token: a link never issued', async () => {
  await expectCode(await api(srv.url, 'GET', `/auth/verify?token=ml_${'ab'.repeat(32)}`), 401, 'invalid_token');
  await expectCode(await api(srv.url, 'GET', '/auth/verify?token=garbage'), 401, 'invalid_token');
});

test('method_not_allowed lists the allowed methods in Allow', async () => {
  const r1 = await api(srv.url, 'DELETE', '/agent/register');
  await expectCode(r1, 405, 'method_not_allowed');
  assert.match(r1.headers.get('allow') ?? '', /\bPOST\b/);
  const r2 = await api(srv.url, 'PUT', '/health', { body: {} });
  await expectCode(r2, 405, 'method_not_allowed');
  assert.match(r2.headers.get('allow') ?? '', /\bGET\b/);
  const r3 = await api(srv.url, 'PATCH', '/permission/check');
  await expectCode(r3, 405, 'method_not_allowed');
  const allow = r3.headers.get('allow') ?? '';
  assert.match(allow, /\bGET\b/);
  assert.match(allow, /\bPOST\b/);
  const r4 = await api(srv.url, 'GET', '/permission/grant');
  await expectCode(r4, 405, 'method_not_allowed');
  assert.match(r4.headers.get('allow') ?? '', /\bPOST\b/);
});

test('payload_too_large: a body over --max-body', async () => {
  const big = JSON.stringify({ name: 'x', developer_email: uniqueEmail(), description: 'd'.repeat(MAX_BODY) });
  await expectCode(await api(srv.url, 'POST', '/agent/register', { body: big }), 413, 'payload_too_large');
  // Just under the limit is parsed normally (here: description over 2000 chars → invalid_field).
  const under = JSON.stringify({ name: 'x', developer_email: uniqueEmail(), description: 'd'.repeat(MAX_BODY - 200) });
  assert.ok(Buffer.byteLength(under) < MAX_BODY);
  await expectCode(await api(srv.url, 'POST', '/agent/register', { body: under }), 400, 'invalid_field',
    { messageIncludes: ['description'] });
});

test('bad_request and headers_too_large over a raw socket', async () => {
  const garbage = await rawHttp(srv.port, 'THIS IS NOT HTTP\r\n\r\n');
  const r = parseRawResponse(garbage.data);
  assert.ok(r, `an HTTP response to garbage, got ${JSON.stringify(garbage.data.slice(0, 200))}`);
  assert.equal(r.status, 400);
  const body = JSON.parse(r.body);
  assert.equal(body.error, 'bad_request');
  assert.equal(body.request_id, r.headers['x-request-id']);
  assert.equal(body.docs, `${srv.url}/docs/errors#bad_request`);
  assert.ok(body.message && body.remediation);
  seen.add('bad_request');

  const big = await rawHttp(srv.port, `GET /health HTTP/1.1\r\nHost: x\r\nX-Big: ${'a'.repeat(20 * 1024)}\r\n\r\n`);
  const r2 = parseRawResponse(big.data);
  assert.ok(r2, `an HTTP response to a 20 KiB header, got ${JSON.stringify(big.data.slice(0, 200))}`);
  assert.equal(r2.status, 431);
  const body2 = JSON.parse(r2.body);
  assert.equal(body2.error, 'headers_too_large');
  assert.equal(body2.request_id, r2.headers['x-request-id']);
  seen.add('headers_too_large');
});

test('X-Request-Id: a valid client id is echoed, an invalid one replaced', async () => {
  const mine = await api(srv.url, 'GET', '/no/such/path', { headers: { 'X-Request-Id': 'client-id.42_A' } });
  assert.equal(mine.headers.get('x-request-id'), 'client-id.42_A');
  assert.equal(mine.json.request_id, 'client-id.42_A');
  for (const bad of ['has space', 'x'.repeat(65), 'semi;colon']) {
    const r = await api(srv.url, 'GET', '/no/such/path', { headers: { 'X-Request-Id': bad } });
    assert.match(r.headers.get('x-request-id'), /^req_[A-Za-z0-9]+$/, `replaced ${JSON.stringify(bad)}`);
    assert.equal(r.json.request_id, r.headers.get('x-request-id'));
  }
  const a = await api(srv.url, 'GET', '/health');
  const b = await api(srv.url, 'GET', '/health');
  assert.notEqual(a.headers.get('x-request-id'), b.headers.get('x-request-id'), 'ids are unique');
});

test('the error catalogue page has one anchor per code', async () => {
  const page = await fetch(`${srv.url}/docs/errors`);
  assert.equal(page.status, 200);
  const html = await page.text();
  for (const code of ALL_CODES) {
    assert.match(html, new RegExp(`id=["']${code}["']`), `/docs/errors has an anchor for ${code}`);
  }
});

test('every reachable code was exercised', () => {
  const unreachable = new Set(['server_error', 'conflict', 'unavailable']);
  const missing = ALL_CODES.filter((c) => !unreachable.has(c) && !seen.has(c));
  assert.deepEqual(missing, []);
});

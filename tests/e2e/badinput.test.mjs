// Bad input on every endpoint gets a structured 4xx — never a 5xx, a crash or a hang — and the
// server keeps serving. Then raw TCP abuse: garbage, oversized headers, slowloris, clients that
// vanish mid-body.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import {
  startServer, api, registerAgent, signIn, requestMagicLink, followMagicLink, uniqueEmail, rawHttp,
  parseRawResponse,
} from './lib/server.mjs';
import { expectError, expectNoServerError, expectCleanLogs, sleep } from './lib/expect.mjs';

let srv;
let A; let B;
let cookie;
let usedLink;

before(async () => {
  srv = await startServer({ args: ['--rate-limit', 'register=1000/h', '--rate-limit', 'magic-link=1000/15m'] });
  A = await registerAgent(srv.url);
  B = await registerAgent(srv.url);
  cookie = await signIn(srv.url, uniqueEmail('bad'));
  usedLink = await requestMagicLink(srv.url, uniqueEmail('used'));
  assert.equal((await followMagicLink(usedLink)).status, 302);
});
after(async () => {
  if (srv) {
    assert.equal(srv.exited(), false, 'the server is still running after the abuse');
    expectCleanLogs(srv);
    assert.equal(await srv.stop(), 0);
  }
});

// Runs one case. `codes`: acceptable error codes (all must be 4xx in the one shape).
// `allow200`: a 200 with a denied decision is acceptable too (e.g. an odd but well-formed action).
async function expectRejected(what, method, path, opts, codes, { allow200 = false } = {}) {
  const res = await api(srv.url, method, path, opts);
  if (allow200 && res.status === 200) {
    assert.equal(res.json?.allowed, false, `${what}: a 200 must be a denial: ${res.text}`);
    return res;
  }
  expectNoServerError(res, what);
  const list = Array.isArray(codes) ? codes : [codes];
  assert.ok(list.includes(res.json.error), `${what}: got ${res.status} ${res.json.error} (${res.json.message}); expected ${list.join('|')}`);
  expectError(res, res.status, res.json.error);
  return res;
}

const email = () => uniqueEmail('dev');
// Header values go out as raw bytes: UTF-8 text is passed to fetch as its Latin-1 byte string.
const utf8Bytes = (text) => Buffer.from(text, 'utf8').toString('latin1');
const WRONG_TYPES = [5, 1.5, true, [], ['x'], { a: 'b' }];

test('POST /agent/register', async () => {
  const P = '/agent/register';
  for (const body of ['', ' ', '{', '{"name":', '{"name":"a",}', '[]', '[{}]', '123', '"str"', 'null', 'true',
    '{"name":"a","developer_email":"a@b.co"} trailing', '{"name":"a" "developer_email":"a@b.co"}', "{'name':'a'}"]) {
    await expectRejected(`register body ${JSON.stringify(body)}`, 'POST', P, { body }, 'invalid_json');
  }
  for (const v of WRONG_TYPES) {
    await expectRejected(`name ${JSON.stringify(v)}`, 'POST', P, { body: { name: v, developer_email: email() } },
      ['invalid_field', 'invalid_name']);
    await expectRejected(`developer_email ${JSON.stringify(v)}`, 'POST', P, { body: { name: 'a', developer_email: v } },
      ['invalid_field', 'invalid_email']);
    await expectRejected(`description ${JSON.stringify(v)}`, 'POST', P,
      { body: { name: 'a', developer_email: email(), description: v } }, 'invalid_field');
  }
  for (const v of [5, 'str', [], [1], true]) {
    await expectRejected(`metadata ${JSON.stringify(v)}`, 'POST', P,
      { body: { name: 'a', developer_email: email(), metadata: v } }, 'invalid_field');
  }
  await expectRejected('name null', 'POST', P, { body: { name: null, developer_email: email() } },
    ['missing_fields', 'invalid_field', 'invalid_name']);
  await expectRejected('developer_email null', 'POST', P, { body: { name: 'a', developer_email: null } },
    ['missing_fields', 'invalid_field', 'invalid_email']);
  await expectRejected('name 101 CJK characters', 'POST', P, { body: { name: '日'.repeat(101), developer_email: email() } }, 'invalid_name');
  await expectRejected('name 10000 characters', 'POST', P, { body: { name: 'x'.repeat(10000), developer_email: email() } }, 'invalid_name');
  await expectRejected('description 2001 characters', 'POST', P,
    { body: { name: 'a', developer_email: email(), description: 'd'.repeat(2001) } }, 'invalid_field');
  await expectRejected('metadata over 16 KiB', 'POST', P,
    { body: { name: 'a', developer_email: email(), metadata: { blob: 'm'.repeat(17 * 1024) } } }, 'invalid_field');
  for (const bad of ['', 'plain', 'a@', '@b.co', `${'l'.repeat(300)}@example.com`, 'a@b.co\r\nBcc: victim@example.com',
    'a@b.co\nX: y', '<a@b.co>', 'a@b.co,c@d.co', 'a@b..co']) {
    await expectRejected(`developer_email ${JSON.stringify(bad)}`, 'POST', P, { body: { name: 'a', developer_email: bad } },
      ['invalid_email', 'missing_fields']);
  }
  // Invalid UTF-8 inside a JSON string.
  const badUtf8 = Buffer.concat([Buffer.from('{"name":"'), Buffer.from([0xff, 0xfe, 0xc3]), Buffer.from(`","developer_email":"${email()}"}`)]);
  await expectRejected('invalid UTF-8', 'POST', P, { body: badUtf8 }, ['invalid_json', 'invalid_field', 'invalid_name']);
  // Deep nesting must not blow the stack.
  await expectRejected('100000 nested arrays', 'POST', P, { body: '['.repeat(100000) }, 'invalid_json');
  await expectRejected('deeply nested metadata', 'POST', P,
    { body: `{"name":"a","developer_email":"${email()}","metadata":${'{"a":'.repeat(5000)}1${'}'.repeat(5000)}}` },
    ['invalid_json', 'invalid_field']);

  // Unicode that is valid is kept exactly.
  const name = 'Агент ✈️ 日本語 🚀 "quoted" \\ back';
  const ok = await api(srv.url, 'POST', P, { body: { name, description: 'ñ'.repeat(2000), developer_email: email(), metadata: { k: '🚀' } } });
  assert.equal(ok.status, 201, ok.text);
  const prof = await api(srv.url, 'GET', `/agent/${ok.json.agent_id}`, { bearer: ok.json.secret });
  assert.equal(prof.json.name, name);
  assert.equal(prof.json.description, 'ñ'.repeat(2000));
  assert.deepEqual(prof.json.metadata, { k: '🚀' });
});

test('oversized bodies (default 1 MiB limit) on every POST endpoint', async () => {
  const filler = 'x'.repeat(1024 * 1024 + 1);
  for (const [path, opts] of [
    ['/agent/register', {}], ['/permission/check', { bearer: A.secret }], ['/permission/grant', { cookie }],
    ['/permission/revoke', { cookie }], ['/auth/magic-link', {}],
  ]) {
    const res = await api(srv.url, 'POST', path, { ...opts, body: JSON.stringify({ pad: filler }) });
    expectError(res, 413, 'payload_too_large');
  }
  // Just under 1 MiB is read and judged on its content.
  const under = JSON.stringify({ name: 'a', developer_email: email(), description: 'd'.repeat(1000 * 1000) });
  expectError(await api(srv.url, 'POST', '/agent/register', { body: under }), 400, 'invalid_field');
});

test('GET /permission/check', async () => {
  const base = `/permission/check`;
  const q = (agent, action) => `${base}?agent_id=${encodeURIComponent(agent)}&action=${encodeURIComponent(action)}`;
  await expectRejected('no params', 'GET', base, { bearer: A.secret }, 'missing_params');
  await expectRejected('empty agent_id', 'GET', `${base}?agent_id=&action=x`, { bearer: A.secret }, ['missing_params', 'invalid_field']);
  await expectRejected('empty action', 'GET', `${base}?agent_id=${A.agent_id}&action=`, { bearer: A.secret }, ['missing_params', 'invalid_field']);
  await expectRejected('both empty', 'GET', `${base}?agent_id=&action=`, { bearer: A.secret }, ['missing_params', 'invalid_field']);
  await expectRejected('names without values', 'GET', `${base}?agent_id&action`, { bearer: A.secret }, ['missing_params', 'invalid_field']);
  await expectRejected('bare ?', 'GET', `${base}?`, { bearer: A.secret }, 'missing_params');
  await expectRejected('only &&&', 'GET', `${base}?&&&=&`, { bearer: A.secret }, ['missing_params', 'bad_request']);
  // Repeated parameters: either rejected, or answered for the agent the secret belongs to.
  await expectRejected('repeated agent_id (A, B) with A\'s secret', 'GET', `${base}?agent_id=${A.agent_id}&agent_id=${B.agent_id}&action=x`,
    { bearer: A.secret }, ['invalid_field', 'bad_request', 'forbidden', 'missing_params'], { allow200: true });
  await expectRejected('repeated action', 'GET', `${base}?agent_id=${A.agent_id}&action=x&action=y`,
    { bearer: A.secret }, ['invalid_field', 'bad_request', 'missing_params'], { allow200: true });
  await expectRejected('broken percent-encoding', 'GET', `${base}?agent_id=%ZZ&action=%`, { bearer: A.secret },
    ['bad_request', 'invalid_field', 'agent_not_found', 'missing_params', 'forbidden']);

  // Credentials.
  const target = q(A.agent_id, 'x');
  await expectRejected('no Authorization', 'GET', target, {}, 'unauthorized');
  for (const auth of ['Bearer', 'Bearer ', 'Bearer  ', 'Basic x', 'Basic dXNlcjpwYXNz', `Token ${A.secret}`, A.secret,
    `Bearer sk_ap_`, `Bearer sk_ap_${'z'.repeat(64)}`, `Bearer sk_ap_${'0'.repeat(63)}`, `Bearer sk_ap_${'0'.repeat(65)}`,
    `Bearer ${A.secret}x`, `Bearer ${A.secret.slice(0, -1)}`, `Bearer ${A.secret.toUpperCase().replace('SK_AP_', 'sk_ap_')}`,
    `Bearer ${A.secret} ${A.secret}`, `Bearer ${utf8Bytes('🚀'.repeat(10))}`, `Bearer ${'x'.repeat(8000)}`, `Bearer ${A.agent_id}`,
    `Bearer${A.secret}`]) {
    await expectRejected(`Authorization ${JSON.stringify(auth.slice(0, 40))}`, 'GET', target, { headers: { Authorization: auth } }, 'unauthorized');
  }
  await expectRejected('session cookie instead of bearer', 'GET', target, { cookie }, 'unauthorized');
  await expectRejected('another agent\'s secret', 'GET', target, { bearer: B.secret }, 'forbidden');
  await expectRejected('unknown agent', 'GET', q('ap_ffffffffffffffff', 'x'), { bearer: A.secret }, 'agent_not_found');
  await expectRejected('agent id with path characters', 'GET', q('../../etc/passwd', 'x'), { bearer: A.secret }, ['agent_not_found', 'invalid_field']);
  await expectRejected('agent id 5000 chars', 'GET', q('ap_'.padEnd(5000, 'a'), 'x'), { bearer: A.secret }, ['agent_not_found', 'invalid_field']);
  await expectRejected('agent id with NUL', 'GET', q(`${A.agent_id}\0`, 'x'), { bearer: A.secret }, ['agent_not_found', 'invalid_field', 'forbidden']);
  // Odd actions: a denial or a 400, never a 5xx.
  for (const action of ['x'.repeat(10000), '日本語', '🚀', 'a b', 'a\0b', '"; DROP TABLE grants; --', '*', '%00']) {
    await expectRejected(`action ${JSON.stringify(action.slice(0, 20))}`, 'GET', q(A.agent_id, action), { bearer: A.secret },
      ['invalid_field'], { allow200: true });
  }
});

test('POST /permission/check', async () => {
  const P = '/permission/check';
  const opts = (body) => ({ bearer: A.secret, body });
  for (const body of ['', '{', '[]', '"x"', '7', 'null', '{"agent_id":"a","action":"b"}}']) {
    await expectRejected(`body ${JSON.stringify(body)}`, 'POST', P, opts(body), 'invalid_json');
  }
  await expectRejected('{}', 'POST', P, opts({}), 'missing_fields');
  await expectRejected('no action', 'POST', P, opts({ agent_id: A.agent_id }), 'missing_fields');
  await expectRejected('no agent_id', 'POST', P, opts({ action: 'x' }), 'missing_fields');
  for (const v of WRONG_TYPES) {
    await expectRejected(`agent_id ${JSON.stringify(v)}`, 'POST', P, opts({ agent_id: v, action: 'x' }), 'invalid_field');
    await expectRejected(`action ${JSON.stringify(v)}`, 'POST', P, opts({ agent_id: A.agent_id, action: v }), 'invalid_field');
  }
  await expectRejected('agent_id null', 'POST', P, opts({ agent_id: null, action: 'x' }), ['missing_fields', 'invalid_field']);
  for (const context of ['x', 1, [], [{}], true]) {
    await expectRejected(`context ${JSON.stringify(context)}`, 'POST', P, opts({ agent_id: A.agent_id, action: 'x', context }), 'invalid_field');
  }
  await expectRejected('no bearer', 'POST', P, { body: { agent_id: A.agent_id, action: 'x' } }, 'unauthorized');
  await expectRejected('garbage bearer', 'POST', P, { bearer: 'sk_ap_nope', body: { agent_id: A.agent_id, action: 'x' } }, 'unauthorized');
  await expectRejected('another agent\'s secret', 'POST', P, { bearer: B.secret, body: { agent_id: A.agent_id, action: 'x' } }, 'forbidden');
  await expectRejected('unknown agent', 'POST', P, opts({ agent_id: 'ap_0123456789abcdef', action: 'x' }), 'agent_not_found');
  const huge = `{"agent_id":"${A.agent_id}","action":"x","context":{"spend":1e400}}`;
  await expectRejected('huge number in context', 'POST', P, { bearer: A.secret, body: huge },
    ['invalid_json', 'invalid_field'], { allow200: true });
});

test('POST /permission/grant', async () => {
  const P = '/permission/grant';
  const opts = (body) => ({ cookie, body });
  await expectRejected('no session', 'POST', P, { body: { agent_id: A.agent_id, action: 'x' } }, 'unauthorized');
  for (const c of ['garbage', '', 'x'.repeat(5000), A.secret, utf8Bytes('🚀'), '"quoted"']) {
    await expectRejected(`cookie ${JSON.stringify(c.slice(0, 20))}`, 'POST', P,
      { headers: { Cookie: `ap_session=${c}` }, body: { agent_id: A.agent_id, action: 'x' } }, 'unauthorized');
  }
  await expectRejected('cookie without a value', 'POST', P, { headers: { Cookie: 'ap_session' }, body: { agent_id: A.agent_id, action: 'x' } }, 'unauthorized');
  await expectRejected('bearer instead of a session', 'POST', P, { bearer: A.secret, body: { agent_id: A.agent_id, action: 'x' } }, 'unauthorized');
  for (const body of ['', '{"agent_id":', '[]', '1', 'null']) {
    await expectRejected(`body ${JSON.stringify(body)}`, 'POST', P, opts(body), 'invalid_json');
  }
  await expectRejected('{}', 'POST', P, opts({}), 'missing_fields');
  for (const v of WRONG_TYPES) {
    await expectRejected(`agent_id ${JSON.stringify(v)}`, 'POST', P, opts({ agent_id: v, action: 'x' }), 'invalid_field');
    await expectRejected(`action ${JSON.stringify(v)}`, 'POST', P, opts({ agent_id: A.agent_id, action: v }), 'invalid_field');
    await expectRejected(`expires_in ${JSON.stringify(v)}`, 'POST', P, opts({ agent_id: A.agent_id, action: 'x', expires_in: v }),
      ['invalid_expires_in', 'invalid_field']);
  }
  for (const v of [5, 'str', [], [1], true]) {
    await expectRejected(`scope ${JSON.stringify(v)}`, 'POST', P, opts({ agent_id: A.agent_id, action: 'x', scope: v }), 'invalid_field');
    await expectRejected(`metadata ${JSON.stringify(v)}`, 'POST', P, opts({ agent_id: A.agent_id, action: 'x', metadata: v }), 'invalid_field');
  }
  await expectRejected('metadata over 16 KiB', 'POST', P,
    opts({ agent_id: A.agent_id, action: 'x', metadata: { m: 'm'.repeat(17 * 1024) } }), 'invalid_field');
  for (const action of ['', 'a b', 'x'.repeat(201), 'ü', '🚀', 'a\nb', 'a;b', 'a"b', 'a\0b']) {
    await expectRejected(`action ${JSON.stringify(action.slice(0, 20))}`, 'POST', P, opts({ agent_id: A.agent_id, action }),
      ['invalid_field', 'missing_fields']);
  }
  await expectRejected('unknown agent', 'POST', P, opts({ agent_id: 'ap_0123456789abcdef', action: 'x' }), 'agent_not_found');
  await expectRejected('empty agent_id', 'POST', P, opts({ agent_id: '', action: 'x' }), ['agent_not_found', 'invalid_field', 'missing_fields']);
  // A 200-character action of the allowed alphabet is fine.
  const ok = await api(srv.url, 'POST', P, opts({ agent_id: A.agent_id, action: `a.b:c/d*e-f_${'x'.repeat(188)}` }));
  assert.equal(ok.status, 201, ok.text);
  // None of the rejected grants took effect.
  const prof = await api(srv.url, 'GET', `/agent/${A.agent_id}`, { bearer: A.secret });
  assert.deepEqual(prof.json.active_permissions.map((p) => p.permission_id), [ok.json.permission_id]);
});

test('permission requests: bodies, fields, ids, statuses, cursors and credentials that are wrong', async () => {
  const P = '/v1/permission-requests';
  const ask = (body) => ({ bearer: A.secret, body });
  const base = { agent_id: A.agent_id, action: 'bad:input', reason: 'testing' };
  await expectRejected('no credential', 'POST', P, { body: base }, 'unauthorized');
  await expectRejected('unknown agent secret', 'POST', P, { bearer: `sk_ap_${'0'.repeat(64)}`, body: base }, 'unauthorized');
  await expectRejected('a person asks', 'POST', P, { cookie, body: base }, 'forbidden');
  await expectRejected('another agent', 'POST', P, ask({ ...base, agent_id: B.agent_id }), 'forbidden');
  for (const body of ['', '{"agent_id":', '[]', '1', 'null']) {
    await expectRejected(`body ${JSON.stringify(body)}`, 'POST', P, ask(body), 'invalid_json');
  }
  await expectRejected('{}', 'POST', P, ask({}), 'missing_fields');
  await expectRejected('no reason', 'POST', P, ask({ agent_id: A.agent_id, action: 'x' }), 'missing_fields');
  for (const v of WRONG_TYPES) {
    await expectRejected(`agent_id ${JSON.stringify(v)}`, 'POST', P, ask({ ...base, agent_id: v }), 'invalid_field');
    await expectRejected(`action ${JSON.stringify(v)}`, 'POST', P, ask({ ...base, action: v }), 'invalid_field');
    await expectRejected(`reason ${JSON.stringify(v)}`, 'POST', P, ask({ ...base, reason: v }), 'invalid_field');
    await expectRejected(`email ${JSON.stringify(v)}`, 'POST', P, ask({ ...base, email: v }), 'invalid_field');
    await expectRejected(`expires_in ${JSON.stringify(v)}`, 'POST', P, ask({ ...base, expires_in: v }), ['invalid_expires_in', 'invalid_field']);
  }
  for (const v of [5, 'str', [], true]) {
    await expectRejected(`scope ${JSON.stringify(v)}`, 'POST', P, ask({ ...base, scope: v }), 'invalid_field');
  }
  await expectRejected('a malformed constraint', 'POST', P, ask({ ...base, scope: { max_amount: 'lots' } }), 'invalid_field');
  for (const reason of ['', '   ', 'r'.repeat(1001), 'a\u0000b', 'a\u0007b']) {
    await expectRejected(`reason ${JSON.stringify(reason.slice(0, 12))}`, 'POST', P, ask({ ...base, reason }), 'invalid_field');
  }
  for (const action of ['a b', 'x'.repeat(201), '🚀']) {
    await expectRejected(`action ${JSON.stringify(action.slice(0, 12))}`, 'POST', P, ask({ ...base, action }), 'invalid_field');
  }
  for (const e of ['nope', 'a@b', 'a..b@example.com']) {
    await expectRejected(`email ${e}`, 'POST', P, ask({ ...base, email: e }), 'invalid_email');
  }
  await expectRejected('expires_in 0d', 'POST', P, ask({ ...base, expires_in: '0d' }), 'invalid_expires_in');
  await expectRejected('unknown field', 'POST', P, ask({ ...base, expiresIn: '7d' }), 'invalid_field');
  // A 1000-character reason is fine (asked of someone else than this person, who granted A before
  // and would otherwise be asked).
  const ok = await api(srv.url, 'POST', P, ask({ ...base, reason: 'r'.repeat(1000), email: uniqueEmail('other') }));
  assert.equal(ok.status, 201, ok.text);
  const id = ok.json.request_id;
  const me = (await api(srv.url, 'GET', '/auth/session', { cookie })).json.email;
  const mineRes = await api(srv.url, 'POST', P, ask({ ...base, action: 'bad:mine', email: me }));
  assert.equal(mineRes.status, 201, mineRes.text);
  const mine = mineRes.json.request_id;

  // Lists: statuses, limits, cursors, query strings.
  for (const q of ['status=open', 'status=PENDING', 'limit=0', 'limit=101', 'limit=x', 'cursor=x', 'cursor=12', 'cursor=.preq_1', 'cursor=-1.x', '%zz']) {
    await expectRejected(`list ?${q}`, 'GET', `${P}?${q}`, { cookie }, 'invalid_field');
  }
  await expectRejected('list without credential', 'GET', P, {}, 'unauthorized');

  // Ids and decisions.
  for (const bad of ['preq_nope', 'x'.repeat(300), '%F0%9F%9A%80', 'preq_000000000000000000000000']) {
    await expectRejected(`get ${bad.slice(0, 12)}`, 'GET', `${P}/${bad}`, { cookie }, 'permission_request_not_found');
    await expectRejected(`approve ${bad.slice(0, 12)}`, 'POST', `${P}/${bad}/approve`, { cookie }, 'permission_request_not_found');
    await expectRejected(`decline ${bad.slice(0, 12)}`, 'POST', `${P}/${bad}/decline`, { cookie }, 'permission_request_not_found');
  }
  await expectRejected('approve with an agent secret', 'POST', `${P}/${mine}/approve`, { bearer: A.secret }, 'unauthorized');
  for (const body of ['{"scope":', '[]', '1', 'null']) {
    await expectRejected(`approve body ${JSON.stringify(body)}`, 'POST', `${P}/${mine}/approve`, { cookie, body }, 'invalid_json');
    await expectRejected(`decline body ${JSON.stringify(body)}`, 'POST', `${P}/${mine}/decline`, { cookie, body }, 'invalid_json');
  }
  await expectRejected('approve scope "x"', 'POST', `${P}/${mine}/approve`, { cookie, body: { scope: 'x' } }, 'invalid_field');
  await expectRejected('approve expires_in 5', 'POST', `${P}/${mine}/approve`, { cookie, body: { expires_in: 5 } }, ['invalid_expires_in', 'invalid_field']);
  await expectRejected('approve unknown field', 'POST', `${P}/${mine}/approve`, { cookie, body: { reason: 'x' } }, 'invalid_field');
  await expectRejected('decline reason 5', 'POST', `${P}/${mine}/decline`, { cookie, body: { reason: 5 } }, 'invalid_field');
  await expectRejected('decline reason too long', 'POST', `${P}/${mine}/decline`, { cookie, body: { reason: 'r'.repeat(1001) } }, 'invalid_field');
  await expectRejected('decline unknown field', 'POST', `${P}/${mine}/decline`, { cookie, body: { scope: {} } }, 'invalid_field');
  // The request was addressed to someone else: deciding it is forbidden.
  await expectRejected('not the person asked', 'POST', `${P}/${id}/decline`, { cookie }, 'forbidden');
  for (const r of [id, mine]) {
    const still = await api(srv.url, 'GET', `${P}/${r}`, { bearer: A.secret });
    assert.equal(still.json.status, 'pending', 'none of the refused decisions took effect');
  }
});

test('POST /permission/revoke', async () => {
  const P = '/permission/revoke';
  const opts = (body) => ({ cookie, body });
  await expectRejected('no session', 'POST', P, { body: { permission_id: '00000000-0000-4000-8000-000000000000' } }, 'unauthorized');
  for (const body of ['', '{', '[]', '"x"']) {
    await expectRejected(`body ${JSON.stringify(body)}`, 'POST', P, opts(body), 'invalid_json');
  }
  await expectRejected('{}', 'POST', P, opts({}), 'missing_fields');
  await expectRejected('agent_id only', 'POST', P, opts({ agent_id: A.agent_id }), 'missing_fields');
  await expectRejected('action only', 'POST', P, opts({ action: 'x' }), 'missing_fields');
  for (const v of WRONG_TYPES) {
    await expectRejected(`permission_id ${JSON.stringify(v)}`, 'POST', P, opts({ permission_id: v }), 'invalid_field');
    await expectRejected(`agent_id ${JSON.stringify(v)}`, 'POST', P, opts({ agent_id: v, action: 'x' }), 'invalid_field');
  }
  for (const id of ['not-a-uuid', '', 'x'.repeat(5000), "' OR 1=1 --", '00000000-0000-0000-0000-00000000000g']) {
    await expectRejected(`permission_id ${JSON.stringify(id.slice(0, 20))}`, 'POST', P, opts({ permission_id: id }),
      ['permission_not_found', 'invalid_field', 'missing_fields']);
  }
  await expectRejected('unknown agent', 'POST', P, opts({ agent_id: 'ap_0123456789abcdef', action: 'x' }),
    ['permission_not_found', 'agent_not_found']);
});

test('GET /permissions, GET /auth/session, POST /auth/logout', async () => {
  await expectRejected('permissions without session', 'GET', '/permissions', {}, 'unauthorized');
  await expectRejected('permissions status=bogus', 'GET', '/permissions?status=bogus', { cookie }, 'invalid_field');
  await expectRejected('permissions status=ACTIVE', 'GET', '/permissions?status=ACTIVE', { cookie }, 'invalid_field');
  const rep = await api(srv.url, 'GET', '/permissions?status=all&status=bogus', { cookie });
  assert.ok(rep.status === 200 || (rep.status === 400 && rep.json.error === 'invalid_field'), `repeated status: ${rep.status} ${rep.text}`);
  const unknown = await api(srv.url, 'GET', '/permissions?agent_id=ap_nobody', { cookie });
  assert.equal(unknown.status, 200, unknown.text);
  assert.deepEqual(unknown.json.permissions, []);
  for (const c of ['garbage', 'x'.repeat(8000), A.secret]) {
    await expectRejected(`session cookie ${c.slice(0, 10)}`, 'GET', '/auth/session', { headers: { Cookie: `ap_session=${c}` } }, 'unauthorized');
  }
  await expectRejected('malformed Cookie header', 'GET', '/auth/session', { headers: { Cookie: ';;;=;ap_session;=x' } }, 'unauthorized');
  const out = await api(srv.url, 'POST', '/auth/logout', { body: '{broken', headers: { Cookie: 'ap_session=garbage' } });
  assert.equal(out.status, 200, `logout ignores a junk body and unknown session: ${out.text}`);
});

test('POST /auth/magic-link', async () => {
  const P = '/auth/magic-link';
  for (const body of ['', '{', '[]', '"a@b.co"', 'null']) {
    await expectRejected(`body ${JSON.stringify(body)}`, 'POST', P, { body }, 'invalid_json');
  }
  await expectRejected('{}', 'POST', P, { body: {} }, 'missing_fields');
  for (const v of WRONG_TYPES) {
    await expectRejected(`email ${JSON.stringify(v)}`, 'POST', P, { body: { email: v } }, ['invalid_field', 'invalid_email']);
  }
  await expectRejected('email null', 'POST', P, { body: { email: null } }, ['missing_fields', 'invalid_field', 'invalid_email']);
  for (const bad of ['', 'nope', 'a@', `${'x'.repeat(300)}@example.com`, 'a@b.co\r\nBcc: victim@example.com',
    'a@b.co\r\n\r\nbody', 'a@b.co>', '<a@b.co', 'a@b.co\0']) {
    await expectRejected(`email ${JSON.stringify(bad.slice(0, 30))}`, 'POST', P, { body: { email: bad } }, ['invalid_email', 'missing_fields']);
  }
});

test('GET /auth/verify: missing, empty, unknown, reused, repeated, very long tokens', async () => {
  await expectRejected('no token', 'GET', '/auth/verify', {}, 'missing_params');
  await expectRejected('empty token', 'GET', '/auth/verify?token=', {}, ['missing_params', 'invalid_token']);
  await expectRejected('unknown token', 'GET', '/auth/verify?token=ml_nope', {}, 'invalid_token');
  await expectRejected('reused link', 'GET', new URL(usedLink).pathname + new URL(usedLink).search, {}, 'invalid_token');
  await expectRejected('repeated token', 'GET', '/auth/verify?token=ml_a&token=ml_b', {}, ['invalid_token', 'invalid_field', 'bad_request']);
  await expectRejected('8000-char token', 'GET', `/auth/verify?token=ml_${'a'.repeat(8000)}`, {}, 'invalid_token');
  await expectRejected('unicode token', 'GET', `/auth/verify?token=${encodeURIComponent('ml_🚀')}`, {}, 'invalid_token');
});

test('GET /agent/:id and unknown paths and methods', async () => {
  await expectRejected('no bearer', 'GET', `/agent/${A.agent_id}`, {}, 'unauthorized');
  await expectRejected('wrong bearer', 'GET', `/agent/${A.agent_id}`, { bearer: 'sk_ap_bad' }, 'unauthorized');
  await expectRejected('other agent\'s secret', 'GET', `/agent/${A.agent_id}`, { bearer: B.secret }, 'forbidden');
  await expectRejected('unknown agent', 'GET', '/agent/ap_0000000000000000', { bearer: A.secret }, 'agent_not_found');
  await expectRejected('5000-char id', 'GET', `/agent/${'a'.repeat(5000)}`, { bearer: A.secret }, ['agent_not_found', 'not_found']);
  await expectRejected('encoded NUL id', 'GET', '/agent/%00', { bearer: A.secret }, ['agent_not_found', 'not_found', 'bad_request']);
  await expectRejected('encoded slash id', 'GET', `/agent/${A.agent_id}%2Fx`, { bearer: A.secret }, ['agent_not_found', 'not_found']);
  await expectRejected('unicode id', 'GET', `/agent/${encodeURIComponent('日本')}`, { bearer: A.secret }, ['agent_not_found', 'not_found']);
  await expectRejected('empty id', 'GET', '/agent/', { bearer: A.secret }, ['not_found', 'agent_not_found']);
  await expectRejected('POST /health', 'POST', '/health', { body: {} }, 'method_not_allowed');
  await expectRejected('DELETE /permission/grant', 'DELETE', '/permission/grant', { cookie }, 'method_not_allowed');
  await expectRejected('PUT /agent/:id', 'PUT', `/agent/${A.agent_id}`, { bearer: A.secret, body: {} }, 'method_not_allowed');
  await expectRejected('unknown path', 'GET', `/${'z'.repeat(3000)}`, {}, 'not_found');
  await expectRejected('unknown path with query', 'GET', '/nope?x=1&x=2&=&&', {}, 'not_found');
});

test('integration engine: every JSON body, field, query and token shape that is wrong', async () => {
  const as = { cookie };  // the first person signed in: an admin, hence a workspace manager
  const writes = [
    ['POST', '/connectors'], ['POST', '/integrations'], ['PATCH', '/integrations/x'],
    ['PATCH', '/integrations/x/parameters'], ['POST', '/connections'], ['PATCH', '/connections/x'],
    ['POST', '/act'], ['POST', '/v1/credentials/token'], ['POST', '/connect/credentials'],
  ];
  for (const [method, p] of writes) {
    for (const body of ['', '{', '[]', '"x"', '7', 'null', '{"a":1}}']) {
      if (body === '' && p === '/v1/credentials/token') continue;  // no body: every field defaults
      await expectRejected(`${method} ${p} body ${JSON.stringify(body)}`, method, p, { ...as, body },
        ['invalid_json', 'integration_not_found', 'connection_not_found']);
    }
    await expectRejected(`${method} ${p} unknown field`, method, p, { ...as, body: { zz_unknown: 1 } },
      ['invalid_field', 'integration_not_found', 'connection_not_found']);
  }
  // Wrong types and values, field by field.
  const conn = await api(srv.url, 'POST', '/connections', { ...as, body: {
    connectorKey: 'stripe', connectionKey: 'bad-input-1', credentials: { apiKey: 'sk_test_badinput123' } } });
  assert.equal(conn.status, 201, conn.text);
  for (const v of WRONG_TYPES) {
    await expectRejected(`connect connectorKey ${JSON.stringify(v)}`, 'POST', '/connections',
      { ...as, body: { connectorKey: v } }, 'invalid_field');
    if (typeof v !== 'object' || Array.isArray(v)) {
      await expectRejected(`connect credentials ${JSON.stringify(v)}`, 'POST', '/connections',
        { ...as, body: { connectorKey: 'stripe', credentials: v } }, 'invalid_field');
    }
    await expectRejected(`rename ${JSON.stringify(v)}`, 'PATCH', '/connections/bad-input-1',
      { ...as, body: { name: v } }, 'invalid_field');
    await expectRejected(`act api ${JSON.stringify(v)}`, 'POST', '/act',
      { ...as, body: { connectionKey: 'bad-input-1', api: typeof v === 'object' && !Array.isArray(v) ? { path: v } : v } },
      'invalid_field');
    if (v !== 5) {  // whole seconds are a valid expiresIn
      await expectRejected(`token expiresIn ${JSON.stringify(v)}`, 'POST', '/v1/credentials/token',
        { ...as, body: { expiresIn: v } }, 'invalid_field');
    }
    await expectRejected(`parameters scopes ${JSON.stringify(v)}`, 'PATCH', '/integrations/stripe/parameters',
      { ...as, body: { scopes: typeof v === 'object' && Array.isArray(v) ? [v] : v } }, 'invalid_field');
  }
  await expectRejected('connect with two targets', 'POST', '/connections',
    { ...as, body: { connectorKey: 'stripe', integrationKey: 'stripe' } }, 'invalid_field');
  await expectRejected('connect with none', 'POST', '/connections', { ...as, body: {} }, 'missing_fields');
  await expectRejected('connect by intent', 'POST', '/connections', { ...as, body: { intent: 'crm' } }, 'invalid_field');
  await expectRejected('connect, key with spaces', 'POST', '/connections',
    { ...as, body: { connectorKey: 'stripe', connectionKey: 'a b' } }, 'invalid_field');
  await expectRejected('connect, wrong credential', 'POST', '/connections',
    { ...as, body: { connectorKey: 'stripe', credentials: { password: 'x' } } }, ['missing_fields', 'invalid_field']);
  await expectRejected('connect, control characters', 'POST', '/connections',
    { ...as, body: { connectorKey: 'stripe', name: 'a\u0000b' } }, 'invalid_field');
  await expectRejected('connect, unknown connector', 'POST', '/connections',
    { ...as, body: { connectorKey: 'no-such-app' } }, 'connector_not_found');
  for (const api of [{}, { path: 'no-slash' }, { path: '/x', method: 'TRACE' }, { path: '/x', method: 'GET', body: {} },
    { path: '/x', headers: { 'bad name': 'v' } }, { path: '/x', headers: { X: 'a\r\nb' } },
    { path: '/x', query: { q: { nested: 1 } } }, { path: `/${'a'.repeat(3000)}` }]) {
    await expectRejected(`act ${JSON.stringify(api).slice(0, 80)}`, 'POST', '/act',
      { ...as, body: { connectionKey: 'bad-input-1', api } }, ['invalid_field', 'missing_fields']);
  }
  await expectRejected('act with two styles', 'POST', '/act',
    { ...as, body: { connectionKey: 'bad-input-1', api: { path: '/x' }, key: 'k' } }, 'invalid_field');
  await expectRejected('connector spec', 'POST', '/connectors',
    { ...as, body: { key: 'Bad Key', name: 'x', baseUrl: 'ftp://x', auth: { type: 'magic' } } }, 'invalid_field');
  for (const q of ['limit=0', 'limit=1001', 'limit=x', 'cursor=junk', 'cursor=5.', 'search=' + 'a'.repeat(300)]) {
    await expectRejected(`GET /connections?${q.slice(0, 40)}`, 'GET', `/connections?${q}`, as, 'invalid_field');
  }
  for (const q of ['limit=0', 'cursor=x']) {
    await expectRejected(`GET /integrations?${q}`, 'GET', `/integrations?${q}`, as, 'invalid_field');
  }
  // Bearer tokens that look like JWTs but are not.
  for (const bearer of ['eyJ.eyJ.x', 'eyJhbGciOiJIUzI1NiJ9.eyJ9.AAAA', `eyJ${'A'.repeat(9000)}.eyJ.x`,
    'eyJhbGciOiJub25lIn0.eyJ3b3Jrc3BhY2VLZXkiOiJ4In0.', 'eyJ!!!.eyJ???.***']) {
    await expectRejected(`bearer ${bearer.slice(0, 30)}`, 'GET', '/connections', { bearer },
      ['invalid_token', 'unauthorized']);
  }
  // The browser flow's own inputs.
  for (const session of ['', 'x', 'cs_nope', `cs_${'a'.repeat(200)}`]) {
    await expectRejected(`connect session ${session.slice(0, 20)}`, 'GET',
      `/connect/session?session=${encodeURIComponent(session)}`, {}, 'not_found');
    await expectRejected(`connect form session ${session.slice(0, 20)}`, 'POST', '/connect/credentials',
      { body: { session, credentials: { apiKey: 'x' } } }, ['not_found', 'invalid_field']);
  }
  for (const q of ['', 'state=', 'state=nope&code=x', `state=${'s'.repeat(500)}`, 'error=access_denied']) {
    const res = await api(srv.url, 'GET', `/oauth/callback?${q}`);
    assert.equal(res.status, 400, `callback ?${q}: ${res.status}`);
    assert.match(res.headers.get('content-type'), /^text\/html/);
  }
  const auth = await api(srv.url, 'GET', '/connect/authorize?session=cs_nope');
  assert.equal(auth.status, 404);
  assert.match(auth.headers.get('content-type'), /^text\/html/);
});

test('actions, runs, export and import: every JSON body, field, query and selector that is wrong', async () => {
  const as = { cookie };  // an admin: a workspace manager and their own tenant
  const conn = await api(srv.url, 'POST', '/connections', { ...as, body: {
    connectorKey: 'stripe', connectionKey: 'bad-actions-1', credentials: { apiKey: 'sk_test_badactions1' } } });
  assert.equal(conn.status, 201, conn.text);
  const made = await api(srv.url, 'POST', '/actions', { ...as, body: {
    key: 'bad-input-action', config: { request: { method: 'POST', path: '/v1/x' } },
    inputSchema: { type: 'object', properties: { n: { type: 'integer', maximum: 3 } }, required: ['n'] } } });
  assert.equal(made.status, 201, made.text);
  const writes = [
    ['POST', '/actions'], ['PATCH', '/actions/bad-input-action'], ['PUT', '/actions/bad-input-action'],
    ['POST', '/actions/bad-input-action/run'], ['POST', '/import'],
  ];
  for (const [method, p] of writes) {
    for (const body of ['{', '[]', '"x"', '7', 'null', '{"a":1}}']) {
      await expectRejected(`${method} ${p} body ${JSON.stringify(body)}`, method, p, { ...as, body }, 'invalid_json');
    }
    await expectRejected(`${method} ${p} unknown field`, method, p, { ...as, body: { zz_unknown: 1 } }, 'invalid_field');
  }
  for (const v of WRONG_TYPES) {
    await expectRejected(`action key ${JSON.stringify(v)}`, 'POST', '/actions',
      { ...as, body: { key: v, config: { request: { path: '/x' } } } }, 'invalid_field');
    await expectRejected(`action config ${JSON.stringify(v)}`, 'POST', '/actions',
      { ...as, body: { key: 'k1', config: v } }, ['invalid_field', 'missing_fields']);
    if (typeof v !== 'object' || v === null || Array.isArray(v)) {
      await expectRejected(`action inputSchema ${JSON.stringify(v)}`, 'POST', '/actions',
        { ...as, body: { key: 'k1', config: { request: { path: '/x' } }, inputSchema: v } }, 'invalid_field');
      await expectRejected(`run input ${JSON.stringify(v)}`, 'POST', '/actions/bad-input-action/run',
        { ...as, body: { connectionKey: 'bad-actions-1', input: v } }, 'invalid_field');
      if (!Array.isArray(v)) {  // an array is the right type (its items are checked below)
        await expectRejected(`import actions ${JSON.stringify(v)}`, 'POST', '/import',
          { ...as, body: { actions: v } }, 'invalid_field');
      }
    }
  }
  await expectRejected('action without config', 'POST', '/actions', { ...as, body: { key: 'k2' } }, 'missing_fields');
  await expectRejected('action by intent', 'POST', '/actions', { ...as, body: { intent: 'send mail' } }, 'invalid_field');
  await expectRejected('action of type run-javascript', 'POST', '/actions',
    { ...as, body: { key: 'k3', type: 'run-javascript', config: { request: { path: '/x' } } } }, 'invalid_field');
  await expectRejected('action key with spaces', 'POST', '/actions',
    { ...as, body: { key: 'a b', config: { request: { path: '/x' } } } }, 'invalid_field');
  await expectRejected('action path leaving the base URL', 'POST', '/actions',
    { ...as, body: { key: 'k4', config: { request: { path: '//evil.example/x' } } } }, 'egress_denied');
  await expectRejected('action header injection', 'POST', '/actions',
    { ...as, body: { key: 'k5', config: { request: { path: '/x', headers: { X: 'a\r\nb' } } } } }, 'invalid_field');
  await expectRejected('action scope changed by PATCH', 'PATCH', '/actions/bad-input-action',
    { ...as, body: { integrationKey: 'stripe' } }, 'invalid_field');
  await expectRejected('action in an unknown integration', 'POST', '/actions',
    { ...as, body: { key: 'k6', integrationKey: 'no-such', config: { request: { path: '/x' } } } }, 'integration_not_found');
  for (const selector of ['no-such-action', 'a'.repeat(300), '%00']) {
    await expectRejected(`GET /actions/${selector.slice(0, 20)}`, 'GET', `/actions/${selector}`, as,
      ['action_not_found', 'not_found']);
  }
  await expectRejected('run: input breaks the schema', 'POST', '/actions/bad-input-action/run',
    { ...as, body: { connectionKey: 'bad-actions-1', input: { n: 9 } } }, 'invalid_input');
  await expectRejected('run: input missing a required field', 'POST', '/actions/bad-input-action/run',
    { ...as, body: { connectionKey: 'bad-actions-1', input: {} } }, 'invalid_input');
  await expectRejected('act: key and id', 'POST', '/act',
    { ...as, body: { connectionKey: 'bad-actions-1', key: 'a', id: 'b' } }, 'invalid_field');
  for (const v of [5, '', {}, 'x'.repeat(300)]) {
    await expectRejected(`act key ${JSON.stringify(v).slice(0, 20)}`, 'POST', '/act',
      { ...as, body: { connectionKey: 'bad-actions-1', key: v } }, ['invalid_field', 'missing_fields']);
  }
  await expectRejected('act meta not an object', 'POST', '/act',
    { ...as, body: { connectionKey: 'bad-actions-1', key: 'bad-input-action', meta: 'x' } }, 'invalid_field');
  for (const q of ['limit=0', 'limit=1001', 'limit=x', 'cursor=junk', 'cursor=5.', 'intent=' + 'a'.repeat(600),
    'intent=x&cursor=1.a']) {
    await expectRejected(`GET /actions?${q.slice(0, 40)}`, 'GET', `/actions?${q}`, as, 'invalid_field');
  }
  await expectRejected('GET /actions?externalAppId=unknown', 'GET', '/actions?externalAppId=no-such-app', as,
    'connector_not_found');
  for (const q of ['limit=0', 'cursor=junk', 'status=maybe', 'agentId=' + 'a'.repeat(300)]) {
    await expectRejected(`GET /action-run-logs?${q.slice(0, 40)}`, 'GET', `/action-run-logs?${q}`, as, 'invalid_field');
  }
  for (const id of ['run_nope', 'x'.repeat(300)]) {
    await expectRejected(`GET /action-run-logs/${id.slice(0, 20)}`, 'GET', `/action-run-logs/${id}`, as,
      'action_run_not_found');
    await expectRejected(`GET /action-run-logs/${id.slice(0, 20)}/details`, 'GET', `/action-run-logs/${id}/details`, as,
      'action_run_not_found');
  }
  await expectRejected('import version 2', 'POST', '/import', { ...as, body: { version: 2 } }, 'invalid_field');
  await expectRejected('import a client secret', 'POST', '/import', { ...as, body: {
    integrations: [{ key: 'stripe', connectorKey: 'stripe', parameters: { clientSecret: 's' } }] } }, 'invalid_field');
  await expectRejected('import an action of an unknown integration', 'POST', '/import', { ...as, body: {
    actions: [{ key: 'k', name: 'k', type: 'api-request-to-external-app', config: { request: { path: '/x' } },
      integrationKey: 'no-such' }] } }, 'integration_not_found');
  await expectRejected('import a connector that is not one', 'POST', '/import',
    { ...as, body: { connectors: [{ key: 'Bad Key' }] } }, ['invalid_field', 'missing_fields']);
  // An agent secret that is no agent's on /act.
  await expectRejected('act with an unknown agent secret', 'POST', '/act',
    { bearer: 'sk_ap_nope', body: { key: 'bad-input-action' } }, 'unauthorized');
});

test('raw TCP: garbage, oversized headers, smuggling shapes, bad chunking', async () => {
  const cases = [
    ['garbage text', 'HELLO THERE\r\n\r\n'],
    ['binary junk', Buffer.from([0, 1, 2, 3, 255, 254, 13, 10, 13, 10])],
    ['bad version', 'GET /health HTTP/9.9\r\nHost: x\r\n\r\n'],
    ['no spaces', 'GET/healthHTTP/1.1\r\n\r\n'],
    ['bad header line', 'GET /health HTTP/1.1\r\nHost x\r\n\r\n'],
    ['non-numeric Content-Length', 'POST /agent/register HTTP/1.1\r\nHost: x\r\nContent-Length: abc\r\n\r\n{}'],
    ['negative Content-Length', 'POST /agent/register HTTP/1.1\r\nHost: x\r\nContent-Length: -5\r\n\r\n{}'],
    ['two different Content-Lengths', 'POST /agent/register HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\n{}x'],
    ['bad chunk size', 'POST /agent/register HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nZZ\r\n{}\r\n0\r\n\r\n'],
  ];
  for (const [what, data] of cases) {
    const r = await rawHttp(srv.port, data, { timeoutMs: 5000 });
    assert.equal(r.timedOut, false, `${what}: the server answers or closes, it does not hang`);
    if (r.data.length > 0) {
      const res = parseRawResponse(r.data);
      assert.ok(res, `${what}: a parseable HTTP response, got ${JSON.stringify(r.data.slice(0, 120))}`);
      assert.ok(res.status >= 400 && res.status < 500, `${what}: 4xx, got ${res.status}`);
      assert.equal(JSON.parse(res.body).error, res.status === 400 ? 'bad_request' : JSON.parse(res.body).error);
    }
  }
  // The first garbage case must get a real bad_request, not a silent close.
  const g = parseRawResponse((await rawHttp(srv.port, 'HELLO THERE\r\n\r\n')).data);
  assert.equal(g?.status, 400);

  const bigHeader = await rawHttp(srv.port, `GET /health HTTP/1.1\r\nHost: x\r\nX-Big: ${'a'.repeat(17 * 1024)}\r\n\r\n`);
  const bh = parseRawResponse(bigHeader.data);
  assert.equal(bh?.status, 431, `a 17 KiB header: ${JSON.stringify(bigHeader.data.slice(0, 120))}`);
  assert.equal(JSON.parse(bh.body).error, 'headers_too_large');
  const many = Array.from({ length: 1200 }, (_, i) => `X-H${i}: ${'v'.repeat(10)}`).join('\r\n');
  const manyHeaders = parseRawResponse((await rawHttp(srv.port, `GET /health HTTP/1.1\r\nHost: x\r\n${many}\r\n\r\n`)).data);
  assert.equal(manyHeaders?.status, 431, 'many small headers over 16 KiB in total');
  const longUrl = parseRawResponse((await rawHttp(srv.port, `GET /${'u'.repeat(20 * 1024)} HTTP/1.1\r\nHost: x\r\n\r\n`)).data);
  assert.ok(longUrl && longUrl.status >= 400 && longUrl.status < 500, `a 20 KiB URL gets a 4xx, got ${longUrl?.status}`);

  // Chunked body over the limit.
  const chunk = 'a'.repeat(64 * 1024);
  let chunked = 'POST /agent/register HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n';
  for (let i = 0; i < 20; i++) chunked += `${chunk.length.toString(16)}\r\n${chunk}\r\n`;
  chunked += '0\r\n\r\n';
  const ch = parseRawResponse((await rawHttp(srv.port, chunked)).data);
  assert.equal(ch?.status, 413, 'a 1.25 MiB chunked body');
  // Declared Content-Length over the limit is refused without reading the body.
  const declared = parseRawResponse((await rawHttp(srv.port,
    'POST /agent/register HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 999999999\r\n\r\n{')).data);
  assert.equal(declared?.status, 413, 'Content-Length: 999999999');

  // Path traversal does not escape.
  const trav = parseRawResponse((await rawHttp(srv.port, 'GET /docs/../../../../etc/passwd HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n')).data);
  assert.ok(trav && trav.status >= 400 && trav.status < 500, `traversal gets a 4xx, got ${trav?.status}`);
  assert.ok(!trav.body.includes('root:'), 'no file content leaks');
});

test('raw TCP: clients that disconnect mid-body or mid-headers', async () => {
  for (let i = 0; i < 20; i++) {
    await new Promise((resolve) => {
      const s = net.connect(srv.port, '127.0.0.1', () => {
        if (i % 2 === 0) {
          s.write(`POST /agent/register HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n{"name":"half`);
        } else {
          s.write('GET /permission/check?agent_id=ap_x&action=y HTTP/1.1\r\nHost: x\r\nAuthoriz');
        }
        setTimeout(() => { s.destroy(); resolve(); }, 20);
      });
      s.on('error', resolve);
    });
  }
  // Resets in the middle of a response write.
  for (let i = 0; i < 10; i++) {
    await new Promise((resolve) => {
      const s = net.connect(srv.port, '127.0.0.1', () => {
        s.write('GET /openapi.json HTTP/1.1\r\nHost: x\r\n\r\n');
        s.once('data', () => { s.resetAndDestroy(); resolve(); });
      });
      s.on('error', resolve);
    });
  }
  const h = await api(srv.url, 'GET', '/health');
  assert.equal(h.status, 200);
});

test('slowloris: partial requests do not stall other clients and are dropped at the read deadline', async () => {
  const s2 = await startServer({ args: ['--read-timeout', '2s', '--threads', '2'] });
  const sockets = [];
  try {
    // 30 connections that trickle a header byte at a time, and 10 that send half a request and stop.
    const closedAt = new Map();
    const t0 = Date.now();
    for (let i = 0; i < 40; i++) {
      const s = net.connect(s2.port, '127.0.0.1');
      s.on('error', () => {});
      s.on('close', () => closedAt.set(i, Date.now() - t0));
      s.write('GET /health HTTP/1.1\r\nHost: x\r\nX-Slow: ');
      sockets.push(s);
    }
    const trickle = setInterval(() => {
      for (let i = 0; i < 30; i++) if (!sockets[i].destroyed) sockets[i].write('a');
    }, 200);
    try {
      // Meanwhile, normal clients are answered promptly.
      for (let i = 0; i < 15; i++) {
        const start = Date.now();
        const res = await api(s2.url, 'GET', '/health', { headers: { Connection: 'close' } });
        assert.equal(res.status, 200);
        assert.ok(Date.now() - start < 1000, `request ${i} answered in ${Date.now() - start} ms while slow clients hang on`);
        await sleep(100);
      }
      // The silent half-requests are dropped at the read deadline (2 s), give or take.
      const deadline = Date.now() + 6000;
      while (Date.now() < deadline && [...Array(10).keys()].some((k) => !closedAt.has(30 + k))) await sleep(100);
      for (let k = 30; k < 40; k++) {
        assert.ok(closedAt.has(k), `silent partial request ${k} closed by the server within the read deadline`);
        assert.ok(closedAt.get(k) >= 1500, `not closed before the deadline (${closedAt.get(k)} ms)`);
      }
    } finally {
      clearInterval(trickle);
    }
    assert.equal((await api(s2.url, 'GET', '/health')).status, 200);
  } finally {
    for (const s of sockets) s.destroy();
    assert.equal(await s2.stop(), 0);
  }
});

test('after all of it the server is alive and healthy', async () => {
  const h = await api(srv.url, 'GET', '/health');
  assert.equal(h.status, 200);
  assert.equal(h.json.status, 'ok');
  assert.equal(srv.exited(), false);
  // And the normal flow still works.
  const c = await api(srv.url, 'POST', '/permission/grant', { cookie, body: { agent_id: B.agent_id, action: 'still_works' } });
  assert.equal(c.status, 201, c.text);
  const chk = await api(srv.url, 'GET', `/permission/check?agent_id=${B.agent_id}&action=still_works`, { bearer: B.secret });
  assert.equal(chk.json.allowed, true);
});

test('addresses with consecutive dots are refused', async () => {
  const s = await startServer({ args: ['--no-rate-limits'] });
  try {
    for (const developer_email of ['a..b@example.com', '.a@example.com', 'a.@example.com']) {
      const res = await api(s.url, 'POST', '/agent/register', { body: { name: 'n', developer_email } });
      expectError(res, 400, 'invalid_email');
    }
  } finally {
    await s.stop();
  }
});

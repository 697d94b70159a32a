// The activity log: every call and state change is an event with actor kind, actor id, action,
// target, outcome, request id, IP, user agent and time; GET /v1/activity filters and pages with a
// cursor; people see their own calls and their agents', admins see everything.

import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { startServer, api, registerAgent, signIn, uniqueEmail } from './lib/server.mjs';
import { expectError } from './lib/expect.mjs';

const adminEmail = uniqueEmail('act-admin');
const srv = await startServer({ args: ['--no-rate-limits', '--admin-email', adminEmail] });
after(() => srv.stop());
const admin = await signIn(srv.url, adminEmail);
const aliceEmail = uniqueEmail('act-alice');
const alice = await signIn(srv.url, aliceEmail);
const bob = await signIn(srv.url, uniqueEmail('act-bob'));
const agent = await registerAgent(srv.url);

async function activity(cookie, query = '') {
  const res = await api(srv.url, 'GET', `/v1/activity${query}`, { cookie });
  assert.equal(res.status, 200, res.text);
  return res.json;
}

test('a grant, a check and a denied check are events with who, what, how and where', async () => {
  const grant = await api(srv.url, 'POST', '/permission/grant', {
    cookie: alice, body: { agent_id: agent.agent_id, action: 'act_read' },
    headers: { 'User-Agent': 'activity-test/1.0' },
  });
  assert.equal(grant.status, 201);
  const allowed = await api(srv.url, 'GET',
    `/permission/check?agent_id=${agent.agent_id}&action=act_read`, { bearer: agent.secret });
  const denied = await api(srv.url, 'GET',
    `/permission/check?agent_id=${agent.agent_id}&action=act_write`, { bearer: agent.secret });
  assert.equal(allowed.json.allowed, true);
  assert.equal(denied.json.allowed, false);

  const { data } = await activity(alice, `?agent_id=${agent.agent_id}`);
  const g = data.find((e) => e.request_id === grant.headers.get('x-request-id'));
  assert.ok(g, 'the grant is in the log under its request id');
  assert.equal(g.action, 'permission.grant');
  assert.equal(g.actor_kind, 'session');
  assert.match(g.actor_id, /^usr_/);
  assert.equal(g.target, grant.json.permission_id);
  assert.equal(g.agent_id, agent.agent_id);
  assert.equal(g.outcome, 'success');
  assert.equal(g.status, 201);
  assert.equal(g.ip, '127.0.0.1');
  assert.equal(g.user_agent, 'activity-test/1.0');
  assert.ok(Math.abs(Date.parse(g.at) - Date.now()) < 60000);
  assert.match(g.id, /^evt_\d+$/);

  const a = data.find((e) => e.request_id === allowed.headers.get('x-request-id'));
  assert.ok(a, 'checks are in the log too');
  assert.equal(a.action, 'permission.check');
  assert.equal(a.actor_kind, 'agent');
  assert.equal(a.actor_id, agent.agent_id);
  assert.equal(a.target, 'act_read');
  assert.equal(a.outcome, 'success');
  const d = data.find((e) => e.request_id === denied.headers.get('x-request-id'));
  assert.equal(d.outcome, 'denied');
  assert.ok(d.error, 'a denial carries its reason');
  // Newest first.
  const seqs = data.map((e) => Number(e.id.slice(4)));
  assert.deepEqual(seqs, [...seqs].sort((x, y) => y - x));
});

test('failed calls are events with their error code; tokens act as api_token', async () => {
  const bad = await api(srv.url, 'POST', '/permission/grant', {
    cookie: alice, body: { agent_id: 'ap_doesnotexist00000', action: 'x' },
  });
  expectError(bad, 404, 'agent_not_found');
  const t = (await api(srv.url, 'POST', '/v1/tokens', {
    cookie: alice, body: { name: 'act', abilities: ['permission:view-any', 'activity:view-any'] },
  })).json;
  const list = await api(srv.url, 'GET', '/permissions', { bearer: t.token });
  assert.equal(list.status, 200);
  const missing = await api(srv.url, 'POST', '/permission/revoke', { bearer: t.token, body: {} });
  expectError(missing, 403, 'token_missing_ability');

  const res = await api(srv.url, 'GET', '/v1/activity?limit=100', { bearer: t.token });
  assert.equal(res.status, 200);
  const byId = (r) => res.json.data.find((e) => e.request_id === r.headers.get('x-request-id'));
  const b = byId(bad);
  assert.equal(b.outcome, 'error');
  assert.equal(b.error, 'agent_not_found');
  assert.equal(b.status, 404);
  const l = byId(list);
  assert.equal(l.action, 'permission.list');
  assert.equal(l.actor_kind, 'api_token');
  assert.equal(l.actor_id, t.id);
  const m = byId(missing);
  assert.equal(m.error, 'token_missing_ability');
  assert.equal(m.action, 'permission.revoke');
  const created = res.json.data.find((e) => e.action === 'token.create' && e.target === t.id);
  assert.ok(created, 'minting the token is an event');
});

test('filters: actor kind, actor id, agent, action, outcome, since and until', async () => {
  const before = new Date(Date.now() - 1000).toISOString();
  const other = await registerAgent(srv.url);
  await api(srv.url, 'POST', '/permission/grant', {
    cookie: admin, body: { agent_id: other.agent_id, action: 'act_filter' },
  });
  await api(srv.url, 'GET', `/permission/check?agent_id=${other.agent_id}&action=act_filter`,
    { bearer: other.secret });
  await api(srv.url, 'GET', `/permission/check?agent_id=${other.agent_id}&action=nope`,
    { bearer: other.secret });

  const byAgent = await activity(admin, `?agent_id=${other.agent_id}`);
  assert.ok(byAgent.data.length >= 4, JSON.stringify(byAgent.data.map((e) => e.action)));
  assert.ok(byAgent.data.every((e) => e.agent_id === other.agent_id));
  const checks = await activity(admin, `?agent_id=${other.agent_id}&action=permission.check`);
  assert.equal(checks.data.length, 2);
  const deniedOnly = await activity(admin, `?agent_id=${other.agent_id}&outcome=denied`);
  assert.equal(deniedOnly.data.length, 1);
  assert.equal(deniedOnly.data[0].target, 'nope');
  const agents = await activity(admin, `?actor_kind=agent&actor_id=${other.agent_id}`);
  assert.equal(agents.data.length, 2);
  const registered = await activity(admin, `?action=agent.register&agent_id=${other.agent_id}`);
  assert.equal(registered.data.length, 1);
  assert.equal(registered.data[0].actor_kind, 'anonymous');
  assert.equal(registered.data[0].status, 201);
  const since = await activity(admin, `?agent_id=${other.agent_id}&since=${encodeURIComponent(before)}`);
  assert.equal(since.data.length, byAgent.data.length);
  const until = await activity(admin, `?agent_id=${other.agent_id}&until=${encodeURIComponent(before)}`);
  assert.equal(until.data.length, 0);
});

test('cursor pagination walks the whole log once, newest first', async () => {
  const a = await registerAgent(srv.url);
  for (let i = 0; i < 7; i++) {
    await api(srv.url, 'GET', `/permission/check?agent_id=${a.agent_id}&action=page_${i}`,
      { bearer: a.secret });
  }
  const seen = [];
  let cursor = null;
  let pages = 0;
  do {
    const q = `?agent_id=${a.agent_id}&limit=3${cursor ? `&cursor=${cursor}` : ''}`;
    const page = await activity(admin, q);
    assert.ok(page.data.length <= 3);
    seen.push(...page.data);
    cursor = page.next_cursor;
    pages += 1;
  } while (cursor && pages < 10);
  assert.equal(seen.length, 8, 'seven checks and the registration');
  assert.equal(new Set(seen.map((e) => e.id)).size, 8, 'no event twice');
  assert.equal(pages, 3);
  assert.deepEqual(seen.slice(0, 7).map((e) => e.target),
    ['page_6', 'page_5', 'page_4', 'page_3', 'page_2', 'page_1', 'page_0']);
});

test('people see their own calls and their agents; admins see everything', async () => {
  const mine = await registerAgent(srv.url);
  await api(srv.url, 'POST', '/permission/grant', {
    cookie: alice, body: { agent_id: mine.agent_id, action: 'act_vis' },
  });
  await api(srv.url, 'GET', `/permission/check?agent_id=${mine.agent_id}&action=act_vis`,
    { bearer: mine.secret });
  const bobView = await activity(bob, `?agent_id=${mine.agent_id}`);
  assert.equal(bobView.data.length, 0, 'Bob sees nothing of an agent he has no part in');
  const bobOwn = await activity(bob);
  assert.ok(bobOwn.data.every((e) => e.agent_id !== mine.agent_id));
  const aliceView = await activity(alice, `?agent_id=${mine.agent_id}`);
  assert.ok(aliceView.data.some((e) => e.action === 'permission.check'),
    "Alice sees the checks of an agent she granted to");
  const adminView = await activity(admin, `?agent_id=${mine.agent_id}`);
  assert.ok(adminView.data.length >= aliceView.data.length);
});

test('bad filters get structured 400s; no credential gets 401', async () => {
  for (const [q, words] of [
    ['?actor_kind=robot', ['actor_kind']],
    ['?outcome=maybe', ['outcome']],
    ['?since=yesterday', ['since']],
    ['?until=2026-13-01T00:00:00Z', ['until']],
    ['?limit=0', ['limit']],
    ['?limit=501', ['limit']],
    ['?limit=ten', ['limit']],
    ['?cursor=evt_abc', ['cursor']],
    ['?cursor=-5', ['cursor']],
  ]) {
    expectError(await api(srv.url, 'GET', `/v1/activity${q}`, { cookie: alice }), 400,
      'invalid_field', { messageIncludes: words });
  }
  expectError(await api(srv.url, 'GET', '/v1/activity'), 401, 'unauthorized');
});

test('state changes are on disk before the response (SIGKILL right after)', async () => {
  const s = await startServer({ args: ['--no-rate-limits'] });
  let s2;
  try {
    const email = uniqueEmail('act-kill');
    const cookie = await signIn(s.url, email);
    const a = await registerAgent(s.url);
    const g = await api(s.url, 'POST', '/permission/grant', {
      cookie, body: { agent_id: a.agent_id, action: 'act_durable' },
    });
    assert.equal(g.status, 201);
    await s.stop({ signal: 'SIGKILL' });
    s2 = await startServer({ args: ['--no-rate-limits'], dataDir: s.dataDir });
    const cookie2 = await signIn(s2.url, email);
    const { json } = await api(s2.url, 'GET', `/v1/activity?agent_id=${a.agent_id}&action=permission.grant`,
      { cookie: cookie2 });
    assert.equal(json.data.length, 1);
    assert.equal(json.data[0].target, g.json.permission_id);
    assert.equal(json.data[0].request_id, g.headers.get('x-request-id'));
  } finally {
    await s.stop();
    if (s2) await s2.stop();
  }
});

test('the log is valid UTF-8 whatever clients send, and a wrong secret is not logged as the agent', async () => {
  const a = await registerAgent(srv.url);
  const raw = await api(srv.url, 'GET', `/permission/check?agent_id=${a.agent_id}&action=%FFbad`,
    { bearer: a.secret });
  assert.equal(raw.status, 200);
  const forged = await api(srv.url, 'GET', `/permission/check?agent_id=${a.agent_id}&action=x`,
    { bearer: 'sk_ap_' + '0'.repeat(64) });
  expectError(forged, 401, 'unauthorized');
  const res = await fetch(`${srv.url}/v1/activity?agent_id=${a.agent_id}`,
    { headers: { Cookie: `ap_session=${admin}` } });
  const bytes = Buffer.from(await res.arrayBuffer());
  assert.doesNotThrow(() => new TextDecoder('utf-8', { fatal: true }).decode(bytes));
  const { data } = JSON.parse(bytes.toString('utf8'));
  const bad = data.find((e) => e.request_id === raw.headers.get('x-request-id'));
  assert.equal(bad.target, '\uFFFDbad');
  const f = data.find((e) => e.request_id === forged.headers.get('x-request-id'));
  assert.equal(f.actor_kind, 'anonymous');
  assert.equal(f.actor_id, null);
  assert.equal(f.agent_id, a.agent_id);
  assert.equal(f.outcome, 'error');
});

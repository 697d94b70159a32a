// The AgentPass reference's quickstart, request for request: register, sign in through a magic
// link mailed to a real SMTP server, grant, check. Plus the read endpoints and real counters.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startServer, api, uniqueEmail } from './lib/server.mjs';
import { isoNear, eventually } from './lib/expect.mjs';

const DAY = 24 * 3600 * 1000;
let srv;

before(async () => { srv = await startServer({ smtp: true }); });
after(async () => {
  if (srv) assert.equal(await srv.stop(), 0, 'SIGTERM must end the server with exit code 0');
});

async function stats() {
  const res = await api(srv.url, 'GET', '/stats');
  assert.equal(res.status, 200, res.text);
  return res.json;
}

test('quickstart: register, sign in by mailed link, grant 7d, check', async () => {
  const url = srv.url;
  const start = await stats();
  assert.deepEqual(start, { agents_registered: 0, permissions_granted: 0, checks_today: 0, checks_total: 0 },
    'a fresh data dir starts with zero counters');

  // Step 1 — register, with the reference's body.
  const reg = await api(url, 'POST', '/agent/register', {
    body: { name: 'my-booking-agent', description: 'Books flights for users', developer_email: 'you@example.com' },
  });
  assert.equal(reg.status, 201, reg.text);
  assert.match(reg.headers.get('content-type'), /^application\/json/);
  assert.match(reg.json.agent_id, /^ap_[A-Za-z0-9]{8,}$/);
  assert.match(reg.json.secret, /^sk_ap_[0-9a-f]{64}$/, 'secret is sk_ap_ + 64 hex chars');
  assert.equal(reg.json.docs_url, `${url}/docs`);
  assert.equal(reg.json.dashboard_url, `${url}/dashboard`);
  assert.equal(reg.json.note, 'Save your secret — shown once only');
  const agentId = reg.json.agent_id;
  const secret = reg.json.secret;

  // A second registration gets a different id and secret.
  const reg2 = await api(url, 'POST', '/agent/register', {
    body: { name: 'my-agent', description: 'Does tasks', developer_email: 'you@example.com' },
  });
  assert.equal(reg2.status, 201, reg2.text);
  assert.notEqual(reg2.json.agent_id, agentId);
  assert.notEqual(reg2.json.secret, secret);

  // Sign in: the link is mailed to a real SMTP server; follow it.
  const email = uniqueEmail('person');
  const mailsBefore = srv.smtp.messages.length;
  const ml = await api(url, 'POST', '/auth/magic-link', { body: { email } });
  assert.equal(ml.status, 200, ml.text);
  assert.deepEqual(ml.json, { message: 'Check your email for a sign-in link.' });
  const mail = await srv.smtp.waitForMessage((m, i) => i >= mailsBefore && m.to.includes(email), 10000);
  assert.equal(mail.from, 'agentgate@test.local', 'envelope sender is --mail-from');
  assert.deepEqual(mail.to, [email]);
  const link = (mail.text.match(/(https?:\/\/[^\s"'<>]+\/auth\/verify\?token=ml_[A-Za-z0-9_-]+)/) || [])[1];
  assert.ok(link, `the mail carries the sign-in link:\n${mail.raw}`);
  assert.ok(link.startsWith(`${url}/auth/verify?token=ml_`), `link ${link} is on the server's base URL`);
  assert.ok(!srv.logs().includes(link), 'with SMTP configured the link is not logged');
  const verify = await fetch(link, { redirect: 'manual' });
  assert.equal(verify.status, 302);
  const cookie = verify.headers.getSetCookie().map((c) => c.match(/^ap_session=([^;]+)/)).find(Boolean)?.[1];
  assert.ok(cookie, 'ap_session cookie set');

  // Step 2 — grant, with the reference's request (Cookie header, expires_in 7d).
  const t0 = Date.now();
  const grant = await api(url, 'POST', '/permission/grant', {
    cookie, body: { agent_id: agentId, action: 'book_flight', expires_in: '7d' },
  });
  assert.equal(grant.status, 201, grant.text);
  const g = grant.json;
  assert.match(g.permission_id, /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/);
  assert.equal(g.agent_id, agentId);
  assert.equal(g.action, 'book_flight');
  assert.equal(g.granted_by, email);
  isoNear(g.expires_at, t0 + 7 * DAY, 5000, 'grant expires_at');
  assert.equal(g.scope, null);
  assert.equal(g.metadata, null);
  isoNear(g.created_at, t0, 5000, 'grant created_at');

  // Step 3 — the agent checks before acting.
  const check = await api(url, 'GET', `/permission/check?agent_id=${agentId}&action=book_flight`, { bearer: secret });
  assert.equal(check.status, 200, check.text);
  assert.equal(check.json.allowed, true);
  assert.equal(check.json.granted_by, email);
  assert.equal(check.json.expires_at, g.expires_at);
  isoNear(check.json.expires_at, Date.now() + 7 * DAY, 10000, 'check expires_at');
  assert.equal(check.json.scope, null);
  assert.ok('scope' in check.json, 'scope is present (null), not omitted');
  assert.equal(typeof check.json.latency_ms, 'number');
  assert.ok(check.json.latency_ms >= 0 && check.json.latency_ms < 1000, `latency_ms ${check.json.latency_ms}`);
  assert.equal(check.json.permission_id, g.permission_id);

  // Another action is denied, in the reference's denied shape.
  const denied = await api(url, 'GET', `/permission/check?agent_id=${agentId}&action=cancel_flight`, { bearer: secret });
  assert.equal(denied.status, 200, denied.text);
  assert.deepEqual(Object.keys(denied.json).sort(), ['allowed', 'latency_ms', 'reason']);
  assert.equal(denied.json.allowed, false);
  assert.equal(denied.json.reason, 'Permission denied or expired');
  assert.equal(typeof denied.json.latency_ms, 'number');

  // The other agent has no grant for book_flight.
  const other = await api(url, 'GET', `/permission/check?agent_id=${reg2.json.agent_id}&action=book_flight`,
    { bearer: reg2.json.secret });
  assert.equal(other.status, 200, other.text);
  assert.equal(other.json.allowed, false);

  // GET /agent/:id — the profile with its active permissions and last_seen.
  const prof = await eventually(async () => {
    const r = await api(url, 'GET', `/agent/${agentId}`, { bearer: secret });
    return r.status === 200 && r.json.last_seen !== null ? r : null;
  }) ?? await api(url, 'GET', `/agent/${agentId}`, { bearer: secret });
  assert.equal(prof.status, 200, prof.text);
  const p = prof.json;
  assert.equal(p.agent_id, agentId);
  assert.equal(p.name, 'my-booking-agent');
  assert.equal(p.description, 'Books flights for users');
  assert.equal(p.developer_email, 'you@example.com');
  assert.equal(p.metadata, null);
  assert.equal(p.status, 'active');
  isoNear(p.created_at, t0, 60000, 'agent created_at');
  isoNear(p.last_seen, Date.now(), 60000, 'agent last_seen after a check');
  assert.equal(p.active_permissions.length, 1);
  const ap = p.active_permissions[0];
  assert.equal(ap.permission_id, g.permission_id);
  assert.equal(ap.action, 'book_flight');
  assert.equal(ap.granted_by, email);
  assert.equal(ap.expires_at, g.expires_at);
  assert.equal(ap.scope, null);
  assert.equal(ap.created_at, g.created_at);

  // The second agent checked once (denied): last_seen set, no permissions.
  const prof2 = await eventually(async () => {
    const r = await api(url, 'GET', `/agent/${reg2.json.agent_id}`, { bearer: reg2.json.secret });
    return r.status === 200 && r.json.last_seen !== null ? r : null;
  }) ?? await api(url, 'GET', `/agent/${reg2.json.agent_id}`, { bearer: reg2.json.secret });
  assert.equal(prof2.status, 200, prof2.text);
  isoNear(prof2.json.last_seen, Date.now(), 60000, 'last_seen after a denied check');
  assert.deepEqual(prof2.json.active_permissions, []);
  // A third agent that never checks: last_seen null.
  const reg3 = await api(url, 'POST', '/agent/register', { body: { name: 'idle-agent', developer_email: 'you@example.com' } });
  assert.equal(reg3.status, 201, reg3.text);
  const prof3 = await api(url, 'GET', `/agent/${reg3.json.agent_id}`, { bearer: reg3.json.secret });
  assert.equal(prof3.status, 200, prof3.text);
  assert.equal(prof3.json.last_seen, null);
  assert.deepEqual(prof3.json.active_permissions, []);

  // GET /permissions — the person's grants.
  const list = await api(url, 'GET', '/permissions', { cookie });
  assert.equal(list.status, 200, list.text);
  assert.equal(list.json.permissions.length, 1);
  const lp = list.json.permissions[0];
  assert.deepEqual(
    { ...lp },
    {
      permission_id: g.permission_id, agent_id: agentId, action: 'book_flight', granted_by: email,
      expires_at: g.expires_at, scope: null, metadata: null, created_at: g.created_at,
      status: 'active', revoked_at: null,
    });
  const filtered = await api(url, 'GET', `/permissions?agent_id=${reg2.json.agent_id}`, { cookie });
  assert.equal(filtered.status, 200, filtered.text);
  assert.deepEqual(filtered.json.permissions, []);

  // GET /auth/session — who am I.
  const sess = await api(url, 'GET', '/auth/session', { cookie });
  assert.equal(sess.status, 200, sess.text);
  assert.equal(sess.json.email, email);
  assert.match(sess.json.user_id, /^usr_/);
  assert.equal(sess.json.is_admin, true, 'first person to sign in on a server with no admin named is admin');
  isoNear(sess.json.expires_at, Date.now() + 30 * DAY, 60000, 'session expires_at (30 days)');

  // /stats counts for real: 3 agents, 1 grant, 3 checks.
  const s1 = await eventually(async () => {
    const s = await stats();
    return s.checks_total >= 3 ? s : null;
  }) ?? await stats();
  assert.deepEqual(s1, { agents_registered: 3, permissions_granted: 1, checks_today: 3, checks_total: 3 });

  // Exactly N more checks (GET and POST, allowed and denied) raise both counters by exactly N.
  const N = 7;
  for (let i = 0; i < N; i++) {
    const r = i % 2 === 0
      ? await api(url, 'GET', `/permission/check?agent_id=${agentId}&action=book_flight`, { bearer: secret })
      : await api(url, 'POST', '/permission/check', { bearer: secret, body: { agent_id: agentId, action: 'x' } });
    assert.equal(r.status, 200, r.text);
  }
  const s2 = await eventually(async () => {
    const s = await stats();
    return s.checks_total >= 3 + N ? s : null;
  }) ?? await stats();
  assert.equal(s2.checks_total, 3 + N);
  assert.equal(s2.checks_today, 3 + N);
  assert.equal(s2.agents_registered, 3);
  assert.equal(s2.permissions_granted, 1);

  // A failed check (wrong secret) is not a check.
  const bad = await api(url, 'GET', `/permission/check?agent_id=${agentId}&action=book_flight`, { bearer: reg2.json.secret });
  assert.equal(bad.status, 403, bad.text);

  // Grants count every grant ever made, even when revoked.
  const g2 = await api(url, 'POST', '/permission/grant', { cookie, body: { agent_id: agentId, action: 'cancel_flight' } });
  assert.equal(g2.status, 201, g2.text);
  assert.equal(g2.json.expires_at, null, 'no expires_in: never expires');
  const rv = await api(url, 'POST', '/permission/revoke', { cookie, body: { permission_id: g2.json.permission_id } });
  assert.equal(rv.status, 200, rv.text);
  const s3 = await stats();
  assert.equal(s3.permissions_granted, 2);
  assert.equal(s3.checks_total, 3 + N, 'a refused check is not counted');
});

test('health answers in the documented shape', async () => {
  const res = await api(srv.url, 'GET', '/health');
  assert.equal(res.status, 200, res.text);
  assert.match(res.headers.get('content-type'), /^application\/json/);
  assert.deepEqual(Object.keys(res.json).sort(), ['status', 'timestamp', 'version']);
  assert.equal(res.json.status, 'ok');
  assert.match(res.json.version, /^\d+\.\d+\.\d+/);
  isoNear(res.json.timestamp, Date.now(), 5000, 'health timestamp');
  assert.match(res.headers.get('x-request-id'), /^req_[A-Za-z0-9]+$/);
});

test('stats has exactly the documented fields, all integers', async () => {
  const s = await stats();
  assert.deepEqual(Object.keys(s).sort(), ['agents_registered', 'checks_today', 'checks_total', 'permissions_granted']);
  for (const v of Object.values(s)) assert.ok(Number.isInteger(v) && v >= 0);
});

test('docs, openapi.json and llms.txt are served', async () => {
  const docs = await fetch(`${srv.url}/docs`);
  assert.equal(docs.status, 200);
  assert.match(docs.headers.get('content-type'), /^text\/html/);
  assert.match(await docs.text(), /permission\/check/);
  const oa = await api(srv.url, 'GET', '/openapi.json');
  assert.equal(oa.status, 200);
  assert.match(String(oa.json.openapi), /^3\./);
  for (const p of ['/agent/register', '/permission/check', '/permission/grant', '/permission/revoke',
    '/auth/magic-link', '/auth/verify', '/health', '/stats']) {
    assert.ok(oa.json.paths && oa.json.paths[p], `openapi.json lists ${p}`);
  }
  const llms = await fetch(`${srv.url}/llms.txt`);
  assert.equal(llms.status, 200);
  assert.match(llms.headers.get('content-type'), /^text\/plain/);
  assert.match(await llms.text(), /\/permission\/check/);
});

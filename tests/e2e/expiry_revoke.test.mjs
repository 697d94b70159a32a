// Expiry, revocation (both forms), who may revoke, expires_in validation, and grants surviving a
// restart on the same data directory.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startServer, api, registerAgent, signIn, uniqueEmail } from './lib/server.mjs';
import { expectError, isoNear, sleep } from './lib/expect.mjs';

const ADMIN = 'boss-admin@example.com';
let srv;
let A;
let alice; let bob; let admin;
let aliceEmail;

before(async () => {
  srv = await startServer({ args: ['--admin-email', ADMIN, '--rate-limit', 'register=1000/h'] });
  A = await registerAgent(srv.url);
  aliceEmail = uniqueEmail('alice');
  alice = await signIn(srv.url, aliceEmail);
  bob = await signIn(srv.url, uniqueEmail('bob'));
  admin = await signIn(srv.url, ADMIN);
});
after(async () => {
  if (srv) assert.equal(await srv.stop(), 0);
});

const grant = (cookie, body) => api(srv.url, 'POST', '/permission/grant', { cookie, body });
const revoke = (cookie, body) => api(srv.url, 'POST', '/permission/revoke', { cookie, body });
const check = (agent, action) => api(srv.url, 'GET',
  `/permission/check?agent_id=${agent.agent_id}&action=${encodeURIComponent(action)}`, { bearer: agent.secret });

test('a 2s grant is allowed now and denied once it has expired', async () => {
  const t0 = Date.now();
  const g = await grant(alice, { agent_id: A.agent_id, action: 'short_lived', expires_in: '2s' });
  assert.equal(g.status, 201, g.text);
  isoNear(g.json.expires_at, t0 + 2000, 1500, 'expires_at of a 2s grant');
  const now = await check(A, 'short_lived');
  assert.equal(now.json.allowed, true, now.text);
  assert.equal(now.json.expires_at, g.json.expires_at);
  const post = await api(srv.url, 'POST', '/permission/check',
    { bearer: A.secret, body: { agent_id: A.agent_id, action: 'short_lived' } });
  assert.equal(post.json.allowed, true, post.text);

  const wait = Date.parse(g.json.expires_at) + 1100 - Date.now();
  await sleep(Math.max(wait, 0));
  const later = await check(A, 'short_lived');
  assert.equal(later.status, 200);
  assert.deepEqual({ allowed: later.json.allowed, reason: later.json.reason },
    { allowed: false, reason: 'Permission denied or expired' });
  const laterPost = await api(srv.url, 'POST', '/permission/check',
    { bearer: A.secret, body: { agent_id: A.agent_id, action: 'short_lived' } });
  assert.equal(laterPost.json.allowed, false);

  // Listed as expired with status=all, absent from the active list and from the profile.
  const all = await api(srv.url, 'GET', `/permissions?agent_id=${A.agent_id}&status=all`, { cookie: alice });
  const mine = all.json.permissions.find((p) => p.permission_id === g.json.permission_id);
  assert.ok(mine, 'expired grant is listed with status=all');
  assert.equal(mine.status, 'expired');
  const active = await api(srv.url, 'GET', `/permissions?agent_id=${A.agent_id}&status=active`, { cookie: alice });
  assert.ok(!active.json.permissions.some((p) => p.permission_id === g.json.permission_id));
  const prof = await api(srv.url, 'GET', `/agent/${A.agent_id}`, { bearer: A.secret });
  assert.ok(!prof.json.active_permissions.some((p) => p.permission_id === g.json.permission_id));
  // Revoking an expired grant: nothing active matched.
  expectError(await revoke(alice, { permission_id: g.json.permission_id }), 404, 'permission_not_found');
});

test('revoke by agent_id+action: denied on the very next check; twice → permission_not_found', async () => {
  const g = await grant(alice, { agent_id: A.agent_id, action: 'revoke_pair' });
  assert.equal(g.status, 201, g.text);
  assert.equal((await check(A, 'revoke_pair')).json.allowed, true);
  const t0 = Date.now();
  const r = await revoke(alice, { agent_id: A.agent_id, action: 'revoke_pair' });
  assert.equal(r.status, 200, r.text);
  assert.equal(r.json.revoked, true);
  assert.equal(r.json.count, 1);
  assert.deepEqual(r.json.permission_ids, [g.json.permission_id]);
  isoNear(r.json.revoked_at, t0, 5000, 'revoked_at');
  const next = await check(A, 'revoke_pair');
  assert.equal(next.json.allowed, false, 'revocation takes effect on the very next check');
  expectError(await revoke(alice, { agent_id: A.agent_id, action: 'revoke_pair' }), 404, 'permission_not_found');
  expectError(await revoke(alice, { permission_id: g.json.permission_id }), 404, 'permission_not_found');

  const all = await api(srv.url, 'GET', `/permissions?agent_id=${A.agent_id}&status=all`, { cookie: alice });
  const listed = all.json.permissions.find((p) => p.permission_id === g.json.permission_id);
  assert.equal(listed.status, 'revoked');
  assert.equal(listed.revoked_at, r.json.revoked_at);
});

test('revoke by permission_id: denied on the very next check; twice → permission_not_found', async () => {
  const g = await grant(alice, { agent_id: A.agent_id, action: 'revoke_id', expires_in: '1h' });
  assert.equal(g.status, 201, g.text);
  assert.equal((await check(A, 'revoke_id')).json.allowed, true);
  const r = await revoke(alice, { permission_id: g.json.permission_id });
  assert.equal(r.status, 200, r.text);
  assert.equal(r.json.revoked, true);
  assert.equal(r.json.count, 1);
  assert.deepEqual(r.json.permission_ids, [g.json.permission_id]);
  const next = await api(srv.url, 'POST', '/permission/check',
    { bearer: A.secret, body: { agent_id: A.agent_id, action: 'revoke_id' } });
  assert.equal(next.json.allowed, false);
  expectError(await revoke(alice, { permission_id: g.json.permission_id }), 404, 'permission_not_found');
});

test('several grants coexist; the longest-lasting answers; revoke by pair revokes all of mine', async () => {
  const action = 'multi_grant';
  const g1 = await grant(alice, { agent_id: A.agent_id, action, expires_in: '1h' });
  const g2 = await grant(alice, { agent_id: A.agent_id, action, expires_in: '7d' });
  const g3 = await grant(alice, { agent_id: A.agent_id, action, expires_in: '2h' });
  for (const g of [g1, g2, g3]) assert.equal(g.status, 201, g.text);
  const c = await check(A, action);
  assert.equal(c.json.allowed, true);
  assert.equal(c.json.permission_id, g2.json.permission_id, 'the 7d grant answers');
  assert.equal(c.json.expires_at, g2.json.expires_at);
  // Revoking the longest one hands over to the next.
  assert.equal((await revoke(alice, { permission_id: g2.json.permission_id })).status, 200);
  const c2 = await check(A, action);
  assert.equal(c2.json.permission_id, g3.json.permission_id, 'then the 2h grant answers');
  // A grant without expiry lasts longest.
  const g4 = await grant(alice, { agent_id: A.agent_id, action });
  const c3 = await check(A, action);
  assert.equal(c3.json.permission_id, g4.json.permission_id);
  assert.equal(c3.json.expires_at, null);
  const r = await revoke(alice, { agent_id: A.agent_id, action });
  assert.equal(r.status, 200, r.text);
  assert.equal(r.json.count, 3);
  assert.deepEqual([...r.json.permission_ids].sort(),
    [g1.json.permission_id, g3.json.permission_id, g4.json.permission_id].sort());
  assert.equal((await check(A, action)).json.allowed, false);
});

test('only the granter or an admin may revoke', async () => {
  const action = 'owned_by_alice';
  const g = await grant(alice, { agent_id: A.agent_id, action });
  assert.equal(g.status, 201, g.text);
  expectError(await revoke(bob, { permission_id: g.json.permission_id }), 403, 'forbidden');
  expectError(await revoke(bob, { agent_id: A.agent_id, action }), 403, 'forbidden');
  assert.equal((await check(A, action)).json.allowed, true, 'still allowed after refused revokes');

  const s = await api(srv.url, 'GET', '/auth/session', { cookie: admin });
  assert.equal(s.json.is_admin, true, '--admin-email names an admin');
  const sa = await api(srv.url, 'GET', '/auth/session', { cookie: alice });
  assert.equal(sa.json.is_admin, false, 'with an admin named, the first person to sign in is not admin');

  const r = await revoke(admin, { permission_id: g.json.permission_id });
  assert.equal(r.status, 200, r.text);
  assert.equal(r.json.count, 1);
  assert.equal((await check(A, action)).json.allowed, false);

  // By agent+action, a person revokes only their own; an admin revokes all of them.
  const ga = await grant(alice, { agent_id: A.agent_id, action: 'shared_action' });
  const gb = await grant(bob, { agent_id: A.agent_id, action: 'shared_action' });
  assert.equal(ga.status, 201);
  assert.equal(gb.status, 201);
  const rb = await revoke(bob, { agent_id: A.agent_id, action: 'shared_action' });
  assert.equal(rb.status, 200, rb.text);
  assert.equal(rb.json.count, 1);
  assert.deepEqual(rb.json.permission_ids, [gb.json.permission_id]);
  const still = await check(A, 'shared_action');
  assert.equal(still.json.allowed, true);
  assert.equal(still.json.granted_by, aliceEmail);
  const gb2 = await grant(bob, { agent_id: A.agent_id, action: 'shared_action' });
  assert.equal(gb2.status, 201);
  const ra = await revoke(admin, { agent_id: A.agent_id, action: 'shared_action' });
  assert.equal(ra.status, 200, ra.text);
  assert.equal(ra.json.count, 2);
  assert.equal((await check(A, 'shared_action')).json.allowed, false);
});

test('first person to sign in becomes admin when none is named; the second does not', async () => {
  const s2 = await startServer({ args: ['--rate-limit', 'register=1000/h'] });
  try {
    const agent = await registerAgent(s2.url);
    const firstEmail = uniqueEmail('first');
    const first = await signIn(s2.url, firstEmail);
    const second = await signIn(s2.url, uniqueEmail('second'));
    assert.equal((await api(s2.url, 'GET', '/auth/session', { cookie: first })).json.is_admin, true);
    assert.equal((await api(s2.url, 'GET', '/auth/session', { cookie: second })).json.is_admin, false);
    // Signing in again does not change who is admin.
    const secondAgain = await signIn(s2.url, uniqueEmail('third'));
    assert.equal((await api(s2.url, 'GET', '/auth/session', { cookie: secondAgain })).json.is_admin, false);
    const firstAgain = await signIn(s2.url, firstEmail);
    assert.equal((await api(s2.url, 'GET', '/auth/session', { cookie: firstAgain })).json.is_admin, true);

    const gFirst = await api(s2.url, 'POST', '/permission/grant', { cookie: first, body: { agent_id: agent.agent_id, action: 'a' } });
    const gSecond = await api(s2.url, 'POST', '/permission/grant', { cookie: second, body: { agent_id: agent.agent_id, action: 'b' } });
    assert.equal(gFirst.status, 201);
    assert.equal(gSecond.status, 201);
    expectError(await api(s2.url, 'POST', '/permission/revoke', { cookie: second, body: { permission_id: gFirst.json.permission_id } }),
      403, 'forbidden');
    const r = await api(s2.url, 'POST', '/permission/revoke', { cookie: first, body: { permission_id: gSecond.json.permission_id } });
    assert.equal(r.status, 200, r.text);
  } finally {
    assert.equal(await s2.stop(), 0);
  }
});

test('invalid expires_in forms → 400 invalid_expires_in; valid forms give the exact expiry', async () => {
  const bad = ['7D', '1.5h', '0s', '', '7', '-1d', '99999d', '3651d', 7, ' 7d', '7d ', '7 d', '+7d', '7dd', 'd', '1w', '7days',
    '0x10s', '1e3s'];
  for (const expires_in of bad) {
    const res = await grant(alice, { agent_id: A.agent_id, action: 'exp_probe', expires_in });
    expectError(res, 400, 'invalid_expires_in');
    assert.ok(res.json.message.includes('expires_in'), `message names expires_in for ${JSON.stringify(expires_in)}`);
  }
  assert.equal((await check(A, 'exp_probe')).json.allowed, false, 'no refused grant took effect');
  const good = { '60s': 60, '30m': 1800, '24h': 86400, '7d': 7 * 86400, '3650d': 3650 * 86400, '1s': 1 };
  for (const [expires_in, secs] of Object.entries(good)) {
    const t0 = Date.now();
    const res = await grant(alice, { agent_id: A.agent_id, action: 'exp_good', expires_in });
    assert.equal(res.status, 201, `${expires_in}: ${res.text}`);
    isoNear(res.json.expires_at, t0 + secs * 1000, 2500, `expires_at for ${expires_in}`);
  }
});

test('grants, sessions and secrets survive a restart on the same data dir', async () => {
  const s1 = await startServer({ args: ['--rate-limit', 'register=1000/h'] });
  const agent = await registerAgent(s1.url);
  const email = uniqueEmail('persist');
  const cookie = await signIn(s1.url, email);
  const keep = await api(s1.url, 'POST', '/permission/grant', { cookie, body: { agent_id: agent.agent_id, action: 'keep', expires_in: '7d' } });
  const gone = await api(s1.url, 'POST', '/permission/grant', { cookie, body: { agent_id: agent.agent_id, action: 'gone' } });
  assert.equal(keep.status, 201);
  assert.equal(gone.status, 201);
  assert.equal((await api(s1.url, 'POST', '/permission/revoke', { cookie, body: { permission_id: gone.json.permission_id } })).status, 200);
  assert.equal(await s1.stop(), 0);

  const s2 = await startServer({ dataDir: s1.dataDir });
  try {
    const k = await api(s2.url, 'GET', `/permission/check?agent_id=${agent.agent_id}&action=keep`, { bearer: agent.secret });
    assert.equal(k.status, 200, k.text);
    assert.equal(k.json.allowed, true);
    assert.equal(k.json.granted_by, email);
    assert.equal(k.json.expires_at, keep.json.expires_at);
    assert.equal(k.json.permission_id, keep.json.permission_id);
    const g = await api(s2.url, 'GET', `/permission/check?agent_id=${agent.agent_id}&action=gone`, { bearer: agent.secret });
    assert.equal(g.json.allowed, false, 'revoked stays revoked');
    const sess = await api(s2.url, 'GET', '/auth/session', { cookie });
    assert.equal(sess.status, 200, 'the session survives the restart');
    assert.equal(sess.json.email, email);
    const list = await api(s2.url, 'GET', '/permissions?status=all', { cookie });
    const statuses = Object.fromEntries(list.json.permissions.map((p) => [p.action, p.status]));
    assert.deepEqual(statuses, { keep: 'active', gone: 'revoked' });
    const stats = await api(s2.url, 'GET', '/stats');
    assert.equal(stats.json.agents_registered, 1);
    assert.equal(stats.json.permissions_granted, 2);
  } finally {
    assert.equal(await s2.stop(), 0);
  }
});

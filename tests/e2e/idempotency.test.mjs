// Idempotency-Key on writes: the first response is stored per credential, method, path and key;
// a retry gets it byte for byte, marked Idempotent-Replayed; the same key with another body is
// 422 idempotency_key_reused; validation failures are not stored.

import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { startServer, api, registerAgent, signIn, uniqueEmail } from './lib/server.mjs';
import { expectError } from './lib/expect.mjs';

const srv = await startServer({ args: ['--no-rate-limits'] });
after(() => srv.stop());
const alice = await signIn(srv.url, uniqueEmail('idem-alice'));
const bob = await signIn(srv.url, uniqueEmail('idem-bob'));
const agent = await registerAgent(srv.url);

async function grants(cookie) {
  const res = await api(srv.url, 'GET', `/permissions?agent_id=${agent.agent_id}`, { cookie });
  assert.equal(res.status, 200);
  return res.json.permissions;
}

test('a retried grant is answered byte for byte from the first, and grants once', async () => {
  const body = { agent_id: agent.agent_id, action: 'idem_once', expires_in: '1h' };
  const headers = { 'Idempotency-Key': 'k-7f1c9a52-retry' };
  const first = await api(srv.url, 'POST', '/permission/grant', { cookie: alice, body, headers });
  assert.equal(first.status, 201, first.text);
  assert.equal(first.headers.get('idempotent-replayed'), null);
  const again = await api(srv.url, 'POST', '/permission/grant', { cookie: alice, body, headers });
  assert.equal(again.status, 201);
  assert.equal(again.text, first.text, 'the same bytes');
  assert.equal(again.headers.get('idempotent-replayed'), 'true');
  assert.notEqual(again.headers.get('x-request-id'), first.headers.get('x-request-id'));
  assert.equal((await grants(alice)).filter((g) => g.action === 'idem_once').length, 1);
  // Without a key, the same body grants again.
  const plain = await api(srv.url, 'POST', '/permission/grant', { cookie: alice, body });
  assert.equal(plain.status, 201);
  assert.equal((await grants(alice)).filter((g) => g.action === 'idem_once').length, 2);
});

test('the same key with a different body is 422 idempotency_key_reused', async () => {
  const headers = { 'Idempotency-Key': 'k-reused' };
  const first = await api(srv.url, 'POST', '/permission/grant',
    { cookie: alice, body: { agent_id: agent.agent_id, action: 'idem_a' }, headers });
  assert.equal(first.status, 201);
  const other = await api(srv.url, 'POST', '/permission/grant',
    { cookie: alice, body: { agent_id: agent.agent_id, action: 'idem_b' }, headers });
  expectError(other, 422, 'idempotency_key_reused');
  assert.equal((await grants(alice)).filter((g) => g.action === 'idem_b').length, 0);
});

test('keys are scoped to the credential: another person may use the same key', async () => {
  const body = { agent_id: agent.agent_id, action: 'idem_scoped' };
  const headers = { 'Idempotency-Key': 'k-shared' };
  const a = await api(srv.url, 'POST', '/permission/grant', { cookie: alice, body, headers });
  const b = await api(srv.url, 'POST', '/permission/grant', { cookie: bob, body, headers });
  assert.equal(a.status, 201);
  assert.equal(b.status, 201);
  assert.equal(b.headers.get('idempotent-replayed'), null);
  assert.notEqual(a.json.permission_id, b.json.permission_id);
});

test('validation failures are not stored: the fixed request may reuse the key', async () => {
  const headers = { 'Idempotency-Key': 'k-fix-me' };
  const bad = await api(srv.url, 'POST', '/permission/grant',
    { cookie: alice, body: { agent_id: agent.agent_id, action: 'idem_fixed', expires_in: '7D' }, headers });
  expectError(bad, 400, 'invalid_expires_in');
  const good = await api(srv.url, 'POST', '/permission/grant',
    { cookie: alice, body: { agent_id: agent.agent_id, action: 'idem_fixed', expires_in: '7d' }, headers });
  assert.equal(good.status, 201, good.text);
  assert.equal(good.headers.get('idempotent-replayed'), null);
});

test('a replayed revoke does not revoke twice', async () => {
  const g = await api(srv.url, 'POST', '/permission/grant',
    { cookie: alice, body: { agent_id: agent.agent_id, action: 'idem_revoke' } });
  assert.equal(g.status, 201);
  const headers = { 'Idempotency-Key': 'k-revoke' };
  const body = { permission_id: g.json.permission_id };
  const first = await api(srv.url, 'POST', '/permission/revoke', { cookie: alice, body, headers });
  assert.equal(first.status, 200, first.text);
  const again = await api(srv.url, 'POST', '/permission/revoke', { cookie: alice, body, headers });
  assert.equal(again.status, 200, 'a retry gets the first answer, not 404');
  assert.equal(again.text, first.text);
  const fresh = await api(srv.url, 'POST', '/permission/revoke', { cookie: alice, body });
  expectError(fresh, 404, 'permission_not_found');
});

test('a malformed key is 400 invalid_field', async () => {
  for (const key of ['has space', 'x'.repeat(256)]) {
    const res = await api(srv.url, 'POST', '/permission/grant',
      { cookie: alice, body: { agent_id: agent.agent_id, action: 'idem_bad_key' }, headers: { 'Idempotency-Key': key } });
    expectError(res, 400, 'invalid_field');
  }
});

test('answers holding a secret replay it, and the stored copy is encrypted at rest', async () => {
  const { readdirSync, readFileSync, statSync } = await import('node:fs');
  const { join } = await import('node:path');
  const s = await startServer({ args: ['--no-rate-limits'] });
  try {
    const headers = { 'Idempotency-Key': 'k-secret-replay-1' };
    const body = { name: 'replayed', developer_email: 'dev@example.com' };
    const first = await api(s.url, 'POST', '/agent/register', { body, headers });
    assert.equal(first.status, 201, first.text);
    const again = await api(s.url, 'POST', '/agent/register', { body, headers });
    assert.equal(again.status, 201);
    assert.equal(again.headers.get('idempotent-replayed'), 'true');
    assert.equal(again.json.secret, first.json.secret, 'the same agent, once');
    assert.equal(again.json.agent_id, first.json.agent_id);

    const cookie = await signIn(s.url, uniqueEmail('idem-secret'));
    const tokenBody = { name: 'replay', abilities: ['permission:check'] };
    const h2 = { 'Idempotency-Key': 'k-secret-replay-2' };
    const t1 = await api(s.url, 'POST', '/v1/tokens', { cookie, body: tokenBody, headers: h2 });
    const t2 = await api(s.url, 'POST', '/v1/tokens', { cookie, body: tokenBody, headers: h2 });
    assert.equal(t1.status, 201);
    assert.equal(t2.text, t1.text);
    const list = await api(s.url, 'GET', '/v1/tokens', { cookie });
    assert.equal(list.json.data.filter((t) => t.name === 'replay').length, 1, 'minted once');

    await s.stop();
    for (const f of readdirSync(s.dataDir, { recursive: true })) {
      if (!statSync(join(s.dataDir, f)).isFile()) continue;  // keys/ is a directory
      const bytes = readFileSync(join(s.dataDir, f));
      for (const secret of [first.json.secret, t1.json.token]) {
        assert.ok(!bytes.includes(secret.slice(8)), `a plaintext secret in ${f}`);
      }
    }
  } finally {
    await s.stop();
  }
});

// Personal access tokens with abilities: minted by a signed-in person (plaintext shown once,
// stored only as a hash), enforced on every route with 403 token_missing_ability, never more than
// their creator, revoked at once.

import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { startServer, api, registerAgent, signIn, uniqueEmail } from './lib/server.mjs';
import { expectError } from './lib/expect.mjs';

const srv = await startServer({ args: ['--no-rate-limits'] });
after(() => srv.stop());
const aliceEmail = uniqueEmail('tok-alice');
const alice = await signIn(srv.url, aliceEmail);
const bob = await signIn(srv.url, uniqueEmail('tok-bob'));
const agent = await registerAgent(srv.url);

async function mint(cookie, body) {
  const res = await api(srv.url, 'POST', '/v1/tokens', { cookie, body });
  assert.equal(res.status, 201, res.text);
  return res.json;
}

test('a token is shown once, with a recognisable prefix and 256 bits, and listed without it', async () => {
  const t = await mint(alice, { name: 'reader', abilities: ['permission:view-any'] });
  assert.match(t.token, /^agt_[A-Za-z0-9_-]{43}$/);
  assert.match(t.id, /^tok_[0-9a-f]{16}$/);
  assert.deepEqual(t.abilities, ['permission:view-any']);
  assert.equal(t.status, 'active');
  assert.equal(t.last_used_at, null);
  assert.equal(t.token_prefix, t.token.slice(0, 10));
  // Default lifetime: 90 days.
  const days = (Date.parse(t.expires_at) - Date.now()) / 86400000;
  assert.ok(days > 89.9 && days < 90.1, `expires in ${days} days`);

  const list = await api(srv.url, 'GET', '/v1/tokens', { cookie: alice });
  assert.equal(list.status, 200);
  const shown = list.json.data.find((x) => x.id === t.id);
  assert.ok(shown);
  assert.equal(shown.token, undefined, 'the plaintext is never shown again');
  assert.ok(!list.text.includes(t.token));
  // Bob does not see Alice's tokens.
  const bobs = await api(srv.url, 'GET', '/v1/tokens', { cookie: bob });
  assert.ok(!bobs.json.data.some((x) => x.id === t.id));
});

test('the token works as its owner, within its abilities, and records its last use', async () => {
  const grant = await api(srv.url, 'POST', '/permission/grant', {
    cookie: alice, body: { agent_id: agent.agent_id, action: 'tok_read' },
  });
  assert.equal(grant.status, 201);
  const t = await mint(alice, { name: 'reader', abilities: ['permission:view-any'] });
  const list = await api(srv.url, 'GET', '/permissions', { bearer: t.token });
  assert.equal(list.status, 200, list.text);
  assert.ok(list.json.permissions.some((p) => p.action === 'tok_read'));

  // Writing needs permission:grant, which it lacks: 403 naming the ability and how to mint it.
  const denied = await api(srv.url, 'POST', '/permission/grant', {
    bearer: t.token, body: { agent_id: agent.agent_id, action: 'tok_write' },
  });
  expectError(denied, 403, 'token_missing_ability', { messageIncludes: ['permission:grant'] });
  assert.match(denied.json.remediation, /POST \/v1\/tokens/);
  assert.match(denied.json.remediation, /permission:grant/);

  for (const [method, path, ability] of [
    ['POST', '/permission/revoke', 'permission:revoke'],
    ['GET', '/v1/activity', 'activity:view-any'],
    ['GET', '/v1/tokens', 'token:manage'],
    ['POST', '/v1/tokens', 'token:manage'],
    ['GET', `/permission/check?agent_id=${agent.agent_id}&action=x`, 'permission:check'],
    ['GET', `/agent/${agent.agent_id}`, 'agent:view-any'],
    ['POST', '/agent/register', 'agent:create'],
  ]) {
    const res = await api(srv.url, method, path, { bearer: t.token, body: method === 'POST' ? {} : undefined });
    expectError(res, 403, 'token_missing_ability', { messageIncludes: [ability] });
  }

  const session = await api(srv.url, 'GET', '/auth/session', { bearer: t.token });
  assert.equal(session.status, 200);
  assert.equal(session.json.credential, 'api_token');
  assert.equal(session.json.token_id, t.id);
  assert.deepEqual(session.json.abilities, ['permission:view-any']);

  // last_used_at is written in the background, within a couple of seconds.
  let used = null;
  for (let i = 0; i < 40 && !used; i++) {
    await new Promise((r) => setTimeout(r, 100));
    const l = await api(srv.url, 'GET', '/v1/tokens', { cookie: alice });
    used = l.json.data.find((x) => x.id === t.id).last_used_at;
  }
  assert.ok(used, 'last_used_at is set');
});

test('a write token grants as its owner; checks and agent profiles take a token too', async () => {
  const t = await mint(alice, {
    name: 'writer', abilities: ['permission:grant', 'permission:check', 'agent:view-any'],
  });
  const grant = await api(srv.url, 'POST', '/permission/grant', {
    bearer: t.token, body: { agent_id: agent.agent_id, action: 'tok_granted' },
  });
  assert.equal(grant.status, 201, grant.text);
  assert.equal(grant.json.granted_by, aliceEmail);
  const check = await api(srv.url, 'GET',
    `/permission/check?agent_id=${agent.agent_id}&action=tok_granted`, { bearer: t.token });
  assert.equal(check.status, 200);
  assert.equal(check.json.allowed, true);
  const profile = await api(srv.url, 'GET', `/agent/${agent.agent_id}`, { bearer: t.token });
  assert.equal(profile.status, 200);
  assert.equal(profile.json.agent_id, agent.agent_id);
  const missing = await api(srv.url, 'GET', '/agent/ap_0000000000000000', { bearer: t.token });
  expectError(missing, 404, 'agent_not_found');
});

test('"*" holds every ability; a token never mints more than it holds', async () => {
  const all = await mint(alice, { name: 'all', abilities: ['*'], expires_in: '7d' });
  assert.deepEqual(all.abilities, ['*']);
  const child = await api(srv.url, 'POST', '/v1/tokens', {
    bearer: all.token, body: { name: 'child', abilities: ['permission:check'], expires_in: 'never' },
  });
  assert.equal(child.status, 201, child.text);
  // Its lifetime is capped at its parent's.
  assert.equal(child.json.expires_at, all.expires_at);

  const manager = await mint(alice, { name: 'manager', abilities: ['token:manage', 'permission:check'] });
  const wider = await api(srv.url, 'POST', '/v1/tokens', {
    bearer: manager.token, body: { name: 'wider', abilities: ['permission:grant'] },
  });
  expectError(wider, 403, 'forbidden', { messageIncludes: ['permission:grant'] });
  const star = await api(srv.url, 'POST', '/v1/tokens', {
    bearer: manager.token, body: { name: 'star', abilities: ['*'] },
  });
  expectError(star, 403, 'forbidden');
  const narrower = await api(srv.url, 'POST', '/v1/tokens', {
    bearer: manager.token, body: { name: 'narrower', abilities: ['permission:check'] },
  });
  assert.equal(narrower.status, 201);
});

test('expires_in: "never" explicitly, a duration, and bad values refused', async () => {
  const never = await mint(alice, { name: 'forever', abilities: ['permission:check'], expires_in: 'never' });
  assert.equal(never.expires_at, null);
  const short = await mint(alice, { name: 'short', abilities: ['permission:check'], expires_in: '1h' });
  const hours = (Date.parse(short.expires_at) - Date.now()) / 3600000;
  assert.ok(hours > 0.99 && hours < 1.01);
  for (const expires_in of ['0d', 'soon', 5, '99999d']) {
    const res = await api(srv.url, 'POST', '/v1/tokens', {
      cookie: alice, body: { name: 'x', abilities: ['permission:check'], expires_in },
    });
    expectError(res, 400, 'invalid_expires_in');
  }
});

test('bad token requests get structured 4xx errors', async () => {
  const cases = [
    [{}, 400, 'missing_fields', ['name', 'abilities']],
    [{ name: 'x' }, 400, 'missing_fields', ['abilities']],
    [{ name: 'x', abilities: [] }, 400, 'invalid_field', ['abilities']],
    [{ name: 'x', abilities: 'permission:check' }, 400, 'invalid_field', ['abilities']],
    [{ name: 'x', abilities: ['permission:fly'] }, 400, 'invalid_field', ['permission:fly', 'permission:check']],
    [{ name: 'x', abilities: [7] }, 400, 'invalid_field', []],
    [{ name: 'x'.repeat(101), abilities: ['*'] }, 400, 'invalid_field', ['name']],
    [{ name: 'a\u0007b', abilities: ['*'] }, 400, 'invalid_field', ['name']],
    [{ name: 7, abilities: ['*'] }, 400, 'invalid_field', ['name']],
  ];
  for (const [body, status, code, words] of cases) {
    const res = await api(srv.url, 'POST', '/v1/tokens', { cookie: alice, body });
    expectError(res, status, code, { messageIncludes: words });
  }
  const notJson = await api(srv.url, 'POST', '/v1/tokens', { cookie: alice, body: '{"name":' });
  expectError(notJson, 400, 'invalid_json');
  expectError(await api(srv.url, 'POST', '/v1/tokens', { body: { name: 'x', abilities: ['*'] } }),
    401, 'unauthorized');
  // An agent's secret is not a person's credential.
  expectError(await api(srv.url, 'GET', '/v1/tokens', { bearer: agent.secret }), 401, 'unauthorized');
  expectError(await api(srv.url, 'GET', '/v1/tokens', { bearer: 'agt_not-a-real-token' }), 401,
    'unauthorized');
  expectError(await api(srv.url, 'GET', '/v1/tokens?status=bogus', { cookie: alice }), 400,
    'invalid_field');
});

test('revocation takes effect on the very next request; others cannot revoke it', async () => {
  const t = await mint(alice, { name: 'doomed', abilities: ['permission:view-any'] });
  assert.equal((await api(srv.url, 'GET', '/permissions', { bearer: t.token })).status, 200);
  const byBob = await api(srv.url, 'DELETE', `/v1/tokens/${t.id}`, { cookie: bob });
  expectError(byBob, 404, 'not_found');
  assert.equal((await api(srv.url, 'GET', '/permissions', { bearer: t.token })).status, 200);

  const del = await api(srv.url, 'DELETE', `/v1/tokens/${t.id}`, { cookie: alice });
  assert.equal(del.status, 200, del.text);
  assert.equal(del.json.status, 'revoked');
  assert.ok(del.json.revoked_at);
  expectError(await api(srv.url, 'GET', '/permissions', { bearer: t.token }), 401, 'unauthorized');
  // Deleting again is harmless and says the same.
  const again = await api(srv.url, 'DELETE', `/v1/tokens/${t.id}`, { cookie: alice });
  assert.equal(again.status, 200);
  assert.equal(again.json.status, 'revoked');
  // Listed with status=all only.
  const active = await api(srv.url, 'GET', '/v1/tokens', { cookie: alice });
  assert.ok(!active.json.data.some((x) => x.id === t.id));
  const all = await api(srv.url, 'GET', '/v1/tokens?status=all', { cookie: alice });
  assert.equal(all.json.data.find((x) => x.id === t.id).status, 'revoked');
  expectError(await api(srv.url, 'DELETE', '/v1/tokens/tok_0000000000000000', { cookie: alice }),
    404, 'not_found');
});

test('tokens survive a restart; revoked ones stay revoked; plaintext is never on disk', async () => {
  const first = await startServer({ args: ['--no-rate-limits'] });
  let s = first;
  try {
    const cookie = await signIn(s.url, uniqueEmail('tok-restart'));
    const keep = (await api(s.url, 'POST', '/v1/tokens', {
      cookie, body: { name: 'keep', abilities: ['permission:view-any'] },
    })).json;
    const gone = (await api(s.url, 'POST', '/v1/tokens', {
      cookie, body: { name: 'gone', abilities: ['permission:view-any'] },
    })).json;
    assert.equal((await api(s.url, 'DELETE', `/v1/tokens/${gone.id}`, { cookie })).status, 200);
    assert.equal(await first.stop(), 0);
    s = await startServer({ args: ['--no-rate-limits'], dataDir: first.dataDir });
    assert.equal((await api(s.url, 'GET', '/permissions', { bearer: keep.token })).status, 200);
    expectError(await api(s.url, 'GET', '/permissions', { bearer: gone.token }), 401, 'unauthorized');
    await s.stop();
    for (const f of readdirSync(s.dataDir, { recursive: true })) {
      if (!statSync(join(s.dataDir, f)).isFile()) continue;  // keys/ is a directory
      const bytes = readFileSync(join(s.dataDir, f));
      assert.ok(!bytes.includes(keep.token), `plaintext token in ${f}`);
      assert.ok(!bytes.includes(keep.token.slice(10)), `token tail in ${f}`);
    }
    assert.ok(!first.logs().includes(keep.token.slice(10)), 'plaintext token in the log');
    assert.ok(!s.logs().includes(keep.token.slice(10)), 'plaintext token in the log');
  } finally {
    await s.stop();
  }
});

test('open endpoints ignore a stale token; closed ones refuse it', async () => {
  const stale = 'agt_' + 'x'.repeat(43);
  assert.equal((await api(srv.url, 'GET', '/health', { bearer: stale })).status, 200);
  assert.equal((await api(srv.url, 'GET', '/stats', { bearer: stale })).status, 200);
  expectError(await api(srv.url, 'GET', '/permissions', { bearer: stale }), 401, 'unauthorized');
  // Registering with a token is held to the token's abilities, as everywhere.
  expectError(await api(srv.url, 'POST', '/agent/register', {
    bearer: stale, body: { name: 'x', developer_email: 'dev@example.com' },
  }), 401, 'unauthorized');
});

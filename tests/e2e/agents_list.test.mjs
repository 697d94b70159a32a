// GET /v1/agents: the agents a person has to do with — those registered with their email
// (owned) and those they have granted something to, ever (granted) — with status, last_seen and
// the count of their own active grants; isolated per person, paged, behind agent:view-any.

import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { startServer, api, registerAgent, signIn, uniqueEmail } from './lib/server.mjs';
import { expectError } from './lib/expect.mjs';

const srv = await startServer({ args: ['--no-rate-limits'] });
after(() => srv.stop());
const aliceEmail = uniqueEmail('agents-alice');
const alice = await signIn(srv.url, aliceEmail);
const bob = await signIn(srv.url, uniqueEmail('agents-bob'));

async function grant(cookie, agentId, action, extra = {}) {
  const res = await api(srv.url, 'POST', '/permission/grant', {
    cookie, body: { agent_id: agentId, action, ...extra },
  });
  assert.equal(res.status, 201, res.text);
  return res.json;
}

async function listAll(cookie, query = '') {
  const res = await api(srv.url, 'GET', `/v1/agents${query}`, { cookie });
  assert.equal(res.status, 200, res.text);
  return res.json;
}

test('owned and granted agents, with the relation, status, last_seen and active grant count', async () => {
  // Owned: registered with Alice's address (any case). Granted: Bob's agent she granted to.
  const owned = await registerAgent(srv.url, { developer_email: aliceEmail.toUpperCase() });
  const granted = await registerAgent(srv.url);
  const both = await registerAgent(srv.url, { developer_email: aliceEmail });
  const stranger = await registerAgent(srv.url);
  await grant(alice, granted.agent_id, 'read_mail');
  const second = await grant(alice, granted.agent_id, 'send_mail');
  await grant(alice, both.agent_id, 'read_mail');
  await grant(bob, stranger.agent_id, 'read_mail');
  await grant(bob, owned.agent_id, 'read_mail');  // Bob's grant to Alice's agent is not hers
  // A check by the granted agent sets its last_seen at once.
  const check = await api(srv.url, 'GET', `/permission/check?agent_id=${granted.agent_id}&action=read_mail`,
    { bearer: granted.secret });
  assert.equal(check.json.allowed, true);
  // A revoked grant still makes the agent "granted", but is not counted as active.
  const revoke = await api(srv.url, 'POST', '/permission/revoke', {
    cookie: alice, body: { permission_id: second.permission_id },
  });
  assert.equal(revoke.status, 200, revoke.text);

  const page = await listAll(alice);
  const ids = page.data.map((a) => a.agent_id);
  assert.deepEqual(ids, [both.agent_id, granted.agent_id, owned.agent_id], 'newest first, nobody else\'s');
  const byId = new Map(page.data.map((a) => [a.agent_id, a]));
  assert.deepEqual([byId.get(owned.agent_id).owned, byId.get(owned.agent_id).granted], [true, false]);
  assert.equal(byId.get(owned.agent_id).active_permission_count, 0);
  assert.deepEqual([byId.get(granted.agent_id).owned, byId.get(granted.agent_id).granted], [false, true]);
  assert.equal(byId.get(granted.agent_id).active_permission_count, 1);
  assert.deepEqual([byId.get(both.agent_id).owned, byId.get(both.agent_id).granted], [true, true]);
  for (const a of page.data) assert.equal(a.status, 'active');
  assert.ok(Math.abs(Date.parse(byId.get(granted.agent_id).last_seen) - Date.now()) < 60_000,
    byId.get(granted.agent_id).last_seen);
  assert.equal(byId.get(owned.agent_id).last_seen, null, 'never checked');
  assert.match(byId.get(granted.agent_id).name, /^e2e-agent-\d+$/);
  assert.equal(byId.get(both.agent_id).developer_email, aliceEmail.toLowerCase());
  assert.equal(page.next_cursor, null);

  assert.deepEqual((await listAll(alice, '?relation=owned')).data.map((a) => a.agent_id),
    [both.agent_id, owned.agent_id]);
  assert.deepEqual((await listAll(alice, '?relation=granted')).data.map((a) => a.agent_id),
    [both.agent_id, granted.agent_id]);
  // Bob sees his own, none of Alice's agents.
  const bobs = (await listAll(bob)).data.map((a) => a.agent_id);
  assert.deepEqual(bobs, [stranger.agent_id, owned.agent_id]);
  assert.equal((await listAll(bob)).data[1].owned, false);
});

test('pages follow next_cursor to the end without repeats', async () => {
  const carol = await signIn(srv.url, uniqueEmail('agents-carol'));
  const made = [];
  for (let i = 0; i < 5; i++) {
    const a = await registerAgent(srv.url);
    await grant(carol, a.agent_id, 'page_test');
    made.unshift(a.agent_id);
  }
  const seen = [];
  let cursor = null;
  do {
    const page = await listAll(carol, `?limit=2${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`);
    assert.ok(page.data.length <= 2);
    seen.push(...page.data.map((a) => a.agent_id));
    cursor = page.next_cursor;
  } while (cursor);
  assert.deepEqual(seen, made);
});

test('an access token needs agent:view-any; agents and strangers are refused', async () => {
  const agent = await registerAgent(srv.url, { developer_email: aliceEmail });
  const mint = async (abilities) => {
    const res = await api(srv.url, 'POST', '/v1/tokens', { cookie: alice, body: { name: 't', abilities } });
    assert.equal(res.status, 201, res.text);
    return res.json.token;
  };
  const viewer = await mint(['agent:view-any']);
  const listed = await api(srv.url, 'GET', '/v1/agents?relation=owned', { bearer: viewer });
  assert.equal(listed.status, 200, listed.text);
  assert.ok(listed.json.data.some((a) => a.agent_id === agent.agent_id));
  const other = await mint(['permission:check']);
  expectError(await api(srv.url, 'GET', '/v1/agents', { bearer: other }), 403, 'token_missing_ability',
    { messageIncludes: ['agent:view-any'] });
  expectError(await api(srv.url, 'GET', '/v1/agents', { bearer: agent.secret }), 401, 'unauthorized');
  expectError(await api(srv.url, 'GET', '/v1/agents'), 401, 'unauthorized');
});

test('bad queries get structured 400s', async () => {
  for (const q of ['?relation=mine', '?limit=0', '?limit=101', '?limit=x', '?cursor=garbage',
    '?cursor=12', '?cursor=-5.ap_x']) {
    expectError(await api(srv.url, 'GET', `/v1/agents${q}`, { cookie: alice }), 400, 'invalid_field');
  }
});

// Permission requests end to end: an agent asks with its secret, the person asked gets a real
// email (SMTP) and signed webhooks, approves (narrowing the scope, which the agent's checks then
// reflect) or declines; only the person asked decides, exactly once; requests expire.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import { Webhook } from 'standardwebhooks';
import { startServer, api, registerAgent, signIn, uniqueEmail } from './lib/server.mjs';
import { expectError, eventually, sleep } from './lib/expect.mjs';

const FAST = ['--no-rate-limits', '--allow-private-egress', '--webhook-retry-base', '300ms',
  '--webhook-retry-max', '2s', '--webhook-timeout', '3s', '--admin-email', uniqueEmail('pr-root')];

// A webhook receiver that records every delivery.
async function startReceiver() {
  const received = [];
  const server = http.createServer((req, res) => {
    let body = '';
    req.setEncoding('utf8');
    req.on('data', (c) => { body += c; });
    req.on('end', () => {
      received.push({ headers: req.headers, body, json: JSON.parse(body) });
      res.writeHead(204);
      res.end();
    });
  });
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    received,
    url: `http://127.0.0.1:${server.address().port}/hooks`,
    of: (type, id) => received.filter((r) => r.json.type === type &&
      (id === undefined || r.json.data.request_id === id || r.json.data.permission_id === id)),
    async close() {
      server.closeAllConnections?.();
      await new Promise((resolve) => server.close(resolve));
    },
  };
}

let srv;
let receiver;
let secret; // alice's endpoint's signing secret
const aliceEmail = uniqueEmail('pr-alice');
const bobEmail = uniqueEmail('pr-bob');
let alice; let bob; let carol;
let A; // an agent, named
const A_NAME = 'Invoice bot';

before(async () => {
  receiver = await startReceiver();
  srv = await startServer({ smtp: true, args: FAST });
  alice = await signIn(srv.url, aliceEmail);
  bob = await signIn(srv.url, bobEmail);
  carol = await signIn(srv.url, uniqueEmail('pr-carol'));
  const ep = await api(srv.url, 'POST', '/v1/webhooks', { cookie: alice, body: { url: receiver.url, events: ['*'] } });
  assert.equal(ep.status, 201, ep.text);
  secret = ep.json.secret;
  A = await registerAgent(srv.url, { name: A_NAME });
});
after(async () => {
  if (srv) assert.equal(await srv.stop(), 0);
  if (receiver) await receiver.close();
});

const ask = (agent, body) => api(srv.url, 'POST', '/v1/permission-requests', {
  bearer: agent.secret, body: { agent_id: agent.agent_id, reason: 'Pay the March invoice from ACME', ...body },
});
const get = (id, auth) => api(srv.url, 'GET', `/v1/permission-requests/${id}`, auth);
const approve = (id, auth, body) => api(srv.url, 'POST', `/v1/permission-requests/${id}/approve`, { ...auth, body });
const decline = (id, auth, body) => api(srv.url, 'POST', `/v1/permission-requests/${id}/decline`, { ...auth, body });
const subjectOf = (m) => /^Subject: (.*)$/m.exec(m.raw)?.[1]?.trim();

function verified(entry) {
  return new Webhook(secret).verify(entry.body, {
    'webhook-id': entry.headers['webhook-id'],
    'webhook-timestamp': entry.headers['webhook-timestamp'],
    'webhook-signature': entry.headers['webhook-signature'],
  });
}

async function webhookOf(type, id) {
  await eventually(() => receiver.of(type, id).length > 0, { timeoutMs: 10000, intervalMs: 50 });
  const [entry] = receiver.of(type, id);
  const payload = verified(entry); // throws unless the signature verifies
  assert.equal(payload.type, type);
  return payload;
}

test('an agent asks by email: 201, the email (subject, reason, link, CLI line) and a signed created webhook', async () => {
  const res = await ask(A, { action: 'invoices:pay', email: aliceEmail.toUpperCase(), scope: { max_amount: 500 }, expires_in: '7d' });
  assert.equal(res.status, 201, res.text);
  const r = res.json;
  assert.match(r.request_id, /^preq_[0-9a-f]{24}$/);
  assert.equal(res.headers.get('location'), `/v1/permission-requests/${r.request_id}`);
  assert.equal(r.agent_id, A.agent_id);
  assert.equal(r.agent_name, A_NAME);
  assert.equal(r.requested_from, aliceEmail, 'the address is lower-cased');
  assert.equal(r.status, 'pending');
  assert.deepEqual(r.scope, { max_amount: 500 });
  assert.equal(r.expires_in, '7d');
  assert.equal(r.permission, null);
  assert.equal(r.decided_at, null);
  const days = (Date.parse(r.expires_at) - Date.parse(r.created_at)) / 86400000;
  assert.ok(Math.abs(days - 7) < 0.01, `the request lapses after the default 7d, got ${days}d`);

  const mail = await srv.smtp.waitForMessage((m) => m.to.includes(aliceEmail) && m.text.includes(r.request_id));
  assert.equal(subjectOf(mail), `${A_NAME} asks for permission: invoices:pay`);
  assert.ok(mail.text.includes('Pay the March invoice from ACME'), 'the reason');
  assert.ok(mail.text.includes('{"max_amount":500}'), 'the scope');
  assert.ok(mail.text.includes(`${srv.url}/dashboard#requests`), 'the dashboard link');
  assert.ok(mail.text.includes(`agentgate request approve ${r.request_id}`), 'the CLI line');

  const created = await webhookOf('permission_request.created', r.request_id);
  assert.deepEqual(created.data, r);
});

test('asking again while pending: 200 with the same request, and no second email', async () => {
  const first = await ask(A, { action: 'reports:read', email: aliceEmail });
  assert.equal(first.status, 201, first.text);
  await srv.smtp.waitForMessage((m) => m.text.includes(first.json.request_id));
  const again = await ask(A, { action: 'reports:read', email: aliceEmail, reason: 'Once more' });
  assert.equal(again.status, 200, again.text);
  assert.equal(again.json.request_id, first.json.request_id);
  assert.equal(again.json.reason, first.json.reason, 'the pending request, unchanged');
  await sleep(500);
  assert.equal(srv.smtp.messages.filter((m) => m.text.includes(first.json.request_id)).length, 1);
});

test('the addressee: email, else the previous granter, else the developer', async () => {
  const devEmail = uniqueEmail('pr-dev');
  const B = await registerAgent(srv.url, { developer_email: devEmail });
  const fallback = await ask(B, { action: 'first:ask' });
  assert.equal(fallback.status, 201, fallback.text);
  assert.equal(fallback.json.requested_from, devEmail);
  await srv.smtp.waitForMessage((m) => m.to.includes(devEmail) && m.text.includes(fallback.json.request_id));
  // Bob grants B something, then revokes it: he is still the previous granter.
  const g = await api(srv.url, 'POST', '/permission/grant', { cookie: bob, body: { agent_id: B.agent_id, action: 'x:y' } });
  assert.equal(g.status, 201, g.text);
  assert.equal((await api(srv.url, 'POST', '/permission/revoke', { cookie: bob, body: { permission_id: g.json.permission_id } })).status, 200);
  const toGranter = await ask(B, { action: 'second:ask' });
  assert.equal(toGranter.status, 201, toGranter.text);
  assert.equal(toGranter.json.requested_from, bobEmail);
  const explicit = await ask(B, { action: 'third:ask', email: aliceEmail });
  assert.equal(explicit.json.requested_from, aliceEmail);
});

test('lists: a person sees what is addressed to them, an agent its own; filters and pages', async () => {
  const mine = await ask(A, { action: 'list:me', email: aliceEmail });
  assert.equal(mine.status, 201, mine.text);
  const list = await api(srv.url, 'GET', '/v1/permission-requests?status=pending', { cookie: alice });
  assert.equal(list.status, 200, list.text);
  assert.ok(list.json.data.every((r) => r.requested_from === aliceEmail && r.status === 'pending'));
  assert.equal(list.json.data[0].request_id, mine.json.request_id, 'newest first');
  const bobs = await api(srv.url, 'GET', '/v1/permission-requests', { cookie: bob });
  assert.ok(!bobs.json.data.some((r) => r.request_id === mine.json.request_id));
  const agents = await api(srv.url, 'GET', '/v1/permission-requests', { bearer: A.secret });
  assert.equal(agents.status, 200, agents.text);
  assert.ok(agents.json.data.length >= 1 && agents.json.data.every((r) => r.agent_id === A.agent_id));
  // Pages of one, following next_cursor, give the same requests as one page.
  const all = (await api(srv.url, 'GET', `/v1/permission-requests?agent_id=${A.agent_id}`, { cookie: alice })).json.data;
  const paged = [];
  let cursor = null;
  do {
    const page = await api(srv.url, 'GET', `/v1/permission-requests?agent_id=${A.agent_id}&limit=1${cursor ? `&cursor=${cursor}` : ''}`, { cookie: alice });
    assert.equal(page.status, 200, page.text);
    paged.push(...page.json.data.map((r) => r.request_id));
    cursor = page.json.next_cursor;
  } while (cursor);
  assert.deepEqual(paged, all.map((r) => r.request_id));
});

test('only the person asked decides: another person gets 403; strangers and other agents get 404 on GET', async () => {
  const r = (await ask(A, { action: 'only:alice', email: aliceEmail })).json;
  expectError(await approve(r.request_id, { cookie: bob }), 403, 'forbidden');
  expectError(await decline(r.request_id, { cookie: carol }), 403, 'forbidden');
  expectError(await get(r.request_id, { cookie: bob }), 404, 'permission_request_not_found');
  const other = await registerAgent(srv.url);
  expectError(await get(r.request_id, { bearer: other.secret }), 404, 'permission_request_not_found');
  assert.equal((await get(r.request_id, { cookie: alice })).status, 200);
  assert.equal((await get(r.request_id, { bearer: A.secret })).json.status, 'pending', 'still pending');
  // A person cannot ask on an agent's behalf, nor an agent for another.
  expectError(await api(srv.url, 'POST', '/v1/permission-requests', { cookie: alice, body: { agent_id: A.agent_id, action: 'a', reason: 'r' } }), 403, 'forbidden');
  expectError(await api(srv.url, 'POST', '/v1/permission-requests', { bearer: other.secret, body: { agent_id: A.agent_id, action: 'a', reason: 'r' } }), 403, 'forbidden');
});

test('approve with a narrower scope and expiry: the grant is made and the agent\'s check reflects it', async () => {
  const check = (amount) => api(srv.url, 'POST', '/permission/check', {
    bearer: A.secret, body: { agent_id: A.agent_id, action: 'payments:send', context: { amount } },
  });
  assert.equal((await check(10)).json.allowed, false, 'denied before');
  const r = (await ask(A, { action: 'payments:send', email: aliceEmail, scope: { max_amount: 500 }, expires_in: '7d' })).json;
  const res = await approve(r.request_id, { cookie: alice }, { scope: { max_amount: 200 }, expires_in: '1h' });
  assert.equal(res.status, 200, res.text);
  const a = res.json;
  assert.equal(a.status, 'approved');
  assert.equal(a.decided_by, aliceEmail);
  assert.ok(a.decided_at);
  assert.deepEqual(a.scope, { max_amount: 500 }, 'what the agent asked for stays on record');
  assert.equal(a.permission.agent_id, A.agent_id);
  assert.equal(a.permission.action, 'payments:send');
  assert.equal(a.permission.granted_by, aliceEmail);
  assert.deepEqual(a.permission.scope, { max_amount: 200 });
  const hours = (Date.parse(a.permission.expires_at) - Date.now()) / 3600000;
  assert.ok(hours > 0.95 && hours <= 1.01, `the grant lasts 1h, got ${hours}h`);

  const within = await check(150);
  assert.equal(within.json.allowed, true, within.text);
  assert.deepEqual(within.json.scope, { max_amount: 200 });
  assert.equal(within.json.permission_id, a.permission.permission_id);
  const beyond = await check(300);
  assert.equal(beyond.json.allowed, false, 'over the narrowed max');
  // The agent polls and sees the outcome.
  const polled = await get(r.request_id, { bearer: A.secret });
  assert.equal(polled.json.status, 'approved');
  assert.deepEqual(polled.json.permission, a.permission);

  const approved = await webhookOf('permission_request.approved', r.request_id);
  assert.deepEqual(approved.data, a);
  const granted = await webhookOf('permission.granted', a.permission.permission_id);
  assert.deepEqual(granted.data, a.permission);
});

test('approve with no body grants what the agent asked for', async () => {
  const r = (await ask(A, { action: 'as:asked', email: aliceEmail, scope: { allowed_currency: ['EUR'] } })).json;
  const res = await approve(r.request_id, { cookie: alice });
  assert.equal(res.status, 200, res.text);
  assert.deepEqual(res.json.permission.scope, { allowed_currency: ['EUR'] });
  assert.equal(res.json.permission.expires_at, null);
});

test('decline with a reason; the agent polls and sees it; deciding twice is 409', async () => {
  const r = (await ask(A, { action: 'mail:send', email: aliceEmail })).json;
  const res = await decline(r.request_id, { cookie: alice }, { reason: 'Not this month' });
  assert.equal(res.status, 200, res.text);
  assert.equal(res.json.status, 'declined');
  assert.equal(res.json.decline_reason, 'Not this month');
  assert.equal(res.json.permission, null);
  const polled = await get(r.request_id, { bearer: A.secret });
  assert.equal(polled.json.status, 'declined');
  assert.equal(polled.json.decline_reason, 'Not this month');
  const declined = await webhookOf('permission_request.declined', r.request_id);
  assert.equal(declined.data.status, 'declined');

  expectError(await decline(r.request_id, { cookie: alice }), 409, 'permission_request_not_pending', { messageIncludes: ['declined'] });
  expectError(await approve(r.request_id, { cookie: alice }), 409, 'permission_request_not_pending', { messageIncludes: ['declined'] });
  const check = await api(srv.url, 'GET', `/permission/check?agent_id=${A.agent_id}&action=mail:send`, { bearer: A.secret });
  assert.equal(check.json.allowed, false, 'a declined request grants nothing');
  // Asking again after a decline is a new request.
  const again = await ask(A, { action: 'mail:send', email: aliceEmail });
  assert.equal(again.status, 201, again.text);
  assert.notEqual(again.json.request_id, r.request_id);
});

test('an approved request cannot be decided again (409 naming its status)', async () => {
  const r = (await ask(A, { action: 'twice:approve', email: aliceEmail })).json;
  assert.equal((await approve(r.request_id, { cookie: alice })).status, 200);
  expectError(await approve(r.request_id, { cookie: alice }), 409, 'permission_request_not_pending', { messageIncludes: ['approved'] });
});

test('concurrent approve and decline: exactly one wins, the other gets 409', async () => {
  for (let i = 0; i < 3; i += 1) {
    const r = (await ask(A, { action: `race:${i}`, email: aliceEmail })).json;
    const [x, y] = await Promise.all([approve(r.request_id, { cookie: alice }), decline(r.request_id, { cookie: alice })]);
    assert.deepEqual([x.status, y.status].sort(), [200, 409], `${x.text} / ${y.text}`);
    const loser = x.status === 409 ? x : y;
    expectError(loser, 409, 'permission_request_not_pending');
    const final = (await get(r.request_id, { cookie: alice })).json;
    assert.equal(final.status, x.status === 200 ? 'approved' : 'declined');
    const grants = (await api(srv.url, 'GET', `/permissions?agent_id=${A.agent_id}`, { cookie: alice })).json.permissions
      .filter((p) => p.action === `race:${i}`);
    assert.equal(grants.length, final.status === 'approved' ? 1 : 0, 'a grant exactly when approved');
  }
});

test('an access token without permission:grant cannot approve; with it, it can', async () => {
  const mint = (abilities) => api(srv.url, 'POST', '/v1/tokens', { cookie: alice, body: { name: 'pr', abilities } });
  const viewer = (await mint(['permission:view-any'])).json.token;
  const granter = (await mint(['permission:grant'])).json.token;
  const r = (await ask(A, { action: 'token:approve', email: aliceEmail })).json;
  expectError(await approve(r.request_id, { bearer: viewer }), 403, 'token_missing_ability');
  expectError(await decline(r.request_id, { bearer: viewer }), 403, 'token_missing_ability');
  const listed = await api(srv.url, 'GET', '/v1/permission-requests', { bearer: viewer });
  assert.equal(listed.status, 200, listed.text);
  assert.ok(listed.json.data.some((x) => x.request_id === r.request_id));
  expectError(await api(srv.url, 'GET', '/v1/permission-requests', { bearer: granter }), 403, 'token_missing_ability');
  const ok = await approve(r.request_id, { bearer: granter });
  assert.equal(ok.status, 200, ok.text);
  assert.equal(ok.json.permission.granted_by, aliceEmail);
});

test('at most 20 pending requests per agent: the 21st is 429 rate_limited with Retry-After', async () => {
  const C = await registerAgent(srv.url);
  for (let i = 0; i < 20; i += 1) {
    const res = await ask(C, { action: `cap:${i}`, email: aliceEmail });
    assert.equal(res.status, 201, res.text);
  }
  const over = await ask(C, { action: 'cap:20', email: aliceEmail });
  expectError(over, 429, 'rate_limited');
  assert.ok(Number(over.headers.get('retry-after')) >= 1);
  // Deciding one frees a place.
  const first = (await api(srv.url, 'GET', `/v1/permission-requests?agent_id=${C.agent_id}&limit=1`, { cookie: alice })).json.data[0];
  assert.equal((await decline(first.request_id, { cookie: alice })).status, 200);
  assert.equal((await ask(C, { action: 'cap:20', email: aliceEmail })).status, 201);
});

test('requests expire after --request-ttl: GET reads expired at once, deciding is 409, the expired webhook arrives signed', async () => {
  const hooks = await startReceiver();
  const s = await startServer({ args: [...FAST, '--request-ttl', '2s'] });
  try {
    const email = uniqueEmail('pr-exp');
    const cookie = await signIn(s.url, email);
    const ep = await api(s.url, 'POST', '/v1/webhooks', { cookie, body: { url: hooks.url, events: ['permission_request.expired'] } });
    assert.equal(ep.status, 201, ep.text);
    const agent = await registerAgent(s.url);
    const res = await api(s.url, 'POST', '/v1/permission-requests', {
      bearer: agent.secret, body: { agent_id: agent.agent_id, action: 'soon:gone', reason: 'quick', email },
    });
    assert.equal(res.status, 201, res.text);
    const r = res.json;
    assert.equal(Date.parse(r.expires_at) - Date.parse(r.created_at), 2000);
    assert.ok(/permission request preq_[0-9a-f]{24} from agent/.test(s.logs()), 'without a mailer, a log line');
    assert.ok(!s.logs().includes(agent.secret), 'no secret in the log');
    // expires_at is shown to the second; the lapse itself is exact to the millisecond.
    await sleep(Math.max(0, Date.parse(r.expires_at) + 1000 - Date.now()) + 100);
    const read = await api(s.url, 'GET', `/v1/permission-requests/${r.request_id}`, { bearer: agent.secret });
    assert.equal(read.json.status, 'expired');
    const filtered = await api(s.url, 'GET', '/v1/permission-requests?status=expired', { cookie });
    assert.deepEqual(filtered.json.data.map((x) => x.request_id), [r.request_id]);
    expectError(await api(s.url, 'POST', `/v1/permission-requests/${r.request_id}/approve`, { cookie }),
      409, 'permission_request_not_pending', { messageIncludes: ['expired'] });
    await eventually(() => hooks.of('permission_request.expired', r.request_id).length > 0, { timeoutMs: 10000, intervalMs: 100 });
    const [entry] = hooks.of('permission_request.expired', r.request_id);
    const payload = new Webhook(ep.json.secret).verify(entry.body, {
      'webhook-id': entry.headers['webhook-id'],
      'webhook-timestamp': entry.headers['webhook-timestamp'],
      'webhook-signature': entry.headers['webhook-signature'],
    });
    assert.equal(payload.data.request_id, r.request_id);
    assert.equal(payload.data.status, 'expired');
    // The request can be asked for again now.
    const again = await api(s.url, 'POST', '/v1/permission-requests', {
      bearer: agent.secret, body: { agent_id: agent.agent_id, action: 'soon:gone', reason: 'again', email },
    });
    assert.equal(again.status, 201, again.text);
  } finally {
    assert.equal(await s.stop(), 0);
    await hooks.close();
  }
});

test('no agent floods an inbox: past --rate-limit request-email the request is made but not mailed', async () => {
  const s = await startServer({ smtp: true, args: ['--rate-limit', 'register=off', '--rate-limit', 'request-email=2/h'] });
  try {
    const target = uniqueEmail('pr-flooded');
    const ids = [];
    for (let i = 0; i < 3; i++) {
      const agent = await registerAgent(s.url);
      const made = await api(s.url, 'POST', '/v1/permission-requests', {
        bearer: agent.secret, body: { agent_id: agent.agent_id, action: `flood_${i}`, reason: 'Please', email: target },
      });
      assert.equal(made.status, 201, made.text);
      ids.push(made.json.request_id);
    }
    await s.smtp.waitForMessage((m) => m.text.includes(ids[0]));
    await s.smtp.waitForMessage((m) => m.text.includes(ids[1]));
    // A later mail to someone else still goes out, and proves the queue has moved past the third.
    const other = await registerAgent(s.url);
    const otherReq = await api(s.url, 'POST', '/v1/permission-requests', {
      bearer: other.secret, body: { agent_id: other.agent_id, action: 'other', reason: 'Please', email: uniqueEmail('pr-other') },
    });
    assert.equal(otherReq.status, 201, otherReq.text);
    await s.smtp.waitForMessage((m) => m.text.includes(otherReq.json.request_id));
    assert.equal(s.smtp.messages.filter((m) => m.to.includes(target)).length, 2, 'the third was not mailed');
    assert.match(s.logs(), new RegExp(`permission request ${ids[2]} to ${target.replace(/[.+]/g, '\\$&')} not emailed`));
    // The person still finds all three waiting.
    const person = await signIn(s.url, target);
    const listed = await api(s.url, 'GET', '/v1/permission-requests?status=pending', { cookie: person });
    assert.deepEqual(listed.json.data.map((r) => r.request_id).sort(), [...ids].sort());
  } finally {
    await s.stop();
  }
});

// Outbound webhooks as the Standard Webhooks specification says, verified with the npm
// `standardwebhooks` library: signed deliveries, retries with back-off that honour Retry-After,
// a receiver down then up, a server restart mid-retry, 410 disabling the endpoint, secret
// rotation with both signatures valid, test events, replay, the attempt log, and the egress guard.

import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import { Webhook } from 'standardwebhooks';
import { startServer, api, registerAgent, signIn, uniqueEmail } from './lib/server.mjs';
import { expectError, eventually, sleep } from './lib/expect.mjs';

const FAST = ['--no-rate-limits', '--allow-private-egress', '--webhook-retry-base', '300ms',
  '--webhook-retry-max', '2s', '--webhook-timeout', '3s'];

// A receiver on 127.0.0.1 that records what it gets and answers as `respond` says.
async function startReceiver(respond = () => [200, {}]) {
  const received = [];
  const server = http.createServer((req, res) => {
    let body = '';
    req.setEncoding('utf8');
    req.on('data', (c) => { body += c; });
    req.on('end', () => {
      const entry = { headers: req.headers, body, at: Date.now(), path: req.url };
      received.push(entry);
      const [status, headers = {}] = receiver.respond(entry, received.length);
      res.writeHead(status, headers);
      res.end('ok');
    });
  });
  const receiver = {
    received,
    respond,
    server,
    port: 0,
    get url() { return `http://127.0.0.1:${this.port}/hooks`; },
    async listen(port = 0) {
      await new Promise((resolve) => server.listen(port, '127.0.0.1', resolve));
      this.port = server.address().port;
    },
    async close() {
      server.closeAllConnections?.();
      await new Promise((resolve) => server.close(resolve));
    },
    of(type) { return received.filter((r) => JSON.parse(r.body).type === type); },
  };
  await receiver.listen();
  return receiver;
}

function verify(secret, entry) {
  const wh = new Webhook(secret);
  return wh.verify(entry.body, {
    'webhook-id': entry.headers['webhook-id'],
    'webhook-timestamp': entry.headers['webhook-timestamp'],
    'webhook-signature': entry.headers['webhook-signature'],
  });
}

// Alice and Bob are not admins: an admin's endpoints hear every event of the server.
const srv = await startServer({ args: [...FAST, '--admin-email', uniqueEmail('wh-admin')] });
after(() => { if (process.env.WH_DEBUG) console.log(srv.logs()); return srv.stop(); });
const aliceEmail = uniqueEmail('wh-alice');
const alice = await signIn(srv.url, aliceEmail);
const bob = await signIn(srv.url, uniqueEmail('wh-bob'));

async function createEndpoint(cookie, url, events = ['*'], extra = {}) {
  const res = await api(srv.url, 'POST', '/v1/webhooks', { cookie, body: { url, events, ...extra } });
  assert.equal(res.status, 201, res.text);
  return res.json;
}

test('a grant is delivered signed; the standardwebhooks library verifies it', async () => {
  const rx = await startReceiver();
  try {
    const ep = await createEndpoint(alice, rx.url, ['permission.granted', 'permission.revoked'],
      { description: 'audit sink' });
    assert.match(ep.secret, /^whsec_[A-Za-z0-9+/]{43}=$/);
    assert.match(ep.id, /^whe_[0-9a-f]{16}$/);
    assert.deepEqual(ep.events, ['permission.granted', 'permission.revoked']);
    assert.equal(ep.status, 'enabled');
    const listed = await api(srv.url, 'GET', '/v1/webhooks', { cookie: alice });
    assert.ok(!listed.text.includes(ep.secret), 'the secret is shown once only');
    const shown = await api(srv.url, 'GET', `/v1/webhooks/${ep.id}`, { cookie: alice });
    assert.equal(shown.json.url, rx.url);
    assert.equal(shown.json.secret, undefined);

    const agent = await registerAgent(srv.url);
    const grant = await api(srv.url, 'POST', '/permission/grant', {
      cookie: alice, body: { agent_id: agent.agent_id, action: 'wh_read', scope: { max_amount: 5 } },
    });
    assert.equal(grant.status, 201);
    await eventually(() => rx.of('permission.granted').length === 1, { timeoutMs: 5000 });
    const got = rx.of('permission.granted')[0];
    const payload = verify(ep.secret, got);
    assert.equal(payload.type, 'permission.granted');
    assert.ok(Math.abs(Date.parse(payload.timestamp) - Date.now()) < 60000);
    assert.equal(payload.data.permission_id, grant.json.permission_id);
    assert.equal(payload.data.agent_id, agent.agent_id);
    assert.deepEqual(payload.data.scope, { max_amount: 5 });
    assert.match(got.headers['webhook-id'], /^msg_/);
    assert.equal(got.headers['content-type'], 'application/json');
    assert.equal(got.path, '/hooks');
    // A wrong secret does not verify.
    assert.throws(() => verify('whsec_' + Buffer.alloc(32, 7).toString('base64'), got));

    // Not subscribed: agent.registered did not come; revoked does.
    assert.equal(rx.of('agent.registered').length, 0);
    await api(srv.url, 'POST', '/permission/revoke', {
      cookie: alice, body: { permission_id: grant.json.permission_id },
    });
    await eventually(() => rx.of('permission.revoked').length === 1, { timeoutMs: 5000 });
    const revoked = verify(ep.secret, rx.of('permission.revoked')[0]);
    assert.equal(revoked.data.permission_id, grant.json.permission_id);

    // Bob's grants are not Alice's business.
    await api(srv.url, 'POST', '/permission/grant', {
      cookie: bob, body: { agent_id: agent.agent_id, action: 'wh_bob' },
    });
    await sleep(700);
    assert.ok(rx.of('permission.granted').every((r) => JSON.parse(r.body).data.action !== 'wh_bob'));

    const deliveries = await api(srv.url, 'GET', `/v1/webhooks/${ep.id}/deliveries`, { cookie: alice });
    assert.equal(deliveries.status, 200);
    assert.ok(deliveries.json.data.length >= 2);
    assert.ok(deliveries.json.data.every((d) => d.status === 200 && d.trigger === 'auto'));
  } finally {
    await rx.close();
  }
});

test('receiver down, then up: delivered once it is back, under the same webhook-id', async () => {
  const rx = await startReceiver();
  const port = rx.port;
  const ep = await createEndpoint(alice, rx.url, ['token.created']);
  await rx.close();  // down
  const t = await api(srv.url, 'POST', '/v1/tokens', {
    cookie: alice, body: { name: 'wh-down', abilities: ['permission:check'] },
  });
  assert.equal(t.status, 201);
  // Failed attempts are logged while it is down.
  await eventually(async () => {
    const d = await api(srv.url, 'GET', `/v1/webhooks/${ep.id}/deliveries`, { cookie: alice });
    return d.json.data.length >= 2;
  }, { timeoutMs: 8000, intervalMs: 200 });
  const down = await api(srv.url, 'GET', `/v1/webhooks/${ep.id}/deliveries`, { cookie: alice });
  assert.ok(down.json.data.every((d) => d.status === null && d.error), JSON.stringify(down.json.data));
  const pending = await api(srv.url, 'GET', `/v1/webhooks/${ep.id}/messages`, { cookie: alice });
  assert.equal(pending.json.data[0].status, 'pending');
  assert.ok(pending.json.data[0].attempts >= 2);

  const back = await startReceiver();
  try {
    await back.close();
    await back.listen(port);  // up again, same address
    await eventually(() => back.of('token.created').length === 1, { timeoutMs: 10000, intervalMs: 100 });
    const payload = verify(ep.secret, back.of('token.created')[0]);
    assert.equal(payload.data.id, t.json.id);
    assert.equal(payload.data.token, undefined, 'the plaintext token is never sent');
    assert.equal(back.of('token.created')[0].headers['webhook-id'], pending.json.data[0].message_id);
    const done = await api(srv.url, 'GET', `/v1/webhooks/${ep.id}/messages`, { cookie: alice });
    assert.equal(done.json.data[0].status, 'delivered');
  } finally {
    await back.close();
  }
});

test('Retry-After is honoured', async () => {
  const rx = await startReceiver((entry, n) => (n === 1 ? [429, { 'Retry-After': '2' }] : [200]));
  try {
    await createEndpoint(alice, rx.url, ['token.revoked']);
    const t = await api(srv.url, 'POST', '/v1/tokens', {
      cookie: alice, body: { name: 'wh-ra', abilities: ['permission:check'] },
    });
    await api(srv.url, 'DELETE', `/v1/tokens/${t.json.id}`, { cookie: alice });
    await eventually(() => rx.received.length >= 2, { timeoutMs: 8000, intervalMs: 100 });
    const gap = rx.received[1].at - rx.received[0].at;
    assert.ok(gap >= 1900, `the retry came ${gap} ms after a 429 with Retry-After: 2`);
    assert.equal(rx.received[1].headers['webhook-id'], rx.received[0].headers['webhook-id']);
  } finally {
    await rx.close();
  }
});

test('410 Gone disables the endpoint; later events are not sent to it', async () => {
  const rx = await startReceiver(() => [410]);
  try {
    const ep = await createEndpoint(alice, rx.url, ['permission.granted']);
    const agent = await registerAgent(srv.url);
    await api(srv.url, 'POST', '/permission/grant', {
      cookie: alice, body: { agent_id: agent.agent_id, action: 'wh_gone' },
    });
    await eventually(async () => {
      const e = await api(srv.url, 'GET', `/v1/webhooks/${ep.id}`, { cookie: alice });
      return e.json.status === 'disabled';
    }, { timeoutMs: 5000 });
    const e = await api(srv.url, 'GET', `/v1/webhooks/${ep.id}`, { cookie: alice });
    assert.match(e.json.disabled_reason, /410/);
    await api(srv.url, 'POST', '/permission/grant', {
      cookie: alice, body: { agent_id: agent.agent_id, action: 'wh_gone_2' },
    });
    await sleep(800);
    assert.equal(rx.received.length, 1, 'nothing more after the 410');
    expectError(await api(srv.url, 'POST', `/v1/webhooks/${ep.id}/test`, { cookie: alice }), 409, 'conflict');
    // Re-enabled by its owner, it receives again.
    const on = await api(srv.url, 'PATCH', `/v1/webhooks/${ep.id}`, { cookie: alice, body: { status: 'enabled' } });
    assert.equal(on.status, 200);
    assert.equal(on.json.disabled_reason, null);
  } finally {
    await rx.close();
  }
});

test('rotation: during the overlap both secrets sign, and each verifies', async () => {
  const rx = await startReceiver();
  try {
    const ep = await createEndpoint(alice, rx.url, ['*']);
    const rot = await api(srv.url, 'POST', `/v1/webhooks/${ep.id}/rotate-secret`, {
      cookie: alice, body: { overlap: '1h' },
    });
    assert.equal(rot.status, 200, rot.text);
    assert.notEqual(rot.json.secret, ep.secret);
    const hours = (Date.parse(rot.json.previous_secret_expires_at) - Date.now()) / 3600000;
    assert.ok(hours > 0.95 && hours < 1.05);
    const sent = await api(srv.url, 'POST', `/v1/webhooks/${ep.id}/test`, { cookie: alice });
    assert.equal(sent.status, 202);
    await eventually(() => rx.of('webhook.test').length === 1, { timeoutMs: 5000 });
    const got = rx.of('webhook.test')[0];
    assert.equal(got.headers['webhook-id'], sent.json.message_id);
    assert.equal(got.headers['webhook-signature'].split(' ').length, 2);
    assert.equal(verify(rot.json.secret, got).type, 'webhook.test');
    assert.equal(verify(ep.secret, got).type, 'webhook.test');

    // Without overlap, only the new secret signs.
    const hard = await api(srv.url, 'POST', `/v1/webhooks/${ep.id}/rotate-secret`, {
      cookie: alice, body: { overlap: '0s' },
    });
    assert.equal(hard.json.previous_secret_expires_at, null);
    await api(srv.url, 'POST', `/v1/webhooks/${ep.id}/test`, { cookie: alice });
    await eventually(() => rx.of('webhook.test').length === 2, { timeoutMs: 5000 });
    const second = rx.of('webhook.test')[1];
    assert.equal(second.headers['webhook-signature'].split(' ').length, 1);
    assert.equal(verify(hard.json.secret, second).type, 'webhook.test');
    assert.throws(() => verify(rot.json.secret, second));
  } finally {
    await rx.close();
  }
});

test('replay sends a delivered message again under its id; the log says so', async () => {
  const rx = await startReceiver();
  try {
    const ep = await createEndpoint(alice, rx.url, ['*']);
    const sent = await api(srv.url, 'POST', `/v1/webhooks/${ep.id}/test`, { cookie: alice });
    await eventually(() => rx.received.length === 1, { timeoutMs: 5000 });
    const replay = await api(srv.url, 'POST',
      `/v1/webhooks/${ep.id}/messages/${sent.json.message_id}/replay`, { cookie: alice });
    assert.equal(replay.status, 202, replay.text);
    await eventually(() => rx.received.length === 2, { timeoutMs: 5000 });
    assert.equal(rx.received[1].headers['webhook-id'], sent.json.message_id);
    assert.equal(rx.received[1].body, rx.received[0].body);
    const log = await api(srv.url, 'GET', `/v1/webhooks/${ep.id}/deliveries`, { cookie: alice });
    assert.deepEqual(log.json.data.map((d) => d.trigger), ['replay', 'test']);
    expectError(await api(srv.url, 'POST', `/v1/webhooks/${ep.id}/messages/msg_nope/replay`,
      { cookie: alice }), 404, 'not_found');
  } finally {
    await rx.close();
  }
});

test('permission.expired is sent once when a grant expires', async () => {
  const rx = await startReceiver();
  try {
    const ep = await createEndpoint(alice, rx.url, ['permission.expired']);
    const agent = await registerAgent(srv.url);
    const g = await api(srv.url, 'POST', '/permission/grant', {
      cookie: alice, body: { agent_id: agent.agent_id, action: 'wh_expiring', expires_in: '1s' },
    });
    await eventually(() => rx.of('permission.expired').length === 1, { timeoutMs: 8000, intervalMs: 100 });
    const payload = verify(ep.secret, rx.of('permission.expired')[0]);
    assert.equal(payload.data.permission_id, g.json.permission_id);
    assert.equal(payload.data.granted_by, aliceEmail);
    await sleep(1500);
    assert.equal(rx.of('permission.expired').length, 1, 'once only');
  } finally {
    await rx.close();
  }
});

test('a server restart mid-retry loses nothing', async () => {
  const s1 = await startServer({ args: FAST });
  let s2;
  const rx = await startReceiver();
  const port = rx.port;
  try {
    const cookie = await signIn(s1.url, uniqueEmail('wh-restart'));
    const ep = (await api(s1.url, 'POST', '/v1/webhooks', {
      cookie, body: { url: rx.url, events: ['agent.registered', 'token.created'] },
    })).json;
    await rx.close();
    const t = await api(s1.url, 'POST', '/v1/tokens', {
      cookie, body: { name: 'restart', abilities: ['permission:check'] },
    });
    assert.equal(t.status, 201);
    await sleep(500);  // at least one failed attempt
    await s1.stop({ signal: 'SIGKILL' });
    const back = await startReceiver();
    await back.close();
    await back.listen(port);
    try {
      s2 = await startServer({ args: FAST, dataDir: s1.dataDir });
      await eventually(() => back.of('token.created').length >= 1, { timeoutMs: 10000, intervalMs: 100 });
      assert.equal(verify(ep.secret, back.of('token.created')[0]).data.id, t.json.id);
    } finally {
      await back.close();
    }
  } finally {
    await s1.stop();
    if (s2) await s2.stop();
  }
});

test('bad webhook requests get structured 4xx errors; others cannot see an endpoint', async () => {
  const rx = await startReceiver();
  try {
    for (const [body, code, words] of [
      [{}, 'missing_fields', ['url', 'events']],
      [{ url: rx.url }, 'missing_fields', ['events']],
      [{ url: rx.url, events: [] }, 'invalid_field', ['events']],
      [{ url: rx.url, events: ['permission.nuked'] }, 'invalid_field', ['permission.nuked']],
      [{ url: 'ftp://example.com/x', events: ['*'] }, 'invalid_field', []],
      [{ url: 'not a url', events: ['*'] }, 'invalid_field', []],
      [{ url: 'http://user:pw@example.com/', events: ['*'] }, 'invalid_field', []],
      [{ url: rx.url, events: ['*'], description: 'x'.repeat(501) }, 'invalid_field', ['description']],
      [{ url: 7, events: ['*'] }, 'invalid_field', ['url']],
    ]) {
      const res = await api(srv.url, 'POST', '/v1/webhooks', { cookie: alice, body });
      expectError(res, 400, code, { messageIncludes: words });
    }
    const ep = await createEndpoint(alice, rx.url);
    expectError(await api(srv.url, 'GET', `/v1/webhooks/${ep.id}`, { cookie: bob }), 404, 'not_found');
    expectError(await api(srv.url, 'DELETE', `/v1/webhooks/${ep.id}`, { cookie: bob }), 404, 'not_found');
    expectError(await api(srv.url, 'PATCH', `/v1/webhooks/${ep.id}`, { cookie: alice, body: { colour: 'red' } }),
      400, 'invalid_field');
    expectError(await api(srv.url, 'PATCH', `/v1/webhooks/${ep.id}`, { cookie: alice, body: { status: 'paused' } }),
      400, 'invalid_field');
    for (const field of ['url', 'events', 'status']) {
      expectError(await api(srv.url, 'PATCH', `/v1/webhooks/${ep.id}`, { cookie: alice, body: { [field]: null } }),
        400, 'invalid_field', { messageIncludes: [field] });
    }
    expectError(await api(srv.url, 'POST', `/v1/webhooks/${ep.id}/rotate-secret`,
      { cookie: alice, body: { overlap: '30d' } }), 400, 'invalid_field');
    expectError(await api(srv.url, 'GET', `/v1/webhooks/${ep.id}/deliveries?limit=0`, { cookie: alice }),
      400, 'invalid_field');
    const del = await api(srv.url, 'DELETE', `/v1/webhooks/${ep.id}`, { cookie: alice });
    assert.equal(del.status, 200);
    assert.deepEqual(del.json, { id: ep.id, deleted: true });
    expectError(await api(srv.url, 'GET', `/v1/webhooks/${ep.id}`, { cookie: alice }), 404, 'not_found');
    // A token needs webhook:manage.
    const t = (await api(srv.url, 'POST', '/v1/tokens', {
      cookie: alice, body: { name: 'nohooks', abilities: ['permission:check'] },
    })).json;
    expectError(await api(srv.url, 'GET', '/v1/webhooks', { bearer: t.token }), 403,
      'token_missing_ability', { messageIncludes: ['webhook:manage'] });
  } finally {
    await rx.close();
  }
});

test('without --allow-private-egress, private and loopback destinations are refused', async () => {
  const s = await startServer({ args: ['--no-rate-limits'] });
  try {
    const cookie = await signIn(s.url, uniqueEmail('wh-egress'));
    for (const url of ['http://127.0.0.1:9/x', 'http://localhost/x', 'http://10.1.2.3/x',
      'http://169.254.169.254/latest/meta-data', 'http://[::1]/x', 'http://192.168.1.1/']) {
      const res = await api(s.url, 'POST', '/v1/webhooks', { cookie, body: { url, events: ['*'] } });
      expectError(res, 400, 'invalid_field', { messageIncludes: ['--allow-private-egress'] });
    }
  } finally {
    await s.stop();
  }
});

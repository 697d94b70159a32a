// The command-line client's webhook commands against a real server (with --allow-private-egress)
// and a real receiver on 127.0.0.1: create (the secret shown once), list, show, update (URL,
// events, description, enable/disable), test, deliveries, messages, replay, rotate-secret (both
// secrets verify during the overlap) and delete. Deliveries are verified with the npm
// `standardwebhooks` library.
//
// In 'webhook create' and 'webhook update' --url is the endpoint's URL, so these tests give the
// server with AGENTGATE_URL (and once with --server).

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import { spawn } from 'node:child_process';
import { Webhook } from 'standardwebhooks';
import { BINARY, makeTempDir, signIn, startServer, uniqueEmail } from './lib/server.mjs';
import { eventually } from './lib/expect.mjs';

let srv;
let session;

before(async () => {
  srv = await startServer({ args: ['--no-rate-limits', '--allow-private-egress',
    '--webhook-retry-base', '300ms', '--webhook-retry-max', '2s', '--webhook-timeout', '3s'] });
  session = await signIn(srv.url, uniqueEmail('cli-wh'));
});
after(async () => {
  if (srv) assert.equal(await srv.stop(), 0);
});

// Runs `agentgate ...args` against the test server, signed in with the session, with no other
// AGENTGATE_* variables and an empty config directory.
function ag(args, { env = {}, timeoutMs = 20000 } = {}) {
  const base = { ...process.env };
  for (const name of ['AGENTGATE_URL', 'AGENTGATE_AGENT_SECRET', 'AGENTGATE_SESSION',
    'AGENTGATE_TOKEN', 'AGENTGATE_CONFIG']) {
    delete base[name];
  }
  base.XDG_CONFIG_HOME = makeTempDir('agentgate-cli-cfg-');
  base.AGENTGATE_URL = srv.url;
  base.AGENTGATE_SESSION = session;
  return new Promise((resolve, reject) => {
    const proc = spawn(BINARY, args, { env: { ...base, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    proc.stdout.setEncoding('utf8');
    proc.stderr.setEncoding('utf8');
    proc.stdout.on('data', (d) => { stdout += d; });
    proc.stderr.on('data', (d) => { stderr += d; });
    const timer = setTimeout(() => {
      proc.kill('SIGKILL');
      reject(new Error(`agentgate ${args.join(' ')} did not finish in ${timeoutMs} ms`));
    }, timeoutMs);
    proc.on('error', (err) => { clearTimeout(timer); reject(err); });
    proc.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr, all: `exit ${code}\n--- stdout ---\n${stdout}--- stderr ---\n${stderr}` });
    });
  });
}

function expectApiError(r, code) {
  assert.equal(r.code, 1, r.all);
  assert.match(r.stderr, new RegExp(`^error: ${code}: \\S`, 'm'), r.all);
  assert.match(r.stderr, /request_id: req_[A-Za-z0-9]+/, r.all);
}

function expectUsage(r, pattern) {
  assert.equal(r.code, 2, r.all);
  assert.match(r.stderr, /Usage: agentgate /, r.all);
  if (pattern) assert.match(r.stderr, pattern, r.all);
  assert.equal(r.stdout, '');
}

// A receiver on 127.0.0.1 that records every request and answers 200.
async function startReceiver() {
  const received = [];
  const server = http.createServer((req, res) => {
    let body = '';
    req.setEncoding('utf8');
    req.on('data', (c) => { body += c; });
    req.on('end', () => {
      received.push({ headers: req.headers, body });
      res.writeHead(200);
      res.end('ok');
    });
  });
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    received,
    url: `http://127.0.0.1:${server.address().port}/hooks`,
    async close() {
      server.closeAllConnections?.();
      await new Promise((resolve) => server.close(resolve));
    },
  };
}

function verify(secret, entry) {
  return new Webhook(secret).verify(entry.body, {
    'webhook-id': entry.headers['webhook-id'],
    'webhook-timestamp': entry.headers['webhook-timestamp'],
    'webhook-signature': entry.headers['webhook-signature'],
  });
}

const field = (stdout, name) => stdout.match(new RegExp(`^${name}: +(.*)$`, 'm'))?.[1];

// ---------------------------------------------------------------------------------------------

test('help for the webhook commands', async () => {
  const group = await ag(['webhook', '--help']);
  assert.equal(group.code, 0, group.all);
  for (const sub of ['create', 'list', 'show', 'update', 'delete', 'rotate-secret', 'test',
    'deliveries', 'messages', 'replay']) {
    assert.match(group.stdout, new RegExp(`webhook ${sub} `));
    const r = await ag(['webhook', sub, '--help']);
    assert.equal(r.code, 0, r.all);
    assert.match(r.stdout, new RegExp(`^Usage: agentgate webhook ${sub}`));
    for (const w of ['--json', '--token', '--session', 'Example', 'Exit codes']) {
      assert.ok(r.stdout.includes(w), `help of webhook ${sub} mentions ${w}`);
    }
  }
  const create = await ag(['webhook', 'create', '--help']);
  for (const w of ['--url URL', '--event TYPE', '--description', '--server URL', 'permission.granted', 'whsec_']) {
    assert.ok(create.stdout.includes(w), `help of webhook create mentions ${w}:\n${create.stdout}`);
  }
  const update = await ag(['webhook', 'update', '--help']);
  for (const w of ['--enable', '--disable', '--event', '--url', '--server']) assert.ok(update.stdout.includes(w));
});

test('create, list, show, update, test, deliveries, messages, replay, rotate-secret, delete', async () => {
  const rx = await startReceiver();
  try {
    // create: the endpoint and its secret, shown once; events from a list and a repeat.
    const created = await ag(['webhook', 'create', '--url', rx.url, '--event', 'permission.granted,permission.revoked',
      '--event', 'token.created', '--description', 'cli sink']);
    assert.equal(created.code, 0, created.all);
    const id = field(created.stdout, 'id');
    const secret = field(created.stdout, 'secret');
    assert.match(id, /^whe_[0-9a-f]{16}$/, created.all);
    assert.match(secret, /^whsec_\S+$/, created.all);
    assert.equal(field(created.stdout, 'url'), rx.url);
    assert.equal(field(created.stdout, 'events'), 'permission.granted, permission.revoked, token.created');
    assert.equal(field(created.stdout, 'description'), 'cli sink');
    assert.equal(field(created.stdout, 'status'), 'enabled');
    assert.match(created.stdout, /shown this once only/);

    // --json, and the server given with --server instead of AGENTGATE_URL.
    const second = await ag(['webhook', 'create', '--server', srv.url, '--url', rx.url, '--event', '*', '--json'],
      { env: { AGENTGATE_URL: '' } });
    assert.equal(second.code, 0, second.all);
    const other = JSON.parse(second.stdout);
    assert.deepEqual(other.events, ['*']);
    assert.match(other.secret, /^whsec_/);

    // list and show.
    const list = await ag(['webhook', 'list']);
    assert.equal(list.code, 0, list.all);
    assert.match(list.stdout, /^ID +URL +EVENTS +STATUS +DESCRIPTION$/m);
    assert.match(list.stdout, new RegExp(`^${id} +${rx.url} +permission\\.granted,permission\\.revoked,token\\.created +enabled +cli sink$`, 'm'));
    assert.match(list.stdout, new RegExp(`^${other.id} +${rx.url} +\\* +enabled`, 'm'));
    assert.ok(!list.stdout.includes(secret), 'the secret is not shown again');
    const listed = JSON.parse((await ag(['webhook', 'list', '--json'])).stdout).data.map((e) => e.id);
    assert.ok(listed.includes(id) && listed.includes(other.id));
    const show = await ag(['webhook', 'show', id]);
    assert.equal(show.code, 0, show.all);
    assert.equal(field(show.stdout, 'id'), id);
    assert.equal(field(show.stdout, 'status'), 'enabled');
    assert.ok(!show.stdout.includes(secret));
    assert.equal(JSON.parse((await ag(['webhook', 'show', id, '--json'])).stdout).url, rx.url);

    // update: events replaced, description, disable (test refused), enable again.
    const disabled = await ag(['webhook', 'update', id, '--event', '*', '--description', 'everything', '--disable']);
    assert.equal(disabled.code, 0, disabled.all);
    assert.equal(field(disabled.stdout, 'events'), '*');
    assert.equal(field(disabled.stdout, 'description'), 'everything');
    assert.equal(field(disabled.stdout, 'status'), 'disabled');
    assert.equal(field(disabled.stdout, 'disabled_reason'), 'disabled by its owner');
    expectApiError(await ag(['webhook', 'test', id]), 'conflict');
    const enabled = await ag(['webhook', 'update', id, '--enable', '--json']);
    assert.equal(enabled.code, 0, enabled.all);
    assert.equal(JSON.parse(enabled.stdout).status, 'enabled');
    assert.equal(JSON.parse(enabled.stdout).disabled_reason, null);
    const moved = await ag(['webhook', 'update', id, '--url', `${rx.url}?v=2`]);
    assert.equal(field(moved.stdout, 'url'), `${rx.url}?v=2`);

    // test: queued, delivered signed with the secret create printed.
    const sent = await ag(['webhook', 'test', id]);
    assert.equal(sent.code, 0, sent.all);
    const messageId = sent.stdout.match(/^queued: webhook\.test message (\S+)$/m)?.[1];
    assert.ok(messageId, sent.all);
    assert.ok(await eventually(() => rx.received.some((r) => r.headers['webhook-id'] === messageId),
      { timeoutMs: 5000 }), 'the test event arrives');
    const got = rx.received.find((r) => r.headers['webhook-id'] === messageId);
    assert.equal(verify(secret, got).type, 'webhook.test');

    // deliveries and messages: the attempt and the delivered message.
    const deliveries = await eventually(async () => {
      const r = await ag(['webhook', 'deliveries', id]);
      return r.stdout.includes(messageId) ? r : null;
    }, { timeoutMs: 5000 });
    assert.ok(deliveries, 'the attempt is logged');
    assert.match(deliveries.stdout, /^AT +MESSAGE_ID +EVENT +ATTEMPT +STATUS +DURATION_MS +TRIGGER +ERROR$/m);
    assert.match(deliveries.stdout, new RegExp(`^\\S+Z +${messageId} +webhook\\.test +1 +200 +\\S+ +test +-$`, 'm'),
      deliveries.all);
    const messages = await ag(['webhook', 'messages', id]);
    assert.equal(messages.code, 0, messages.all);
    assert.match(messages.stdout, /^MESSAGE_ID +EVENT +STATUS +ATTEMPTS +LAST_STATUS +NEXT_ATTEMPT_AT +CREATED_AT +LAST_ERROR$/m);
    assert.match(messages.stdout, new RegExp(`^${messageId} +webhook\\.test +delivered +1 +200 +- +\\S+Z +-$`, 'm'),
      messages.all);
    const messagesJson = JSON.parse((await ag(['webhook', 'messages', id, '--json'])).stdout);
    assert.equal(messagesJson.data[0].message_id, messageId);

    // replay: sent again under the same id; the log says it was a replay.
    const replay = await ag(['webhook', 'replay', id, messageId]);
    assert.equal(replay.code, 0, replay.all);
    assert.match(replay.stdout, new RegExp(`^replay queued: ${messageId} \\(pending\\)$`, 'm'));
    assert.ok(await eventually(() => rx.received.filter((r) => r.headers['webhook-id'] === messageId).length === 2,
      { timeoutMs: 5000 }), 'the replay arrives');
    const log = await eventually(async () => {
      const page = JSON.parse((await ag(['webhook', 'deliveries', id, '--json'])).stdout);
      return page.data.length === 2 ? page : null;
    }, { timeoutMs: 5000 });
    assert.deepEqual(log.data.map((d) => d.trigger), ['replay', 'test']);
    expectApiError(await ag(['webhook', 'replay', id, 'msg_nope']), 'not_found');

    // Paging: --limit 1 shows a cursor hint; --all-pages gets both attempts.
    const firstPage = await ag(['webhook', 'deliveries', id, '--limit', '1']);
    const cursor = firstPage.stdout.match(/\(more: add --cursor (\S+), or --all-pages/)?.[1];
    assert.ok(cursor, firstPage.all);
    const nextPage = await ag(['webhook', 'deliveries', id, '--limit', '1', '--cursor', cursor, '--json']);
    assert.equal(JSON.parse(nextPage.stdout).data[0].trigger, 'test');
    const everything = await ag(['webhook', 'deliveries', id, '--limit', '1', '--all-pages', '--json']);
    assert.deepEqual(everything.stdout.trimEnd().split('\n').map((l) => JSON.parse(l).data[0].trigger),
      ['replay', 'test']);

    // rotate-secret: a new secret; during the overlap both sign and both verify.
    const rotated = await ag(['webhook', 'rotate-secret', id, '--overlap', '1h']);
    assert.equal(rotated.code, 0, rotated.all);
    const newSecret = field(rotated.stdout, 'secret');
    assert.match(newSecret, /^whsec_/);
    assert.notEqual(newSecret, secret);
    const hours = (Date.parse(field(rotated.stdout, 'previous_secret_expires_at')) - Date.now()) / 3600000;
    assert.ok(hours > 0.95 && hours < 1.05, `overlap of ${hours} h`);
    assert.match(rotated.stdout, /shown this once only/);
    const sent2 = await ag(['webhook', 'test', id, '--json']);
    assert.equal(sent2.code, 0, sent2.all);
    const { message_id: secondId, event_type: type } = JSON.parse(sent2.stdout);
    assert.equal(type, 'webhook.test');
    assert.ok(await eventually(() => rx.received.some((r) => r.headers['webhook-id'] === secondId),
      { timeoutMs: 5000 }));
    const got2 = rx.received.find((r) => r.headers['webhook-id'] === secondId);
    assert.equal(verify(newSecret, got2).type, 'webhook.test');
    assert.equal(verify(secret, got2).type, 'webhook.test');
    const shownAfter = await ag(['webhook', 'show', id]);
    assert.match(shownAfter.stdout, /^previous_secret_expires_at: +\S+Z$/m);

    // delete: gone.
    const deleted = await ag(['webhook', 'delete', id]);
    assert.equal(deleted.code, 0, deleted.all);
    assert.equal(deleted.stdout, `deleted: ${id}\n`);
    expectApiError(await ag(['webhook', 'show', id]), 'not_found');
    expectApiError(await ag(['webhook', 'delete', id]), 'not_found');
    const deletedJson = await ag(['webhook', 'delete', other.id, '--json']);
    assert.deepEqual(JSON.parse(deletedJson.stdout), { id: other.id, deleted: true });
    assert.equal((await ag(['webhook', 'list'])).stdout, 'no webhook endpoints\n');
  } finally {
    await rx.close();
  }
});

test('webhook usage errors and API errors', async () => {
  expectUsage(await ag(['webhook', 'create', '--event', '*']), /missing --url/);
  expectUsage(await ag(['webhook', 'create', '--url', 'http://127.0.0.1:1/x']), /missing --event/);
  expectUsage(await ag(['webhook', 'create', '--url', 'http://127.0.0.1:1/x', '--event', 'a,,b']),
    /has an empty item/);
  // --url twice: the server's URL given where the endpoint's belongs.
  expectUsage(await ag(['--url', srv.url, 'webhook', 'create', '--url', 'http://127.0.0.1:1/x', '--event', '*']),
    /--url given twice.*--server/);
  expectUsage(await ag(['webhook', 'update', 'whe_0000000000000000']), /nothing to change/);
  expectUsage(await ag(['webhook', 'update', 'whe_0000000000000000', '--enable', '--disable']), /not both/);
  expectUsage(await ag(['webhook', 'show']), /missing WEBHOOK_ID/);
  expectUsage(await ag(['webhook', 'replay', 'whe_0000000000000000']), /missing MESSAGE_ID/);
  expectUsage(await ag(['webhook', 'deliveries', 'whe_0000000000000000', '--limit', 'x']), /--limit/);
  expectUsage(await ag(['webhook', 'list'], { env: { AGENTGATE_SESSION: '' } }), /needs a session or an access token/);

  expectApiError(await ag(['webhook', 'create', '--url', 'http://127.0.0.1:1/x', '--event', 'agent.exploded']),
    'invalid_field');
  expectApiError(await ag(['webhook', 'create', '--url', 'ftp://example.com/x', '--event', '*']), 'invalid_field');
  expectApiError(await ag(['webhook', 'show', 'whe_0000000000000000']), 'not_found');
  expectApiError(await ag(['webhook', 'rotate-secret', 'whe_0000000000000000', '--overlap', '30d']), 'not_found');
  expectApiError(await ag(['webhook', 'test', 'whe_0000000000000000']), 'not_found');
});

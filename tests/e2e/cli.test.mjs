// The command-line client against a real server: every client command, its exit codes, its human
// and --json output, usage errors, API errors, an unreachable or silent server, and --help.
//
// The CLI is the same binary as the server ($AGENTGATE_BIN, default ../../build/agentgate).

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import net from 'node:net';
import {
  BINARY, startServer, registerAgent, signIn, uniqueEmail,
} from './lib/server.mjs';

let srv;

before(async () => {
  // Many registrations and checks from one IP: lift the register limit, keep the others.
  srv = await startServer({ args: ['--rate-limit', 'register=1000/h'] });
});
after(async () => {
  if (srv) assert.equal(await srv.stop(), 0);
});

// Runs `agentgate ...args` with a clean AGENTGATE_* environment plus `env`.
function cli(args, { env = {}, timeoutMs = 20000 } = {}) {
  const base = { ...process.env };
  delete base.AGENTGATE_URL;
  delete base.AGENTGATE_AGENT_SECRET;
  delete base.AGENTGATE_SESSION;
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

// `cli` against the test server.
function ag(args, opts = {}) {
  return cli(['--url', srv.url, ...args], opts);
}

function expectApiError(r, code) {
  assert.equal(r.code, 1, r.all);
  assert.match(r.stderr, new RegExp(`^error: ${code}: \\S`, 'm'), r.all);
  assert.match(r.stderr, /request_id: req_[A-Za-z0-9]+/, r.all);
}

function expectUsage(r, pattern) {
  assert.equal(r.code, 2, r.all);
  assert.match(r.stderr, /^error: /m, r.all);
  assert.match(r.stderr, /Usage: agentgate /, r.all);
  if (pattern) assert.match(r.stderr, pattern, r.all);
  assert.equal(r.stdout, '', 'a usage error prints nothing on stdout');
}

// A port on which nothing listens (bound, then closed).
async function deadPort() {
  const server = net.createServer();
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address();
  await new Promise((resolve) => server.close(resolve));
  return port;
}

async function signedInSession(tag = 'cli') {
  const email = uniqueEmail(tag);
  return { email, session: await signIn(srv.url, email) };
}

// ---------------------------------------------------------------------------------------------

test('top-level help, version, and help for every command', async () => {
  for (const args of [[], ['help'], ['--help'], ['-h']]) {
    const r = await cli(args);
    assert.equal(r.code, 0, r.all);
    assert.match(r.stdout, /Usage: agentgate/);
    assert.match(r.stdout, /agentgate serve --help for server options/);
    for (const cmd of ['agent register', 'agent show', 'permission check', 'permission grant',
      'permission revoke', 'permission list', 'auth magic-link', 'auth verify', 'auth whoami',
      'auth logout', 'health', 'stats']) {
      assert.ok(r.stdout.includes(cmd), `top-level help lists ${cmd}`);
    }
    for (const env of ['AGENTGATE_URL', 'AGENTGATE_AGENT_SECRET', 'AGENTGATE_SESSION']) {
      assert.ok(r.stdout.includes(env), `top-level help names ${env}`);
    }
  }
  for (const args of [['--version'], ['version']]) {
    const r = await cli(args);
    assert.equal(r.code, 0, r.all);
    assert.equal(r.stdout, 'agentgate 0.1.0\n');
  }

  const commands = {
    'agent register': ['--name', '--email', '--description', '--metadata'],
    'agent show': ['--secret', 'AGENTGATE_AGENT_SECRET'],
    'permission check': ['--context', '--secret', 'AGENTGATE_AGENT_SECRET', '0 allowed; 1 denied'],
    'permission grant': ['--expires-in', '--scope', '--metadata', '--session', 'AGENTGATE_SESSION'],
    'permission revoke': ['--permission-id', '--session'],
    'permission list': ['--agent-id', '--all', '--session'],
    'auth magic-link': ['EMAIL'],
    'auth verify': ['TOKEN_OR_LINK', 'AGENTGATE_SESSION'],
    'auth whoami': ['--session'],
    'auth logout': ['--session'],
    health: [],
    stats: [],
  };
  for (const [cmd, flags] of Object.entries(commands)) {
    const words = cmd.split(' ');
    for (const args of [[...words, '--help'], [...words, '-h'], ['help', ...words]]) {
      const r = await cli(args);
      assert.equal(r.code, 0, `${args.join(' ')}: ${r.all}`);
      assert.match(r.stdout, new RegExp(`Usage: agentgate ${cmd}`), r.all);
      for (const f of [...flags, '--url', '--json', '--timeout', 'AGENTGATE_URL', 'Example', 'Exit codes']) {
        assert.ok(r.stdout.includes(f), `help of '${cmd}' mentions ${f}:\n${r.stdout}`);
      }
    }
  }
  // A group alone lists its commands.
  const group = await cli(['permission', '--help']);
  assert.equal(group.code, 0, group.all);
  for (const sub of ['check', 'grant', 'revoke', 'list']) assert.match(group.stdout, new RegExp(`permission ${sub}`));
});

test('usage errors exit 2 with the usage line', async () => {
  const url = srv.url;
  expectUsage(await cli(['bogus']), /unknown command/);
  expectUsage(await cli(['--url', url]), /missing command/);
  const group = await cli(['permission']);
  assert.equal(group.code, 2, group.all);
  assert.match(group.stderr, /missing command after 'permission'/);
  const unknownSub = await cli(['agent', 'delete', 'ap_x']);
  assert.equal(unknownSub.code, 2, unknownSub.all);
  assert.match(unknownSub.stderr, /unknown command 'agentgate agent delete'/);

  expectUsage(await cli(['health', '--url', url, '--bogus']), /unknown flag --bogus/);
  expectUsage(await cli(['health', '--url', url, '-x']), /unknown flag '-x'/);
  expectUsage(await cli(['health', '--url', url, 'extra']), /unexpected argument 'extra'/);
  expectUsage(await cli(['health', '--url', url, '--json=yes']), /--json takes no value/);
  expectUsage(await cli(['health', '--url']), /--url needs a value/);
  expectUsage(await cli(['health', '--url', 'ftp://example.com']), /not an http/);
  expectUsage(await cli(['health', '--url', url, '--timeout', 'soon']), /--timeout/);
  expectUsage(await cli(['health', '--url', url, '--timeout=0']), /--timeout/);
  expectUsage(await cli(['agent', 'register', '--url', url, '--name', 'x']), /missing --email/);
  expectUsage(await cli(['agent', 'register', '--url', url, '--email', 'a@b.c']), /missing --name/);
  expectUsage(await cli(['agent', 'register', '--url', url, '--name', 'x', '--email', 'a@b.c',
    '--metadata', '[1,2]']), /--metadata must be a JSON object/);
  expectUsage(await cli(['agent', 'show', '--url', url, '--secret', 'sk_ap_x']), /missing AGENT_ID/);
  expectUsage(await cli(['agent', 'show', 'ap_x', '--url', url]), /needs the agent's secret/);
  expectUsage(await cli(['permission', 'check', 'ap_x', '--url', url, '--secret', 'sk_ap_x']), /missing ACTION/);
  expectUsage(await cli(['permission', 'check', 'ap_x', 'a', '--url', url, '--secret', 'sk_ap_x',
    '--context', '{"spend":']), /--context must be a JSON object/);
  expectUsage(await cli(['permission', 'grant', 'ap_x', 'a', '--url', url]), /needs a session/);
  expectUsage(await cli(['permission', 'grant', 'ap_x', 'a', '--url', url, '--session', 's',
    '--scope', '{bad json}']), /--scope must be a JSON object/);
  expectUsage(await cli(['permission', 'grant', 'ap_x', 'a', '--url', url, '--session', 's',
    '--scope', '"str"']), /--scope must be a JSON object/);
  expectUsage(await cli(['permission', 'revoke', '--url', url, '--session', 's']), /missing AGENT_ID ACTION/);
  expectUsage(await cli(['permission', 'revoke', 'ap_x', '--url', url, '--session', 's']), /missing ACTION/);
  expectUsage(await cli(['permission', 'revoke', 'ap_x', 'a', '--permission-id', 'p', '--url', url,
    '--session', 's']), /not both/);
  expectUsage(await cli(['permission', 'list', '--url', url, '--session', 's', '--secret', 'sk_ap_x']),
    /unknown flag --secret/);
  expectUsage(await cli(['auth', 'verify', '--url', url]), /missing TOKEN_OR_LINK/);
  expectUsage(await cli(['auth', 'verify', `${url}/auth/verify?nothing=1`, '--url', url]), /no sign-in token/);
  expectUsage(await cli(['auth', 'whoami', '--url', url]), /needs a session/);

  // A secret given as a stray argument is not echoed back.
  const stray = await cli(['health', '--url', url, 'sk_ap_0123456789abcdef']);
  assert.equal(stray.code, 2, stray.all);
  assert.ok(!stray.stderr.includes('sk_ap_0123456789abcdef'), stray.all);
});

test('health and stats, human and --json, with --url, AGENTGATE_URL and flags anywhere', async () => {
  const h = await ag(['health']);
  assert.equal(h.code, 0, h.all);
  assert.match(h.stdout, /^status: ok {2}version: 0\.1\.0 {2}timestamp: \d{4}-\d\d-\d\dT/);

  const viaEnv = await cli(['health', '--json'], { env: { AGENTGATE_URL: srv.url } });
  assert.equal(viaEnv.code, 0, viaEnv.all);
  assert.equal(viaEnv.stdout.split('\n').length, 2, 'one line of JSON');
  const body = JSON.parse(viaEnv.stdout);
  assert.equal(body.status, 'ok');
  assert.equal(body.version, '0.1.0');

  const flagFirst = await cli([`--url=${srv.url}`, '--json', 'stats']);
  assert.equal(flagFirst.code, 0, flagFirst.all);
  const stats = JSON.parse(flagFirst.stdout);
  for (const k of ['agents_registered', 'permissions_granted', 'checks_today', 'checks_total']) {
    assert.equal(typeof stats[k], 'number', k);
  }
  const human = await ag(['stats']);
  assert.equal(human.code, 0, human.all);
  assert.match(human.stdout, /^agents_registered: +\d+$/m);
  assert.match(human.stdout, /^checks_total: +\d+$/m);

  // A base URL with a trailing slash works too.
  const slash = await cli(['health', '--url', `${srv.url}/`]);
  assert.equal(slash.code, 0, slash.all);
});

test('agent register (human and --json) and agent show', async () => {
  const email = uniqueEmail('dev');
  const r = await ag(['agent', 'register', '--name', 'cli-agent', '--email', email,
    '--description=Books flights', '--metadata', '{"team": "travel", "n": 1.5}']);
  assert.equal(r.code, 0, r.all);
  const id = r.stdout.match(/^agent_id: +(ap_[A-Za-z0-9]+)$/m)?.[1];
  const secret = r.stdout.match(/^secret: +(sk_ap_[0-9a-f]{64})$/m)?.[1];
  assert.ok(id && secret, r.all);
  assert.match(r.stdout, /shown once/);
  assert.match(r.stdout, /AGENTGATE_AGENT_SECRET/);

  const j = await ag(['--json', 'agent', 'register', '--name', 'cli-agent-2', '--email', email]);
  assert.equal(j.code, 0, j.all);
  assert.equal(j.stdout.trimEnd().split('\n').length, 1, 'one line');
  const reg = JSON.parse(j.stdout);
  assert.match(reg.agent_id, /^ap_/);
  assert.match(reg.secret, /^sk_ap_[0-9a-f]{64}$/);
  assert.equal(reg.note, 'Save your secret — shown once only');
  assert.notEqual(reg.agent_id, id);

  // show, with --secret and with the environment variable; the secret is not printed.
  const show = await ag(['agent', 'show', id, '--secret', secret]);
  assert.equal(show.code, 0, show.all);
  assert.match(show.stdout, new RegExp(`^agent_id: +${id}$`, 'm'));
  assert.match(show.stdout, /^name: +cli-agent$/m);
  assert.match(show.stdout, /^description: +Books flights$/m);
  assert.match(show.stdout, new RegExp(`^developer_email: +${email.replace(/[.+]/g, '\\$&')}$`, 'm'));
  assert.match(show.stdout, /^status: +active$/m);
  assert.match(show.stdout, /^last_seen: +never$/m);
  assert.match(show.stdout, /^metadata: +\{"team":"travel","n":1\.5\}$/m);
  assert.match(show.stdout, /^active_permissions: +0$/m);
  assert.ok(!show.stdout.includes(secret) && !show.stderr.includes(secret), 'show never prints the secret');

  const showJson = await ag(['agent', 'show', id, '--json'], { env: { AGENTGATE_AGENT_SECRET: secret } });
  assert.equal(showJson.code, 0, showJson.all);
  const profile = JSON.parse(showJson.stdout);
  assert.equal(profile.agent_id, id);
  assert.deepEqual(profile.metadata, { team: 'travel', n: 1.5 });
  assert.deepEqual(profile.active_permissions, []);

  // API errors: exit 1, "error: <code>: <message>" and the request id on stderr.
  const other = await ag(['agent', 'show', reg.agent_id, '--secret', secret]);
  expectApiError(other, 'forbidden');
  const unknown = await ag(['agent', 'show', 'ap_doesnotexist00', '--secret', secret]);
  expectApiError(unknown, 'agent_not_found');
  const wrong = await ag(['agent', 'show', id, '--secret', `sk_ap_${'0'.repeat(64)}`]);
  expectApiError(wrong, 'unauthorized');
  assert.match(wrong.stderr, /remediation: /);
  const badEmail = await ag(['agent', 'register', '--name', 'x', '--email', 'not-an-email']);
  expectApiError(badEmail, 'invalid_email');
  const longName = await ag(['agent', 'register', '--name', 'n'.repeat(101), '--email', email]);
  expectApiError(longName, 'invalid_name');
  // With --json the error body is printed on stdout as well.
  const jsonErr = await ag(['agent', 'register', '--json', '--name', 'x', '--email', 'nope']);
  assert.equal(jsonErr.code, 1, jsonErr.all);
  assert.equal(JSON.parse(jsonErr.stdout).error, 'invalid_email');
});

test('grant, check, list, revoke round trip with exit codes', async () => {
  const { email, session } = await signedInSession('granter');
  const { agent_id: id, secret } = await registerAgent(srv.url);
  const asPerson = { env: { AGENTGATE_SESSION: session } };
  const asAgent = { env: { AGENTGATE_AGENT_SECRET: secret } };

  // Nothing granted yet: denied, exit 1.
  const denied = await ag(['permission', 'check', id, 'book_flight'], asAgent);
  assert.equal(denied.code, 1, denied.all);
  assert.match(denied.stdout, /^allowed: no {2}reason: Permission denied or expired/);
  assert.equal(denied.stderr, '', 'a denial is an answer, not an error');

  // Grant (flags before and after positionals, both --flag forms).
  const g = await ag(['permission', 'grant', '--expires-in=7d', id, 'book_flight',
    '--scope', '{"max_spend": 500}', '--metadata', '{"ticket": "T-1"}'], asPerson);
  assert.equal(g.code, 0, g.all);
  const permissionId = g.stdout.match(/^permission_id: +([0-9a-f-]{36})$/m)?.[1];
  assert.ok(permissionId, g.all);
  assert.match(g.stdout, new RegExp(`^granted_by: +${email.replace(/[.+]/g, '\\$&')}$`, 'm'));
  assert.match(g.stdout, /^expires_at: +\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/m);
  assert.match(g.stdout, /^scope: +\{"max_spend":500\}$/m);
  assert.ok(!g.stdout.includes(session) && !g.stderr.includes(session), 'the session is not printed');

  // Allowed: exit 0, with --secret instead of the environment.
  const allowed = await ag(['permission', 'check', id, 'book_flight', '--secret', secret]);
  assert.equal(allowed.code, 0, allowed.all);
  assert.match(allowed.stdout, /^allowed: yes {2}granted_by: \S+ {2}expires_at: \S+Z/);
  assert.match(allowed.stdout, /scope: \{"max_spend":500\}/);
  assert.ok(!allowed.stdout.includes(secret), 'check never prints the secret');

  const allowedJson = await ag(['permission', 'check', id, 'book_flight', '--json'], asAgent);
  assert.equal(allowedJson.code, 0, allowedJson.all);
  const decision = JSON.parse(allowedJson.stdout);
  assert.equal(decision.allowed, true);
  assert.equal(decision.granted_by, email);
  assert.deepEqual(decision.scope, { max_spend: 500 });
  assert.equal(typeof decision.latency_ms, 'number');

  // With a context the scope is enforced (POST /permission/check).
  const within = await ag(['permission', 'check', id, 'book_flight', '--context', '{"spend": 300}'], asAgent);
  assert.equal(within.code, 0, within.all);
  assert.match(within.stdout, /^allowed: yes/);
  const over = await ag(['permission', 'check', id, 'book_flight', '--context={"spend": 700}', '--json'], asAgent);
  assert.equal(over.code, 1, over.all);
  const overBody = JSON.parse(over.stdout);
  assert.equal(overBody.allowed, false);
  assert.equal(overBody.constraint, 'max_spend');
  const overHuman = await ag(['permission', 'check', id, 'book_flight', '--context', '{"spend": 700}'], asAgent);
  assert.equal(overHuman.code, 1, overHuman.all);
  assert.match(overHuman.stdout, /^allowed: no {2}reason: .*max_spend.* {2}constraint: max_spend/);

  // Another action stays denied.
  const otherAction = await ag(['permission', 'check', id, 'cancel_flight'], asAgent);
  assert.equal(otherAction.code, 1, otherAction.all);

  // list: human table and --json.
  const list = await ag(['permission', 'list'], asPerson);
  assert.equal(list.code, 0, list.all);
  assert.match(list.stdout, /^PERMISSION_ID +AGENT_ID +ACTION +STATUS +EXPIRES_AT +SCOPE$/m);
  assert.match(list.stdout, new RegExp(`^${permissionId} +${id} +book_flight +active `, 'm'));
  const listJson = await ag(['permission', 'list', '--agent-id', id, '--json'], asPerson);
  assert.equal(listJson.code, 0, listJson.all);
  const listed = JSON.parse(listJson.stdout).permissions;
  assert.deepEqual(listed.map((p) => p.permission_id), [permissionId]);
  assert.equal(listed[0].status, 'active');
  assert.deepEqual(listed[0].metadata, { ticket: 'T-1' });

  // API errors from person commands.
  expectApiError(await ag(['permission', 'grant', id, 'book_flight', '--expires-in', '7 days'], asPerson),
    'invalid_expires_in');
  expectApiError(await ag(['permission', 'grant', 'ap_doesnotexist00', 'book_flight'], asPerson),
    'agent_not_found');
  const badSession = await ag(['permission', 'grant', id, 'book_flight', '--session', 'ses_not_a_session']);
  expectApiError(badSession, 'unauthorized');
  assert.ok(!badSession.stderr.includes('ses_not_a_session'), 'the session token is not echoed');

  // Revoke by agent and action; the very next check is denied.
  const rv = await ag(['permission', 'revoke', id, 'book_flight'], asPerson);
  assert.equal(rv.code, 0, rv.all);
  assert.match(rv.stdout, /^revoked: 1 grant\(s\) at \d{4}-/);
  assert.ok(rv.stdout.includes(permissionId), rv.all);
  const afterRevoke = await ag(['permission', 'check', id, 'book_flight'], asAgent);
  assert.equal(afterRevoke.code, 1, afterRevoke.all);
  assert.match(afterRevoke.stdout, /^allowed: no/);
  // Nothing left to revoke: API error.
  expectApiError(await ag(['permission', 'revoke', id, 'book_flight'], asPerson), 'permission_not_found');

  // Grant again, revoke by permission id, with --json.
  const g2 = await ag(['permission', 'grant', id, 'book_flight', '--json'], asPerson);
  assert.equal(g2.code, 0, g2.all);
  const second = JSON.parse(g2.stdout);
  assert.equal(second.expires_at, null);
  const humanNever = await ag(['permission', 'check', id, 'book_flight'], asAgent);
  assert.match(humanNever.stdout, /expires_at: never/);
  const rv2 = await ag(['permission', 'revoke', '--permission-id', second.permission_id, '--json'], asPerson);
  assert.equal(rv2.code, 0, rv2.all);
  const revoked = JSON.parse(rv2.stdout);
  assert.equal(revoked.revoked, true);
  assert.equal(revoked.count, 1);

  // list: active is empty, --all shows both revoked grants.
  const empty = await ag(['permission', 'list', '--agent-id', id], asPerson);
  assert.equal(empty.code, 0, empty.all);
  assert.equal(empty.stdout, 'no active permissions\n');
  const all = await ag(['permission', 'list', '--agent-id', id, '--all', '--json'], asPerson);
  assert.equal(all.code, 0, all.all);
  const everything = JSON.parse(all.stdout).permissions;
  assert.equal(everything.length, 2);
  assert.ok(everything.every((p) => p.status === 'revoked'));

  // agent show reflects the checks.
  const shown = await ag(['agent', 'show', id, '--json'], asAgent);
  assert.equal(shown.code, 0, shown.all);
  assert.notEqual(JSON.parse(shown.stdout).last_seen, null);
});

test('sign in from the terminal: magic-link, verify, whoami, logout', async () => {
  const email = uniqueEmail('terminal');
  const from = srv.logs().length;
  const ml = await ag(['auth', 'magic-link', email]);
  assert.equal(ml.code, 0, ml.all);
  assert.match(ml.stdout, /Check your email for a sign-in link\./);
  assert.match(ml.stdout, /agentgate auth verify/);
  const escaped = email.replace(/[.+]/g, '\\$&');
  const link = (await srv.waitForLog(new RegExp(`sign-in link for ${escaped}: (\\S+)`), { from }))[1];

  // verify prints an eval-able export line on stdout; the note goes to stderr.
  const v = await ag(['auth', 'verify', link]);
  assert.equal(v.code, 0, v.all);
  const session = v.stdout.match(/^export AGENTGATE_SESSION=([A-Za-z0-9_.-]+)\n$/)?.[1];
  assert.ok(session, v.all);
  assert.match(v.stderr, new RegExp(`Signed in as ${escaped}`));

  const who = await ag(['auth', 'whoami'], { env: { AGENTGATE_SESSION: session } });
  assert.equal(who.code, 0, who.all);
  assert.match(who.stdout, new RegExp(`^email: +${escaped}$`, 'm'));
  assert.match(who.stdout, /^user_id: +usr_/m);
  const whoJson = await ag(['auth', 'whoami', '--json', '--session', session]);
  assert.equal(whoJson.code, 0, whoJson.all);
  assert.equal(JSON.parse(whoJson.stdout).email, email);

  // The session works for grants.
  const { agent_id: id } = await registerAgent(srv.url);
  const g = await ag(['permission', 'grant', id, 'read_mail', '--session', session]);
  assert.equal(g.code, 0, g.all);

  // A link works once.
  expectApiError(await ag(['auth', 'verify', link]), 'invalid_token');

  // A bare token works as well as the link; --json prints the session as JSON.
  const from2 = srv.logs().length;
  assert.equal((await ag(['auth', 'magic-link', email, '--json'])).code, 0);
  const link2 = (await srv.waitForLog(new RegExp(`sign-in link for ${escaped}: (\\S+)`), { from: from2 }))[1];
  const token = new URL(link2).searchParams.get('token');
  const vj = await ag(['auth', 'verify', token, '--json']);
  assert.equal(vj.code, 0, vj.all);
  const verified = JSON.parse(vj.stdout);
  assert.match(verified.session, /\S{16,}/);
  assert.equal(verified.email, email);

  // logout ends the session on the server.
  const out = await ag(['auth', 'logout', '--session', verified.session]);
  assert.equal(out.code, 0, out.all);
  assert.match(out.stdout, /signed out/);
  expectApiError(await ag(['auth', 'whoami', '--session', verified.session]), 'unauthorized');
  // The first session is unaffected.
  assert.equal((await ag(['auth', 'whoami', '--session', session])).code, 0);

  expectApiError(await ag(['auth', 'magic-link', 'not-an-email']), 'invalid_email');
});

test('an unreachable or silent server: exit 1 with a clear message naming the URL', async () => {
  const port = await deadPort();
  const url = `http://127.0.0.1:${port}`;
  for (const args of [['health'], ['stats', '--json'], ['agent', 'show', 'ap_x', '--secret', 'sk_ap_x'],
    ['auth', 'magic-link', 'a@example.com']]) {
    const r = await cli(['--url', url, ...args]);
    assert.equal(r.code, 1, r.all);
    assert.match(r.stderr, new RegExp(`cannot reach agentgate at ${url.replace(/[.]/g, '\\.')}`), r.all);
    assert.equal(r.stdout, '', r.all);
  }
  const viaEnv = await cli(['health'], { env: { AGENTGATE_URL: url } });
  assert.equal(viaEnv.code, 1, viaEnv.all);
  assert.match(viaEnv.stderr, /cannot reach agentgate at/);

  // A server that accepts the connection but never answers: the deadline applies.
  const sockets = new Set();
  const silent = net.createServer((s) => { sockets.add(s); s.on('error', () => {}); });
  await new Promise((resolve) => silent.listen(0, '127.0.0.1', resolve));
  try {
    const started = Date.now();
    const r = await cli(['health', '--url', `http://127.0.0.1:${silent.address().port}`, '--timeout', '0.5']);
    const elapsed = Date.now() - started;
    assert.equal(r.code, 1, r.all);
    assert.match(r.stderr, /cannot reach agentgate at .*no response within 500 ms/, r.all);
    assert.ok(elapsed < 5000, `gave up after ${elapsed} ms`);
  } finally {
    for (const s of sockets) s.destroy();
    await new Promise((resolve) => silent.close(resolve));
  }
});

test('a server that is not agentgate: exit 1, not a crash', async () => {
  const http = await import('node:http');
  const other = http.createServer((req, res) => {
    if (req.url.startsWith('/health')) {
      res.writeHead(200, { 'Content-Type': 'text/html' });
      res.end('<html>hello</html>');
    } else {
      res.writeHead(502, { 'Content-Type': 'text/plain' });
      res.end('bad gateway');
    }
  });
  await new Promise((resolve) => other.listen(0, '127.0.0.1', resolve));
  try {
    const url = `http://127.0.0.1:${other.address().port}`;
    const h = await cli(['health', '--url', url]);
    assert.equal(h.code, 1, h.all);
    assert.match(h.stderr, /not a JSON object/);
    const s = await cli(['stats', '--url', url]);
    assert.equal(s.code, 1, s.all);
    assert.match(s.stderr, /unexpected HTTP 502 response to GET \/stats/);
  } finally {
    await new Promise((resolve) => other.close(resolve));
  }
});

test('request create|list|get|approve|decline: an agent asks, the person decides, both read the outcome', async () => {
  const { email, session } = await signedInSession('cli-req');
  const agent = await registerAgent(srv.url);
  const asPerson = { env: { AGENTGATE_SESSION: session } };
  const asAgent = { env: { AGENTGATE_AGENT_SECRET: agent.secret } };
  for (const [cmd, flags] of Object.entries({
    'request create': ['--agent', '--action', '--reason', '--email', '--scope', '--expires-in', '--secret', 'AGENTGATE_AGENT_SECRET'],
    'request list': ['--status', '--agent', '--limit', '--cursor', '--all-pages', '--secret', '--session'],
    'request get': ['REQUEST_ID', '--secret', '--session'],
    'request approve': ['REQUEST_ID', '--scope', '--expires-in', '--metadata', '--session'],
    'request decline': ['REQUEST_ID', '--reason', '--session'],
  })) {
    const r = await cli([...cmd.split(' '), '--help']);
    assert.equal(r.code, 0, r.all);
    for (const f of [...flags, 'Example', 'Exit codes']) assert.ok(r.stdout.includes(f), `help of '${cmd}' mentions ${f}`);
  }
  expectUsage(await ag(['request', 'create', '--agent', agent.agent_id, '--action', 'a']), /--reason/);
  expectUsage(await ag(['request', 'create', '--agent', agent.agent_id, '--action', 'a', '--reason', 'r']), /secret/);

  const created = await ag(['request', 'create', '--agent', agent.agent_id, '--action', 'invoices:pay',
    '--reason', 'Pay the March invoice', '--email', email, '--scope', '{"max_amount": 500}', '--expires-in', '7d', '--json'], asAgent);
  assert.equal(created.code, 0, created.all);
  const id = JSON.parse(created.stdout).request_id;
  assert.match(id, /^preq_[0-9a-f]{24}$/);
  const other = await ag(['request', 'create', '--agent', agent.agent_id, '--action', 'mail:send',
    '--reason', 'Send the newsletter', '--email', email], asAgent);
  assert.equal(other.code, 0, other.all);
  assert.match(other.stdout, /status:\s+pending/);
  const otherId = /request_id:\s+(preq_[0-9a-f]{24})/.exec(other.stdout)[1];

  const listed = await ag(['request', 'list', '--status', 'pending'], asPerson);
  assert.equal(listed.code, 0, listed.all);
  assert.match(listed.stdout, /REQUEST_ID\s+AGENT_ID\s+ACTION\s+STATUS/);
  assert.ok(listed.stdout.includes(id) && listed.stdout.includes(otherId), listed.all);
  const agentList = await ag(['request', 'list', '--json'], asAgent);
  assert.equal(agentList.code, 0, agentList.all);
  assert.ok(JSON.parse(agentList.stdout).data.every((r) => r.agent_id === agent.agent_id));

  const approved = await ag(['request', 'approve', id, '--scope', '{"max_amount": 200}', '--expires-in', '24h'], asPerson);
  assert.equal(approved.code, 0, approved.all);
  assert.match(approved.stdout, /status:\s+approved/);
  assert.match(approved.stdout, /granted_scope:\s+\{"max_amount":200\}/);
  const check = await ag(['permission', 'check', agent.agent_id, 'invoices:pay', '--context', '{"amount": 150}'], asAgent);
  assert.equal(check.code, 0, check.all);
  expectApiError(await ag(['request', 'approve', id], asPerson), 'permission_request_not_pending');

  const declined = await ag(['request', 'decline', otherId, '--reason', 'Not now'], asPerson);
  assert.equal(declined.code, 0, declined.all);
  assert.match(declined.stdout, /decline_reason:\s+Not now/);
  const polled = await ag(['request', 'get', otherId, '--json'], asAgent);
  assert.equal(polled.code, 0, polled.all);
  assert.equal(JSON.parse(polled.stdout).status, 'declined');
  const stranger = await signedInSession('cli-req-stranger');
  expectApiError(await ag(['request', 'get', id], { env: { AGENTGATE_SESSION: stranger.session } }), 'permission_request_not_found');
});

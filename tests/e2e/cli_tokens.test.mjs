// The command-line client with personal access tokens, against a real server: token create, list
// and revoke; a token as the credential of person commands (--token, AGENTGATE_TOKEN) and the
// order in which credentials are taken; login and logout with the private config file; a token
// lacking an ability; and the activity log.
//
// The CLI is the same binary as the server ($AGENTGATE_BIN, default ../../build/agentgate). Every
// run gets its own empty XDG_CONFIG_HOME, so the user's real saved login is never read or touched.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { chmodSync, existsSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import {
  BINARY, api, makeTempDir, registerAgent, signIn, startServer, uniqueEmail,
} from './lib/server.mjs';

let srv;
let session;
let email;

before(async () => {
  srv = await startServer({ args: ['--no-rate-limits'] });
  email = uniqueEmail('cli-tok');
  session = await signIn(srv.url, email);
});
after(async () => {
  if (srv) assert.equal(await srv.stop(), 0);
});

// Runs `agentgate ...args` with no AGENTGATE_* variables but those in `env`, a fresh empty config
// directory unless `env` names one, and `input` (if any) on stdin.
function cli(args, { env = {}, input, timeoutMs = 20000 } = {}) {
  const base = { ...process.env };
  for (const name of ['AGENTGATE_URL', 'AGENTGATE_AGENT_SECRET', 'AGENTGATE_SESSION',
    'AGENTGATE_TOKEN', 'AGENTGATE_CONFIG']) {
    delete base[name];
  }
  base.XDG_CONFIG_HOME = makeTempDir('agentgate-cli-cfg-');
  return new Promise((resolve, reject) => {
    const proc = spawn(BINARY, args, {
      env: { ...base, ...env },
      stdio: [input === undefined ? 'ignore' : 'pipe', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    proc.stdout.setEncoding('utf8');
    proc.stderr.setEncoding('utf8');
    proc.stdout.on('data', (d) => { stdout += d; });
    proc.stderr.on('data', (d) => { stderr += d; });
    if (input !== undefined) proc.stdin.end(input);
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

// `cli` against the test server, signed in with the session unless `env` says otherwise.
function ag(args, opts = {}) {
  return cli(['--url', srv.url, ...args], opts);
}
const withSession = () => ({ env: { AGENTGATE_SESSION: session } });

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

// Mints a token through the CLI (--json) and returns the server's answer.
async function mint(name, abilities, extra = []) {
  const r = await ag(['token', 'create', '--name', name, '--ability', abilities.join(','), ...extra,
    '--json'], withSession());
  assert.equal(r.code, 0, r.all);
  return JSON.parse(r.stdout);
}

const escape = (s) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

// ---------------------------------------------------------------------------------------------

test('help for the new commands names their flags, credentials, an example and exit codes', async () => {
  const top = await cli(['--help']);
  assert.equal(top.code, 0, top.all);
  for (const word of ['login', 'logout', 'token create', 'token list', 'token revoke', 'activity',
    'webhook create', 'webhook rotate-secret', 'AGENTGATE_TOKEN', 'AGENTGATE_CONFIG', '--token']) {
    assert.ok(top.stdout.includes(word), `top-level help mentions ${word}`);
  }
  assert.match(top.stdout, /--token, --session,\s+AGENTGATE_TOKEN, AGENTGATE_SESSION/);
  const commands = {
    'token create': ['--name', '--ability', '--expires-in', 'token:manage', '--token', '--session',
      'AGENTGATE_TOKEN', 'AGENTGATE_SESSION'],
    'token list': ['--all', '--token'],
    'token revoke': ['TOKEN_ID'],
    login: ['--token', 'stdin', '0600', 'AGENTGATE_CONFIG', 'chmod 600'],
    logout: ['--revoke', '--session', 'AGENTGATE_SESSION'],
    activity: ['--actor-kind', '--actor-id', '--agent-id', '--action', '--outcome', '--since',
      '--until', '--limit', '--cursor', '--all-pages', '--token'],
    'permission grant': ['--token', 'AGENTGATE_TOKEN', '--session'],
    'auth whoami': ['--token', '--session'],
  };
  for (const [cmd, words] of Object.entries(commands)) {
    for (const args of [[...cmd.split(' '), '--help'], ['help', ...cmd.split(' ')]]) {
      const r = await cli(args);
      assert.equal(r.code, 0, r.all);
      assert.match(r.stdout, new RegExp(`^Usage: agentgate ${cmd}`), r.all);
      for (const w of [...words, '--url', '--json', 'Example', 'Exit codes']) {
        assert.ok(r.stdout.includes(w), `help of '${cmd}' mentions ${w}:\n${r.stdout}`);
      }
    }
  }
  const group = await cli(['token', '--help']);
  assert.equal(group.code, 0, group.all);
  for (const sub of ['create', 'list', 'revoke']) assert.match(group.stdout, new RegExp(`token ${sub}`));
});

test('token create, list and revoke with a session', async () => {
  // Human output: the token once, with the warning; abilities from repeated flags.
  const created = await ag(['token', 'create', '--name', 'reader', '--ability', 'permission:view-any',
    '--ability', 'activity:view-any'], withSession());
  assert.equal(created.code, 0, created.all);
  const token = created.stdout.match(/^token: +(agt_[A-Za-z0-9_-]{43})$/m)?.[1];
  const id = created.stdout.match(/^id: +(tok_[0-9a-f]{16})$/m)?.[1];
  assert.ok(token && id, created.all);
  assert.match(created.stdout, /^name: +reader$/m);
  assert.match(created.stdout, /^abilities: +permission:view-any, activity:view-any$/m);
  assert.match(created.stdout, /^expires_at: +\d{4}-\d\d-\d\dT/m);
  assert.match(created.stdout, /shown this once only/);
  assert.ok(!created.stdout.includes(session) && !created.stderr.includes(session));

  // A comma-separated list, --expires-in never, --json: the server's answer on one line.
  const j = await ag(['token', 'create', '--name', 'writer', '--ability', 'permission:grant, permission:view-any',
    '--expires-in', 'never', '--json'], withSession());
  assert.equal(j.code, 0, j.all);
  assert.equal(j.stdout.trimEnd().split('\n').length, 1);
  const writer = JSON.parse(j.stdout);
  assert.deepEqual(writer.abilities, ['permission:view-any', 'permission:grant']);
  assert.equal(writer.expires_at, null);
  assert.match(writer.token, /^agt_/);

  // list: a table without any token's secret part.
  const list = await ag(['token', 'list'], withSession());
  assert.equal(list.code, 0, list.all);
  assert.match(list.stdout, /^ID +NAME +ABILITIES +STATUS +EXPIRES_AT +LAST_USED_AT$/m);
  assert.match(list.stdout, new RegExp(`^${id} +reader +permission:view-any,activity:view-any +active +\\S+Z +never$`, 'm'));
  assert.match(list.stdout, new RegExp(`^${writer.id} +writer +\\S+ +active +never +never$`, 'm'));
  assert.ok(!list.stdout.includes(token) && !list.stdout.includes(writer.token), list.all);
  const listJson = await ag(['token', 'list', '--json'], withSession());
  assert.equal(listJson.code, 0, listJson.all);
  const ids = JSON.parse(listJson.stdout).data.map((t) => t.id);
  assert.ok(ids.includes(id) && ids.includes(writer.id));

  // revoke: gone from the active list, shown as revoked with --all, refused on use.
  const revoked = await ag(['token', 'revoke', id], withSession());
  assert.equal(revoked.code, 0, revoked.all);
  assert.match(revoked.stdout, new RegExp(`^revoked: ${id} \\(reader\\) at \\d{4}-`));
  const after = await ag(['token', 'list', '--json'], withSession());
  assert.ok(!JSON.parse(after.stdout).data.some((t) => t.id === id));
  const all = await ag(['token', 'list', '--all'], withSession());
  assert.match(all.stdout, new RegExp(`^${id} +reader +\\S+ +revoked `, 'm'), all.all);
  const refused = await ag(['permission', 'list', '--token', token]);
  expectApiError(refused, 'unauthorized');
  assert.match(refused.stderr, /credential: --token/);
  assert.ok(!refused.stderr.includes(token), 'the token is not echoed');
  expectApiError(await ag(['token', 'revoke', 'tok_0000000000000000'], withSession()), 'not_found');

  // Usage errors and server-side validation.
  expectUsage(await ag(['token', 'create', '--name', 'x'], withSession()), /missing --ability/);
  expectUsage(await ag(['token', 'create', '--ability', 'permission:check'], withSession()), /missing --name/);
  expectUsage(await ag(['token', 'create', '--name', 'x', '--ability', 'permission:check,'], withSession()),
    /--ability .* has an empty item/);
  expectUsage(await ag(['token', 'revoke'], withSession()), /missing TOKEN_ID/);
  expectApiError(await ag(['token', 'create', '--name', 'x', '--ability', 'permission:fly'], withSession()),
    'invalid_field');
  expectApiError(await ag(['token', 'create', '--name', 'x', '--ability', 'permission:check',
    '--expires-in', 'soon'], withSession()), 'invalid_expires_in');
});

test('a token is a person credential; the order is --token, --session, AGENTGATE_TOKEN, AGENTGATE_SESSION', async () => {
  const reader = await mint('reader', ['permission:view-any']);
  const { agent_id: agentId } = await registerAgent(srv.url);
  const g = await ag(['permission', 'grant', agentId, 'cli_tok_read'], withSession());
  assert.equal(g.code, 0, g.all);

  // --token and AGENTGATE_TOKEN work for a listing.
  for (const opts of [{ args: ['--token', reader.token] }, { env: { AGENTGATE_TOKEN: reader.token } }]) {
    const r = await ag(['permission', 'list', '--agent-id', agentId, ...(opts.args ?? [])], { env: opts.env ?? {} });
    assert.equal(r.code, 0, r.all);
    assert.match(r.stdout, new RegExp(`^\\S+ +${agentId} +cli_tok_read +active `, 'm'), r.all);
    assert.ok(!r.stdout.includes(reader.token) && !r.stderr.includes(reader.token));
  }

  // whoami says which credential answered.
  const who = async (args, env = {}) => {
    const r = await ag(['auth', 'whoami', ...args], { env });
    assert.equal(r.code, 0, r.all);
    return r.stdout;
  };
  const asToken = await who(['--token', reader.token]);
  assert.match(asToken, new RegExp(`^email: +${escape(email)}$`, 'm'));
  assert.match(asToken, /^credential: +api_token$/m);
  assert.match(asToken, new RegExp(`^token_id: +${reader.id}$`, 'm'));
  assert.match(asToken, /^abilities: +permission:view-any$/m);
  assert.match(await who(['--session', session]), /^credential: +session$/m);
  // --token before --session; --session before AGENTGATE_TOKEN; AGENTGATE_TOKEN before AGENTGATE_SESSION.
  assert.match(await who(['--token', reader.token, '--session', 'ses_bogus']), /^credential: +api_token$/m);
  assert.match(await who(['--session', session], { AGENTGATE_TOKEN: 'agt_bogus' }), /^credential: +session$/m);
  assert.match(await who([], { AGENTGATE_TOKEN: reader.token, AGENTGATE_SESSION: 'ses_bogus' }),
    /^credential: +api_token$/m);
  assert.match(await who([], { AGENTGATE_SESSION: session }), /^credential: +session$/m);
  const whoJson = await ag(['auth', 'whoami', '--json', '--token', reader.token]);
  assert.equal(JSON.parse(whoJson.stdout).credential, 'api_token');

  // A token lacking the ability: exit 1, the code, and how to mint one that has it.
  const denied = await ag(['permission', 'grant', agentId, 'cli_tok_write', '--token', reader.token]);
  expectApiError(denied, 'token_missing_ability');
  assert.match(denied.stderr, /permission:grant/);
  assert.match(denied.stderr, /remediation: .*agentgate token create --name NAME --ability permission:grant/);
  expectApiError(await ag(['token', 'list', '--token', reader.token]), 'token_missing_ability');

  // An access token also stands in for an agent secret where the server allows it.
  const checker = await mint('checker', ['permission:check']);
  const check = await ag(['permission', 'check', agentId, 'cli_tok_read', '--secret', checker.token]);
  assert.equal(check.code, 0, check.all);
  assert.match(check.stdout, /^allowed: yes/);

  // No credential at all: a usage error that names every way to give one.
  const none = await ag(['permission', 'list']);
  expectUsage(none, /needs a session or an access token/);
  for (const way of ['--token', '--session', 'AGENTGATE_TOKEN', 'AGENTGATE_SESSION', 'agentgate login']) {
    assert.ok(none.stderr.includes(way), `the error names ${way}:\n${none.stderr}`);
  }
  expectUsage(await ag(['permission', 'list', '--token', session]), /does not start with agt_/);
  expectUsage(await ag(['permission', 'list'], { env: { AGENTGATE_TOKEN: 'sk_ap_123' } }),
    /AGENTGATE_TOKEN does not start with agt_/);
  // auth logout ends sessions only: a token is not taken there.
  expectUsage(await ag(['auth', 'logout', '--token', reader.token]), /unknown flag --token/);
});

test('login checks and saves the token privately; commands use it; logout forgets it', async () => {
  const full = await mint('laptop', ['*']);
  const xdg = makeTempDir('agentgate-cli-login-');
  const env = { XDG_CONFIG_HOME: xdg };
  const file = path.join(xdg, 'agentgate', 'config.json');

  const login = await cli(['login', '--url', srv.url, '--token', full.token], { env });
  assert.equal(login.code, 0, login.all);
  assert.match(login.stdout, new RegExp(`^Logged in to ${escape(srv.url)} as ${escape(email)}\\.$`, 'm'));
  assert.match(login.stdout, new RegExp(`^token: +${escape(full.token.slice(0, 10))}\\.\\.\\. \\(${full.id}\\)$`, 'm'));
  assert.match(login.stdout, new RegExp(`^saved_in: +${escape(file)}$`, 'm'));
  assert.ok(!login.stdout.includes(full.token) && !login.stderr.includes(full.token), 'never the whole token');
  assert.equal(statSync(file).mode & 0o777, 0o600, 'the file is private');
  assert.equal(statSync(path.dirname(file)).mode & 0o777, 0o700, 'so is its directory');
  assert.deepEqual(JSON.parse(readFileSync(file, 'utf8')), { url: srv.url, token: full.token });

  // No --url, no credential: both come from the saved login.
  const who = await cli(['auth', 'whoami'], { env });
  assert.equal(who.code, 0, who.all);
  assert.match(who.stdout, /^credential: +api_token$/m);
  assert.match(who.stdout, new RegExp(`^token_id: +${full.id}$`, 'm'));
  const list = await cli(['permission', 'list', '--json'], { env });
  assert.equal(list.code, 0, list.all);
  assert.ok(Array.isArray(JSON.parse(list.stdout).permissions));
  assert.equal((await cli(['health'], { env })).code, 0, 'the saved URL is the default server');
  // A credential on the command line or in the environment still comes first.
  const reader = await mint('reader', ['permission:view-any']);
  const first = await cli(['auth', 'whoami', '--token', reader.token], { env });
  assert.match(first.stdout, new RegExp(`^token_id: +${reader.id}$`, 'm'));
  assert.match((await cli(['auth', 'whoami'], { env: { ...env, AGENTGATE_SESSION: session } })).stdout,
    /^credential: +session$/m);
  // The saved token goes to the saved server only.
  const elsewhere = await cli(['permission', 'list', '--url', 'http://127.0.0.1:9'], { env });
  expectUsage(elsewhere, /saved in .* is for http:\/\/127\.0\.0\.1:\d+ and is sent nowhere else/);

  // A file others may read is refused, with the fix.
  chmodSync(file, 0o644);
  const open = await cli(['permission', 'list'], { env });
  assert.equal(open.code, 1, open.all);
  assert.match(open.stderr, /refusing to read the config file .*mode 0644.*chmod 600 /);
  assert.equal(open.stdout, '');
  chmodSync(file, 0o640);
  assert.equal((await cli(['auth', 'whoami'], { env })).code, 1);
  chmodSync(file, 0o600);
  assert.equal((await cli(['auth', 'whoami'], { env })).code, 0);

  // logout deletes the file; then nothing is signed in.
  const out = await cli(['logout'], { env });
  assert.equal(out.code, 0, out.all);
  assert.match(out.stdout, /Forgot the saved login/);
  assert.ok(!existsSync(file));
  expectUsage(await cli(['permission', 'list', '--url', srv.url], { env }), /needs a session or an access token/);
  const again = await cli(['logout'], { env });
  assert.equal(again.code, 0, again.all);
  assert.match(again.stdout, /No saved login/);
  // The token itself still works: logout only forgot it.
  assert.equal((await ag(['auth', 'whoami', '--token', full.token])).code, 0);

  // --token - reads it from stdin (out of the shell history); AGENTGATE_CONFIG picks the file.
  const custom = path.join(makeTempDir('agentgate-cli-custom-'), 'nested', 'dir', 'agentgate.json');
  const piped = await cli(['login', '--url', srv.url, '--token', '-'],
    { env: { AGENTGATE_CONFIG: custom }, input: `  ${full.token}\n` });
  assert.equal(piped.code, 0, piped.all);
  assert.equal(statSync(custom).mode & 0o777, 0o600);
  assert.equal(JSON.parse(readFileSync(custom, 'utf8')).token, full.token);
  const viaCustom = await cli(['auth', 'whoami'], { env: { AGENTGATE_CONFIG: custom } });
  assert.equal(viaCustom.code, 0, viaCustom.all);
  const jsonLogin = await cli(['login', '--url', srv.url, '--token', '-', '--json'],
    { env: { AGENTGATE_CONFIG: custom }, input: full.token });
  assert.equal(jsonLogin.code, 0, jsonLogin.all);
  assert.equal(JSON.parse(jsonLogin.stdout).token_id, full.id);

  // Refused: a token the server does not know (nothing saved), empty stdin, a session token.
  const badFile = path.join(makeTempDir('agentgate-cli-bad-'), 'config.json');
  const bad = await cli(['login', '--url', srv.url, '--token', `agt_${'x'.repeat(43)}`],
    { env: { AGENTGATE_CONFIG: badFile } });
  expectApiError(bad, 'unauthorized');
  assert.ok(!existsSync(badFile), 'nothing saved');
  expectUsage(await cli(['login', '--url', srv.url, '--token', '-'], { env: { AGENTGATE_CONFIG: badFile }, input: '' }),
    /standard input/);
  expectUsage(await cli(['login', '--url', srv.url, '--token', session], { env: { AGENTGATE_CONFIG: badFile } }),
    /personal access token agt_/);
  expectUsage(await cli(['login', '--url', srv.url]), /missing --token/);

  // logout --revoke revokes the saved token on its server before forgetting it.
  const revoking = await cli(['logout', '--revoke'], { env: { AGENTGATE_CONFIG: custom } });
  assert.equal(revoking.code, 0, revoking.all);
  assert.match(revoking.stdout, new RegExp(`Revoked the saved token ${full.id}`));
  assert.ok(!existsSync(custom));
  const tokens = await api(srv.url, 'GET', '/v1/tokens?status=all', { cookie: session });
  assert.equal(tokens.json.data.find((t) => t.id === full.id).status, 'revoked');

  // logout with a session also ends it, as auth logout does.
  const other = await signIn(srv.url, email);
  const ended = await cli(['logout', '--url', srv.url, '--session', other], { env });
  assert.equal(ended.code, 0, ended.all);
  assert.match(ended.stdout, /Signed out of the session/);
  expectApiError(await ag(['auth', 'whoami', '--session', other]), 'unauthorized');
});

test('activity shows the calls just made; filters, paging and --json', async () => {
  const { agent_id: agentId } = await registerAgent(srv.url);
  const grant = await ag(['permission', 'grant', agentId, 'cli_act_read', '--json'], withSession());
  assert.equal(grant.code, 0, grant.all);
  const permissionId = JSON.parse(grant.stdout).permission_id;
  const reader = await mint('act-reader', ['permission:view-any', 'activity:view-any']);
  const denied = await ag(['permission', 'revoke', agentId, 'cli_act_read', '--token', reader.token]);
  expectApiError(denied, 'token_missing_ability');
  const deniedRequest = denied.stderr.match(/request_id: (req_[A-Za-z0-9]+)/)[1];

  // The table: time, actor, action, target, outcome with status, request id.
  const table = await ag(['activity', '--agent-id', agentId], withSession());
  assert.equal(table.code, 0, table.all);
  assert.match(table.stdout, /^TIME +ACTOR +ACTION +TARGET +OUTCOME +REQUEST_ID$/m);
  assert.match(table.stdout, new RegExp(
    `^\\d{4}-\\d\\d-\\d\\dT\\S+Z +session:usr_[0-9a-f]+ +permission\\.grant +${permissionId} +success 201 +req_\\S+$`, 'm'),
  table.all);

  // Filters reach the server; --json prints its answer.
  const grants = await ag(['activity', '--action', 'permission.grant', '--agent-id', agentId, '--json'],
    withSession());
  assert.equal(grants.code, 0, grants.all);
  const page = JSON.parse(grants.stdout);
  assert.equal(page.data.length, 1);
  assert.equal(page.data[0].target, permissionId);
  assert.equal(page.data[0].user_agent, 'agentgate-cli/0.1.0');
  assert.equal(page.next_cursor, null);
  const errors = await ag(['activity', '--outcome', 'error', '--action', 'permission.revoke'], withSession());
  assert.equal(errors.code, 0, errors.all);
  assert.match(errors.stdout, new RegExp(`error 403 token_missing_ability +${deniedRequest}$`, 'm'), errors.all);
  const mine = await ag(['activity', '--actor-kind', 'api_token', '--actor-id', reader.id, '--json'], withSession());
  assert.equal(mine.code, 0, mine.all);
  assert.ok(JSON.parse(mine.stdout).data.every((e) => e.actor_id === reader.id));
  // With a token holding activity:view-any.
  const viaToken = await ag(['activity', '--agent-id', agentId, '--token', reader.token]);
  assert.equal(viaToken.code, 0, viaToken.all);
  assert.match(viaToken.stdout, /permission\.grant/);

  // Times: RFC 3339 or a duration back from now.
  const recent = await ag(['activity', '--agent-id', agentId, '--since', '1h', '--json'], withSession());
  assert.ok(JSON.parse(recent.stdout).data.length >= 1, recent.all);
  const future = await ag(['activity', '--agent-id', agentId, '--since', '2999-01-01T00:00:00Z'], withSession());
  assert.equal(future.code, 0, future.all);
  assert.equal(future.stdout, 'no activity\n');
  const past = await ag(['activity', '--until', '2001-01-01T00:00:00Z', '--json'], withSession());
  assert.deepEqual(JSON.parse(past.stdout).data, []);

  // Paging: --limit, the cursor hint, --cursor, --all-pages.
  const first = await ag(['activity', '--limit', '1'], withSession());
  assert.equal(first.code, 0, first.all);
  const cursor = first.stdout.match(/\(more: add --cursor (evt_\d+), or --all-pages/)?.[1];
  assert.ok(cursor, first.all);
  const firstRow = first.stdout.split('\n')[1];
  const second = await ag(['activity', '--limit', '1', '--cursor', cursor], withSession());
  assert.equal(second.code, 0, second.all);
  assert.notEqual(second.stdout.split('\n')[1], firstRow);
  // Five calls by one token make three pages of two.
  const pager = await mint('pager', ['permission:view-any']);
  for (let i = 0; i < 5; i++) {
    assert.equal((await ag(['permission', 'list', '--token', pager.token])).code, 0);
  }
  const byPager = ['activity', '--actor-id', pager.id, '--limit', '2', '--all-pages'];
  const pages = await ag([...byPager, '--json'], withSession());
  assert.equal(pages.code, 0, pages.all);
  const lines = pages.stdout.trimEnd().split('\n').map((l) => JSON.parse(l));
  assert.deepEqual(lines.map((p) => p.data.length), [2, 2, 1], 'one line per page');
  assert.ok(lines.slice(0, -1).every((p) => p.next_cursor));
  assert.equal(lines.at(-1).next_cursor, null);
  const ids = lines.flatMap((p) => p.data.map((e) => e.id));
  assert.equal(new Set(ids).size, 5, 'no event twice');
  assert.ok(lines.every((p) => p.data.every((e) => e.action === 'permission.list')));
  const human = await ag(byPager, withSession());
  assert.equal(human.code, 0, human.all);
  assert.equal(human.stdout.trimEnd().split('\n').length, 6, human.all);
  assert.ok(!human.stdout.includes('(more:'));

  // Bad input.
  expectUsage(await ag(['activity', '--limit', '0'], withSession()), /--limit must be a whole number from 1 to 500/);
  expectUsage(await ag(['activity', '--limit', '501'], withSession()), /--limit/);
  expectApiError(await ag(['activity', '--outcome', 'maybe'], withSession()), 'invalid_field');
  expectApiError(await ag(['activity', '--since', 'yesterday'], withSession()), 'invalid_field');
  const noAbility = await mint('no-activity', ['permission:view-any']);
  expectApiError(await ag(['activity', '--token', noAbility.token]), 'token_missing_ability');
});

test('agent list: owned and granted agents, the relation filters, paging and usage errors', async () => {
  const owned = await registerAgent(srv.url, { developer_email: email });
  const granted = await registerAgent(srv.url);
  const grant = await ag(['permission', 'grant', granted.agent_id, 'cli_list_read'], withSession());
  assert.equal(grant.code, 0, grant.all);

  const table = await ag(['agent', 'list'], withSession());
  assert.equal(table.code, 0, table.all);
  assert.match(table.stdout, /^AGENT_ID +NAME +RELATION +STATUS +LAST_SEEN +ACTIVE_GRANTS$/m);
  assert.match(table.stdout, new RegExp(`^${granted.agent_id} +e2e-agent-\\d+ +granted +active +never +1$`, 'm'), table.all);
  assert.match(table.stdout, new RegExp(`^${owned.agent_id} +e2e-agent-\\d+ +owned +active +never +0$`, 'm'), table.all);

  const onlyOwned = await ag(['agent', 'list', '--owned', '--json'], withSession());
  assert.equal(onlyOwned.code, 0, onlyOwned.all);
  const ownedIds = JSON.parse(onlyOwned.stdout).data.map((a) => a.agent_id);
  assert.ok(ownedIds.includes(owned.agent_id) && !ownedIds.includes(granted.agent_id), onlyOwned.all);

  const paged = await ag(['agent', 'list', '--limit', '1', '--all-pages', '--json'], withSession());
  assert.equal(paged.code, 0, paged.all);
  const pages = paged.stdout.trimEnd().split('\n').map((l) => JSON.parse(l));
  assert.ok(pages.length >= 2 && pages.every((p) => p.data.length === 1), paged.all);
  const first = await ag(['agent', 'list', '--limit', '1'], withSession());
  assert.match(first.stdout, /\(more: add --cursor \S+, or --all-pages/, first.all);

  expectUsage(await ag(['agent', 'list', '--owned', '--granted'], withSession()), /exclude each other/);
  expectUsage(await ag(['agent', 'list', '--limit', '101'], withSession()), /1 to 100/);
  const viewerless = await mint('no-agent-view', ['permission:check']);
  expectApiError(await ag(['agent', 'list', '--token', viewerless.token]), 'token_missing_ability');
});

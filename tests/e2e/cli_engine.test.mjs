// The command-line client's integration engine commands against a real server: credentials
// (plain, --json, --shell read back by sh), tenant and manager tokens minted by `agentgate token`
// and verified with npm jsonwebtoken, custom connectors, integrations and their OAuth parameters
// (the client secret never printed back), `connect` (READY at once with --credentials; the link
// with --non-interactive; waiting until the connect form is filled in; CONFIGURATION_ERROR; a
// timeout), connections (list, get, delete, restore, refresh, tenant isolation), `act` through an
// API-key connection to a small local app, and usage errors (exit 2).
//
// The CLI is the same binary as the server ($AGENTGATE_BIN, default ../../build/agentgate). Every
// run gets its own empty XDG_CONFIG_HOME, so the user's real saved login is never read or touched.
// The --json answers are checked against docs/openapi.json as lib/server.mjs's api() checks
// responses (AGENTGATE_E2E_NO_OPENAPI=1 switches that off).

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import jwt from 'jsonwebtoken';
import { BINARY, makeTempDir, signIn, startServer, uniqueEmail } from './lib/server.mjs';
import { validateResponse } from './lib/openapi.mjs';

let srv;
let session;
let vendor;
let creds;  // GET /v1/credentials, as `agentgate credentials --json` printed it

// A vendor API that records what it receives: JSON answers, a 404 under /missing, text under /text.
async function startVendor() {
  const seen = [];
  const server = http.createServer((req, res) => {
    let body = '';
    req.on('data', (c) => { body += c; });
    req.on('end', () => {
      seen.push({ method: req.method, url: req.url, headers: req.headers, body });
      if (req.url.startsWith('/v1/text')) {
        res.writeHead(200, { 'Content-Type': 'text/plain' });
        res.end('plain words\n');
        return;
      }
      const missing = req.url.includes('/missing');
      res.writeHead(missing ? 404 : 200, { 'Content-Type': 'application/json' });
      res.end(JSON.stringify({ ok: !missing, path: req.url, method: req.method }));
    });
  });
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${server.address().port}`,
    seen,
    close: () => { server.closeAllConnections(); return new Promise((r) => server.close(r)); },
  };
}

before(async () => {
  srv = await startServer({ args: ['--allow-private-egress', '--no-rate-limits'] });
  session = await signIn(srv.url, uniqueEmail('cli-engine-admin'));  // the first user: an admin
  vendor = await startVendor();
});
after(async () => {
  await vendor?.close();
  if (srv) assert.equal(await srv.stop(), 0);
});

// Spawns `agentgate ...args` with no AGENTGATE_* variables but those in `env`, a fresh empty
// config directory, and `input` (if any) on stdin. Resolves to the process and a promise of its
// outcome; `cli` waits for it.
function spawnCli(args, { env = {}, input, timeoutMs = 30000 } = {}) {
  const base = { ...process.env };
  for (const name of ['AGENTGATE_URL', 'AGENTGATE_AGENT_SECRET', 'AGENTGATE_SESSION',
    'AGENTGATE_TOKEN', 'AGENTGATE_CONFIG']) {
    delete base[name];
  }
  base.XDG_CONFIG_HOME = makeTempDir('agentgate-cli-cfg-');
  const proc = spawn(BINARY, args, {
    env: { ...base, ...env },
    stdio: [input === undefined ? 'ignore' : 'pipe', 'pipe', 'pipe'],
  });
  const state = { stdout: '', stderr: '' };
  proc.stdout.setEncoding('utf8');
  proc.stderr.setEncoding('utf8');
  proc.stdout.on('data', (d) => { state.stdout += d; });
  proc.stderr.on('data', (d) => { state.stderr += d; });
  if (input !== undefined) proc.stdin.end(input);
  const done = new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      proc.kill('SIGKILL');
      reject(new Error(`agentgate ${args.join(' ')} did not finish in ${timeoutMs} ms`));
    }, timeoutMs);
    proc.on('error', (err) => { clearTimeout(timer); reject(err); });
    proc.on('close', (code) => {
      clearTimeout(timer);
      const { stdout, stderr } = state;
      resolve({ code, stdout, stderr, all: `agentgate ${args.join(' ')}\nexit ${code}\n--- stdout ---\n${stdout}--- stderr ---\n${stderr}` });
    });
  });
  return { proc, state, done };
}

const cli = (args, opts) => spawnCli(args, opts).done;
// `cli` against the test server.
const ag = (args, opts = {}) => cli(['--url', srv.url, ...args], opts);
const asSession = () => ({ env: { AGENTGATE_SESSION: session } });
const asToken = (token) => ({ env: { AGENTGATE_TOKEN: token } });

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

// The one JSON line a --json command printed, checked against the spec's answer for the call.
function jsonOf(r, method, pathAndQuery, status = 200) {
  assert.equal(r.code, 0, r.all);
  assert.equal(r.stdout.trimEnd().split('\n').length, 1, `one line of JSON:\n${r.all}`);
  const body = JSON.parse(r.stdout);
  if (!process.env.AGENTGATE_E2E_NO_OPENAPI) {
    validateResponse(method, pathAndQuery, status, 'application/json', body);
  }
  return body;
}

// Mints a token with `agentgate token ...` (as the admin unless opts say otherwise).
async function mint(args, opts = asSession()) {
  const r = await ag(['token', ...args], opts);
  assert.equal(r.code, 0, r.all);
  const lines = r.stdout.split('\n');
  assert.equal(lines.length, 2, `the token alone on one line:\n${r.all}`);
  return lines[0];
}

const verify = (token) => jwt.verify(token, creds.workspaceSecret, { algorithms: ['HS256'] });
const escape = (s) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

const ECHO = 'cli-echo';          // an API-key connector for the vendor above
const OAUTH = 'cli-oauth';        // an OAuth connector (its integration gets a client)
const BARE_OAUTH = 'cli-oauth-bare';  // an OAuth connector whose integration has no client
const CLIENT_SECRET = 'cli-client-secret-0123456789';
const API_KEY = 'key-cli-secret-0123456789';

// ---------------------------------------------------------------------------------------------

test('help for the integration commands: flags, credentials, example and exit codes', async () => {
  const top = await cli(['--help']);
  assert.equal(top.code, 0, top.all);
  for (const cmd of ['credentials', 'credentials rotate', 'keys rotate', 'connector list',
    'connector create', 'integration list', 'integration create', 'integration get',
    'integration archive', 'integration restore', 'integration update', 'integration parameters',
    'connection list', 'connection get', 'connection delete', 'connection restore',
    'connection refresh', 'connection update', 'connect',
    'act', 'action list', 'action create', 'action get', 'action update', 'action replace',
    'action delete', 'action restore', 'action run', 'action-run-log list', 'action-run-log get',
    'export', 'import', 'token create']) {
    assert.match(top.stdout, new RegExp(`^  ${cmd} `, 'm'), `top-level help lists ${cmd}`);
  }
  assert.match(top.stdout, /^  token {2,}mint a tenant or manager token/m);
  const commands = {
    credentials: ['--shell', 'AGENTGATE_WORKSPACE_SECRET', 'workspace:manage'],
    'credentials rotate': ['stop working'],
    token: ['--tenantKey', '--manager', '--expiresIn', '--name', 'TOKEN=$(agentgate token'],
    'keys rotate': ['previousKid'],
    'connector list': ['--search'],
    'connector create': ['--file', '--data'],
    'integration list': ['--search', '--connectors', '--externalApps', '--includeArchived',
      '--limit', '--cursor', '--all-pages'],
    'integration create': ['--connectorKey', '--key', '--name', '--clientId', '--clientSecret',
      '--scopes'],
    'integration get': ['INTEGRATION'],
    'integration update': ['--name', '--key'],
    'connection update': ['CONNECTION', '--name'],
    'integration parameters': ['--clientId', '--clientSecret', '--scopes', 'never shown'],
    'connection list': ['--integrationKey', '--search', '--includeArchived', '--limit', '--cursor'],
    'connection get': ['CONNECTION', '--includeArchived'],
    'connection delete': ['CONNECTION'],
    connect: ['--integrationKey', '--integrationId', '--connectorKey', '--connectorId',
      '--connectionId', '--connectionKey', '--credentials', '--fields', '--non-interactive',
      '--timeout', 'default 300', 'Open this link to connect'],
    act: ['--key', '--id', '--api', '--code', '--connectionKey', '--connectionId', '--integrationKey',
      '--integrationId', '--input', '--meta', '--secret', 'AGENTGATE_AGENT_SECRET', 'actionRunId'],
    'action list': ['--connectionKey', '--integrationKey', '--externalAppId', '--intent',
      '--includeArchived', '--limit', '--cursor', '--all-pages'],
    'action create': ['--config', '--key', '--name', '--description', '--type', '--inputSchema',
      '--outputSchema', '--integrationKey', '--integrationId', '--connectionId', '--connectionKey'],
    'action get': ['SELECTOR', '--integrationKey', '--connectionId'],
    'action update': ['SELECTOR', '--data'],
    'action replace': ['SELECTOR', '--data'],
    'action delete': ['SELECTOR'],
    'action restore': ['ACTION_ID'],
    'action run': ['SELECTOR', '--input', '--connectionKey', '--secret', 'AGENTGATE_AGENT_SECRET'],
    'action-run-log list': ['--actionId', '--connectionId', '--agentId', '--status', '--limit'],
    'action-run-log get': ['RUN_ID', '--details', '[REDACTED]'],
    export: ['--out'],
    import: ['FILE'],
  };
  for (const [cmd, words] of Object.entries(commands)) {
    for (const args of [[...cmd.split(' '), '--help'], ['help', ...cmd.split(' ')]]) {
      const r = await cli(args);
      assert.equal(r.code, 0, r.all);
      assert.match(r.stdout, new RegExp(`^Usage: agentgate ${cmd} `), r.all);
      for (const w of [...words, '--token', '--session', 'AGENTGATE_TOKEN', 'tenant or manager token',
        '--url', '--json', 'Example', 'Exit codes']) {
        assert.ok(r.stdout.includes(w), `help of '${cmd}' mentions ${w}:\n${r.stdout}`);
      }
    }
  }
  // `token --help` is the mint command's help, then the group's commands.
  const group = await cli(['token', '--help']);
  assert.equal(group.code, 0, group.all);
  for (const sub of ['create', 'list', 'revoke']) assert.match(group.stdout, new RegExp(`^  token ${sub} `, 'm'));
  assert.match(group.stdout, /^  token {2,}mint/m);
  const groups = await cli(['connection', '--help']);
  assert.equal(groups.code, 0, groups.all);
  for (const sub of ['list', 'get', 'delete', 'restore', 'refresh']) {
    assert.match(groups.stdout, new RegExp(`^  connection ${sub} `, 'm'));
  }
});

test('credentials: the four fields, --json, and --shell lines that sh reads back', async () => {
  const plain = await ag(['credentials'], asSession());
  assert.equal(plain.code, 0, plain.all);
  assert.match(plain.stdout, new RegExp(`^apiUri: +${escape(srv.url)}$`, 'm'));
  assert.match(plain.stdout, /^workspaceKey: +[0-9a-f-]{36}$/m);
  assert.match(plain.stdout, /^workspaceSecret: +wss_[A-Za-z0-9_-]{43}$/m);
  assert.match(plain.stdout, /^tenantKey: +usr_[0-9a-f]+$/m);

  creds = jsonOf(await ag(['credentials', '--json'], asSession()), 'GET', '/v1/credentials');
  assert.equal(creds.apiUri, srv.url);
  assert.ok(plain.stdout.includes(creds.workspaceSecret));
  assert.ok(plain.stdout.includes(creds.workspaceKey));

  const shell = await ag(['credentials', '--shell'], asSession());
  assert.equal(shell.code, 0, shell.all);
  const lines = shell.stdout.trimEnd().split('\n');
  assert.equal(lines.length, 4, shell.all);
  for (const line of lines) assert.match(line, /^export AGENTGATE_[A-Z_]+='[^']*'$/);
  const readBack = execFileSync('sh', ['-c',
    'eval "$1"; printf "%s\\n" "$AGENTGATE_API_URI" "$AGENTGATE_WORKSPACE_KEY" "$AGENTGATE_WORKSPACE_SECRET" "$AGENTGATE_TENANT_KEY"',
    'sh', shell.stdout], { encoding: 'utf8' });
  assert.deepEqual(readBack.trimEnd().split('\n'),
    [creds.apiUri, creds.workspaceKey, creds.workspaceSecret, creds.tenantKey]);

  expectUsage(await ag(['credentials', '--shell', '--json'], asSession()), /--shell or --json, not both/);
  expectUsage(await ag(['credentials', 'extra'], asSession()), /unknown command 'agentgate credentials extra'|unexpected argument/);
  expectUsage(await ag(['credentials']), /needs a session or an access token/);
  // Tenants may not read the workspace secret.
  const tenant = await mint(['--tenantKey', 'cli-nosecret']);
  expectApiError(await ag(['credentials'], asToken(tenant)), 'forbidden');
});

test('token mints tenant and manager tokens that jsonwebtoken verifies; token create still works', async () => {
  const t = await mint(['--tenantKey', 'cli-u1']);
  const claims = verify(t);
  assert.equal(claims.tenantKey, 'cli-u1');
  assert.equal(claims.workspaceKey, creds.workspaceKey);
  assert.equal(claims.isAdmin, undefined);
  assert.equal(claims.exp - claims.iat, 3600, 'an hour by default');

  const short = verify(await mint(['--tenantKey', 'cli-u1', '--expiresIn', '5m']));
  assert.equal(short.exp - short.iat, 300);
  const named = verify(await mint(['--tenantKey', 'cli-u2', '--name', 'Acme Inc']));
  assert.equal(named.name, 'Acme Inc');
  const manager = verify(await mint(['--manager']));
  assert.equal(manager.isAdmin, true);

  const j = jsonOf(await ag(['token', '--tenantKey', 'cli-u1', '--expiresIn', '90', '--json'], asSession()),
    'POST', '/v1/credentials/token');
  assert.equal(j.tenantKey, 'cli-u1');
  assert.equal(j.manager, false);
  const jc = verify(j.token);
  assert.equal(jc.exp - jc.iat, 90);
  assert.equal(new Date(j.expiresAt).getTime(), jc.exp * 1000);

  // A tenant token in AGENTGATE_TOKEN (or --token) mints for its own tenant, not for another.
  const self = verify(await mint([], asToken(t)));
  assert.equal(self.tenantKey, 'cli-u1');
  assert.equal(verify(await mint(['--token', t], {})).tenantKey, 'cli-u1');
  const other = await ag(['token', '--tenantKey', 'cli-someone-else'], asToken(t));
  expectApiError(other, 'forbidden');
  assert.ok(!other.stderr.includes(t), 'the token is not echoed');
  expectApiError(await ag(['token', '--manager'], asToken(t)), 'forbidden');
  expectApiError(await ag(['token', '--tenantKey', 'cli-u1', '--expiresIn', '3d'], asSession()),
    'invalid_field');

  // Not a token at all; a JWT is still no credential for the person commands.
  expectUsage(await ag(['token', '--token', 'not-a-token']), /neither an access token agt_\.\.\. nor a tenant or manager token/);
  expectUsage(await ag(['permission', 'list'], asToken(t)), /does not start with agt_/);
  expectUsage(await ag(['token', '--tenantKey']), /--tenantKey needs a value/);
  expectUsage(await ag(['token', '--manager=yes'], asSession()), /--manager takes no value/);
  expectUsage(await ag(['token', '--ability', 'x'], asSession()), /unknown flag --ability for 'agentgate token'/);
  const unknown = await ag(['token', 'mint'], asSession());
  assert.equal(unknown.code, 2, unknown.all);
  assert.match(unknown.stderr, /unknown command 'agentgate token mint'/);

  // The access token commands are unchanged.
  const created = await ag(['token', 'create', '--name', 'cli-engine', '--ability', 'connection:manage',
    '--json'], asSession());
  assert.equal(created.code, 0, created.all);
  const access = JSON.parse(created.stdout);
  assert.match(access.token, /^agt_/);
  const list = await ag(['token', 'list'], asSession());
  assert.equal(list.code, 0, list.all);
  assert.match(list.stdout, new RegExp(`^${access.id} +cli-engine +connection:manage +active `, 'm'));
  // An access token with connection:manage is a credential here too (its own tenant).
  const viaAccess = verify(await mint([], asToken(access.token)));
  assert.equal(viaAccess.tenantKey, creds.tenantKey);
  const revoked = await ag(['token', 'revoke', access.id], asSession());
  assert.equal(revoked.code, 0, revoked.all);
});

test('connector create (--file, --data) and list, with a manager token', async () => {
  const manager = await mint(['--manager']);
  const dir = makeTempDir('agentgate-cli-connector-');
  const file = path.join(dir, 'echo.json');
  writeFileSync(file, JSON.stringify({
    key: ECHO, name: 'CLI echo vendor', baseUrl: `${vendor.url}/v1`,
    auth: { type: 'api_key', header: 'X-Api-Key', template: '{apiKey}' },
  }));
  const made = await ag(['connector', 'create', '--file', file], asToken(manager));
  assert.equal(made.code, 0, made.all);
  assert.match(made.stdout, /^id: +cnr_[0-9a-f]+$/m);
  assert.match(made.stdout, new RegExp(`^key: +${ECHO}$`, 'm'));
  assert.match(made.stdout, /^authType: +api_key$/m);
  assert.match(made.stdout, /^custom: +yes$/m);

  const oauth = (key) => JSON.stringify({
    key, name: `CLI ${key}`, baseUrl: `${vendor.url}/v1`,
    auth: { type: 'oauth2', authorizeUrl: `${vendor.url}/authorize`, tokenUrl: `${vendor.url}/token`,
      scopes: ['read'], pkce: true },
  });
  const viaData = jsonOf(await ag(['connector', 'create', '--data', oauth(OAUTH), '--json'],
    asToken(manager)), 'POST', '/connectors', 201);
  assert.equal(viaData.key, OAUTH);
  assert.equal(viaData.auth.type, 'oauth2');
  // From stdin, and as the admin's session.
  const viaStdin = await ag(['connector', 'create', '--file', '-'], { ...asSession(), input: oauth(BARE_OAUTH) });
  assert.equal(viaStdin.code, 0, viaStdin.all);

  const list = await ag(['connector', 'list', '--search', 'cli-'], asToken(manager));
  assert.equal(list.code, 0, list.all);
  assert.match(list.stdout, /^KEY +NAME +AUTH +CUSTOM +ID$/m);
  assert.match(list.stdout, new RegExp(`^${ECHO} +CLI echo vendor +api_key +yes +cnr_[0-9a-f]+$`, 'm'));
  assert.match(list.stdout, new RegExp(`^${OAUTH} +CLI ${OAUTH} +oauth2 +yes +cnr_`, 'm'));
  const all = jsonOf(await ag(['connector', 'list', '--json'], asSession()), 'GET', '/connectors');
  const keys = all.items.map((c) => c.key);
  for (const k of [ECHO, OAUTH, BARE_OAUTH]) assert.ok(keys.includes(k), k);
  assert.ok(all.items.some((c) => c.custom === false), 'the shipped connectors are listed too');
  const none = await ag(['connector', 'list', '--search', 'no-such-connector-anywhere'], asSession());
  assert.equal(none.stdout, 'no connectors\n');

  expectApiError(await ag(['connector', 'create', '--file', file], asToken(manager)), 'conflict');
  const tenant = await mint(['--tenantKey', 'cli-u1']);
  expectApiError(await ag(['connector', 'create', '--data', oauth('cli-by-tenant')], asToken(tenant)),
    'forbidden');
  expectApiError(await ag(['connector', 'create', '--data', '{"key": "cli-x"}'], asToken(manager)),
    'invalid_field');
  expectUsage(await ag(['connector', 'create', '--data', '{"key": '], asToken(manager)),
    /--data must hold a connector definition, a JSON object/);
  expectUsage(await ag(['connector', 'create', '--data', '[1, 2]'], asToken(manager)), /a JSON object/);
  expectUsage(await ag(['connector', 'create'], asToken(manager)), /give --file FILE or --data JSON/);
  expectUsage(await ag(['connector', 'create', '--file', file, '--data', '{}'], asToken(manager)),
    /give --file FILE or --data JSON/);
  expectUsage(await ag(['connector', 'create', '--file', path.join(dir, 'missing.json')], asToken(manager)),
    /cannot read --file/);
  const bare = await ag(['connector'], asSession());
  assert.equal(bare.code, 2, bare.all);
  assert.match(bare.stderr, /missing command after 'connector'/);
});

test('integration create, list, get, parameters (the client secret never printed), archive and restore', async () => {
  const made = await ag(['integration', 'create', '--connectorKey', OAUTH, '--clientId', 'cid-123',
    '--clientSecret', '-', '--scopes', 'read,write'], { ...asSession(), input: `${CLIENT_SECRET}\n` });
  assert.equal(made.code, 0, made.all);
  assert.match(made.stdout, /^id: +int_[0-9a-f]+$/m);
  assert.match(made.stdout, new RegExp(`^key: +${OAUTH}$`, 'm'));
  assert.match(made.stdout, new RegExp(`^connectorKey: +${OAUTH}$`, 'm'));
  assert.match(made.stdout, /^authType: +oauth2$/m);
  assert.match(made.stdout, /^status: +active$/m);
  assert.match(made.stdout, /^clientId: +cid-123$/m);
  assert.match(made.stdout, /^clientSecret: +set \(never shown\)$/m);
  assert.match(made.stdout, /^scopes: +read, write$/m);
  const id = made.stdout.match(/^id: +(int_[0-9a-f]+)$/m)[1];
  const bare = await ag(['integration', 'create', '--connectorKey', BARE_OAUTH, '--key', 'cli-bare',
    '--name', 'Bare OAuth', '--json'], asSession());
  const bareJson = jsonOf(bare, 'POST', '/integrations', 201);
  assert.equal(bareJson.key, 'cli-bare');
  assert.equal(bareJson.parameters.hasClientSecret, false);

  const got = jsonOf(await ag(['integration', 'get', OAUTH, '--json'], asSession()), 'GET',
    `/integrations/${OAUTH}`);
  assert.equal(got.id, id);
  assert.equal(got.parameters.clientId, 'cid-123');
  assert.equal(got.parameters.hasClientSecret, true);
  assert.deepEqual(got.parameters.scopes, ['read', 'write']);
  const byId = await ag(['integration', 'get', id], asSession());
  assert.equal(byId.code, 0, byId.all);
  assert.match(byId.stdout, new RegExp(`^key: +${OAUTH}$`, 'm'));

  // list: integrations, and with --connectors 1 the connectors that could become one.
  const list = await ag(['integration', 'list', '--search', 'cli-'], asSession());
  assert.equal(list.code, 0, list.all);
  assert.match(list.stdout, /^ID +KEY +NAME +CONNECTOR +AUTH +STATUS$/m);
  assert.match(list.stdout, new RegExp(`^${id} +${OAUTH} +CLI ${OAUTH} +${OAUTH} +oauth2 +active$`, 'm'));
  assert.doesNotMatch(list.stdout, new RegExp(`^- +${ECHO} `, 'm'));
  for (const flag of ['--connectors', '--externalApps']) {
    const withConnectors = await ag(['integration', 'list', '--search', ECHO, flag, '1'], asSession());
    assert.equal(withConnectors.code, 0, withConnectors.all);
    assert.match(withConnectors.stdout, new RegExp(`^- +${ECHO} +CLI echo vendor +${ECHO} +api_key +available$`, 'm'));
  }
  const withoutConnectors = await ag(['integration', 'list', '--search', ECHO, '--connectors', '0'], asSession());
  assert.equal(withoutConnectors.stdout, 'no integrations\n', withoutConnectors.all);
  const page = jsonOf(await ag(['integration', 'list', '--limit', '1', '--json'], asSession()),
    'GET', '/integrations?limit=1');
  assert.equal(page.items.length, 1);
  assert.equal(typeof page.cursor, 'string');
  const paged = await ag(['integration', 'list', '--limit', '1'], asSession());
  assert.match(paged.stdout, /^\(more: add --cursor \S+, or --all-pages for everything\)$/m, paged.all);
  const allPages = await ag(['integration', 'list', '--limit', '1', '--all-pages'], asSession());
  assert.ok(allPages.stdout.includes(OAUTH) && allPages.stdout.includes('cli-bare'), allPages.all);
  assert.doesNotMatch(allPages.stdout, /\(more: /);

  // parameters: shown without flags, changed with them; the secret never comes back.
  const params = await ag(['integration', 'parameters', OAUTH], asSession());
  assert.equal(params.code, 0, params.all);
  assert.equal(params.stdout,
    'clientId:     cid-123\nclientSecret: set (never shown)\nscopes:       read, write\n');
  const changed = await ag(['integration', 'parameters', OAUTH, '--scopes', 'read',
    '--clientSecret', ''], asSession());
  assert.equal(changed.code, 0, changed.all);
  assert.match(changed.stdout, /^clientSecret: +not set$/m);
  assert.match(changed.stdout, /^scopes: +read$/m);
  assert.match(changed.stdout, /^clientId: +cid-123$/m);
  const again = jsonOf(await ag(['integration', 'parameters', OAUTH, '--clientSecret', CLIENT_SECRET,
    '--json'], asSession()), 'PATCH', `/integrations/${OAUTH}/parameters`);
  assert.equal(again.hasClientSecret, true);
  const viaStdin = await ag(['integration', 'parameters', OAUTH, '--clientSecret', '-'],
    { ...asSession(), input: `${CLIENT_SECRET}\n` });
  assert.match(viaStdin.stdout, /^clientSecret: +set \(never shown\)$/m);
  for (const text of [made.all, JSON.stringify(got), params.all, changed.all, JSON.stringify(again),
    viaStdin.all]) {
    assert.ok(!text.includes(CLIENT_SECRET), 'the client secret is never printed');
  }

  // archive and restore.
  const archived = await ag(['integration', 'archive', OAUTH], asSession());
  assert.equal(archived.code, 0, archived.all);
  assert.match(archived.stdout, /^status: +archived at \d{4}-\d\d-\d\dT/m);
  const hidden = await ag(['integration', 'list', '--search', OAUTH], asSession());
  assert.doesNotMatch(hidden.stdout, new RegExp(` ${OAUTH} `), hidden.all);
  const shown = await ag(['integration', 'list', '--search', OAUTH, '--includeArchived'], asSession());
  assert.match(shown.stdout, new RegExp(`^${id} +${OAUTH} .* archived$`, 'm'), shown.all);
  const restored = jsonOf(await ag(['integration', 'restore', OAUTH, '--json'], asSession()), 'POST',
    `/integrations/${OAUTH}/restore`);
  assert.equal(restored.isArchived, false);

  // update: a new name; bad input is refused by the CLI or by the server.
  const renamed = jsonOf(await ag(['integration', 'update', OAUTH, '--name', 'Renamed by CLI', '--json'],
    asSession()), 'PATCH', `/integrations/${OAUTH}`);
  assert.equal(renamed.name, 'Renamed by CLI');
  expectUsage(await ag(['integration', 'update', OAUTH], asSession()), /give --name, --key or both/);
  expectApiError(await ag(['integration', 'update', OAUTH, '--key', 'has space'], asSession()),
    'invalid_field');

  // Errors.
  const tenant = await mint(['--tenantKey', 'cli-u1']);
  expectApiError(await ag(['integration', 'parameters', OAUTH], asToken(tenant)), 'forbidden');
  expectApiError(await ag(['integration', 'get', 'cli-no-such-integration'], asSession()),
    'integration_not_found');
  expectApiError(await ag(['integration', 'create', '--connectorKey', 'cli-no-such-connector'],
    asSession()), 'connector_not_found');
  expectUsage(await ag(['integration', 'create'], asSession()), /missing --connectorKey KEY/);
  expectUsage(await ag(['integration', 'get'], asSession()), /missing INTEGRATION/);
  expectUsage(await ag(['integration', 'list', '--connectors', 'maybe'], asSession()),
    /--connectors takes 1 or 0/);
  expectUsage(await ag(['integration', 'list', '--limit', '0'], asSession()), /--limit must be/);
  expectUsage(await ag(['integration', 'parameters', OAUTH, '--scopes', 'a,,b'], asSession()),
    /has an empty item/);
  expectUsage(await ag(['integration', 'parameters', OAUTH, '--clientSecret', '-'],
    { ...asSession(), input: '' }), /standard input/);
});

test('connect with --credentials is READY at once; act calls the app through the connection', async () => {
  const t = await mint(['--tenantKey', 'cli-t1']);
  const made = await ag(['connect', '--connectorKey', ECHO, '--connectionKey', 'echo-1',
    '--credentials', JSON.stringify({ apiKey: API_KEY })], asToken(t));
  assert.equal(made.code, 0, made.all);
  assert.match(made.stdout, /^id: +conn_[0-9a-f]+$/m);
  assert.match(made.stdout, /^key: +echo-1$/m);
  assert.match(made.stdout, /^state: +READY$/m);
  assert.match(made.stdout, new RegExp(`^integrationKey: +${ECHO}$`, 'm'));
  assert.match(made.stdout, /^tenantKey: +cli-t1$/m);
  assert.match(made.stdout, /^archived: +no$/m);
  assert.ok(!made.stdout.includes(API_KEY) && !made.stderr.includes(API_KEY), 'credentials are never printed');
  const second = jsonOf(await ag(['connect', '--integrationKey', ECHO, '--connectionKey', 'echo-2',
    '--name', 'Second echo', '--credentials', JSON.stringify({ apiKey: 'key-cli-second' }), '--json'],
  asToken(t)), 'POST', '/connections', 201);
  assert.equal(second.state, 'READY');
  assert.equal(second.name, 'Second echo');

  // act: the app's JSON answer on one line; the key injected; the body and query passed on.
  const acted = await ag(['act', '--connectionKey', 'echo-1', '--api', JSON.stringify({
    method: 'POST', path: '/items', query: { q: 'a b' }, body: { n: 1 },
  })], asToken(t));
  assert.equal(acted.code, 0, acted.all);
  assert.deepEqual(JSON.parse(acted.stdout), { ok: true, path: '/v1/items?q=a%20b', method: 'POST' });
  assert.equal(acted.stdout.split('\n').length, 2);
  const last = vendor.seen.at(-1);
  assert.equal(last.headers['x-api-key'], API_KEY);
  assert.equal(last.body, '{"n":1}');
  const whole = jsonOf(await ag(['act', '--connectionId', second.id, '--api', '{"path": "/who"}',
    '--input', '{"x": 1}', '--json'], asToken(t)), 'POST', '/act');
  assert.equal(whole.status, 200);
  assert.equal(whole.connectionId, second.id);
  assert.deepEqual(whole.output, { ok: true, path: '/v1/who', method: 'GET' });
  assert.equal(vendor.seen.at(-1).headers['x-api-key'], 'key-cli-second');
  expectUsage(await ag(['act', '--integrationKey', ECHO, '--connectionKey', 'echo-1', '--api',
    '{"path": "/text"}'], asToken(t)), /not both --connectionKey and --integrationKey/);
  const plain = await ag(['act', '--connectionKey', 'echo-1', '--api', '{"path": "/text"}'], asToken(t));
  assert.equal(plain.code, 0, plain.all);
  assert.equal(plain.stdout, 'plain words\n');

  // The app's 4xx: an API error with the app's status and body.
  const missing = await ag(['act', '--connectionKey', 'echo-1', '--api', '{"path": "/missing"}'], asToken(t));
  expectApiError(missing, 'upstream_error');
  assert.match(missing.stderr, /^ {2}upstream: HTTP 404: \{"ok":false,"path":"\/v1\/missing"/m);
  // Two connections: without a connection flag the server asks which one.
  expectApiError(await ag(['act', '--api', '{"path": "/x"}'], asToken(t)), 'missing_fields');

  // Usage errors.
  expectUsage(await ag(['act', '--connectionKey', 'echo-1'], asToken(t)),
    /give --key KEY or --id ID \(an action\), or --api JSON/);
  expectUsage(await ag(['act', '--key', 'k', '--api', '{}'], asToken(t)),
    /give one of --key, --id, --api and --code, not both --key and --api/);
  expectUsage(await ag(['act', '--connectionKey', 'echo-1', '--api', '{"path": '], asToken(t)),
    /--api must be a JSON object/);
  expectUsage(await ag(['act', '--connectionKey', 'echo-1', '--api', '"GET /x"'], asToken(t)),
    /--api must be a JSON object/);
  expectUsage(await ag(['act', '--connectionKey', 'echo-1', '--api', '{}', '--input', 'nope'], asToken(t)),
    /--input must be a JSON object/);
  expectUsage(await ag(['connect', '--connectorKey', ECHO, '--credentials', '["k"]'], asToken(t)),
    /--credentials must be a JSON object/);
  expectUsage(await ag(['connect', '--connectorKey', ECHO, '--fields', '{'], asToken(t)),
    /--fields must be a JSON object/);
  expectUsage(await ag(['connect'], asToken(t)), /give --integrationKey, --integrationId, --connectorKey/);
  expectUsage(await ag(['connect', '--connectorKey', ECHO, '--integrationKey', ECHO], asToken(t)),
    /not both --integrationKey and --connectorKey/);
  expectUsage(await ag(['connect', '--connectorKey', ECHO, '--timeout', 'soon'], asToken(t)), /--timeout/);
  expectApiError(await ag(['connect', '--connectorKey', ECHO, '--credentials', '{"apiKey": 5}'], asToken(t)),
    'invalid_field');
});

test('connect to an OAuth connector: the link with --non-interactive; CONFIGURATION_ERROR and a timeout exit 1', async () => {
  const t = await mint(['--tenantKey', 'cli-t2']);
  const linkPattern = new RegExp(`^${escape(srv.url)}/connect\\?session=cs_[A-Za-z0-9_-]+$`);
  const r = await ag(['connect', '--connectorKey', OAUTH, '--connectionKey', 'oauth-1',
    '--non-interactive'], asToken(t));
  assert.equal(r.code, 0, r.all);
  const url = r.stdout.trimEnd();
  assert.equal(r.stdout.split('\n').length, 2, 'the link alone on stdout');
  assert.match(url, linkPattern);
  assert.ok(r.stderr.includes(`Open this link to connect: ${url}`), r.all);
  const page = await fetch(url);
  assert.equal(page.status, 200);
  const j = jsonOf(await ag(['connect', '--connectionKey', 'oauth-1', '--integrationKey', OAUTH,
    '--non-interactive', '--json'], asToken(t)), 'POST', '/connections');
  assert.equal(j.state, 'CLIENT_ACTION_REQUIRED');
  assert.match(j.clientAction.uiUrl, linkPattern);

  // Waiting: the link on stderr, then exit 1 when nobody signs in within --timeout.
  const started = Date.now();
  const waited = await ag(['connect', '--connectionKey', 'oauth-1', '--integrationKey', OAUTH,
    '--timeout', '2'], asToken(t));
  assert.equal(waited.code, 1, waited.all);
  assert.ok(Date.now() - started >= 1900, 'it waited for --timeout');
  assert.match(waited.stderr, /^Open this link to connect: http:\/\/\S+\/connect\?session=cs_/m);
  assert.match(waited.stderr, /^error: the connection conn_[0-9a-f]+ is still CLIENT_ACTION_REQUIRED after 2 s/m);
  assert.equal(waited.stdout, '');

  // An OAuth integration without a client cannot connect: exit 1 with the error.
  const conf = await ag(['connect', '--integrationKey', 'cli-bare'], asToken(t));
  assert.equal(conf.code, 1, conf.all);
  assert.match(conf.stderr, /is CONFIGURATION_ERROR: missing_oauth_client: /);
  assert.match(conf.stderr, /agentgate integration parameters cli-bare/);
  assert.equal(conf.stdout, '');
  const confJson = await ag(['connect', '--integrationKey', 'cli-bare', '--json'], asToken(t));
  assert.equal(confJson.code, 1, confJson.all);
  assert.equal(JSON.parse(confJson.stdout).state, 'CONFIGURATION_ERROR');
});

test('connect waits until the owner fills in the connect form, then prints the READY connection', async () => {
  const t = await mint(['--tenantKey', 'cli-t3']);
  const run = spawnCli(['--url', srv.url, 'connect', '--connectorKey', ECHO, '--connectionKey',
    'echo-form', '--timeout', '30'], asToken(t));
  // The owner opens the link and submits the form (as connect.js does).
  let link;
  for (let i = 0; i < 100 && !link; i++) {
    link = run.state.stderr.match(/Open this link to connect: (\S+)/)?.[1];
    if (!link) await new Promise((resolve) => setTimeout(resolve, 100));
  }
  assert.ok(link, `no link on stderr: ${run.state.stderr}`);
  const connectSession = new URL(link).searchParams.get('session');
  await new Promise((resolve) => setTimeout(resolve, 1500));  // the command is polling by now
  const submitted = await fetch(`${srv.url}/connect/credentials`, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify({ session: connectSession, credentials: { apiKey: 'key-from-form' } }),
  });
  assert.equal(submitted.status, 200, await submitted.text());
  const r = await run.done;
  assert.equal(r.code, 0, r.all);
  assert.match(r.stderr, /Waiting for the connection echo-form \(conn_[0-9a-f]+\) to become READY/);
  assert.match(r.stderr, /^state: READY$/m);
  assert.match(r.stdout, /^key: +echo-form$/m);
  assert.match(r.stdout, /^state: +READY$/m);
  const acted = await ag(['act', '--connectionKey', 'echo-form', '--api', '{"path": "/form"}'], asToken(t));
  assert.equal(acted.code, 0, acted.all);
  assert.equal(vendor.seen.at(-1).headers['x-api-key'], 'key-from-form');
});

test('connection list, get, delete (archive), restore and refresh; tenants are kept apart', async () => {
  const t = await mint(['--tenantKey', 'cli-t1']);
  const list = await ag(['connection', 'list'], asToken(t));
  assert.equal(list.code, 0, list.all);
  assert.match(list.stdout, /^ID +KEY +INTEGRATION +STATE +ARCHIVED +NAME$/m);
  assert.match(list.stdout, new RegExp(`^conn_[0-9a-f]+ +echo-1 +${ECHO} +READY +no +CLI echo vendor$`, 'm'));
  assert.match(list.stdout, new RegExp(`^conn_[0-9a-f]+ +echo-2 +${ECHO} +READY +no +Second echo$`, 'm'));
  const listed = jsonOf(await ag(['connection', 'list', '--integrationKey', ECHO, '--json'], asToken(t)),
    'GET', `/connections?integrationKey=${ECHO}`);
  assert.deepEqual(listed.items.map((c) => c.key).sort(), ['echo-1', 'echo-2']);
  const one = await ag(['connection', 'list', '--limit', '1'], asToken(t));
  assert.match(one.stdout, /^\(more: add --cursor \S+, or --all-pages for everything\)$/m, one.all);
  const cursor = one.stdout.match(/--cursor (\S+),/)[1];
  const next = await ag(['connection', 'list', '--limit', '1', '--cursor', cursor], asToken(t));
  assert.equal(next.code, 0, next.all);
  assert.doesNotMatch(next.stdout, /\(more: /);
  const all = await ag(['connection', 'list', '--limit', '1', '--all-pages'], asToken(t));
  assert.ok(all.stdout.includes('echo-1') && all.stdout.includes('echo-2'), all.all);
  const search = await ag(['connection', 'list', '--search', 'Second'], asToken(t));
  assert.doesNotMatch(search.stdout, / echo-1 /, search.all);

  const got = await ag(['connection', 'get', 'echo-1'], asToken(t));
  assert.equal(got.code, 0, got.all);
  const id = got.stdout.match(/^id: +(conn_[0-9a-f]+)$/m)[1];
  assert.match(got.stdout, /^tokenExpiresAt: +never$/m);
  const gotJson = jsonOf(await ag(['connection', 'get', id, '--json'], asToken(t)), 'GET', `/connections/${id}`);
  assert.equal(gotJson.key, 'echo-1');
  assert.equal(JSON.stringify(gotJson).includes(API_KEY), false);

  // delete archives: out of lists and act; back with restore.
  const deleted = await ag(['connection', 'delete', 'echo-1'], asToken(t));
  assert.equal(deleted.code, 0, deleted.all);
  assert.match(deleted.stdout, /^archived: +yes, at \d{4}-\d\d-\d\dT/m);
  assert.doesNotMatch((await ag(['connection', 'list'], asToken(t))).stdout, / echo-1 /);
  const withArchived = await ag(['connection', 'list', '--includeArchived'], asToken(t));
  assert.match(withArchived.stdout, /^conn_[0-9a-f]+ +echo-1 +\S+ +READY +yes /m, withArchived.all);
  expectApiError(await ag(['connection', 'get', 'echo-1'], asToken(t)), 'connection_not_found');
  const archivedGet = await ag(['connection', 'get', 'echo-1', '--includeArchived'], asToken(t));
  assert.equal(archivedGet.code, 0, archivedGet.all);
  expectApiError(await ag(['act', '--connectionKey', 'echo-1', '--api', '{"path": "/x"}'], asToken(t)),
    'connection_not_found');
  const restored = jsonOf(await ag(['connection', 'restore', id, '--json'], asToken(t)), 'POST',
    `/connections/${id}/restore`);
  assert.equal(restored.isArchived, false);
  assert.equal((await ag(['act', '--connectionKey', 'echo-1', '--api', '{"path": "/x"}'], asToken(t))).code, 0);

  // update renames it; an empty name is refused.
  const renamedConn = jsonOf(await ag(['connection', 'update', 'echo-1', '--name', 'Echo renamed', '--json'],
    asToken(t)), 'PATCH', '/connections/echo-1');
  assert.equal(renamedConn.name, 'Echo renamed');
  expectApiError(await ag(['connection', 'update', 'echo-1', '--name', ''], asToken(t)), 'invalid_field');
  expectUsage(await ag(['connection', 'update', 'echo-1'], asToken(t)), /--name/);

  // An API-key connection has nothing to refresh.
  expectApiError(await ag(['connection', 'refresh', 'echo-1'], asToken(t)), 'conflict');

  // Another tenant sees none of it; a person is their own tenant.
  const other = await mint(['--tenantKey', 'cli-other']);
  expectApiError(await ag(['connection', 'get', id], asToken(other)), 'connection_not_found');
  expectApiError(await ag(['connection', 'delete', 'echo-1'], asToken(other)), 'connection_not_found');
  assert.equal((await ag(['connection', 'list'], asToken(other))).stdout, 'no connections\n');
  const mine = await ag(['connection', 'list', '--json'], asSession());
  assert.equal(JSON.parse(mine.stdout).items.some((c) => c.id === id), false);

  expectUsage(await ag(['connection', 'get'], asToken(t)), /missing CONNECTION/);
  expectUsage(await ag(['connection', 'delete', 'a', 'b'], asToken(t)), /unexpected argument 'b'/);
  expectUsage(await ag(['connection', 'list', '--bogus'], asToken(t)), /unknown flag --bogus for 'agentgate connection list'/);
  expectUsage(await ag(['connection', 'list', '--limit', '1001'], asToken(t)), /--limit must be a whole number from 1 to 1000/);
  const unknown = await ag(['connection', 'archive', 'echo-1'], asToken(t));
  assert.equal(unknown.code, 2, unknown.all);
  assert.match(unknown.stderr, /unknown command 'agentgate connection archive'/);
});

test('credentials rotate warns and replaces the secret; tokens signed with the old one stop working', async () => {
  const before = await mint(['--tenantKey', 'cli-rot']);
  assert.equal((await ag(['connection', 'list'], asToken(before))).code, 0);
  const rotated = await ag(['credentials', 'rotate'], asSession());
  assert.equal(rotated.code, 0, rotated.all);
  assert.match(rotated.stderr, /^warning: .*tokens signed with the old secret stop working/m);
  const secret = rotated.stdout.match(/^workspaceSecret: +(wss_\S+)$/m)?.[1];
  assert.ok(secret && secret !== creds.workspaceSecret, rotated.all);
  expectApiError(await ag(['connection', 'list'], asToken(before)), 'invalid_token');
  creds = { ...creds, workspaceSecret: secret };
  const after = await mint(['--tenantKey', 'cli-rot']);
  assert.equal(verify(after).tenantKey, 'cli-rot');
  assert.equal((await ag(['connection', 'list'], asToken(after))).code, 0);
  const j = jsonOf(await ag(['credentials', 'rotate', '--json'], asSession()), 'POST', '/v1/credentials/rotate');
  assert.notEqual(j.workspaceSecret, secret);
  creds = j;
});

test('keys rotate prints the new and previous key ids and how many secrets were resealed', async (t) => {
  const r = await ag(['keys', 'rotate'], asSession());
  if (r.code === 1 && /^error: not_found: /m.test(r.stderr)) {
    t.skip('this server has no POST /v1/keys/rotate');
    return;
  }
  assert.equal(r.code, 0, r.all);
  assert.match(r.stdout, /^kid: +\S+$/m);
  assert.match(r.stdout, /^previousKid: +\S+$/m);
  assert.match(r.stdout, /^resealed: +\d+$/m);
  const j = jsonOf(await ag(['keys', 'rotate', '--json'], asSession()), 'POST', '/v1/keys/rotate');
  assert.equal(typeof j.kid, 'string');
  // The connections still work with their resealed credentials.
  const tenant = await mint(['--tenantKey', 'cli-t1']);
  assert.equal((await ag(['act', '--connectionKey', 'echo-1', '--api', '{"path": "/x"}'], asToken(tenant))).code, 0);
});

// ---------------------------------------------------------------------------------------------
// Actions, run logs, export and import (issue 6)

test('help for the action commands: flags, example and exit codes', async () => {
  const top = await cli(['--help']);
  assert.equal(top.code, 0, top.all);
  for (const cmd of ['action list', 'action create', 'action get', 'action update', 'action replace',
    'action delete', 'action restore', 'action run', 'action-run-log get', 'action-run-log list',
    'export', 'import']) {
    assert.match(top.stdout, new RegExp(`^  ${cmd} `, 'm'), `top-level help lists ${cmd}`);
  }
  const commands = {
    act: ['--api', '--id', '--key', '--code', '--connectionKey', '--connectionId', '--integrationKey',
      '--integrationId', '--input', '--meta'],
    'action list': ['--connectionId', '--connectionKey', '--integrationKey', '--externalAppId', '--intent',
      '--limit', '--cursor', '--includeArchived'],
    'action create': ['--key', '--name', '--description', '--type', '--config', '--inputSchema',
      '--outputSchema', '--integrationKey', '--integrationId', '--connectionId', '--connectionKey'],
    'action get': ['--integrationKey', '--connectionId'],
    'action update': ['--data'],
    'action replace': ['--data'],
    'action delete': ['--integrationKey'],
    'action restore': [],
    'action run': ['--input', '--connectionKey', '--connectionId'],
    'action-run-log get': ['--details'],
    'action-run-log list': ['--actionId', '--connectionId', '--agentId', '--status', '--limit', '--cursor'],
    export: ['--out'],
    import: ['FILE'],
  };
  for (const [cmd, words] of Object.entries(commands)) {
    const r = await cli([...cmd.split(' '), '--help']);
    assert.equal(r.code, 0, r.all);
    assert.match(r.stdout, new RegExp(`^Usage: agentgate ${cmd} `), r.all);
    for (const w of [...words, '--url', '--json', 'Example', 'Exit codes']) {
      assert.ok(r.stdout.includes(w), `help of '${cmd}' mentions ${w}:\n${r.stdout}`);
    }
  }
  const group = await cli(['action', '--help']);
  assert.equal(group.code, 0, group.all);
  for (const sub of ['list', 'create', 'get', 'update', 'replace', 'delete', 'restore', 'run']) {
    assert.match(group.stdout, new RegExp(`^  action ${sub} `, 'm'), group.all);
  }
});

test('action create, list, get, update, replace, delete, restore and run; act --key and --id; action-run-log get --details', async () => {
  const manager = await mint(['--manager']);
  const t = await mint(['--tenantKey', 'cli-t1']);
  const config = JSON.stringify({ request: { method: 'GET', path: '/items/{{input.id}}' } });
  const schema = JSON.stringify({ type: 'object', properties: { id: { type: 'string' } }, required: ['id'] });
  const made = jsonOf(await ag(['action', 'create', '--key', 'cli-get-item', '--name', 'Get item',
    '--description', 'Fetches one item by its id', '--config', config, '--inputSchema', schema,
    '--integrationKey', ECHO, '--json'], asToken(manager)), 'POST', '/actions', 201);
  assert.match(made.id, /^act_/);
  assert.equal(made.key, 'cli-get-item');
  assert.equal(made.layer, 'integration');
  assert.equal(made.integrationKey, ECHO);
  assert.deepEqual(made.inputSchema, JSON.parse(schema));
  const plain = await ag(['action', 'create', '--key', 'cli-universal', '--description', 'Posts a thing',
    '--config', JSON.stringify({ request: { method: 'POST', path: '/things' } })], asToken(manager));
  assert.equal(plain.code, 0, plain.all);
  assert.match(plain.stdout, /^id: +act_\S+$/m);
  assert.match(plain.stdout, /^key: +cli-universal$/m);
  assert.match(plain.stdout, /^layer: +universal$/m);

  expectApiError(await ag(['action', 'create', '--key', 'cli-by-tenant', '--config', config], asToken(t)), 'forbidden');
  expectApiError(await ag(['action', 'create', '--key', 'cli-universal', '--config', config], asToken(manager)), 'conflict');
  expectUsage(await ag(['action', 'create', '--key', 'cli-x'], asToken(manager)), /--config/);
  expectUsage(await ag(['action', 'create', '--key', 'cli-x', '--config', '{"request": '], asToken(manager)), /--config/);
  expectUsage(await ag(['action', 'create', '--key', 'cli-x', '--config', config, '--inputSchema', 'nope'],
    asToken(manager)), /--inputSchema/);

  // list and get, as the tenant.
  const listed = jsonOf(await ag(['action', 'list', '--json'], asToken(t)), 'GET', '/actions');
  const keys = listed.items.map((a) => a.key);
  assert.ok(keys.includes('cli-get-item') && keys.includes('cli-universal'), keys.join(', '));
  const table = await ag(['action', 'list'], asToken(t));
  assert.equal(table.code, 0, table.all);
  assert.ok(table.stdout.includes('cli-get-item') && table.stdout.includes(made.id), table.all);
  const ranked = jsonOf(await ag(['action', 'list', '--intent', 'fetch an item by id', '--json'], asToken(t)),
    'GET', '/actions?intent=fetch');
  assert.equal(ranked.items[0]?.key, 'cli-get-item', JSON.stringify(ranked));
  const byIntegration = jsonOf(await ag(['action', 'list', '--integrationKey', ECHO, '--json'], asToken(t)),
    'GET', `/actions?integrationKey=${ECHO}`);
  assert.ok(byIntegration.items.some((a) => a.id === made.id));
  const got = jsonOf(await ag(['action', 'get', 'cli-get-item', '--integrationKey', ECHO, '--json'], asToken(t)),
    'GET', '/actions/cli-get-item');
  assert.equal(got.id, made.id);
  const gotPlain = await ag(['action', 'get', made.id], asToken(t));
  assert.equal(gotPlain.code, 0, gotPlain.all);
  assert.match(gotPlain.stdout, /^key: +cli-get-item$/m);
  expectApiError(await ag(['action', 'get', 'cli-no-such-action'], asToken(t)), 'action_not_found');
  expectUsage(await ag(['action', 'get'], asToken(t)), /missing/i);

  // update merges, replace replaces.
  const updated = jsonOf(await ag(['action', 'update', 'cli-get-item', '--integrationKey', ECHO, '--data',
    '{"description": "Fetches an item"}', '--json'], asToken(manager)), 'PATCH', '/actions/cli-get-item');
  assert.equal(updated.description, 'Fetches an item');
  assert.deepEqual(updated.config, made.config);
  expectUsage(await ag(['action', 'update', 'cli-get-item', '--data', '[1]'], asToken(manager)), /--data/);
  const replaced = jsonOf(await ag(['action', 'replace', made.id, '--data', JSON.stringify({
    key: 'cli-get-item', name: 'Get item', config: JSON.parse(config), inputSchema: JSON.parse(schema),
  }), '--json'], asToken(manager)), 'PUT', `/actions/${made.id}`);
  assert.equal(replaced.description, '');
  assert.equal(replaced.layer, 'integration');

  // run, and act --key / --id: the app's answer on stdout, as act --api prints it.
  const ran = await ag(['action', 'run', 'cli-get-item', '--connectionKey', 'echo-1', '--input', '{"id": "42"}'], asToken(t));
  assert.equal(ran.code, 0, ran.all);
  assert.deepEqual(JSON.parse(ran.stdout), { ok: true, path: '/v1/items/42', method: 'GET' });
  assert.equal(vendor.seen.at(-1).headers['x-api-key'], API_KEY);
  const ranJson = jsonOf(await ag(['action', 'run', 'cli-get-item', '--connectionKey', 'echo-1', '--input',
    '{"id": "43"}', '--json'], asToken(t)), 'POST', '/actions/cli-get-item/run');
  assert.equal(ranJson.status, 200);
  assert.match(ranJson.actionRunId, /^run_/);
  const byKey = jsonOf(await ag(['act', '--key', 'cli-get-item', '--connectionKey', 'echo-2', '--input',
    '{"id": "7"}', '--meta', '{"via": "cli"}', '--json'], asToken(t)), 'POST', '/act');
  assert.deepEqual(byKey.output, { ok: true, path: '/v1/items/7', method: 'GET' });
  assert.equal(vendor.seen.at(-1).headers['x-api-key'], 'key-cli-second');
  const byId = await ag(['act', '--id', made.id, '--connectionKey', 'echo-1', '--input', '{"id": "8"}'], asToken(t));
  assert.equal(byId.code, 0, byId.all);
  assert.equal(JSON.parse(byId.stdout).path, '/v1/items/8');
  const seen = vendor.seen.length;
  const invalid = await ag(['act', '--key', 'cli-get-item', '--connectionKey', 'echo-1', '--input', '{}'], asToken(t));
  expectApiError(invalid, 'invalid_input');
  assert.match(invalid.stderr, /id/);
  assert.equal(vendor.seen.length, seen, 'an invalid input reaches no app');
  // Two things to run: refused by the CLI (2) or by the server (1), never sent on.
  const both = await ag(['act', '--key', 'cli-get-item', '--api', '{"path": "/x"}', '--connectionKey', 'echo-1'],
    asToken(t));
  assert.ok(both.code === 1 || both.code === 2, both.all);
  assert.equal(vendor.seen.length, seen);
  expectApiError(await ag(['act', '--code', 'return 1', '--connectionKey', 'echo-1'], asToken(t)), 'invalid_field');

  // The run log, plain and with its redacted exchanges.
  const runId = ranJson.actionRunId;
  const log = jsonOf(await ag(['action-run-log', 'get', runId, '--json'], asToken(t)), 'GET', `/action-run-logs/${runId}`);
  assert.equal(log.id, runId);
  assert.equal(log.status, 'success');
  assert.equal(log.action.key, 'cli-get-item');
  assert.deepEqual(log.input, { id: '43' });
  assert.equal(log.details, undefined);
  const logPlain = await ag(['action-run-log', 'get', runId], asToken(t));
  assert.equal(logPlain.code, 0, logPlain.all);
  assert.ok(logPlain.stdout.includes(runId) && logPlain.stdout.includes('success'), logPlain.all);
  const details = await ag(['action-run-log', 'get', runId, '--details', '--json'], asToken(t));
  const d = jsonOf(details, 'GET', `/action-run-logs/${runId}/details`);
  assert.ok(d.details.exchanges[0].request.url.endsWith('/v1/items/43'), JSON.stringify(d.details));
  assert.ok(details.stdout.includes('[REDACTED]'));
  const detailsPlain = await ag(['action-run-log', 'get', runId, '--details'], asToken(t));
  assert.equal(detailsPlain.code, 0, detailsPlain.all);
  for (const r of [details, detailsPlain, logPlain]) assert.ok(!r.all.includes(API_KEY), 'the key is never printed');
  const runsList = jsonOf(await ag(['action-run-log', 'list', '--actionId', made.id, '--json'], asToken(t)),
    'GET', `/action-run-logs?actionId=${made.id}`);
  assert.ok(runsList.items.some((x) => x.id === runId));
  assert.ok(runsList.items.every((x) => x.action?.id === made.id));
  expectApiError(await ag(['action-run-log', 'get', 'run_doesnotexist0000'], asToken(t)), 'action_run_not_found');
  const other = await mint(['--tenantKey', 'cli-other']);
  expectApiError(await ag(['action-run-log', 'get', runId], asToken(other)), 'action_run_not_found');

  // delete archives, restore brings it back.
  const archived = jsonOf(await ag(['action', 'delete', 'cli-get-item', '--integrationKey', ECHO, '--json'],
    asToken(manager)), 'DELETE', '/actions/cli-get-item');
  assert.equal(archived.isArchived, true);
  const after = jsonOf(await ag(['action', 'list', '--json'], asToken(t)), 'GET', '/actions');
  assert.ok(!after.items.some((a) => a.id === made.id));
  const withArchived = jsonOf(await ag(['action', 'list', '--includeArchived', '--json'], asToken(t)),
    'GET', '/actions?includeArchived=1');
  assert.ok(withArchived.items.some((a) => a.id === made.id));
  expectApiError(await ag(['act', '--id', made.id, '--connectionKey', 'echo-1', '--input', '{"id": "1"}'], asToken(t)),
    'action_not_found');
  const restored = jsonOf(await ag(['action', 'restore', made.id, '--json'], asToken(manager)), 'POST',
    `/actions/${made.id}/restore`);
  assert.equal(restored.isArchived, false);
  assert.equal((await ag(['action', 'run', made.id, '--connectionKey', 'echo-1', '--input', '{"id": "9"}'],
    asToken(t))).code, 0);
  const unknown = await ag(['action', 'archive', made.id], asToken(manager));
  assert.equal(unknown.code, 2, unknown.all);
  assert.match(unknown.stderr, /unknown command 'agentgate action archive'/);
});

test('export writes the workspace as JSON without secrets; import reads it back (a file or stdin)', async () => {
  const dir = makeTempDir('agentgate-cli-export-');
  const file = path.join(dir, 'workspace.json');
  const wrote = await ag(['export', '--out', file], asSession());
  assert.equal(wrote.code, 0, wrote.all);
  const text = readFileSync(file, 'utf8');
  const doc = JSON.parse(text);
  if (!process.env.AGENTGATE_E2E_NO_OPENAPI) validateResponse('GET', '/export', 200, 'application/json', text);
  assert.equal(doc.version, 1);
  assert.ok(doc.connectors.some((c) => c.key === ECHO));
  assert.ok(doc.integrations.some((i) => i.key === OAUTH && i.parameters?.clientId === 'cid-123'));
  assert.ok(doc.actions.some((a) => a.key === 'cli-universal'));
  for (const secret of [CLIENT_SECRET, API_KEY, 'key-cli-second', creds.workspaceSecret]) {
    assert.ok(!text.includes(secret), `the export holds no secret (${secret.slice(0, 10)}…)`);
  }
  const toStdout = await ag(['export'], asSession());
  assert.equal(toStdout.code, 0, toStdout.all);
  assert.deepEqual(JSON.parse(toStdout.stdout).actions, doc.actions);

  const imported = jsonOf(await ag(['import', file, '--json'], asSession()), 'POST', '/import');
  assert.equal(imported.actions.created, 0);
  assert.equal(imported.actions.unchanged, doc.actions.length);
  assert.equal(imported.connectors.unchanged, doc.connectors.length);
  const fromStdin = await ag(['import', '-'], { ...asSession(), input: text });
  assert.equal(fromStdin.code, 0, fromStdin.all);

  const tenant = await mint(['--tenantKey', 'cli-t1']);
  expectApiError(await ag(['export'], asToken(tenant)), 'forbidden');
  expectApiError(await ag(['import', file], asToken(tenant)), 'forbidden');
  const missing = await ag(['import', path.join(dir, 'missing.json')], asSession());
  assert.equal(missing.code, 2, missing.all);
  const notJson = path.join(dir, 'bad.json');
  writeFileSync(notJson, '{"version": ');
  assert.equal((await ag(['import', notJson], asSession())).code, 2);
  expectUsage(await ag(['import'], asSession()), /FILE/);
});

// The MCP server, driven by the official TypeScript SDK client over both transports (Streamable
// HTTP at /mcp, stdio through `agentgate mcp`), by the MCP Inspector CLI, and by raw HTTP for the
// protocol's error cases. Every tool is called; every result must conform to the tool's
// outputSchema (the SDK checks, and so do we); failures come back as isError with agentgate's
// structured error; every tool call is an activity event with actor kind `mcp`.

import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, execFile } from 'node:child_process';
import http from 'node:http';
import { createInterface } from 'node:readline';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import Ajv2020 from 'ajv/dist/2020.js';
import addFormats from 'ajv-formats';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { StdioClientTransport } from '@modelcontextprotocol/sdk/client/stdio.js';
import { McpError } from '@modelcontextprotocol/sdk/types.js';
import {
  BINARY, startServer, api, registerAgent, signIn, uniqueEmail, makeTempDir,
} from './lib/server.mjs';
import { validateResponse } from './lib/openapi.mjs';

const here = path.dirname(fileURLToPath(import.meta.url));
const srv = await startServer({ args: ['--no-rate-limits', '--allow-private-egress'] });
after(() => srv.stop());
// A webhook receiver on loopback, for the webhook tools.
// Webhook receiver, and a stand-in app for the engine's tools: a token endpoint and a JSON API.
const receiver = http.createServer((req, res) => {
  req.resume();
  req.on('end', () => {
    if (req.url === '/token') {
      res.writeHead(200, { 'Content-Type': 'application/json' });
      res.end(JSON.stringify({ access_token: 'mcp-refreshed', token_type: 'Bearer', expires_in: 3600 }));
    } else if (req.url.startsWith('/api/')) {
      res.writeHead(200, { 'Content-Type': 'application/json' });
      res.end(JSON.stringify({ ok: true, path: req.url, key: req.headers['x-api-key'] ?? null }));
    } else {
      res.writeHead(204);
      res.end();
    }
  });
});
await new Promise((resolve) => receiver.listen(0, '127.0.0.1', resolve));
after(() => receiver.close());
const aliceEmail = uniqueEmail('mcp-alice');
const alice = await signIn(srv.url, aliceEmail);

async function mint(abilities, name = 'mcp') {
  const res = await api(srv.url, 'POST', '/v1/tokens', { cookie: alice, body: { name, abilities } });
  assert.equal(res.status, 201, res.text);
  return res.json;
}
const adminToken = (await mint(['*'], 'mcp-all')).token;

// Every response the SDK gets over HTTP is checked against docs/openapi.json too.
async function checkedFetch(url, init) {
  const res = await fetch(url, init);
  const text = await res.clone().text();
  const u = new URL(url);
  validateResponse(init?.method ?? 'GET', u.pathname + u.search, res.status,
    res.headers.get('content-type'), text, res.headers);
  return res;
}

async function httpClient(bearer, name = 'e2e-http') {
  const client = new Client({ name, version: '1.0.0' });
  const transport = new StreamableHTTPClientTransport(new URL(`${srv.url}/mcp`), {
    requestInit: { headers: { Authorization: `Bearer ${bearer}` } },
    fetch: checkedFetch,
  });
  await client.connect(transport);
  return { client, transport };
}

function stdioClient(env, name = 'e2e-stdio') {
  const client = new Client({ name, version: '1.0.0' });
  const transport = new StdioClientTransport({
    command: BINARY,
    args: ['mcp'],
    env: { PATH: process.env.PATH, HOME: makeTempDir('agentgate-mcp-home-'), ...env },
    stderr: 'pipe',
  });
  return { client, transport };
}

const ajv = new Ajv2020({ strict: false, allErrors: true });
addFormats(ajv);
function assertConforms(tool, result) {
  assert.equal(result.isError, false, `${tool.name} failed: ${JSON.stringify(result.structuredContent)}`);
  assert.ok(result.structuredContent, `${tool.name}: no structuredContent`);
  const validate = ajv.compile(tool.outputSchema);
  assert.ok(validate(result.structuredContent),
    `${tool.name}: structuredContent breaks its outputSchema: ${ajv.errorsText(validate.errors)}`);
  // The same, as text.
  assert.equal(result.content[0].type, 'text');
  assert.deepEqual(JSON.parse(result.content[0].text), result.structuredContent);
}

test('Streamable HTTP: the SDK negotiates, lists the tools, and calls every one of them', async () => {
  const { client } = await httpClient(adminToken);
  assert.equal(client.getServerVersion().name, 'agentgate');
  assert.ok(client.getServerCapabilities().tools, 'tools capability');
  assert.match(client.getInstructions() ?? '', /check_permission/);

  const { tools } = await client.listTools();
  const byName = new Map(tools.map((t) => [t.name, t]));
  for (const name of ['register_agent', 'check_permission', 'grant_permission', 'revoke_permission',
    'get_agent_status', 'list_permissions', 'list_activity']) {
    assert.ok(byName.has(name), `missing tool ${name}`);
  }
  for (const t of tools) {
    assert.equal(t.inputSchema.type, 'object', t.name);
    assert.equal(t.outputSchema?.type, 'object', t.name);
    assert.ok(t.description.length > 20, `${t.name} needs a real description`);
    assert.equal(typeof t.annotations?.readOnlyHint, 'boolean', t.name);
  }

  const called = new Set();
  const call = async (name, args = {}) => {
    const result = await client.callTool({ name, arguments: args });
    assertConforms(byName.get(name), result);
    called.add(name);
    return result.structuredContent;
  };

  const agent = await call('register_agent', { name: 'mcp-agent', developer_email: uniqueEmail('mcp-dev') });
  assert.match(agent.agent_id, /^ap_[0-9a-f]{16}$/);
  const grant = await call('grant_permission', {
    agent_id: agent.agent_id, action: 'book_flight', scope: { max_amount: 500 }, expires_in: '1h',
  });
  assert.equal(grant.agent_id, agent.agent_id);
  let decision = await call('check_permission', {
    agent_id: agent.agent_id, action: 'book_flight', context: { amount: 100 },
  });
  assert.equal(decision.allowed, true);
  decision = await call('check_permission', {
    agent_id: agent.agent_id, action: 'book_flight', context: { amount: 900 },
  });
  assert.equal(decision.allowed, false);
  const status = await call('get_agent_status', { agent_id: agent.agent_id });
  assert.equal(status.active_permissions.length, 1);
  // The admin registered nothing with their own address, but granted this agent something.
  const mine = await call('list_agents', { relation: 'granted' });
  const listedAgent = mine.data.find((a) => a.agent_id === agent.agent_id);
  assert.equal(listedAgent?.granted, true);
  assert.equal(listedAgent.owned, false);
  assert.equal(listedAgent.active_permission_count, 1);
  const perms = await call('list_permissions', { agent_id: agent.agent_id });
  assert.ok(perms.permissions.some((p) => p.permission_id === grant.permission_id));

  const token = await call('create_token', { name: 'from-mcp', abilities: ['permission:check'] });
  const tokens = await call('list_tokens', {});
  assert.ok(tokens.data.some((t) => t.id === token.id));
  await call('revoke_token', { token_id: token.id });

  const hook = await call('create_webhook', { url: `http://127.0.0.1:${receiver.address().port}/hook`, events: ['*'] });
  await call('list_webhooks', {});
  await call('get_webhook', { webhook_id: hook.id });
  await call('update_webhook', { webhook_id: hook.id, description: 'set over MCP' });
  await call('test_webhook', { webhook_id: hook.id });
  const messages = await call('list_webhook_messages', { webhook_id: hook.id, limit: 10 });
  assert.ok(messages.data.length >= 1);
  await call('replay_webhook_message', { webhook_id: hook.id, message_id: messages.data[0].message_id });
  await call('list_webhook_deliveries', { webhook_id: hook.id });
  await call('rotate_webhook_secret', { webhook_id: hook.id });
  await call('delete_webhook', { webhook_id: hook.id });
  await call('get_stats', {});

  // Permission requests: the agent asks with its own secret (agent_id filled in from it), the
  // person decides, the agent polls.
  const { client: agentClient } = await httpClient(agent.secret, 'e2e-agent');
  const agentTools = new Map((await agentClient.listTools()).tools.map((t) => [t.name, t]));
  const agentCall = async (name, args = {}) => {
    const result = await agentClient.callTool({ name, arguments: args });
    assertConforms(agentTools.get(name), result);
    called.add(name);
    return result.structuredContent;
  };
  const asked = await agentCall('request_permission', {
    action: 'hotel:book', reason: 'Book the Lisbon hotel', email: aliceEmail, scope: { max_amount: 300 },
  });
  assert.equal(asked.agent_id, agent.agent_id);
  assert.equal(asked.status, 'pending');
  const askedCar = await agentCall('request_permission', { action: 'car:rent', reason: 'Rent a car', email: aliceEmail });
  const pending = await call('list_permission_requests', { status: 'pending' });
  assert.ok(pending.data.some((r) => r.request_id === asked.request_id));
  const approvedReq = await call('approve_permission_request', { request_id: asked.request_id, scope: { max_amount: 100 } });
  assert.equal(approvedReq.status, 'approved');
  assert.deepEqual(approvedReq.permission.scope, { max_amount: 100 });
  const declinedReq = await call('decline_permission_request', { request_id: askedCar.request_id, reason: 'No car' });
  assert.equal(declinedReq.decline_reason, 'No car');
  const polled = await agentCall('get_permission_request', { request_id: asked.request_id });
  assert.equal(polled.status, 'approved');
  assert.equal(polled.permission.permission_id, approvedReq.permission.permission_id);
  await agentClient.close();

  // The integration engine, as the admin (a manager, and their own tenant).
  const app = `http://127.0.0.1:${receiver.address().port}`;
  const creds = await call('get-credentials', {});
  assert.match(creds.workspaceSecret, /^wss_/);
  const minted = await call('get-token', { tenantKey: 'mcp-tenant', expiresIn: '5m' });
  assert.match(minted.token, /^eyJ/);
  const connectors = await call('list-connectors', { search: 'github' });
  assert.ok(connectors.items.some((c) => c.key === 'github'));
  await call('create-connector', {
    key: 'mcp-echo', name: 'MCP echo', baseUrl: `${app}/api`,
    auth: { type: 'api_key', header: 'X-Api-Key', template: '{apiKey}' },
  });
  await call('create-connector', {
    key: 'mcp-oauth', name: 'MCP OAuth', baseUrl: `${app}/api`,
    auth: { type: 'oauth2', authorizeUrl: `${app}/authorize`, tokenUrl: `${app}/token` },
  });
  await call('create-integration', { connectorKey: 'mcp-oauth', parameters: { clientId: 'mcp-client' } });
  const integrations = await call('list-integrations', { connectors: '1', search: 'mcp' });
  assert.ok(integrations.items.some((i) => i.key === 'mcp-echo' && i.isSynthetic));
  await call('get-integration', { integration_id: 'mcp-oauth' });
  await call('update-integration', { integration_id: 'mcp-oauth', name: 'MCP OAuth app' });
  await call('get-integration-parameters', { integration_id: 'mcp-oauth' });
  await call('update-integration-parameters', { integration_id: 'mcp-oauth', scopes: ['read'] });
  await call('archive-integration', { integration_id: 'mcp-oauth' });
  await call('restore-integration', { integration_id: 'mcp-oauth' });
  const conn = await call('connect', { connectorKey: 'mcp-echo', connectionKey: 'mcp-1', credentials: { apiKey: 'k-mcp' } });
  assert.equal(conn.state, 'READY');
  const listed = await call('list-connections', {});
  assert.ok(listed.items.some((c) => c.id === conn.id));
  await call('get-connection', { connection_id: 'mcp-1' });
  await call('update-connection', { connection_id: 'mcp-1', name: 'renamed over MCP' });
  const acted = await call('act', { connectionKey: 'mcp-1', api: { method: 'GET', path: '/items' } });
  assert.deepEqual(acted.output, { ok: true, path: '/api/items', key: 'k-mcp' });
  // Actions (issue 6): path parameters are named as in the routes (selector, id).
  const action = await call('create-action', {
    key: 'mcp-get-item', name: 'Get item', description: 'Fetches one item by its id',
    config: { request: { method: 'GET', path: '/items/{{input.id}}' } },
    inputSchema: { type: 'object', properties: { id: { type: 'string' } }, required: ['id'] },
    integrationKey: 'mcp-echo',
  });
  assert.match(action.id, /^act_/);
  assert.equal(action.layer, 'integration');
  const ranked = await call('list-actions', { intent: 'fetch an item' });
  assert.equal(ranked.items[0]?.id, action.id);
  assert.equal((await call('get-action', { selector: 'mcp-get-item' })).id, action.id);
  const updatedAction = await call('update-action', { selector: action.id, description: 'Fetches an item' });
  assert.equal(updatedAction.description, 'Fetches an item');
  const byKey = await call('act', { key: 'mcp-get-item', connectionKey: 'mcp-1', input: { id: '9' } });
  assert.deepEqual(byKey.output, { ok: true, path: '/api/items/9', key: 'k-mcp' });
  assert.match(byKey.actionRunId, /^run_/);
  const ranAction = await call('run-action', { selector: action.id, connectionKey: 'mcp-1', input: { id: '10' } });
  assert.equal(ranAction.output.path, '/api/items/10');
  const runLog = await call('get-action-run-log', { id: byKey.actionRunId, includeDetails: 'true' });
  assert.equal(runLog.id, byKey.actionRunId);
  assert.equal(runLog.status, 'success');
  assert.ok(runLog.details.exchanges.length >= 1);
  assert.ok(!JSON.stringify(runLog).includes('k-mcp'), 'the key is redacted in the run log');
  const runLogs = await call('list-action-run-logs', { actionId: action.id });
  assert.ok(runLogs.items.some((r) => r.id === byKey.actionRunId));
  const exported = await call('export-workspace', {});
  assert.ok(exported.actions.some((a) => a.key === 'mcp-get-item'));
  const importedBack = await call('import-workspace', exported);
  assert.equal(importedBack.actions.created, 0);
  const archivedAction = await call('delete-action', { selector: action.id });
  assert.equal(archivedAction.isArchived, true);
  await call('delete-connection', { connection_id: 'mcp-1' });
  await call('restore-connection', { connection_id: 'mcp-1' });
  const oauthConn = await call('connect', {
    integrationKey: 'mcp-oauth', credentials: { accessToken: 'old', refreshToken: 'r1', expiresIn: '3600' },
  });
  const refreshed = await call('refresh-connection', { connection_id: oauthConn.id });
  assert.equal(refreshed.state, 'READY');
  const rotatedKey = await call('rotate-master-key', {});
  assert.ok(rotatedKey.resealed >= 3);
  const rotated = await call('rotate-workspace-secret', {});
  assert.notEqual(rotated.workspaceSecret, creds.workspaceSecret);

  const revoked = await call('revoke_permission', { permission_id: grant.permission_id });
  assert.equal(revoked.revoked, true);
  decision = await call('check_permission', { agent_id: agent.agent_id, action: 'book_flight' });
  assert.equal(decision.allowed, false, 'revocation applies to the next check');

  const activity = await call('list_activity', { actor_kind: 'mcp', limit: 100 });
  const actions = new Set(activity.data.map((e) => e.action));
  for (const a of ['agent.register', 'permission.grant', 'permission.check', 'permission.revoke']) {
    assert.ok(actions.has(a), `no mcp activity event for ${a}: ${[...actions].join(', ')}`);
  }
  assert.ok(activity.data.every((e) => e.actor_kind === 'mcp'));
  assert.deepEqual([...called].sort(), tools.map((t) => t.name).sort(), 'every tool was called');
  await client.close();
});

test('failures are isError results carrying the structured error; unknown tools are protocol errors', async () => {
  const agent = await registerAgent(srv.url);
  const { client } = await httpClient(agent.secret);
  // Listed first, so the SDK checks every structuredContent (errors too) against outputSchema.
  await client.listTools();
  // An agent may not grant: the route's own refusal, structured.
  let result = await client.callTool({
    name: 'grant_permission', arguments: { agent_id: agent.agent_id, action: 'x' },
  });
  assert.equal(result.isError, true);
  assert.equal(result.structuredContent.error, 'unauthorized');
  assert.match(result.structuredContent.request_id, /^req_/);
  // Wrong argument types: a tool error naming the field (revision 2025-11-25).
  result = await client.callTool({ name: 'check_permission', arguments: { action: 42 } });
  assert.equal(result.isError, true);
  assert.equal(result.structuredContent.error, 'invalid_field');
  assert.match(result.structuredContent.message, /action must be a string/);
  result = await client.callTool({ name: 'get_agent_status', arguments: { agent_id: agent.agent_id, bogus: 1 } });
  assert.equal(result.isError, true);
  assert.match(result.structuredContent.message, /bogus is not a known field/);
  // An agent's own id fills agent_id.
  result = await client.callTool({ name: 'check_permission', arguments: { action: 'anything' } });
  assert.equal(result.isError, false);
  assert.equal(result.structuredContent.allowed, false);
  result = await client.callTool({ name: 'get_agent_status', arguments: {} });
  assert.equal(result.structuredContent.agent_id, agent.agent_id);
  // Another agent's profile: forbidden, as over plain HTTP.
  const other = await registerAgent(srv.url);
  result = await client.callTool({ name: 'get_agent_status', arguments: { agent_id: other.agent_id } });
  assert.equal(result.isError, true);
  assert.equal(result.structuredContent.error, 'forbidden');
  // Unknown tool: JSON-RPC -32602.
  await assert.rejects(client.callTool({ name: 'drop_tables', arguments: {} }),
    (e) => e instanceof McpError && e.code === -32602 && /Unknown tool/.test(e.message));
  await client.close();
});

test('abilities are enforced per tool, and a revoked token stops working at once', async () => {
  const narrow = await mint(['permission:check'], 'mcp-narrow');
  const { client } = await httpClient(narrow.token);
  const result = await client.callTool({ name: 'get_stats', arguments: {} });
  assert.equal(result.isError, false, 'stats needs no ability');
  const denied = await client.callTool({ name: 'list_permissions', arguments: {} });
  assert.equal(denied.isError, true);
  assert.equal(denied.structuredContent.error, 'token_missing_ability');
  assert.match(denied.structuredContent.message, /permission:view-any/);
  const tokenActivity = await api(srv.url, 'GET', `/v1/activity?actor_kind=mcp&actor_id=${narrow.id}`, { cookie: alice });
  assert.equal(tokenActivity.status, 200);
  assert.ok(tokenActivity.json.data.some((e) => e.action === 'permission.list' && e.error === 'token_missing_ability'),
    'the refused call is in the activity log as an mcp event');

  const revoke = await api(srv.url, 'DELETE', `/v1/tokens/${narrow.id}`, { cookie: alice });
  assert.equal(revoke.status, 200, revoke.text);
  await assert.rejects(client.callTool({ name: 'get_stats', arguments: {} }), /401|Unauthorized/);
});

test('stdio: `agentgate mcp` relays to the server and the SDK client works unchanged', async () => {
  const agent = await registerAgent(srv.url);
  const grant = await api(srv.url, 'POST', '/permission/grant', {
    cookie: alice, body: { agent_id: agent.agent_id, action: 'send_email' },
  });
  assert.equal(grant.status, 201, grant.text);

  // As the reference's config names it: BASE_URL, and the agent's secret as the credential.
  const { client, transport } = stdioClient({ BASE_URL: srv.url, AGENTGATE_TOKEN: agent.secret });
  let stderr = '';
  transport.stderr.on('data', (d) => { stderr += d; });
  await client.connect(transport);
  assert.equal(client.getServerVersion().name, 'agentgate');
  const { tools } = await client.listTools();
  assert.ok(tools.length >= 7);
  const check = tools.find((t) => t.name === 'check_permission');
  let result = await client.callTool({ name: 'check_permission', arguments: { action: 'send_email' } });
  assertConforms(check, result);
  assert.equal(result.structuredContent.allowed, true);
  result = await client.callTool({ name: 'check_permission', arguments: { action: 'delete_account' } });
  assert.equal(result.structuredContent.allowed, false);
  result = await client.callTool({ name: 'revoke_permission', arguments: { permission_id: grant.json.permission_id } });
  assert.equal(result.isError, true, 'an agent cannot revoke');
  await client.close();
  assert.match(stderr, /relaying stdio to/);
});

test('stdio: only protocol messages on stdout, errors matched to their request, a lost session renewed', async () => {
  const child = spawn(BINARY, ['mcp'], {
    env: { PATH: process.env.PATH, HOME: makeTempDir('agentgate-mcp-home-'), AGENTGATE_URL: srv.url, AGENTGATE_TOKEN: adminToken },
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  const lines = [];
  let waiting = null;
  createInterface({ input: child.stdout }).on('line', (line) => {
    lines.push(line);
    if (waiting) waiting();
  });
  let read = 0;
  const next = async () => {
    const deadline = Date.now() + 10000;
    while (lines.length <= read) {
      if (Date.now() > deadline) throw new Error(`no answer; stdout so far:\n${lines.join('\n')}`);
      await new Promise((resolve) => { waiting = resolve; setTimeout(resolve, 100); });
    }
    read += 1;
    return JSON.parse(lines[read - 1]);
  };
  const send = (msg) => child.stdin.write(`${typeof msg === 'string' ? msg : JSON.stringify(msg)}\n`);

  send({ jsonrpc: '2.0', id: 1, method: 'initialize', params: { protocolVersion: '2025-06-18', capabilities: {}, clientInfo: { name: 'raw', version: '1' } } });
  let answer = await next();
  assert.equal(answer.result.protocolVersion, '2025-06-18');
  send({ jsonrpc: '2.0', method: 'notifications/initialized' });
  send('this is not json');
  answer = await next();
  assert.equal(answer.error.code, -32700);
  send({ jsonrpc: '2.0', id: 'x-2', method: 'no/such' });
  answer = await next();
  assert.equal(answer.id, 'x-2');
  assert.equal(answer.error.code, -32601);
  // Before 2025-11-25, bad arguments are a -32602 protocol error.
  send({ jsonrpc: '2.0', id: 3, method: 'tools/call', params: { name: 'check_permission', arguments: { action: [] } } });
  answer = await next();
  assert.equal(answer.id, 3);
  assert.equal(answer.error.code, -32602);
  assert.equal(answer.error.data.field, 'action');

  // The server forgets the session (as after a restart): the bridge starts a new one unseen.
  await endAllSessionsOf(adminToken);
  send({ jsonrpc: '2.0', id: 4, method: 'tools/call', params: { name: 'get_stats', arguments: {} } });
  answer = await next();
  assert.equal(answer.id, 4);
  assert.equal(answer.result.isError, false, JSON.stringify(answer));
  child.stdin.end();
  const code = await new Promise((resolve) => child.on('exit', resolve));
  assert.equal(code, 0);
  for (const line of lines) assert.doesNotThrow(() => JSON.parse(line), `not JSON-RPC on stdout: ${line}`);
});

// Ends the stdio bridge's session from outside: with no way to name it, open sessions for the
// same credential until the server's per-credential limit (64) pushes the oldest out.
async function endAllSessionsOf(bearer) {
  for (let i = 0; i < 64; i += 1) {
    const res = await rawPost(bearer, { jsonrpc: '2.0', id: i, method: 'initialize', params: { protocolVersion: '2025-11-25' } });
    assert.equal(res.status, 200);
  }
}

test('stdio: without a credential it refuses to start, and says how to give one', async () => {
  const out = await new Promise((resolve) => {
    execFile(BINARY, ['mcp'], { env: { PATH: process.env.PATH, HOME: makeTempDir('agentgate-mcp-home-'), AGENTGATE_URL: srv.url } },
      (error, stdout, stderr) => resolve({ code: error?.code ?? 0, stdout, stderr }));
  });
  assert.equal(out.code, 2);
  assert.equal(out.stdout, '');
  assert.match(out.stderr, /AGENTGATE_TOKEN/);
});

// ---- raw HTTP: the transport's rules ---------------------------------------------------------

async function rawPost(bearer, body, headers = {}) {
  const h = { 'Content-Type': 'application/json', Accept: 'application/json, text/event-stream', ...headers };
  if (bearer) h.Authorization = `Bearer ${bearer}`;
  return api(srv.url, 'POST', '/mcp', { body: typeof body === 'string' ? body : JSON.stringify(body), headers: h });
}

async function openSession(bearer, version = '2025-11-25') {
  const res = await rawPost(bearer, { jsonrpc: '2.0', id: 0, method: 'initialize', params: { protocolVersion: version } });
  assert.equal(res.status, 200, res.text);
  const session = res.headers.get('mcp-session-id');
  assert.match(session, /^mcs_/);
  return session;
}

test('HTTP: credentials, Origin, sessions and protocol versions', async () => {
  let res = await rawPost(null, { jsonrpc: '2.0', id: 1, method: 'initialize', params: { protocolVersion: '2025-11-25' } });
  assert.equal(res.status, 401);
  assert.match(res.headers.get('www-authenticate'), /^Bearer realm="agentgate"/);
  assert.equal(res.json.error.data.error, 'unauthorized');
  res = await rawPost('sk_ap_nope', { jsonrpc: '2.0', id: 1, method: 'ping' });
  assert.equal(res.status, 401);
  assert.match(res.headers.get('www-authenticate'), /invalid_token/);

  res = await rawPost(adminToken, { jsonrpc: '2.0', id: 1, method: 'initialize', params: { protocolVersion: '2025-11-25' } },
    { Origin: 'https://evil.example' });
  assert.equal(res.status, 403);
  res = await rawPost(adminToken, { jsonrpc: '2.0', id: 1, method: 'initialize', params: { protocolVersion: '2025-11-25' } },
    { Origin: 'http://localhost:6274' });
  assert.equal(res.status, 200, 'a local inspector may call a local server');

  const session = await openSession(adminToken);
  res = await rawPost(adminToken, { jsonrpc: '2.0', id: 2, method: 'ping' });
  assert.equal(res.status, 400, 'no Mcp-Session-Id');
  assert.equal(res.json.id, 2);
  res = await rawPost(adminToken, { jsonrpc: '2.0', id: 2, method: 'ping' }, { 'Mcp-Session-Id': 'mcs_nope' });
  assert.equal(res.status, 404);
  assert.equal(res.json.error.code, -32001);
  // Another credential cannot ride on it.
  const agent = await registerAgent(srv.url);
  res = await rawPost(agent.secret, { jsonrpc: '2.0', id: 2, method: 'ping' }, { 'Mcp-Session-Id': session });
  assert.equal(res.status, 404);
  res = await rawPost(adminToken, { jsonrpc: '2.0', id: 2, method: 'ping' },
    { 'Mcp-Session-Id': session, 'MCP-Protocol-Version': '2099-01-01' });
  assert.equal(res.status, 400);
  assert.match(res.json.error.message, /Unsupported protocol version/);
  res = await rawPost(adminToken, { jsonrpc: '2.0', id: 2, method: 'ping' },
    { 'Mcp-Session-Id': session, 'MCP-Protocol-Version': '2025-11-25' });
  assert.equal(res.status, 200);
  assert.deepEqual(res.json, { jsonrpc: '2.0', id: 2, result: {} });

  // Only-SSE clients get an event stream; HTML-only ones get 406; text/plain bodies 415.
  res = await rawPost(adminToken, { jsonrpc: '2.0', id: 3, method: 'ping' }, { 'Mcp-Session-Id': session, Accept: 'text/event-stream' });
  assert.equal(res.status, 200);
  assert.match(res.headers.get('content-type'), /^text\/event-stream/);
  assert.equal(res.text, 'event: message\ndata: {"jsonrpc":"2.0","id":3,"result":{}}\n\n');
  res = await rawPost(adminToken, { jsonrpc: '2.0', id: 3, method: 'ping' }, { 'Mcp-Session-Id': session, Accept: 'text/html' });
  assert.equal(res.status, 406);
  res = await rawPost(adminToken, 'x', { 'Mcp-Session-Id': session, 'Content-Type': 'text/plain' });
  assert.equal(res.status, 415);

  // GET: no stream offered (405, the specification's answer). DELETE ends the session.
  const get = await api(srv.url, 'GET', '/mcp', { bearer: adminToken, headers: { Accept: 'text/event-stream' } });
  assert.equal(get.status, 405);
  assert.equal(get.headers.get('allow'), 'POST, DELETE, OPTIONS');
  const del = await api(srv.url, 'DELETE', '/mcp', { bearer: adminToken, headers: { 'Mcp-Session-Id': session } });
  assert.equal(del.status, 204);
  res = await rawPost(adminToken, { jsonrpc: '2.0', id: 4, method: 'ping' }, { 'Mcp-Session-Id': session });
  assert.equal(res.status, 404);

  // CORS: a browser client can read the session id.
  const pre = await fetch(`${srv.url}/mcp`, {
    method: 'OPTIONS',
    headers: { Origin: 'http://localhost:6274', 'Access-Control-Request-Method': 'POST', 'Access-Control-Request-Headers': 'mcp-session-id, mcp-protocol-version, authorization, content-type' },
  });
  assert.equal(pre.status, 204);
  assert.match(pre.headers.get('access-control-allow-headers'), /mcp-session-id/i);
  res = await rawPost(adminToken, { jsonrpc: '2.0', id: 1, method: 'initialize', params: { protocolVersion: '2025-11-25' } });
  assert.match(res.headers.get('access-control-expose-headers'), /Mcp-Session-Id/);
});

test('--mcp-origin: a bad value stops the server with a clear message; a good one admits that origin', async () => {
  for (const bad of ['https://app.example.com/path', 'app.example.com', 'ftp://app.example.com', 'https://']) {
    const out = await new Promise((resolve) => {
      execFile(BINARY, ['serve', '--listen', '127.0.0.1:0', '--data-dir', makeTempDir(), '--mcp-origin', bad],
        { timeout: 10000 }, (error, stdout, stderr) => resolve({ code: error?.code ?? 0, stderr }));
    });
    assert.equal(out.code, 2, `--mcp-origin ${bad}`);
    assert.match(out.stderr, /--mcp-origin must be an origin like https:\/\/app\.example\.com/);
  }
  const other = await startServer({ args: ['--mcp-origin', 'https://App.Example.com/'] });
  try {
    const init = { jsonrpc: '2.0', id: 1, method: 'initialize', params: { protocolVersion: '2025-11-25' } };
    const token = (await api(other.url, 'POST', '/v1/tokens', {
      cookie: await signIn(other.url, uniqueEmail('origin')), body: { name: 'o', abilities: ['*'] },
    })).json.token;
    const post = (origin) => api(other.url, 'POST', '/mcp', {
      bearer: token, body: JSON.stringify(init), headers: { 'Content-Type': 'application/json', Origin: origin },
    });
    assert.equal((await post('https://app.example.com')).status, 200);
    assert.equal((await post('https://app.example.com:8443')).status, 403);
    assert.equal((await post('https://evil.example.com')).status, 403);
  } finally {
    await other.stop();
  }
});

test('HTTP: malformed JSON-RPC and batch misuse get the specification\'s errors; the server keeps serving', async () => {
  const session = await openSession(adminToken);
  const s = { 'Mcp-Session-Id': session };
  const cases = [
    ['{"jsonrpc":"2.0","id":1,"method":"ping"', 400, -32700],
    ['', 400, -32700],
    ['{"jsonrpc":"2.0","id":1}', 400, -32600],
    ['{"jsonrpc":"1.0","id":1,"method":"ping"}', 400, -32600],
    ['{"jsonrpc":"2.0","id":{"a":1},"method":"ping"}', 400, -32600],
    ['{"jsonrpc":"2.0","id":1,"method":"ping","params":[1,2]}', 400, -32600],
    ['[{"jsonrpc":"2.0","id":1,"method":"ping"}]', 400, -32600],  // no batches in 2025-11-25
    ['[]', 400, -32600],
    ['[{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-03-26"}}]', 400, -32600],
    ['{"jsonrpc":"2.0","id":1,"method":"resources/read","params":{"uri":"x"}}', 200, -32601],
    ['{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"nope"}}', 200, -32602],
    ['{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"get_stats","arguments":"x"}}', 200, -32602],
    [`{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"${'x'.repeat(5000)}"}}`, 200, -32602],
    [`${'['.repeat(5000)}${']'.repeat(5000)}`, 400, -32700],
  ];
  for (const [body, status, code] of cases) {
    const res = await rawPost(adminToken, body, s);
    assert.equal(res.status, status, `${body.slice(0, 80)} -> ${res.status} ${res.text.slice(0, 200)}`);
    assert.equal(res.json.error.code, code, body.slice(0, 80));
  }
  // Notifications: 202 with no body.
  const note = await rawPost(adminToken, { jsonrpc: '2.0', method: 'notifications/initialized' }, s);
  assert.equal(note.status, 202);
  assert.equal(note.text, '');
  // A 2025-03-26 session takes batches.
  const old = await openSession(adminToken, '2025-03-26');
  const batch = await rawPost(adminToken, [
    { jsonrpc: '2.0', id: 'a', method: 'ping' },
    { jsonrpc: '2.0', method: 'notifications/initialized' },
    { jsonrpc: '2.0', id: 'b', method: 'tools/call', params: { name: 'get_stats', arguments: {} } },
  ], { 'Mcp-Session-Id': old, 'MCP-Protocol-Version': '2025-03-26' });
  assert.equal(batch.status, 200, batch.text);
  assert.deepEqual(batch.json.map((a) => a.id), ['a', 'b']);
  assert.equal(batch.json[1].result.isError, false);
  // Still serving.
  const health = await api(srv.url, 'GET', '/health');
  assert.equal(health.status, 200);
  const ping = await rawPost(adminToken, { jsonrpc: '2.0', id: 9, method: 'ping' }, s);
  assert.equal(ping.status, 200);
});

test('/.well-known/mcp.json describes the server, its transports and its tools', async () => {
  const res = await api(srv.url, 'GET', '/.well-known/mcp.json');
  assert.equal(res.status, 200);
  assert.equal(res.json.name, 'agentgate');
  assert.equal(res.json.endpoint, `${srv.url}/mcp`);
  assert.deepEqual(res.json.transports.map((t) => t.type), ['streamable-http', 'stdio']);
  const { client } = await httpClient(adminToken);
  const { tools } = await client.listTools();
  assert.deepEqual(res.json.tools.map((t) => t.name), tools.map((t) => t.name));
  await client.close();
});

test('the MCP Inspector CLI lists the tools over both transports, with no schema errors', async () => {
  const inspector = path.join(here, 'node_modules/@modelcontextprotocol/inspector/clients/launcher/build/index.js');
  const home = makeTempDir('agentgate-inspector-home-');
  const run = (args) => new Promise((resolve) => {
    execFile(process.execPath, [inspector, '--cli', ...args], {
      env: { PATH: process.env.PATH, HOME: home, MCP_CATALOG_PATH: path.join(home, 'mcp.json') },
      timeout: 60000,
      maxBuffer: 16 * 1024 * 1024,
    }, (error, stdout, stderr) => resolve({ code: error?.code ?? 0, stdout, stderr }));
  });
  const viaHttp = await run([`${srv.url}/mcp`, '--transport', 'http', '--header', `Authorization: Bearer ${adminToken}`,
    '--method', 'tools/list', '--strict']);
  assert.equal(viaHttp.code, 0, viaHttp.stderr);
  const names = JSON.parse(viaHttp.stdout).tools.map((t) => t.name);
  assert.ok(names.includes('check_permission'));
  assert.doesNotMatch(viaHttp.stderr, /^Error:/m, 'no error-severity schema problems');

  const viaStdio = await run([BINARY, 'mcp', '-e', `AGENTGATE_URL=${srv.url}`, '-e', `AGENTGATE_TOKEN=${adminToken}`,
    '--method', 'tools/list']);
  assert.equal(viaStdio.code, 0, viaStdio.stderr);
  assert.deepEqual(JSON.parse(viaStdio.stdout).tools.map((t) => t.name), names);

  const call = await run([`${srv.url}/mcp`, '--transport', 'http', '--header', `Authorization: Bearer ${adminToken}`,
    '--method', 'tools/call', '--tool-name', 'get_stats']);
  assert.equal(call.code, 0, call.stderr);
  assert.equal(typeof JSON.parse(call.stdout).structuredContent.agents_registered, 'number');
});

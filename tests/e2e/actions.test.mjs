// Actions and /act (issue 6) against small local vendor APIs (lib/vendor.mjs) that record what
// they receive: the three action scopes and the override rule, the CRUD of /actions, intent
// ranking, inputSchema errors, placeholders and default input placement as the app saw them,
// every egress trick refused, retries on 429 (honouring Retry-After) and on 401 (one refresh),
// the deadline (504), run logs with their redacted exchanges, the action_run.* webhooks, agents
// acting under their grants (max_, allowed_, budgets that concurrent runs never overspend,
// revocation, denials in the granter's activity), export/import into a fresh server, and no
// secret in any run log, webhook, server log or database file.
//
// Redirects and "another host": only `localhost` (and the IP literals) resolve here, so the
// connector of the redirecting vendor uses http://localhost:PORT and "another host" is
// 127.0.0.1. Ports are not part of a host or a registrable domain, so a redirect to
// localhost:OTHER_PORT stays within it. Redirects between two real subdomains of one registrable
// domain (api.example.com → files.example.com) are left to the C++ unit tests of
// engine::SameRegistrableDomain: no such names resolve on this machine.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import jwt from 'jsonwebtoken';
import { Webhook } from 'standardwebhooks';
import { api, registerAgent, signIn, startServer, uniqueEmail } from './lib/server.mjs';
import { eventually, expectCleanLogs, expectError } from './lib/expect.mjs';
import { validateWebhook } from './lib/openapi.mjs';
import {
  startCrudVendor, startFlakyVendor, startRecorder, startRedirectVendor, startRefreshVendor,
  startSlowVendor,
} from './lib/vendor.mjs';

// Credentials the vendors accept; none may ever show up in a run log, a webhook, the server's
// log or its database.
const KEY_A1 = 'crm-key-a1-5f1d0c9e8b7a6f5e4d3c';
const KEY_A2 = 'crm-key-a2-0a9b8c7d6e5f4a3b2c1d';
const KEY_B = 'crm-key-bearer-7e6d5c4b3a2f1e0d';
const KEY_Q = 'crm-key-query-3c2b1a0f9e8d7c6b';
const KEY_ALICE = 'crm-key-alice-9d8c7b6a5f4e3d2c';
const KEY_FRESH = 'crm-key-fresh-1b2c3d4e5f6a7b8c';
const FLAKY_KEY = 'flaky-key-2e3f4a5b6c7d8e9f0a';
const SLOW_KEY = 'slow-key-6f7a8b9c0d1e2f3a4b';
const REDIR_KEY = 'redir-key-8a9b0c1d2e3f4a5b6c';
const CLIENT_SECRET = 'oauth-client-secret-4d5e6f7a8b9c0d1e';

const RUN_ID = /^run_[0-9A-Za-z_-]+$/;

describe('actions and /act through connections', () => {
  let srv, adminCookie, aliceCookie, aliceId, creds, hookSecret;
  let crm, flaky, refresh, slow, redirect, landing, hooks;
  const conn = {};  // connectionKey -> connection JSON (tenant 'acme')
  const agentSecrets = [];
  const runs = {};  // names -> actionRunId, for later tests

  const sign = (claims) => jwt.sign({ workspaceKey: creds.workspaceKey, ...claims }, creds.workspaceSecret,
    { algorithm: 'HS256', expiresIn: '10m' });
  const manager = () => sign({ isAdmin: true });
  const tenant = (key = 'acme') => sign({ tenantKey: key });
  const call = (method, p, bearer, body, headers) => api(srv.url, method, p, { bearer, body, headers });
  const act = (body, token = tenant(), headers) => call('POST', '/act', token, body, headers);

  async function createAction(spec) {
    const res = await call('POST', '/actions', manager(), spec);
    assert.equal(res.status, 201, res.text);
    return res.json;
  }
  function expectRunError(res, status, code, opts) {
    const j = expectError(res, status, code, opts);
    assert.match(j.actionRunId ?? '', RUN_ID, `an error of a run names it: ${res.text}`);
    return j;
  }
  function expectOk(res) {
    assert.equal(res.status, 200, res.text);
    assert.match(res.json.actionRunId, RUN_ID);
    return res.json;
  }
  async function connect(token, body) {
    const res = await call('POST', '/connections', token, body);
    assert.equal(res.status, 201, res.text);
    assert.equal(res.json.state, 'READY');
    return res.json;
  }
  async function connector(spec) {
    const res = await call('POST', '/connectors', manager(), spec);
    assert.equal(res.status, 201, res.text);
    return res.json;
  }

  before(async () => {
    srv = await startServer({ args: ['--allow-private-egress', '--no-rate-limits', '--act-timeout', '2s'] });
    adminCookie = await signIn(srv.url, uniqueEmail('actions-admin'));  // the first: an admin
    const got = await api(srv.url, 'GET', '/v1/credentials', { cookie: adminCookie });
    assert.equal(got.status, 200, got.text);
    creds = got.json;
    aliceCookie = await signIn(srv.url, uniqueEmail('actions-alice'));
    const session = await api(srv.url, 'GET', '/auth/session', { cookie: aliceCookie });
    aliceId = session.json.user_id;

    crm = await startCrudVendor({ secrets: [KEY_A1, KEY_A2, KEY_B, KEY_Q, KEY_ALICE, KEY_FRESH] });
    flaky = await startFlakyVendor({ failures: 1, status: 429, retryAfter: '1' });
    refresh = await startRefreshVendor({ clientId: 'actions-client', clientSecret: CLIENT_SECRET });
    slow = await startSlowVendor({ delayMs: 5000 });
    redirect = await startRedirectVendor();
    landing = await startRecorder();
    hooks = await startRecorder();

    const hook = await api(srv.url, 'POST', '/v1/webhooks', {
      cookie: adminCookie,
      body: { url: `${hooks.url}/hooks`, events: ['*'] },
    });
    assert.equal(hook.status, 201, hook.text);
    hookSecret = hook.json.secret;

    await connector({ key: 'crm', name: 'CRM (key header)', baseUrl: `${crm.url}/v1`,
      auth: { type: 'api_key', header: 'X-Api-Key', template: '{apiKey}' } });
    await connector({ key: 'crm-bearer', name: 'CRM (bearer)', baseUrl: `${crm.url}/v2`,
      auth: { type: 'api_key' } });
    await connector({ key: 'crm-query', name: 'CRM (query key)', baseUrl: `${crm.url}/v3`,
      auth: { type: 'api_key', in: 'query', name: 'api_key' } });
    await connector({ key: 'flaky', name: 'Flaky', baseUrl: flaky.url,
      auth: { type: 'api_key', header: 'X-Api-Key', template: '{apiKey}' } });
    await connector({ key: 'slow', name: 'Slow', baseUrl: slow.url,
      auth: { type: 'api_key', header: 'X-Api-Key', template: '{apiKey}' } });
    await connector({ key: 'redirector', name: 'Redirector', baseUrl: redirect.localhostUrl,
      auth: { type: 'api_key', header: 'X-Api-Key', template: '{apiKey}' } });
    await connector({ key: 'refreshing', name: 'Refreshing', baseUrl: refresh.apiBaseUrl,
      auth: { type: 'oauth2', authorizeUrl: refresh.authorizeUrl, tokenUrl: refresh.tokenUrl } });
    const integration = await call('POST', '/integrations', manager(), {
      connectorKey: 'refreshing', parameters: { clientId: refresh.clientId, clientSecret: CLIENT_SECRET },
    });
    assert.equal(integration.status, 201, integration.text);

    const t = tenant();
    conn['crm-1'] = await connect(t, { connectorKey: 'crm', connectionKey: 'crm-1', credentials: { apiKey: KEY_A1 } });
    conn['crm-2'] = await connect(t, { connectorKey: 'crm', connectionKey: 'crm-2', credentials: { apiKey: KEY_A2 } });
    conn['crm-b'] = await connect(t, { connectorKey: 'crm-bearer', connectionKey: 'crm-b', credentials: { apiKey: KEY_B } });
    conn['crm-q'] = await connect(t, { connectorKey: 'crm-query', connectionKey: 'crm-q', credentials: { apiKey: KEY_Q } });
    conn['flaky-1'] = await connect(t, { connectorKey: 'flaky', connectionKey: 'flaky-1', credentials: { apiKey: FLAKY_KEY } });
    conn['slow-1'] = await connect(t, { connectorKey: 'slow', connectionKey: 'slow-1', credentials: { apiKey: SLOW_KEY } });
    conn['redir-1'] = await connect(t, { connectorKey: 'redirector', connectionKey: 'redir-1', credentials: { apiKey: REDIR_KEY } });
    conn['oauth-1'] = await connect(t, {
      integrationKey: 'refreshing', connectionKey: 'oauth-1',
      credentials: { accessToken: refresh.importedAccessToken, refreshToken: refresh.refreshToken, expiresIn: '3600' },
    });
  });

  after(async () => {
    for (const v of [crm, flaky, refresh, slow, redirect, landing, hooks]) await v?.close();
    if (srv) {
      await srv.stop();
      expectCleanLogs(srv);
    }
  });

  // -------------------------------------------------------------------------------------------
  // Scopes, the override rule, CRUD

  let universal, integrationLevel, connectionLevel;

  test('POST /actions makes universal, integration-level and connection-level actions; a tenant may not', async () => {
    universal = await createAction({ key: 'get-marker', name: 'Get marker', description: 'Reads the marker',
      config: { request: { method: 'GET', path: '/marker/universal' } } });
    assert.match(universal.id, /^act_/);
    assert.equal(universal.key, 'get-marker');
    assert.equal(universal.name, 'Get marker');
    assert.equal(universal.type, 'api-request-to-external-app');
    assert.equal(universal.state, 'READY');
    assert.equal(universal.layer, 'universal');
    assert.equal(universal.integrationId, null);
    assert.equal(universal.integrationKey, null);
    assert.equal(universal.connectionId, null);
    assert.equal(universal.isArchived, false);
    assert.equal(universal.archivedAt, null);
    assert.equal(universal.config.request.path, '/marker/universal');
    assert.ok(Math.abs(Date.parse(universal.createdAt) - Date.now()) < 60000);

    integrationLevel = await createAction({ key: 'get-marker', integrationKey: 'crm',
      config: { request: { method: 'GET', path: '/marker/integration' } } });
    assert.equal(integrationLevel.layer, 'integration');
    assert.equal(integrationLevel.integrationKey, 'crm');
    assert.match(integrationLevel.integrationId, /^int_/);
    assert.equal(integrationLevel.connectionId, null);
    assert.equal(integrationLevel.name, 'get-marker', 'the name defaults to the key');

    connectionLevel = await createAction({ key: 'get-marker', connectionId: conn['crm-1'].id,
      config: { request: { method: 'GET', path: '/marker/connection' } } });
    assert.equal(connectionLevel.layer, 'connection');
    assert.equal(connectionLevel.connectionId, conn['crm-1'].id);
    assert.notEqual(connectionLevel.id, integrationLevel.id);

    // A tenant token may not create actions.
    const spec = { key: 'by-tenant', config: { request: { path: '/marker/x' } } };
    expectError(await call('POST', '/actions', tenant(), spec), 403, 'forbidden');
    // The same key in the same scope is taken.
    expectError(await call('POST', '/actions', manager(), { key: 'get-marker',
      config: { request: { path: '/marker/again' } } }), 409, 'conflict');
    expectError(await call('POST', '/actions', manager(), { key: 'get-marker', integrationKey: 'crm',
      config: { request: { path: '/marker/again' } } }), 409, 'conflict');
    // Not this issue's: building from an intent, and run-javascript.
    expectError(await call('POST', '/actions', manager(), { key: 'from-intent', intent: 'create a contact' }),
      400, 'invalid_field');
    expectError(await call('POST', '/actions', manager(), { key: 'js', type: 'run-javascript',
      config: { request: { path: '/x' } } }), 400, 'invalid_field');
    const noConfig = await call('POST', '/actions', manager(), { key: 'no-config' });
    assert.equal(noConfig.status, 400, noConfig.text);
    assert.match(noConfig.json.message, /config/);
    // A template may not set the credential or leave the base URL.
    expectError(await call('POST', '/actions', manager(), { key: 'sets-auth',
      config: { request: { path: '/x', headers: { Authorization: 'Bearer mine' } } } }), 400, 'invalid_field');
    for (const p of ['http://evil.example/x', '//evil.example/x', '/../admin']) {
      const r = await call('POST', '/actions', manager(), { key: 'leaves', config: { request: { path: p } } });
      assert.ok([400, 403].includes(r.status), `${p}: ${r.status} ${r.text}`);
      assert.ok(['invalid_field', 'egress_denied'].includes(r.json?.error), `${p}: ${r.text}`);
    }
  });

  test('dispatch by key: the connection\'s own action, then its integration\'s, then the universal one', async () => {
    const before = crm.requests.length;
    const a = expectOk(await act({ key: 'get-marker', connectionKey: 'crm-1' }));
    assert.deepEqual(a.output, { marker: 'connection' });
    assert.equal(a.status, 200);
    assert.equal(a.connectionId, conn['crm-1'].id);
    const b = expectOk(await act({ key: 'get-marker', connectionKey: 'crm-2' }));
    assert.deepEqual(b.output, { marker: 'integration' });
    const c = expectOk(await act({ key: 'get-marker', connectionId: conn['crm-b'].id }));
    assert.deepEqual(c.output, { marker: 'universal' });
    runs.marker = c.actionRunId;
    const seen = crm.requests.slice(before);
    assert.deepEqual(seen.map((r) => r.url),
      ['/v1/marker/connection', '/v1/marker/integration', '/v2/marker/universal']);
    assert.equal(seen[0].headers['x-api-key'], KEY_A1);
    assert.equal(seen[1].headers['x-api-key'], KEY_A2);
    assert.equal(seen[2].headers.authorization, `Bearer ${KEY_B}`);

    // POST /actions/:selector/run resolves the same way.
    const run = await call('POST', '/actions/get-marker/run', tenant(), { connectionKey: 'crm-2' });
    assert.equal(expectOk(run).output.marker, 'integration');

    // GET by key: the universal one without a hint; hints pick the others.
    assert.equal((await call('GET', '/actions/get-marker', tenant())).json.id, universal.id);
    assert.equal((await call('GET', '/actions/get-marker?integrationKey=crm', tenant())).json.id, integrationLevel.id);
    assert.equal((await call('GET', `/actions/get-marker?connectionId=${conn['crm-1'].id}`, tenant())).json.id,
      connectionLevel.id);
    assert.equal((await call('GET', `/actions/${integrationLevel.id}`, tenant())).json.key, 'get-marker');

    // By id: a connection-level action runs through its own connection; an integration-level one
    // needs a connection of its integration.
    assert.equal(expectOk(await act({ id: connectionLevel.id })).output.marker, 'connection');
    assert.equal(expectOk(await act({ id: integrationLevel.id, connectionKey: 'crm-2' })).output.marker, 'integration');
    expectRunError(await act({ id: integrationLevel.id, connectionKey: 'crm-b' }), 400, 'invalid_field');
    assert.equal(expectOk(await act({ id: universal.id, connectionKey: 'crm-1' })).output.marker, 'universal');

    // Lists: a connection's filter shows its own action; another integration's does not.
    const own = await call('GET', `/actions?connectionId=${conn['crm-1'].id}`, tenant());
    assert.equal(own.status, 200, own.text);
    assert.ok(own.json.items.some((x) => x.id === connectionLevel.id), own.text);
    const other = await call('GET', '/actions?integrationKey=crm-bearer', tenant());
    assert.equal(other.status, 200, other.text);
    assert.ok(!other.json.items.some((x) => x.id === integrationLevel.id || x.id === connectionLevel.id), other.text);
    const all = await call('GET', '/actions?limit=1000', manager());
    for (const x of [universal, integrationLevel, connectionLevel]) {
      assert.ok(all.json.items.some((y) => y.id === x.id), `the manager lists ${x.id}`);
    }

    // Another tenant's connection-level action is not theirs to run.
    const stranger = tenant('stranger');
    await connect(stranger, { connectorKey: 'crm', connectionKey: 'crm-s', credentials: { apiKey: KEY_A2 } });
    const s = await act({ id: connectionLevel.id }, stranger);
    assert.ok([403, 404].includes(s.status), s.text);

    // Unknown action, inline code, two things to run at once.
    expectRunError(await act({ key: 'no-such-action', connectionKey: 'crm-1' }), 404, 'action_not_found');
    expectError(await act({ code: 'return 1', connectionKey: 'crm-1' }), 400, 'invalid_field');
    const both = await act({ key: 'get-marker', api: { path: '/marker/x' }, connectionKey: 'crm-1' });
    assert.equal(both.status, 400, both.text);
  });

  test('GET, PATCH (merge), PUT (replace), DELETE (archive) and restore an action', async () => {
    const made = await createAction({ key: 'crud-demo', name: 'CRUD demo', description: 'First words',
      config: { request: { method: 'GET', path: '/marker/first' } },
      inputSchema: { type: 'object', properties: { q: { type: 'string' } } },
      outputSchema: { type: 'object' } });
    const byKey = await call('GET', '/actions/crud-demo', tenant());
    assert.equal(byKey.status, 200, byKey.text);
    assert.deepEqual(byKey.json, made);
    const byId = await call('GET', `/actions/${made.id}`, tenant());
    assert.deepEqual(byId.json, made);

    const patched = await call('PATCH', `/actions/${made.id}`, manager(), { description: 'Second words' });
    assert.equal(patched.status, 200, patched.text);
    assert.equal(patched.json.description, 'Second words');
    assert.equal(patched.json.name, 'CRUD demo');
    assert.deepEqual(patched.json.config, made.config);
    assert.deepEqual(patched.json.inputSchema, made.inputSchema);
    assert.ok(Date.parse(patched.json.updatedAt) >= Date.parse(made.updatedAt));
    const cleared = await call('PATCH', '/actions/crud-demo', manager(), { inputSchema: null, outputSchema: null });
    assert.equal(cleared.status, 200, cleared.text);
    assert.equal(cleared.json.inputSchema, null);
    assert.equal(cleared.json.outputSchema, null);

    const replaced = await call('PUT', `/actions/${made.id}`, manager(), {
      key: 'crud-demo', name: 'Replaced', config: { request: { method: 'GET', path: '/marker/replaced' } },
    });
    assert.equal(replaced.status, 200, replaced.text);
    assert.equal(replaced.json.id, made.id);
    assert.equal(replaced.json.name, 'Replaced');
    assert.equal(replaced.json.description, '', 'PUT replaces: what is not given is gone');
    assert.equal(replaced.json.layer, 'universal');
    assert.equal(replaced.json.config.request.path, '/marker/replaced');
    const rescoped = await call('PUT', `/actions/${made.id}`, manager(), {
      key: 'crud-demo', integrationKey: 'crm', config: { request: { path: '/marker/x' } } });
    assert.equal(rescoped.status, 400, `the scope never changes: ${rescoped.text}`);
    assert.equal(expectOk(await act({ key: 'crud-demo', connectionKey: 'crm-1' })).output.marker, 'replaced');

    // Tenants may read but not write.
    expectError(await call('PATCH', `/actions/${made.id}`, tenant(), { name: 'x' }), 403, 'forbidden');
    expectError(await call('PUT', `/actions/${made.id}`, tenant(), { key: 'crud-demo',
      config: { request: { path: '/x' } } }), 403, 'forbidden');
    expectError(await call('DELETE', `/actions/${made.id}`, tenant()), 403, 'forbidden');
    expectError(await call('POST', `/actions/${made.id}/restore`, tenant()), 403, 'forbidden');

    const archived = await call('DELETE', '/actions/crud-demo', manager());
    assert.equal(archived.status, 200, archived.text);
    assert.equal(archived.json.isArchived, true);
    assert.ok(Math.abs(Date.parse(archived.json.archivedAt) - Date.now()) < 60000);
    const listed = await call('GET', '/actions?limit=1000', tenant());
    assert.ok(!listed.json.items.some((x) => x.id === made.id), 'archived actions are not listed');
    const withArchived = await call('GET', '/actions?limit=1000&includeArchived=1', tenant());
    assert.ok(withArchived.json.items.some((x) => x.id === made.id && x.isArchived));
    expectRunError(await act({ key: 'crud-demo', connectionKey: 'crm-1' }), 404, 'action_not_found');
    expectRunError(await act({ id: made.id, connectionKey: 'crm-1' }), 404, 'action_not_found');

    const restored = await call('POST', `/actions/${made.id}/restore`, manager());
    assert.equal(restored.status, 200, restored.text);
    assert.equal(restored.json.isArchived, false);
    assert.equal(restored.json.archivedAt, null);
    assert.equal(expectOk(await act({ key: 'crud-demo', connectionKey: 'crm-1' })).output.marker, 'replaced');

    expectError(await call('GET', '/actions/act_doesnotexist0000', tenant()), 404, 'action_not_found');
    expectError(await call('GET', '/actions/no-such-key', tenant()), 404, 'action_not_found');
    // A key with only integration-level actions and no hint is ambiguous.
    await createAction({ key: 'only-int', integrationKey: 'crm', config: { request: { path: '/marker/a' } } });
    await createAction({ key: 'only-int', integrationKey: 'crm-bearer', config: { request: { path: '/marker/b' } } });
    expectError(await call('GET', '/actions/only-int', tenant()), 409, 'conflict');
    assert.equal((await call('GET', '/actions/only-int?integrationKey=crm-bearer', tenant())).json.config.request.path,
      '/marker/b');
  });

  test('GET /actions?intent= ranks by relevance over key, name and description; limit and cursor page', async () => {
    await createAction({ key: 'create-contact', name: 'Create contact', description: 'Adds a new contact to the CRM',
      config: { request: { method: 'POST', path: '/contacts' } },
      inputSchema: { type: 'object', properties: { name: { type: 'string' }, email: { type: 'string' } } } });
    await createAction({ key: 'list-contacts', name: 'List contacts', description: 'Lists the contacts, filtered',
      config: { request: { method: 'GET', path: '/contacts' } } });
    await createAction({ key: 'delete-contact', name: 'Delete contact', description: 'Removes one contact',
      config: { request: { method: 'DELETE', path: '/contacts/{{input.id}}' } } });
    await createAction({ key: 'send-invoice', name: 'Send invoice', description: 'Emails an invoice to a customer',
      config: { request: { method: 'POST', path: '/echo' } } });

    const create = await call('GET', `/actions?intent=${encodeURIComponent('create a new contact')}`, tenant());
    assert.equal(create.status, 200, create.text);
    assert.equal(create.json.items[0]?.key, 'create-contact', create.text);
    assert.ok(!create.json.items.some((x) => x.key === 'send-invoice'), 'non-matching actions are left out');
    assert.ok(create.json.items.some((x) => x.key === 'delete-contact'), 'weaker matches still come');
    assert.equal(create.json.cursor, null);
    const invoice = await call('GET', `/actions?intent=${encodeURIComponent('email the invoice')}`, tenant());
    assert.equal(invoice.json.items[0]?.key, 'send-invoice', invoice.text);
    const none = await call('GET', `/actions?intent=${encodeURIComponent('quantum teleportation')}`, tenant());
    assert.deepEqual(none.json.items, []);

    const page1 = await call('GET', '/actions?limit=2', tenant());
    assert.equal(page1.json.items.length, 2);
    assert.equal(typeof page1.json.cursor, 'string');
    const page2 = await call('GET', `/actions?limit=2&cursor=${encodeURIComponent(page1.json.cursor)}`, tenant());
    assert.equal(page2.status, 200, page2.text);
    const ids1 = page1.json.items.map((x) => x.id);
    assert.ok(page2.json.items.length >= 1 && page2.json.items.every((x) => !ids1.includes(x.id)));
    for (const bad of ['limit=0', 'limit=1001', 'limit=x']) {
      expectError(await call('GET', `/actions?${bad}`, tenant()), 400, 'invalid_field');
    }
  });

  // -------------------------------------------------------------------------------------------
  // Input

  test('input is validated against inputSchema: each keyword names the field, carries actionRunId, sends nothing', async () => {
    await createAction({ key: 'validated', config: { request: { method: 'POST', path: '/echo' } },
      inputSchema: {
        type: 'object',
        properties: {
          amount: { type: 'number', minimum: 1, maximum: 100 },
          currency: { type: 'string', enum: ['usd', 'eur'] },
          name: { type: 'string', minLength: 2, maxLength: 10 },
          code: { type: 'string', pattern: '^[A-Z]{3}$' },
          tags: { type: 'array', items: { type: 'string' } },
          count: { type: 'integer' },
        },
        required: ['amount'],
        additionalProperties: false,
      } });
    const cases = [
      ['type', { amount: 'ten' }, ['amount']],
      ['integer type', { amount: 5, count: 1.5 }, ['count']],
      ['required', { currency: 'usd' }, ['amount']],
      ['enum', { amount: 5, currency: 'gbp' }, ['currency']],
      ['minimum', { amount: 0 }, ['amount']],
      ['maximum', { amount: 101 }, ['input.amount', '100']],
      ['minLength', { amount: 5, name: 'a' }, ['name']],
      ['maxLength', { amount: 5, name: 'abcdefghijk' }, ['name']],
      ['pattern', { amount: 5, code: 'abc' }, ['code']],
      ['items', { amount: 5, tags: ['ok', 7] }, ['tags']],
      ['additionalProperties', { amount: 5, bogus: true }, ['bogus']],
    ];
    const before = crm.requests.length;
    for (const [keyword, input, mentions] of cases) {
      const res = await act({ key: 'validated', connectionKey: 'crm-1', input });
      assert.equal(res.status, 400, `${keyword}: ${res.text}`);
      expectRunError(res, 400, 'invalid_input', { messageIncludes: mentions });
    }
    const viaRun = await call('POST', '/actions/validated/run', tenant(), { connectionKey: 'crm-1', input: { amount: 500 } });
    expectRunError(viaRun, 400, 'invalid_input', { messageIncludes: ['amount'] });
    assert.equal(crm.requests.length, before, 'an invalid input reaches no app');

    const good = { amount: 5, currency: 'eur', name: 'Ann', code: 'ABC', tags: ['x'], count: 2 };
    const ok = expectOk(await act({ key: 'validated', connectionKey: 'crm-1', input: good }));
    assert.deepEqual(ok.output.body, good);
    assert.deepEqual(crm.last().json, good);
    runs.validatedError = (await act({ key: 'validated', connectionKey: 'crm-1', input: { amount: -1 } })).json.actionRunId;
  });

  test('placeholders fill path, query, headers and body; unused input is the body (POST) or the query (GET, DELETE)', async () => {
    await createAction({ key: 'update-contact', config: { request: {
      method: 'PATCH', path: '/contacts/{{input.id}}', query: { source: '{{input.source}}' },
      headers: { 'X-Trace': 'trace-{{input.trace}}' },
      body: { name: '{{input.name}}', age: '{{input.age}}', note: 'hi {{ input.name }}', fixed: true },
    } } });
    expectOk(await act({ key: 'update-contact', connectionKey: 'crm-1',
      input: { id: 'a b', source: 'x&y=z', trace: 't1', name: 'Ann', age: 42 } }));
    let r = crm.last();
    assert.equal(r.method, 'PATCH');
    assert.equal(r.pathname, '/v1/contacts/a%20b', 'a path placeholder is encoded as one segment');
    assert.equal(r.query.get('source'), 'x&y=z');
    assert.deepEqual([...r.query.keys()], ['source']);
    assert.equal(r.headers['x-trace'], 'trace-t1');
    assert.equal(r.headers['x-api-key'], KEY_A1);
    assert.deepEqual(r.json, { name: 'Ann', age: 42, note: 'hi Ann', fixed: true },
      'a body string that is one placeholder keeps the JSON type');
    assert.match(r.headers['content-type'] ?? '', /^application\/json/);

    // POST without a body template: the input is the JSON body.
    const created = expectOk(await act({ key: 'create-contact', connectionKey: 'crm-1',
      input: { name: 'Bo', email: 'bo@example.com' } }));
    r = crm.last();
    assert.equal(r.method, 'POST');
    assert.equal(r.url, '/v1/contacts');
    assert.deepEqual(r.json, { name: 'Bo', email: 'bo@example.com' });
    assert.equal(created.status, 201);
    assert.equal(created.output.name, 'Bo');

    // Fields used by a placeholder are not repeated in the body.
    await createAction({ key: 'rename-contact', config: { request: { method: 'POST', path: '/contacts/{{input.id}}/rename' } } });
    expectOk(await act({ key: 'rename-contact', connectionKey: 'crm-1', input: { id: created.output.id, name: 'Bob' } }));
    r = crm.last();
    assert.equal(r.pathname, `/v1/contacts/${created.output.id}/rename`);
    assert.deepEqual(r.json, { name: 'Bob' });

    // GET without a query template: the input is the query string.
    const listed = expectOk(await act({ key: 'list-contacts', connectionKey: 'crm-1',
      input: { limit: 2, q: 'x y', vip: true, tag: ['a', 'b'] } }));
    r = crm.last();
    assert.equal(r.method, 'GET');
    assert.equal(r.pathname, '/v1/contacts');
    assert.equal(r.body, '', 'a GET has no body');
    assert.equal(r.query.get('limit'), '2');
    assert.equal(r.query.get('q'), 'x y');
    assert.equal(r.query.get('vip'), 'true');
    assert.deepEqual(r.query.getAll('tag'), ['a', 'b']);
    assert.ok(Array.isArray(listed.output.items));

    // DELETE: the placeholder in the path, the rest in the query.
    expectOk(await act({ key: 'delete-contact', connectionKey: 'crm-1', input: { id: created.output.id, hard: true } }));
    r = crm.last();
    assert.equal(r.method, 'DELETE');
    assert.equal(r.pathname, `/v1/contacts/${created.output.id}`);
    assert.deepEqual([...r.query.entries()], [['hard', 'true']]);

    // A placeholder naming a missing field is invalid_input naming it; nothing is sent.
    const before = crm.requests.length;
    expectRunError(await act({ key: 'update-contact', connectionKey: 'crm-1', input: { id: 'c1', source: 's', trace: 't', age: 1 } }),
      400, 'invalid_input', { messageIncludes: ['name'] });
    // Objects cannot become query parameters.
    expectRunError(await act({ key: 'list-contacts', connectionKey: 'crm-1', input: { filter: { a: 1 } } }),
      400, 'invalid_input', { messageIncludes: ['filter'] });
    assert.equal(crm.requests.length, before);
  });

  // -------------------------------------------------------------------------------------------
  // Egress

  test('egress: absolute URLs, path traversal (also through input), header injection and credential overrides are refused before anything is sent', async () => {
    const before = crm.requests.length;
    for (const p of ['http://127.0.0.1:1/x', 'https://evil.example/', '//evil.example/x', '/../admin',
      '/v1/../../admin', '/a/%2e%2e/b', '/a/%2E%2E/b', '/a/..%2fadmin', '/a/%2f%2fevil.example', '/a\\..\\b',
      '/./x', 'evil.example/x']) {
      const r = await act({ connectionKey: 'crm-1', api: { path: p } });
      assert.ok([400, 403].includes(r.status), `${p}: ${r.status} ${r.text}`);
      assert.ok(['invalid_field', 'egress_denied'].includes(r.json?.error), `${p}: ${r.text}`);
      assert.match(r.json.actionRunId ?? '', RUN_ID, `${p}: ${r.text}`);
    }
    expectRunError(await act({ connectionKey: 'crm-1', api: { path: '/../admin' } }), 403, 'egress_denied');

    // Through an input placeholder.
    await createAction({ key: 'get-contact', config: { request: { method: 'GET', path: '/contacts/{{input.id}}' } } });
    for (const id of ['..', '.']) {
      expectRunError(await act({ key: 'get-contact', connectionKey: 'crm-1', input: { id } }), 403, 'egress_denied');
    }
    for (const id of ['../admin', '../../v2/marker/x']) {
      const r = await act({ key: 'get-contact', connectionKey: 'crm-1', input: { id } });
      assert.ok([400, 403].includes(r.status), `${id}: ${r.status} ${r.text}`);
      assert.match(r.json.actionRunId ?? '', RUN_ID);
    }

    // Header injection, inline and through a placeholder.
    expectRunError(await act({ connectionKey: 'crm-1', api: { path: '/echo', headers: { 'X-Note': 'a\r\nX-Injected: yes' } } }),
      400, 'invalid_field');
    expectRunError(await act({ connectionKey: 'crm-1', api: { path: '/echo', headers: { 'X-Bad\r\nX-Injected': 'yes' } } }),
      400, 'invalid_field');
    await createAction({ key: 'traced', config: { request: { method: 'GET', path: '/echo', headers: { 'X-Trace': '{{input.trace}}' } } } });
    for (const trace of ['a\r\nX-Injected: yes', 'a\nAuthorization: Bearer evil', 'a\u0000b']) {
      const r = await act({ key: 'traced', connectionKey: 'crm-1', input: { trace } });
      assert.equal(r.status, 400, `${JSON.stringify(trace)}: ${r.text}`);
      assert.ok(['invalid_input', 'invalid_field'].includes(r.json.error), r.text);
      assert.match(r.json.actionRunId ?? '', RUN_ID);
    }

    // The caller may not set or shadow the credential (or other headers agentgate owns).
    for (const h of ['Authorization', 'authorization', 'X-Api-Key', 'x-API-key', 'Host', 'Cookie',
      'Proxy-Authorization', 'Content-Length', 'Transfer-Encoding']) {
      expectRunError(await act({ connectionKey: 'crm-1', api: { path: '/echo', headers: { [h]: 'mine' } } }),
        400, 'invalid_field', { messageIncludes: [h] });
    }
    await createAction({ key: 'shadow', config: { request: { method: 'GET', path: '/echo', headers: { 'X-Api-Key': 'mine' } } } });
    expectRunError(await act({ key: 'shadow', connectionKey: 'crm-1' }), 400, 'invalid_field');

    assert.equal(crm.requests.length, before, 'none of it reached the app');
    assert.ok(!crm.requests.some((r) => r.headers['x-injected'] !== undefined));
  });

  test('egress: redirects are followed within the host (and its registrable domain), refused to another host', async () => {
    const t = tenant();
    const go = (p = '/go') => act({ connectionKey: 'redir-1', api: { path: p } }, t);
    redirect.location = '/landing';
    const same = expectOk(await go());
    assert.deepEqual(same.output, { landed: true, path: '/landing' });
    assert.deepEqual(redirect.requests.slice(-2).map((r) => r.pathname), ['/go', '/landing']);

    // localhost on another port: the same host, so the same registrable domain.
    redirect.location = `${landing.localhostUrl}/landing`;
    const port = expectOk(await go());
    assert.deepEqual(port.output, { ok: true });
    assert.equal(landing.last()?.pathname, '/landing');

    // Another host: 127.0.0.1 is not localhost. Refused and recorded in the run.
    const landed = landing.requests.length;
    const redirected = redirect.requests.length;
    for (const where of [`${landing.url}/landing`, `${redirect.url}/landing`, 'http://evil.example/steal',
      `http://127.0.0.1:${srv.port}/v1/credentials`]) {
      redirect.location = where;
      const r = expectRunError(await go(), 403, 'egress_denied');
      assert.equal(r.connectionId, conn['redir-1'].id);
      if (where === `${landing.url}/landing`) runs.redirectDenied = r.actionRunId;
    }
    assert.equal(landing.requests.length, landed, 'nothing reached the other host');
    assert.equal(redirect.requests.length, redirected + 4, 'only the redirecting calls themselves');
    for (const status of [301, 303, 307, 308]) {
      redirect.status = status;
      redirect.location = `${landing.url}/landing`;
      expectRunError(await go(), 403, 'egress_denied');
    }
    redirect.status = 302;
    assert.equal(landing.requests.length, landed);

    const details = await call('GET', `/action-run-logs/${runs.redirectDenied}/details`, t);
    assert.equal(details.status, 200, details.text);
    assert.equal(details.json.status, 'error');
    assert.equal(details.json.error.error, 'egress_denied');
    const ex = details.json.details.exchanges;
    assert.ok(ex.length >= 1, details.text);
    assert.equal(ex[0].response.status, 302);
    assert.ok(!details.text.includes(REDIR_KEY));
  });

  test('egress: loopback and private addresses are refused without --allow-private-egress', async () => {
    const strict = await startServer({ args: ['--no-rate-limits'] });
    try {
      const cookie = await signIn(strict.url, uniqueEmail('strict-admin'));
      const c = (await api(strict.url, 'GET', '/v1/credentials', { cookie })).json;
      const s = (claims) => jwt.sign({ workspaceKey: c.workspaceKey, ...claims }, c.workspaceSecret,
        { algorithm: 'HS256', expiresIn: '5m' });
      const made = await api(strict.url, 'POST', '/connectors', { bearer: s({ isAdmin: true }), body: {
        key: 'crm', name: 'CRM', baseUrl: `${crm.url}/v1`,
        auth: { type: 'api_key', header: 'X-Api-Key', template: '{apiKey}' } } });
      assert.equal(made.status, 201, made.text);
      const action = await api(strict.url, 'POST', '/actions', { bearer: s({ isAdmin: true }), body: {
        key: 'get-marker', config: { request: { path: '/marker/strict' } } } });
      assert.equal(action.status, 201, action.text);
      const t = s({ tenantKey: 'acme' });
      const conn1 = await api(strict.url, 'POST', '/connections', { bearer: t, body: {
        connectorKey: 'crm', connectionKey: 'crm-1', credentials: { apiKey: KEY_A1 } } });
      assert.equal(conn1.status, 201, conn1.text);
      const before = crm.requests.length;
      const inline = await api(strict.url, 'POST', '/act', { bearer: t, body: { connectionKey: 'crm-1', api: { path: '/marker/x' } } });
      expectRunError(inline, 403, 'egress_denied');
      const byKey = await api(strict.url, 'POST', '/act', { bearer: t, body: { connectionKey: 'crm-1', key: 'get-marker' } });
      expectRunError(byKey, 403, 'egress_denied');
      assert.equal(byKey.json.connectionId, conn1.json.id);
      assert.equal(crm.requests.length, before, 'nothing reached the loopback app');
    } finally {
      await strict.stop();
    }
  });

  // -------------------------------------------------------------------------------------------
  // Retries, refresh, deadline

  test('429 with Retry-After: retried for GET and with an Idempotency-Key, not for a bare POST', async () => {
    const started = Date.now();
    const got = expectOk(await act({ connectionKey: 'flaky-1', api: { method: 'GET', path: '/rl/get' } }));
    assert.equal(got.status, 200);
    assert.equal(got.output.attempt, 2);
    assert.equal(flaky.attempts('/rl/get'), 2);
    const [first, second] = flaky.requests.filter((r) => r.pathname === '/rl/get');
    assert.ok(second.at - first.at >= 900, `Retry-After: 1 was honoured (${second.at - first.at} ms)`);
    assert.ok(Date.now() - started < 2500);
    runs.retried = got.actionRunId;

    const post = await act({ connectionKey: 'flaky-1', api: { method: 'POST', path: '/rl/post', body: { n: 1 } } });
    const e = expectRunError(post, 429, 'upstream_error');
    assert.equal(e.upstream.status, 429);
    assert.equal(flaky.attempts('/rl/post'), 1, 'a POST without an Idempotency-Key is not repeated');

    const keyed = await act({ connectionKey: 'flaky-1', api: { method: 'POST', path: '/rl/post-keyed', body: { n: 1 } } },
      tenant(), { 'Idempotency-Key': `retry-${Date.now()}` });
    assert.equal(expectOk(keyed).output.attempt, 2);
    assert.equal(flaky.attempts('/rl/post-keyed'), 2);
    assert.equal(flaky.requests.filter((r) => r.pathname === '/rl/post-keyed').at(-1).body, '{"n":1}');

    // A PUT is idempotent too; an action's POST is not.
    expectOk(await act({ connectionKey: 'flaky-1', api: { method: 'PUT', path: '/rl/put', body: { n: 2 } } }));
    assert.equal(flaky.attempts('/rl/put'), 2);
    await createAction({ key: 'flaky-post', integrationKey: 'flaky', config: { request: { method: 'POST', path: '/rl/action-post' } } });
    expectRunError(await act({ key: 'flaky-post', connectionKey: 'flaky-1', input: { n: 3 } }), 429, 'upstream_error');
    assert.equal(flaky.attempts('/rl/action-post'), 1);

    const details = await call('GET', `/action-run-logs/${runs.retried}/details`, tenant());
    assert.equal(details.status, 200, details.text);
    assert.deepEqual(details.json.details.exchanges.map((x) => x.response?.status), [429, 200]);
    assert.ok(!details.text.includes(FLAKY_KEY));
  });

  test('a 401 refreshes the token once and retries; the next call needs no refresh', async () => {
    const s0 = refresh.stats();
    const first = expectOk(await act({ connectionKey: 'oauth-1', api: { path: '/me' } }));
    assert.deepEqual(first.output, { ok: true, login: 'alice', path: '/api/me' });
    const s1 = refresh.stats();
    assert.equal(s1.refreshes - s0.refreshes, 1);
    assert.equal(s1.unauthorized - s0.unauthorized, 1);
    const apiCalls = refresh.requests.filter((r) => r.pathname === '/api/me');
    assert.equal(apiCalls.at(-2).headers.authorization, `Bearer ${refresh.importedAccessToken}`);
    assert.equal(apiCalls.at(-1).headers.authorization, `Bearer ${refresh.currentAccessToken()}`);
    runs.refreshed = first.actionRunId;

    expectOk(await act({ connectionKey: 'oauth-1', api: { path: '/me' } }));
    assert.equal(refresh.stats().refreshes, s1.refreshes, 'the new token is kept');

    const details = await call('GET', `/action-run-logs/${runs.refreshed}/details`, tenant());
    assert.equal(details.status, 200, details.text);
    const statuses = details.json.details.exchanges.map((x) => x.response?.status);
    assert.ok(statuses.includes(401) && statuses.at(-1) === 200, JSON.stringify(statuses));

    // An app that keeps refusing: one refresh, one retry, then its 401.
    refresh.rejectAll = true;
    try {
      const s2 = refresh.stats();
      const r = await act({ connectionKey: 'oauth-1', api: { path: '/me' } });
      assert.ok([401, 409].includes(r.status), r.text);
      assert.match(r.json.actionRunId ?? '', RUN_ID);
      assert.equal(refresh.stats().refreshes - s2.refreshes, 1, 'refreshed once, not in a loop');
      assert.equal(refresh.stats().unauthorized - s2.unauthorized, 2);
    } finally {
      refresh.rejectAll = false;
    }
  });

  test('a vendor slower than --act-timeout answers 504 upstream_timeout within the deadline', async () => {
    await createAction({ key: 'slow-read', integrationKey: 'slow', config: { request: { method: 'GET', path: '/slow' } } });
    const started = Date.now();
    const res = await act({ key: 'slow-read', connectionKey: 'slow-1' });
    const elapsed = Date.now() - started;
    const e = expectRunError(res, 504, 'upstream_timeout');
    assert.equal(e.connectionId, conn['slow-1'].id);
    assert.ok(elapsed >= 1500 && elapsed < 4500, `answered after ${elapsed} ms with a 2 s deadline`);
    assert.ok(slow.requests.length >= 1);
    runs.timeout = e.actionRunId;
    const log = await call('GET', `/action-run-logs/${runs.timeout}`, tenant());
    assert.equal(log.status, 200, log.text);
    assert.equal(log.json.status, 'error');
    assert.equal(log.json.error.error, 'upstream_timeout');
    assert.ok(log.json.durationMs >= 1500, log.text);
  });

  // -------------------------------------------------------------------------------------------
  // Run logs

  test('run logs: the summary, the details with the exchanges, every credential redacted', async () => {
    await createAction({ key: 'echo-auth', name: 'Echo auth', config: { request: { method: 'GET', path: '/echo-auth' } } });
    const t = tenant();
    const res = expectOk(await act({ key: 'echo-auth', connectionKey: 'crm-1', input: { q: 'one' }, meta: { trace: 'm-1' } }, t));
    runs.echo = res.actionRunId;
    const log = await call('GET', `/action-run-logs/${res.actionRunId}`, t);
    assert.equal(log.status, 200, log.text);
    const j = log.json;
    assert.equal(j.id, res.actionRunId);
    assert.equal(j.status, 'success');
    assert.equal(j.action.key, 'echo-auth');
    assert.equal(j.action.name, 'Echo auth');
    assert.match(j.action.id, /^act_/);
    assert.equal(j.connection.id, conn['crm-1'].id);
    assert.equal(j.connection.key, 'crm-1');
    assert.equal(j.integration.key, 'crm');
    assert.equal(j.tenantKey, 'acme');
    assert.equal(j.agentId, null);
    assert.equal(j.grantId, null);
    assert.equal(typeof j.actor.kind, 'string');
    assert.deepEqual(j.input, { q: 'one' });
    assert.deepEqual(j.meta, { trace: 'm-1' });
    assert.equal(j.error, null);
    assert.ok(Date.parse(j.finishedAt) >= Date.parse(j.startedAt));
    assert.equal(typeof j.durationMs, 'number');
    assert.equal(j.details, undefined, 'details only when asked');

    for (const url of [`/action-run-logs/${res.actionRunId}/details`, `/action-run-logs/${res.actionRunId}?includeDetails=true`]) {
      const d = await call('GET', url, t);
      assert.equal(d.status, 200, d.text);
      assert.equal(d.json.id, res.actionRunId);
      assert.equal(d.json.details.request.method, 'GET');
      assert.equal(d.json.details.request.path, '/echo-auth');
      const [x] = d.json.details.exchanges;
      assert.equal(x.request.method, 'GET');
      assert.ok(x.request.url.startsWith(`${crm.url}/v1/echo-auth`), x.request.url);
      assert.ok(JSON.stringify(x.request.headers).includes('[REDACTED]'), 'the X-Api-Key header is redacted');
      assert.equal(x.response.status, 200);
      assert.equal(typeof x.durationMs, 'number');
      assert.ok(!d.text.includes(KEY_A1), d.text);
    }

    // A key in the query string and a bearer token are redacted too.
    await createAction({ key: 'echo-any', config: { request: { method: 'GET', path: '/echo-auth' } } });
    for (const key of ['crm-q', 'crm-b']) {
      const r = expectOk(await act({ key: 'echo-any', connectionKey: key }, t));
      const d = await call('GET', `/action-run-logs/${r.actionRunId}/details`, t);
      assert.equal(d.status, 200, d.text);
      assert.ok(!d.text.includes(KEY_Q) && !d.text.includes(KEY_B), d.text);
      assert.ok(d.text.includes('REDACTED'), d.text);
    }

    // Inline requests are runs too, without an action.
    const inline = expectOk(await act({ connectionKey: 'crm-1', api: { method: 'POST', path: '/echo', body: { z: 1 } } }, t));
    const il = await call('GET', `/action-run-logs/${inline.actionRunId}`, t);
    assert.equal(il.json.action, null);
    assert.equal(il.json.status, 'success');

    // The app echoed the key it got (the caller gets the app's answer as it is); the run log
    // keeps no secret, in the output either.
    assert.deepEqual(res.output, { credential: KEY_A1 });
    assert.ok(!log.text.includes(KEY_A1), `the run's output holds the key: ${log.text}`);
    assert.ok(JSON.stringify(j.output).includes('[REDACTED]'), log.text);

    // Another tenant's run, and an unknown one.
    expectError(await call('GET', `/action-run-logs/${res.actionRunId}`, tenant('stranger')), 404, 'action_run_not_found');
    expectError(await call('GET', `/action-run-logs/${res.actionRunId}/details`, tenant('stranger')), 404, 'action_run_not_found');
    expectError(await call('GET', '/action-run-logs/run_doesnotexist0000', t), 404, 'action_run_not_found');
    // A failed run records its error.
    const failed = await call('GET', `/action-run-logs/${runs.validatedError}`, t);
    assert.equal(failed.json.status, 'error');
    assert.equal(failed.json.error.error, 'invalid_input');
  });

  test('run logs: listed newest first, filtered by action, connection and status, paged', async () => {
    const t = tenant();
    const all = await call('GET', '/action-run-logs?limit=1000', t);
    assert.equal(all.status, 200, all.text);
    assert.ok(all.json.items.length >= 20);
    const times = all.json.items.map((x) => Date.parse(x.startedAt));
    assert.deepEqual(times, [...times].sort((a, b) => b - a), 'newest first');
    assert.ok(all.json.items.every((x) => x.tenantKey === 'acme'));
    assert.ok(all.json.items.every((x) => x.details === undefined));

    const echoAction = (await call('GET', '/actions/echo-auth', t)).json;
    const byAction = await call('GET', `/action-run-logs?actionId=${echoAction.id}`, t);
    assert.ok(byAction.json.items.length >= 1);
    assert.ok(byAction.json.items.every((x) => x.action?.id === echoAction.id));
    const byConn = await call('GET', `/action-run-logs?connectionId=${conn['slow-1'].id}`, t);
    assert.ok(byConn.json.items.some((x) => x.id === runs.timeout));
    assert.ok(byConn.json.items.every((x) => x.connection?.id === conn['slow-1'].id));
    const errors = await call('GET', '/action-run-logs?status=error&limit=1000', t);
    assert.ok(errors.json.items.every((x) => x.status === 'error'));
    assert.ok(errors.json.items.some((x) => x.id === runs.timeout));
    const successes = await call('GET', '/action-run-logs?status=success&limit=1000', t);
    assert.ok(successes.json.items.every((x) => x.status === 'success'));
    assert.ok(successes.json.items.some((x) => x.id === runs.echo));
    assert.equal(errors.json.items.length + successes.json.items.length, all.json.items.length);

    const p1 = await call('GET', '/action-run-logs?limit=2', t);
    assert.equal(p1.json.items.length, 2);
    assert.equal(typeof p1.json.cursor, 'string');
    const p2 = await call('GET', `/action-run-logs?limit=2&cursor=${encodeURIComponent(p1.json.cursor)}`, t);
    assert.deepEqual(p2.json.items.map((x) => x.id), all.json.items.slice(2, 4).map((x) => x.id));

    // Another tenant sees none of them; the manager sees them all.
    const stranger = await call('GET', '/action-run-logs?limit=1000', tenant('stranger'));
    assert.ok(!stranger.json.items.some((x) => x.tenantKey === 'acme'));
    const mgr = await call('GET', '/action-run-logs?limit=1000', manager());
    assert.ok(mgr.json.items.some((x) => x.id === runs.echo));
    expectError(await call('GET', '/action-run-logs?status=maybe', t), 400, 'invalid_field');
  });

  // -------------------------------------------------------------------------------------------
  // Agents under grants

  let aliceConn, charge, agentA, grantA;

  test('an agent acts only under a grant, through the granter\'s connection', async () => {
    aliceConn = (await api(srv.url, 'POST', '/connections', { cookie: aliceCookie, body: {
      connectorKey: 'crm', connectionKey: 'alice-crm', credentials: { apiKey: KEY_ALICE } } })).json;
    assert.equal(aliceConn.state, 'READY', JSON.stringify(aliceConn));
    assert.equal(aliceConn.tenantKey, aliceId);
    charge = await createAction({ key: 'charge', name: 'Charge', description: 'Takes a payment',
      integrationKey: 'crm', config: { request: { method: 'POST', path: '/payments' } },
      inputSchema: { type: 'object', required: ['amount', 'currency'], properties: {
        amount: { type: 'number', minimum: 0 }, currency: { type: 'string' }, memo: { type: 'string' },
        decline: { type: 'boolean' } } } });

    agentA = await registerAgent(srv.url);
    agentSecrets.push(agentA.secret);
    const agentAct = (body, agent = agentA) => call('POST', '/act', agent.secret, body);

    // No grant yet: denied, without a constraint; nothing reaches the app.
    const before = crm.requests.length;
    const denied = expectRunError(await agentAct({ key: 'charge', input: { amount: 10, currency: 'usd' } }),
      403, 'permission_denied');
    assert.equal(denied.constraint, undefined);

    const scope = { max_amount: 100, allowed_currency: ['usd'], budget_amount: { limit: 250, period: '30d' } };
    const grant = await api(srv.url, 'POST', '/permission/grant', { cookie: aliceCookie,
      body: { agent_id: agentA.agent_id, action: 'charge', scope } });
    assert.equal(grant.status, 201, grant.text);
    grantA = grant.json;

    const ok = expectOk(await agentAct({ key: 'charge', input: { amount: 50, currency: 'usd', memo: 'first' } }));
    assert.equal(ok.status, 201);
    assert.equal(ok.connectionId, aliceConn.id);
    const paid = crm.last();
    assert.equal(paid.headers['x-api-key'], KEY_ALICE, 'the granter\'s credential');
    assert.deepEqual(paid.json, { amount: 50, currency: 'usd', memo: 'first' });
    assert.equal(crm.requests.length, before + 1);

    // /actions/:selector/run too.
    const viaRun = await call('POST', '/actions/charge/run', agentA.secret, { input: { amount: 10, currency: 'usd' } });
    expectOk(viaRun);
    assert.equal(crm.last().headers['x-api-key'], KEY_ALICE);

    // The scope: max_ and allowed_, each named; nothing sent.
    const n = crm.requests.length;
    const tooMuch = expectRunError(await agentAct({ key: 'charge', input: { amount: 150, currency: 'usd' } }),
      403, 'permission_denied');
    assert.equal(tooMuch.constraint, 'max_amount');
    const wrongCurrency = expectRunError(await agentAct({ key: 'charge', input: { amount: 10, currency: 'eur' } }),
      403, 'permission_denied');
    assert.equal(wrongCurrency.constraint, 'allowed_currency');
    // An action it holds no grant for, and inline requests, are denied.
    await createAction({ key: 'refund', integrationKey: 'crm', config: { request: { method: 'POST', path: '/payments' } } });
    const other = expectRunError(await agentAct({ key: 'refund', input: { amount: 1 } }), 403, 'permission_denied');
    assert.equal(other.constraint, undefined);
    expectError(await agentAct({ connectionKey: 'alice-crm', api: { method: 'POST', path: '/payments', body: { amount: 1 } } }),
      403, 'permission_denied');
    // Not someone else's connection: the agent runs in the granter's tenant only.
    const foreign = await agentAct({ key: 'charge', connectionId: conn['crm-1'].id, input: { amount: 1, currency: 'usd' } });
    assert.ok([403, 404].includes(foreign.status), foreign.text);
    assert.equal(crm.requests.length, n, 'no denied call reached the app');

    // The run log is the granter's: agent and grant named.
    const log = await api(srv.url, 'GET', `/action-run-logs/${ok.actionRunId}`, { cookie: aliceCookie });
    assert.equal(log.status, 200, log.text);
    assert.equal(log.json.agentId, agentA.agent_id);
    assert.equal(log.json.grantId, grantA.permission_id);
    assert.equal(log.json.tenantKey, aliceId);
    assert.equal(log.json.connection.id, aliceConn.id);
    runs.agent = ok.actionRunId;
    const mine = await api(srv.url, 'GET', `/action-run-logs?agentId=${agentA.agent_id}&limit=100`, { cookie: aliceCookie });
    assert.equal(mine.status, 200, mine.text);
    assert.ok(mine.json.items.length >= 2);
    assert.ok(mine.json.items.every((x) => x.agentId === agentA.agent_id));
    // Nobody else's business.
    expectError(await call('GET', `/action-run-logs/${ok.actionRunId}`, tenant()), 404, 'action_run_not_found');
  });

  test('a budget holds under 20 concurrent runs: exactly 5 of 50 fit in 250, the app sees exactly 5', async () => {
    const agentB = await registerAgent(srv.url);
    agentSecrets.push(agentB.secret);
    const scope = { max_amount: 100, allowed_currency: ['usd'], budget_amount: { limit: 250, period: '30d' } };
    const grant = await api(srv.url, 'POST', '/permission/grant', { cookie: aliceCookie,
      body: { agent_id: agentB.agent_id, action: 'charge', scope } });
    assert.equal(grant.status, 201, grant.text);
    const memo = `budget-${agentB.agent_id}`;
    const results = await Promise.all(Array.from({ length: 20 }, () =>
      call('POST', '/act', agentB.secret, { key: 'charge', input: { amount: 50, currency: 'usd', memo } })));
    const ok = results.filter((r) => r.status === 200);
    const denied = results.filter((r) => r.status !== 200);
    assert.equal(ok.length, 5, results.map((r) => `${r.status} ${r.json?.error ?? ''}`).join(', '));
    for (const r of denied) {
      const e = expectRunError(r, 403, 'permission_denied');
      assert.equal(e.constraint, 'budget_amount');
    }
    assert.equal(crm.count((r) => r.json?.memo === memo), 5, 'the app received exactly 5 payments');
    // Spent: even 1 more is over.
    const more = await call('POST', '/act', agentB.secret, { key: 'charge', input: { amount: 1, currency: 'usd', memo } });
    assert.equal(expectRunError(more, 403, 'permission_denied').constraint, 'budget_amount');
    assert.equal(crm.count((r) => r.json?.memo === memo), 5);
  });

  test('a payment the app refused (4xx) gives its amount back to the budget', async () => {
    const agentD = await registerAgent(srv.url);
    agentSecrets.push(agentD.secret);
    const grant = await api(srv.url, 'POST', '/permission/grant', { cookie: aliceCookie,
      body: { agent_id: agentD.agent_id, action: 'charge', scope: { budget_amount: { limit: 100, period: '30d' } } } });
    assert.equal(grant.status, 201, grant.text);
    const run = (input) => call('POST', '/act', agentD.secret, { key: 'charge', input });
    const declined = await run({ amount: 100, currency: 'usd', decline: true });
    const e = expectRunError(declined, 402, 'upstream_error');
    assert.equal(e.upstream.status, 402);
    expectOk(await run({ amount: 100, currency: 'usd' }));
    assert.equal(expectRunError(await run({ amount: 0.5, currency: 'usd' }), 403, 'permission_denied').constraint,
      'budget_amount');
  });

  test('after revocation the agent is denied; the denials are in the granter\'s activity', async () => {
    const revoked = await api(srv.url, 'POST', '/permission/revoke', { cookie: aliceCookie,
      body: { agent_id: agentA.agent_id, action: 'charge' } });
    assert.equal(revoked.status, 200, revoked.text);
    const before = crm.requests.length;
    const r = await call('POST', '/act', agentA.secret, { key: 'charge', input: { amount: 1, currency: 'usd' } });
    const e = expectRunError(r, 403, 'permission_denied');
    assert.equal(e.constraint, undefined);
    assert.equal(crm.requests.length, before);

    const activity = await api(srv.url, 'GET', `/v1/activity?agent_id=${agentA.agent_id}&limit=100`, { cookie: aliceCookie });
    assert.equal(activity.status, 200, activity.text);
    const denials = activity.json.data.filter((x) => x.action === 'act' && x.outcome === 'denied');
    assert.ok(denials.length >= 4, JSON.stringify(activity.json.data.map((x) => [x.action, x.outcome])));
    assert.ok(denials.some((x) => x.request_id === r.headers.get('x-request-id')), 'the last denial is there');
    assert.ok(denials.every((x) => x.agent_id === agentA.agent_id));
    const denied = await api(srv.url, 'GET', `/v1/activity?agent_id=${agentA.agent_id}&outcome=denied&action=act`,
      { cookie: aliceCookie });
    assert.ok(denied.json.data.length >= 4);
  });

  test('an access token with the act ability runs actions as its person; without it, it may not', async () => {
    const mint = async (abilities) => {
      const res = await api(srv.url, 'POST', '/v1/tokens', { cookie: aliceCookie, body: { name: 'act', abilities } });
      assert.equal(res.status, 201, res.text);
      return res.json.token;
    };
    const actToken = await mint(['act']);
    const ok = expectOk(await call('POST', '/act', actToken, { key: 'charge', input: { amount: 1, currency: 'usd', memo: 'token' } }));
    assert.equal(ok.connectionId, aliceConn.id);
    assert.equal(crm.last().headers['x-api-key'], KEY_ALICE);
    const readOnly = await mint(['activity:view-any']);
    expectError(await call('POST', '/act', readOnly, { key: 'charge', input: { amount: 1, currency: 'usd' } }),
      403, 'token_missing_ability', { messageIncludes: ['act'] });
    // The person's session works as well, in their own tenant.
    const viaSession = await api(srv.url, 'POST', '/act', { cookie: aliceCookie,
      body: { key: 'charge', input: { amount: 2, currency: 'usd', memo: 'session' } } });
    assert.equal(expectOk(viaSession).connectionId, aliceConn.id);
  });

  // -------------------------------------------------------------------------------------------
  // Webhooks

  test('action_run.succeeded and action_run.failed webhooks arrive signed and verifiable', async () => {
    // The event types can be subscribed to by name.
    const named = await api(srv.url, 'POST', '/v1/webhooks', { cookie: adminCookie,
      body: { url: `${hooks.url}/named`, events: ['action_run.succeeded', 'action_run.failed'] } });
    assert.equal(named.status, 201, named.text);
    const events = () => hooks.requests.filter((r) => r.pathname === '/hooks').map((r) => ({ r, e: JSON.parse(r.body) }));
    const want = [[runs.marker, 'action_run.succeeded'], [runs.timeout, 'action_run.failed'],
      [runs.agent, 'action_run.succeeded']];
    const got = await eventually(() => {
      const all = events();
      const found = want.map(([id, type]) => all.find((x) => x.e.type === type && x.e.data?.actionRunId === id));
      return found.every(Boolean) ? found : null;
    }, { timeoutMs: 10000 });
    assert.ok(got, `webhooks received: ${JSON.stringify(events().map((x) => [x.e.type, x.e.data?.actionRunId]))}`);
    const wh = new Webhook(hookSecret);
    for (const { r } of got) {
      const payload = wh.verify(r.body, {
        'webhook-id': r.headers['webhook-id'],
        'webhook-timestamp': r.headers['webhook-timestamp'],
        'webhook-signature': r.headers['webhook-signature'],
      });
      assert.ok(payload.type.startsWith('action_run.'));
      validateWebhook(r.headers, r.body);
    }
    const [succeeded, failed, byAgent] = got.map((x) => x.e.data);
    assert.equal(succeeded.actionKey, 'get-marker');
    assert.equal(succeeded.actionId, universal.id);
    assert.equal(succeeded.connectionId, conn['crm-b'].id);
    assert.equal(succeeded.tenantKey, 'acme');
    assert.equal(succeeded.status, 'success');
    assert.equal(succeeded.error, null);
    assert.equal(succeeded.agentId, null);
    assert.equal(typeof succeeded.durationMs, 'number');
    assert.equal(failed.status, 'error');
    assert.equal(failed.error, 'upstream_timeout');
    assert.equal(failed.actionKey, 'slow-read');
    assert.equal(byAgent.agentId, agentA.agent_id);
    assert.equal(byAgent.tenantKey, aliceId);
  });

  // -------------------------------------------------------------------------------------------
  // Export / import

  test('GET /export → POST /import into a fresh server round-trips connectors, integrations and actions, without secrets', async () => {
    const exp = await call('GET', '/export', manager());
    assert.equal(exp.status, 200, exp.text);
    const doc = exp.json;
    assert.equal(doc.version, 1);
    assert.ok(Math.abs(Date.parse(doc.exportedAt) - Date.now()) < 60000);
    const connectorKeys = doc.connectors.map((c) => c.key);
    for (const k of ['crm', 'crm-bearer', 'crm-query', 'flaky', 'slow', 'redirector', 'refreshing']) {
      assert.ok(connectorKeys.includes(k), `connector ${k} exported`);
    }
    assert.ok(!connectorKeys.includes('github'), 'shipped connectors are not the workspace\'s own');
    const refreshing = doc.integrations.find((i) => i.key === 'refreshing');
    assert.equal(refreshing.connectorKey, 'refreshing');
    assert.equal(refreshing.parameters.clientId, refresh.clientId);
    assert.equal(refreshing.parameters.clientSecret, undefined);
    const markers = doc.actions.filter((a) => a.key === 'get-marker');
    assert.deepEqual(markers.map((a) => a.integrationKey ?? null).sort(), ['crm', null].sort(),
      'universal and integration-level actions, not connection-level ones');
    assert.ok(!exp.text.includes('/marker/connection'));
    assert.ok(doc.actions.some((a) => a.key === 'charge' && a.integrationKey === 'crm'));
    for (const secret of [CLIENT_SECRET, KEY_A1, KEY_ALICE, creds.workspaceSecret, ...refresh.issuedTokens()]) {
      assert.ok(!exp.text.includes(secret), `the export holds no secret (${secret.slice(0, 12)}…)`);
    }
    expectError(await call('GET', '/export', tenant()), 403, 'forbidden');
    expectError(await call('POST', '/import', tenant(), doc), 403, 'forbidden');

    const fresh = await startServer({ args: ['--no-rate-limits', '--allow-private-egress'] });
    try {
      const cookie = await signIn(fresh.url, uniqueEmail('fresh-admin'));
      const c = (await api(fresh.url, 'GET', '/v1/credentials', { cookie })).json;
      const s = (claims) => jwt.sign({ workspaceKey: c.workspaceKey, ...claims }, c.workspaceSecret,
        { algorithm: 'HS256', expiresIn: '5m' });
      const fm = s({ isAdmin: true });
      const fcall = (method, p, bearer, body) => api(fresh.url, method, p, { bearer, body });

      // All or nothing: one bad action and nothing is written.
      const broken = { ...doc, actions: [...doc.actions, { key: 'broken', name: 'Broken', integrationKey: null }] };
      const refused = await fcall('POST', '/import', fm, broken);
      assert.equal(refused.status, 400, refused.text);
      const none = await fcall('GET', '/connectors', fm);
      assert.ok(!none.json.items.some((x) => x.key === 'crm'), 'nothing was imported');

      const imported = await fcall('POST', '/import', fm, doc);
      assert.equal(imported.status, 200, imported.text);
      assert.equal(imported.json.connectors.created, doc.connectors.length);
      assert.equal(imported.json.integrations.created, doc.integrations.length);
      assert.equal(imported.json.actions.created, doc.actions.length);

      const again = await fcall('GET', '/export', fm);
      assert.equal(again.status, 200, again.text);
      const norm = (d) => ({
        connectors: d.connectors.map(({ id, ...rest }) => rest).sort((a, b) => a.key.localeCompare(b.key)),
        integrations: [...d.integrations].sort((a, b) => a.key.localeCompare(b.key)),
        actions: [...d.actions].sort((a, b) => `${a.key}/${a.integrationKey ?? ''}`.localeCompare(`${b.key}/${b.integrationKey ?? ''}`)),
      });
      assert.deepEqual(norm(again.json), norm(doc));

      const twice = await fcall('POST', '/import', fm, doc);
      assert.equal(twice.status, 200, twice.text);
      assert.equal(twice.json.actions.created, 0);
      assert.equal(twice.json.actions.unchanged, doc.actions.length);
      assert.equal(twice.json.connectors.unchanged, doc.connectors.length);

      // The imported actions work: connect and run one.
      const t = s({ tenantKey: 'imported' });
      const made = await fcall('POST', '/connections', t, { connectorKey: 'crm', connectionKey: 'fresh-crm',
        credentials: { apiKey: KEY_FRESH } });
      assert.equal(made.status, 201, made.text);
      const ran = await fcall('POST', '/act', t, { key: 'create-contact', connectionKey: 'fresh-crm', input: { name: 'Imported' } });
      assert.equal(ran.status, 200, ran.text);
      assert.equal(crm.last().headers['x-api-key'], KEY_FRESH);
      assert.deepEqual(crm.last().json, { name: 'Imported' });
    } finally {
      await fresh.stop();
    }
  });

  // -------------------------------------------------------------------------------------------

  test('no secret in any run log, webhook, the server log or the database', async () => {
    const secrets = [KEY_A1, KEY_A2, KEY_B, KEY_Q, KEY_ALICE, FLAKY_KEY, SLOW_KEY, REDIR_KEY, CLIENT_SECRET,
      creds.workspaceSecret, ...refresh.issuedTokens(), ...agentSecrets];
    assert.ok(refresh.issuedTokens().length >= 3, 'the imported, the refresh and a refreshed token');
    const found = new Set();  // every leak, reported together
    const leaks = (text, where) => {
      for (const s of secrets) if (text.includes(s)) found.add(`${where} contains ${s.slice(0, 14)}…`);
    };

    let cursor = null;
    let seen = 0;
    do {
      const page = await call('GET', `/action-run-logs?limit=100${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`, manager());
      assert.equal(page.status, 200, page.text);
      leaks(page.text, 'the run list');
      for (const item of page.json.items) {
        const d = await call('GET', `/action-run-logs/${item.id}/details`, manager());
        assert.equal(d.status, 200, d.text);
        leaks(d.text, `run ${item.id}`);
        seen += 1;
      }
      cursor = page.json.cursor;
    } while (cursor);
    assert.ok(seen >= 50, `${seen} runs checked`);

    for (const r of hooks.requests) leaks(r.body, 'a webhook');
    leaks(srv.logs(), 'the server log');
    const files = fs.readdirSync(srv.dataDir).filter((f) => f.startsWith('agentgate.db'));
    assert.ok(files.length >= 1);
    for (const f of files) {
      const bytes = fs.readFileSync(path.join(srv.dataDir, f));
      for (const s of secrets) if (bytes.includes(Buffer.from(s))) found.add(`${f} contains ${s.slice(0, 14)}…`);
    }
    assert.deepEqual([...found], []);
  });
});

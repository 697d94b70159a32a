// The integration engine with real parts: tenant tokens minted by npm jsonwebtoken, a real OAuth 2
// server (oidc-provider), the browser connect flow in Debian's Chromium (popup, consent,
// callback, resolved connection) through the SDK agentgate serves, token refresh on expiry and on
// a 401 (single-flight), a revoked refresh token, reconnecting, tenant isolation, and no token in
// plaintext in the database.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import jwt from 'jsonwebtoken';
import { api, signIn, startServer, uniqueEmail } from './lib/server.mjs';
import { eventually, expectCleanLogs, expectError, sleep } from './lib/expect.mjs';
import { validateWebhook } from './lib/openapi.mjs';
import { approveInBrowser, startOAuthServer } from './lib/oauth_server.mjs';
import { launchBrowser } from './lib/browser.mjs';

// The app that embeds the browser SDK: one page, on its own origin, with a Connect button.
async function startApp(agentgateUrl) {
  const server = http.createServer((req, res) => {
    const url = new URL(req.url, 'http://127.0.0.1');
    if (url.pathname !== '/') {
      res.writeHead(404).end();
      return;
    }
    res.writeHead(200, { 'Content-Type': 'text/html' });
    res.end(`<!DOCTYPE html><title>app</title>
<button id="connect">Connect</button>
<script src="${agentgateUrl}/sdk/agentgate.js"></script>
<script>
  window.outcome = null;
  document.getElementById('connect').onclick = () => {
    const client = new AgentgateClient({ token: window.token, apiUri: ${JSON.stringify(agentgateUrl)} });
    client.ui.connect(window.connectOptions).then(
      (c) => { window.outcome = { connection: c }; },
      (e) => { window.outcome = { error: e.message, code: e.code || null }; });
  };
</script>`);
  });
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${server.address().port}/`,
    close: () => { server.closeAllConnections(); return new Promise((r) => server.close(r)); },
  };
}

// A vendor API that records what it receives (for API-key connections).
async function startVendor() {
  const seen = [];
  const server = http.createServer((req, res) => {
    let body = '';
    req.on('data', (c) => { body += c; });
    req.on('end', () => {
      seen.push({ method: req.method, url: req.url, headers: req.headers, body });
      if (req.url.includes('/big')) {  // an answer over /act's 1 MiB
        res.writeHead(200, { 'Content-Type': 'application/json' });
        res.end(JSON.stringify({ blob: 'x'.repeat(1_200_000) }));
        return;
      }
      res.writeHead(req.url.includes('/missing') ? 404 : 200, { 'Content-Type': 'application/json' });
      res.end(JSON.stringify({ ok: !req.url.includes('/missing'), path: req.url }));
    });
  });
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${server.address().port}`,
    seen,
    calls: () => seen.filter((r) => r.url !== '/hooks'),  // not the webhook deliveries
    close: () => { server.closeAllConnections(); return new Promise((r) => server.close(r)); },
  };
}

describe('integration engine: tokens, connections, the connect flow and refresh', () => {
  let srv, cookie, creds, oauth, shortOauth, browser, app, vendor;
  const client = { client_id: 'agentgate-e2e', client_secret: 'client-secret-e2e-0123456789' };

  const sign = (claims, options = {}) =>
    jwt.sign({ workspaceKey: creds.workspaceKey, ...claims }, creds.workspaceSecret,
      { algorithm: 'HS256', expiresIn: '5m', ...options });
  const tenant = (key) => sign({ tenantKey: key });
  const manager = () => sign({ isAdmin: true });
  const call = (method, p, bearer, body) => api(srv.url, method, p, { bearer, body });

  // A custom OAuth connector for an oidc-provider instance, and its integration's OAuth client.
  async function oauthConnector(key, server) {
    const made = await call('POST', '/connectors', manager(), {
      key,
      name: `Test OAuth ${key}`,
      baseUrl: server.apiBaseUrl,
      auth: {
        type: 'oauth2', authorizeUrl: server.authorizeUrl, tokenUrl: server.tokenUrl,
        scopes: ['openid', 'read'], pkce: true, clientAuth: 'basic',
      },
    });
    assert.equal(made.status, 201, made.text);
    const integration = await call('POST', '/integrations', manager(), {
      connectorKey: key,
      parameters: { clientId: client.client_id, clientSecret: client.client_secret },
    });
    assert.equal(integration.status, 201, integration.text);
    assert.equal(integration.json.parameters.hasClientSecret, true);
    assert.equal(JSON.stringify(integration.json).includes(client.client_secret), false);
    return integration.json;
  }

  // Runs ui.connect in the app page with the given options; `approve` drives the popup.
  async function browserConnect(token, options, { approve = true, closePopup = false } = {}) {
    const page = await browser.newPage();
    try {
      await page.goto(app.url);
      await page.evaluate(([t, o]) => { window.token = t; window.connectOptions = o; }, [token, options]);
      const popupPromise = page.waitForEvent('popup');
      await page.click('#connect');
      const popup = await popupPromise;
      await popup.waitForURL(/\/connect\?session=cs_/);
      if (closePopup) {
        await popup.close();
      } else {
        await popup.locator('#submit:not([hidden])').waitFor();
        await popup.click('#submit');
        if (approve) await approveInBrowser(popup);
      }
      await page.waitForFunction(() => window.outcome !== null, null, { timeout: 20000 });
      const outcome = await page.evaluate(() => window.outcome);
      if (!closePopup && outcome.connection) {
        // The SDK closes its window once the connect page has reported.
        if (!popup.isClosed()) await popup.waitForEvent('close', { timeout: 5000 });
        outcome.popupClosed = popup.isClosed();
      }
      return outcome;
    } finally {
      await page.close();
    }
  }

  const act = (token, connectionId, apiCall = { method: 'GET', path: '/me' }) =>
    call('POST', '/act', token, { connectionId, api: apiCall });

  before(async () => {
    srv = await startServer({ args: ['--allow-private-egress'] });
    cookie = await signIn(srv.url, uniqueEmail('admin'));
    const got = await api(srv.url, 'GET', '/v1/credentials', { cookie });
    assert.equal(got.status, 200, got.text);
    creds = got.json;
    const redirect = `${srv.url}/oauth/callback`;
    oauth = await startOAuthServer({ clients: [{ ...client, redirect_uris: [redirect] }] });
    shortOauth = await startOAuthServer({
      clients: [{ ...client, redirect_uris: [redirect] }], accessTokenTtl: 4,
    });
    browser = await launchBrowser();
    app = await startApp(srv.url);
    vendor = await startVendor();
    const hook = await api(srv.url, 'POST', '/v1/webhooks', {
      cookie,
      body: { url: `${vendor.url}/hooks`, events: ['connection.created', 'connection.ready',
        'connection.disconnected', 'connection.reconnected', 'connection.archived',
        'connection.restored'] },
    });
    assert.equal(hook.status, 201, hook.text);
  });

  after(async () => {
    await browser?.close();
    await app?.close();
    await vendor?.close();
    await oauth?.close();
    await shortOauth?.close();
    if (srv) {
      await srv.stop();
      expectCleanLogs(srv);
    }
  });

  test('credentials name the workspace; a person is their own tenant', async () => {
    assert.equal(creds.apiUri, srv.url);
    assert.match(creds.workspaceKey, /^[0-9a-f-]{36}$/);
    assert.match(creds.workspaceSecret, /^wss_[A-Za-z0-9_-]{43}$/);
    assert.match(creds.tenantKey, /^usr_/);
    // Tenants and non-admins may not read the workspace secret.
    expectError(await call('GET', '/v1/credentials', tenant('t-creds')), 403, 'forbidden');
    const other = await signIn(srv.url, uniqueEmail('person'));
    expectError(await api(srv.url, 'GET', '/v1/credentials', { cookie: other }), 403, 'forbidden');
  });

  test('tokens from jsonwebtoken are accepted; forged, expired, alg none, alg-confused and wrong-workspace ones are refused', async () => {
    const good = await call('GET', '/connections', tenant('t-jwt'));
    assert.equal(good.status, 200, good.text);
    assert.deepEqual(good.json.items, []);
    const withName = sign({ tenantKey: 't-jwt', name: 'Acme Inc', fields: { plan: 'pro' } },
      { expiresIn: 3600 });
    assert.equal((await call('GET', '/connections', withName)).status, 200);
    // Manager tokens reach manager endpoints; tenant tokens do not.
    assert.equal((await call('GET', '/v1/credentials', manager())).status, 200);
    expectError(await call('POST', '/connectors', tenant('t-jwt'), { key: 'x' }), 403, 'forbidden');

    const forged = jwt.sign({ workspaceKey: creds.workspaceKey, tenantKey: 't-jwt' },
      'wss_not-the-secret', { algorithm: 'HS256', expiresIn: '5m' });
    expectError(await call('GET', '/connections', forged), 401, 'invalid_token');
    const expired = jwt.sign({ workspaceKey: creds.workspaceKey, tenantKey: 't-jwt',
      exp: Math.floor(Date.now() / 1000) - 120 }, creds.workspaceSecret, { algorithm: 'HS256' });
    expectError(await call('GET', '/connections', expired), 401, 'token_expired');
    const noExp = jwt.sign({ workspaceKey: creds.workspaceKey, tenantKey: 't-jwt' },
      creds.workspaceSecret, { algorithm: 'HS256', noTimestamp: true });
    expectError(await call('GET', '/connections', noExp), 401, 'invalid_token');
    const none = jwt.sign({ workspaceKey: creds.workspaceKey, tenantKey: 't-jwt',
      exp: Math.floor(Date.now() / 1000) + 300 }, null, { algorithm: 'none' });
    expectError(await call('GET', '/connections', none), 401, 'invalid_token');
    for (const algorithm of ['HS384', 'HS512']) {
      const confused = jwt.sign({ workspaceKey: creds.workspaceKey, tenantKey: 't-jwt' },
        creds.workspaceSecret, { algorithm, expiresIn: '5m' });
      expectError(await call('GET', '/connections', confused), 401, 'invalid_token');
    }
    // RS256 header over an HMAC made with the secret as if it were a public key.
    const [, payload] = good.json ? tenant('t-jwt').split('.') : [];
    const header = Buffer.from(JSON.stringify({ alg: 'RS256', typ: 'JWT' })).toString('base64url');
    const { createHmac } = await import('node:crypto');
    const sig = createHmac('sha256', creds.workspaceSecret).update(`${header}.${payload}`).digest('base64url');
    expectError(await call('GET', '/connections', `${header}.${payload}.${sig}`), 401, 'invalid_token');
    const wrongWorkspace = jwt.sign({ workspaceKey: '00000000-0000-4000-8000-000000000000',
      tenantKey: 't-jwt' }, creds.workspaceSecret, { algorithm: 'HS256', expiresIn: '5m' });
    expectError(await call('GET', '/connections', wrongWorkspace), 401, 'unauthorized');
    const noTenant = sign({});
    expectError(await call('GET', '/connections', noTenant), 401, 'unauthorized');
    // A tenant token is not a credential for the AgentPass endpoints.
    expectError(await call('GET', '/permissions', tenant('t-jwt')), 401, 'unauthorized');
  });

  test('the server mints tenant and manager tokens that jsonwebtoken verifies', async () => {
    const minted = await api(srv.url, 'POST', '/v1/credentials/token', {
      cookie, body: { tenantKey: 'minted', expiresIn: '5m' }, headers: { Origin: srv.url },
    });
    assert.equal(minted.status, 200, minted.text);
    const claims = jwt.verify(minted.json.token, creds.workspaceSecret, { algorithms: ['HS256'] });
    assert.equal(claims.tenantKey, 'minted');
    assert.equal(claims.workspaceKey, creds.workspaceKey);
    assert.ok(claims.exp - claims.iat === 300);
    assert.equal((await call('GET', '/connections', minted.json.token)).status, 200);
    // A tenant may mint for itself, not for another tenant and not a manager token.
    const self = await call('POST', '/v1/credentials/token', tenant('minted'), {});
    assert.equal(self.status, 200, self.text);
    expectError(await call('POST', '/v1/credentials/token', tenant('minted'), { tenantKey: 'other' }),
      403, 'forbidden');
    expectError(await call('POST', '/v1/credentials/token', tenant('minted'), { manager: true }),
      403, 'forbidden');
    for (const expiresIn of ['3d', 'soon', '5 m', '', -5, 0, 1.5, '90000']) {
      expectError(await call('POST', '/v1/credentials/token', manager(), { expiresIn }),
        400, 'invalid_field');
    }
    const digits = await call('POST', '/v1/credentials/token', manager(), { tenantKey: 'd', expiresIn: '600' });
    assert.equal(digits.status, 200, digits.text);
    const dclaims = jwt.decode(digits.json.token);
    assert.equal(dclaims.exp - dclaims.iat, 600);
    // An admin mints a manager token; it names no tenant unless asked to.
    const mgr = await api(srv.url, 'POST', '/v1/credentials/token', {
      cookie, body: { manager: true }, headers: { Origin: srv.url },
    });
    assert.equal(mgr.status, 200, mgr.text);
    const mclaims = jwt.verify(mgr.json.token, creds.workspaceSecret, { algorithms: ['HS256'] });
    assert.equal(mclaims.isAdmin, true);
    assert.equal(mclaims.tenantKey, undefined);
    assert.equal(mgr.json.tenantKey, null);
    // A cookie-authenticated mint from another site is refused (CSRF).
    expectError(await api(srv.url, 'POST', '/v1/credentials/token', {
      cookie, body: {}, headers: { Origin: 'https://evil.example' },
    }), 403, 'forbidden');
  });

  test('an API-key connection is READY at once and /act injects the key', async () => {
    const connector = await call('POST', '/connectors', manager(), {
      key: 'echo-vendor', name: 'Echo vendor', baseUrl: `${vendor.url}/v1`,
      auth: { type: 'api_key', header: 'X-Api-Key', template: '{apiKey}' },
    });
    assert.equal(connector.status, 201, connector.text);
    const t = tenant('t-key');
    const made = await call('POST', '/connections', t, {
      connectorKey: 'echo-vendor', connectionKey: 'echo-1', credentials: { apiKey: 'key-e2e-secret-123456' },
    });
    assert.equal(made.status, 201, made.text);
    assert.equal(made.json.state, 'READY');
    assert.equal(made.json.key, 'echo-1');
    assert.equal(made.json.integrationKey, 'echo-vendor', 'the integration is made on demand');
    assert.equal(made.text.includes('key-e2e-secret-123456'), false, 'credentials are never returned');
    const res = await call('POST', '/act', t, {
      connectionKey: 'echo-1', api: { method: 'POST', path: '/items', query: { q: 'a b' }, body: { n: 1 } },
    });
    assert.equal(res.status, 200, res.text);
    assert.deepEqual(res.json.output, { ok: true, path: '/v1/items?q=a%20b' });
    const last = vendor.calls().at(-1);
    assert.equal(last.headers['x-api-key'], 'key-e2e-secret-123456');
    assert.equal(last.body, '{"n":1}');
    // The upstream's own 4xx is mirrored, with its body.
    const missing = await call('POST', '/act', t, { connectionKey: 'echo-1', api: { path: '/missing' } });
    expectError(missing, 404, 'upstream_error');
    assert.equal(missing.json.upstream.status, 404);
    assert.equal(missing.json.connectionId, made.json.id);
    // An answer too big to return whole is an error, not half a document.
    const big = await call('POST', '/act', t, { connectionKey: 'echo-1', api: { path: '/big' } });
    expectError(big, 502, 'upstream_error', { messageIncludes: ['1 MiB'] });
    assert.equal(big.json.connectionId, made.json.id);
    // Paths that would leave the base URL are refused before anything is sent.
    const before = vendor.calls().length;
    for (const p of ['//evil.example/x', '/../admin', '/a/%2e%2e/b', 'http://evil.example/']) {
      const r = await call('POST', '/act', t, { connectionKey: 'echo-1', api: { path: p } });
      assert.ok(r.status === 403 || r.status === 400, `${p}: ${r.status} ${r.text}`);
    }
    assert.equal(vendor.calls().length, before);
    expectError(await call('POST', '/act', t, { connectionKey: 'echo-1',
      api: { path: '/x', headers: { Authorization: 'Bearer mine' } } }), 400, 'invalid_field');
    // Nor may the caller shadow the header the connection injects.
    expectError(await call('POST', '/act', t, { connectionKey: 'echo-1',
      api: { path: '/x', headers: { 'x-api-key': 'mine' } } }), 400, 'invalid_field');
    assert.equal(vendor.calls().length, before);
  });

  test('an OAuth integration without a client is CONFIGURATION_ERROR until its parameters are set', async () => {
    const made = await call('POST', '/connectors', manager(), {
      key: 'unconfigured-oauth', name: 'Unconfigured', baseUrl: oauth.apiBaseUrl,
      auth: { type: 'oauth2', authorizeUrl: oauth.authorizeUrl, tokenUrl: oauth.tokenUrl, pkce: true },
    });
    assert.equal(made.status, 201, made.text);
    const c = await call('POST', '/connections', tenant('t-conf'), { connectorKey: 'unconfigured-oauth' });
    assert.equal(c.status, 201, c.text);
    assert.equal(c.json.state, 'CONFIGURATION_ERROR');
    assert.equal(c.json.error.code, 'missing_oauth_client');
    const params = await call('PATCH', `/integrations/${c.json.integrationId}/parameters`, manager(),
      { clientId: 'abc' });
    assert.equal(params.status, 200, params.text);
    const again = await call('POST', '/connections', tenant('t-conf'), { connectionId: c.json.id });
    assert.equal(again.status, 200, again.text);
    assert.equal(again.json.id, c.json.id);
    assert.equal(again.json.state, 'CLIENT_ACTION_REQUIRED');
    assert.match(again.json.clientAction.uiUrl, new RegExp(`^${srv.url}/connect\\?session=cs_`));
  });

  let oauthConnection;

  test('the browser connect flow: popup, consent, callback, resolved READY connection', async () => {
    await oauthConnector('test-oauth', oauth);
    const t = tenant('t-oauth');
    const outcome = await browserConnect(t, { connectorKey: 'test-oauth', connectionKey: 'oauth-1' });
    assert.ok(outcome.connection, JSON.stringify(outcome));
    assert.equal(outcome.connection.state, 'READY');
    assert.equal(outcome.connection.key, 'oauth-1');
    assert.equal(outcome.connection.tenantKey, 't-oauth');
    assert.ok(outcome.connection.tokenExpiresAt);
    assert.equal(outcome.popupClosed, true, 'the connect window is closed once it has reported');
    oauthConnection = outcome.connection;
    assert.equal(oauth.stats().authorizationCodeGrants, 1);
    const res = await act(t, oauthConnection.id);
    assert.equal(res.status, 200, res.text);
    assert.equal(res.json.output.login, 'alice');
  });

  test('closing the popup resolves with null', async () => {
    const outcome = await browserConnect(tenant('t-oauth'), { connectorKey: 'test-oauth' },
      { closePopup: true });
    assert.deepEqual(outcome, { connection: null });
  });

  test('a 401 from the app refreshes the token once and retries', async () => {
    const t = tenant('t-oauth');
    const before = oauth.stats();
    assert.ok(oauth.expireAccessTokens() >= 1);
    const res = await act(t, oauthConnection.id);
    assert.equal(res.status, 200, res.text);
    const now = oauth.stats();
    assert.equal(now.refreshTokenGrants - before.refreshTokenGrants, 1);
    assert.equal(now.apiUnauthorized - before.apiUnauthorized, 1);
  });

  test('20 concurrent calls on an expired token cause exactly one refresh', async () => {
    const t = tenant('t-oauth');
    const before = oauth.stats();
    oauth.expireAccessTokens();
    const results = await Promise.all(Array.from({ length: 20 }, () => act(t, oauthConnection.id)));
    for (const r of results) assert.equal(r.status, 200, r.text);
    assert.equal(oauth.stats().refreshTokenGrants - before.refreshTokenGrants, 1);
  });

  test('a token about to expire is refreshed before use', async () => {
    await oauthConnector('short-oauth', shortOauth);
    const t = tenant('t-short');
    const outcome = await browserConnect(t, { connectorKey: 'short-oauth' });
    assert.equal(outcome.connection?.state, 'READY', JSON.stringify(outcome));
    await sleep(2500);  // the 4 s token is now within its refresh margin (half its life)
    const before = shortOauth.stats();
    const res = await act(t, outcome.connection.id);
    assert.equal(res.status, 200, res.text);
    const now = shortOauth.stats();
    assert.equal(now.refreshTokenGrants - before.refreshTokenGrants, 1);
    assert.equal(now.apiUnauthorized - before.apiUnauthorized, 0, 'no 401 was needed');
  });

  test('a revoked refresh token turns the connection DISCONNECTED; reconnecting brings it back READY', async () => {
    const t = tenant('t-oauth');
    oauth.revokeAllRefreshTokens();
    oauth.expireAccessTokens();
    const res = await act(t, oauthConnection.id);
    expectError(res, 409, 'connection_disconnected');
    assert.equal(res.json.connectionId, oauthConnection.id);
    const got = await call('GET', `/connections/${oauthConnection.id}`, t);
    assert.equal(got.json.state, 'DISCONNECTED');
    assert.equal(got.json.disconnected, true);
    assert.equal(got.json.error.code, 'invalid_grant');
    expectError(await act(t, oauthConnection.id), 409, 'connection_disconnected');

    const outcome = await browserConnect(t, { connectionId: oauthConnection.id });
    assert.equal(outcome.connection?.id, oauthConnection.id, JSON.stringify(outcome));
    assert.equal(outcome.connection.state, 'READY');
    const again = await act(t, oauthConnection.id);
    assert.equal(again.status, 200, again.text);
    const list = await call('GET', '/connections', t);
    assert.equal(list.json.items.filter((c) => c.id === oauthConnection.id).length, 1,
      'reconnecting made no new connection');
  });

  test('one tenant never sees or uses another tenant\'s connection', async () => {
    const a = tenant('iso-a');
    const b = tenant('iso-b');
    const made = await call('POST', '/connections', a, {
      connectorKey: 'echo-vendor', connectionKey: 'shared-key', credentials: { apiKey: 'iso-key-a' },
    });
    assert.equal(made.status, 201, made.text);
    const id = made.json.id;
    for (const ref of [id, 'shared-key']) {
      const attempts = [
        ['GET', `/connections/${ref}`],
        ['PATCH', `/connections/${ref}`, { name: 'stolen' }],
        ['DELETE', `/connections/${ref}`],
        ['POST', `/connections/${ref}/restore`],
        ['POST', `/connections/${ref}/refresh`],
      ];
      for (const [method, p, body] of attempts) {
        expectError(await call(method, p, b, body), 404, 'connection_not_found');
      }
    }
    expectError(await call('POST', '/act', b, { connectionId: id, api: { path: '/x' } }), 404,
      'connection_not_found');
    expectError(await call('POST', '/connections', b, { connectionId: id }), 404, 'connection_not_found');
    const sessionOther = await api(srv.url, 'GET', `/connections/${id}`, { cookie });
    expectError(sessionOther, 404, 'connection_not_found');
    const listB = await call('GET', '/connections', b);
    assert.equal(listB.json.items.some((c) => c.id === id), false);
    // The same key in tenant B is B's own connection, not A's.
    const own = await call('POST', '/connections', b, {
      connectorKey: 'echo-vendor', connectionKey: 'shared-key', credentials: { apiKey: 'iso-key-b' },
    });
    assert.equal(own.status, 201, own.text);
    assert.notEqual(own.json.id, id);
    await call('POST', '/act', b, { connectionKey: 'shared-key', api: { path: '/whoami' } });
    assert.equal(vendor.calls().at(-1).headers['x-api-key'], 'iso-key-b');
    // A's connection is untouched, and a manager without a tenant can read it by id.
    const still = await call('GET', `/connections/${id}`, a);
    assert.equal(still.json.name, made.json.name);
    assert.equal(still.json.isArchived, false);
    assert.equal((await call('GET', `/connections/${id}`, manager())).status, 200);
    // A manager without a tenant lists every tenant's connections.
    const all = await call('GET', '/connections?limit=1000', manager());
    const tenants = new Set(all.json.items.map((c) => c.tenantKey));
    assert.ok(tenants.has('iso-a') && tenants.has('iso-b'), [...tenants].join(', '));
  });

  test('archive hides a connection from lists and /act; restore brings it back', async () => {
    const t = tenant('t-key');
    const del = await call('DELETE', '/connections/echo-1', t);
    assert.equal(del.status, 200, del.text);
    assert.equal(del.json.isArchived, true);
    const list = await call('GET', '/connections', t);
    assert.equal(list.json.items.some((c) => c.key === 'echo-1'), false);
    expectError(await call('POST', '/act', t, { connectionKey: 'echo-1', api: { path: '/x' } }), 404,
      'connection_not_found');
    const all = await call('GET', '/connections?includeArchived=1', t);
    assert.equal(all.json.items.some((c) => c.key === 'echo-1'), true);
    const restored = await call('POST', `/connections/${del.json.id}/restore`, t);
    assert.equal(restored.status, 200, restored.text);
    assert.equal(restored.json.isArchived, false);
    assert.equal((await call('POST', '/act', t, { connectionKey: 'echo-1', api: { path: '/x' } })).status, 200);
  });

  test('every connection lifecycle event reaches the admin\'s webhook endpoint, signed', async () => {
    const wanted = ['connection.created', 'connection.ready', 'connection.disconnected',
      'connection.reconnected', 'connection.archived', 'connection.restored'];
    const hooks = await eventually(() => {
      const got = vendor.seen.filter((r) => r.url === '/hooks');
      const types = new Set(got.map((r) => JSON.parse(r.body).type));
      return wanted.every((t) => types.has(t)) ? got : null;
    }, { timeoutMs: 15000 });
    for (const h of hooks) {
      validateWebhook(h.headers, h.body);
      const event = JSON.parse(h.body);
      assert.match(event.data.id, /^conn_/);
      assert.equal(h.body.includes('accessToken'), false);
    }
    const disconnected = hooks.map((h) => JSON.parse(h.body))
      .find((e) => e.type === 'connection.disconnected');
    assert.equal(disconnected.data.id, oauthConnection.id);
    assert.equal(disconnected.data.state, 'DISCONNECTED');
  });

  test('rotating the master key re-encrypts every secret under the new key id', async () => {
    const rotated = await call('POST', '/v1/keys/rotate', manager());
    assert.equal(rotated.status, 200, rotated.text);
    assert.match(rotated.json.kid, /^k[0-9a-f]{8}$/);
    assert.notEqual(rotated.json.kid, rotated.json.previousKid);
    assert.ok(rotated.json.resealed >= 5, rotated.text);
    expectError(await call('POST', '/v1/keys/rotate', tenant('t-key')), 403, 'forbidden');
    const keys = fs.readdirSync(path.join(srv.dataDir, 'keys')).filter((f) => f.endsWith('.key'));
    assert.ok(keys.includes(`${rotated.json.kid}.key`));
    assert.ok(keys.includes(`${rotated.json.previousKid}.key`), 'the old key is kept for backups');
    // Everything still opens: API keys, OAuth tokens, the workspace secret.
    assert.equal((await call('POST', '/act', tenant('t-key'), { connectionKey: 'echo-1', api: { path: '/x' } })).status, 200);
    assert.equal((await act(tenant('t-oauth'), oauthConnection.id)).status, 200);
    assert.deepEqual((await api(srv.url, 'GET', '/v1/credentials', { cookie })).json, creds);
    // Proof that nothing is left under the old key: take it away and restart on the same data.
    await srv.stop();
    const aside = path.join(srv.dataDir, 'old-key-aside');
    fs.renameSync(path.join(srv.dataDir, 'keys', `${rotated.json.previousKid}.key`), aside);
    assert.equal(fs.existsSync(path.join(srv.dataDir, 'master.key')), false);
    srv = await startServer({ dataDir: srv.dataDir, args: ['--allow-private-egress'] });
    const again = await call('GET', '/v1/credentials', manager());
    assert.equal(again.status, 200, again.text);
    assert.equal(again.json.workspaceSecret, creds.workspaceSecret);
    assert.equal((await call('POST', '/act', tenant('t-key'), { connectionKey: 'echo-1', api: { path: '/y' } })).status, 200);
    assert.equal((await act(tenant('t-oauth'), oauthConnection.id)).status, 200);
  });

  test('the database holds no token, key or secret in plaintext', async () => {
    const tokens = [...oauth.issuedTokens(), ...shortOauth.issuedTokens()];
    assert.ok(tokens.length >= 4, `expected several issued tokens, got ${tokens.length}`);
    const secrets = [...tokens, 'key-e2e-secret-123456', 'iso-key-a', 'iso-key-b',
      client.client_secret, creds.workspaceSecret];
    const files = fs.readdirSync(srv.dataDir).filter((f) => f.startsWith('agentgate.db'));
    assert.ok(files.length >= 1);
    for (const f of files) {
      const bytes = fs.readFileSync(path.join(srv.dataDir, f));
      for (const s of secrets) {
        assert.equal(bytes.includes(Buffer.from(s)), false, `${f} contains ${s.slice(0, 12)}…`);
      }
    }
    const logs = srv.logs();
    for (const s of secrets) assert.equal(logs.includes(s), false, `the log contains ${s.slice(0, 12)}…`);
  });
});

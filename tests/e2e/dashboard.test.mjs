// The dashboard at /dashboard in a real browser (Debian's Chromium through playwright-core):
// sign-in through the mail a real SMTP server received; grants made and revoked in the UI and
// seen by /permission/check; an agent's permission request approved with a narrower scope; a
// connection made through the connect popup against a real OAuth server (oidc-provider); a run's
// details; a webhook endpoint's delivery replayed; a token shown once; the activity feed updating
// without a reload; CSRF refused for a page of another origin; a phone-sized screen; the keyboard.
//
// With AGENTGATE_SCREENSHOTS=<dir> the test saves PNGs of the main pages there
// (scripts/screenshots.sh writes docs/screenshots/).

import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import { mkdirSync } from 'node:fs';
import path from 'node:path';
import jwt from 'jsonwebtoken';
import { api, registerAgent, signIn, startServer, uniqueEmail } from './lib/server.mjs';
import { launchBrowser } from './lib/browser.mjs';
import { approveInBrowser, startOAuthServer } from './lib/oauth_server.mjs';
import { startRecorder } from './lib/vendor.mjs';
import { eventually } from './lib/expect.mjs';

const SHOTS = process.env.AGENTGATE_SCREENSHOTS ? path.resolve(process.env.AGENTGATE_SCREENSHOTS) : null;
const LINK_RE = /(https?:\/\/[^\s"'<>]+\/auth\/verify\?token=ml_[A-Za-z0-9_-]+)/;
const DESKTOP = { width: 1280, height: 860 };
const PHONE = { width: 375, height: 740 };

// fullPage: the whole page; otherwise what the window shows (long lists would make a poster).
async function shot(page, name, { fullPage = true } = {}) {
  if (!SHOTS) return;
  mkdirSync(SHOTS, { recursive: true });
  await page.evaluate(() => { document.getElementById('status').textContent = ''; }); // no toast over the page
  await page.screenshot({ path: path.join(SHOTS, `${name}.png`), fullPage });
}

// A page served on another origin that posts to agentgate with the browser's cookies.
async function startAttacker(target, agentId) {
  const server = http.createServer((req, res) => {
    const json = JSON.stringify({ agent_id: agentId, action: 'csrf:evil', x: '' }).slice(0, -2);
    // enctype=text/plain makes the body `<name>=<value>`: here exactly a JSON object.
    const page = `<!doctype html><html><body>
<form id="f" method="POST" action="${target}/permission/grant" enctype="text/plain">
<input type="hidden" name='${json}' value='"}'></form>
<script>
  window.fetchResult = 'pending';
  fetch(${JSON.stringify(`${target}/permission/grant`)}, { method: 'POST', credentials: 'include', mode: 'no-cors',
    headers: { 'Content-Type': 'text/plain' }, body: ${JSON.stringify(JSON.stringify({ agent_id: agentId, action: 'csrf:fetch' }))} })
    .then(() => { window.fetchResult = 'sent'; }, () => { window.fetchResult = 'failed'; });
</script></body></html>`;
    res.writeHead(200, { 'Content-Type': 'text/html' });
    res.end(page);
  });
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address();
  return { port, close: () => new Promise((resolve) => server.close(resolve)) };
}

describe('dashboard in a real browser', () => {
  let srv, browser, context, page, oauth, recorder, creds, adminCookie;
  const email = uniqueEmail('dash');
  const oauthClient = { client_id: 'agentgate-dash', client_secret: 'client-secret-dash-0123456789' };
  const problems = [];

  const manager = () => jwt.sign({ workspaceKey: creds.workspaceKey, isAdmin: true }, creds.workspaceSecret,
    { algorithm: 'HS256', expiresIn: '5m' });
  const check = (agent, action) => api(srv.url, 'GET',
    `/permission/check?agent_id=${agent.agent_id}&action=${encodeURIComponent(action)}`, { bearer: agent.secret });
  const checkWith = (agent, action, context) => api(srv.url, 'POST', '/permission/check',
    { bearer: agent.secret, body: { agent_id: agent.agent_id, action, context } });

  // Shows a page by its hash route and waits until it finished loading.
  async function show(p, hash, heading) {
    await p.goto(`${srv.url}/dashboard#${hash}`);
    await p.getByRole('heading', { level: 1, name: heading }).waitFor();
    await settled(p);
  }
  async function settled(p) {
    await p.waitForFunction(() => document.querySelectorAll('[aria-busy="true"]').length === 0, null, { timeout: 10000 });
  }

  function watch(p) {
    p.on('pageerror', (e) => problems.push(`pageerror: ${e.message}`));
    p.on('console', (m) => {
      if (m.type() === 'error' && /Content Security Policy|Refused to/i.test(m.text())) problems.push(`console: ${m.text()}`);
    });
  }

  before(async () => {
    srv = await startServer({ smtp: true, args: ['--allow-private-egress', '--rate-limit', 'register=off'] });
    // The first person to sign in is the server's admin: someone else, so the dashboard's user is
    // an ordinary person.
    adminCookie = await signIn(srv.url, uniqueEmail('admin'));
    const got = await api(srv.url, 'GET', '/v1/credentials', { cookie: adminCookie });
    assert.equal(got.status, 200, got.text);
    creds = got.json;
    oauth = await startOAuthServer({ clients: [{ ...oauthClient, redirect_uris: [`${srv.url}/oauth/callback`] }] });
    const connector = await api(srv.url, 'POST', '/connectors', {
      bearer: manager(),
      body: {
        key: 'test-oauth', name: 'Test OAuth app', baseUrl: oauth.apiBaseUrl,
        auth: { type: 'oauth2', authorizeUrl: oauth.authorizeUrl, tokenUrl: oauth.tokenUrl,
          scopes: ['openid', 'read'], pkce: true, clientAuth: 'basic' },
      },
    });
    assert.equal(connector.status, 201, connector.text);
    const integration = await api(srv.url, 'POST', '/integrations', {
      bearer: manager(),
      body: { connectorKey: 'test-oauth', parameters: { clientId: oauthClient.client_id, clientSecret: oauthClient.client_secret } },
    });
    assert.equal(integration.status, 201, integration.text);
    recorder = await startRecorder();
    browser = await launchBrowser();
    context = await browser.newContext({ viewport: DESKTOP });
    page = await context.newPage();
    watch(page);
  });

  after(async () => {
    await browser?.close();
    await oauth?.close();
    await recorder?.close?.();
    await srv?.stop();
  });

  test('the page and its assets: strict CSP, nosniff, no-store, no inline script or style', async () => {
    // api() also checks each answer against docs/openapi.json (headers and content types).
    const res = await api(srv.url, 'GET', '/dashboard');
    assert.equal(res.status, 200);
    assert.match(res.headers.get('content-type'), /^text\/html/);
    const csp = res.headers.get('content-security-policy');
    assert.match(csp, /default-src 'self'/);
    assert.match(csp, /frame-ancestors 'none'/);
    assert.doesNotMatch(csp, /unsafe-inline|unsafe-eval/);
    assert.equal(res.headers.get('x-content-type-options'), 'nosniff');
    assert.equal(res.headers.get('cache-control'), 'no-store');
    const html = res.text;
    assert.doesNotMatch(html, /<script>|<script(?![^>]*\bsrc=)[^>]*>|<style|\sstyle=|\son[a-z]+=/i, 'no inline script, style or handler');
    assert.doesNotMatch(html, /https?:\/\//, 'no external resources');
    for (const [p, type] of [['/dashboard/app.js', /^text\/javascript/], ['/dashboard/app.css', /^text\/css/]]) {
      const r = await api(srv.url, 'GET', p);
      assert.equal(r.status, 200, p);
      assert.match(r.headers.get('content-type'), type, p);
      assert.equal(r.headers.get('x-content-type-options'), 'nosniff', p);
      assert.equal(r.headers.get('cache-control'), 'no-cache', p);
      const body = r.text;
      assert.doesNotMatch(body, /https?:\/\/(?!example\.com\/)/, `${p} loads nothing from elsewhere`);
      if (p.endsWith('.js')) assert.doesNotMatch(body, /\.innerHTML|insertAdjacentHTML|document\.write\(/, 'DOM built with textContent only');
    }
  });

  test('signed out: the sign-in form; the link from the mail signs in', async () => {
    await page.goto(`${srv.url}/dashboard`);
    await page.getByRole('heading', { name: 'Sign in to agentgate' }).waitFor();
    assert.equal(await page.locator('#nav').isVisible(), false, 'no nav when signed out');
    await shot(page, 'sign-in');
    // An invalid address is refused in the page.
    await page.getByLabel('Email address').fill('not-an-address');
    await page.getByRole('button', { name: 'Email me a sign-in link' }).click();
    await page.getByRole('alert').filter({ hasText: 'valid email address' }).waitFor();

    const mailFrom = srv.smtp.messages.length;
    await page.getByLabel('Email address').fill(email);
    await page.getByRole('button', { name: 'Email me a sign-in link' }).click();
    await page.getByRole('heading', { name: 'Check your email' }).waitFor();
    assert.match(await page.locator('#check-email').textContent(), new RegExp(email.replace(/[.+]/g, '\\$&')));
    const mail = await srv.smtp.waitForMessage((m, i) => i >= mailFrom && m.to.includes(email));
    const link = (mail.text.match(LINK_RE) ?? mail.raw.match(LINK_RE))[1];
    await page.goto(link);
    await page.waitForURL(/\/dashboard/);
    await page.locator('#account-email').filter({ hasText: email }).waitFor();
    assert.equal(await page.locator('#nav').isVisible(), true);
    assert.equal(await page.getByRole('link', { name: 'Agents' }).getAttribute('aria-current'), 'page');

    // The same link again, in another browser: it worked once, so the form says it is used up.
    const stranger = await browser.newContext();
    try {
      const p = await stranger.newPage();
      watch(p);
      await p.goto(link);
      await p.getByRole('heading', { name: 'Sign in to agentgate' }).waitFor();
      await p.getByRole('status').filter({ hasText: 'expired or was already used' }).first().waitFor();
      assert.equal(new URL(p.url()).hash, '', 'the failure is not left in the address bar');
      assert.equal(await p.locator('#nav').isVisible(), false);
    } finally {
      await stranger.close();
    }
  });

  test('signing in too often: the 429 is shown with when to retry', async () => {
    const other = uniqueEmail('limited');
    for (let i = 0; i < 5; i += 1) {
      const r = await api(srv.url, 'POST', '/auth/magic-link', { body: { email: other } });
      assert.equal(r.status, 200, r.text);
    }
    const fresh = await browser.newPage();
    watch(fresh);
    try {
      await fresh.goto(`${srv.url}/dashboard`);
      await fresh.getByLabel('Email address').fill(other);
      await fresh.getByRole('button', { name: 'Email me a sign-in link' }).click();
      const alert = fresh.getByRole('alert').filter({ hasText: 'Try again in' });
      await alert.waitFor();
      assert.match(await alert.textContent(), /rate_limited/);
    } finally {
      await fresh.close();
    }
  });

  let agent;
  test('grant through the form: /permission/check allows, within the scope; revoke: denied again', async () => {
    agent = await registerAgent(srv.url, { name: 'Invoice bot', developer_email: email });
    assert.equal((await check(agent, 'invoices:pay')).json.allowed, false);

    await show(page, 'grants', 'Grants');
    await page.getByLabel('Agent', { exact: true }).fill(agent.agent_id);
    await page.getByLabel('Action', { exact: true }).fill('invoices:pay');
    await page.getByLabel('Expires in').fill('7d');
    await page.getByRole('button', { name: 'Add a limit' }).click();
    const row = page.locator('.scope-row').first();
    await row.getByLabel('Field').fill('amount');
    await row.getByLabel('Maximum').fill('500');
    await page.getByRole('button', { name: 'Add a limit' }).click();
    const row2 = page.locator('.scope-row').nth(1);
    await row2.getByLabel('Kind').selectOption('allowed');
    await row2.getByLabel('Field').fill('currency');
    await row2.getByLabel('Allowed values').fill('EUR, USD');
    await page.getByRole('button', { name: 'Grant', exact: true }).click();
    await page.getByRole('status').filter({ hasText: 'Granted' }).first().waitFor();

    const allowed = await check(agent, 'invoices:pay');
    assert.equal(allowed.json.allowed, true, allowed.text);
    assert.deepEqual(allowed.json.scope, { max_amount: 500, allowed_currency: ['EUR', 'USD'] });
    assert.equal((await checkWith(agent, 'invoices:pay', { amount: 400, currency: 'EUR' })).json.allowed, true);
    const over = await checkWith(agent, 'invoices:pay', { amount: 700, currency: 'EUR' });
    assert.equal(over.json.allowed, false);
    assert.equal(over.json.constraint, 'max_amount');

    const grantRow = page.locator('tr', { hasText: 'invoices:pay' });
    await grantRow.waitFor();
    assert.match(await grantRow.textContent(), /amount at most 500/);
    await shot(page, 'grants');

    await grantRow.getByRole('button', { name: /^Revoke invoices:pay/ }).click();
    await grantRow.getByRole('button', { name: 'Yes, revoke' }).click();
    await page.getByText('You have no active grants').waitFor();
    const denied = await check(agent, 'invoices:pay');
    assert.equal(denied.json.allowed, false, denied.text);
  });

  test('keyboard: the nav and the grant form work with Tab and Enter, with a visible focus', async () => {
    await show(page, 'agents', 'Agents');
    await page.locator('body').focus();
    let onLink = false;
    for (let i = 0; i < 25 && !onLink; i += 1) {
      await page.keyboard.press('Tab');
      onLink = await page.evaluate(() => document.activeElement?.getAttribute('data-page') === 'grants');
    }
    assert.ok(onLink, 'Tab reaches the Grants link');
    const outline = await page.evaluate(() => getComputedStyle(document.activeElement).outlineStyle);
    assert.notEqual(outline, 'none', 'the focused link shows its focus');
    await page.keyboard.press('Enter');
    await page.getByRole('heading', { level: 1, name: 'Grants' }).waitFor();
    assert.equal(await page.evaluate(() => location.hash), '#grants');
    assert.equal(await page.evaluate(() => document.activeElement?.tagName), 'H1', 'focus moves to the page heading');
    await settled(page);

    await page.keyboard.press('Tab');
    assert.equal(await page.evaluate(() => document.activeElement?.name), 'agent_id');
    await page.keyboard.type(agent.agent_id);
    await page.keyboard.press('Escape'); // closes the suggestions list, if it opened
    await page.keyboard.press('Tab');
    assert.equal(await page.evaluate(() => document.activeElement?.name), 'action');
    await page.keyboard.type('reports:read');
    await page.keyboard.press('Enter');
    await page.getByRole('status').filter({ hasText: 'Granted reports:read' }).first().waitFor();
    assert.equal((await check(agent, 'reports:read')).json.allowed, true);
  });

  test('an agent\'s permission request is approved with a narrower scope; its check reflects it', async () => {
    const asker = await registerAgent(srv.url, { name: 'Travel agent', developer_email: uniqueEmail('dev') });
    const made = await api(srv.url, 'POST', '/v1/permission-requests', {
      bearer: asker.secret,
      body: { agent_id: asker.agent_id, action: 'flights:book', reason: 'Book the Berlin trip for next week',
        email, scope: { max_price: 1000 }, expires_in: '7d' },
    });
    assert.equal(made.status, 201, made.text);
    const id = made.json.request_id;

    await show(page, 'requests', 'Requests');
    const card = page.locator(`[data-request-id="${id}"]`).first();
    await card.waitFor();
    assert.match(await card.textContent(), /Book the Berlin trip/);
    assert.match(await card.textContent(), /price at most 1000/);
    await card.getByRole('button', { name: /^Approve/ }).click();
    await shot(page, 'requests');
    const maximum = card.getByLabel('Maximum');
    assert.equal(await maximum.inputValue(), '1000', 'prefilled with what the agent asked');
    assert.equal(await card.getByLabel('Expires in').inputValue(), '7d');
    await maximum.fill('300');
    await card.getByLabel('Expires in').fill('24h');
    await card.getByRole('button', { name: 'Approve', exact: true }).click();
    await page.getByText('No requests are waiting for you.').waitFor();
    await page.locator(`tr[data-request-id="${id}"]`).filter({ hasText: 'approved' }).waitFor();
    assert.match(await page.locator(`tr[data-request-id="${id}"]`).textContent(), /Granted: price at most 300, until /);

    const got = await api(srv.url, 'GET', `/v1/permission-requests/${id}`, { bearer: asker.secret });
    assert.equal(got.json.status, 'approved', got.text);
    assert.deepEqual(got.json.permission.scope, { max_price: 300 });
    const allowed = await check(asker, 'flights:book');
    assert.equal(allowed.json.allowed, true, allowed.text);
    assert.deepEqual(allowed.json.scope, { max_price: 300 });
    assert.equal((await checkWith(asker, 'flights:book', { price: 250 })).json.allowed, true);
    const over = await checkWith(asker, 'flights:book', { price: 800 });
    assert.equal(over.json.allowed, false, over.text);
    assert.equal(over.json.constraint, 'max_price');
  });

  test('agents: owned and granted, with status, active grants and last seen; more pages load', async () => {
    // Someone else's agent this person granted two things (one revoked later), and which checked.
    const helper = await registerAgent(srv.url, { name: 'Mail helper', developer_email: uniqueEmail('dev') });
    const grants = [];
    for (const action of ['mail:read', 'mail:send']) {
      const g = await api(srv.url, 'POST', '/permission/grant', {
        cookie: await sessionCookie(), body: { agent_id: helper.agent_id, action },
      });
      assert.equal(g.status, 201, g.text);
      grants.push(g.json);
    }
    const revoked = await api(srv.url, 'POST', '/permission/revoke', {
      cookie: await sessionCookie(), headers: { Origin: srv.url }, body: { permission_id: grants[1].permission_id },
    });
    assert.equal(revoked.status, 200, revoked.text);
    assert.equal((await check(helper, 'mail:read')).json.allowed, true);

    await show(page, 'agents', 'Agents');
    const row = page.locator(`tr[data-agent-id="${agent.agent_id}"]`);
    await row.waitFor();
    const text = await row.textContent();
    assert.match(text, /Invoice bot/);
    assert.match(text, /Owned/);
    assert.match(text, /active/);
    const cells = async (id) => page.locator(`tr[data-agent-id="${id}"] td`).allTextContents();
    const helperCells = await cells(helper.agent_id);
    assert.ok(helperCells.some((c) => /Granted/.test(c)) && !helperCells.some((c) => /Owned/.test(c)), helperCells.join(' | '));
    assert.ok(helperCells.some((c) => /Active grants\s*1$|^1$/.test(c.trim())), `one active grant: ${helperCells.join(' | ')}`);
    assert.ok(!helperCells.some((c) => /never/i.test(c)), `it checked, so it was seen: ${helperCells.join(' | ')}`);
    await shot(page, 'agents');

    // Past the first page of 50, "Load more" appends the next page to the first.
    const before = await page.locator('tr[data-agent-id]').count();
    if (await page.getByRole('button', { name: 'Load more' }).count() === 0) {
      for (let i = before; i <= 50; i++) await registerAgent(srv.url, { developer_email: email });
      await page.reload();
      await page.getByRole('heading', { level: 1, name: 'Agents' }).waitFor();
      await settled(page);
    }
    const firstPage = await page.locator('tr[data-agent-id]').count();
    assert.equal(firstPage, 50);
    await page.getByRole('button', { name: 'Load more' }).click();
    await settled(page);
    await eventually(async () => assert.ok(await page.locator('tr[data-agent-id]').count() > 50));
    assert.equal(await page.locator(`tr[data-agent-id="${agent.agent_id}"]`).count(), 1, 'no duplicates');
  });

  let connection;
  test('connections: connect through the connect popup against the OAuth server', async () => {
    await show(page, 'connections', 'Connections');
    await page.getByText('No connections yet').waitFor();
    await page.getByLabel('App', { exact: true }).selectOption('integrationKey:test-oauth');
    await page.getByLabel('Name').fill('My test app');
    const popupPromise = page.waitForEvent('popup');
    await page.getByRole('button', { name: 'Connect', exact: true }).click();
    const popup = await popupPromise;
    await popup.waitForURL(/\/connect\?session=cs_/);
    await popup.locator('#submit:not([hidden])').waitFor();
    await popup.click('#submit');
    await approveInBrowser(popup);
    const row = page.locator('tr', { hasText: 'My test app' });
    await row.filter({ hasText: 'READY' }).waitFor({ timeout: 20000 });
    await page.getByRole('status').filter({ hasText: 'is connected' }).waitFor();

    const list = await api(srv.url, 'GET', '/connections', { cookie: await sessionCookie() });
    connection = list.json.items.find((c) => c.name === 'My test app');
    assert.equal(connection?.state, 'READY', list.text);
    assert.equal(oauth.stats().authorizationCodeGrants, 1);
    await shot(page, 'connections');
  });

  async function sessionCookie() {
    return (await context.cookies()).find((c) => c.name === 'ap_session').value;
  }

  test('runs: a run through the connection, with its request and exchanges in the details', async () => {
    const cookie = await sessionCookie();
    const ran = await api(srv.url, 'POST', '/act', { cookie, body: { connectionId: connection.id, api: { method: 'GET', path: '/me' } } });
    assert.equal(ran.status, 200, ran.text);
    await show(page, 'runs', 'Runs');
    const row = page.locator('tr[data-run-id]').first();
    await row.waitFor();
    assert.match(await row.textContent(), /success/);
    await row.getByRole('button', { name: /^Details of run/ }).click();
    await page.getByRole('heading', { name: 'Exchanges (1)' }).waitFor();
    const details = await page.locator('.details').textContent();
    assert.match(details, /GET http:\/\/127\.0\.0\.1:\d+.*\/me → 200/);
    assert.match(details, /\[REDACTED\]/, 'the Authorization header is redacted');
    await shot(page, 'runs');
  });

  test('connections: reconnect through the popup keeps the connection; disconnect archives it; restore brings it back', async () => {
    await show(page, 'connections', 'Connections');
    const row = page.locator(`tr[data-connection-id="${connection.id}"]`);
    await row.filter({ hasText: 'READY' }).waitFor();
    const grantsBefore = oauth.stats().authorizationCodeGrants;
    const popupPromise = page.waitForEvent('popup');
    await row.getByRole('button', { name: 'Reconnect My test app' }).click();
    const popup = await popupPromise;
    await popup.waitForURL(/\/connect\?session=cs_/);
    await popup.locator('#submit:not([hidden])').waitFor();
    await popup.click('#submit');
    await approveInBrowser(popup);
    await page.getByRole('status').filter({ hasText: 'is connected' }).waitFor({ timeout: 20000 });
    assert.equal(oauth.stats().authorizationCodeGrants, grantsBefore + 1, 'a new code exchange');
    const cookie = await sessionCookie();
    const after = await api(srv.url, 'GET', `/connections/${connection.id}`, { cookie });
    assert.equal(after.status, 200, after.text);
    assert.equal(after.json.state, 'READY');
    assert.equal(after.json.id, connection.id, 'the same record');

    await row.getByRole('button', { name: 'Disconnect My test app' }).click();
    await row.getByRole('button', { name: 'Yes, disconnect' }).click();
    await page.getByRole('status').filter({ hasText: 'is disconnected' }).waitFor();
    await page.getByText('No connections yet').waitFor();
    const gone = await api(srv.url, 'GET', `/connections/${connection.id}`, { cookie });
    assert.equal(gone.status, 404, gone.text);
    const archived = await api(srv.url, 'GET', '/connections?includeArchived=1', { cookie });
    assert.equal(archived.json.items.find((c) => c.id === connection.id)?.isArchived, true, archived.text);
    const refused = await api(srv.url, 'POST', '/act', { cookie, body: { connectionId: connection.id, api: { method: 'GET', path: '/me' } } });
    assert.ok(refused.status >= 400 && refused.status < 500, `no run through a disconnected connection: ${refused.text}`);

    // "Show archived" lists it, and Restore brings it back with its credentials.
    await page.getByLabel(/Show archived/).check();
    await row.filter({ hasText: 'archived' }).waitFor();
    assert.equal(await row.getByRole('button', { name: 'Disconnect My test app' }).count(), 0, 'no disconnect on a disconnected row');
    await row.getByRole('button', { name: 'Restore My test app' }).click();
    await page.getByRole('status').filter({ hasText: 'is restored (READY)' }).waitFor();
    await row.filter({ hasText: 'READY' }).waitFor();
    const again = await api(srv.url, 'POST', '/act', { cookie, body: { connectionId: connection.id, api: { method: 'GET', path: '/me' } } });
    assert.equal(again.status, 200, `a run through the restored connection: ${again.text}`);
    await page.getByLabel(/Show archived/).uncheck();
    await row.filter({ hasText: 'READY' }).waitFor();
  });

  test('tokens: created with abilities, plaintext shown once, usable, revoked', async () => {
    await show(page, 'tokens', 'Tokens');
    await page.getByLabel('Name').fill('reporting script');
    await page.getByRole('checkbox', { name: /permission:view-any/ }).check();
    await page.getByRole('checkbox', { name: /activity:view-any/ }).check();
    await page.getByLabel('Expires').selectOption('30d');
    await page.getByRole('button', { name: 'Create token' }).click();
    const secret = page.locator('input[data-secret]');
    await secret.waitFor();
    const token = await secret.inputValue();
    assert.match(token, /^agt_/);
    await page.getByText('shown once only').waitFor();
    await page.locator('tr', { hasText: 'reporting script' }).waitFor();
    await shot(page, 'tokens');
    const used = await api(srv.url, 'GET', '/permissions', { bearer: token });
    assert.equal(used.status, 200, used.text);

    await show(page, 'tokens', 'Tokens');
    await page.reload();
    await page.locator('tr', { hasText: 'reporting script' }).waitFor();
    assert.equal((await page.content()).includes(token), false, 'the plaintext is not shown again');
    const row = page.locator('tr', { hasText: 'reporting script' });
    await row.getByRole('button', { name: 'Revoke token reporting script' }).click();
    await row.getByRole('button', { name: 'Yes, revoke' }).click();
    await page.getByText('No tokens. Create one above.').waitFor();
    assert.equal((await api(srv.url, 'GET', '/permissions', { bearer: token })).status, 401);
  });

  test('webhooks: an endpoint with its secret shown once, a test delivery and its replay', async () => {
    await show(page, 'webhooks', 'Webhooks');
    await page.getByLabel('URL').fill(`${recorder.url}/hooks`);
    await page.getByLabel('Description').fill('Ops channel');
    await page.getByRole('button', { name: 'Add endpoint' }).click();
    const secret = await page.locator('input[data-secret]').inputValue();
    assert.match(secret, /^whsec_/);
    const card = page.locator('article[data-webhook-id]', { hasText: 'Ops channel' });
    await card.waitFor();
    await card.getByRole('button', { name: 'Send test event' }).click();
    const tests = () => recorder.count((r) => r.json?.type === 'webhook.test');
    await eventually(() => tests() >= 1, { timeoutMs: 10000 });
    assert.equal(tests(), 1, 'the test event was delivered');
    await card.getByRole('button', { name: 'Show deliveries' }).click();
    const message = card.locator('tr[data-message-id]', { hasText: 'webhook.test' });
    await message.waitFor();
    await message.getByRole('button', { name: /^Replay webhook\.test/ }).click();
    await eventually(() => tests() >= 2, { timeoutMs: 10000 });
    assert.equal(tests(), 2, 'the replay was delivered');
    const ids = recorder.requests.filter((r) => r.json?.type === 'webhook.test').map((r) => r.headers['webhook-id']);
    assert.equal(ids[0], ids[1], 'the replay carries the same webhook-id');
    await card.locator('tr[data-trigger="replay"]').waitFor({ timeout: 10000 });
    await shot(page, 'webhooks');
  });

  test('activity: a new event appears without a reload; the live toggle pauses', async () => {
    await show(page, 'activity', 'Activity');
    await page.locator('#activity-list table').waitFor();
    await page.evaluate(() => { window.notReloaded = true; });
    const newcomer = await registerAgent(srv.url, { name: 'Newcomer', developer_email: email });
    await page.locator(`tr:has-text("agent.register"):has-text("${newcomer.agent_id}")`).waitFor({ timeout: 15000 });
    assert.equal(await page.evaluate(() => window.notReloaded), true, 'the page was not reloaded');
    assert.match(await page.locator('#live-state').textContent(), /Live/);
    await shot(page, 'activity', { fullPage: false });
    await page.getByLabel('Live updates').uncheck();
    await page.locator('#live-state').filter({ hasText: 'Paused' }).waitFor();
    await page.getByLabel('Live updates').check();
  });

  test('CSRF: a page of another origin posting with the session cookie creates no grant', async () => {
    const before = await api(srv.url, 'GET', '/permissions?status=all', { cookie: await sessionCookie() });
    const attacker = await startAttacker(srv.url, agent.agent_id);
    try {
      // Same site, other origin (another port of 127.0.0.1): the Lax cookie is sent, so only the
      // server's Origin check stands in the way. Then another site (localhost): no cookie either.
      for (const origin of [`http://127.0.0.1:${attacker.port}`, `http://localhost:${attacker.port}`]) {
        const evil = await context.newPage();
        try {
          await evil.goto(`${origin}/`);
          await evil.waitForFunction(() => window.fetchResult !== 'pending');
          await Promise.all([evil.waitForURL(`${srv.url}/permission/grant`), evil.evaluate(() => document.getElementById('f').submit())]);
          const answer = JSON.parse(await evil.locator('body').textContent());
          assert.ok(['forbidden', 'unauthorized'].includes(answer.error), JSON.stringify(answer));
          if (origin.includes('127.0.0.1')) assert.equal(answer.error, 'forbidden', 'the Origin check refused it');
        } finally {
          await evil.close();
        }
      }
    } finally {
      await attacker.close();
    }
    const afterAll = await api(srv.url, 'GET', '/permissions?status=all', { cookie: await sessionCookie() });
    assert.equal(afterAll.json.permissions.length, before.json.permissions.length, 'no grant was made');
    assert.equal(afterAll.json.permissions.some((p) => p.action.startsWith('csrf:')), false);
    // The same request from curl-like clients with a foreign Origin header is refused too.
    const forged = await api(srv.url, 'POST', '/permission/grant', {
      cookie: await sessionCookie(), headers: { Origin: 'http://evil.example' },
      body: { agent_id: agent.agent_id, action: 'csrf:api' },
    });
    assert.equal(forged.status, 403, forged.text);
    assert.equal(forged.json.error, 'forbidden');
  });

  test('accessibility: every control is labelled and all text meets WCAG AA contrast, on every page', async () => {
    const audit = () => {
      const problems = [];
      const visible = (el) => {
        const r = el.getBoundingClientRect();
        const cs = getComputedStyle(el);
        return r.width > 0 && r.height > 0 && cs.visibility !== 'hidden' && cs.display !== 'none';
      };
      // Labels: <label for>, a wrapping <label>, aria-label or aria-labelledby.
      for (const el of document.querySelectorAll('input:not([type=hidden]), select, textarea, button')) {
        if (!visible(el)) continue;
        const name = el.tagName === 'BUTTON' ? el.textContent.trim() || el.getAttribute('aria-label')
          : (el.labels && el.labels.length ? el.labels[0].textContent.trim() : '')
            || el.getAttribute('aria-label') || (el.getAttribute('aria-labelledby') ? 'labelledby' : '');
        if (!name) problems.push(`unlabelled ${el.tagName.toLowerCase()}${el.name ? ` name=${el.name}` : ''}`);
      }
      // Contrast of every visible text against the first opaque background behind it.
      const rgb = (c) => (c.match(/[\d.]+/g) || []).map(Number);
      const lum = ([r, g, b]) => {
        const f = (v) => { v /= 255; return v <= 0.03928 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4; };
        return 0.2126 * f(r) + 0.7152 * f(g) + 0.0722 * f(b);
      };
      const background = (el) => {
        for (let e = el; e; e = e.parentElement) {
          const c = rgb(getComputedStyle(e).backgroundColor);
          if (c.length === 3 || (c.length === 4 && c[3] >= 0.99)) return c.slice(0, 3);
        }
        return [255, 255, 255];
      };
      const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
      for (let n = walker.nextNode(); n; n = walker.nextNode()) {
        if (!n.textContent.trim()) continue;
        const el = n.parentElement;
        if (!el || !visible(el) || el.closest('[disabled], [aria-disabled=true]')) continue;
        const cs = getComputedStyle(el);
        if (el.matches('input, select, textarea') || el.closest('option')) continue;
        const fg = rgb(cs.color).slice(0, 3);
        const [l1, l2] = [lum(fg), lum(background(el))].sort((a, b) => b - a);
        const ratio = (l1 + 0.05) / (l2 + 0.05);
        const size = parseFloat(cs.fontSize);
        const large = size >= 24 || (size >= 18.66 && Number(cs.fontWeight) >= 700);
        if (ratio < (large ? 3 : 4.5)) {
          problems.push(`contrast ${ratio.toFixed(2)} for "${n.textContent.trim().slice(0, 30)}" (${cs.color} on ${background(el)})`);
        }
      }
      return problems;
    };
    for (const [hash, heading] of [['agents', 'Agents'], ['grants', 'Grants'], ['requests', 'Requests'],
      ['activity', 'Activity'], ['connections', 'Connections'], ['runs', 'Runs'], ['webhooks', 'Webhooks'], ['tokens', 'Tokens']]) {
      await show(page, hash, heading);
      const found = await page.evaluate(audit);
      assert.deepEqual([...new Set(found)], [], `#${hash}`);
    }
    // The audit itself finds what it looks for: pale text and a control without a label.
    await page.evaluate(() => {
      const probe = document.createElement('div');
      probe.id = 'audit-probe';
      probe.style.cssText = 'background:#fff;color:#bbb';  // a style attribute from script, which the CSP allows
      probe.append('pale text', document.createElement('input'));
      document.querySelector('main').append(probe);
    });
    const caught = await page.evaluate(audit);
    await page.evaluate(() => document.getElementById('audit-probe').remove());
    assert.ok(caught.some((p) => p.startsWith('contrast') && p.includes('pale text')), caught.join('; '));
    assert.ok(caught.some((p) => p.startsWith('unlabelled input')), caught.join('; '));
  });

  test('a phone-sized screen: every page fits 375 px without horizontal scrolling', async () => {
    const phone = await browser.newContext({ viewport: PHONE, isMobile: true, hasTouch: true, deviceScaleFactor: 2 });
    await phone.addCookies(await context.cookies());
    const p = await phone.newPage();
    watch(p);
    try {
      for (const [hash, heading] of [['agents', 'Agents'], ['grants', 'Grants'], ['requests', 'Requests'],
        ['activity', 'Activity'], ['connections', 'Connections'], ['runs', 'Runs'], ['webhooks', 'Webhooks'], ['tokens', 'Tokens']]) {
        await show(p, hash, heading);
        const width = await p.evaluate(() => Math.max(document.documentElement.scrollWidth, document.body.scrollWidth));
        assert.ok(width <= PHONE.width, `#${hash} is ${width} px wide on a ${PHONE.width} px screen`);
        if (hash === 'grants') await shot(p, 'phone', { fullPage: false });
      }
    } finally {
      await phone.close();
    }
  });

  test('signing out returns to the sign-in form; no page error or CSP violation happened', async () => {
    await show(page, 'agents', 'Agents');
    await page.getByRole('button', { name: 'Sign out' }).click();
    await page.getByRole('heading', { name: 'Sign in to agentgate' }).waitFor();
    const s = await api(srv.url, 'GET', '/auth/session', { cookie: (await context.cookies()).find((c) => c.name === 'ap_session')?.value ?? 'none' });
    assert.equal(s.status, 401);
    assert.deepEqual(problems, []);
  });
});

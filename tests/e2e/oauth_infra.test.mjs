// The OAuth test harness itself, with real parts and no agentgate: oidc-provider
// (lib/oauth_server.mjs) as the authorization server, Debian's Chromium (lib/browser.mjs) as the
// user's browser, and a tiny local HTTP server as the OAuth client's redirect receiver.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import { approveInBrowser, pkcePair, startOAuthServer } from './lib/oauth_server.mjs';
import { launchBrowser } from './lib/browser.mjs';

async function startReceiver() {
  const hits = [];
  const server = http.createServer((req, res) => {
    const url = new URL(req.url, 'http://127.0.0.1');
    if (url.pathname === '/favicon.ico') { // Chromium asks for it after each page
      res.writeHead(404).end();
      return;
    }
    hits.push({ method: req.method, path: url.pathname, query: Object.fromEntries(url.searchParams) });
    res.writeHead(200, { 'Content-Type': 'text/html' });
    res.end('<!DOCTYPE html><title>client</title><p>received</p>');
  });
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  const base = `http://127.0.0.1:${server.address().port}`;
  return {
    base,
    hits,
    close: () => { server.closeAllConnections(); return new Promise((r) => server.close(r)); },
  };
}

function basic(id, secret) {
  return `Basic ${Buffer.from(`${encodeURIComponent(id)}:${encodeURIComponent(secret)}`).toString('base64')}`;
}

// POST to the token (or revocation) endpoint with client_secret_basic or client_secret_post.
async function post(url, params, { client_id, client_secret, method = 'basic' }) {
  const body = new URLSearchParams(params);
  const headers = { 'Content-Type': 'application/x-www-form-urlencoded' };
  if (method === 'basic') {
    headers.Authorization = basic(client_id, client_secret);
  } else {
    body.set('client_id', client_id);
    body.set('client_secret', client_secret);
  }
  const res = await fetch(url, { method: 'POST', headers, body });
  const text = await res.text();
  let json = null;
  try { json = JSON.parse(text); } catch { /* not JSON */ }
  return { status: res.status, json, text };
}

async function me(oauth, accessToken) {
  const res = await fetch(`${oauth.apiBaseUrl}/me`, {
    headers: accessToken ? { Authorization: `Bearer ${accessToken}` } : {},
  });
  return { status: res.status, json: await res.json(), headers: res.headers };
}

describe('OAuth harness: oidc-provider + Chromium + a redirect receiver', () => {
  let receiver;
  let oauth;
  let browser;
  let page;
  const client = { client_id: 'e2e-client', client_secret: 'e2e-secret' };

  // Sends the browser to the authorize URL, approves, and returns the receiver's callback query.
  async function authorize(c, { scope, state, challenge, login = 'alice' }) {
    const url = new URL(oauth.authorizeUrl);
    url.search = new URLSearchParams({
      response_type: 'code',
      client_id: c.client_id,
      redirect_uri: c.redirect_uri,
      scope,
      state,
      code_challenge: challenge,
      code_challenge_method: 'S256',
    });
    const before = receiver.hits.length;
    await page.goto(url.href);
    const landed = await approveInBrowser(page, { login });
    assert.ok(landed.startsWith(c.redirect_uri), `browser ends on the redirect URI, got ${landed}`);
    assert.equal(receiver.hits.length, before + 1, 'the receiver got exactly one callback');
    const hit = receiver.hits.at(-1);
    assert.equal(hit.path, new URL(c.redirect_uri).pathname);
    return hit.query;
  }

  before(async () => {
    receiver = await startReceiver();
    client.redirect_uri = `${receiver.base}/callback`;
    const t0 = Date.now();
    oauth = await startOAuthServer({
      clients: [{ ...client, redirect_uris: [client.redirect_uri] }],
    });
    const startMs = Date.now() - t0;
    assert.ok(startMs < 5000, `the OAuth server started in ${startMs} ms`);
    browser = await launchBrowser();
    page = await (await browser.newContext()).newPage();
  });

  after(async () => {
    await browser?.close();
    await oauth?.close();
    await receiver?.close();
  });

  test('discovery gives the real endpoints', () => {
    assert.match(oauth.issuer, /^http:\/\/127\.0\.0\.1:\d+$/);
    for (const key of ['authorizeUrl', 'tokenUrl', 'revocationUrl', 'apiBaseUrl']) {
      assert.ok(oauth[key].startsWith(`${oauth.issuer}/`), `${key} = ${oauth[key]}`);
    }
    assert.deepEqual(oauth.discovery.code_challenge_methods_supported, ['S256']);
  });

  test('code + PKCE + state through the consent pages, then the API, expiry, refresh, revocation', async () => {
    const pkce = pkcePair();
    const state = `st-${Date.now()}`;
    const query = await authorize(client, { scope: 'openid read', state, challenge: pkce.challenge });
    assert.equal(query.state, state, 'the same state comes back');
    assert.ok(query.code, 'a code comes back');
    assert.equal(query.iss, oauth.issuer, 'RFC 9207 iss comes back too');
    assert.deepEqual(oauth.stats(), {
      authorizationCodeGrants: 0, refreshTokenGrants: 0, failedRefreshGrants: 0,
      failedAuthorizationCodeGrants: 0, apiOk: 0, apiUnauthorized: 0,
    });

    const tok = await post(oauth.tokenUrl, {
      grant_type: 'authorization_code', code: query.code, redirect_uri: client.redirect_uri,
      code_verifier: pkce.verifier,
    }, client);
    assert.equal(tok.status, 200, tok.text);
    assert.equal(tok.json.token_type, 'Bearer');
    assert.ok(tok.json.access_token && tok.json.refresh_token, tok.text);
    assert.equal(tok.json.expires_in, 3600);
    assert.deepEqual(tok.json.scope.split(' ').sort(), ['openid', 'read']);
    assert.equal(oauth.stats().authorizationCodeGrants, 1);

    let r = await me(oauth, tok.json.access_token);
    assert.equal(r.status, 200);
    assert.deepEqual(r.json, { sub: 'alice', login: 'alice', scope: 'openid read', client_id: client.client_id });

    r = await me(oauth, 'not-a-token');
    assert.equal(r.status, 401);
    assert.deepEqual(r.json, { error: 'invalid_token' });
    assert.match(r.headers.get('www-authenticate'), /^Bearer error="invalid_token"/);
    r = await me(oauth);
    assert.equal(r.status, 401);

    assert.equal(oauth.expireAccessTokens(), 1);
    r = await me(oauth, tok.json.access_token);
    assert.equal(r.status, 401, 'an expired access token is refused');
    assert.deepEqual(r.json, { error: 'invalid_token' });

    const refreshed = await post(oauth.tokenUrl, {
      grant_type: 'refresh_token', refresh_token: tok.json.refresh_token,
    }, client);
    assert.equal(refreshed.status, 200, refreshed.text);
    assert.notEqual(refreshed.json.access_token, tok.json.access_token);
    assert.ok(refreshed.json.refresh_token, 'the refresh answer carries a refresh token');
    r = await me(oauth, refreshed.json.access_token);
    assert.equal(r.status, 200);
    assert.equal(r.json.login, 'alice');

    assert.deepEqual(oauth.stats(), {
      authorizationCodeGrants: 1, refreshTokenGrants: 1, failedRefreshGrants: 0,
      failedAuthorizationCodeGrants: 0, apiOk: 2, apiUnauthorized: 3,
    });

    assert.ok(oauth.revokeAllRefreshTokens() >= 1);
    const dead = await post(oauth.tokenUrl, {
      grant_type: 'refresh_token', refresh_token: refreshed.json.refresh_token,
    }, client);
    assert.equal(dead.status, 400, dead.text);
    assert.equal(dead.json.error, 'invalid_grant');
    assert.equal(oauth.stats().failedRefreshGrants, 1);
    assert.equal(oauth.stats().refreshTokenGrants, 1);
    // The access token issued before stays valid until it expires.
    assert.equal((await me(oauth, refreshed.json.access_token)).status, 200);

    // RFC 7009 revocation of the access token.
    const rev = await post(oauth.revocationUrl, {
      token: refreshed.json.access_token, token_type_hint: 'access_token',
    }, client);
    assert.equal(rev.status, 200, rev.text);
    assert.equal((await me(oauth, refreshed.json.access_token)).status, 401);
  });

  test('a wrong PKCE verifier, a reused code, a missing code_challenge', async () => {
    const pkce = pkcePair();
    // alice has a session and a grant for 'openid read' now: no login or consent page this time.
    const query = await authorize(client, { scope: 'openid read', state: 's2', challenge: pkce.challenge });
    assert.equal(query.state, 's2');
    const failedBefore = oauth.stats().failedAuthorizationCodeGrants;
    const bad = await post(oauth.tokenUrl, {
      grant_type: 'authorization_code', code: query.code, redirect_uri: client.redirect_uri,
      code_verifier: pkcePair().verifier,
    }, client);
    assert.equal(bad.status, 400, bad.text);
    assert.equal(bad.json.error, 'invalid_grant');
    assert.equal(oauth.stats().failedAuthorizationCodeGrants, failedBefore + 1);

    // A failed verifier does not use the code up; the right one still gets tokens.
    const good = await post(oauth.tokenUrl, {
      grant_type: 'authorization_code', code: query.code, redirect_uri: client.redirect_uri,
      code_verifier: pkce.verifier,
    }, client);
    assert.equal(good.status, 200, good.text);
    assert.equal((await me(oauth, good.json.access_token)).status, 200);

    // The code is single-use, and replaying it revokes what it gave (RFC 6749 4.1.2).
    const replay = await post(oauth.tokenUrl, {
      grant_type: 'authorization_code', code: query.code, redirect_uri: client.redirect_uri,
      code_verifier: pkce.verifier,
    }, client);
    assert.equal(replay.status, 400, replay.text);
    assert.equal(replay.json.error, 'invalid_grant');
    assert.equal(oauth.stats().failedAuthorizationCodeGrants, failedBefore + 2);
    assert.equal((await me(oauth, good.json.access_token)).status, 401);
    const refresh = await post(oauth.tokenUrl, { grant_type: 'refresh_token', refresh_token: good.json.refresh_token }, client);
    assert.equal(refresh.json?.error, 'invalid_grant', refresh.text);

    // Without code_challenge the provider answers the error to the redirect URI.
    const url = new URL(oauth.authorizeUrl);
    url.search = new URLSearchParams({
      response_type: 'code', client_id: client.client_id, redirect_uri: client.redirect_uri,
      scope: 'openid read', state: 's3',
    });
    await page.goto(url.href);
    const hit = receiver.hits.at(-1);
    assert.equal(hit.query.state, 's3');
    assert.equal(hit.query.error, 'invalid_request');
    assert.match(hit.query.error_description, /PKCE/);
  });

  test('a client added after start, client_secret_post, another user', async () => {
    const late = {
      client_id: 'late-client', client_secret: 'late-secret', redirect_uri: `${receiver.base}/late/cb`,
    };
    await oauth.addClient({
      client_id: late.client_id, client_secret: late.client_secret,
      redirect_uris: [late.redirect_uri], token_endpoint_auth_method: 'client_secret_post',
    });
    await assert.rejects(oauth.addClient({ client_id: 'broken', client_secret: 'x', redirect_uris: ['not a uri'] }),
      /invalid_redirect_uri: redirect_uris must only contain valid uris/);

    // A fresh browser context: no provider session, so the login page shows up again.
    const context = await browser.newContext();
    const savedPage = page;
    page = await context.newPage();
    try {
      const pkce = pkcePair();
      const query = await authorize(late, {
        scope: 'openid write offline_access', state: 'late', challenge: pkce.challenge, login: 'bob',
      });
      assert.equal(query.state, 'late');
      const tok = await post(oauth.tokenUrl, {
        grant_type: 'authorization_code', code: query.code, redirect_uri: late.redirect_uri,
        code_verifier: pkce.verifier,
      }, { ...late, method: 'post' });
      assert.equal(tok.status, 200, tok.text);
      // oidc-provider drops offline_access unless prompt=consent is asked for (OIDC Core 11);
      // the refresh token comes anyway.
      assert.deepEqual(tok.json.scope.split(' ').sort(), ['openid', 'write']);
      assert.ok(tok.json.refresh_token, tok.text);
      const r = await me(oauth, tok.json.access_token);
      assert.deepEqual(r.json, { sub: 'bob', login: 'bob', scope: tok.json.scope, client_id: late.client_id });

      // Basic auth for a client_secret_post client is refused (strictClientAuth).
      const failedBefore = oauth.stats().failedRefreshGrants;
      const wrongAuth = await post(oauth.tokenUrl, {
        grant_type: 'refresh_token', refresh_token: tok.json.refresh_token,
      }, { ...late, method: 'basic' });
      assert.equal(wrongAuth.status, 401, wrongAuth.text);
      assert.equal(wrongAuth.json.error, 'invalid_client');
      assert.equal(oauth.stats().failedRefreshGrants, failedBefore + 1);
      // …and the other way round.
      const wrongPost = await post(oauth.tokenUrl, {
        grant_type: 'refresh_token', refresh_token: tok.json.refresh_token,
      }, { ...client, method: 'post' });
      assert.equal(wrongPost.status, 401, wrongPost.text);
      assert.equal(wrongPost.json.error, 'invalid_client');

      // Revoking alice's refresh tokens leaves bob's alone.
      assert.equal(oauth.revokeRefreshTokensFor('alice'), 0);
      const refreshed = await post(oauth.tokenUrl, {
        grant_type: 'refresh_token', refresh_token: tok.json.refresh_token,
      }, { ...late, method: 'post' });
      assert.equal(refreshed.status, 200, refreshed.text);
      assert.equal(oauth.revokeRefreshTokensFor('bob'), 1);
      const dead = await post(oauth.tokenUrl, {
        grant_type: 'refresh_token', refresh_token: tok.json.refresh_token,
      }, { ...late, method: 'post' });
      assert.equal(dead.json.error, 'invalid_grant');
    } finally {
      page = savedPage;
      await context.close();
    }
  });

  test('short-lived tokens expire on their own, and rotation can be switched on', async () => {
    const c = { client_id: 'short', client_secret: 'short-secret', redirect_uri: `${receiver.base}/short` };
    const short = await startOAuthServer({
      clients: [{ ...c, redirect_uris: [c.redirect_uri] }],
      accessTokenTtl: 1, refreshTokenTtl: 60, rotateRefreshToken: true,
    });
    const savedOauth = oauth;
    oauth = short;
    try {
      const pkce = pkcePair();
      const query = await authorize(c, { scope: 'openid read', state: 'short', challenge: pkce.challenge });
      const tok = await post(short.tokenUrl, {
        grant_type: 'authorization_code', code: query.code, redirect_uri: c.redirect_uri,
        code_verifier: pkce.verifier,
      }, c);
      assert.equal(tok.status, 200, tok.text);
      assert.equal(tok.json.expires_in, 1);
      assert.equal((await me(short, tok.json.access_token)).status, 200);
      await new Promise((r) => setTimeout(r, 1100));
      assert.equal((await me(short, tok.json.access_token)).status, 401);

      const rotated = await post(short.tokenUrl, { grant_type: 'refresh_token', refresh_token: tok.json.refresh_token }, c);
      assert.equal(rotated.status, 200, rotated.text);
      assert.notEqual(rotated.json.refresh_token, tok.json.refresh_token, 'a new refresh token');
      // Reusing the rotated-out token is refused, and (per oidc-provider) revokes the grant.
      const reuse = await post(short.tokenUrl, { grant_type: 'refresh_token', refresh_token: tok.json.refresh_token }, c);
      assert.equal(reuse.json.error, 'invalid_grant');
      const after = await post(short.tokenUrl, { grant_type: 'refresh_token', refresh_token: rotated.json.refresh_token }, c);
      assert.equal(after.json.error, 'invalid_grant');
      assert.deepEqual(short.stats(), {
        authorizationCodeGrants: 1, refreshTokenGrants: 1, failedRefreshGrants: 2,
        failedAuthorizationCodeGrants: 0, apiOk: 1, apiUnauthorized: 1,
      });
    } finally {
      oauth = savedOauth;
      await short.close();
    }
  });
});

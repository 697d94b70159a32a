// A real OAuth 2 / OpenID Connect authorization server for the end-to-end tests: npm
// oidc-provider (the certified implementation) on 127.0.0.1, port 0, with its development
// login + consent pages, plus a small protected "vendor API" on the same port.
//
// startOAuthServer({ clients = [], accessTokenTtl = 3600, refreshTokenTtl = 86400,
//                    scopes = [], requirePkce = true, rotateRefreshToken,
//                    strictClientAuth = true } = {})
//   clients: [{ client_id, client_secret, redirect_uris: [...],
//               token_endpoint_auth_method = 'client_secret_basic' (or 'client_secret_post'),
//               ...any other client metadata }]
//     grant_types default to ['authorization_code', 'refresh_token'], response_types to ['code'].
//     Web clients (the default application_type) must use an EXACT registered redirect URI,
//     port included; http://127.0.0.1:PORT/... is allowed. Clients can also be added later with
//     server.addClient(client) (e.g. once agentgate's port, hence its callback URL, is known).
//   accessTokenTtl / refreshTokenTtl: seconds. clockTolerance is 0, so tokens expire on the dot.
//   scopes: extra scope names on top of openid, offline_access, read, write, profile, email.
//     A requested scope the server does not know is dropped from the grant, not refused.
//   requirePkce: PKCE (S256 only; 'plain' is not supported) is required for every client.
//     false = oidc-provider's default (required for public clients only; a code_challenge that
//     is sent is still enforced).
//   rotateRefreshToken: true (every refresh answers a new refresh token and consumes the old
//     one; reusing a consumed one revokes the whole grant), false (never), or undefined for
//     oidc-provider's default (confidential clients keep their refresh token until 70% of
//     its lifetime has passed).
//   strictClientAuth: a client must authenticate at the token, revocation and introspection
//     endpoints with its registered token_endpoint_auth_method (401 invalid_client otherwise);
//     false = oidc-provider's own rule, which takes client_secret_basic and client_secret_post
//     as interchangeable.
//   A refresh token is ALWAYS issued with the authorization code grant (no offline_access or
//   prompt=consent needed), and it does not end with the provider's browser session.
// Resolves to {
//   issuer,          // 'http://127.0.0.1:PORT'
//   authorizeUrl, tokenUrl, revocationUrl, introspectionUrl, userinfoUrl, jwksUrl
//                    // from the discovery document (/.well-known/openid-configuration)
//   apiBaseUrl,      // issuer + '/api': GET /api/me with 'Authorization: Bearer <access token>'
//                    // → 200 { sub, login, scope, client_id } for a valid, unexpired token;
//                    // → 401 { error: 'invalid_token' } (+ WWW-Authenticate) otherwise
//   discovery,       // the whole discovery document
//   provider,        // the oidc-provider instance, for anything not covered here
//   async addClient(client),          // validates and registers a client (see clients above);
//                    // throws 'addClient(<id>): <error>: <description>' for bad metadata
//   stats(),         // { authorizationCodeGrants, refreshTokenGrants, failedRefreshGrants,
//                    //   failedAuthorizationCodeGrants, apiOk, apiUnauthorized } so far: token
//                    //   endpoint answers by grant_type (a failure is any error answer, client
//                    //   authentication included), and /api answers 200 / 401
//   issuedTokens(),  // every access and refresh token value issued so far (for leak checks)
//   revokeAllRefreshTokens(),         // deletes every refresh token → number deleted; the
//                    // next refresh_token grant with any of them answers 400 invalid_grant
//   revokeRefreshTokensFor(login),    // the same for the tokens of one user
//   expireAccessTokens(),             // every access token issued so far is now expired (the
//                    // API answers 401, introspection active=false) → number expired
//   async close(),
// }
//
// approveInBrowser(page, { login = 'alice', password = 'secret', timeoutMs = 15000 } = {})
//   With a playwright Page on the provider's pages (after page.goto(authorize URL)): signs in
//   on the dev login page (any login/password is accepted; the login becomes the subject),
//   clicks "Continue" on the consent page, until the browser leaves the provider's origin
//   (i.e. it was redirected to the client's redirect URI). Resolves to the page's URL then.
//   A user who already has a session and a grant for the client passes straight through (the
//   page is then already off the provider and approveInBrowser just returns its URL). A page
//   closed once it has left the provider (the connect page's opener closes it after the
//   callback) ends it too.
//
// pkcePair() → { verifier, challenge, method: 'S256' }
//
// oidc-provider's own console warnings/notices (dev interactions, Node 20 is "unsupported",
// …) are dropped; set AGENTGATE_E2E_OIDC_WARNINGS=1 to see them.

import { createHash, generateKeyPair, randomBytes } from 'node:crypto';
import http from 'node:http';
import { promisify } from 'node:util';

if (!process.env.AGENTGATE_E2E_OIDC_WARNINGS) {
  // oidc-provider prints through console.warn/console.info with this prefix (coloured on a TTY).
  const ours = /^(?:\x1b\[[0-9;]*m)?oidc-provider (?:WARNING|NOTICE):/;
  for (const level of ['warn', 'info']) {
    const original = console[level];
    console[level] = function filtered(...args) {
      if (typeof args[0] === 'string' && ours.test(args[0])) return undefined;
      return original.apply(this, args);
    };
  }
}
// Imported after the filter is in place: it warns about the runtime while being loaded.
const { default: Provider } = await import('oidc-provider');

const providerOrigins = new Set(); // issuers of the running servers, for approveInBrowser

const epoch = () => Math.floor(Date.now() / 1000);

// Token kinds tied to a grant, as in oidc-provider's own memory adapter.
const GRANTABLE = new Set(['AccessToken', 'AuthorizationCode', 'RefreshToken', 'DeviceCode',
  'BackchannelAuthenticationRequest', 'PreAuthorizedCode']);

// An in-memory adapter whose storage the harness can see: model name → Map(id → {payload,
// expiresAt}). Linear scans are fine for a test's handful of entries.
function createStorage() {
  const models = new Map();
  const issued = [];  // every access and refresh token value ever stored, for leak checks
  const table = (name) => {
    let t = models.get(name);
    if (!t) { t = new Map(); models.set(name, t); }
    return t;
  };
  const live = (t, id) => {
    const entry = t.get(id);
    if (entry && entry.expiresAt !== undefined && entry.expiresAt <= Date.now()) {
      t.delete(id);
      return undefined;
    }
    return entry;
  };
  class Adapter {
    constructor(name) {
      this.name = name;
      this.table = table(name);
    }

    async upsert(id, payload, expiresIn) {
      if (this.name === 'AccessToken' || this.name === 'RefreshToken') issued.push(id);
      this.table.set(id, {
        payload: structuredClone(payload),
        expiresAt: typeof expiresIn === 'number' ? Date.now() + expiresIn * 1000 : undefined,
      });
    }

    async find(id) {
      const entry = live(this.table, id);
      return entry ? structuredClone(entry.payload) : undefined;
    }

    async findByUid(uid) {
      for (const [id, entry] of this.table) {
        if (entry.payload.uid === uid) return this.find(id);
      }
      return undefined;
    }

    async findByUserCode(userCode) {
      for (const [id, entry] of this.table) {
        if (entry.payload.userCode === userCode) return this.find(id);
      }
      return undefined;
    }

    async consume(id) {
      const entry = live(this.table, id);
      if (entry) entry.payload.consumed = epoch();
    }

    async destroy(id) {
      this.table.delete(id);
    }

    async revokeByGrantId(grantId) {
      for (const [name, t] of models) {
        if (!GRANTABLE.has(name)) continue;
        for (const [id, entry] of t) {
          if (entry.payload.grantId === grantId) t.delete(id);
        }
      }
    }
  }
  return { Adapter, table, issued };
}

// An EC P-256 key (made in a millisecond; an RSA one takes most of a second on a busy machine),
// so ID tokens are ES256: clientDefaults below make that every client's default.
let signingKey; // one per test process
function signingJwk() {
  signingKey ??= promisify(generateKeyPair)('ec', { namedCurve: 'P-256' })
    .then(({ privateKey }) => ({ ...privateKey.export({ format: 'jwk' }), kid: 'e2e-es256', use: 'sig', alg: 'ES256' }));
  return signingKey;
}

export function pkcePair() {
  const verifier = randomBytes(32).toString('base64url');
  const challenge = createHash('sha256').update(verifier).digest('base64url');
  return { verifier, challenge, method: 'S256' };
}

function clientMetadata(client) {
  return {
    grant_types: ['authorization_code', 'refresh_token'],
    response_types: ['code'],
    token_endpoint_auth_method: 'client_secret_basic',
    ...client,
  };
}

export async function startOAuthServer({
  clients = [],
  accessTokenTtl = 3600,
  refreshTokenTtl = 86400,
  scopes = [],
  requirePkce = true,
  rotateRefreshToken,
  strictClientAuth = true,
} = {}) {
  const { Adapter, table, issued } = createStorage();
  const counts = {
    authorizationCodeGrants: 0,
    refreshTokenGrants: 0,
    failedRefreshGrants: 0,
    failedAuthorizationCodeGrants: 0,
    apiOk: 0,
    apiUnauthorized: 0,
  };

  let handler = (req, res) => { res.statusCode = 503; res.end(); };
  const server = http.createServer((req, res) => handler(req, res));
  await new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => { server.off('error', reject); resolve(); });
  });
  const issuer = `http://127.0.0.1:${server.address().port}`;
  providerOrigins.add(issuer);

  const allScopes = [...new Set(['openid', 'offline_access', 'read', 'write', 'profile', 'email', ...scopes])];
  const configuration = {
    adapter: Adapter,
    clients: [], // every client lives in the adapter, so addClient works after start too
    jwks: { keys: [await signingJwk()] },
    clientDefaults: {
      grant_types: ['authorization_code', 'refresh_token'],
      id_token_signed_response_alg: 'ES256',
      response_types: ['code'],
      token_endpoint_auth_method: 'client_secret_basic',
    },
    cookies: { keys: [randomBytes(32).toString('base64url')] },
    clockTolerance: 0,
    scopes: allScopes,
    findAccount: async (_ctx, sub) => ({
      accountId: sub,
      async claims() { return { sub, login: sub }; },
    }),
    features: {
      devInteractions: { enabled: true },
      revocation: { enabled: true, allowedPolicy: async (_ctx, client, token) => token.clientId === client.clientId },
      introspection: { enabled: true, allowedPolicy: async () => true },
      resourceIndicators: {
        enabled: true,
        // A `resource` parameter is accepted for any URI; its tokens stay opaque, so the
        // vendor API below still finds them.
        getResourceServerInfo: async () => ({
          scope: allScopes.filter((s) => s !== 'openid' && s !== 'offline_access').join(' '),
          accessTokenFormat: 'opaque',
          accessTokenTTL: accessTokenTtl,
        }),
      },
      rpInitiatedLogout: { enabled: false },
    },
    pkce: { required: requirePkce ? () => true : (_ctx, client) => client.clientAuthMethod === 'none' },
    issueRefreshToken: async (_ctx, client) => client.grantTypeAllowed('refresh_token'),
    expiresWithSession: async () => false,
    clientBasedCORS: () => true,
    renderError: async (ctx, out) => {
      ctx.type = 'html';
      ctx.body = `<!DOCTYPE html><title>oauth error</title><pre id="error">${
        JSON.stringify(out).replace(/[<&]/g, (c) => (c === '<' ? '&lt;' : '&amp;'))}</pre>`;
    },
    ttl: {
      AccessToken: accessTokenTtl,
      RefreshToken: refreshTokenTtl,
      AuthorizationCode: 60,
      IdToken: 3600,
      Interaction: 3600,
      Session: 14 * 86400,
      Grant: Math.max(refreshTokenTtl, 14 * 86400),
      ClientCredentials: 600,
      DeviceCode: 600,
      BackchannelAuthenticationRequest: 600,
      PreAuthorizedCode: 600,
    },
  };
  if (rotateRefreshToken !== undefined) configuration.rotateRefreshToken = rotateRefreshToken;

  let provider;
  try {
    provider = new Provider(issuer, configuration);
  } catch (err) {
    providerOrigins.delete(issuer);
    server.close();
    throw err;
  }

  const grantType = (ctx) => ctx.oidc?.params?.grant_type ?? ctx.request?.body?.grant_type;
  provider.on('grant.success', (ctx) => {
    const gt = grantType(ctx);
    if (gt === 'authorization_code') counts.authorizationCodeGrants += 1;
    else if (gt === 'refresh_token') counts.refreshTokenGrants += 1;
  });
  provider.on('grant.error', (ctx) => {
    const gt = grantType(ctx);
    if (gt === 'authorization_code') counts.failedAuthorizationCodeGrants += 1;
    else if (gt === 'refresh_token') counts.failedRefreshGrants += 1;
  });
  provider.on('server_error', (_ctx, err) => {
    console.error('[oauth_server] oidc-provider server_error:', err);
  });

  // oidc-provider takes client_secret_basic and client_secret_post as interchangeable; with
  // strictClientAuth a client must use the method it is registered with. The body is read here
  // and handed on as req.body, which oidc-provider's parser picks up.
  const clientAuthPaths = new Set(); // filled from the discovery document below
  let tokenPath = null;
  provider.use(async (ctx, next) => {
    if (!strictClientAuth || ctx.method !== 'POST' || !clientAuthPaths.has(ctx.path)
        || !ctx.is('application/x-www-form-urlencoded')) {
      return next();
    }
    const chunks = [];
    for await (const chunk of ctx.req) chunks.push(chunk);
    ctx.req.body = Buffer.concat(chunks);
    const params = new URLSearchParams(ctx.req.body.toString('utf8'));
    const basic = /^basic\s+(\S+)$/i.exec(ctx.get('authorization'));
    let used = null;
    let clientId = params.get('client_id');
    if (basic) {
      used = 'client_secret_basic';
      const decoded = Buffer.from(basic[1], 'base64').toString('utf8');
      try {
        clientId = decodeURIComponent(decoded.slice(0, decoded.indexOf(':')).replace(/\+/g, ' '));
      } catch { clientId = null; }
    } else if (params.has('client_secret')) {
      used = 'client_secret_post';
    }
    const client = used && clientId ? await provider.Client.find(clientId) : undefined;
    const registered = client?.clientAuthMethod;
    if (client && registered !== used && ['client_secret_basic', 'client_secret_post'].includes(registered)) {
      if (ctx.path === tokenPath) {
        const gt = params.get('grant_type');
        if (gt === 'authorization_code') counts.failedAuthorizationCodeGrants += 1;
        else if (gt === 'refresh_token') counts.failedRefreshGrants += 1;
      }
      ctx.status = 401;
      ctx.set('Cache-Control', 'no-store');
      if (used === 'client_secret_basic') ctx.set('WWW-Authenticate', 'Basic realm="oauth_server"');
      ctx.body = {
        error: 'invalid_client',
        error_description: `client ${clientId} is registered for ${registered} but used ${used}`,
      };
      return undefined;
    }
    return next();
  });

  async function addClient(client) {
    const metadata = clientMetadata(client);
    try {
      await provider.Client.validate(metadata);
    } catch (err) {
      // oidc-provider's message is just the error code; the reason is in error_description.
      throw new Error(`addClient(${metadata.client_id}): ${err.error ?? err.message}: ${err.error_description ?? ''}`, { cause: err });
    }
    await new Adapter('Client').upsert(metadata.client_id, metadata);
  }
  for (const client of clients) {
    try {
      await addClient(client);
    } catch (err) {
      providerOrigins.delete(issuer);
      server.close();
      throw err;
    }
  }

  function sendJson(res, status, body, headers = {}) {
    res.writeHead(status, { 'Content-Type': 'application/json', 'Cache-Control': 'no-store', ...headers });
    res.end(JSON.stringify(body));
  }
  async function api(req, res) {
    const pathname = new URL(req.url, issuer).pathname;
    if (pathname !== '/api/me') {
      sendJson(res, 404, { error: 'not_found' });
      return;
    }
    if (req.method !== 'GET') {
      sendJson(res, 405, { error: 'method_not_allowed' }, { Allow: 'GET' });
      return;
    }
    const m = /^Bearer ([^\s]+)$/i.exec(req.headers.authorization ?? '');
    const token = m ? await provider.AccessToken.find(m[1]) : undefined;
    if (!token || token.isExpired) {
      counts.apiUnauthorized += 1;
      sendJson(res, 401, { error: 'invalid_token' }, {
        'WWW-Authenticate': m ? 'Bearer error="invalid_token"' : 'Bearer',
      });
      return;
    }
    counts.apiOk += 1;
    sendJson(res, 200, { sub: token.accountId, login: token.accountId, scope: token.scope ?? '', client_id: token.clientId });
  }

  const callback = provider.callback();
  handler = (req, res) => {
    if (req.url === '/api' || req.url.startsWith('/api/') || req.url.startsWith('/api?')) {
      api(req, res).catch((err) => {
        console.error('[oauth_server] api error:', err);
        if (!res.headersSent) sendJson(res, 500, { error: 'server_error' });
        else res.destroy();
      });
      return;
    }
    callback(req, res);
  };

  async function close() {
    providerOrigins.delete(issuer);
    server.closeAllConnections();
    await new Promise((resolve) => server.close(() => resolve()));
  }

  let discovery;
  try {
    const res = await fetch(`${issuer}/.well-known/openid-configuration`);
    if (res.status !== 200) throw new Error(`discovery answered ${res.status}: ${await res.text()}`);
    discovery = await res.json();
  } catch (err) {
    await close();
    throw err;
  }

  tokenPath = new URL(discovery.token_endpoint).pathname;
  for (const url of [discovery.token_endpoint, discovery.revocation_endpoint, discovery.introspection_endpoint]) {
    clientAuthPaths.add(new URL(url).pathname);
  }

  function revokeRefreshTokens(predicate) {
    const t = table('RefreshToken');
    let n = 0;
    for (const [id, entry] of t) {
      if (predicate(entry.payload)) { t.delete(id); n += 1; }
    }
    return n;
  }

  return {
    issuer,
    authorizeUrl: discovery.authorization_endpoint,
    tokenUrl: discovery.token_endpoint,
    revocationUrl: discovery.revocation_endpoint,
    introspectionUrl: discovery.introspection_endpoint,
    userinfoUrl: discovery.userinfo_endpoint,
    jwksUrl: discovery.jwks_uri,
    apiBaseUrl: `${issuer}/api`,
    discovery,
    provider,
    addClient,
    stats: () => ({ ...counts }),
    issuedTokens: () => [...issued],
    revokeAllRefreshTokens: () => revokeRefreshTokens(() => true),
    revokeRefreshTokensFor: (login) => revokeRefreshTokens((p) => p.accountId === login),
    expireAccessTokens() {
      const past = epoch() - 1;
      let n = 0;
      for (const entry of table('AccessToken').values()) {
        if (entry.payload.exp === undefined || entry.payload.exp > past) {
          entry.payload.exp = past;
          n += 1;
        }
      }
      return n;
    },
    close,
  };
}

export async function approveInBrowser(page, { login = 'alice', password = 'secret', timeoutMs = 15000 } = {}) {
  const origin = URL.parse(page.url())?.origin;
  const deadline = Date.now() + timeoutMs;
  const onProvider = () => providerOrigins.has(origin) && URL.parse(page.url())?.origin === origin;
  const leftProvider = (url) => url.origin !== origin;
  // The connect page reports to its opener from the callback, and the opener may then close it
  // at once: a page closed after it navigated off the provider is done, not an error.
  let navigatedOff = false;
  const onNavigated = (frame) => {
    const url = URL.parse(frame.url());
    if (frame === page.mainFrame() && url && leftProvider(url)) navigatedOff = true;
  };
  page.on('framenavigated', onNavigated);
  try {
    while (!page.isClosed() && onProvider()) {
      if (Date.now() > deadline) throw new Error(`approveInBrowser: still on ${page.url()} after ${timeoutMs} ms`);
      await page.waitForLoadState('domcontentloaded');
      const remaining = Math.max(1000, deadline - Date.now());
      const prompt = await page.locator('form input[name="prompt"]').first().getAttribute('value', { timeout: remaining })
        .catch(async () => {
          if (!onProvider()) return null;
          const error = await page.locator('#error').textContent({ timeout: 100 }).catch(() => null);
          throw new Error(`approveInBrowser: no login or consent form on ${page.url()}${error ? `: ${error}` : ''}`);
        });
      if (prompt === null) break;
      const before = page.url();
      if (prompt === 'login') {
        await page.locator('input[name="login"]').fill(login);
        await page.locator('input[name="password"]').fill(password);
      } else if (prompt !== 'consent') {
        throw new Error(`approveInBrowser: unexpected prompt '${prompt}' on ${page.url()}`);
      }
      // Submitting goes through /interaction/… → /auth/… redirects to the next page: either the
      // next interaction or the client's redirect URI. Wait until the URL has moved on.
      await Promise.all([
        page.waitForURL((url) => url.href !== before || leftProvider(url), { timeout: remaining, waitUntil: 'commit' }),
        page.locator('form button[type="submit"]').first().click({ noWaitAfter: true }),
      ]);
    }
  } catch (e) {
    if (!(page.isClosed() && navigatedOff)) throw e;
  } finally {
    page.off('framenavigated', onNavigated);
  }
  return page.url();
}

// The magic-link sign-in flow: uniform answers, single-use links, the session cookie's
// attributes, the dashboard redirect, /auth/session and logout.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import {
  startServer, api, registerAgent, signIn, requestMagicLink, followMagicLink, uniqueEmail,
} from './lib/server.mjs';
import { expectError, isoNear } from './lib/expect.mjs';

let srv;
before(async () => { srv = await startServer(); });
after(async () => {
  if (srv) assert.equal(await srv.stop(), 0);
});

function cookieAttributes(setCookie) {
  const c = setCookie.find((s) => /^ap_session=/.test(s));
  assert.ok(c, `an ap_session Set-Cookie among ${JSON.stringify(setCookie)}`);
  const [pair, ...attrs] = c.split(';').map((s) => s.trim());
  const map = {};
  for (const a of attrs) {
    const i = a.indexOf('=');
    map[(i < 0 ? a : a.slice(0, i)).toLowerCase()] = i < 0 ? true : a.slice(i + 1);
  }
  return { value: pair.slice('ap_session='.length), attrs: map, raw: c };
}

test('magic-link gives the same answer for known and unknown addresses', async () => {
  const known = uniqueEmail('known');
  await signIn(srv.url, known);
  const a = await api(srv.url, 'POST', '/auth/magic-link', { body: { email: known } });
  const b = await api(srv.url, 'POST', '/auth/magic-link', { body: { email: uniqueEmail('stranger') } });
  assert.equal(a.status, 200);
  assert.equal(b.status, 200);
  assert.deepEqual(a.json, { message: 'Check your email for a sign-in link.' });
  assert.deepEqual(b.json, a.json);
  assert.equal(a.headers.get('set-cookie'), null, 'asking for a link sets no cookie');
});

test('verify: 302 to /dashboard with an HttpOnly, SameSite=Lax, Path=/ cookie; dashboard is HTML', async () => {
  const email = uniqueEmail('verify');
  const link = await requestMagicLink(srv.url, email);
  assert.ok(link.startsWith(`${srv.url}/auth/verify?token=ml_`), `link ${link}`);
  const token = new URL(link).searchParams.get('token');
  assert.match(token, /^ml_[A-Za-z0-9_-]{32,}$/);
  const res = await followMagicLink(link);
  assert.equal(res.status, 302);
  const loc = res.headers.get('location');
  assert.ok(loc === '/dashboard' || loc === `${srv.url}/dashboard`, `Location ${loc}`);
  const c = cookieAttributes(res.setCookie);
  assert.ok(c.value.length >= 32, 'session token has enough entropy');
  assert.notEqual(c.value, token, 'the session token is not the link token');
  assert.equal(c.attrs.httponly, true, c.raw);
  assert.equal(String(c.attrs.samesite).toLowerCase(), 'lax', c.raw);
  assert.equal(c.attrs.path, '/', c.raw);
  assert.equal(c.attrs['max-age'], '2592000', c.raw);
  assert.equal(c.attrs.secure, undefined, 'no Secure on an http base URL');

  const dash = await fetch(new URL(loc, srv.url), { headers: { Cookie: `ap_session=${c.value}` } });
  assert.equal(dash.status, 200);
  assert.match(dash.headers.get('content-type') ?? '', /^text\/html/);
  assert.match(await dash.text(), /<html/i);

  const s = await api(srv.url, 'GET', '/auth/session', { cookie: c.value });
  assert.equal(s.status, 200, s.text);
  assert.equal(s.json.email, email);
  assert.match(s.json.user_id, /^usr_/);
  assert.equal(typeof s.json.is_admin, 'boolean');
  isoNear(s.json.expires_at, Date.now() + 30 * 24 * 3600 * 1000, 60000, 'session expires_at');
});

test('a link works once; a second use is 401 invalid_token', async () => {
  const link = await requestMagicLink(srv.url, uniqueEmail('once'));
  const first = await followMagicLink(link);
  assert.equal(first.status, 302);
  const second = await fetch(link, { redirect: 'manual' });
  const body = await second.text();
  expectError({ status: second.status, headers: second.headers, json: JSON.parse(body), text: body }, 401, 'invalid_token');
  assert.equal(second.headers.getSetCookie().filter((c) => /^ap_session=[^;]+/.test(c) && !/max-age=0/i.test(c)).length, 0,
    'no session from a reused link');
  // The first session still works.
  assert.equal((await api(srv.url, 'GET', '/auth/session', { cookie: first.cookie })).status, 200);
});

test('links never issued, or altered, are 401 invalid_token', async () => {
  const link = await requestMagicLink(srv.url, uniqueEmail('altered'));
  const token = new URL(link).searchParams.get('token');
  const flipped = token.slice(0, -1) + (token.at(-1) === 'a' ? 'b' : 'a');
  for (const t of [`ml_${'0'.repeat(64)}`, flipped, token.slice(0, -4), `${token}x`, 'ml_', 'sk_ap_123']) {
    expectError(await api(srv.url, 'GET', `/auth/verify?token=${encodeURIComponent(t)}`), 401, 'invalid_token');
  }
  // The real one still works after the failed attempts.
  assert.equal((await followMagicLink(link)).status, 302);
});

test('a browser opening a used or cut-short link is sent to the sign-in form (303), not given JSON', async () => {
  const link = await requestMagicLink(srv.url, uniqueEmail('browser'));
  assert.equal((await followMagicLink(link)).status, 302);
  const html = { Accept: 'text/html,application/xhtml+xml,*/*;q=0.8' };
  const used = await api(srv.url, 'GET', new URL(link).pathname + new URL(link).search, { headers: html });
  assert.equal(used.status, 303, used.text);
  assert.equal(used.headers.get('location'), '/dashboard#signin-failed=invalid_token');
  assert.equal(used.headers.getSetCookie().filter((c) => /^ap_session=[^;]+/.test(c)).length, 0, 'no session');
  const cut = await api(srv.url, 'GET', '/auth/verify', { headers: html });
  assert.equal(cut.status, 303);
  assert.equal(cut.headers.get('location'), '/dashboard#signin-failed=missing_params');
  // API clients still get the structured error.
  expectError(await api(srv.url, 'GET', new URL(link).pathname + new URL(link).search), 401, 'invalid_token');
});

test('two people get two distinct sessions; each sees their own email', async () => {
  const e1 = uniqueEmail('p1');
  const e2 = uniqueEmail('p2');
  const c1 = await signIn(srv.url, e1);
  const c2 = await signIn(srv.url, e2);
  assert.notEqual(c1, c2);
  assert.equal((await api(srv.url, 'GET', '/auth/session', { cookie: c1 })).json.email, e1);
  assert.equal((await api(srv.url, 'GET', '/auth/session', { cookie: c2 })).json.email, e2);
  // The same person signing in twice has two working sessions.
  const c1b = await signIn(srv.url, e1);
  assert.notEqual(c1b, c1);
  assert.equal((await api(srv.url, 'GET', '/auth/session', { cookie: c1 })).status, 200);
  assert.equal((await api(srv.url, 'GET', '/auth/session', { cookie: c1b })).json.email, e1);
});

test('logout ends the session: session → 401, grant → 401; the cookie is cleared', async () => {
  const agent = await registerAgent(srv.url);
  const cookie = await signIn(srv.url, uniqueEmail('leaver'));
  const g = await api(srv.url, 'POST', '/permission/grant', { cookie, body: { agent_id: agent.agent_id, action: 'before_logout' } });
  assert.equal(g.status, 201, g.text);
  const out = await api(srv.url, 'POST', '/auth/logout', { cookie });
  assert.equal(out.status, 200, out.text);
  assert.deepEqual(out.json, { signed_out: true });
  const cleared = out.headers.getSetCookie().find((c) => /^ap_session=/.test(c));
  assert.ok(cleared, 'logout sets an ap_session cookie to clear it');
  assert.ok(/max-age=0/i.test(cleared) || /expires=thu, 01 jan 1970/i.test(cleared), `cleared cookie: ${cleared}`);
  expectError(await api(srv.url, 'GET', '/auth/session', { cookie }), 401, 'unauthorized');
  expectError(await api(srv.url, 'POST', '/permission/grant', { cookie, body: { agent_id: agent.agent_id, action: 'after_logout' } }),
    401, 'unauthorized');
  expectError(await api(srv.url, 'POST', '/permission/revoke', { cookie, body: { permission_id: g.json.permission_id } }),
    401, 'unauthorized');
  expectError(await api(srv.url, 'GET', '/permissions', { cookie }), 401, 'unauthorized');
  // The grant made before logout stays.
  const c = await api(srv.url, 'GET', `/permission/check?agent_id=${agent.agent_id}&action=before_logout`, { bearer: agent.secret });
  assert.equal(c.json.allowed, true);
  // Logging out without a session is fine too.
  const anon = await api(srv.url, 'POST', '/auth/logout');
  assert.equal(anon.status, 200, anon.text);
  assert.deepEqual(anon.json, { signed_out: true });
});

test('a session cookie among other cookies is found', async () => {
  const cookie = await signIn(srv.url, uniqueEmail('jar'));
  const res = await api(srv.url, 'GET', '/auth/session', { headers: { Cookie: `theme=dark; ap_session=${cookie}; other=1` } });
  assert.equal(res.status, 200, res.text);
});

test('an https base URL makes the cookie Secure and the links use the base URL', async () => {
  const s2 = await startServer({ args: ['--base-url', 'https://gate.example.test'] });
  try {
    const reg = await api(s2.url, 'POST', '/agent/register', { body: { name: 'b', developer_email: uniqueEmail() } });
    assert.equal(reg.status, 201, reg.text);
    assert.equal(reg.json.docs_url, 'https://gate.example.test/docs');
    assert.equal(reg.json.dashboard_url, 'https://gate.example.test/dashboard');
    const err = await api(s2.url, 'GET', '/nope');
    assert.equal(err.json.docs, 'https://gate.example.test/docs/errors#not_found');
    const link = await requestMagicLink(s2.url, uniqueEmail('secure'));
    assert.ok(link.startsWith('https://gate.example.test/auth/verify?token=ml_'), `link ${link}`);
    const local = new URL(link);
    const res = await followMagicLink(`${s2.url}${local.pathname}${local.search}`);
    assert.equal(res.status, 302);
    const c = cookieAttributes(res.setCookie);
    assert.equal(c.attrs.secure, true, `Secure on an https base URL: ${c.raw}`);
    assert.equal(c.attrs.httponly, true);
    // CSRF: the base URL's origin is accepted for cookie POSTs.
    const agent = await registerAgent(s2.url);
    const g = await api(s2.url, 'POST', '/permission/grant', {
      cookie: c.value, body: { agent_id: agent.agent_id, action: 'x' }, headers: { Origin: 'https://gate.example.test' },
    });
    assert.equal(g.status, 201, g.text);
  } finally {
    assert.equal(await s2.stop(), 0);
  }
});

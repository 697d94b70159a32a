// Rate limits: the reference's defaults, per-key budgets, the IETF headers, custom limits from
// flags, and --no-rate-limits.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { startServer, api, registerAgent, uniqueEmail } from './lib/server.mjs';
import { expectError } from './lib/expect.mjs';

// RateLimit-Policy: "<name>";q=<quota>;w=<window seconds>
function parsePolicy(value) {
  assert.ok(value, 'RateLimit-Policy header present');
  const m = value.match(/^"([a-z][a-z0-9_-]*)";q=(\d+);w=(\d+)$/);
  assert.ok(m, `RateLimit-Policy ${JSON.stringify(value)} has the form "name";q=N;w=S`);
  return { name: m[1], q: Number(m[2]), w: Number(m[3]) };
}
// RateLimit: "<name>";r=<remaining>;t=<seconds to reset>
function parseLimit(value) {
  assert.ok(value, 'RateLimit header present');
  const m = value.match(/^"([a-z][a-z0-9_-]*)";r=(\d+);t=(\d+)$/);
  assert.ok(m, `RateLimit ${JSON.stringify(value)} has the form "name";r=N;t=S`);
  return { name: m[1], r: Number(m[2]), t: Number(m[3]) };
}
function expectHeaders(res, { q, w, r, name }) {
  const policy = parsePolicy(res.headers.get('ratelimit-policy'));
  const limit = parseLimit(res.headers.get('ratelimit'));
  assert.equal(policy.q, q, `quota in ${res.headers.get('ratelimit-policy')}`);
  assert.equal(policy.w, w, `window in ${res.headers.get('ratelimit-policy')}`);
  assert.equal(limit.name, policy.name, 'RateLimit and RateLimit-Policy name the same policy');
  if (name) assert.equal(policy.name, name);
  assert.equal(limit.r, r, `remaining in ${res.headers.get('ratelimit')}`);
  assert.ok(limit.t > 0 && limit.t <= w, `reset ${limit.t} within the window ${w}`);
  return { policy, limit };
}
test('defaults: register 10/h per IP, magic-link 5/15m per address', async () => {
  const srv = await startServer();
  try {
    for (let i = 0; i < 10; i++) {
      const res = await api(srv.url, 'POST', '/agent/register',
        { body: { name: `a${i}`, developer_email: uniqueEmail('dev') } });
      assert.equal(res.status, 201, `registration ${i + 1}: ${res.text}`);
      expectHeaders(res, { q: 10, w: 3600, r: 9 - i });
    }
    const over = await api(srv.url, 'POST', '/agent/register', { body: { name: 'a11', developer_email: uniqueEmail('dev') } });
    expectError(over, 429, 'rate_limited');
    const retry = Number(over.headers.get('retry-after'));
    assert.ok(Number.isInteger(retry) && retry > 0 && retry <= 3600, `Retry-After ${over.headers.get('retry-after')}`);
    expectHeaders(over, { q: 10, w: 3600, r: 0 });
    const stillOver = await api(srv.url, 'POST', '/agent/register', { body: { name: 'a12', developer_email: uniqueEmail('dev') } });
    assert.equal(stillOver.status, 429);
    // Other endpoints are not affected by the register budget.
    assert.equal((await api(srv.url, 'GET', '/health')).status, 200);
    const s = await api(srv.url, 'GET', '/stats');
    assert.equal(s.json.agents_registered, 10, 'refused registrations create no agent');

    // magic-link: 5 per address (lower-cased) per 15 minutes.
    const email = uniqueEmail('Person');
    const variants = [email, email.toLowerCase(), email.toUpperCase(), email, email.toLowerCase()];
    for (let i = 0; i < 5; i++) {
      const res = await api(srv.url, 'POST', '/auth/magic-link', { body: { email: variants[i] } });
      assert.equal(res.status, 200, `link ${i + 1}: ${res.text}`);
      expectHeaders(res, { q: 5, w: 900, r: 4 - i });
    }
    const ml = await api(srv.url, 'POST', '/auth/magic-link', { body: { email: email.toUpperCase() } });
    expectError(ml, 429, 'rate_limited');
    const mlRetry = Number(ml.headers.get('retry-after'));
    assert.ok(mlRetry > 0 && mlRetry <= 900, `Retry-After ${mlRetry}`);
    expectHeaders(ml, { q: 5, w: 900, r: 0 });
    // Another address has its own budget.
    const other = await api(srv.url, 'POST', '/auth/magic-link', { body: { email: uniqueEmail('other') } });
    assert.equal(other.status, 200, other.text);
    expectHeaders(other, { q: 5, w: 900, r: 4 });
  } finally {
    assert.equal(await srv.stop(), 0);
  }
});

test('check limit per agent (check=5/min): 6th → 429, others unaffected, wrong secrets spend nothing', async () => {
  const srv = await startServer({ args: ['--rate-limit', 'check=5/min', '--rate-limit', 'register=100/h'] });
  try {
    const A = await registerAgent(srv.url);
    const B = await registerAgent(srv.url);
    const C = await registerAgent(srv.url);
    const get = (agent, as = agent) => api(srv.url, 'GET',
      `/permission/check?agent_id=${agent.agent_id}&action=book_flight`, { bearer: as.secret });

    for (let i = 0; i < 5; i++) {
      const res = await get(A);
      assert.equal(res.status, 200, `check ${i + 1}: ${res.text}`);
      assert.equal(res.json.allowed, false);
      expectHeaders(res, { q: 5, w: 60, r: 4 - i, name: 'check' });
    }
    const over = await get(A);
    expectError(over, 429, 'rate_limited');
    const retry = Number(over.headers.get('retry-after'));
    assert.ok(Number.isInteger(retry) && retry > 0 && retry <= 60, `Retry-After ${over.headers.get('retry-after')}`);
    expectHeaders(over, { q: 5, w: 60, r: 0, name: 'check' });
    // POST /permission/check shares the budget.
    const overPost = await api(srv.url, 'POST', '/permission/check',
      { bearer: A.secret, body: { agent_id: A.agent_id, action: 'book_flight' } });
    expectError(overPost, 429, 'rate_limited');

    // B is unaffected.
    const b = await get(B);
    assert.equal(b.status, 200, b.text);
    expectHeaders(b, { q: 5, w: 60, r: 4, name: 'check' });

    // Nobody can spend C's budget: unknown secrets (401) and B's secret (403) do not count.
    for (let i = 0; i < 8; i++) {
      const wrong = await api(srv.url, 'GET', `/permission/check?agent_id=${C.agent_id}&action=x`,
        { bearer: `sk_ap_${'f'.repeat(64)}` });
      expectError(wrong, 401, 'unauthorized');
      const foreign = await get(C, B);
      expectError(foreign, 403, 'forbidden');
    }
    for (let i = 0; i < 5; i++) {
      const res = i % 2 === 0
        ? await get(C)
        : await api(srv.url, 'POST', '/permission/check', { bearer: C.secret, body: { agent_id: C.agent_id, action: 'x' } });
      assert.equal(res.status, 200, `C check ${i + 1} after the attack: ${res.text}`);
      expectHeaders(res, { q: 5, w: 60, r: 4 - i, name: 'check' });
    }
    expectError(await get(C), 429, 'rate_limited');

    // Refused checks are not counted as checks.
    const s = await api(srv.url, 'GET', '/stats');
    assert.equal(s.json.checks_total, 5 + 1 + 5);
  } finally {
    assert.equal(await srv.stop(), 0);
  }
});

test('custom limits from flags: register=3/h, magic-link=2/15m', async () => {
  const srv = await startServer({ args: ['--rate-limit', 'register=3/h', '--rate-limit', 'magic-link=2/15m'] });
  try {
    for (let i = 0; i < 3; i++) {
      const res = await api(srv.url, 'POST', '/agent/register', { body: { name: `c${i}`, developer_email: uniqueEmail() } });
      assert.equal(res.status, 201, res.text);
      expectHeaders(res, { q: 3, w: 3600, r: 2 - i });
    }
    const over = await api(srv.url, 'POST', '/agent/register', { body: { name: 'c4', developer_email: uniqueEmail() } });
    expectError(over, 429, 'rate_limited');
    expectHeaders(over, { q: 3, w: 3600, r: 0 });

    const email = uniqueEmail('custom');
    for (let i = 0; i < 2; i++) {
      const res = await api(srv.url, 'POST', '/auth/magic-link', { body: { email } });
      assert.equal(res.status, 200, res.text);
      expectHeaders(res, { q: 2, w: 900, r: 1 - i });
    }
    const ml = await api(srv.url, 'POST', '/auth/magic-link', { body: { email } });
    expectError(ml, 429, 'rate_limited');
    // The check limit keeps its default.
    const srvCheck = await api(srv.url, 'GET', '/health');
    assert.equal(srvCheck.status, 200);
  } finally {
    assert.equal(await srv.stop(), 0);
  }
});

test('default check limit is 1000/min (headers on a check)', async () => {
  const srv = await startServer();
  try {
    const A = await registerAgent(srv.url);
    const res = await api(srv.url, 'GET', `/permission/check?agent_id=${A.agent_id}&action=x`, { bearer: A.secret });
    assert.equal(res.status, 200, res.text);
    expectHeaders(res, { q: 1000, w: 60, r: 999, name: 'check' });
    assert.equal(res.headers.get('ratelimit-policy'), '"check";q=1000;w=60');
  } finally {
    assert.equal(await srv.stop(), 0);
  }
});

test('--no-rate-limits lets 50 registrations and 8 links for one address through', async () => {
  const srv = await startServer({ args: ['--no-rate-limits'] });
  try {
    const results = [];
    for (let batch = 0; batch < 5; batch++) {
      results.push(...await Promise.all(Array.from({ length: 10 }, (_, i) =>
        api(srv.url, 'POST', '/agent/register', { body: { name: `n${batch}-${i}`, developer_email: uniqueEmail() } }))));
    }
    assert.deepEqual(results.map((r) => r.status), Array(50).fill(201));
    assert.equal(new Set(results.map((r) => r.json.agent_id)).size, 50, '50 distinct agent ids');
    const email = uniqueEmail('unlimited');
    for (let i = 0; i < 8; i++) {
      const r = await api(srv.url, 'POST', '/auth/magic-link', { body: { email } });
      assert.equal(r.status, 200, `link ${i + 1}: ${r.text}`);
    }
    const s = await api(srv.url, 'GET', '/stats');
    assert.equal(s.json.agents_registered, 50);
  } finally {
    assert.equal(await srv.stop(), 0);
  }
});


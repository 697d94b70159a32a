// Scope enforcement on POST /permission/check (max_<field>, allowed_<field>, fail closed) and the
// scope returned verbatim (not enforced) by GET /permission/check.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startServer, api, registerAgent, signIn, uniqueEmail } from './lib/server.mjs';
import { expectError } from './lib/expect.mjs';

let srv;
let A;
let cookie;

before(async () => {
  srv = await startServer({ args: ['--rate-limit', 'register=1000/h'] });
  A = await registerAgent(srv.url);
  cookie = await signIn(srv.url, uniqueEmail('scoper'));
});
after(async () => {
  if (srv) assert.equal(await srv.stop(), 0);
});

async function grantScope(action, scope, agent = A) {
  const res = await api(srv.url, 'POST', '/permission/grant', { cookie, body: { agent_id: agent.agent_id, action, scope } });
  assert.equal(res.status, 201, res.text);
  assert.deepEqual(res.json.scope, scope, 'grant echoes the scope verbatim');
  return res.json;
}
const postCheck = (action, context, agent = A) => {
  const body = { agent_id: agent.agent_id, action };
  if (context !== undefined) body.context = context;
  return api(srv.url, 'POST', '/permission/check', { bearer: agent.secret, body });
};
function expectAllowed(res, scope, what) {
  assert.equal(res.status, 200, `${what}: ${res.text}`);
  assert.equal(res.json.allowed, true, `${what} should be allowed: ${res.text}`);
  assert.deepEqual(res.json.scope, scope, `${what}: scope verbatim`);
  assert.equal(typeof res.json.latency_ms, 'number');
}
function expectScopeDenied(res, constraint, what, mentions = []) {
  assert.equal(res.status, 200, `${what}: ${res.text}`);
  assert.equal(res.json.allowed, false, `${what} should be denied: ${res.text}`);
  assert.equal(res.json.constraint, constraint, `${what}: constraint`);
  assert.equal(typeof res.json.reason, 'string');
  assert.ok(res.json.reason.includes(constraint), `${what}: reason ${JSON.stringify(res.json.reason)} names ${constraint}`);
  for (const m of mentions) assert.ok(res.json.reason.includes(m), `${what}: reason mentions ${m}`);
  assert.deepEqual(Object.keys(res.json).sort(), ['allowed', 'constraint', 'latency_ms', 'reason']);
}

test('max_<field>: equal allowed, below allowed, above denied, missing denied, non-number denied', async () => {
  const scope = { max_spend: 500 };
  await grantScope('buy', scope);
  expectAllowed(await postCheck('buy', { spend: 500 }), scope, 'spend 500');
  expectAllowed(await postCheck('buy', { spend: 499.5 }), scope, 'spend 499.5');
  expectAllowed(await postCheck('buy', { spend: 0 }), scope, 'spend 0');
  expectAllowed(await postCheck('buy', { spend: -3 }), scope, 'spend -3');
  expectAllowed(await postCheck('buy', { spend: 12, other: 'ignored' }), scope, 'extra context keys');
  const above = await postCheck('buy', { spend: 700 });
  expectScopeDenied(above, 'max_spend', 'spend 700', ['700', '500']);
  assert.equal(above.json.reason, 'Scope constraint max_spend failed: spend is 700, the maximum is 500');
  expectScopeDenied(await postCheck('buy', { spend: 500.01 }), 'max_spend', 'spend 500.01');
  expectScopeDenied(await postCheck('buy', {}), 'max_spend', 'spend missing');
  expectScopeDenied(await postCheck('buy', { other: 1 }), 'max_spend', 'spend missing, other present');
  for (const v of ['500', '1', null, true, [100], { v: 1 }]) {
    expectScopeDenied(await postCheck('buy', { spend: v }), 'max_spend', `spend ${JSON.stringify(v)}`);
  }
});

test('allowed_<field>: listed values allowed, others denied, arrays need every element', async () => {
  const scope = { allowed_city: ['NYC', 'SFO'] };
  await grantScope('fly', scope);
  expectAllowed(await postCheck('fly', { city: 'NYC' }), scope, 'city NYC');
  expectAllowed(await postCheck('fly', { city: 'SFO' }), scope, 'city SFO');
  expectAllowed(await postCheck('fly', { city: ['NYC', 'SFO'] }), scope, 'city [NYC, SFO]');
  expectAllowed(await postCheck('fly', { city: ['SFO'] }), scope, 'city [SFO]');
  expectScopeDenied(await postCheck('fly', { city: 'LAX' }), 'allowed_city', 'city LAX', ['LAX']);
  expectScopeDenied(await postCheck('fly', { city: 'nyc' }), 'allowed_city', 'city nyc (case matters)');
  expectScopeDenied(await postCheck('fly', { city: ['NYC', 'LAX'] }), 'allowed_city', 'city [NYC, LAX]');
  expectScopeDenied(await postCheck('fly', {}), 'allowed_city', 'city missing');
  expectScopeDenied(await postCheck('fly', { city: 5 }), 'allowed_city', 'city 5');

  const numScope = { allowed_seats: [1, 2] };
  await grantScope('seat', numScope);
  expectAllowed(await postCheck('seat', { seats: 2 }), numScope, 'seats 2');
  expectScopeDenied(await postCheck('seat', { seats: 3 }), 'allowed_seats', 'seats 3');
  expectScopeDenied(await postCheck('seat', { seats: '2' }), 'allowed_seats', 'seats "2" is not 2');
});

test('several constraints: all must hold; the failing one is named', async () => {
  const scope = { max_spend: 500, allowed_currency: ['USD'], note: 'kept verbatim', nested: { a: [1, 2, { b: null }] } };
  await grantScope('pay', scope);
  expectAllowed(await postCheck('pay', { spend: 100, currency: 'USD' }), scope, 'both satisfied');
  expectScopeDenied(await postCheck('pay', { spend: 100, currency: 'EUR' }), 'allowed_currency', 'currency EUR');
  expectScopeDenied(await postCheck('pay', { spend: 900, currency: 'USD' }), 'max_spend', 'spend 900');
  const both = await postCheck('pay', { spend: 900, currency: 'EUR' });
  assert.equal(both.json.allowed, false);
  assert.ok(['max_spend', 'allowed_currency'].includes(both.json.constraint), both.text);
  // Keys that are not constraints are not enforced.
  expectAllowed(await postCheck('pay', { spend: 1, currency: 'USD', note: 'different', nested: 0 }), scope, 'non-constraint keys');
});

test('several grants: allowed when any one of them is satisfied', async () => {
  const small = await grantScope('multi', { max_spend: 100 });
  const big = await grantScope('multi', { max_spend: 1000 });
  const res = await postCheck('multi', { spend: 500 });
  assert.equal(res.json.allowed, true, res.text);
  assert.equal(res.json.permission_id, big.permission_id);
  assert.deepEqual(res.json.scope, { max_spend: 1000 });
  const low = await postCheck('multi', { spend: 50 });
  assert.equal(low.json.allowed, true);
  assert.ok([small.permission_id, big.permission_id].includes(low.json.permission_id));
  expectScopeDenied(await postCheck('multi', { spend: 5000 }), 'max_spend', 'spend 5000 over both');
});

test('GET check returns the scope verbatim and does not enforce it; POST without context neither', async () => {
  const scope = { max_spend: 1, allowed_city: ['NOWHERE'], note: 'ünïcødé ✈', deep: { list: [1, 'two', false, null] } };
  await grantScope('verbatim', scope);
  const get = await api(srv.url, 'GET', `/permission/check?agent_id=${A.agent_id}&action=verbatim`, { bearer: A.secret });
  expectAllowed(get, scope, 'GET check');
  const post = await postCheck('verbatim');
  expectAllowed(post, scope, 'POST check without context');
  const denied = await postCheck('verbatim', { spend: 2, city: 'NOWHERE' });
  expectScopeDenied(denied, 'max_spend', 'POST with context is enforced');
  // An unscoped grant ignores any context.
  await api(srv.url, 'POST', '/permission/grant', { cookie, body: { agent_id: A.agent_id, action: 'free' } });
  const free = await postCheck('free', { spend: 1e9, city: 'anything' });
  assert.equal(free.json.allowed, true);
  assert.equal(free.json.scope, null);
  // No grant at all: the plain denied shape, without a constraint.
  const none = await postCheck('nothing_granted', { spend: 1 });
  assert.deepEqual(Object.keys(none.json).sort(), ['allowed', 'latency_ms', 'reason']);
  assert.equal(none.json.reason, 'Permission denied or expired');
});

test('context must be an object', async () => {
  for (const context of ['str', 5, [1, 2], true]) {
    expectError(await postCheck('buy', context), 400, 'invalid_field', { messageIncludes: ['context'] });
  }
});

test('scope must be an object of at most 16 KiB', async () => {
  for (const scope of ['str', 5, [1]]) {
    const res = await api(srv.url, 'POST', '/permission/grant', { cookie, body: { agent_id: A.agent_id, action: 'x', scope } });
    expectError(res, 400, 'invalid_field', { messageIncludes: ['scope'] });
  }
  const huge = { note: 'x'.repeat(17 * 1024) };
  expectError(await api(srv.url, 'POST', '/permission/grant', { cookie, body: { agent_id: A.agent_id, action: 'x', scope: huge } }),
    400, 'invalid_field', { messageIncludes: ['scope'] });
});

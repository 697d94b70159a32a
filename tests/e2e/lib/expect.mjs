// Assertions shared by the end-to-end tests.
//
// expectError(res, status, code, {url, messageIncludes} = {})
//     Asserts the one error shape of docs/api.md: exact HTTP status, JSON content type, `error`
//     equal to code, non-empty `message` and `remediation`, `docs` (equal to
//     <url>/docs/errors#<code> when url is given, else ending with /docs/errors#<code>), and
//     `request_id` equal to the X-Request-Id header. messageIncludes: strings the message must
//     contain (case-insensitive), e.g. the names of missing fields.
// expectNoServerError(res, what) — asserts a 4xx with the error shape (never 5xx).
// isoNear(value, expectedMs, toleranceMs, what) — asserts an ISO-8601 UTC timestamp near a time.
// eventually(fn, {timeoutMs, intervalMs}) — polls fn() until truthy; returns its last value.
// expectCleanLogs(srv) — no sanitizer report or crash message in the server's log.
// sleep(ms).

import assert from 'node:assert/strict';

export function expectError(res, status, code, { url, messageIncludes = [] } = {}) {
  const ctx = `${res.status} ${res.text.slice(0, 500)}`;
  assert.equal(res.status, status, `expected HTTP ${status} ${code}, got ${ctx}`);
  assert.match(res.headers.get('content-type') ?? '', /^application\/json/, `content-type of ${ctx}`);
  assert.ok(res.json && typeof res.json === 'object', `error body is not JSON: ${ctx}`);
  assert.equal(res.json.error, code, `error code in ${ctx}`);
  assert.equal(typeof res.json.message, 'string', `message in ${ctx}`);
  assert.ok(res.json.message.length > 0, `empty message in ${ctx}`);
  assert.equal(typeof res.json.remediation, 'string', `remediation in ${ctx}`);
  assert.ok(res.json.remediation.length > 0, `empty remediation in ${ctx}`);
  assert.equal(typeof res.json.docs, 'string', `docs in ${ctx}`);
  if (url) {
    assert.equal(res.json.docs, `${url}/docs/errors#${code}`, `docs URL in ${ctx}`);
  } else {
    assert.ok(res.json.docs.endsWith(`/docs/errors#${code}`), `docs URL in ${ctx}`);
  }
  assert.equal(typeof res.json.request_id, 'string', `request_id in ${ctx}`);
  const header = res.headers.get('x-request-id');
  assert.ok(header, `no X-Request-Id header on ${ctx}`);
  assert.equal(res.json.request_id, header, `request_id must equal X-Request-Id in ${ctx}`);
  for (const part of messageIncludes) {
    assert.ok(res.json.message.toLowerCase().includes(part.toLowerCase()),
      `message ${JSON.stringify(res.json.message)} should mention ${JSON.stringify(part)}`);
  }
  return res.json;
}

export function expectNoServerError(res, what) {
  const ctx = `${what}: ${res.status} ${res.text.slice(0, 300)}`;
  assert.ok(res.status >= 400 && res.status < 500, `expected a 4xx for ${ctx}`);
  assert.ok(res.json && typeof res.json.error === 'string', `no structured error for ${ctx}`);
  assert.equal(typeof res.json.message, 'string', `no message for ${ctx}`);
  assert.equal(res.json.request_id, res.headers.get('x-request-id'), `request_id for ${ctx}`);
}

export function isoNear(value, expectedMs, toleranceMs, what = 'timestamp') {
  assert.equal(typeof value, 'string', `${what} should be a string, got ${JSON.stringify(value)}`);
  assert.match(value, /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?Z$/, `${what} ISO-8601 UTC`);
  const t = Date.parse(value);
  assert.ok(Math.abs(t - expectedMs) <= toleranceMs,
    `${what} ${value} should be within ${toleranceMs} ms of ${new Date(expectedMs).toISOString()}`);
}

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

// Polls fn() until it returns a truthy value or timeoutMs passes; returns the last value.
export async function eventually(fn, { timeoutMs = 3000, intervalMs = 50 } = {}) {
  const deadline = Date.now() + timeoutMs;
  let last;
  for (;;) {
    last = await fn();
    if (last) return last;
    if (Date.now() >= deadline) return last;
    await sleep(intervalMs);
  }
}

// Asserts that the server's captured logs hold no sanitizer report or crash message.
export function expectCleanLogs(srv) {
  const logs = srv.logs();
  for (const marker of ['ERROR: AddressSanitizer', 'ERROR: LeakSanitizer', 'runtime error:', 'ThreadSanitizer',
    'terminate called', 'Segmentation fault']) {
    assert.ok(!logs.includes(marker), `server log contains ${JSON.stringify(marker)}:\n${logs.slice(-4000)}`);
  }
}

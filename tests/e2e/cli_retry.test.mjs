// The CLI's client: an Idempotency-Key (UUID v4) on every write, the same key on each retry;
// retries with back-off on 429 and 5xx honouring Retry-After; no retry of what cannot be
// replayed, and none beyond --timeout. The upstream here is a scripted local HTTP server.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import { spawn } from 'node:child_process';
import { BINARY } from './lib/server.mjs';

// A server that answers each request with the next scripted [status, headers, body].
async function scripted(script) {
  const seen = [];
  const server = http.createServer((req, res) => {
    let body = '';
    req.on('data', (d) => { body += d; });
    req.on('end', () => {
      seen.push({ method: req.method, url: req.url, headers: req.headers, body });
      const [status, headers, payload] = script[Math.min(seen.length - 1, script.length - 1)];
      res.writeHead(status, { 'Content-Type': 'application/json', ...headers });
      res.end(JSON.stringify(payload));
    });
  });
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { url: `http://127.0.0.1:${server.address().port}`, seen, close: () => new Promise((r) => server.close(r)) };
}

// Asynchronous, so the scripted server in this process can answer meanwhile.
function cli(args, env = {}) {
  return new Promise((resolve, reject) => {
    const proc = spawn(BINARY, args, { env: { ...process.env, AGENTGATE_URL: '', ...env } });
    let stdout = '';
    let stderr = '';
    proc.stdout.on('data', (d) => { stdout += d; });
    proc.stderr.on('data', (d) => { stderr += d; });
    const timer = setTimeout(() => { proc.kill('SIGKILL'); reject(new Error('cli timed out')); }, 20000);
    proc.on('close', (code) => { clearTimeout(timer); resolve({ code, stdout, stderr }); });
  });
}

const unavailable = [503, { 'Retry-After': '0' }, { error: 'unavailable', message: 'Shutting down', docs: '', remediation: '', request_id: 'req_x' }];

test('a write carries a UUID v4 Idempotency-Key, the same on every retry, and succeeds after 503s', async () => {
  const up = await scripted([unavailable, unavailable,
    [201, {}, { permission_id: 'p1', agent_id: 'ap_0000000000000001', action: 'act', granted_by: 'a@b.co', expires_at: null }]]);
  try {
    const r = await cli(['permission', 'grant', 'ap_0000000000000001', 'act', '--url', up.url, '--session', 'ses_x']);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(up.seen.length, 3);
    const keys = up.seen.map((s) => s.headers['idempotency-key']);
    assert.match(keys[0], /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
    assert.deepEqual(keys, [keys[0], keys[0], keys[0]]);
    assert.deepEqual(up.seen.map((s) => s.body), [up.seen[0].body, up.seen[0].body, up.seen[0].body]);
  } finally { await up.close(); }
  // Two operations get two keys.
  const up2 = await scripted([[200, {}, { status: 'ok', version: 'x', timestamp: 't' }]]);
  try {
    await cli(['auth', 'logout', '--url', up2.url, '--session', 'ses_x']);
    await cli(['auth', 'logout', '--url', up2.url, '--session', 'ses_x']);
    assert.equal(up2.seen.length, 2);
    assert.notEqual(up2.seen[0].headers['idempotency-key'], up2.seen[1].headers['idempotency-key']);
  } finally { await up2.close(); }
});

test('reads carry no key and are retried on 429 and 500; errors that persist are reported', async () => {
  const up = await scripted([[429, { 'Retry-After': '0' }, {}], [500, {}, {}],
    [200, {}, { status: 'ok', version: '1', timestamp: '2026-01-01T00:00:00Z' }]]);
  try {
    const r = await cli(['health', '--url', up.url]);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(up.seen.length, 3);
    assert.equal(up.seen[0].headers['idempotency-key'], undefined);
  } finally { await up.close(); }
  const down = await scripted([[500, {}, { error: 'server_error', message: 'Internal server error', docs: '', remediation: '', request_id: 'req_y' }]]);
  try {
    const r = await cli(['health', '--url', down.url]);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /server_error/);
    assert.equal(down.seen.length, 4, 'four attempts in all');
  } finally { await down.close(); }
});

test('a long Retry-After is reported, not waited out; registration is not retried after a 500', async () => {
  const limited = await scripted([[429, { 'Retry-After': '3600' }, { error: 'rate_limited', message: 'Too many requests', docs: '', remediation: '', request_id: 'req_z' }]]);
  try {
    const started = Date.now();
    const r = await cli(['health', '--url', limited.url]);
    assert.equal(r.code, 1);
    assert.equal(limited.seen.length, 1);
    assert.ok(Date.now() - started < 5000);
  } finally { await limited.close(); }
  const failing = await scripted([[500, {}, { error: 'server_error', message: 'Internal server error', docs: '', remediation: '', request_id: 'req_w' }]]);
  try {
    const r = await cli(['agent', 'register', '--name', 'a', '--email', 'a@example.com', '--url', failing.url]);
    assert.equal(r.code, 1);
    assert.equal(failing.seen.length, 1, 'a registration may have happened: not repeated');
  } finally { await failing.close(); }
});

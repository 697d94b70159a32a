// CORS (open to all origins, preflight answered with 204) and HTTP/1.1 connection handling
// (keep-alive, pipelining, HTTP/1.0).

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import { startServer, api, registerAgent, rawHttp, parseRawResponse } from './lib/server.mjs';

let srv;
before(async () => { srv = await startServer(); });
after(async () => {
  if (srv) assert.equal(await srv.stop(), 0);
});

function listOf(header) {
  return (header ?? '').split(',').map((s) => s.trim().toLowerCase()).filter(Boolean);
}

test('preflight OPTIONS → 204 with ACAO *, the allowed methods and headers', async () => {
  for (const [path, method, reqHeaders] of [
    ['/permission/check', 'GET', 'authorization'],
    ['/permission/check', 'POST', 'authorization, content-type'],
    ['/agent/register', 'POST', 'content-type'],
    ['/permission/grant', 'POST', 'content-type'],
    ['/auth/magic-link', 'POST', 'content-type, x-request-id'],
  ]) {
    const res = await fetch(`${srv.url}${path}`, {
      method: 'OPTIONS',
      headers: { Origin: 'https://app.example', 'Access-Control-Request-Method': method, 'Access-Control-Request-Headers': reqHeaders },
    });
    assert.equal(res.status, 204, `OPTIONS ${path}`);
    assert.equal(await res.text(), '', 'a 204 has no body');
    assert.equal(res.headers.get('access-control-allow-origin'), '*');
    const methods = listOf(res.headers.get('access-control-allow-methods'));
    for (const m of ['get', 'post', 'options']) assert.ok(methods.includes(m) || methods.includes('*'), `Allow-Methods has ${m}: ${methods}`);
    const headers = listOf(res.headers.get('access-control-allow-headers'));
    for (const h of reqHeaders.split(',').map((s) => s.trim())) {
      assert.ok(headers.includes(h) || headers.includes('*'), `Allow-Headers has ${h}: ${headers}`);
    }
    assert.ok(res.headers.get('x-request-id'), 'preflight responses carry X-Request-Id too');
  }
  // A bare OPTIONS (no Access-Control-Request-*) is answered the same way.
  const bare = await fetch(`${srv.url}/health`, { method: 'OPTIONS' });
  assert.equal(bare.status, 204);
  assert.equal(bare.headers.get('access-control-allow-origin'), '*');
});

test('normal and error responses carry Access-Control-Allow-Origin: *', async () => {
  const origin = { Origin: 'https://somewhere.example' };
  const ok = await api(srv.url, 'GET', '/health', { headers: origin });
  assert.equal(ok.status, 200);
  assert.equal(ok.headers.get('access-control-allow-origin'), '*');
  const noOrigin = await api(srv.url, 'GET', '/stats');
  assert.equal(noOrigin.headers.get('access-control-allow-origin'), '*');
  const agent = await registerAgent(srv.url);
  const reg = agent.res;
  assert.equal(reg.headers.get('access-control-allow-origin'), '*');
  const check = await api(srv.url, 'GET', `/permission/check?agent_id=${agent.agent_id}&action=x`, { bearer: agent.secret, headers: origin });
  assert.equal(check.status, 200);
  assert.equal(check.headers.get('access-control-allow-origin'), '*');
  for (const [method, path] of [['GET', '/nope'], ['GET', '/permission/check'], ['DELETE', '/health'], ['GET', '/auth/session']]) {
    const err = await api(srv.url, method, path, { headers: origin });
    assert.ok(err.status >= 400 && err.status < 500);
    assert.equal(err.headers.get('access-control-allow-origin'), '*', `${method} ${path} (${err.status})`);
  }
});

test('keep-alive: several requests on one connection', async () => {
  const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
  const ports = [];
  try {
    for (let i = 0; i < 6; i++) {
      const { status, localPort, connection } = await new Promise((resolve, reject) => {
        const req = http.request(`${srv.url}/health`, { agent }, (res) => {
          res.resume();
          res.on('end', () => resolve({ status: res.statusCode, localPort: req.socket.localPort, connection: res.headers.connection }));
        });
        req.on('error', reject);
        req.end();
      });
      assert.equal(status, 200);
      assert.notEqual(connection, 'close', 'the server keeps the connection open');
      ports.push(localPort);
    }
  } finally {
    agent.destroy();
  }
  assert.equal(new Set(ports).size, 1, `all requests used one connection (local ports ${ports})`);
});

test('pipelined requests on one connection are answered in order', async () => {
  const req = (path, id) => `GET ${path} HTTP/1.1\r\nHost: x\r\nX-Request-Id: ${id}\r\n\r\n`;
  const data = req('/health', 'pipe-1') + req('/nope', 'pipe-2') +
    'GET /stats HTTP/1.1\r\nHost: x\r\nX-Request-Id: pipe-3\r\nConnection: close\r\n\r\n';
  const r = await rawHttp(srv.port, data, { timeoutMs: 5000 });
  assert.equal(r.timedOut, false, 'the server closes after Connection: close');
  const statuses = [...r.data.matchAll(/HTTP\/1\.1 (\d{3}) /g)].map((m) => Number(m[1]));
  assert.deepEqual(statuses, [200, 404, 200]);
  const ids = [...r.data.matchAll(/^x-request-id: (\S+)/gim)].map((m) => m[1]);
  assert.deepEqual(ids, ['pipe-1', 'pipe-2', 'pipe-3']);
});

test('HTTP/1.0 without keep-alive gets one answer and a close', async () => {
  const r = await rawHttp(srv.port, 'GET /health HTTP/1.0\r\n\r\n', { timeoutMs: 5000 });
  assert.equal(r.timedOut, false, 'closed after the response');
  const res = parseRawResponse(r.data);
  assert.equal(res.status, 200);
  assert.equal(JSON.parse(res.body).status, 'ok');
});

test('an unknown method on a known path is answered (400 or 405), not a hang', async () => {
  const r = await rawHttp(srv.port, 'BREW /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n', { timeoutMs: 5000 });
  const res = parseRawResponse(r.data);
  assert.ok(res, 'a response');
  assert.ok([400, 405].includes(res.status), `got ${res.status}`);
});

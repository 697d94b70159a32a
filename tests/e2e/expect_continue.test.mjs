// "Expect: 100-continue" (curl sends it for bodies over 1 KiB): the server answers 100 Continue
// at once instead of leaving the client to wait, then reads the body and answers it.

import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { startServer, uniqueEmail, parseRawResponse } from './lib/server.mjs';

const srv = await startServer();
after(() => srv.stop());

test('100 Continue comes before the body is sent, then the request is answered', async () => {
  const body = JSON.stringify({ name: 'big', developer_email: uniqueEmail('expect'), description: 'd'.repeat(1500) });
  const socket = net.connect(srv.port, '127.0.0.1');
  let received = '';
  socket.on('data', (chunk) => { received += chunk.toString('latin1'); });
  await new Promise((resolve, reject) => { socket.once('connect', resolve); socket.once('error', reject); });
  socket.write('POST /agent/register HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n' +
    `Content-Length: ${Buffer.byteLength(body)}\r\nExpect: 100-continue\r\nConnection: close\r\n\r\n`);
  const started = Date.now();
  while (!received.includes('\r\n\r\n') && Date.now() - started < 2000) await new Promise((r) => setTimeout(r, 5));
  assert.match(received, /^HTTP\/1\.1 100 Continue\r\n\r\n$/, 'the interim answer arrives before the body is sent');
  assert.ok(Date.now() - started < 500, 'without delay');
  received = '';
  socket.write(body);
  await new Promise((resolve) => socket.once('close', resolve));
  const res = parseRawResponse(received);
  assert.equal(res.status, 201);
  assert.match(JSON.parse(res.body).agent_id, /^ap_[0-9a-f]{16}$/);
});

test('a request without Expect gets no interim answer', async () => {
  const body = JSON.stringify({ email: 'not-an-address' });
  const socket = net.connect(srv.port, '127.0.0.1');
  let received = '';
  socket.on('data', (chunk) => { received += chunk.toString('latin1'); });
  await new Promise((resolve, reject) => { socket.once('connect', resolve); socket.once('error', reject); });
  socket.write('POST /auth/magic-link HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n' +
    `Content-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`);
  await new Promise((resolve) => socket.once('close', resolve));
  assert.ok(!received.includes('100 Continue'));
  assert.equal(parseRawResponse(received).status, 400);
});

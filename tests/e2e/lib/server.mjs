// Harness for the end-to-end tests: starts the real agentgate binary on port 0 with a temporary
// data directory and speaks real HTTP (and SMTP) to it. Other test files (e.g. cli.test.mjs)
// import this module, so the exported API below is kept stable.
//
// Binary: $AGENTGATE_BIN (absolute, or relative to the current directory), default
// <repo>/build/agentgate (i.e. ../../build/agentgate relative to tests/e2e).
//
// startServer({args = [], env = {}, smtp = false, dataDir, waitMs = 15000} = {})
//     Spawns `agentgate serve --listen 127.0.0.1:0 --data-dir <dataDir> ...args` and waits for
//     the `listening on http://…` log line. `dataDir` defaults to a new temporary directory (pass
//     the one of a stopped server to restart on the same data). `smtp`: false (links are logged),
//     true (a fresh startSmtp() is started, passed as --smtp-url/--mail-from, closed by stop()),
//     or an object returned by startSmtp() (not closed by stop()).
//     Resolves to {
//       url,          // 'http://127.0.0.1:PORT' as parsed from the log line
//       port,         // number
//       proc,         // the ChildProcess
//       dataDir,      // the data directory (kept after stop(); removed when the test process exits)
//       smtp,         // the startSmtp() object or null
//       logs(),       // everything the process wrote to stdout and stderr so far (string)
//       waitForLog(regex, {timeoutMs = 10000, from = 0} = {}) // first match in logs().slice(from)
//       exited(),     // true once the process has exited
//       exitCode(),   // exit code (null while running; 128+n for signal n)
//       stop({signal = 'SIGTERM', timeoutMs = 10000} = {}) // signal, wait for exit, return the
//                     // exit code; throws if the process has not exited within timeoutMs
//     }
//
// startSmtp() → Promise<{ port, url, messages, waitForMessage(predicate, timeoutMs = 10000), close() }>
//     A real SMTP server (npm smtp-server, no TLS, auth optional) on 127.0.0.1:0. Each message is
//     { from, to: [addresses], raw, text } where `text` is the MIME-decoded body (all parts).
//     predicate(message, index) → boolean; waitForMessage resolves with the first match.
//
// registerAgent(url, overrides = {}) → { agent_id, secret, body, res }
//     POST /agent/register with a valid unique body merged with overrides; asserts 201.
// requestMagicLink(url, email, {smtp} = {}) → link (string)
//     POST /auth/magic-link (asserts 200) and returns the newly issued link: from the received
//     mail when the server sends mail (opts.smtp, or the server's own smtp), else from the log
//     line `sign-in link for <email>: <url>`. `url` must belong to a server from startServer().
// followMagicLink(link) → { status, headers, cookie, setCookie }  (no redirect following;
//     the response is checked against docs/openapi.json like api()'s)
// signIn(url, email, {smtp} = {}) → the ap_session cookie value (asserts the 302 and the cookie)
// api(url, method, path, {body, cookie, bearer, headers} = {}) → { status, headers, json, text }
//     body: an object/array/number (sent as JSON) or a string/Buffer (sent verbatim, with
//     Content-Type application/json unless headers say otherwise). cookie: the ap_session value.
//     bearer: the agent secret (sent as 'Authorization: Bearer <bearer>'). headers: extra headers.
//     `headers` in the result is the fetch Headers object; `json` is null when not JSON.
//     Every response is checked against docs/openapi.json (lib/openapi.mjs validateResponse):
//     an undocumented status, header, content type or a JSON body that does not match its schema
//     makes api() throw. Set AGENTGATE_E2E_NO_OPENAPI=1 to switch that off for a post-mortem.
// rawHttp(port, data, {timeoutMs = 5000, endAfterWrite = false} = {}) → { data, closed, timedOut }
//     Writes raw bytes over node:net and collects the answer until the server closes the
//     connection or timeoutMs passes.
// parseRawResponse(data) → { status, headers: {lower-case name: value}, body } of the first
//     HTTP response in a raw string, or null.
// uniqueEmail(tag) → a fresh address under example.com.
// makeTempDir(prefix) → a new temporary directory, removed when the test process exits (set
//     AGENTGATE_E2E_KEEP=1 to keep them for a post-mortem).
// BINARY — the path of the binary under test.

import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import assert from 'node:assert/strict';
import { SMTPServer } from 'smtp-server';
import { validateResponse } from './openapi.mjs';

const here = path.dirname(fileURLToPath(import.meta.url));

export const BINARY = process.env.AGENTGATE_BIN
  ? path.resolve(process.env.AGENTGATE_BIN)
  : path.resolve(here, '..', '..', '..', 'build', 'agentgate');

const servers = new Map(); // url -> server handle
const children = new Set();
const tempDirs = new Set();

process.on('exit', () => {
  for (const child of children) {
    try { child.kill('SIGKILL'); } catch { /* already gone */ }
  }
  if (!process.env.AGENTGATE_E2E_KEEP) {
    for (const dir of tempDirs) {
      try { rmSync(dir, { recursive: true, force: true }); } catch { /* best effort */ }
    }
  }
});

export function makeTempDir(prefix = 'agentgate-e2e-') {
  const dir = mkdtempSync(path.join(os.tmpdir(), prefix));
  tempDirs.add(dir);
  return dir;
}

let counter = 0;
export function uniqueEmail(tag = 'user') {
  counter += 1;
  return `${tag}-${process.pid}-${Date.now().toString(36)}-${counter}@example.com`;
}

export async function startServer({ args = [], env = {}, smtp = false, dataDir, waitMs = 15000 } = {}) {
  const dir = dataDir ?? makeTempDir();
  let smtpHandle = null;
  let ownSmtp = false;
  if (smtp === true) {
    smtpHandle = await startSmtp();
    ownSmtp = true;
  } else if (smtp) {
    smtpHandle = smtp;
  }
  const fullArgs = ['serve', '--listen', '127.0.0.1:0', '--data-dir', dir];
  if (smtpHandle) {
    fullArgs.push('--smtp-url', smtpHandle.url, '--mail-from', 'agentgate@test.local');
  }
  fullArgs.push(...args);

  const proc = spawn(BINARY, fullArgs, {
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  children.add(proc);
  let output = '';
  let exitCode = null;
  let exited = false;
  const waiters = new Set();
  const notify = () => { for (const w of [...waiters]) w(); };
  proc.stdout.setEncoding('utf8');
  proc.stderr.setEncoding('utf8');
  proc.stdout.on('data', (d) => { output += d; notify(); });
  proc.stderr.on('data', (d) => { output += d; notify(); });
  const exitPromise = new Promise((resolve) => {
    proc.on('exit', (code, signal) => {
      exited = true;
      exitCode = code ?? (signal ? 128 + (os.constants.signals[signal] ?? 0) : null);
      children.delete(proc);
      notify();
      resolve(exitCode);
    });
    proc.on('error', (err) => {
      output += `\n[harness] spawn error: ${err.message}\n`;
      exited = true;
      exitCode = -1;
      children.delete(proc);
      notify();
      resolve(exitCode);
    });
  });

  function waitForLog(regex, { timeoutMs = 10000, from = 0 } = {}) {
    return new Promise((resolve, reject) => {
      const check = () => {
        const m = output.slice(from).match(regex);
        if (m) { cleanup(); resolve(m); return true; }
        if (exited) {
          // Let the last output chunk arrive before giving up.
          setTimeout(() => {
            const again = output.slice(from).match(regex);
            cleanup();
            if (again) resolve(again);
            else reject(new Error(`process exited (code ${exitCode}) before log matched ${regex}\n--- logs ---\n${output}`));
          }, 50);
          return true;
        }
        return false;
      };
      const timer = setTimeout(() => {
        cleanup();
        reject(new Error(`timed out after ${timeoutMs} ms waiting for log ${regex}\n--- logs ---\n${output}`));
      }, timeoutMs);
      const waiter = () => { check(); };
      const cleanup = () => { clearTimeout(timer); waiters.delete(waiter); };
      if (!check()) waiters.add(waiter);
    });
  }

  let m;
  try {
    m = await waitForLog(/listening on (http:\/\/\S+)/, { timeoutMs: waitMs });
  } catch (err) {
    if (!exited) proc.kill('SIGKILL');
    if (ownSmtp) await smtpHandle.close();
    throw new Error(`agentgate (${BINARY}) did not start: ${err.message}`);
  }
  const url = m[1].replace(/\/+$/, '');
  const port = Number(new URL(url).port);

  const handle = {
    url,
    port,
    proc,
    dataDir: dir,
    smtp: smtpHandle,
    logs: () => output,
    waitForLog,
    exited: () => exited,
    exitCode: () => exitCode,
    async stop({ signal = 'SIGTERM', timeoutMs = 10000 } = {}) {
      try {
        if (!exited) {
          proc.kill(signal);
          let timer;
          const timeout = new Promise((_, reject) => {
            timer = setTimeout(() => reject(new Error(
              `agentgate did not exit within ${timeoutMs} ms of ${signal}\n--- logs ---\n${output}`)), timeoutMs);
          });
          try {
            await Promise.race([exitPromise, timeout]);
          } catch (err) {
            proc.kill('SIGKILL');
            await exitPromise;
            throw err;
          } finally {
            clearTimeout(timer);
          }
        }
        return exitCode;
      } finally {
        servers.delete(url);
        if (ownSmtp) await smtpHandle.close();
      }
    },
  };
  servers.set(url, handle);
  return handle;
}

// ---------------------------------------------------------------------------------------------
// SMTP

function decodeQuotedPrintable(s) {
  const bytes = [];
  const soft = s.replace(/=\r?\n/g, '');
  for (let i = 0; i < soft.length; i++) {
    const c = soft[i];
    if (c === '=' && /^[0-9A-Fa-f]{2}$/.test(soft.slice(i + 1, i + 3))) {
      bytes.push(parseInt(soft.slice(i + 1, i + 3), 16));
      i += 2;
    } else {
      bytes.push(...Buffer.from(c, 'utf8'));
    }
  }
  return Buffer.from(bytes).toString('utf8');
}

function splitHeaders(entity) {
  const idx = entity.search(/\r?\n\r?\n/);
  if (idx < 0) return { headers: entity, body: '' };
  const sep = entity.slice(idx).match(/^\r?\n\r?\n/)[0];
  return { headers: entity.slice(0, idx), body: entity.slice(idx + sep.length) };
}

function headerValue(headers, name) {
  const unfolded = headers.replace(/\r?\n[ \t]+/g, ' ');
  const re = new RegExp(`^${name}:[ \\t]*(.*)$`, 'im');
  const m = unfolded.match(re);
  return m ? m[1].trim() : '';
}

// Decodes a MIME entity into the concatenated text of all its leaf parts.
export function mimeText(entity, depth = 0) {
  const { headers, body } = splitHeaders(entity);
  const ctype = headerValue(headers, 'Content-Type');
  const boundaryMatch = ctype.match(/boundary="?([^";]+)"?/i);
  if (/^multipart\//i.test(ctype) && boundaryMatch && depth < 10) {
    const boundary = boundaryMatch[1];
    const parts = body.split(`--${boundary}`).slice(1);
    return parts
      .filter((p) => !p.startsWith('--'))
      .map((p) => mimeText(p.replace(/^\r?\n/, ''), depth + 1))
      .join('\n');
  }
  const cte = headerValue(headers, 'Content-Transfer-Encoding').toLowerCase();
  if (cte === 'quoted-printable') return decodeQuotedPrintable(body);
  if (cte === 'base64') return Buffer.from(body.replace(/\s+/g, ''), 'base64').toString('utf8');
  return body;
}

export async function startSmtp() {
  const messages = [];
  const waiters = new Set();
  const server = new SMTPServer({
    authOptional: true,
    disabledCommands: ['STARTTLS'],
    hideSTARTTLS: true,
    logger: false,
    onAuth(auth, session, callback) { callback(null, { user: auth.username || 'anonymous' }); },
    onData(stream, session, callback) {
      const chunks = [];
      stream.on('data', (c) => chunks.push(c));
      stream.on('end', () => {
        const raw = Buffer.concat(chunks).toString('utf8');
        let text;
        try { text = mimeText(raw); } catch { text = raw; }
        messages.push({
          from: session.envelope.mailFrom ? session.envelope.mailFrom.address : null,
          to: session.envelope.rcptTo.map((r) => r.address),
          raw,
          text,
        });
        for (const w of [...waiters]) w();
        callback();
      });
    },
  });
  server.on('error', () => { /* connection-level errors are not test failures by themselves */ });
  await new Promise((resolve, reject) => {
    server.listen(0, '127.0.0.1', (err) => (err ? reject(err) : resolve()));
  });
  const port = server.server.address().port;
  return {
    port,
    url: `smtp://127.0.0.1:${port}`,
    messages,
    waitForMessage(predicate, timeoutMs = 10000) {
      return new Promise((resolve, reject) => {
        const check = () => {
          const idx = messages.findIndex((m, i) => predicate(m, i));
          if (idx >= 0) { cleanup(); resolve(messages[idx]); return true; }
          return false;
        };
        const timer = setTimeout(() => {
          cleanup();
          reject(new Error(`timed out after ${timeoutMs} ms waiting for mail; received ${messages.length}: ` +
            JSON.stringify(messages.map((m) => ({ from: m.from, to: m.to })))));
        }, timeoutMs);
        const waiter = () => { check(); };
        const cleanup = () => { clearTimeout(timer); waiters.delete(waiter); };
        if (!check()) waiters.add(waiter);
      });
    },
    close() {
      return new Promise((resolve) => server.close(() => resolve()));
    },
  };
}

// ---------------------------------------------------------------------------------------------
// HTTP

export async function api(url, method, pathAndQuery, { body, cookie, bearer, headers = {} } = {}) {
  const h = { ...headers };
  const hasHeader = (name) => Object.keys(h).some((k) => k.toLowerCase() === name.toLowerCase());
  let payload;
  if (body !== undefined) {
    if (typeof body === 'string' || Buffer.isBuffer(body) || body instanceof Uint8Array) {
      payload = body;
    } else {
      payload = JSON.stringify(body);
    }
    if (!hasHeader('content-type')) h['Content-Type'] = 'application/json';
  }
  if (cookie !== undefined && cookie !== null) h.Cookie = `ap_session=${cookie}`;
  if (bearer !== undefined && bearer !== null) h.Authorization = `Bearer ${bearer}`;
  const res = await fetch(url + pathAndQuery, { method, headers: h, body: payload, redirect: 'manual' });
  const text = await res.text();
  let json = null;
  try { json = JSON.parse(text); } catch { json = null; }
  checkAgainstSpec(method, pathAndQuery, res, text);
  return { status: res.status, headers: res.headers, json, text };
}

// Every response from agentgate is validated against docs/openapi.json (see lib/openapi.mjs for
// what is checked, and for the endpoints under /v1/ and /mcp that are recorded, not validated,
// until they are documented).
function checkAgainstSpec(method, pathAndQuery, res, text) {
  if (process.env.AGENTGATE_E2E_NO_OPENAPI) return;
  validateResponse(method, pathAndQuery, res.status, res.headers.get('content-type'), text, res.headers);
}

let agentCounter = 0;
export async function registerAgent(url, overrides = {}) {
  agentCounter += 1;
  const body = {
    name: `e2e-agent-${agentCounter}`,
    description: 'Agent made by the end-to-end tests',
    developer_email: uniqueEmail('dev'),
    ...overrides,
  };
  const res = await api(url, 'POST', '/agent/register', { body });
  assert.equal(res.status, 201, `register should answer 201, got ${res.status}: ${res.text}`);
  assert.equal(typeof res.json.agent_id, 'string');
  assert.equal(typeof res.json.secret, 'string');
  return { agent_id: res.json.agent_id, secret: res.json.secret, body: res.json, res };
}

const LINK_RE = /(https?:\/\/[^\s"'<>]+\/auth\/verify\?token=ml_[A-Za-z0-9_-]+)/;

function escapeRegex(s) { return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&'); }

export async function requestMagicLink(url, email, { smtp } = {}) {
  const server = servers.get(url);
  const mailbox = smtp ?? server?.smtp ?? null;
  if (!mailbox && !server) {
    throw new Error(`requestMagicLink: ${url} is not a server started by startServer() and no smtp given`);
  }
  const logFrom = server ? server.logs().length : 0;
  const mailFrom = mailbox ? mailbox.messages.length : 0;
  const res = await api(url, 'POST', '/auth/magic-link', { body: { email } });
  assert.equal(res.status, 200, `magic-link should answer 200, got ${res.status}: ${res.text}`);
  if (mailbox) {
    const msg = await mailbox.waitForMessage(
      (m, i) => i >= mailFrom && m.to.some((a) => a.toLowerCase() === email.toLowerCase()), 10000);
    const m = msg.text.match(LINK_RE) ?? msg.raw.match(LINK_RE);
    assert.ok(m, `no sign-in link in the mail to ${email}:\n${msg.raw}`);
    return m[1];
  }
  const re = new RegExp(`sign-in link for ${escapeRegex(email)}: (\\S+)`, 'i');
  const m = await server.waitForLog(re, { from: logFrom, timeoutMs: 10000 });
  return m[1];
}

export function sessionFromSetCookie(setCookies) {
  for (const c of setCookies) {
    const m = c.match(/^\s*ap_session=([^;]*)/);
    if (m) return m[1];
  }
  return null;
}

export async function followMagicLink(link) {
  const res = await fetch(link, { redirect: 'manual' });
  const text = await res.text();
  const u = new URL(link);
  checkAgainstSpec('GET', u.pathname + u.search, res, text);
  const setCookie = res.headers.getSetCookie();
  return { status: res.status, headers: res.headers, cookie: sessionFromSetCookie(setCookie), setCookie };
}

export async function signIn(url, email, { smtp } = {}) {
  const link = await requestMagicLink(url, email, { smtp });
  const res = await followMagicLink(link);
  assert.equal(res.status, 302, `GET ${link} should redirect with 302, got ${res.status}`);
  assert.ok(res.cookie, `no ap_session cookie set by ${link}: ${JSON.stringify(res.setCookie)}`);
  return res.cookie;
}

export function rawHttp(port, data, { timeoutMs = 5000, endAfterWrite = false } = {}) {
  return new Promise((resolve) => {
    const sock = net.connect(port, '127.0.0.1');
    const chunks = [];
    let done = false;
    const finish = (closed, timedOut) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      sock.destroy();
      resolve({ data: Buffer.concat(chunks).toString('latin1'), closed, timedOut });
    };
    const timer = setTimeout(() => finish(false, true), timeoutMs);
    sock.on('connect', () => {
      sock.write(data);
      if (endAfterWrite) sock.end();
    });
    sock.on('data', (c) => chunks.push(c));
    sock.on('end', () => finish(true, false));
    sock.on('close', () => finish(true, false));
    sock.on('error', () => finish(true, false));
  });
}

// Parses the first HTTP response in a raw byte string: { status, headers: {lower-name: value}, body }.
export function parseRawResponse(data) {
  const idx = data.indexOf('\r\n\r\n');
  if (idx < 0) return null;
  const head = data.slice(0, idx).split('\r\n');
  const m = head[0].match(/^HTTP\/1\.[01] (\d{3})/);
  if (!m) return null;
  const headers = {};
  for (const line of head.slice(1)) {
    const c = line.indexOf(':');
    if (c > 0) headers[line.slice(0, c).trim().toLowerCase()] = line.slice(c + 1).trim();
  }
  let body = data.slice(idx + 4);
  if (headers['content-length'] !== undefined) body = body.slice(0, Number(headers['content-length']));
  return { status: Number(m[1]), headers, body };
}

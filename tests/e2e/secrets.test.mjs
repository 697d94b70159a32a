// After a session with SMTP configured, no agent secret, session token or link token appears in
// plaintext in any file of the data directory (including SQLite -wal/-shm files) or in the logs.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { startServer, api, registerAgent, requestMagicLink, followMagicLink, uniqueEmail } from './lib/server.mjs';
import { expectCleanLogs } from './lib/expect.mjs';

function filesUnder(dir) {
  const out = [];
  for (const name of readdirSync(dir)) {
    const p = path.join(dir, name);
    const st = statSync(p);
    if (st.isDirectory()) out.push(...filesUnder(p));
    else if (st.isFile()) out.push(p);
  }
  return out;
}

// Each secret in the forms it could leak: as sent, without its prefix, and in UTF-16 (SQLite can
// store text as UTF-16), so a plaintext copy is found however it was written.
function needles(secret) {
  const forms = new Set([secret]);
  const m = secret.match(/^(sk_ap_|ml_)(.+)$/);
  if (m) forms.add(m[2]);
  const out = [];
  for (const f of forms) {
    out.push({ form: f, bytes: Buffer.from(f, 'utf8') });
    out.push({ form: `${f} (utf-16le)`, bytes: Buffer.from(f, 'utf16le') });
  }
  return out;
}

test('no secret, session token or link token in plaintext in the data dir or the logs', async () => {
  const srv = await startServer({ smtp: true, args: ['--log-level', 'debug'] });
  const smtp = srv.smtp;
  const secrets = []; // { kind, value }
  let stopped = false;
  try {
    // Agents.
    const agents = [];
    for (let i = 0; i < 3; i++) {
      const a = await registerAgent(srv.url, { metadata: { i } });
      agents.push(a);
      secrets.push({ kind: `agent secret ${i}`, value: a.secret });
    }
    // People: sign in by mailed links (the link is not logged with SMTP configured).
    const sessions = [];
    for (let i = 0; i < 2; i++) {
      const email = uniqueEmail(`secret${i}`);
      const link = await requestMagicLink(srv.url, email, { smtp });
      const token = new URL(link).searchParams.get('token');
      secrets.push({ kind: `link token ${i}`, value: token });
      assert.ok(!srv.logs().includes(token), 'the link token is not logged when mail is sent');
      const res = await followMagicLink(link);
      assert.equal(res.status, 302);
      sessions.push(res.cookie);
      secrets.push({ kind: `session token ${i}`, value: res.cookie });
    }
    // A link that is issued but never used.
    const unused = await requestMagicLink(srv.url, uniqueEmail('unused'), { smtp });
    secrets.push({ kind: 'unused link token', value: new URL(unused).searchParams.get('token') });

    // Grants, checks (GET and POST, allowed and denied, and refused with a wrong secret), revoke.
    for (const a of agents) {
      const g = await api(srv.url, 'POST', '/permission/grant', { cookie: sessions[0], body: { agent_id: a.agent_id, action: 'book_flight', expires_in: '1h' } });
      assert.equal(g.status, 201, g.text);
      for (const action of ['book_flight', 'other']) {
        const c = await api(srv.url, 'GET', `/permission/check?agent_id=${a.agent_id}&action=${action}`, { bearer: a.secret });
        assert.equal(c.status, 200, c.text);
        const p = await api(srv.url, 'POST', '/permission/check', { bearer: a.secret, body: { agent_id: a.agent_id, action } });
        assert.equal(p.status, 200, p.text);
      }
      const prof = await api(srv.url, 'GET', `/agent/${a.agent_id}`, { bearer: a.secret });
      assert.equal(prof.status, 200);
    }
    const wrong = await api(srv.url, 'GET', `/permission/check?agent_id=${agents[0].agent_id}&action=x`, { bearer: agents[1].secret });
    assert.equal(wrong.status, 403);
    const revoke = await api(srv.url, 'POST', '/permission/revoke', { cookie: sessions[0], body: { agent_id: agents[2].agent_id, action: 'book_flight' } });
    assert.equal(revoke.status, 200, revoke.text);
    assert.equal((await api(srv.url, 'GET', '/auth/session', { cookie: sessions[1] })).status, 200);
    assert.equal((await api(srv.url, 'POST', '/auth/logout', { cookie: sessions[1] })).status, 200);
    assert.equal((await api(srv.url, 'GET', '/permissions?status=all', { cookie: sessions[0] })).status, 200);

    assert.equal(await srv.stop(), 0);
    stopped = true;
    expectCleanLogs(srv);

    // Every secret was really issued (sanity: the search below would find them if stored raw).
    assert.equal(secrets.length, 3 + 2 * 2 + 1);
    for (const s of secrets) assert.ok(typeof s.value === 'string' && s.value.length >= 20, `${s.kind} looks like a token`);

    const files = filesUnder(srv.dataDir);
    assert.ok(files.length > 0, 'the data dir holds the database');
    const contents = files.map((f) => ({ file: f, bytes: readFileSync(f) }));
    const total = contents.reduce((n, c) => n + c.bytes.length, 0);
    assert.ok(total > 0, 'the database files are not empty');
    const logs = Buffer.from(srv.logs(), 'utf8');
    const leaks = [];
    for (const s of secrets) {
      for (const n of needles(s.value)) {
        for (const c of contents) {
          if (c.bytes.includes(n.bytes)) leaks.push(`${s.kind} as ${n.form.slice(0, 16)}… in ${path.relative(srv.dataDir, c.file)}`);
        }
        if (logs.includes(n.bytes)) leaks.push(`${s.kind} as ${n.form.slice(0, 16)}… in the server log`);
      }
    }
    assert.deepEqual(leaks, [], 'no plaintext secret anywhere');

    // Positive control: things that are not secret are stored (so the search reads real data).
    const agentIdFound = contents.some((c) => c.bytes.includes(Buffer.from(agents[0].agent_id)));
    assert.ok(agentIdFound, 'agent ids are in the data dir, so the search looked at the real store');
  } finally {
    if (!stopped) await srv.stop();
  }
});

// docs/openapi.json: it lints clean (Redocly CLI, offline), the binary serves it byte for byte,
// it is OpenAPI 3.1 throughout, it matches the server's error catalogue, Idempotency-Key and
// method lists, its abilities and webhook event types, every webhook delivery matches its
// `webhooks` entry, and the response validator that lib/server.mjs applies to every response of
// the suite (lib/openapi.mjs) really catches mismatches.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Webhook } from 'standardwebhooks';
import { startServer, api, registerAgent, signIn, uniqueEmail } from './lib/server.mjs';
import { eventually } from './lib/expect.mjs';
import {
  spec, SPEC_PATH, operations, deref, validateResponse, validateWebhook, notValidated,
  matchTemplate,
} from './lib/openapi.mjs';

const here = path.dirname(fileURLToPath(import.meta.url));
const REDOCLY = path.join(here, 'node_modules', '.bin', 'redocly');

let srv;
before(async () => {
  srv = await startServer({ args: ['--rate-limit', 'register=1000/h', '--rate-limit', 'magic-link=1000/15m'] });
});
after(async () => {
  if (srv) assert.equal(await srv.stop(), 0);
});

// ---- the document --------------------------------------------------------------------------

test('redocly lint: no errors and no warnings (config: redocly.yaml)', async () => {
  const { code, stdout, stderr } = await new Promise((resolve) => {
    execFile(REDOCLY, ['lint', '--config', path.join(here, 'redocly.yaml'), '--format', 'json',
      '--max-problems', '1000', SPEC_PATH], {
      cwd: here,
      timeout: 120000,
      maxBuffer: 64 << 20,
      // Offline and quiet: no telemetry, no update check.
      env: { ...process.env, REDOCLY_TELEMETRY: 'off', REDOCLY_SUPPRESS_UPDATE_NOTICE: 'true', NO_COLOR: '1' },
    }, (err, out, errOut) => resolve({ code: err ? (err.code ?? 1) : 0, stdout: out, stderr: errOut }));
  });
  let report;
  try {
    report = JSON.parse(stdout);
  } catch {
    assert.fail(`redocly lint did not print a JSON report (exit ${code}):\n${stdout}\n${stderr}`);
  }
  const problems = report.problems.map((p) =>
    `${p.severity} ${p.ruleId}: ${p.message} at ${p.location?.[0]?.pointer ?? '?'}`);
  assert.equal(report.totals.errors, 0, `redocly lint errors:\n${problems.join('\n')}`);
  // Every rule in redocly.yaml is an error or off (each "off" is justified there), so a warning
  // means a rule was added to the ruleset without a decision about it.
  assert.equal(report.totals.warnings, 0, `redocly lint warnings:\n${problems.join('\n')}`);
  assert.equal(code, 0, `redocly lint exit code ${code}\n${stderr}`);
});

test('GET /openapi.json serves docs/openapi.json byte for byte', async () => {
  const res = await api(srv.url, 'GET', '/openapi.json');
  assert.equal(res.status, 200);
  assert.match(res.headers.get('content-type'), /^application\/json/);
  assert.equal(res.text, readFileSync(SPEC_PATH, 'utf8'),
    'the binary embeds docs/openapi.json at build time: rebuild it after changing the spec');
  // HEAD answers the same status without a body.
  const head = await api(srv.url, 'HEAD', '/openapi.json');
  assert.equal(head.status, 200);
  assert.equal(head.text, '');
});

test('OpenAPI 3.1 throughout: no 3.0 leftovers', () => {
  assert.equal(spec.openapi, '3.1.0');
  assert.equal(spec.jsonSchemaDialect, 'https://json-schema.org/draft/2020-12/schema');
  assert.ok(spec.info.license?.identifier, 'info.license.identifier');
  // Walk every schema: no `nullable`, no singular `example` (3.1 schemas use `examples`).
  const bad = [];
  const walkSchema = (s, where) => {
    if (!s || typeof s !== 'object') return;
    if (Array.isArray(s)) { s.forEach((x, i) => walkSchema(x, `${where}/${i}`)); return; }
    if ('nullable' in s) bad.push(`${where}: nullable`);
    if ('example' in s) bad.push(`${where}: example`);
    for (const k of ['properties', 'patternProperties', '$defs']) {
      for (const [n, v] of Object.entries(s[k] ?? {})) walkSchema(v, `${where}/${k}/${n}`);
    }
    for (const k of ['items', 'additionalProperties', 'not', 'if', 'then', 'else', 'contains']) {
      if (s[k] && typeof s[k] === 'object') walkSchema(s[k], `${where}/${k}`);
    }
    for (const k of ['allOf', 'anyOf', 'oneOf', 'prefixItems']) {
      (s[k] ?? []).forEach((x, i) => walkSchema(x, `${where}/${k}/${i}`));
    }
  };
  const walkAll = (node, where) => {
    if (!node || typeof node !== 'object') return;
    for (const [k, v] of Object.entries(node)) {
      if (k === 'schema') walkSchema(v, `${where}/schema`);
      else walkAll(v, `${where}/${k}`);
    }
  };
  walkAll(spec.paths, '#/paths');
  walkAll(spec.webhooks, '#/webhooks');
  walkAll(spec.components.parameters, '#/components/parameters');
  walkAll(spec.components.headers, '#/components/headers');
  walkAll(spec.components.responses, '#/components/responses');
  for (const [n, s] of Object.entries(spec.components.schemas)) walkSchema(s, `#/components/schemas/${n}`);
  assert.deepEqual(bad, []);
});

test('every operation: the shared statuses, X-Request-Id everywhere, the Error shape on every error', () => {
  const problems = [];
  for (const { method, path: p, operation } of operations()) {
    const name = `${method.toUpperCase()} ${p}`;
    for (const status of ['400', '413', '431', '500', '503']) {
      if (!operation.responses[status]) problems.push(`${name}: no ${status} response`);
    }
    for (const [status, raw] of Object.entries(operation.responses)) {
      const r = deref(raw);
      if (!r.headers?.['X-Request-Id']) problems.push(`${name} ${status}: no X-Request-Id header`);
      if (Number(status) >= 400) {
        const media = r.content?.['application/json'];
        const schema = media?.schema;
        const refs = JSON.stringify(schema ?? {});
        // /mcp speaks JSON-RPC: its own refusals are JSON-RPC errors (agentgate's Error inside
        // `data` where there is one); the HTTP layer's (413, 431, 500, 503) are the Error shape.
        const shape = isJsonRpc(p, raw) ? '"#/components/schemas/JsonRpcAnswer"' : '"#/components/schemas/Error"';
        if (!refs.includes(shape)) problems.push(`${name} ${status}: not the ${shape} schema`);
      }
      if (status === '429') {
        for (const h of ['Retry-After', 'RateLimit', 'RateLimit-Policy']) {
          if (!r.headers?.[h]) problems.push(`${name} 429: no ${h} header`);
        }
        if (!deref(r.headers?.['Retry-After'] ?? {}).required) problems.push(`${name} 429: Retry-After not required`);
      }
      if (status === '503' && !deref(r.headers?.['Retry-After'] ?? {}).required) {
        problems.push(`${name} 503: no required Retry-After header (the server always sends one)`);
      }
    }
  }
  assert.deepEqual(problems, []);
});

// An answer of the MCP endpoint's own (not one of the shared HTTP-layer responses).
function isJsonRpc(p, raw) {
  return p === '/mcp' && !raw.$ref;
}

// The server's catalogue, from the page every error's `docs` link points to.
async function servedCatalogue() {
  const res = await api(srv.url, 'GET', '/docs/errors');
  assert.equal(res.status, 200);
  const codes = new Map();
  for (const m of res.text.matchAll(/<tr id="([a-z_]+)"><td><code>\1<\/code><\/td><td>(\d{3})<\/td>/g)) {
    codes.set(m[1], Number(m[2]));
  }
  assert.ok(codes.size >= 20, `could not read the catalogue from /docs/errors:\n${res.text.slice(0, 500)}`);
  return codes;
}

test('error codes: the ErrorCode enum is the served catalogue; every listed code has its status', async () => {
  const served = await servedCatalogue();
  const enumCodes = spec.components.schemas.ErrorCode.enum;
  assert.deepEqual([...enumCodes].sort(), [...served.keys()].sort(),
    'components.schemas.ErrorCode.enum must list exactly the codes of GET /docs/errors');
  const problems = [];
  const check = (where, status, raw) => {
    const r = deref(raw);
    const schema = r.content?.['application/json']?.schema;
    const codes = schema?.properties?.error?.enum ?? [];
    for (const c of codes) {
      if (!served.has(c)) problems.push(`${where}: unknown code ${c}`);
      // The one exception: /act and POST /actions/{selector}/run answer an app's own 4xx refusal
      // with that status (the caller's request was refused, which is not a bad gateway) and code
      // upstream_error.
      else if (c === 'upstream_error' && /^POST \/(act|actions\/\{selector\}\/run) /.test(where) &&
        /^4/.test(status)) continue;
      else if (String(served.get(c)) !== status) problems.push(`${where}: ${c} is HTTP ${served.get(c)}, listed under ${status}`);
    }
    if (Number(status) >= 400 && codes.length === 0) problems.push(`${where}: no code list`);
  };
  for (const { method, path: p, operation } of operations()) {
    for (const [status, raw] of Object.entries(operation.responses)) {
      if (isJsonRpc(p, raw)) continue;  // JSON-RPC codes, documented in JsonRpcError
      check(`${method.toUpperCase()} ${p} ${status}`, status, raw);
    }
  }
  assert.deepEqual(problems, []);
});

// ---- the spec against the running server ----------------------------------------------------

test('Idempotency-Key is declared exactly on the writes that honour it', async () => {
  const cookie = await signIn(srv.url, uniqueEmail('idem'));
  const agent = await registerAgent(srv.url);
  const tooLong = 'k'.repeat(256); // refused (400 invalid_field) by a route that honours the key
  const problems = [];
  for (const { method, path: p, operation } of operations()) {
    if (method === 'get' || method === 'head') continue;
    const concrete = p.replace(/\{[^}]+\}/g, 'x');
    const res = await api(srv.url, method.toUpperCase(), concrete, {
      cookie, bearer: agent.secret, body: {}, headers: { 'Idempotency-Key': tooLong },
    });
    const honours = res.status === 400 && res.json?.error === 'invalid_field' && /Idempotency-Key/.test(res.json.message);
    const declared = (operation.parameters ?? []).some((x) => deref(x).name === 'Idempotency-Key');
    if (honours !== declared) {
      problems.push(`${method.toUpperCase()} ${p}: the server ${honours ? 'honours' : 'ignores'} Idempotency-Key, ` +
        `the spec ${declared ? 'declares' : 'does not declare'} it`);
    }
    if (declared) {
      const ok = Object.entries(operation.responses).filter(([s]) => s.startsWith('2'));
      for (const [s, raw] of ok) {
        if (!deref(raw).headers?.['Idempotent-Replayed']) problems.push(`${method.toUpperCase()} ${p} ${s}: no Idempotent-Replayed`);
      }
      for (const s of ['409', '422']) {
        if (!operation.responses[s]) problems.push(`${method.toUpperCase()} ${p}: no ${s}`);
      }
    }
  }
  assert.deepEqual(problems, []);
});

test('every documented path lists exactly its methods (405 Allow, checked by the validator)', async () => {
  for (const p of Object.keys(spec.paths)) {
    const concrete = p.replace(/\{[^}]+\}/g, 'x');
    // A method no template matching the path documents (PUT, except on /actions/{selector});
    // api() validates the 405 and compares its Allow header with the documented methods of every
    // template the path matches.
    const documented = new Set(matchTemplate(concrete).flatMap((t) => Object.keys(spec.paths[t])));
    const probe = ['put', 'patch', 'delete', 'post'].find((m) => !documented.has(m));
    assert.ok(probe, `${p}: every probe method is documented`);
    const res = await api(srv.url, probe.toUpperCase(), concrete);
    assert.equal(res.status, 405, `${probe.toUpperCase()} ${concrete}: ${res.status} ${res.text}`);
  }
});

test('known endpoint paths of the design are documented (or not served), /mcp included', async () => {
  // Paths named in DESIGN.md. api() throws for a served path that the spec does not document.
  const candidates = ['/', '/.well-known/mcp.json', '/integrations', '/connections', '/actions', '/act',
    '/action-run-logs/x', '/action-run-logs/x/details', '/export', '/import', '/connect', '/oauth/callback',
    '/mcp', '/v1/activity', '/v1/tokens', '/v1/webhooks', '/v1/permission-requests'];
  for (const p of candidates) {
    for (const method of ['GET', 'POST']) await api(srv.url, method, p, method === 'POST' ? { body: {} } : {});
  }
  assert.deepEqual(notValidated(), [], 'every answer was validated against the spec');
});

test('abilities and webhook event types: the spec lists exactly the server\'s', async () => {
  const cookie = await signIn(srv.url, uniqueEmail('catalogues'));
  // The server names the valid values when it refuses an unknown one.
  const tok = await api(srv.url, 'POST', '/v1/tokens', { cookie, body: { name: 'x', abilities: ['zz:nope'] } });
  assert.equal(tok.status, 400, tok.text);
  const abilities = tok.json.message.match(/\(valid: (.+)\)$/)?.[1]?.split(', ');
  assert.ok(abilities, `no list of abilities in ${tok.json.message}`);
  assert.deepEqual(spec.components.schemas.Ability.enum, abilities,
    'components.schemas.Ability.enum must list the server\'s abilities, in its order');

  const hook = await api(srv.url, 'POST', '/v1/webhooks', { cookie, body: { url: 'https://example.com/', events: ['zz.nope'] } });
  assert.equal(hook.status, 400, hook.text);
  const types = hook.json.message.match(/; use (.+), or "\*" for all$/)?.[1]?.split(', ');
  assert.ok(types, `no list of event types in ${hook.json.message}`);
  assert.deepEqual(spec.components.schemas.WebhookSubscription.items.enum, [...types, '*']);
  assert.deepEqual(spec.components.schemas.WebhookEventType.enum, [...types, 'webhook.test']);
  assert.deepEqual(Object.keys(spec.webhooks).sort(), [...types, 'webhook.test'].sort(),
    'the spec\'s `webhooks` describe every event type, webhook.test included');
});

test('webhooks: every event a receiver gets matches its `webhooks` entry', async () => {
  const deliveries = [];
  const receiver = http.createServer((req, res) => {
    let body = '';
    req.setEncoding('utf8');
    req.on('data', (c) => { body += c; });
    req.on('end', () => {
      // /app is the connected app that /act calls; /hooks hears the webhooks.
      if (req.url.startsWith('/app')) {
        res.writeHead(200, { 'content-type': 'application/json' });
        res.end('{"ok":true}');
        return;
      }
      deliveries.push({ headers: req.headers, body });
      res.writeHead(204);
      res.end();
    });
  });
  await new Promise((resolve) => receiver.listen(0, '127.0.0.1', resolve));
  const s = await startServer({ args: ['--no-rate-limits', '--allow-private-egress', '--webhook-retry-base', '300ms', '--request-ttl', '2s'] });
  try {
    // The first person to sign in to a server without --admin-email is its admin, whose
    // endpoints hear every event.
    const cookie = await signIn(s.url, uniqueEmail('hooks'));
    const ep = await api(s.url, 'POST', '/v1/webhooks', {
      cookie, body: { url: `http://127.0.0.1:${receiver.address().port}/hooks`, events: ['*'] },
    });
    assert.equal(ep.status, 201, ep.text);
    // One of each event: agent.registered; permission.granted (twice), one of them then
    // permission.expired, the other permission.revoked; token.created, token.revoked; webhook.test.
    const agent = await registerAgent(s.url);
    const grant = (body) => api(s.url, 'POST', '/permission/grant', { cookie, body: { agent_id: agent.agent_id, ...body } });
    const expiring = await grant({ action: 'hooks_expiring', expires_in: '1s', scope: { max_spend: 5 }, metadata: { a: 1 } });
    assert.equal(expiring.status, 201, expiring.text);
    const revocable = await grant({ action: 'hooks_revoked' });
    const revoked = await api(s.url, 'POST', '/permission/revoke', { cookie, body: { permission_id: revocable.json.permission_id } });
    assert.equal(revoked.status, 200, revoked.text);
    const tok = await api(s.url, 'POST', '/v1/tokens', {
      cookie, body: { name: 'hooks', abilities: ['permission:check'], expires_in: 'never' },
    });
    assert.equal(tok.status, 201, tok.text);
    assert.equal((await api(s.url, 'DELETE', `/v1/tokens/${tok.json.id}`, { cookie })).status, 200);
    assert.equal((await api(s.url, 'POST', `/v1/webhooks/${ep.json.id}/test`, { cookie })).status, 202);
    // A connection's life: created and ready (tokens imported), disconnected (the token expires
    // and there is no refresh token), reconnected, archived, restored.
    const connector = await api(s.url, 'POST', '/connectors', { cookie, body: {
      key: 'hooks-oauth', name: 'Hooks OAuth', baseUrl: 'https://api.example.com',
      auth: { type: 'oauth2', authorizeUrl: 'https://auth.example.com/a', tokenUrl: 'https://auth.example.com/t' },
    } });
    assert.equal(connector.status, 201, connector.text);
    const conn = await api(s.url, 'POST', '/connections', { cookie, body: {
      connectorKey: 'hooks-oauth', credentials: { accessToken: 'at-1', expiresIn: '1' },
    } });
    assert.equal(conn.status, 201, conn.text);
    await new Promise((r) => setTimeout(r, 1100));
    const gone = await api(s.url, 'POST', '/act', { cookie, body: { connectionId: conn.json.id, api: { path: '/x' } } });
    assert.equal(gone.status, 409, gone.text);
    const back = await api(s.url, 'POST', '/connections', { cookie, body: {
      connectionId: conn.json.id, credentials: { accessToken: 'at-2' },
    } });
    assert.equal(back.status, 200, back.text);
    assert.equal((await api(s.url, 'DELETE', `/connections/${conn.json.id}`, { cookie })).status, 200);
    assert.equal((await api(s.url, 'POST', `/connections/${conn.json.id}/restore`, { cookie })).status, 200);
    // A run that succeeds (action_run.succeeded); the refused one above was action_run.failed.
    const app = await api(s.url, 'POST', '/connectors', { cookie, body: {
      key: 'hooks-app', name: 'Hooks app', baseUrl: `http://127.0.0.1:${receiver.address().port}/app`,
      auth: { type: 'api_key' },
    } });
    assert.equal(app.status, 201, app.text);
    const appConn = await api(s.url, 'POST', '/connections', { cookie, body: {
      connectorKey: 'hooks-app', connectionKey: 'hooks-app-1', credentials: { apiKey: 'k-hooks' },
    } });
    assert.equal(appConn.status, 201, appConn.text);
    const ran = await api(s.url, 'POST', '/act', { cookie, body: { connectionKey: 'hooks-app-1', api: { path: '/ping' } } });
    assert.equal(ran.status, 200, ran.text);
    // Permission requests to this person: created (three times), one approved, one declined, one
    // left to expire (--request-ttl 2s).
    const asking = await registerAgent(s.url);
    const me = (await api(s.url, 'GET', '/auth/session', { cookie })).json.email;
    const ask = async (action) => {
      const r = await api(s.url, 'POST', '/v1/permission-requests', {
        bearer: asking.secret, body: { agent_id: asking.agent_id, action, reason: 'for the hooks', email: me, scope: { max_n: 1 } },
      });
      assert.equal(r.status, 201, r.text);
      return r.json.request_id;
    };
    const approveMe = await ask('hooks_request_approved');
    const declineMe = await ask('hooks_request_declined');
    await ask('hooks_request_expired');
    assert.equal((await api(s.url, 'POST', `/v1/permission-requests/${approveMe}/approve`, { cookie, body: { expires_in: '1h' } })).status, 200);
    assert.equal((await api(s.url, 'POST', `/v1/permission-requests/${declineMe}/decline`, { cookie, body: { reason: 'no' } })).status, 200);
    const expected = Object.keys(spec.webhooks).sort();
    const seen = () => [...new Set(deliveries.map((d) => JSON.parse(d.body).type))].sort();
    await eventually(() => seen().length >= expected.length, { timeoutMs: 10000, intervalMs: 100 });
    assert.deepEqual(seen(), expected);
    const wh = new Webhook(ep.json.secret);
    for (const d of deliveries) {
      const outcome = validateWebhook(d.headers, d.body);
      assert.equal(outcome.validated, true);
      wh.verify(d.body, d.headers);  // the headers the spec describes are the signed ones
    }
  } finally {
    await s.stop();
    receiver.closeAllConnections?.();
    await new Promise((resolve) => receiver.close(resolve));
  }
});

test('GET /llms.txt: llmstxt.org format, and every link it gives resolves', async () => {
  const res = await api(srv.url, 'GET', '/llms.txt');
  assert.equal(res.status, 200);
  assert.match(res.headers.get('content-type'), /^text\/plain/);
  const text = res.text;
  const lines = text.split('\n');
  assert.match(lines[0], /^# \S/, 'starts with an H1 naming the project');
  const firstContent = lines.slice(1).find((l) => l.trim() !== '');
  assert.match(firstContent, /^> /, 'the H1 is followed by a blockquote summary');
  assert.ok(!/^#{3,} /m.test(text), 'only H1 and H2 headings');
  const h2 = [...text.matchAll(/^## (.+)$/gm)].map((m) => m[1]);
  assert.ok(h2.length >= 2, 'H2 sections of links');
  assert.equal(h2.at(-1), 'Optional', 'the "Optional" section comes last');
  // Within the H2 sections every non-empty line is one link item: "- [name](url): note".
  const sections = text.slice(text.indexOf('\n## ')).split(/^## .+$/m).slice(1);
  for (const [i, body] of sections.entries()) {
    for (const line of body.split('\n').filter((l) => l.trim() !== '')) {
      assert.match(line, /^- \[[^\]]+\]\([^)\s]+\)(: .+)?$/, `section "${h2[i]}": not a link item: ${line}`);
    }
  }
  // The conventions an agent needs are spelled out.
  for (const needle of ['Idempotency-Key', 'Retry-After', '429', '503', 'request_id', 'remediation', '/openapi.json']) {
    assert.ok(text.includes(needle), `llms.txt mentions ${needle}`);
  }
  // Every link is relative to the server root and answers 200 (api() validates the answer).
  const links = [...new Set([...text.matchAll(/\]\((\/[^)\s]*)\)/g)].map((m) => m[1]))];
  assert.ok(links.length >= 5);
  for (const link of links) {
    const r = await api(srv.url, 'GET', link.split('#')[0]);
    assert.equal(r.status, 200, `${link} answers ${r.status}`);
  }
});

// ---- the validator itself -------------------------------------------------------------------

test('validateResponse catches mismatches', () => {
  const json = 'application/json';
  const rid = { 'x-request-id': 'req_abcdefghijk' };
  const health = JSON.stringify({ status: 'ok', version: '0.1.0', timestamp: '2026-05-03T09:00:00Z' });
  assert.equal(validateResponse('GET', '/health', 200, json, health, rid).operation, 'GET /health');
  assert.equal(validateResponse('GET', '/agent/ap_0123456789abcdef?x=1', 401, json, JSON.stringify({
    error: 'unauthorized', message: 'm', docs: 'http://h/docs/errors#unauthorized', remediation: 'r', request_id: 'req_1',
  }), rid).operation, 'GET /agent/{agent_id}');
  assert.deepEqual(matchTemplate('/agent/register'), ['/agent/register', '/agent/{agent_id}']);

  const throwsLike = (fn, re) => assert.throws(fn, re);
  // Extra field, wrong type, missing field.
  throwsLike(() => validateResponse('GET', '/health', 200, json, JSON.stringify({ ...JSON.parse(health), extra: 1 }), rid),
    /additional properties/);
  throwsLike(() => validateResponse('GET', '/stats', 200, json, JSON.stringify({
    agents_registered: '1', permissions_granted: 0, checks_today: 0, checks_total: 0 }), rid), /must be integer/);
  throwsLike(() => validateResponse('GET', '/health', 200, json, '{"status":"ok"}', rid), /required property/);
  // Undocumented status, content type; an error code that does not belong to the status.
  throwsLike(() => validateResponse('GET', '/health', 418, json, '{}', rid), /status 418 is not documented/);
  throwsLike(() => validateResponse('GET', '/health', 200, 'text/html', '<p>', rid), /content type text\/html is not documented/);
  throwsLike(() => validateResponse('GET', '/v1/activity', 401, json, JSON.stringify({
    error: 'agent_not_found', message: 'm', docs: 'http://h/docs/errors#agent_not_found', remediation: 'r', request_id: 'req_1',
  }), rid), /allowed values/);
  // An open endpoint ignores a stale access token: it never answers 401.
  throwsLike(() => validateResponse('GET', '/health', 401, json, JSON.stringify({
    error: 'unauthorized', message: 'm', docs: 'http://h/docs/errors#unauthorized', remediation: 'r', request_id: 'req_1',
  }), rid), /status 401 is not documented/);
  // Headers: a required one missing, a declared one malformed, a tracked one undeclared.
  throwsLike(() => validateResponse('GET', '/health', 200, json, health, {}), /X-Request-Id is missing/);
  throwsLike(() => validateResponse('POST', '/agent/register', 429, json, JSON.stringify({
    error: 'rate_limited', message: 'm', docs: 'http://h/docs/errors#rate_limited', remediation: 'r', request_id: 'req_1',
  }), { ...rid, 'retry-after': 'soon' }), /Retry-After/);
  throwsLike(() => validateResponse('GET', '/health', 200, json, health, { ...rid, 'retry-after': '1' }), /does not declare/);
  // Unknown paths: 404 not_found is fine; anything else is an undocumented endpoint, /v1/ and
  // /mcp/ included.
  const notFound = JSON.stringify({
    error: 'not_found', message: 'No such path: /nope', docs: 'http://h/docs/errors#not_found', remediation: 'r', request_id: 'req_1',
  });
  assert.equal(validateResponse('GET', '/nope', 404, json, notFound, rid).validated, true);
  throwsLike(() => validateResponse('GET', '/zz-validator-self-test', 200, json, '[]', rid), /matches no path/);
  throwsLike(() => validateResponse('GET', '/v1/zz-validator-self-test', 200, json, '{}', rid), /matches no path/);
  assert.equal(validateResponse('GET', '/v1/zz-validator-self-test', 404, json, notFound, rid).validated, true);
  throwsLike(() => validateResponse('GET', '/mcp/zz-validator-self-test', 200, json, '{}', rid), /matches no path/);
  // /mcp itself is checked like the rest: a JSON-RPC answer must have its shape.
  throwsLike(() => validateResponse('POST', '/mcp', 400, json, JSON.stringify({ jsonrpc: '2.0' }), rid), /does not match/);
  // A documented /v1 path: its body is checked like any other.
  throwsLike(() => validateResponse('GET', '/v1/tokens', 200, json, JSON.stringify({ data: [{ id: 'tok_x' }] }), rid),
    /does not match/);
  // 405: the Allow header must match the documented methods.
  const notAllowed = JSON.stringify({
    error: 'method_not_allowed', message: 'm', docs: 'http://h/docs/errors#method_not_allowed', remediation: 'r', request_id: 'req_1',
  });
  assert.equal(validateResponse('PUT', '/health', 405, json, notAllowed, { ...rid, allow: 'GET, HEAD, OPTIONS' }).validated, true);
  throwsLike(() => validateResponse('PUT', '/health', 405, json, notAllowed, { ...rid, allow: 'GET, HEAD, POST, OPTIONS' }),
    /Allow lists/);
  throwsLike(() => validateResponse('DELETE', '/health', 200, json, '{}', rid), /no DELETE operation/);
  throwsLike(() => validateResponse('PUT', '/v1/webhooks/whe_0123456789abcdef', 200, json, '{}', rid),
    /no PUT operation/);
  // 503 without its Retry-After.
  throwsLike(() => validateResponse('GET', '/health', 503, json, JSON.stringify({
    error: 'unavailable', message: 'm', docs: 'http://h/docs/errors#unavailable', remediation: 'r', request_id: 'req_1',
  }), rid), /Retry-After is missing/);
  // OPTIONS preflight.
  assert.equal(validateResponse('OPTIONS', '/anything', 204, '', '', rid).validated, true);
});

test('validateWebhook catches mismatches', () => {
  const body = JSON.stringify({ type: 'webhook.test', timestamp: '2026-11-22T10:00:00Z',
    data: { webhook_id: 'whe_8c2d4e6f8a0b1c3d', message: 'This is a test event from agentgate.' } });
  const headers = {
    'content-type': 'application/json', 'webhook-id': 'msg_p5jxn7aqm2lwe4d4lokwxjekqa',
    'webhook-timestamp': '1764151200', 'webhook-signature': `v1,${'A'.repeat(43)}=`,
  };
  assert.equal(validateWebhook(headers, body).event, 'webhook.test');
  const throwsLike = (fn, re) => assert.throws(fn, re);
  throwsLike(() => validateWebhook(headers, body.replace('webhook.test', 'webhook.nope')), /no webhooks entry/);
  throwsLike(() => validateWebhook(headers, body.replace('"data":{', '"extra":1,"data":{')), /additional properties/);
  throwsLike(() => validateWebhook({ ...headers, 'webhook-id': 'msg_1' }, body), /webhook-id/);
  throwsLike(() => validateWebhook({ ...headers, 'webhook-signature': 'v2,abc' }, body), /webhook-signature/);
  const { 'webhook-timestamp': _, ...noTimestamp } = headers;
  throwsLike(() => validateWebhook(noTimestamp, body), /webhook-timestamp is missing/);
  throwsLike(() => validateWebhook({ ...headers, 'content-type': 'text/plain' }, body), /content type/);
});

// Checks agentgate's HTTP responses against docs/openapi.json (OpenAPI 3.1, JSON Schema 2020-12).
// lib/server.mjs runs every response the end-to-end tests get from agentgate through
// validateResponse(), so a field, status, header or content type the spec does not describe fails
// the test that saw it.
//
// validateResponse(method, pathAndQuery, status, contentType, body, headers?) → outcome
//     method: 'GET', 'POST', … (any case). pathAndQuery: '/agent/ap_…?x=y' (the query is ignored).
//     body: the response text (parsed when the content type is JSON) or an already parsed value.
//     headers: optional fetch Headers (or a plain object of lower-case names); when given, the
//     response headers are checked too: required ones present, declared ones well-formed, and
//     the headers whose presence is part of the contract (Retry-After, RateLimit,
//     RateLimit-Policy, Idempotent-Replayed, Set-Cookie, Location, Cache-Control) present only
//     where the spec declares them.
//     Finds the operation by matching the path against the spec's path templates (concrete
//     segments before `{param}` ones, as the server's router does), then the response for the
//     status (exact, then `4XX`-style range, then `default`), then the media type, and validates
//     a JSON body with Ajv. Throws an Error saying what does not match and where in the spec.
//     Returns { validated: boolean, operation: 'GET /agent/{agent_id}' | null, note }.
//
//     Answers the spec cannot attach to an operation are still checked:
//       - OPTIONS on any path: the CORS preflight, 204 with no body;
//       - HEAD: checked against the GET operation (status and headers; there is no body);
//       - a path that matches no template, answered 404 `not_found`: validated against the Error
//         schema (this is how deliberately bogus test paths are handled);
//       - a documented path with an undocumented method, answered 405 `method_not_allowed`:
//         validated against the Error schema, and its Allow header must list exactly the
//         methods the spec documents for that path (plus HEAD with GET, and OPTIONS).
//
//     Every endpoint is documented, /mcp included: an undocumented endpoint (path or method)
//     throws, so an endpoint must be in docs/openapi.json before its tests can pass.
//     (notValidated() stays for areas that may be served before they are documented; there are
//     none now.)
//
// validateWebhook(headers, body) → { validated: true, event: 'permission.granted', … }
//     Checks one delivery agentgate made to a webhook receiver against the spec's top-level
//     `webhooks` (OpenAPI 3.1): the event type (the body's `type`) must have an entry; its header
//     parameters (webhook-id, webhook-timestamp, webhook-signature) must be present when required
//     and match their schemas; the content type must be one it documents, and the JSON body must
//     match the request body schema. headers: as for validateResponse (Node's req.headers will
//     do). body: the raw text (or a parsed value). Throws an Error saying what does not match.
//
// notValidated() → [{ method, path, status, count }] recorded as above.
// forgetNotValidated(path) — drops the records of one path (for the validator's own tests).
// spec, SPEC_PATH — the parsed document and its path.
// operations() → [{ method: 'get', path: '/agent/{agent_id}', operation }] every documented one.
// matchTemplate(path) → the spec's path templates that match a concrete path, most concrete first.
// errorSchemaValidator() → Ajv validate function of components/schemas/Error.
// deref(value) → value with a local `$ref` (one level, repeated) resolved.
//
// Set AGENTGATE_E2E_NO_OPENAPI=1 to switch the automatic validation in lib/server.mjs off (for
// a post-mortem only; the suite must pass with it on).

import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import Ajv2020 from 'ajv/dist/2020.js';
import addFormats from 'ajv-formats';

const here = path.dirname(fileURLToPath(import.meta.url));

export const SPEC_PATH = path.resolve(here, '..', '..', '..', 'docs', 'openapi.json');

function loadSpec() {
  let text;
  try {
    text = readFileSync(SPEC_PATH, 'utf8');
  } catch (err) {
    throw new Error(`cannot read the OpenAPI document ${SPEC_PATH}: ${err.message}`);
  }
  try {
    return JSON.parse(text);
  } catch (err) {
    throw new Error(`${SPEC_PATH} is not valid JSON: ${err.message}`);
  }
}

export const spec = loadSpec();

const METHODS = ['get', 'put', 'post', 'delete', 'options', 'head', 'patch', 'trace'];

// Paths for endpoints that may exist before they are documented (see the header comment):
// none now; MCP, the last such area, is documented and validated like the rest.
function isNotYetDocumentedArea(p) {
  void p;
  return false;
}

// Headers whose presence is itself part of the contract: they must be declared on a response to
// appear on it. (X-Request-Id is declared everywhere; CORS and framing headers are not tracked.)
const TRACKED_HEADERS = ['retry-after', 'ratelimit', 'ratelimit-policy', 'idempotent-replayed',
  'set-cookie', 'location', 'cache-control'];

// ---- references -----------------------------------------------------------------------------

function pointerGet(pointer) {
  if (!pointer.startsWith('#/')) throw new Error(`only local references are supported: ${pointer}`);
  let node = spec;
  for (const raw of pointer.slice(2).split('/')) {
    const key = decodeURIComponent(raw).replace(/~1/g, '/').replace(/~0/g, '~');
    if (node === null || typeof node !== 'object' || !(key in node)) {
      throw new Error(`unresolvable reference ${pointer} in ${SPEC_PATH}`);
    }
    node = node[key];
  }
  return node;
}

export function deref(value) {
  let v = value;
  for (let i = 0; v && typeof v === 'object' && typeof v.$ref === 'string'; i++) {
    if (i > 20) throw new Error(`reference loop at ${value.$ref}`);
    v = pointerGet(v.$ref);
  }
  return v;
}

// ---- schemas --------------------------------------------------------------------------------

const REGISTRY_ID = 'agentgate:openapi.json';

// Points `#/components/schemas/X` references into the registry schema below.
function rewriteRefs(node) {
  if (Array.isArray(node)) return node.map(rewriteRefs);
  if (node === null || typeof node !== 'object') return node;
  const out = {};
  for (const [k, v] of Object.entries(node)) {
    if (k === '$ref' && typeof v === 'string' && v.startsWith('#/components/schemas/')) {
      out[k] = `${REGISTRY_ID}#/$defs/${v.slice('#/components/schemas/'.length)}`;
    } else {
      out[k] = rewriteRefs(v);
    }
  }
  return out;
}

// strict: unknown keywords or formats in the spec are errors, so a schema the validator cannot
// understand fails loudly instead of passing everything. allowUnionTypes: 3.1 writes nullable
// fields as ["string", "null"].
const ajv = new Ajv2020({ strict: true, allowUnionTypes: true, allErrors: true });
addFormats(ajv);
ajv.addSchema({ $id: REGISTRY_ID, $defs: rewriteRefs(spec.components?.schemas ?? {}) });

const validators = new Map(); // cache key -> Ajv validate function

function validatorFor(key, schema) {
  let v = validators.get(key);
  if (!v) {
    try {
      v = ajv.compile(rewriteRefs(schema));
    } catch (err) {
      throw new Error(`OpenAPI: cannot compile the schema at ${key}: ${err.message}`);
    }
    validators.set(key, v);
  }
  return v;
}

export function errorSchemaValidator() {
  return validatorFor('#/components/schemas/Error', { $ref: '#/components/schemas/Error' });
}

function describeErrors(errors) {
  return (errors ?? []).slice(0, 8).map((e) => {
    const where = e.instancePath || '(root)';
    const extra = e.params && Object.keys(e.params).length ? ` ${JSON.stringify(e.params)}` : '';
    return `${where} ${e.message}${extra}`;
  }).join('; ');
}

// ---- paths ----------------------------------------------------------------------------------

const templates = Object.keys(spec.paths ?? {}).map((template) => {
  const segments = template.split('/');
  return {
    template,
    segments,
    literals: segments.filter((s) => !/^\{[^}]+\}$/.test(s)).length,
  };
});

export function matchTemplate(concretePath) {
  const segs = concretePath.split('/');
  return templates
    .filter((t) => t.segments.length === segs.length && t.segments.every((s, i) => (
      /^\{[^}]+\}$/.test(s) ? segs[i].length > 0 : s === segs[i])))
    .sort((a, b) => b.literals - a.literals)
    .map((t) => t.template);
}

export function operations() {
  const out = [];
  for (const [p, item] of Object.entries(spec.paths ?? {})) {
    for (const m of METHODS) {
      if (item[m]) out.push({ method: m, path: p, operation: item[m] });
    }
  }
  return out;
}

// ---- not validated --------------------------------------------------------------------------

const skipped = new Map(); // 'METHOD path status' -> entry

export function notValidated() {
  return [...skipped.values()];
}

export function forgetNotValidated(p) {
  for (const [k, e] of skipped) if (e.path === p) skipped.delete(k);
}

process.on('exit', () => {
  if (skipped.size === 0) return;
  const lines = [...skipped.values()].map((e) => `  ${e.method} ${e.path} -> ${e.status} (x${e.count})`);
  process.stderr.write(
    `# OpenAPI: ${skipped.size} response kind(s) from endpoints not in docs/openapi.json were NOT validated ` +
    `(under /mcp; document them):\n${lines.join('\n')}\n`);
});

// ---- the check ------------------------------------------------------------------------------

function headerGetter(headers) {
  if (!headers) return null;
  if (typeof headers.get === 'function') return (name) => headers.get(name);
  const lower = Object.fromEntries(Object.entries(headers).map(([k, v]) => [k.toLowerCase(), v]));
  return (name) => {
    const v = lower[name.toLowerCase()];
    if (v === undefined || v === null) return null;
    return Array.isArray(v) ? v.join(', ') : String(v);
  };
}

function mediaTypeOf(contentType) {
  return (contentType ?? '').split(';')[0].trim().toLowerCase();
}

function isJsonMedia(mt) {
  return mt === 'application/json' || mt.endsWith('+json');
}

function parseBody(body, what) {
  if (typeof body !== 'string' && !Buffer.isBuffer(body)) return body;
  const text = body.toString();
  try {
    return JSON.parse(text);
  } catch (err) {
    throw new Error(`OpenAPI: ${what}: the body is declared JSON but does not parse (${err.message}): ` +
      `${text.slice(0, 300)}`);
  }
}

function isEmptyBody(body) {
  return body === undefined || body === null || body === '' || (Buffer.isBuffer(body) && body.length === 0);
}

// Validates an error body that no operation documents (unknown path, unknown method).
function checkBareError(what, status, contentType, body, expectedCode) {
  const mt = mediaTypeOf(contentType);
  if (!isJsonMedia(mt)) throw new Error(`OpenAPI: ${what}: expected a JSON error body, got ${contentType || 'no content type'}`);
  const json = parseBody(body, what);
  const validate = errorSchemaValidator();
  if (!validate(json)) {
    throw new Error(`OpenAPI: ${what}: the error body does not match #/components/schemas/Error: ` +
      `${describeErrors(validate.errors)}\n  body: ${JSON.stringify(json).slice(0, 500)}`);
  }
  if (json.error !== expectedCode) {
    throw new Error(`OpenAPI: ${what}: expected error ${expectedCode}, got ${json.error}`);
  }
}

function coerceHeader(value, schema) {
  const s = deref(schema) ?? {};
  const types = Array.isArray(s.type) ? s.type : [s.type];
  if ((types.includes('integer') || types.includes('number')) && /^-?\d+(\.\d+)?$/.test(value)) return Number(value);
  return value;
}

function checkHeaders(what, key, response, get) {
  const declared = new Map();
  for (const [name, h] of Object.entries(response.headers ?? {})) declared.set(name.toLowerCase(), { name, header: deref(h) });
  for (const [lname, { name, header }] of declared) {
    const value = get(lname);
    if (value === null || value === undefined) {
      if (header.required) throw new Error(`OpenAPI: ${what}: required response header ${name} is missing`);
      continue;
    }
    if (header.schema) {
      const validate = validatorFor(`${key} header ${name}`, header.schema);
      const v = coerceHeader(value, header.schema);
      if (!validate(v)) {
        throw new Error(`OpenAPI: ${what}: header ${name}: ${JSON.stringify(value)} does not match its schema ` +
          `(${key} headers.${name}): ${describeErrors(validate.errors)}`);
      }
    }
  }
  for (const lname of TRACKED_HEADERS) {
    if (!declared.has(lname) && get(lname) !== null && get(lname) !== undefined) {
      throw new Error(`OpenAPI: ${what}: the response carries ${lname}: ${JSON.stringify(get(lname))}, ` +
        `which ${key} does not declare`);
    }
  }
}

function record(method, concretePath, status) {
  // Ids such as whe_23bc7e19… or tok_… become {id}, so one endpoint is one line of the report.
  const p = concretePath.split('/').map((s) => (/^[a-z]+_[0-9A-Za-z_-]{6,}$/.test(s) ? '{id}' : s)).join('/');
  const k = `${method} ${p} ${status}`;
  const e = skipped.get(k) ?? { method, path: p, status, count: 0 };
  e.count += 1;
  skipped.set(k, e);
}

export function validateResponse(method, pathAndQuery, status, contentType, body, headers) {
  const M = String(method).toUpperCase();
  const p = String(pathAndQuery).split(/[?#]/)[0];
  const what = `${M} ${p} answered ${status}`;
  const get = headerGetter(headers);

  if (M === 'OPTIONS') {
    if (status !== 204) throw new Error(`OpenAPI: ${what}: a preflight OPTIONS is answered 204 on every path`);
    return { validated: true, operation: null, note: 'CORS preflight' };
  }

  const matches = matchTemplate(p);
  const lookup = M === 'HEAD' ? 'get' : M.toLowerCase();

  const notFoundAnswer = () => {
    if (status !== 404 || !isJsonMedia(mediaTypeOf(contentType))) return false;
    if (M === 'HEAD') return true;
    try { return parseBody(body, what)?.error === 'not_found'; } catch { return false; }
  };

  if (matches.length === 0) {
    if (notFoundAnswer()) {
      if (M !== 'HEAD') checkBareError(`${what} (no such path)`, status, contentType, body, 'not_found');
      return { validated: true, operation: null, note: 'unknown path' };
    }
    if (isNotYetDocumentedArea(p)) {
      record(M, p, status);
      return { validated: false, operation: null, note: 'not documented yet (/mcp)' };
    }
    throw new Error(`OpenAPI: ${what}, but ${p} matches no path of docs/openapi.json: document the endpoint ` +
      `(only 404 not_found is expected for a path that is not there)`);
  }

  const template = matches.find((t) => spec.paths[t][lookup]);
  if (!template) {
    const allowed = new Set(['OPTIONS']);
    for (const t of matches) {
      for (const m of METHODS) {
        if (spec.paths[t][m]) {
          allowed.add(m.toUpperCase());
          if (m === 'get') allowed.add('HEAD');
        }
      }
    }
    if (status === 405) {
      if (M !== 'HEAD') checkBareError(what, status, contentType, body, 'method_not_allowed');
      if (get) {
        const allow = new Set((get('allow') ?? '').split(',').map((s) => s.trim().toUpperCase()).filter(Boolean));
        const a = [...allow].sort().join(', ');
        const b = [...allowed].sort().join(', ');
        if (a !== b) {
          throw new Error(`OpenAPI: ${what}: Allow lists ${a || '(nothing)'}, but docs/openapi.json documents ` +
            `${b} for ${matches.join(' / ')}: document the missing operations`);
        }
      }
      return { validated: true, operation: null, note: 'method not allowed' };
    }
    if (isNotYetDocumentedArea(p)) {
      record(M, p, status);
      return { validated: false, operation: null, note: 'not documented yet (/mcp)' };
    }
    throw new Error(`OpenAPI: ${what}, but docs/openapi.json has no ${M} operation for ${matches.join(' / ')} ` +
      `(it documents ${[...allowed].join(', ')}): document the operation`);
  }

  const opName = `${lookup.toUpperCase()} ${template}`;
  const op = spec.paths[template][lookup];
  const responses = op.responses ?? {};
  const code = String(status);
  const statusKey = [code, `${code[0]}XX`, 'default'].find((k) => k in responses);
  if (!statusKey) {
    throw new Error(`OpenAPI: ${what}: status ${status} is not documented for ${opName} ` +
      `(documented: ${Object.keys(responses).join(', ')})`);
  }
  const key = `#/paths/${template.replace(/~/g, '~0').replace(/\//g, '~1')}/${lookup}/responses/${statusKey}`;
  const response = deref(responses[statusKey]);
  if (get) checkHeaders(what, key, response, get);

  if (M === 'HEAD' || status === 204 || status === 304) return { validated: true, operation: opName, note: 'no body' };

  const content = response.content ?? {};
  if (Object.keys(content).length === 0) {
    if (!isEmptyBody(body)) throw new Error(`OpenAPI: ${what}: ${key} declares no body, but one was sent`);
    return { validated: true, operation: opName, note: 'no body' };
  }
  const mt = mediaTypeOf(contentType);
  const mediaKey = Object.keys(content).find((k) => k.toLowerCase() === mt)
    ?? Object.keys(content).find((k) => k === `${mt.split('/')[0]}/*`)
    ?? Object.keys(content).find((k) => k === '*/*');
  if (!mediaKey) {
    throw new Error(`OpenAPI: ${what}: content type ${contentType || '(none)'} is not documented at ${key} ` +
      `(documented: ${Object.keys(content).join(', ')})`);
  }
  const media = deref(content[mediaKey]);
  if (!isJsonMedia(mt)) {
    // HTML and plain text pages: the content type is checked, the body is not.
    return { validated: true, operation: opName, note: `${mt} body not validated` };
  }
  const json = parseBody(body, what);
  if (!media.schema) return { validated: true, operation: opName, note: 'no schema' };
  const validate = validatorFor(`${key} ${mediaKey}`, media.schema);
  if (!validate(json)) {
    throw new Error(`OpenAPI: ${what}: the body does not match ${key} content ${mediaKey}: ` +
      `${describeErrors(validate.errors)}\n  body: ${JSON.stringify(json).slice(0, 800)}`);
  }
  return { validated: true, operation: opName, note: null };
}

// ---- webhooks (what receivers get) ----------------------------------------------------------

export function validateWebhook(headers, body) {
  const get = headerGetter(headers) ?? (() => null);
  const json = parseBody(body, 'a webhook delivery');
  const type = json?.type;
  const what = `a ${type ?? '(typeless)'} webhook delivery`;
  const item = typeof type === 'string' ? spec.webhooks?.[type] : undefined;
  if (!item?.post) {
    throw new Error(`OpenAPI: ${what}, but docs/openapi.json has no webhooks entry for it ` +
      `(documented: ${Object.keys(spec.webhooks ?? {}).join(', ') || 'none'})`);
  }
  const key = `#/webhooks/${type.replace(/~/g, '~0').replace(/\//g, '~1')}/post`;
  const op = item.post;
  for (const raw of op.parameters ?? []) {
    const p = deref(raw);
    if (p.in !== 'header') continue;
    const value = get(p.name);
    if (value === null || value === undefined) {
      if (p.required) throw new Error(`OpenAPI: ${what}: required header ${p.name} is missing`);
      continue;
    }
    if (p.schema) {
      const validate = validatorFor(`${key} header ${p.name}`, p.schema);
      if (!validate(coerceHeader(value, p.schema))) {
        throw new Error(`OpenAPI: ${what}: header ${p.name}: ${JSON.stringify(value)} does not match its schema ` +
          `(${key} parameters): ${describeErrors(validate.errors)}`);
      }
    }
  }
  const content = deref(op.requestBody)?.content ?? {};
  const mt = mediaTypeOf(get('content-type'));
  const mediaKey = Object.keys(content).find((k) => k.toLowerCase() === mt);
  if (!mediaKey) {
    throw new Error(`OpenAPI: ${what}: content type ${get('content-type') || '(none)'} is not documented at ` +
      `${key} requestBody (documented: ${Object.keys(content).join(', ')})`);
  }
  const schema = deref(content[mediaKey]).schema;
  if (schema) {
    const validate = validatorFor(`${key} requestBody ${mediaKey}`, schema);
    if (!validate(json)) {
      throw new Error(`OpenAPI: ${what}: the body does not match ${key} requestBody ${mediaKey}: ` +
        `${describeErrors(validate.errors)}\n  body: ${JSON.stringify(json).slice(0, 800)}`);
    }
  }
  return { validated: true, event: type, operation: op.operationId ?? null };
}

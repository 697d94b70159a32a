/*
 * agentgate dashboard: plain ES2020, no framework, no build step, no third-party code.
 *
 * Every call is a same-origin fetch carrying the HttpOnly ap_session cookie; the server refuses
 * cookie-authenticated writes from other sites (Origin / Sec-Fetch-Site), so nothing here handles
 * CSRF tokens. All data reaches the page through textContent and attributes (h() below), never
 * innerHTML, so nothing the API returns can become markup or script. Pages are hash routes
 * (#agents, #grants, …); each renders into <main> and registers its timers for teardown.
 */
'use strict';
(() => {
  // --- small DOM helpers ------------------------------------------------------------------------

  const $ = (selector, root = document) => root.querySelector(selector);
  let idSeq = 0;
  const uid = (prefix) => `${prefix}-${++idSeq}`;
  const PROPS = new Set(['checked', 'disabled', 'hidden', 'required', 'selected', 'multiple', 'readOnly']);

  // h('button', {type: 'button', onclick: fn}, 'Text', child, [more]) — text children become
  // text nodes; null, undefined and false children and attributes are dropped.
  function h(tag, attrs, ...children) {
    const el = document.createElement(tag);
    let value;
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v === undefined || v === null || v === false) continue;
      if (k === 'class') el.className = v;
      else if (k === 'value') value = v;
      else if (k.startsWith('on') && typeof v === 'function') el.addEventListener(k.slice(2), v);
      else if (PROPS.has(k)) el[k] = Boolean(v);
      else el.setAttribute(k, v === true ? '' : String(v));
    }
    append(el, children);
    if (value !== undefined) el.value = value;
    return el;
  }

  function append(el, children) {
    for (const c of children.flat(Infinity)) {
      if (c === null || c === undefined || c === false) continue;
      el.append(c instanceof Node ? c : document.createTextNode(String(c)));
    }
    return el;
  }

  // A labelled control: <div class=field><label for=id>…</label>control<span hint></div>.
  function field(label, control, hint) {
    if (!control.id) control.id = uid('f');
    let hintEl = null;
    if (hint) {
      hintEl = h('span', { class: 'hint', id: `${control.id}-hint` }, hint);
      control.setAttribute('aria-describedby', hintEl.id);
    }
    return h('div', { class: 'field' }, h('label', { for: control.id }, label), control, hintEl);
  }

  function select(name, options, value) {
    return h('select', { name, value }, options.map(([v, text]) => h('option', { value: v }, text)));
  }

  function checkbox(label, attrs, hint) {
    const input = h('input', Object.assign({ type: 'checkbox', id: uid('c') }, attrs));
    return h('label', { class: 'check', for: input.id }, input,
      h('span', null, label, hint ? h('span', { class: 'hint' }, hint) : null));
  }

  function button(text, onclick, cls = '', attrs = {}) {
    return h('button', Object.assign({ type: 'button', class: cls || null, onclick }, attrs), text);
  }

  function uuid() {
    const b = crypto.getRandomValues(new Uint8Array(16));
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    const x = Array.from(b, (n) => n.toString(16).padStart(2, '0')).join('');
    return `${x.slice(0, 8)}-${x.slice(8, 12)}-${x.slice(12, 16)}-${x.slice(16, 20)}-${x.slice(20)}`;
  }

  // --- formatting -------------------------------------------------------------------------------

  function when(iso, withSeconds = false) {
    if (!iso) return '—';
    const d = new Date(iso);
    if (Number.isNaN(d.getTime())) return String(iso);
    const text = d.toLocaleString(undefined, { dateStyle: 'medium', timeStyle: withSeconds ? 'medium' : 'short' });
    return h('time', { datetime: iso, title: iso }, text);
  }

  function ago(iso) {
    if (!iso) return 'never';
    const s = Math.round((Date.now() - new Date(iso).getTime()) / 1000);
    if (!Number.isFinite(s)) return String(iso);
    let text;
    if (s < 60) text = 'just now';
    else if (s < 3600) text = `${Math.floor(s / 60)} min ago`;
    else if (s < 86400) text = `${Math.floor(s / 3600)} h ago`;
    else text = `${Math.floor(s / 86400)} d ago`;
    return h('time', { datetime: iso, title: new Date(iso).toLocaleString() }, text);
  }

  function seconds(n) {
    const s = Number(n);
    if (!Number.isFinite(s)) return String(n);
    if (s < 90) return `${s} seconds`;
    return `${Math.ceil(s / 60)} minutes`;
  }

  const STATUS_TONE = {
    active: 'ok', success: 'ok', READY: 'ok', approved: 'ok', delivered: 'ok', enabled: 'ok', allowed: 'ok',
    pending: 'warn', CLIENT_ACTION_REQUIRED: 'warn', BUILDING: 'warn',
    revoked: 'bad', error: 'bad', denied: 'bad', declined: 'bad', failed: 'bad', DISCONNECTED: 'bad',
    SETUP_FAILED: 'bad', CONFIGURATION_ERROR: 'bad', disabled: 'bad', archived: 'neutral',
  };
  const badge = (text) => h('span', { class: `badge ${STATUS_TONE[text] || 'neutral'}` }, String(text).replace(/_/g, ' '));

  // One line per scope key, in words.
  function scopeLines(scope) {
    if (!scope || typeof scope !== 'object' || Object.keys(scope).length === 0) return [];
    return Object.entries(scope).map(([k, v]) => {
      if (k.startsWith('max_') && typeof v === 'number') return `${k.slice(4)} at most ${v}`;
      if (k.startsWith('allowed_') && Array.isArray(v)) return `${k.slice(8)} one of ${v.map(String).join(', ')}`;
      if (k.startsWith('budget_') && v && typeof v === 'object') return `${k.slice(7)}: ${v.limit} per ${v.period}`;
      return `${k} = ${JSON.stringify(v)}`;
    });
  }
  const scopeText = (scope) => scopeLines(scope).join('; ') || 'no limits';
  const code = (text) => h('code', null, text);
  const pre = (value) => h('pre', null, typeof value === 'string' ? value : JSON.stringify(value, null, 2));

  // --- the API ----------------------------------------------------------------------------------

  class ApiError extends Error {
    constructor(status, body, headers) {
      super((body && body.message) || `Request failed (HTTP ${status})`);
      this.status = status;
      this.code = body && body.error;
      this.remediation = body && body.remediation;
      this.requestId = body && body.request_id;
      this.retryAfter = headers ? headers.get('Retry-After') : null;
    }
  }

  async function api(method, path, body) {
    const headers = { Accept: 'application/json' };
    const init = { method, headers, credentials: 'same-origin', cache: 'no-store' };
    if (body !== undefined) {
      headers['Content-Type'] = 'application/json';
      init.body = JSON.stringify(body);
    }
    // A write retried by the browser or the person is applied once.
    if (method !== 'GET') headers['Idempotency-Key'] = uuid();
    let res;
    try {
      res = await fetch(path, init);
    } catch (e) {
      throw new ApiError(0, {
        error: 'network_error', message: 'Could not reach agentgate.',
        remediation: 'Check that the server is running and that you are online, then try again.',
      });
    }
    const text = await res.text();
    let json = null;
    try { json = text ? JSON.parse(text) : null; } catch (e) { json = null; }
    if (!res.ok) {
      const err = new ApiError(res.status, json || { message: text.slice(0, 300) || res.statusText }, res.headers);
      if (res.status === 401 && state.user && path !== '/auth/logout') signedOut('Your session has ended. Sign in again.');
      throw err;
    }
    return json;
  }

  const query = (params) => {
    const q = new URLSearchParams();
    for (const [k, v] of Object.entries(params)) if (v !== undefined && v !== null && v !== '') q.set(k, v);
    const s = q.toString();
    return s ? `?${s}` : '';
  };

  // An API error as the person should see it: what failed, why, what to do, the request id.
  function errorBox(err, what) {
    const box = h('div', { class: 'alert error', role: 'alert' });
    box.append(h('p', null, what ? h('strong', null, `${what}: `) : null, err.message || String(err)));
    if (err.status === 429) {
      box.append(h('p', null, err.retryAfter ? `Too many attempts. Try again in ${seconds(err.retryAfter)}.`
        : 'Too many attempts. Wait a while and try again.'));
    }
    if (err.remediation) box.append(h('p', null, err.remediation));
    const ids = [err.code && `Error ${err.code}`, err.requestId && `request ${err.requestId}`].filter(Boolean);
    if (ids.length) box.append(h('p', { class: 'small' }, ids.join(' · ')));
    return box;
  }

  let toastTimer = 0;
  function announce(message) {
    const el = $('#status');
    el.textContent = message;
    clearTimeout(toastTimer);
    toastTimer = setTimeout(() => { el.textContent = ''; }, 6000);
  }

  // Fills `container` with what `build` returns, showing loading and error states.
  async function load(container, build) {
    container.setAttribute('aria-busy', 'true');
    container.replaceChildren(h('p', { class: 'loading' }, 'Loading…'));
    try {
      const nodes = await build();
      container.replaceChildren();
      append(container, [nodes]);
    } catch (e) {
      container.replaceChildren(errorBox(e, 'Could not load this'),
        button('Try again', () => load(container, build), 'secondary'));
    } finally {
      container.removeAttribute('aria-busy');
    }
  }

  // columns: [{label, cell(row) → node|string}]; rowAttrs(row) → attributes of the <tr>.
  function table(caption, columns, rows, rowAttrs = () => ({})) {
    return h('table', { class: 'table' },
      h('caption', { class: 'sr-only' }, caption),
      h('thead', null, h('tr', null, columns.map((c) => h('th', { scope: 'col' }, c.label)))),
      h('tbody', null, rows.map((r) => h('tr', rowAttrs(r),
        columns.map((c) => h('td', { 'data-label': c.label }, c.cell(r)))))));
  }

  const empty = (...text) => h('p', { class: 'empty' }, ...text);

  // An inline "are you sure" in place of a button, so no modal dialog is needed.
  function confirmInline(host, question, confirmText, onConfirm) {
    const original = Array.from(host.childNodes);
    const restore = () => { host.replaceChildren(...original); original[0] && original[0].focus && original[0].focus(); };
    const yes = button(confirmText, async () => {
      yes.disabled = true;
      try { await onConfirm(); } catch (e) { host.replaceChildren(errorBox(e), button('Back', restore, 'secondary small')); }
    }, 'danger small');
    host.replaceChildren(h('div', { class: 'actions', role: 'group', 'aria-label': question },
      h('span', null, question), yes, button('Cancel', restore, 'secondary small')));
    yes.focus();
  }

  function pageHeader(title, lead) {
    return [h('h1', { tabindex: '-1' }, title), lead ? h('p', { class: 'lead' }, lead) : null].filter(Boolean);
  }

  // A one-time secret with a copy button.
  function secretBox(label, value, note) {
    const input = h('input', { type: 'text', readonly: true, value, class: 'mono', 'data-secret': '' });
    input.readOnly = true;
    const copy = button('Copy', async () => {
      try {
        if (navigator.clipboard && window.isSecureContext) await navigator.clipboard.writeText(value);
        else { input.select(); document.execCommand('copy'); }
        announce('Copied to the clipboard.');
      } catch (e) {
        input.select();
        announce('Select the text and copy it yourself (Ctrl+C).');
      }
    }, 'secondary small');
    return h('div', { class: 'alert ok', role: 'alert' },
      h('p', null, h('strong', null, note)),
      field(label, input), h('div', { class: 'secret' }, copy));
  }

  // --- session and routing ----------------------------------------------------------------------

  const state = { user: null, page: null, teardown: [], prefillAgent: '' };

  const PAGES = {
    agents: ['Agents', renderAgents],
    grants: ['Grants', renderGrants],
    requests: ['Requests', renderRequests],
    activity: ['Activity', renderActivity],
    connections: ['Connections', renderConnections],
    runs: ['Runs', renderRuns],
    webhooks: ['Webhooks', renderWebhooks],
    tokens: ['Tokens', renderTokens],
  };

  function teardown() {
    for (const fn of state.teardown.splice(0)) {
      try { fn(); } catch (e) { /* already gone */ }
    }
  }

  function route(moveFocus) {
    if (!state.user) return;
    const name = location.hash.slice(1);
    if (name && !PAGES[name]) return; // the skip link's #main, say
    const page = name || 'agents';
    teardown();
    state.page = page;
    for (const a of document.querySelectorAll('#nav a')) {
      if (a.dataset.page === page) a.setAttribute('aria-current', 'page');
      else a.removeAttribute('aria-current');
    }
    const main = $('#main');
    main.replaceChildren();
    document.title = `${PAGES[page][0]} — agentgate`;
    PAGES[page][1](main);
    if (moveFocus) {
      const h1 = main.querySelector('h1');
      if (h1) h1.focus();
    }
  }

  function showChrome(signedIn) {
    $('#nav').hidden = !signedIn;
    $('#account').hidden = !signedIn;
    $('#account-email').textContent = signedIn ? state.user.email : '';
  }

  function signedOut(message) {
    teardown();
    state.user = null;
    showChrome(false);
    renderSignIn(message);
  }

  async function signOut() {
    try { await api('POST', '/auth/logout'); } catch (e) { /* signed out either way */ }
    signedOut('You are signed out.');
    history.replaceState(null, '', '/dashboard');
  }

  async function boot() {
    $('#sign-out').addEventListener('click', signOut);
    window.addEventListener('hashchange', () => route(true));
    try {
      state.user = await api('GET', '/auth/session');
    } catch (e) {
      if (e.status !== 401) {
        $('#main').replaceChildren(...pageHeader('agentgate'), errorBox(e, 'Could not reach the server'),
          button('Try again', () => location.reload(), 'secondary'));
        return;
      }
    }
    // /auth/verify sends a browser here when its link was used, expired or cut short.
    const failed = /^#signin-failed=([a-z_]+)$/.exec(location.hash);
    if (failed) history.replaceState(null, '', location.pathname + location.search);
    if (!state.user) {
      renderSignIn(failed ? (failed[1] === 'invalid_token'
        ? 'That sign-in link has expired or was already used (each link works once, for 15 minutes). Ask for a new one below.'
        : 'That sign-in link is incomplete: copy the whole link from the email, or ask for a new one below.') : undefined);
      return;
    }
    showChrome(true);
    route(false);
  }

  // --- sign in ----------------------------------------------------------------------------------

  function renderSignIn(message) {
    document.title = 'Sign in — agentgate';
    const main = $('#main');
    const email = h('input', { type: 'email', name: 'email', autocomplete: 'email', required: true,
      placeholder: 'you@example.com' });
    const errors = h('div');
    const submit = h('button', { type: 'submit' }, 'Email me a sign-in link');
    const form = h('form', { class: 'card narrow', id: 'sign-in', novalidate: true },
      ...pageHeader('Sign in to agentgate', 'We email you a link that signs you in; no password needed.'),
      message ? h('div', { class: 'alert info', role: 'status' }, message) : null,
      field('Email address', email), errors, submit);
    form.addEventListener('submit', async (event) => {
      event.preventDefault();
      errors.replaceChildren();
      const address = email.value.trim();
      if (!address || !email.checkValidity()) {
        errors.replaceChildren(errorBox({ message: 'Enter a valid email address, like you@example.com.' }));
        email.focus();
        return;
      }
      submit.disabled = true;
      submit.textContent = 'Sending…';
      try {
        await api('POST', '/auth/magic-link', { email: address });
        const again = button('Use a different address', () => renderSignIn(), 'link');
        const sent = h('section', { class: 'card narrow', id: 'check-email', 'aria-labelledby': 'check-title' },
          h('h1', { id: 'check-title', tabindex: '-1' }, 'Check your email'),
          h('p', null, 'We sent a sign-in link to ', h('strong', null, address),
            '. Open it in this browser within 15 minutes. It works once.'),
          h('p', { class: 'muted' }, 'No mail? Look in your spam folder, or ask your administrator: without a mail server, '
            + 'agentgate writes the link to its log.'),
          again);
        main.replaceChildren(sent);
        $('#check-title').focus();
        announce('Sign-in link sent. Check your email.');
      } catch (e) {
        errors.replaceChildren(errorBox(e, 'Could not send the link'));
        submit.disabled = false;
        submit.textContent = 'Email me a sign-in link';
      }
    });
    main.replaceChildren(form);
    email.focus();
  }

  // --- agents -----------------------------------------------------------------------------------

  async function fetchAgents(relation) {
    const out = await api('GET', `/v1/agents${query({ relation, limit: 100 })}`);
    return out.data || [];
  }

  function renderAgents(main) {
    const relation = select('relation', [['', 'Owned and granted'], ['owned', 'Owned by me'], ['granted', 'Granted by me']], '');
    const list = h('div');
    main.append(...pageHeader('Agents', 'Agents registered with your address, and agents you have granted something to.'),
      h('div', { class: 'toolbar' }, h('div', { class: 'inline' }, field('Show', relation))), list);
    let cursor = null;
    let rows = [];
    // more: append the page after `cursor` to what is shown; otherwise start from the newest.
    const show = (more = false) => load(list, async () => {
      const out = await api('GET', `/v1/agents${query({ relation: relation.value, limit: 50, cursor: more ? cursor : null })}`);
      rows = more ? rows.concat(out.data || []) : (out.data || []);
      cursor = out.next_cursor;
      if (rows.length === 0) {
        return empty('No agents yet. An agent registers with ', code('POST /agent/register'),
          ' (or ', code('agentgate agent register'), ') using your email address as its developer; '
          + 'agents you grant permissions to appear here too.');
      }
      const t = table('Agents', [
        { label: 'Agent', cell: (a) => [h('strong', null, a.name), h('br'), code(a.agent_id),
          a.description ? h('div', { class: 'muted small' }, a.description) : null] },
        { label: 'Status', cell: (a) => badge(a.status) },
        { label: 'Relation', cell: (a) => [a.owned ? 'Owned' : null, a.owned && a.granted ? ', ' : null, a.granted ? 'Granted' : null] },
        { label: 'Active grants', cell: (a) => String(a.active_permission_count ?? 0) },
        { label: 'Last seen', cell: (a) => ago(a.last_seen) },
        { label: 'Registered', cell: (a) => when(a.created_at) },
        { label: 'Actions', cell: (a) => button('Grant…', () => { state.prefillAgent = a.agent_id; location.hash = '#grants'; },
          'secondary small', { 'aria-label': `Grant a permission to ${a.name}` }) },
      ], rows, (a) => ({ 'data-agent-id': a.agent_id }));
      return [t, cursor ? button('Load more', () => show(true), 'secondary') : null];
    });
    relation.addEventListener('change', () => show());
    show();
  }

  // --- scope editor -----------------------------------------------------------------------------

  const SCOPE_KINDS = [['max', 'Maximum'], ['allowed', 'Allowed values'], ['budget', 'Budget'], ['other', 'Other (JSON)']];

  // Rows of max_<field>, allowed_<field>, budget_<field> {limit, period} and verbatim keys.
  // read() → the scope object, or null when there are no rows; throws Error on a bad row.
  function scopeEditor(initial, legend = 'Scope (optional)') {
    const rowsEl = h('div', { class: 'scope-rows' });
    const rows = [];
    const add = button('Add a limit', () => { const r = addRow('max', '', ''); r.kind.focus(); }, 'secondary small');
    const el = h('fieldset', { class: 'scope-editor' }, h('legend', null, legend),
      h('p', { class: 'hint' }, 'Limits the agent must stay within. With none, the grant allows the action with any input.'),
      rowsEl, add);

    function addRow(kind, name, value) {
      const n = rows.length + 1;
      const kindSel = select('kind', SCOPE_KINDS, kind);
      kindSel.dataset.scope = 'kind';
      const nameIn = h('input', { type: 'text', name: 'field', value: name, autocomplete: 'off', 'data-scope': 'field',
        placeholder: 'amount' });
      const valueHost = h('div', { class: 'scope-value' });
      const row = { kind: kindSel, name: nameIn, inputs: {} };
      const nameField = field('Field', nameIn);
      const build = (v) => {
        row.inputs = {};
        const k = kindSel.value;
        nameField.querySelector('label').textContent = k === 'other' ? 'Key' : 'Field';
        nameIn.placeholder = k === 'other' ? 'purpose' : k === 'allowed' ? 'currency' : 'amount';
        if (k === 'max') {
          row.inputs.max = h('input', { type: 'number', step: 'any', name: 'max', value: v ?? '', 'data-scope': 'max' });
          valueHost.replaceChildren(field('Maximum', row.inputs.max));
        } else if (k === 'allowed') {
          row.inputs.allowed = h('input', { type: 'text', name: 'allowed', value: Array.isArray(v) ? v.join(', ') : (v ?? ''),
            'data-scope': 'allowed', placeholder: 'EUR, USD' });
          valueHost.replaceChildren(field('Allowed values', row.inputs.allowed, 'Comma-separated'));
        } else if (k === 'budget') {
          const b = v && typeof v === 'object' ? v : {};
          row.inputs.limit = h('input', { type: 'number', step: 'any', min: '0', name: 'limit', value: b.limit ?? '', 'data-scope': 'limit' });
          row.inputs.period = h('input', { type: 'text', name: 'period', value: b.period ?? '30d', 'data-scope': 'period' });
          valueHost.replaceChildren(field('Limit', row.inputs.limit), field('Per period', row.inputs.period, 'e.g. 30d, 24h'));
        } else {
          row.inputs.json = h('input', { type: 'text', name: 'json', value: v === undefined || v === '' ? '' : JSON.stringify(v),
            'data-scope': 'json', placeholder: '"text", 12 or {"a": 1}' });
          valueHost.replaceChildren(field('JSON value', row.inputs.json));
        }
      };
      kindSel.addEventListener('change', () => build(undefined));
      const remove = button('Remove', () => {
        rows.splice(rows.indexOf(row), 1);
        rowEl.remove();
        add.focus();
      }, 'danger secondary small', { 'aria-label': `Remove limit ${n}` });
      const rowEl = h('div', { class: 'scope-row', role: 'group', 'aria-label': `Limit ${n}` },
        field('Kind', kindSel), nameField, valueHost, h('div', null, remove));
      row.el = rowEl;
      build(value);
      rows.push(row);
      rowsEl.append(rowEl);
      return row;
    }

    for (const [key, value] of Object.entries(initial || {})) {
      if (key.startsWith('max_') && typeof value === 'number') addRow('max', key.slice(4), value);
      else if (key.startsWith('allowed_') && Array.isArray(value)) addRow('allowed', key.slice(8), value);
      else if (key.startsWith('budget_') && value && typeof value === 'object' && !Array.isArray(value)) addRow('budget', key.slice(7), value);
      else addRow('other', key, value);
    }

    function read() {
      if (rows.length === 0) return null;
      const scope = {};
      rows.forEach((row, i) => {
        const n = i + 1;
        const k = row.kind.value;
        const name = row.name.value.trim();
        if (!name) throw new Error(`Limit ${n}: enter the ${k === 'other' ? 'key' : 'field name'}.`);
        if (k === 'max') {
          const v = row.inputs.max.value.trim();
          if (v === '' || !Number.isFinite(Number(v))) throw new Error(`Limit ${n}: the maximum must be a number.`);
          scope[`max_${name}`] = Number(v);
        } else if (k === 'allowed') {
          const values = row.inputs.allowed.value.split(',').map((s) => s.trim()).filter(Boolean);
          if (values.length === 0) throw new Error(`Limit ${n}: list at least one allowed value.`);
          scope[`allowed_${name}`] = values;
        } else if (k === 'budget') {
          const limit = Number(row.inputs.limit.value.trim());
          if (row.inputs.limit.value.trim() === '' || !(limit > 0)) throw new Error(`Limit ${n}: the budget must be a number above 0.`);
          const period = row.inputs.period.value.trim();
          if (!/^\d+[smhd]$/.test(period)) throw new Error(`Limit ${n}: the period is a number and s, m, h or d (e.g. 30d).`);
          scope[`budget_${name}`] = { limit, period };
        } else {
          try { scope[name] = JSON.parse(row.inputs.json.value); } catch (e) {
            throw new Error(`Limit ${n}: the value is not JSON (quote text: "like this").`);
          }
        }
      });
      return scope;
    }
    return { el, read, addRow };
  }

  const EXPIRY_HINTS = ['1h', '24h', '7d', '30d', '90d'];
  function expiryInput(value) {
    const listId = uid('exp');
    const input = h('input', { type: 'text', name: 'expires_in', value: value || '', list: listId, autocomplete: 'off',
      placeholder: 'never', pattern: '\\d+[smhd]' });
    return [input, h('datalist', { id: listId }, EXPIRY_HINTS.map((v) => h('option', { value: v })))];
  }

  // --- grants -----------------------------------------------------------------------------------

  function renderGrants(main) {
    const agentListId = uid('agents');
    const agent = h('input', { type: 'text', name: 'agent_id', required: true, list: agentListId, autocomplete: 'off',
      placeholder: 'ap_…', value: state.prefillAgent });
    state.prefillAgent = '';
    const agentList = h('datalist', { id: agentListId });
    const action = h('input', { type: 'text', name: 'action', required: true, autocomplete: 'off', placeholder: 'invoices:pay' });
    const [expires, expiresList] = expiryInput('');
    const scope = scopeEditor(null);
    const errors = h('div');
    const result = h('div');
    const submit = h('button', { type: 'submit' }, 'Grant');
    const form = h('form', { class: 'card', id: 'grant-form', 'aria-labelledby': 'grant-title', novalidate: true },
      h('h2', { id: 'grant-title' }, 'Grant a permission'),
      h('div', { class: 'grid' },
        field('Agent', agent, 'The agent id (ap_…); your agents are suggested.'),
        field('Action', action, 'e.g. invoices:pay or send_email; letters, digits and _ . : / * -'),
        h('div', null, field('Expires in', expires, 'e.g. 30m, 24h, 7d; empty: never'), expiresList)),
      agentList, scope.el, errors, h('div', { class: 'actions' }, submit), result);

    const status = select('status', [['active', 'Active'], ['all', 'All, with revoked and expired']], 'active');
    const list = h('div');
    main.append(...pageHeader('Grants', 'Let an agent act with your authority: one action, optionally limited and expiring.'),
      form, h('div', { class: 'toolbar' }, h('h2', null, 'My grants'), h('div', { class: 'inline' }, field('Show', status))), list);

    api('GET', '/v1/agents?limit=100').then((out) => {
      agentList.replaceChildren(...(out.data || []).map((a) => h('option', { value: a.agent_id }, a.name)));
    }).catch(() => { /* suggestions only */ });

    form.addEventListener('submit', async (event) => {
      event.preventDefault();
      errors.replaceChildren();
      result.replaceChildren();
      const body = { agent_id: agent.value.trim(), action: action.value.trim() };
      const missing = [!body.agent_id && 'the agent', !body.action && 'the action'].filter(Boolean);
      if (missing.length) {
        errors.replaceChildren(errorBox({ message: `Enter ${missing.join(' and ')}.` }));
        (body.agent_id ? action : agent).focus();
        return;
      }
      if (expires.value.trim()) body.expires_in = expires.value.trim();
      try {
        const s = scope.read();
        if (s) body.scope = s;
      } catch (e) {
        errors.replaceChildren(errorBox(e));
        return;
      }
      submit.disabled = true;
      try {
        const g = await api('POST', '/permission/grant', body);
        result.replaceChildren(h('div', { class: 'alert ok', role: 'status' },
          h('p', null, 'Granted ', code(g.action), ' to ', code(g.agent_id),
            g.expires_at ? [', until ', when(g.expires_at)] : ', without expiry', '.')));
        announce(`Granted ${g.action} to ${g.agent_id}.`);
        action.value = '';
        showList();
      } catch (e) {
        errors.replaceChildren(errorBox(e, 'Could not grant'));
      } finally {
        submit.disabled = false;
      }
    });

    const showList = () => load(list, async () => {
      const out = await api('GET', `/permissions${query({ status: status.value })}`);
      const rows = out.permissions || [];
      if (rows.length === 0) {
        return empty(status.value === 'active' ? 'You have no active grants. Use the form above to grant one.'
          : 'You have not granted anything yet.');
      }
      return table('My grants', [
        { label: 'Agent', cell: (g) => code(g.agent_id) },
        { label: 'Action', cell: (g) => code(g.action) },
        { label: 'Scope', cell: (g) => scopeText(g.scope) },
        { label: 'Expires', cell: (g) => (g.expires_at ? when(g.expires_at) : 'never') },
        { label: 'Granted', cell: (g) => when(g.created_at) },
        { label: 'Status', cell: (g) => badge(g.status) },
        { label: 'Actions', cell: (g) => {
          if (g.status !== 'active') return g.revoked_at ? ['revoked ', when(g.revoked_at)] : '—';
          const host = h('div', { class: 'actions' });
          host.append(button('Revoke', () => confirmInline(host, `Revoke ${g.action}?`, 'Yes, revoke', async () => {
            await api('POST', '/permission/revoke', { permission_id: g.permission_id });
            announce(`Revoked ${g.action} from ${g.agent_id}.`);
            showList();
          }), 'danger secondary small', { 'aria-label': `Revoke ${g.action} from ${g.agent_id}` }));
          return host;
        } },
      ], rows, (g) => ({ 'data-permission-id': g.permission_id }));
    });
    status.addEventListener('change', showList);
    showList();
  }

  // --- permission requests ----------------------------------------------------------------------

  function renderRequests(main) {
    const pending = h('div');
    const decided = h('div');
    main.append(...pageHeader('Requests', 'Agents that were denied can ask you for a permission. Approve — narrowing it if you like — or decline.'),
      h('h2', null, 'Waiting for you'), pending, h('h2', null, 'Recently decided'), decided);

    const showPending = () => load(pending, async () => {
      const out = await api('GET', '/v1/permission-requests?status=pending&limit=100');
      const rows = out.data || [];
      if (rows.length === 0) return empty('No requests are waiting for you.');
      return rows.map(requestCard);
    });
    const showDecided = () => load(decided, async () => {
      const out = await api('GET', '/v1/permission-requests?limit=50');
      const rows = (out.data || []).filter((r) => r.status !== 'pending').slice(0, 20);
      if (rows.length === 0) return empty('Nothing decided yet.');
      return table('Recently decided requests', [
        { label: 'Agent', cell: (r) => [r.agent_name || '', h('br'), code(r.agent_id)] },
        { label: 'Action', cell: (r) => code(r.action) },
        { label: 'Outcome', cell: (r) => badge(r.status) },
        { label: 'Decided', cell: (r) => (r.decided_at ? when(r.decided_at) : when(r.expires_at)) },
        { label: 'Details', cell: (r) => (r.status === 'approved' && r.permission
          ? [`Granted: ${scopeText(r.permission.scope)}`, r.permission.expires_at ? [', until ', when(r.permission.expires_at)] : ', no expiry']
          : r.decline_reason || '—') },
      ], rows, (r) => ({ 'data-request-id': r.request_id }));
    });
    const refresh = () => { showPending(); showDecided(); };

    function requestCard(r) {
      const titleId = uid('req');
      const actions = h('div', { class: 'actions' });
      const formHost = h('div');
      const card = h('article', { class: 'card request', 'aria-labelledby': titleId, 'data-request-id': r.request_id },
        h('h3', { id: titleId }, `${r.agent_name || r.agent_id} asks for `, code(r.action)),
        h('dl', null,
          h('dt', null, 'Reason'), h('dd', null, r.reason),
          h('dt', null, 'Agent'), h('dd', null, code(r.agent_id)),
          h('dt', null, 'Scope asked'), h('dd', null, scopeText(r.scope)),
          h('dt', null, 'For how long'), h('dd', null, r.expires_in ? r.expires_in : 'no expiry'),
          h('dt', null, 'Asked'), h('dd', null, when(r.created_at)),
          h('dt', null, 'Lapses'), h('dd', null, when(r.expires_at))),
        actions, formHost);

      const openApprove = () => {
        const scope = scopeEditor(r.scope, 'Scope of the grant');
        const [expires, expiresList] = expiryInput(r.expires_in || '');
        const errors = h('div');
        const ok = h('button', { type: 'submit' }, 'Approve');
        const form = h('form', { class: 'sub', 'aria-label': `Approve ${r.action}`, novalidate: true },
          h('p', { class: 'hint' }, 'Prefilled with what the agent asked; narrow the limits or the expiry before approving.'),
          scope.el, field('Expires in', expires, 'e.g. 24h, 7d; empty: never'), expiresList, errors,
          h('div', { class: 'actions' }, ok, button('Cancel', close, 'secondary')));
        form.addEventListener('submit', async (event) => {
          event.preventDefault();
          errors.replaceChildren();
          let body;
          try {
            body = { scope: scope.read(), expires_in: expires.value.trim() || null };
          } catch (e) {
            errors.replaceChildren(errorBox(e));
            return;
          }
          ok.disabled = true;
          try {
            await api('POST', `/v1/permission-requests/${encodeURIComponent(r.request_id)}/approve`, body);
            announce(`Approved: ${r.agent_name || r.agent_id} may ${r.action}.`);
            refresh();
          } catch (e) {
            errors.replaceChildren(errorBox(e, 'Could not approve'));
            ok.disabled = false;
          }
        });
        formHost.replaceChildren(form);
        actions.hidden = true;
        ok.focus();
      };
      const openDecline = () => {
        const reason = h('textarea', { name: 'reason', maxlength: '1000' });
        const errors = h('div');
        const no = h('button', { type: 'submit', class: 'danger' }, 'Decline');
        const form = h('form', { class: 'sub', 'aria-label': `Decline ${r.action}` },
          field('Reason (optional)', reason, 'The agent sees it.'), errors,
          h('div', { class: 'actions' }, no, button('Cancel', close, 'secondary')));
        form.addEventListener('submit', async (event) => {
          event.preventDefault();
          errors.replaceChildren();
          no.disabled = true;
          try {
            const body = reason.value.trim() ? { reason: reason.value.trim() } : {};
            await api('POST', `/v1/permission-requests/${encodeURIComponent(r.request_id)}/decline`, body);
            announce(`Declined ${r.action} for ${r.agent_name || r.agent_id}.`);
            refresh();
          } catch (e) {
            errors.replaceChildren(errorBox(e, 'Could not decline'));
            no.disabled = false;
          }
        });
        formHost.replaceChildren(form);
        actions.hidden = true;
        reason.focus();
      };
      function close() {
        formHost.replaceChildren();
        actions.hidden = false;
        actions.querySelector('button').focus();
      }
      actions.append(button('Approve…', openApprove, '', { 'aria-label': `Approve ${r.action} for ${r.agent_name || r.agent_id}` }),
        button('Decline…', openDecline, 'danger secondary', { 'aria-label': `Decline ${r.action} for ${r.agent_name || r.agent_id}` }));
      return card;
    }
    refresh();
  }

  // --- activity ---------------------------------------------------------------------------------

  const READ_ACTIONS = /(\.list|\.view|\.deliveries|\.messages)$|^auth\.session$/;

  function renderActivity(main) {
    const agent = h('input', { type: 'text', name: 'agent_id', placeholder: 'ap_…', autocomplete: 'off' });
    const action = h('input', { type: 'text', name: 'action', placeholder: 'permission.check', autocomplete: 'off' });
    const outcome = select('outcome', [['', 'Any'], ['success', 'Success'], ['denied', 'Denied'], ['error', 'Error']], '');
    const actorKind = select('actor_kind', [['', 'Any'], ['session', 'Person (session)'], ['api_token', 'Access token'],
      ['agent', 'Agent'], ['tenant_token', 'App (tenant token)'], ['mcp', 'MCP'], ['anonymous', 'Anonymous'], ['system', 'System']], '');
    const showReads = h('input', { type: 'checkbox', id: uid('reads'), name: 'reads' });
    const live = h('input', { type: 'checkbox', id: 'live-toggle', name: 'live', checked: true });
    const dot = h('span', { class: 'live-dot on', 'aria-hidden': 'true' });
    const liveState = h('span', { class: 'small muted', id: 'live-state' }, 'Live');
    const list = h('div', { id: 'activity-list' });
    const form = h('form', { class: 'card', 'aria-label': 'Filter the activity' },
      h('div', { class: 'grid' }, field('Agent', agent), field('Action', action), field('Outcome', outcome), field('Actor', actorKind)),
      h('div', { class: 'actions' },
        h('button', { type: 'submit' }, 'Apply filters'),
        h('label', { class: 'check', for: showReads.id }, showReads, h('span', null, 'Show reads (list and view calls)')),
        h('label', { class: 'check', for: live.id }, live, h('span', null, 'Live updates')),
        h('span', null, dot, liveState)));
    main.append(...pageHeader('Activity', 'Every call and change about you and your agents, newest first.'), form, list);

    let rows = [];
    let cursor = null;
    let seen = new Set();
    let timer = 0;
    let failed = null;
    const params = () => ({ agent_id: agent.value.trim(), action: action.value.trim(), outcome: outcome.value,
      actor_kind: actorKind.value, limit: 100 });

    function draw(fresh) {
      const visible = rows.filter((e) => showReads.checked || !READ_ACTIONS.test(e.action));
      const nodes = [];
      if (failed) nodes.push(errorBox(failed, 'Could not refresh'));
      if (visible.length === 0) {
        nodes.push(empty(rows.length ? 'Only reads match; tick “Show reads” to see them.' : 'No activity matches these filters yet.'));
      } else {
        nodes.push(table('Activity', [
          { label: 'When', cell: (e) => when(e.at, true) },
          { label: 'Actor', cell: (e) => [e.actor_kind, e.actor_id ? [h('br'), code(e.actor_id)] : null] },
          { label: 'Action', cell: (e) => code(e.action) },
          { label: 'Target', cell: (e) => [e.target || '—', e.agent_id && e.agent_id !== e.target ? [h('br'), code(e.agent_id)] : null] },
          { label: 'Outcome', cell: (e) => [badge(e.outcome), e.error ? h('div', { class: 'small' }, e.error) : null] },
          { label: 'Status', cell: (e) => String(e.status ?? '') },
        ], visible, (e) => ({ 'data-event-id': e.id, class: fresh && fresh.has(e.id) ? 'fresh' : null })));
      }
      if (cursor) nodes.push(button('Load older', older, 'secondary'));
      list.replaceChildren(...nodes);
    }

    async function first() {
      clearTimeout(timer);
      list.setAttribute('aria-busy', 'true');
      list.replaceChildren(h('p', { class: 'loading' }, 'Loading…'));
      try {
        const out = await api('GET', `/v1/activity${query(params())}`);
        rows = out.data || [];
        cursor = out.next_cursor;
        seen = new Set(rows.map((e) => e.id));
        failed = null;
        draw(null);
      } catch (e) {
        list.replaceChildren(errorBox(e, 'Could not load the activity'), button('Try again', first, 'secondary'));
      } finally {
        list.removeAttribute('aria-busy');
      }
      schedule();
    }

    async function poll() {
      if (state.page !== 'activity') return;
      try {
        const out = await api('GET', `/v1/activity${query(params())}`);
        const fresh = new Set();
        for (const e of (out.data || []).slice().reverse()) {
          if (!seen.has(e.id)) { seen.add(e.id); fresh.add(e.id); rows.unshift(e); }
        }
        failed = null;
        const shown = [...fresh].filter((id) => { const e = rows.find((r) => r.id === id); return showReads.checked || !READ_ACTIONS.test(e.action); });
        if (fresh.size) draw(fresh);
        if (shown.length) announce(`${shown.length} new event${shown.length === 1 ? '' : 's'}.`);
        liveState.textContent = `Live · updated ${new Date().toLocaleTimeString()}`;
      } catch (e) {
        failed = e;
        draw(null);
      }
      schedule();
    }

    async function older() {
      try {
        const out = await api('GET', `/v1/activity${query(Object.assign(params(), { cursor }))}`);
        for (const e of out.data || []) if (!seen.has(e.id)) { seen.add(e.id); rows.push(e); }
        cursor = out.next_cursor;
        draw(null);
      } catch (e) { list.append(errorBox(e)); }
    }

    // Polls every 3 s while live is on and the tab is visible.
    function schedule() {
      clearTimeout(timer);
      const on = live.checked && document.visibilityState === 'visible';
      dot.classList.toggle('on', on);
      if (!live.checked) liveState.textContent = 'Paused';
      else if (document.visibilityState !== 'visible') liveState.textContent = 'Paused while the tab is hidden';
      else if (!/updated/.test(liveState.textContent)) liveState.textContent = 'Live';
      if (on) timer = setTimeout(poll, 3000);
    }
    const onVisibility = () => { if (document.visibilityState === 'visible' && live.checked) poll(); else schedule(); };
    document.addEventListener('visibilitychange', onVisibility);
    state.teardown.push(() => { clearTimeout(timer); document.removeEventListener('visibilitychange', onVisibility); });
    live.addEventListener('change', () => { if (live.checked) { liveState.textContent = 'Live'; poll(); } else schedule(); announce(live.checked ? 'Live updates on.' : 'Live updates paused.'); });
    showReads.addEventListener('change', () => draw(null));
    form.addEventListener('submit', (event) => { event.preventDefault(); first(); });
    first();
  }

  // --- connections ------------------------------------------------------------------------------

  // Opens the connect page in a popup, as the browser SDK does: POST /connections, then the page
  // at clientAction.uiUrl; resolves with the connection when the page reports success, null when
  // the person closes the popup. Must be called from a click (popup blockers).
  async function connectInPopup(body) {
    const popup = window.open('', 'agentgate-connect', 'popup,width=520,height=720');
    if (!popup) throw new ApiError(0, { message: 'The browser blocked the connect window.', remediation: 'Allow pop-ups for this site and try again.' });
    try { popup.document.title = 'Connecting…'; } catch (e) { /* not ours yet */ }
    let connection;
    try {
      connection = await api('POST', '/connections', body);
    } catch (e) {
      popup.close();
      throw e;
    }
    const uiUrl = connection.clientAction && connection.clientAction.uiUrl;
    if (!uiUrl) {
      popup.close();
      if (connection.state === 'READY') return connection;
      throw new ApiError(409, {
        error: 'connection_not_ready',
        message: `The connection is ${connection.state}${connection.error ? `: ${connection.error.message}` : ''}`,
        remediation: 'An administrator may need to configure the integration (its OAuth client).',
      });
    }
    popup.location.href = uiUrl;
    const origin = new URL(uiUrl, location.href).origin;
    return new Promise((resolve, reject) => {
      let done = false;
      const finish = (fn, value) => {
        if (done) return;
        done = true;
        window.removeEventListener('message', onMessage);
        clearInterval(timer);
        // The window was ours; once it has said how it went, it has nothing left to show.
        try { if (!popup.closed) popup.close(); } catch (e) { /* already gone */ }
        fn(value);
      };
      const onMessage = (event) => {
        const m = event.data;
        if (event.origin !== origin || !m || m.source !== 'agentgate' || m.type !== 'connect.result') return;
        if (m.connectionId && m.connectionId !== connection.id) return;
        if (m.ok) {
          clearInterval(timer);
          api('GET', `/connections/${encodeURIComponent(connection.id)}`).then((c) => finish(resolve, c), (e) => finish(reject, e));
        } else {
          finish(reject, new ApiError(400, { error: 'connect_failed', message: m.error || 'Connecting failed.' }));
        }
      };
      window.addEventListener('message', onMessage);
      const timer = setInterval(() => { if (popup.closed) finish(resolve, null); }, 400);
      state.teardown.push(() => finish(resolve, null));
    });
  }

  function renderConnections(main) {
    const app = h('select', { name: 'integration', required: true }, h('option', { value: '' }, 'Loading apps…'));
    const name = h('input', { type: 'text', name: 'name', autocomplete: 'off', placeholder: 'Optional' });
    const errors = h('div');
    const submit = h('button', { type: 'submit' }, 'Connect');
    const form = h('form', { class: 'card', id: 'connect-form', 'aria-labelledby': 'connect-title', novalidate: true },
      h('h2', { id: 'connect-title' }, 'Connect an app'),
      h('p', { class: 'hint' }, 'Opens the app’s sign-in in a new window. Agents you grant actions to run them through your connections.'),
      h('div', { class: 'grid' }, field('App', app), field('Name', name)), errors, h('div', { class: 'actions' }, submit));
    const list = h('div');
    const showArchived = h('input', { type: 'checkbox', id: uid('archived'), name: 'archived' });
    main.append(...pageHeader('Connections', 'Your authenticated links to external apps.'), form,
      h('div', { class: 'toolbar' }, h('h2', null, 'My connections'),
        h('label', { class: 'check', for: showArchived.id }, showArchived, h('span', null, 'Show archived (disconnected by you)'))),
      list);

    api('GET', '/integrations?connectors=1&limit=1000').then((out) => {
      const items = out.items || [];
      const enabled = items.filter((i) => !i.isSynthetic && !i.isArchived);
      const candidates = items.filter((i) => i.isSynthetic);
      app.replaceChildren(h('option', { value: '' }, 'Choose an app…'),
        enabled.length ? h('optgroup', { label: 'Set up in this workspace' },
          enabled.map((i) => h('option', { value: `integrationKey:${i.key}` }, `${i.name} (${i.key})`))) : null,
        candidates.length ? h('optgroup', { label: 'Other apps' },
          candidates.map((i) => h('option', { value: `connectorKey:${i.connectorKey}` }, `${i.name} (${i.connectorKey})`))) : null);
    }).catch((e) => {
      app.replaceChildren(h('option', { value: '' }, 'Could not load the apps'));
      errors.replaceChildren(errorBox(e, 'Could not load the apps'));
    });

    async function run(body, what) {
      errors.replaceChildren();
      try {
        announce(`${what}: finish in the window that opened.`);
        const c = await connectInPopup(body);
        if (c === null) announce('Connecting was cancelled.');
        else announce(`${c.name} is connected (${c.state}).`);
      } catch (e) {
        errors.replaceChildren(errorBox(e, `${what} failed`));
        errors.scrollIntoView({ block: 'nearest' });
      }
      showList();
    }

    form.addEventListener('submit', (event) => {
      event.preventDefault();
      if (!app.value) {
        errors.replaceChildren(errorBox({ message: 'Choose the app to connect.' }));
        app.focus();
        return;
      }
      const [kind, key] = [app.value.slice(0, app.value.indexOf(':')), app.value.slice(app.value.indexOf(':') + 1)];
      const body = { [kind]: key };
      if (name.value.trim()) body.name = name.value.trim();
      run(body, 'Connecting');
    });

    const showList = () => load(list, async () => {
      const out = await api('GET', `/connections?limit=100${showArchived.checked ? '&includeArchived=true' : ''}`);
      const rows = out.items || [];
      if (rows.length === 0) {
        return empty(showArchived.checked ? 'No connections yet. Connect an app above.'
          : 'No connections yet. Connect an app above, or tick “Show archived” to restore one you disconnected.');
      }
      return table('My connections', [
        { label: 'Connection', cell: (c) => [h('strong', null, c.name), h('br'), code(c.key)] },
        { label: 'App', cell: (c) => (c.integration ? c.integration.name : c.integrationKey || '—') },
        { label: 'State', cell: (c) => (c.isArchived
          ? [badge('archived'), h('div', { class: 'small' }, 'disconnected ', when(c.archivedAt))]
          : [badge(c.state), c.error ? h('div', { class: 'small' }, c.error.message) : null]) },
        { label: 'Updated', cell: (c) => when(c.updatedAt) },
        { label: 'Actions', cell: (c) => {
          const host = h('div', { class: 'actions' });
          if (c.isArchived) {
            // Restoring brings back the connection with the credentials it had.
            host.append(button('Restore', async () => {
              try {
                const back = await api('POST', `/connections/${encodeURIComponent(c.id)}/restore`);
                announce(`${c.name} is restored (${back.state}).`);
                showList();
              } catch (e) { host.replaceChildren(errorBox(e, 'Could not restore'), button('Back', showList, 'secondary small')); }
            }, 'secondary small', { 'aria-label': `Restore ${c.name}` }));
            return host;
          }
          host.append(
            button(c.state === 'READY' ? 'Reconnect' : 'Connect', () => run({ connectionId: c.id }, 'Reconnecting'),
              'secondary small', { 'aria-label': `Reconnect ${c.name}` }),
            button('Disconnect', () => confirmInline(host, `Disconnect ${c.name}?`, 'Yes, disconnect', async () => {
              await api('DELETE', `/connections/${encodeURIComponent(c.id)}`);
              announce(`${c.name} is disconnected.`);
              showList();
            }), 'danger secondary small', { 'aria-label': `Disconnect ${c.name}` }));
          return host;
        } },
      ], rows, (c) => ({ 'data-connection-id': c.id }));
    });
    showArchived.addEventListener('change', () => showList());
    showList();
  }

  // --- action runs ------------------------------------------------------------------------------

  function renderRuns(main) {
    const status = select('status', [['', 'Any'], ['success', 'Succeeded'], ['error', 'Failed']], '');
    const details = h('section', { class: 'card details', 'aria-labelledby': 'run-title', hidden: true });
    const list = h('div');
    main.append(...pageHeader('Runs', 'Actions run through your connections — by you or by agents under your grants.'),
      details, h('div', { class: 'toolbar' }, h('h2', null, 'Recent runs'), h('div', { class: 'inline' }, field('Status', status))), list);

    async function open(run) {
      details.hidden = false;
      details.replaceChildren(h('h2', { id: 'run-title', tabindex: '-1' }, 'Run ', code(run.id)), h('p', { class: 'loading' }, 'Loading…'));
      details.querySelector('h2').focus();
      try {
        const r = await api('GET', `/action-run-logs/${encodeURIComponent(run.id)}/details`);
        const d = r.details || {};
        const exchanges = d.exchanges || [];
        details.replaceChildren();
        append(details, [
          h('h2', { id: 'run-title', tabindex: '-1' }, 'Run ', code(r.id)),
          h('dl', null,
            h('dt', null, 'Status'), h('dd', null, badge(r.status)),
            h('dt', null, 'Action'), h('dd', null, r.action ? `${r.action.name} (${r.action.key})` : 'inline request'),
            h('dt', null, 'Connection'), h('dd', null, r.connection ? `${r.connection.name} (${r.connection.key})` : '—'),
            h('dt', null, 'Actor'), h('dd', null, r.actor ? `${r.actor.kind} ${r.actor.id || ''}` : '—'),
            h('dt', null, 'Agent'), h('dd', null, r.agentId ? code(r.agentId) : '—'),
            h('dt', null, 'Started'), h('dd', null, when(r.startedAt, true)),
            h('dt', null, 'Duration'), h('dd', null, `${r.durationMs ?? '—'} ms`)),
          h('h3', null, 'Input'), pre(r.input ?? null),
          r.error ? [h('h3', null, 'Error'), pre(r.error)] : [h('h3', null, 'Output'), pre(r.output ?? null)],
          h('h3', null, 'Request'), d.request ? pre(d.request) : h('p', { class: 'muted' }, 'No request was made.'),
          h('h3', null, `Exchanges (${exchanges.length})`),
          exchanges.length === 0 ? h('p', { class: 'muted' }, 'None.') : exchanges.map((x, i) => h('div', { class: 'exchange' },
            h('h4', null, `${i + 1}. ${x.request ? `${x.request.method} ${x.request.url}` : ''} → ${x.response ? x.response.status : 'no answer'}`
              + (x.durationMs !== undefined ? ` (${x.durationMs} ms)` : '')),
            x.request ? [h('p', { class: 'small muted' }, 'Request headers and body'), pre(x.request.headers || {}), x.request.body ? pre(x.request.body) : null] : null,
            x.response ? [h('p', { class: 'small muted' }, 'Response headers and body'), pre(x.response.headers || {}), x.response.body ? pre(x.response.body) : null] : null,
            x.error ? pre(x.error) : null)),
          h('div', { class: 'actions' }, button('Close details', () => { details.hidden = true; list.querySelector(`[data-run-id="${CSS.escape(r.id)}"] button`)?.focus(); }, 'secondary'))]);
        details.querySelector('h2').focus();
      } catch (e) {
        details.replaceChildren(h('h2', { id: 'run-title', tabindex: '-1' }, 'Run ', code(run.id)), errorBox(e, 'Could not load the details'));
      }
    }

    const showList = () => load(list, async () => {
      const out = await api('GET', `/action-run-logs${query({ status: status.value, limit: 100 })}`);
      const rows = out.items || [];
      if (rows.length === 0) return empty('No runs yet. Runs appear when you or your agents call ', code('POST /act'), '.');
      return table('Action runs', [
        { label: 'Started', cell: (r) => when(r.startedAt, true) },
        { label: 'Action', cell: (r) => (r.action ? r.action.key : 'inline request') },
        { label: 'Connection', cell: (r) => (r.connection ? r.connection.name : '—') },
        { label: 'By', cell: (r) => (r.agentId ? code(r.agentId) : r.actor ? r.actor.kind : '—') },
        { label: 'Status', cell: (r) => [badge(r.status), r.error && r.error.error ? h('div', { class: 'small' }, r.error.error) : null] },
        { label: 'Duration', cell: (r) => `${r.durationMs ?? '—'} ms` },
        { label: 'Details', cell: (r) => button('Details', () => open(r), 'secondary small', { 'aria-label': `Details of run ${r.id}` }) },
      ], rows, (r) => ({ 'data-run-id': r.id }));
    });
    status.addEventListener('change', showList);
    showList();
  }

  // --- webhooks ---------------------------------------------------------------------------------

  const EVENT_TYPES = ['agent.registered', 'permission.granted', 'permission.revoked', 'permission.expired',
    'permission_request.created', 'permission_request.approved', 'permission_request.declined', 'permission_request.expired',
    'token.created', 'token.revoked', 'connection.created', 'connection.ready', 'connection.disconnected',
    'connection.reconnected', 'connection.archived', 'connection.restored', 'action_run.succeeded', 'action_run.failed'];

  function renderWebhooks(main) {
    const url = h('input', { type: 'url', name: 'url', required: true, placeholder: 'https://example.com/hooks/agentgate', autocomplete: 'off' });
    const description = h('input', { type: 'text', name: 'description', autocomplete: 'off' });
    const all = h('input', { type: 'checkbox', id: uid('all'), name: 'all', checked: true });
    const boxes = EVENT_TYPES.map((t) => h('input', { type: 'checkbox', id: uid('ev'), name: 'events', value: t }));
    const eventsSet = h('div', { class: 'checks' }, boxes.map((b) => h('label', { class: 'check', for: b.id }, b, h('span', null, code(b.value)))));
    const syncAll = () => { for (const b of boxes) b.disabled = all.checked; };
    all.addEventListener('change', syncAll);
    syncAll();
    const errors = h('div');
    const result = h('div');
    const submit = h('button', { type: 'submit' }, 'Add endpoint');
    const form = h('form', { class: 'card', id: 'webhook-form', 'aria-labelledby': 'wh-title', novalidate: true },
      h('h2', { id: 'wh-title' }, 'Add an endpoint'),
      h('div', { class: 'grid' }, field('URL', url, 'HTTPS; agentgate signs every delivery (Standard Webhooks).'), field('Description', description)),
      h('fieldset', null, h('legend', null, 'Events'),
        h('label', { class: 'check', for: all.id }, all, h('span', null, 'All events, including future ones')), h('div', { class: 'sub' }, eventsSet)),
      errors, h('div', { class: 'actions' }, submit), result);
    const list = h('div');
    main.append(...pageHeader('Webhooks', 'agentgate tells your endpoints about grants, tokens, connections and runs.'), form,
      h('h2', null, 'Endpoints'), list);

    form.addEventListener('submit', async (event) => {
      event.preventDefault();
      errors.replaceChildren();
      result.replaceChildren();
      const events = all.checked ? ['*'] : boxes.filter((b) => b.checked).map((b) => b.value);
      if (!url.value.trim()) { errors.replaceChildren(errorBox({ message: 'Enter the URL of your endpoint.' })); url.focus(); return; }
      if (events.length === 0) { errors.replaceChildren(errorBox({ message: 'Choose at least one event.' })); return; }
      const body = { url: url.value.trim(), events };
      if (description.value.trim()) body.description = description.value.trim();
      submit.disabled = true;
      try {
        const w = await api('POST', '/v1/webhooks', body);
        result.replaceChildren(secretBox('Signing secret', w.secret, 'Endpoint added. Save its signing secret now: it is shown once only.'));
        result.querySelector('input').focus();
        url.value = '';
        description.value = '';
        showList();
      } catch (e) {
        errors.replaceChildren(errorBox(e, 'Could not add the endpoint'));
      } finally {
        submit.disabled = false;
      }
    });

    async function showLog(w, host) {
      await load(host, async () => {
        const [messages, deliveries] = await Promise.all([
          api('GET', `/v1/webhooks/${encodeURIComponent(w.id)}/messages?limit=50`),
          api('GET', `/v1/webhooks/${encodeURIComponent(w.id)}/deliveries?limit=50`),
        ]);
        const m = messages.data || [];
        const d = deliveries.data || [];
        return [
          h('h3', null, 'Messages'),
          m.length === 0 ? empty('No messages yet. Send a test event.') : table(`Messages of ${w.url}`, [
            { label: 'Event', cell: (x) => code(x.event_type) },
            { label: 'Status', cell: (x) => [badge(x.status), x.last_error ? h('div', { class: 'small' }, x.last_error) : null] },
            { label: 'Attempts', cell: (x) => String(x.attempts) },
            { label: 'Created', cell: (x) => when(x.created_at, true) },
            { label: 'Actions', cell: (x) => button('Replay', async (ev) => {
              ev.target.disabled = true;
              try {
                await api('POST', `/v1/webhooks/${encodeURIComponent(w.id)}/messages/${encodeURIComponent(x.message_id)}/replay`);
                announce(`Replaying ${x.event_type}.`);
                setTimeout(() => showLog(w, host), 800);
              } catch (e) { host.prepend(errorBox(e, 'Could not replay')); ev.target.disabled = false; }
            }, 'secondary small', { 'aria-label': `Replay ${x.event_type} ${x.message_id}` }) },
          ], m, (x) => ({ 'data-message-id': x.message_id })),
          h('h3', null, 'Deliveries'),
          d.length === 0 ? empty('No delivery attempts yet.') : table(`Deliveries to ${w.url}`, [
            { label: 'At', cell: (x) => when(x.at, true) },
            { label: 'Event', cell: (x) => code(x.event_type) },
            { label: 'Attempt', cell: (x) => String(x.attempt) },
            { label: 'Trigger', cell: (x) => x.trigger },
            { label: 'Answer', cell: (x) => [x.status ? String(x.status) : '—', x.error ? h('div', { class: 'small' }, x.error) : null] },
            { label: 'Time', cell: (x) => `${x.duration_ms ?? '—'} ms` },
          ], d, (x) => ({ 'data-delivery-id': x.id, 'data-trigger': x.trigger })),
          h('div', { class: 'actions' }, button('Refresh', () => showLog(w, host), 'secondary small')),
        ];
      });
    }

    const showList = () => load(list, async () => {
      const out = await api('GET', '/v1/webhooks');
      const rows = out.data || [];
      if (rows.length === 0) return empty('No endpoints yet. Add one above.');
      return rows.map((w) => {
        const log = h('div', { class: 'sub', hidden: true });
        const actions = h('div', { class: 'actions' });
        const toggle = button('Show deliveries', async () => {
          const opening = log.hidden;
          log.hidden = !opening;
          toggle.textContent = opening ? 'Hide deliveries' : 'Show deliveries';
          toggle.setAttribute('aria-expanded', String(opening));
          if (opening) await showLog(w, log);
        }, 'secondary small', { 'aria-expanded': 'false' });
        actions.append(toggle,
          button('Send test event', async () => {
            try {
              await api('POST', `/v1/webhooks/${encodeURIComponent(w.id)}/test`);
              announce('Test event queued.');
              if (!log.hidden) setTimeout(() => showLog(w, log), 800);
            } catch (e) { log.hidden = false; log.replaceChildren(errorBox(e, 'Could not send the test')); }
          }, 'secondary small'),
          button('Delete', () => confirmInline(actions, `Delete ${w.url}?`, 'Yes, delete', async () => {
            await api('DELETE', `/v1/webhooks/${encodeURIComponent(w.id)}`);
            announce('Endpoint deleted.');
            showList();
          }), 'danger secondary small', { 'aria-label': `Delete endpoint ${w.url}` }));
        return h('article', { class: 'card', 'data-webhook-id': w.id },
          h('h3', null, code(w.url), ' ', badge(w.status)),
          w.description ? h('p', null, w.description) : null,
          h('p', { class: 'small muted' }, 'Events: ', w.events.join(', '), w.disabled_reason ? ` · ${w.disabled_reason}` : ''),
          actions, log);
      });
    });
    showList();
  }

  // --- access tokens ----------------------------------------------------------------------------

  const ABILITIES = [
    ['agent:view-any', 'Read any agent’s profile'],
    ['agent:create', 'Register agents'],
    ['permission:view-any', 'List your grants and requests'],
    ['permission:grant', 'Grant permissions; approve requests'],
    ['permission:revoke', 'Revoke your grants'],
    ['permission:check', 'Check any agent’s permission'],
    ['activity:view-any', 'Read the activity log'],
    ['webhook:manage', 'Manage webhook endpoints'],
    ['token:manage', 'Mint and revoke tokens'],
    ['connection:manage', 'Use your connections'],
    ['workspace:manage', 'Workspace administration (admins)'],
    ['act', 'Run actions through your connections'],
  ];

  function renderTokens(main) {
    const name = h('input', { type: 'text', name: 'name', required: true, maxlength: '100', autocomplete: 'off', placeholder: 'ci reader' });
    const everything = h('input', { type: 'checkbox', id: uid('all'), name: 'all' });
    const boxes = ABILITIES.map(([a]) => h('input', { type: 'checkbox', id: uid('ab'), name: 'abilities', value: a }));
    everything.addEventListener('change', () => { for (const b of boxes) b.disabled = everything.checked; });
    const expires = select('expires_in', [['24h', '24 hours'], ['7d', '7 days'], ['30d', '30 days'], ['90d', '90 days'],
      ['365d', '1 year'], ['never', 'Never']], '90d');
    const errors = h('div');
    const result = h('div');
    const submit = h('button', { type: 'submit' }, 'Create token');
    const form = h('form', { class: 'card', id: 'token-form', 'aria-labelledby': 'tok-title', novalidate: true },
      h('h2', { id: 'tok-title' }, 'Create an access token'),
      h('div', { class: 'grid' }, field('Name', name, 'What the token is for.'), field('Expires', expires)),
      h('fieldset', null, h('legend', null, 'Abilities'),
        h('p', { class: 'hint' }, 'Give the token only what it needs; start read-only.'),
        h('div', { class: 'checks' }, boxes.map((b, i) => h('label', { class: 'check', for: b.id }, b,
          h('span', null, code(ABILITIES[i][0]), h('span', { class: 'hint' }, ABILITIES[i][1]))))),
        h('div', { class: 'sub' }, h('label', { class: 'check', for: everything.id }, everything,
          h('span', null, 'Everything (', code('*'), '), including abilities added later')))),
      errors, h('div', { class: 'actions' }, submit), result);
    const status = select('status', [['active', 'Active'], ['all', 'All, with expired and revoked']], 'active');
    const list = h('div');
    main.append(...pageHeader('Tokens', 'Personal access tokens for your scripts, backends, the CLI and MCP. They act as you, within their abilities.'),
      form, h('div', { class: 'toolbar' }, h('h2', null, 'My tokens'), h('div', { class: 'inline' }, field('Show', status))), list);

    form.addEventListener('submit', async (event) => {
      event.preventDefault();
      errors.replaceChildren();
      result.replaceChildren();
      const abilities = everything.checked ? ['*'] : boxes.filter((b) => b.checked).map((b) => b.value);
      if (!name.value.trim()) { errors.replaceChildren(errorBox({ message: 'Name the token.' })); name.focus(); return; }
      if (abilities.length === 0) { errors.replaceChildren(errorBox({ message: 'Choose at least one ability.' })); boxes[0].focus(); return; }
      submit.disabled = true;
      try {
        const t = await api('POST', '/v1/tokens', { name: name.value.trim(), abilities, expires_in: expires.value });
        result.replaceChildren(secretBox('Token', t.token, 'Token created. Copy it now: it is shown once only and cannot be recovered.'));
        result.querySelector('input').focus();
        name.value = '';
        for (const b of boxes) b.checked = false;
        showList();
      } catch (e) {
        errors.replaceChildren(errorBox(e, 'Could not create the token'));
      } finally {
        submit.disabled = false;
      }
    });

    const showList = () => load(list, async () => {
      const out = await api('GET', `/v1/tokens${query({ status: status.value })}`);
      const rows = out.data || [];
      if (rows.length === 0) return empty('No tokens. Create one above.');
      return table('My tokens', [
        { label: 'Name', cell: (t) => [h('strong', null, t.name), h('br'), code(`${t.token_prefix}…`)] },
        { label: 'Abilities', cell: (t) => t.abilities.join(', ') },
        { label: 'Created', cell: (t) => when(t.created_at) },
        { label: 'Expires', cell: (t) => (t.expires_at ? when(t.expires_at) : 'never') },
        { label: 'Last used', cell: (t) => ago(t.last_used_at) },
        { label: 'Status', cell: (t) => badge(t.status) },
        { label: 'Actions', cell: (t) => {
          if (t.status !== 'active') return '—';
          const host = h('div', { class: 'actions' });
          host.append(button('Revoke', () => confirmInline(host, `Revoke ${t.name}?`, 'Yes, revoke', async () => {
            await api('DELETE', `/v1/tokens/${encodeURIComponent(t.id)}`);
            announce(`Token ${t.name} revoked.`);
            showList();
          }), 'danger secondary small', { 'aria-label': `Revoke token ${t.name}` }));
          return host;
        } },
      ], rows, (t) => ({ 'data-token-id': t.id }));
    });
    status.addEventListener('change', showList);
    showList();
  }

  boot();
})();

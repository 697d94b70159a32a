/*
 * agentgate browser SDK: connect a person's apps from your web page.
 *
 *   <script src="https://YOUR-AGENTGATE/sdk/agentgate.js"></script>
 *   const client = new AgentgateClient({ token })        // or { fetchToken: async () => token }
 *   const connection = await client.ui.connect({ connectorKey: 'github', connectionKey: 'gh-1' })
 *   // connection: the READY connection, or null when the person closed the window.
 *
 * The token is a tenant token your backend signs (HS256, {workspaceKey, tenantKey}); never put
 * the workspace secret in a browser. Call ui.connect from a click handler: it opens a popup.
 * Served by agentgate itself: no CDN, no build step. Also usable as `import` via globalThis.
 */
(function (global) {
  'use strict';
  const scriptOrigin = (() => {
    try {
      return new URL(document.currentScript.src).origin;
    } catch (e) {
      return '';
    }
  })();

  class AgentgateError extends Error {
    constructor(body, status) {
      super((body && body.message) || 'agentgate request failed (' + status + ')');
      this.name = 'AgentgateError';
      this.status = status;
      this.code = body && body.error;
      this.body = body;
    }
  }

  class AgentgateClient {
    constructor(options = {}) {
      if (!options.token && !options.fetchToken) {
        throw new TypeError('AgentgateClient needs { token } or { fetchToken }');
      }
      this.apiUri = (options.apiUri || scriptOrigin || '').replace(/\/+$/, '');
      this._token = options.token || null;
      this._fetchToken = options.fetchToken || null;
      this.ui = { connect: (opts) => this._connect(opts || {}) };
      this.connections = { find: (query) => this._get('/connections', query).then((r) => r.items) };
      this.integrations = { find: (query) => this._get('/integrations', query).then((r) => r.items) };
    }

    connection(idOrKey) {
      const path = '/connections/' + encodeURIComponent(idOrKey);
      return {
        get: () => this._request('GET', path),
        archive: () => this._request('DELETE', path),
        restore: () => this._request('POST', path + '/restore'),
        refresh: () => this._request('POST', path + '/refresh'),
      };
    }

    async _token_() {
      if (this._fetchToken) return await this._fetchToken();
      return this._token;
    }

    _get(path, query) {
      const q = query ? '?' + new URLSearchParams(query).toString() : '';
      return this._request('GET', path + q);
    }

    async _request(method, path, body) {
      const headers = { Authorization: 'Bearer ' + (await this._token_()) };
      if (body !== undefined) headers['Content-Type'] = 'application/json';
      const res = await fetch(this.apiUri + path, {
        method,
        headers,
        credentials: 'omit',
        body: body === undefined ? undefined : JSON.stringify(body),
      });
      const text = await res.text();
      const parsed = text ? JSON.parse(text) : null;
      if (!res.ok) throw new AgentgateError(parsed, res.status);
      return parsed;
    }

    // Opens the connect page in a popup; resolves with the READY connection, or null if the
    // person closes the popup first. Rejects when the app refused (the error names why).
    async _connect(opts) {
      const allowed = ['integrationKey', 'integrationId', 'connectorKey', 'connectorId',
                       'connectionId', 'connectionKey', 'name'];
      const body = {};
      for (const k of allowed) if (opts[k] !== undefined) body[k] = opts[k];
      // Open the window now, inside the click, so popup blockers let it through.
      const popup = window.open('', 'agentgate-connect', 'popup,width=520,height=720');
      if (!popup) throw new Error('The browser blocked the connect window; allow popups for this site.');
      try {
        popup.document.title = 'Connecting…';
      } catch (e) { /* another origin already */ }
      let connection;
      try {
        connection = await this._request('POST', '/connections', body);
      } catch (err) {
        popup.close();
        throw err;
      }
      if (connection.state === 'READY' && !(connection.clientAction && connection.clientAction.uiUrl)) {
        popup.close();
        return connection;
      }
      if (!connection.clientAction || !connection.clientAction.uiUrl) {
        popup.close();
        throw new AgentgateError({ error: 'connection_not_ready',
          message: 'The connection is ' + connection.state +
            (connection.error ? ': ' + connection.error.message : '') }, 409);
      }
      popup.location.href = connection.clientAction.uiUrl;
      const id = connection.id;
      const origin = new URL(connection.clientAction.uiUrl).origin;
      return await new Promise((resolve, reject) => {
        let done = false;
        const finish = (fn, value) => {
          if (done) return;
          done = true;
          window.removeEventListener('message', onMessage);
          clearInterval(timer);
          // The window was ours; once it has said how it went, it has nothing left to show (and a
          // second connect then opens a window of its own instead of reusing a background one).
          try { if (!popup.closed) popup.close(); } catch (e) { /* already gone */ }
          fn(value);
        };
        const onMessage = (event) => {
          const m = event.data;
          if (event.origin !== origin || !m || m.source !== 'agentgate' || m.type !== 'connect.result') return;
          if (m.connectionId && m.connectionId !== id) return;
          if (m.ok) {
            clearInterval(timer);  // the popup closes itself now; that is not a cancel
            this.connection(id).get().then((c) => finish(resolve, c), (e) => finish(reject, e));
          } else {
            finish(reject, new AgentgateError({ error: 'connect_failed', message: m.error || 'Connecting failed' }, 400));
          }
        };
        window.addEventListener('message', onMessage);
        const timer = setInterval(() => {
          if (popup.closed) finish(resolve, null);
        }, 400);
      });
    }
  }

  global.AgentgateClient = AgentgateClient;
  global.AgentgateError = AgentgateError;
})(typeof globalThis !== 'undefined' ? globalThis : window);

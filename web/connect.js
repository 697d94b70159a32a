// The hosted connect page: asks for what a connection needs (connection fields, an API key, or
// a redirect to the app's sign-in), and after the OAuth callback reports the result to the page
// that opened it (the browser SDK) and closes itself.
'use strict';
(function () {
  const $ = (id) => document.getElementById(id);
  const resultText = $('agentgate-result').textContent.trim();
  const result = resultText && resultText !== 'null' ? JSON.parse(resultText) : null;

  function tellOpener(message) {
    // Only ids and states travel: never a credential. The SDK checks the message's source.
    if (window.opener && !window.opener.closed) {
      window.opener.postMessage(Object.assign({ source: 'agentgate', type: 'connect.result' }, message), '*');
    }
  }
  function showError(text) {
    $('message').textContent = text;
    $('message').hidden = false;
  }
  function finished(ok, connectionId, error) {
    $('form').hidden = true;
    $('title').textContent = ok ? 'Connected' : 'Not connected';
    $('intro').textContent = ok ? 'You can close this window.' : '';
    $('intro').className = ok ? 'ok' : '';
    if (!ok) showError(error || 'Connecting failed.');
    tellOpener({ ok, connectionId: connectionId || null, error: ok ? null : (error || null) });
    if (ok && window.opener) setTimeout(() => window.close(), 600);
  }

  if (result) {
    finished(!!result.ok, result.connectionId, result.error);
    return;
  }

  const session = new URLSearchParams(location.search).get('session') || '';
  if (!session) {
    $('title').textContent = 'Nothing to connect';
    $('intro').textContent = 'This page is opened by an app to connect one of your accounts.';
    return;
  }

  function input(field, prefix) {
    const wrap = document.createElement('div');
    const label = document.createElement('label');
    const el = document.createElement('input');
    el.name = prefix + field.key;
    el.id = el.name;
    label.htmlFor = el.id;
    label.textContent = field.label;
    el.type = field.secret ? 'password' : 'text';
    el.required = !!field.required;
    el.autocomplete = 'off';
    if (field.value) el.value = field.value;
    if (field.pattern) el.pattern = field.pattern;
    wrap.append(label, el);
    if (field.description) {
      const help = document.createElement('small');
      help.textContent = field.description;
      wrap.append(help);
    }
    return wrap;
  }

  fetch('/connect/session?session=' + encodeURIComponent(session), { credentials: 'omit' })
    .then(async (res) => {
      const info = await res.json();
      if (!res.ok) throw new Error(info.message || 'This connect link is not valid.');
      const c = info.connector;
      $('title').textContent = 'Connect ' + c.name;
      const fields = $('fields');
      for (const f of info.connectionFields) fields.append(input(f, 'field.'));
      for (const f of info.credentialFields) fields.append(input(f, 'credential.'));
      if (info.redirect) {
        $('intro').textContent = 'You will be sent to ' + c.host + ' to sign in and approve access.';
        $('submit').textContent = 'Continue to ' + c.name;
      } else {
        $('intro').textContent = 'Enter your ' + c.name + ' credentials. They are stored encrypted and never shown again.';
        $('submit').textContent = 'Connect';
      }
      $('form').hidden = false;
      $('form').addEventListener('submit', async (event) => {
        event.preventDefault();
        $('message').hidden = true;
        const data = new FormData($('form'));
        const values = { fields: {}, credentials: {} };
        for (const [name, value] of data.entries()) {
          if (name.startsWith('field.')) values.fields[name.slice(6)] = value;
          if (name.startsWith('credential.')) values.credentials[name.slice(11)] = value;
        }
        if (info.redirect) {
          const q = new URLSearchParams(values.fields);
          q.set('session', session);
          location.assign('/connect/authorize?' + q.toString());
          return;
        }
        $('submit').disabled = true;
        try {
          const res = await fetch('/connect/credentials', {
            method: 'POST',
            credentials: 'omit',
            headers: { 'Content-Type': 'application/json' },
            body: JSON.stringify({ session, fields: values.fields, credentials: values.credentials }),
          });
          const body = await res.json();
          if (!res.ok) throw new Error(body.message || 'Connecting failed.');
          finished(true, body.connectionId, null);
        } catch (err) {
          $('submit').disabled = false;
          showError(err.message);
        }
      });
    })
    .catch((err) => {
      $('title').textContent = 'Cannot connect';
      $('intro').textContent = '';
      showError(err.message);
    });
})();

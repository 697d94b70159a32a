// A real browser for the end-to-end tests: Debian's Chromium (apt package `chromium`, installed
// by `scripts/deps.sh test`) driven headless through npm playwright-core (no downloaded
// browser builds).
//
// launchBrowser({ executablePath } = {}) → a playwright Browser (call browser.close() when done;
//   browser.newPage() gives a page in a fresh context).
//   The executable: `executablePath`, else $AGENTGATE_E2E_CHROMIUM, else Debian's real binary
//   /usr/lib/chromium/chromium (what the /usr/bin/chromium shell wrapper execs, minus the
//   wrapper's extension flags and shell noise), else /usr/bin/chromium. Throws — tests do not
//   skip — when none exists, naming `scripts/deps.sh test`.
//   Host names other than 127.0.0.1/localhost do not resolve in this browser, so a page that
//   refers to the internet (oidc-provider's dev pages load a web font) neither waits for it nor
//   reaches out.
// chromiumPath() → the executable launchBrowser would use, or null.

import { accessSync, constants } from 'node:fs';
import { chromium } from 'playwright-core';

const CANDIDATES = ['/usr/lib/chromium/chromium', '/usr/bin/chromium'];

function executable(p) {
  try { accessSync(p, constants.X_OK); return true; } catch { return false; }
}

export function chromiumPath() {
  if (process.env.AGENTGATE_E2E_CHROMIUM) {
    return executable(process.env.AGENTGATE_E2E_CHROMIUM) ? process.env.AGENTGATE_E2E_CHROMIUM : null;
  }
  return CANDIDATES.find(executable) ?? null;
}

export async function launchBrowser({ executablePath } = {}) {
  const exe = executablePath ?? chromiumPath();
  if (!exe || !executable(exe)) {
    throw new Error(`Chromium not found (${executablePath ?? process.env.AGENTGATE_E2E_CHROMIUM ?? CANDIDATES.join(', ')}); `
      + 'install it with `scripts/deps.sh test` (Debian package chromium), or set AGENTGATE_E2E_CHROMIUM');
  }
  const args = [
    '--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1, EXCLUDE localhost',
    '--disable-dev-shm-usage',
  ];
  // Chromium refuses to run as root with its sandbox on.
  if (process.getuid?.() === 0) args.push('--no-sandbox');
  return chromium.launch({ executablePath: exe, headless: true, args, timeout: 30000 });
}

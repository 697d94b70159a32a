// One server per data directory: a second `agentgate serve` on a directory in use refuses to
// start (the in-memory index assumes it is the only writer); once the first stops, it may.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { startServer, BINARY, api } from './lib/server.mjs';

test('a second server on the same data directory refuses to start, and may once the first stops', async () => {
  const first = await startServer();
  try {
    const second = spawnSync(BINARY, ['serve', '--listen', '127.0.0.1:0', '--data-dir', first.dataDir], {
      encoding: 'utf8', timeout: 10000,
    });
    assert.equal(second.status, 1, `exit status ${second.status}: ${second.stderr}`);
    assert.match(second.stderr, /another agentgate is already serving/);
    assert.equal((await api(first.url, 'GET', '/health')).status, 200, 'the first keeps serving');
  } finally {
    assert.equal(await first.stop(), 0);
  }
  const again = await startServer({ dataDir: first.dataDir });
  try {
    assert.equal((await api(again.url, 'GET', '/health')).status, 200);
  } finally {
    assert.equal(await again.stop(), 0);
  }
});

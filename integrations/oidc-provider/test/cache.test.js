// The adapter's caches against hostile input and a stream that stops answering, in front of
// a real registry process (the binary the Rust build made, on a fresh SQLite file).

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createServer } from 'node:net';
import { createRegistryAdapter } from '../src/index.js';

const TOKEN = `cache-test-${Date.now()}-0123456789`;
const binary = process.env.REGISTRY_BIN
  ?? join(process.env.CARGO_TARGET_DIR ?? join(import.meta.dirname, '../../../target'), 'debug/client-registry');

let dir;
let child;
let url;

const freePort = () => new Promise((resolve) => {
  const server = createServer();
  server.listen(0, '127.0.0.1', () => { const { port } = server.address(); server.close(() => resolve(port)); });
});

async function eventually(what, condition, seconds = 10) {
  const deadline = Date.now() + seconds * 1000;
  while (!(await condition())) {
    assert.ok(Date.now() < deadline, `timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'registry-cache-'));
  const port = await freePort();
  url = `http://127.0.0.1:${port}`;
  child = spawn(binary, ['serve'], {
    env: {
      ...process.env,
      REGISTRY_DATABASE_URL: `sqlite://${join(dir, 'registry.db')}`,
      REGISTRY_LISTEN_ADDR: `127.0.0.1:${port}`,
      REGISTRY_ADMIN_TOKEN: TOKEN,
      REGISTRY_LOG: 'error',
      REGISTRY_SEED_DEFAULT_CLIENTS: 'false',
      REGISTRY_UI: 'false',
    },
    stdio: ['ignore', 'ignore', 'inherit'],
  });
  await eventually('the registry', async () => {
    try { return (await fetch(`${url}/readyz`)).ok; } catch { return false; }
  }, 20);
});

after(() => {
  child?.kill('SIGKILL');
  if (dir) rmSync(dir, { recursive: true, force: true });
});

test('client ids a caller makes up are bounded in memory, and ids the registry cannot hold cost no request', async () => {
  const asked = [];
  const adapter = createRegistryAdapter({
    url,
    token: TOKEN,
    maxUnknown: 50,
    fetch: (target, init) => { asked.push(String(target)); return fetch(target, init); },
  });
  try {
    await eventually('the change stream', () => adapter.isFollowing());
    const clients = new adapter('Client');
    for (let i = 0; i < 200; i += 1) assert.equal(await clients.find(`made-up-${i}`), undefined);
    const sizes = adapter.cacheSizes();
    assert.ok(sizes.unknown <= 50, JSON.stringify(sizes));
    assert.equal(sizes.clients, 0);

    const before = asked.filter((u) => u.includes('/api/v1/clients/')).length;
    // (an https URL without query or fragment may be a client ID metadata document: asked)
    const urls = ['http://evil.example/cb', 'https://evil.example/cb#x', 'https://evil.example/cb?x', `https://evil.example/${'x'.repeat(300)}`];
    for (const id of ['x'.repeat(4096), 'has space', ...urls, '', '../admin']) {
      assert.equal(await clients.find(id), undefined);
    }
    assert.equal(asked.filter((u) => u.includes('/api/v1/clients/')).length, before, 'never asked the registry');
  } finally {
    adapter.stop();
  }
});

test('a change stream that hangs without an error stops being trusted', async () => {
  let hang = false;
  const adapter = createRegistryAdapter({
    url,
    token: TOKEN,
    waitSeconds: 1,
    fetch: (target, init) => (hang && String(target).includes('/api/v1/events')
      ? new Promise(() => {}) // a connection that never answers nor fails
      : fetch(target, init)),
  });
  try {
    await eventually('the change stream', () => adapter.isFollowing());
    hang = true;
    // Trusted at most `waitSeconds` + 2 s after its last answer.
    await eventually('the stream to be distrusted', () => !adapter.isFollowing(), 8);
  } finally {
    adapter.stop();
  }
});

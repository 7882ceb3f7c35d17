// A real oidc-provider backed by a real registry process (the binary the Rust build made,
// on a fresh SQLite file): token requests as an application sends them.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createServer } from 'node:net';
import Provider from 'oidc-provider';
import { createRegistryAdapter, registryProviderConfig, useRegistrySecrets } from '../src/index.js';

const TOKEN = `adapter-test-${Date.now()}-0123456789`;
const binary = process.env.REGISTRY_BIN
  ?? join(process.env.CARGO_TARGET_DIR ?? join(import.meta.dirname, '../../../target'), 'debug/client-registry');

async function freePort() {
  return new Promise((resolve) => {
    const server = createServer();
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address();
      server.close(() => resolve(port));
    });
  });
}

const processes = [];
let dir;

/** A registry process on the shared SQLite file. */
async function registry(fixedPort) {
  const port = fixedPort ?? await freePort();
  const child = spawn(binary, ['serve'], {
    env: {
      ...process.env,
      REGISTRY_DATABASE_URL: `sqlite://${join(dir, 'registry.db')}`,
      REGISTRY_LISTEN_ADDR: `127.0.0.1:${port}`,
      REGISTRY_ADMIN_TOKEN: TOKEN,
      REGISTRY_LOG: 'warn',
      REGISTRY_SHUTDOWN_GRACE_SECONDS: '0',
      REGISTRY_SEED_DEFAULT_CLIENTS: 'false',
      REGISTRY_UI: 'false',
    },
    stdio: ['ignore', 'ignore', 'inherit'],
  });
  processes.push(child);
  const url = `http://127.0.0.1:${port}`;
  for (let i = 0; i < 200; i += 1) {
    try {
      if ((await fetch(`${url}/readyz`)).ok) return { url, child, port };
    } catch { /* not yet */ }
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error('the registry did not start');
}

async function api(url, method, path, body) {
  const response = await fetch(`${url}${path}`, {
    method,
    headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json' },
    body: body && JSON.stringify(body),
  });
  const text = await response.text();
  return { status: response.status, etag: response.headers.get('etag'), body: text ? JSON.parse(text) : null };
}

function serviceClient(clientId) {
  return {
    client_id: clientId,
    client_name: 'Billing worker',
    client_uri: null,
    require_client_secret: true,
    enabled: true,
    offline_access: false,
    require_pkce: true,
    grant_types: ['client_credentials'],
    redirect_uris: [],
    post_logout_redirect_uris: [],
    allowed_cors_origins: [],
    allowed_scopes: ['octo_api'],
  };
}

async function provider(registryUrl) {
  const port = await freePort();
  const issuer = `http://127.0.0.1:${port}`;
  const adapter = createRegistryAdapter({ url: registryUrl, token: TOKEN, waitSeconds: 5 });
  const config = registryProviderConfig();
  const oidc = new Provider(issuer, {
    adapter,
    ...config,
    scopes: ['openid', 'offline_access', 'octo_api'],
    features: { clientCredentials: { enabled: true }, devInteractions: { enabled: true } },
  });
  useRegistrySecrets(oidc, adapter);
  const server = oidc.listen(port);
  await new Promise((r) => server.once('listening', r));
  for (let i = 0; i < 100 && !adapter.isFollowing(); i += 1) await new Promise((r) => setTimeout(r, 50));
  return { issuer, adapter, close: () => { adapter.stop(); server.close(); } };
}

async function token(issuer, clientId, secret) {
  const response = await fetch(`${issuer}/token`, {
    method: 'POST',
    headers: {
      authorization: `Basic ${Buffer.from(`${encodeURIComponent(clientId)}:${encodeURIComponent(secret)}`).toString('base64')}`,
      'content-type': 'application/x-www-form-urlencoded',
    },
    body: new URLSearchParams({ grant_type: 'client_credentials', scope: 'octo_api' }),
  });
  return { status: response.status, body: await response.json() };
}

async function eventually(what, condition, seconds = 10) {
  const deadline = Date.now() + seconds * 1000;
  while (!(await condition())) {
    assert.ok(Date.now() < deadline, `timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

let a;
let b;
let idp;

before(async () => {
  assert.ok(existsSync(binary), `the registry binary ${binary} (build it with cargo build)`);
  dir = mkdtempSync(join(tmpdir(), 'registry-adapter-'));
  a = await registry();
  b = await registry();
  idp = await provider(b.url);
});

after(() => {
  idp?.close();
  for (const child of processes) child.kill('SIGKILL');
  if (dir) rmSync(dir, { recursive: true, force: true });
});

test('client_credentials: a token with the right secret, invalid_client with a wrong one or an unknown client', async () => {
  const created = await api(a.url, 'POST', '/api/v1/clients', serviceClient('billing'));
  assert.equal(created.status, 201);
  const secret = created.body.client_secret;
  for (let i = 0; i < 3; i += 1) {
    const issued = await token(idp.issuer, 'billing', secret);
    assert.equal(issued.status, 200, JSON.stringify(issued.body));
    assert.equal(issued.body.token_type, 'Bearer');
    assert.equal(issued.body.scope, 'octo_api');
  }
  const wrong = await token(idp.issuer, 'billing', 'not-the-secret-0123456789');
  assert.equal(wrong.status, 401);
  assert.equal(wrong.body.error, 'invalid_client');
  const unknown = await token(idp.issuer, 'nobody', secret);
  assert.equal(unknown.body.error, 'invalid_client');
});

test('disable, delete and rotate through another registry process are effective on the next requests', async () => {
  const created = await api(a.url, 'POST', '/api/v1/clients', serviceClient('rotating'));
  const first = created.body.client_secret;
  assert.equal((await token(idp.issuer, 'rotating', first)).status, 200);

  // Rotated with a grace: both valid; rotated again without: the old ones refused.
  const rotated = await api(a.url, 'POST', '/api/v1/clients/rotating/secret', { previous_secret_valid_for: 3600 });
  assert.equal(rotated.status, 200);
  const second = rotated.body.client_secret;
  await eventually('the new secret', async () => (await token(idp.issuer, 'rotating', second)).status === 200);
  assert.equal((await token(idp.issuer, 'rotating', first)).status, 200, 'the old secret in its grace');
  const third = (await api(a.url, 'POST', '/api/v1/clients/rotating/secret')).body.client_secret;
  await eventually('the old secrets refused', async () => (await token(idp.issuer, 'rotating', first)).status === 401);
  assert.equal((await token(idp.issuer, 'rotating', second)).status, 401);
  assert.equal((await token(idp.issuer, 'rotating', third)).status, 200);

  // Disabled: unknown to the provider; enabled again: back.
  const body = serviceClient('rotating');
  body.enabled = false;
  const current = await api(a.url, 'GET', '/api/v1/clients/rotating');
  const put = await fetch(`${a.url}/api/v1/clients/rotating`, {
    method: 'PUT',
    headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json', 'if-match': current.etag },
    body: JSON.stringify(body),
  });
  assert.equal(put.status, 200);
  await eventually('the disabled client refused', async () => (await token(idp.issuer, 'rotating', third)).status === 401);

  // Deleted and registered again with the same id: the old secret is never valid again.
  assert.equal((await api(a.url, 'DELETE', '/api/v1/clients/rotating')).status, 204);
  const again = await api(a.url, 'POST', '/api/v1/clients', serviceClient('rotating'));
  assert.equal(again.status, 201);
  await eventually('the new registration', async () => (await token(idp.issuer, 'rotating', again.body.client_secret)).status === 200);
  assert.equal((await token(idp.issuer, 'rotating', third)).status, 401);
});

test('the registry unreachable: a clean 503 from the provider, and it recovers', async () => {
  const created = await api(a.url, 'POST', '/api/v1/clients', serviceClient('outage'));
  const secret = created.body.client_secret;
  // A provider of its own behind a registry process that will go away.
  const lone = await registry();
  const lonely = await provider(lone.url);
  try {
    assert.equal((await token(lonely.issuer, 'outage', secret)).status, 200);
    lone.child.kill('SIGKILL');
    await new Promise((r) => lone.child.once('exit', r));
    // Past the fallback TTL nothing cached is trusted: the provider says it cannot serve.
    await eventually('a 503 while the registry is down', async () => {
      const answer = await token(lonely.issuer, 'outage', secret);
      return answer.status === 503 || answer.status === 500;
    });
    const answer = await token(lonely.issuer, 'outage', secret);
    assert.equal(answer.body.error, 'server_error');
    // The registry back on the same address: the provider serves again by itself.
    await registry(lone.port);
    await eventually('the provider to recover', async () => (await token(lonely.issuer, 'outage', secret)).status === 200, 20);
  } finally {
    lonely.close();
  }
  // The other provider, on a registry that is up, still serves.
  assert.equal((await token(idp.issuer, 'outage', secret)).status, 200);
});

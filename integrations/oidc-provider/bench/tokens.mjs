// Benchmark: client_credentials tokens/s through oidc-provider with the client in the
// registry (this adapter) against the same provider with the client in memory, at 1 and 8
// connections, in one run; `/secret/verify` of an already verified secret; and the time from
// a DELETE acknowledged by registry process A to the first refused token request at a
// provider whose adapter talks to process B. Prints one JSON document; `registry-bench
// --only identity` runs it and puts its figures in its table (BENCHMARKS.md).
//
//   cargo build --release -p client-registry --bin client-registry
//   REGISTRY_BIN=$CARGO_TARGET_DIR/release/client-registry node bench/tokens.mjs [seconds]

import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createServer } from 'node:net';
import Provider from 'oidc-provider';
import { createRegistryAdapter, registryProviderConfig, useRegistrySecrets } from '../src/index.js';

const TOKEN = `bench-${Date.now()}-0123456789`;
const SECONDS = Number(process.argv[2] ?? 5);
const binary = process.env.REGISTRY_BIN;
if (!binary) throw new Error('set REGISTRY_BIN to the registry binary');
const dir = mkdtempSync(join(tmpdir(), 'registry-bench-'));
const database = process.env.REGISTRY_DATABASE_URL ?? `sqlite://${join(dir, 'registry.db')}`;
const children = [];

const freePort = () => new Promise((resolve) => {
  const server = createServer();
  server.listen(0, '127.0.0.1', () => { const { port } = server.address(); server.close(() => resolve(port)); });
});

async function registry() {
  const port = await freePort();
  const child = spawn(binary, ['serve'], {
    env: { ...process.env, REGISTRY_DATABASE_URL: database, REGISTRY_LISTEN_ADDR: `127.0.0.1:${port}`,
      REGISTRY_ADMIN_TOKEN: TOKEN, REGISTRY_LOG: 'error', REGISTRY_SEED_DEFAULT_CLIENTS: 'false', REGISTRY_UI: 'false' },
    // Its files (the sealed log's key, for PostgreSQL) in the run's own folder.
    cwd: dir,
    stdio: ['ignore', 'ignore', 'inherit'],
  });
  children.push(child);
  const url = `http://127.0.0.1:${port}`;
  for (let i = 0; i < 300; i += 1) {
    try { if ((await fetch(`${url}/readyz`)).ok) return url; } catch { /* starting */ }
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error('registry did not start');
}

const api = async (url, method, path, body) => {
  const response = await fetch(`${url}${path}`, { method, headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json' }, body: body && JSON.stringify(body) });
  const text = await response.text();
  return { status: response.status, body: text ? JSON.parse(text) : null };
};

async function provider(options, adapter) {
  const port = await freePort();
  const issuer = `http://127.0.0.1:${port}`;
  const oidc = new Provider(issuer, {
    ...options,
    scopes: ['octo_api'],
    features: { clientCredentials: { enabled: true }, devInteractions: { enabled: false } },
  });
  if (adapter) useRegistrySecrets(oidc, adapter);
  const server = oidc.listen(port);
  await new Promise((r) => server.once('listening', r));
  return { issuer, server };
}

function tokenRequest(issuer, clientId, secret) {
  return fetch(`${issuer}/token`, {
    method: 'POST',
    headers: { authorization: `Basic ${Buffer.from(`${clientId}:${secret}`).toString('base64')}`, 'content-type': 'application/x-www-form-urlencoded' },
    body: 'grant_type=client_credentials&scope=octo_api',
  }).then(async (r) => { await r.arrayBuffer(); return r.status; });
}

async function load(connections, once) {
  const latencies = [];
  let errors = 0;
  const end = performance.now() + SECONDS * 1000;
  await Promise.all(Array.from({ length: connections }, async () => {
    while (performance.now() < end) {
      const start = performance.now();
      const status = await once();
      latencies.push(performance.now() - start);
      if (status !== 200) errors += 1;
    }
  }));
  latencies.sort((x, y) => x - y);
  const at = (q) => latencies[Math.min(latencies.length - 1, Math.floor(q * latencies.length))].toFixed(2);
  return { perSecond: Math.round(latencies.length / SECONDS), p50: at(0.5), p99: at(0.99), errors };
}

try {
  const a = await registry();
  const b = await registry();
  const body = (id) => ({
    client_id: id, client_name: 'Bench', client_uri: null, require_client_secret: true, enabled: true,
    offline_access: false, require_pkce: true, grant_types: ['client_credentials'], redirect_uris: [],
    post_logout_redirect_uris: [], allowed_cors_origins: [], allowed_scopes: ['octo_api'],
  });
  const created = await api(a, 'POST', '/api/v1/clients', body('bench'));
  const secret = created.body.client_secret;
  const adapter = createRegistryAdapter({ url: b, token: TOKEN });
  const backed = await provider({ adapter, ...registryProviderConfig() }, adapter);
  const memory = await provider({
    clients: [{ client_id: 'bench', client_secret: secret, grant_types: ['client_credentials'], response_types: [], redirect_uris: [], scope: 'octo_api' }],
  });
  for (let i = 0; i < 50 && !adapter.isFollowing(); i += 1) await new Promise((r) => setTimeout(r, 100));
  // Warm both (the first registry-backed request pays one argon2id).
  for (let i = 0; i < 50; i += 1) { await tokenRequest(backed.issuer, 'bench', secret); await tokenRequest(memory.issuer, 'bench', secret); }

  const rows = [];
  for (const connections of [1, 8]) {
    const inMemory = await load(connections, () => tokenRequest(memory.issuer, 'bench', secret));
    const registryBacked = await load(connections, () => tokenRequest(backed.issuer, 'bench', secret));
    rows.push({ connections, inMemory, registryBacked, ratio: `${Math.round((100 * registryBacked.perSecond) / inMemory.perSecond)} %` });
  }
  const verify = await load(8, () => fetch(`${b}/api/v1/clients/bench/secret/verify`, {
    method: 'POST', headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json' }, body: JSON.stringify({ client_secret: secret }),
  }).then(async (r) => { await r.arrayBuffer(); return r.status; }));

  // DELETE through A, acknowledged → first refusal at the provider behind B.
  const deletions = [];
  for (let round = 0; round < 5; round += 1) {
    const id = `gone-${round}`;
    const made = await api(a, 'POST', '/api/v1/clients', body(id));
    const s = made.body.client_secret;
    while (await tokenRequest(backed.issuer, id, s) !== 200) await new Promise((r) => setTimeout(r, 10));
    for (let i = 0; i < 5; i += 1) await tokenRequest(backed.issuer, id, s);
    const deleted = await api(a, 'DELETE', `/api/v1/clients/${id}`);
    if (deleted.status !== 204) throw new Error(`delete ${deleted.status}`);
    const acknowledged = performance.now();
    while (await tokenRequest(backed.issuer, id, s) === 200) { /* still accepted */ }
    deletions.push(Math.round(performance.now() - acknowledged));
  }
  console.log(JSON.stringify({ seconds: SECONDS, database: database.split(':')[0], tokens: rows, verifyCached8: verify, deleteToRefusalMs: deletions }, null, 2));
  adapter.stop();
  backed.server.close();
  memory.server.close();
} finally {
  for (const child of children) child.kill('SIGKILL');
  rmSync(dir, { recursive: true, force: true });
}
process.exit(0);

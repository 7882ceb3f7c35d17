// A real oidc-provider backed by a real registry process (the binary the Rust build made,
// on a fresh SQLite file): token requests as an application sends them.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, existsSync, readFileSync } from 'node:fs';
import { createServer as createHttpsServer } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createServer } from 'node:net';
import { createHash, randomBytes } from 'node:crypto';
import Provider from 'oidc-provider';
import * as openid from 'openid-client';
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

const TLS = join(import.meta.dirname, '../../../tests/fixtures/tls');
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
      REGISTRY_DYNAMIC_REGISTRATION: 'true',
      // Client ID metadata documents from the test's own https server (a test CA).
      REGISTRY_CLIENT_ID_DOCUMENTS: 'localhost',
      REGISTRY_CLIENT_ID_DOCUMENT_PRIVATE_ADDRESSES: 'true',
      REGISTRY_CLIENT_ID_DOCUMENT_CA_FILE: join(TLS, 'ca.pem'),
      REGISTRY_CLIENT_ID_DOCUMENT_MIN_SECONDS: '0',
      // A machine client described by a document (the default allows browser flows only).
      REGISTRY_CLIENT_ID_DOCUMENT_GRANT_TYPES: 'authorization_code refresh_token client_credentials',
      REGISTRY_CLIENT_ID_DOCUMENT_SCOPES: 'openid octo_api',
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

async function provider(registryUrl, options = {}) {
  const port = await freePort();
  const issuer = `http://127.0.0.1:${port}`;
  const adapter = createRegistryAdapter({ url: registryUrl, token: TOKEN, waitSeconds: 5, ...options });
  const config = registryProviderConfig();
  const oidc = new Provider(issuer, {
    adapter,
    ...config,
    scopes: ['openid', 'offline_access', 'octo_api'],
    // Clients register at the registry (RFC 7591): the provider's discovery says where.
    discovery: { registration_endpoint: `${registryUrl}/register` },
    features: {
      clientCredentials: { enabled: true },
      devInteractions: { enabled: true },
      deviceFlow: { enabled: true },
    },
  });
  useRegistrySecrets(oidc, adapter);
  const server = oidc.listen(port);
  await new Promise((r) => server.once('listening', r));
  for (let i = 0; i < 100 && !adapter.isFollowing(); i += 1) await new Promise((r) => setTimeout(r, 50));
  return { issuer, adapter, oidc, close: () => { adapter.stop(); server.close(); } };
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

test('several registry processes behind one address: a rotation is refused once every process heard of it', async () => {
  // The change stream comes from B, verifications from C (as a load balancer may send them):
  // C may still find the old secret in its memory for a moment after B told of the rotation.
  const c = await registry();
  const balanced = await provider(b.url, {
    fetch: (url, init) => fetch(String(url).includes('/secret/verify') ? String(url).replace(b.url, c.url) : url, init),
  });
  try {
    const created = await api(a.url, 'POST', '/api/v1/clients', serviceClient('balanced'));
    const secret = created.body.client_secret;
    await eventually('the new client', async () => (await token(balanced.issuer, 'balanced', secret)).status === 200);
    for (let i = 0; i < 5; i += 1) assert.equal((await token(balanced.issuer, 'balanced', secret)).status, 200);
    // C remembers it now (a second verification there is answered from its memory).
    assert.equal((await api(c.url, 'POST', '/api/v1/clients/balanced/secret/verify', { client_secret: secret })).body.valid, true);

    assert.equal((await api(a.url, 'POST', '/api/v1/clients/balanced/secret')).status, 200);
    await eventually('the old secret refused', async () => (await token(balanced.issuer, 'balanced', secret)).status === 401);
    // And it stays refused: no answer C gave before it heard of the rotation was kept.
    await new Promise((r) => setTimeout(r, 2500));
    for (let i = 0; i < 3; i += 1) assert.equal((await token(balanced.issuer, 'balanced', secret)).status, 401);
  } finally {
    balanced.close();
    c.child.kill('SIGKILL');
  }
});

function webClient(clientId) {
  return {
    ...serviceClient(clientId),
    client_name: 'Studio',
    offline_access: true,
    grant_types: ['authorization_code', 'refresh_token', 'urn:ietf:params:oauth:grant-type:device_code'],
    redirect_uris: ['https://studio.example.com/callback'],
    allowed_scopes: ['openid', 'octo_api'],
  };
}

/** A user agent: cookies, redirects followed by hand, the dev interactions answered. */
class Browser {
  constructor() { this.cookies = new Map(); }
  cookieHeader() { return [...this.cookies].map(([k, v]) => `${k}=${v}`).join('; '); }
  keep(response) {
    for (const line of response.headers.getSetCookie()) {
      const [pair] = line.split(';');
      const [name, ...value] = pair.split('=');
      this.cookies.set(name.trim(), value.join('='));
    }
  }
  async request(url, { method = 'GET', form } = {}) {
    const response = await fetch(url, {
      method,
      redirect: 'manual',
      headers: {
        cookie: this.cookieHeader(),
        ...(form ? { 'content-type': 'application/x-www-form-urlencoded' } : {}),
      },
      body: form && new URLSearchParams(form),
    });
    this.keep(response);
    return response;
  }
  /** Follows redirects from `url`, logging in and consenting, until one leaves `issuer`. */
  async walk(issuer, url, first = {}) {
    let response = await this.request(url, first);
    for (let hop = 0; hop < 20; hop += 1) {
      const location = response.headers.get('location');
      if (location) {
        const next = new URL(location, issuer);
        if (next.origin !== new URL(issuer).origin) return next;
        response = await this.request(next.href);
        continue;
      }
      const page = await response.text();
      const at = new URL(response.url || url, issuer);
      const prompt = /name="prompt" value="(\w+)"/.exec(page)?.[1];
      const action = /<form[^>]*action="([^"]+)"/.exec(page)?.[1];
      const xsrf = /name="xsrf" value="([^"]+)"/.exec(page)?.[1];
      if (prompt === 'login') {
        response = await this.request(new URL(action, issuer).href, { method: 'POST', form: { prompt: 'login', login: 'ada', password: 'any' } });
      } else if (prompt === 'consent') {
        response = await this.request(new URL(action, issuer).href, { method: 'POST', form: { prompt: 'consent' } });
      } else if (xsrf && /name="confirm"/.test(page)) {
        const userCode = /name="user_code" value="([^"]+)"/.exec(page)?.[1];
        response = await this.request(new URL(action ?? '/device', issuer).href, { method: 'POST', form: { xsrf, user_code: userCode, confirm: 'yes' } });
      } else {
        return { page, status: response.status, at };
      }
    }
    throw new Error('too many hops');
  }
}

async function tokenRequest(issuer, clientId, secret, form) {
  const response = await fetch(`${issuer}/token`, {
    method: 'POST',
    headers: {
      authorization: `Basic ${Buffer.from(`${clientId}:${encodeURIComponent(secret)}`).toString('base64')}`,
      'content-type': 'application/x-www-form-urlencoded',
    },
    body: new URLSearchParams(form),
  });
  return { status: response.status, body: await response.json() };
}

test('authorization_code with PKCE, then refresh_token', async () => {
  const created = await api(a.url, 'POST', '/api/v1/clients', webClient('studio'));
  assert.equal(created.status, 201, JSON.stringify(created.body));
  const secret = created.body.client_secret;
  const verifier = randomBytes(32).toString('base64url');
  const challenge = createHash('sha256').update(verifier).digest('base64url');
  const authorize = new URL(`${idp.issuer}/auth`);
  authorize.search = new URLSearchParams({
    client_id: 'studio',
    response_type: 'code',
    redirect_uri: 'https://studio.example.com/callback',
    scope: 'openid octo_api offline_access',
    prompt: 'consent',
    code_challenge: challenge,
    code_challenge_method: 'S256',
    state: 'xyz',
  }).toString();

  // Without PKCE the provider refuses (the registry says it is required).
  const bare = new URL(authorize);
  bare.searchParams.delete('code_challenge');
  bare.searchParams.delete('code_challenge_method');
  const refused = await new Browser().walk(idp.issuer, bare.href);
  assert.ok(refused.searchParams?.get('error') ?? /error/.test(refused.page), 'PKCE required');

  const back = await new Browser().walk(idp.issuer, authorize.href);
  assert.equal(back.origin, 'https://studio.example.com', JSON.stringify(back.page ?? back));
  const code = back.searchParams.get('code');
  assert.ok(code, back.href);
  const wrongVerifier = await tokenRequest(idp.issuer, 'studio', secret, {
    grant_type: 'authorization_code', code, redirect_uri: 'https://studio.example.com/callback', code_verifier: 'x'.repeat(43),
  });
  assert.equal(wrongVerifier.body.error, 'invalid_grant');

  const back2 = await new Browser().walk(idp.issuer, authorize.href);
  const issued = await tokenRequest(idp.issuer, 'studio', secret, {
    grant_type: 'authorization_code', code: back2.searchParams.get('code'), redirect_uri: 'https://studio.example.com/callback', code_verifier: verifier,
  });
  assert.equal(issued.status, 200, JSON.stringify(issued.body));
  assert.ok(issued.body.id_token && issued.body.access_token);
  assert.ok(issued.body.refresh_token, `offline access gives a refresh token: ${JSON.stringify(issued.body)}`);

  const refreshed = await tokenRequest(idp.issuer, 'studio', secret, {
    grant_type: 'refresh_token', refresh_token: issued.body.refresh_token,
  });
  assert.equal(refreshed.status, 200, JSON.stringify(refreshed.body));
  assert.ok(refreshed.body.access_token);

  // Rotated through the other process without a grace: the refresh with the old secret fails.
  const rotated = await api(a.url, 'POST', '/api/v1/clients/studio/secret');
  assert.equal(rotated.status, 200);
  let last;
  await eventually('the old secret refused', async () => {
    last = await tokenRequest(idp.issuer, 'studio', secret, {
      grant_type: 'refresh_token', refresh_token: refreshed.body.refresh_token ?? issued.body.refresh_token,
    });
    return last.body.error === 'invalid_client';
  }).catch(async (error) => {
    const registryB = await api(b.url, 'POST', '/api/v1/clients/studio/secret/verify', { client_secret: secret });
    const registryA = await api(a.url, 'POST', '/api/v1/clients/studio/secret/verify', { client_secret: secret });
    throw new Error(`${error.message}: ${last.status} ${last.body.error}; B says ${JSON.stringify(registryB.body)}, A says ${JSON.stringify(registryA.body)}, stream following: ${idp.adapter.isFollowing()}`);
  });
});

test('device_code: a device asks, a user approves, the device gets its token', async () => {
  const created = await api(a.url, 'POST', '/api/v1/clients', webClient('tv'));
  assert.equal(created.status, 201, JSON.stringify(created.body));
  const secret = created.body.client_secret;
  const started = await fetch(`${idp.issuer}/device/auth`, {
    method: 'POST',
    headers: {
      authorization: `Basic ${Buffer.from(`tv:${encodeURIComponent(secret)}`).toString('base64')}`,
      'content-type': 'application/x-www-form-urlencoded',
    },
    body: new URLSearchParams({ scope: 'openid octo_api' }),
  });
  const device = await started.json();
  assert.equal(started.status, 200, JSON.stringify(device));
  const pending = await tokenRequest(idp.issuer, 'tv', secret, {
    grant_type: 'urn:ietf:params:oauth:grant-type:device_code', device_code: device.device_code,
  });
  assert.equal(pending.body.error, 'authorization_pending');

  const browser = new Browser();
  const form = await (await browser.request(`${idp.issuer}/device`)).text();
  const xsrf = /name="xsrf" value="([^"]+)"/.exec(form)?.[1];
  assert.ok(xsrf, form);
  const done = await browser.walk(idp.issuer, `${idp.issuer}/device`, {
    method: 'POST', form: { xsrf, user_code: device.user_code },
  });
  assert.equal(done.status, 200, done.page);
  const issued = await tokenRequest(idp.issuer, 'tv', secret, {
    grant_type: 'urn:ietf:params:oauth:grant-type:device_code', device_code: device.device_code,
  });
  assert.equal(issued.status, 200, JSON.stringify(issued.body));
  assert.ok(issued.body.access_token);
});

test('a native app with a private-use scheme, and a client\'s pages, reach the provider', async () => {
  const native = {
    ...serviceClient('native-cli'),
    client_name: 'Partner CLI',
    require_client_secret: false,
    grant_types: ['authorization_code'],
    redirect_uris: ['com.example.cli:/callback', 'http://127.0.0.1/callback'],
    allowed_scopes: ['openid'],
    application_type: 'native',
    logo_uri: 'https://partner.example.com/logo.png',
    policy_uri: 'https://partner.example.com/privacy',
    contacts: ['identity@partner.example.com'],
  };
  assert.equal((await api(a.url, 'POST', '/api/v1/clients', native)).status, 201);
  const client = await idp.oidc.Client.find('native-cli');
  assert.ok(client, 'the provider accepts the native client');
  assert.equal(client.applicationType, 'native');
  assert.equal(client.logoUri, 'https://partner.example.com/logo.png');
  assert.equal(client.policyUri, 'https://partner.example.com/privacy');
  assert.deepEqual(client.redirectUris, native.redirect_uris);

  // Described as a web app, the provider refuses the private-use scheme.
  const web = { ...native, client_id: 'web-cli', application_type: 'web' };
  assert.equal((await api(a.url, 'POST', '/api/v1/clients', web)).status, 201);
  await assert.rejects(idp.oidc.Client.find('web-cli'), (e) => e.error === 'invalid_redirect_uri'
    && /web uris/.test(e.error_description));
});

test('client_secret_post: the method reaches the provider, and the secret in the body works', async () => {
  const created = await api(a.url, 'POST', '/api/v1/clients', {
    ...serviceClient('posting'),
    token_endpoint_auth_method: 'client_secret_post',
  });
  assert.equal(created.status, 201);
  assert.equal(created.body.token_endpoint_auth_method, 'client_secret_post');
  const client = await idp.oidc.Client.find('posting');
  assert.equal(client.tokenEndpointAuthMethod, 'client_secret_post');
  const posted = await fetch(`${idp.issuer}/token`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({
      grant_type: 'client_credentials', scope: 'octo_api', client_id: 'posting', client_secret: created.body.client_secret,
    }),
  });
  assert.equal(posted.status, 200, await posted.clone().text());
  const wrong = await fetch(`${idp.issuer}/token`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({
      grant_type: 'client_credentials', scope: 'octo_api', client_id: 'posting', client_secret: 'wrong-secret-0123456789',
    }),
  });
  assert.equal(wrong.status, 401);
});

/** A P-256 key pair: the private key for openid-client, the public JWK to register. */
async function signingKey(kid) {
  const { privateKey, publicKey } = await crypto.subtle.generateKey({ name: 'ECDSA', namedCurve: 'P-256' }, false, ['sign', 'verify']);
  const jwk = await crypto.subtle.exportKey('jwk', publicKey);
  return { key: { key: privateKey, kid }, jwk: { kty: jwk.kty, crv: jwk.crv, x: jwk.x, y: jwk.y, kid, alg: 'ES256', use: 'sig' } };
}

async function keyClientToken(kid, privateKey, clientId = 'signing-worker') {
  const config = await openid.discovery(new URL(idp.issuer), clientId, {}, openid.PrivateKeyJwt(privateKey), {
    execute: [openid.allowInsecureRequests],
  });
  return openid.clientCredentialsGrant(config, { scope: 'octo_api' });
}

test('private_key_jwt: openid-client signs with a key it registered; the registry holds no secret; a replaced key is refused', async () => {
  const first = await signingKey('k1');
  const created = await api(a.url, 'POST', '/api/v1/clients', {
    ...serviceClient('signing-worker'),
    token_endpoint_auth_method: 'private_key_jwt',
    jwks: { keys: [first.jwk] },
  });
  assert.equal(created.status, 201, JSON.stringify(created.body));
  assert.equal(created.body.client_secret, undefined, 'no secret issued');
  assert.deepEqual(created.body.secrets, []);
  assert.deepEqual(created.body.jwks.keys.map((k) => k.kid), ['k1']);

  const issued = await keyClientToken('k1', first.key);
  assert.equal(issued.token_type.toLowerCase(), 'bearer');
  assert.equal(issued.scope, 'octo_api');
  // Secret-based authentication does not work for it: there is no secret to guess.
  assert.equal((await token(idp.issuer, 'signing-worker', 'any-secret-0123456789')).status, 401);

  // The key replaced through another registry process: the old key is refused, the new one works.
  const second = await signingKey('k2');
  const patched = await fetch(`${a.url}/api/v1/clients/signing-worker`, {
    method: 'PATCH',
    headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/merge-patch+json' },
    body: JSON.stringify({ jwks: { keys: [second.jwk] } }),
  });
  assert.equal(patched.status, 200, await patched.clone().text());
  await eventually('the replaced key refused', async () => {
    try { await keyClientToken('k1', first.key); return false; } catch (e) { return e.error === 'invalid_client'; }
  });
  const again = await keyClientToken('k2', second.key);
  assert.equal(again.scope, 'octo_api');
});

async function initialAccessToken(uses) {
  const created = await api(a.url, 'POST', '/api/v1/initial-access-tokens', {
    description: 'openid-client test', max_uses: uses, policy: { grant_types: ['client_credentials'], scopes: ['octo_api'] },
  });
  assert.equal(created.status, 201, JSON.stringify(created.body));
  return created.body.initial_access_token;
}

test('dynamic registration: openid-client registers with an initial access token, manages itself through RFC 7592, and gets tokens', async () => {
  const iat = await initialAccessToken(2);
  const config = await openid.dynamicClientRegistration(new URL(idp.issuer), {
    client_name: 'Self-registered worker', grant_types: ['client_credentials'], scope: 'octo_api',
    token_endpoint_auth_method: 'client_secret_basic', redirect_uris: [],
  }, undefined, { initialAccessToken: iat, execute: [openid.allowInsecureRequests] });
  const registered = config.clientMetadata();
  assert.ok(registered.client_secret, 'a secret, once');
  assert.equal(registered.client_secret_expires_at, 0);
  const issued = await openid.clientCredentialsGrant(config, { scope: 'octo_api' });
  assert.equal(issued.scope, 'octo_api');

  // RFC 7592 with the registration access token: read, replace (a new token), the old one refused.
  const uri = registered.registration_client_uri;
  assert.ok(uri.startsWith(b.url), uri);
  const auth = (token) => ({ authorization: `Bearer ${token}`, 'content-type': 'application/json' });
  const read = await fetch(uri, { headers: auth(registered.registration_access_token) });
  assert.equal(read.status, 200);
  assert.equal((await read.json()).client_name, 'Self-registered worker');
  const put = await fetch(uri, {
    method: 'PUT', headers: auth(registered.registration_access_token),
    body: JSON.stringify({ client_id: registered.client_id, client_name: 'Renamed worker', grant_types: ['client_credentials'], scope: 'octo_api' }),
  });
  assert.equal(put.status, 200, await put.clone().text());
  const replaced = await put.json();
  assert.notEqual(replaced.registration_access_token, registered.registration_access_token);
  assert.equal((await fetch(uri, { headers: auth(registered.registration_access_token) })).status, 401);
  // The secret it registered with still works; the change reached the provider.
  await eventually('the new name at the provider', async () => (await idp.oidc.Client.find(registered.client_id))?.clientName === 'Renamed worker');
  assert.equal((await openid.clientCredentialsGrant(config, { scope: 'octo_api' })).scope, 'octo_api');
  // Outside the token's policy: RFC 7591's error, nothing registered.
  await assert.rejects(
    openid.dynamicClientRegistration(new URL(idp.issuer), { client_name: 'Wants more', grant_types: ['authorization_code'], redirect_uris: ['https://a.example/cb'] },
      undefined, { initialAccessToken: iat, execute: [openid.allowInsecureRequests] }),
    (e) => e.error === 'invalid_client_metadata',
  );
});

test('dynamic registration with private_key_jwt: openid-client registers its own public key and signs with it', async () => {
  const iat = await initialAccessToken(1);
  const { key, jwk } = await signingKey('dyn-1');
  const config = await openid.dynamicClientRegistration(new URL(idp.issuer), {
    client_name: 'Key worker', grant_types: ['client_credentials'], scope: 'octo_api',
    token_endpoint_auth_method: 'private_key_jwt', jwks: { keys: [jwk] },
  }, openid.PrivateKeyJwt(key), { initialAccessToken: iat, execute: [openid.allowInsecureRequests] });
  const registered = config.clientMetadata();
  assert.equal(registered.client_secret, undefined, 'no secret for a key client');
  assert.equal(registered.token_endpoint_auth_method, 'private_key_jwt');
  const issued = await openid.clientCredentialsGrant(config, { scope: 'octo_api' });
  assert.equal(issued.scope, 'octo_api');
  // The token is used up.
  await assert.rejects(
    openid.dynamicClientRegistration(new URL(idp.issuer), { client_name: 'Again', grant_types: ['client_credentials'], scope: 'octo_api' },
      undefined, { initialAccessToken: iat, execute: [openid.allowInsecureRequests] }),
  );
});

test('a client ID metadata document: the provider serves the client the registry fetched, and a key changed in the document reaches it', async () => {
  const first = await signingKey('doc-1');
  let document;
  const server = createHttpsServer({ key: readFileSync(join(TLS, 'server.key')), cert: readFileSync(join(TLS, 'server.pem')) }, (_req, res) => {
    res.writeHead(200, { 'content-type': 'application/json', 'cache-control': 'max-age=1' });
    res.end(JSON.stringify(document));
  });
  await new Promise((r) => server.listen(0, '127.0.0.1', r));
  const clientId = `https://localhost:${server.address().port}/worker.json`;
  const describe = (jwk) => ({
    client_id: clientId, client_name: 'Document worker', grant_types: ['client_credentials'], scope: 'octo_api',
    token_endpoint_auth_method: 'private_key_jwt', jwks: { keys: [jwk] },
  });
  document = describe(first.jwk);
  try {
    const issued = await keyClientToken('doc-1', first.key, clientId);
    assert.equal(issued.scope, 'octo_api');
    const history = await api(a.url, 'GET', `/api/v1/clients/${encodeURIComponent(clientId)}/history`);
    assert.equal(history.status, 200);
    assert.equal(history.body.events[0].actor, 'client-id-document');

    // The document's key replaced: once its freshness (max-age=1) ends, the provider asks
    // again, the registry fetches the new version (an event) and the old key is refused.
    const second = await signingKey('doc-2');
    document = describe(second.jwk);
    await eventually('the new key accepted', async () => {
      try { await keyClientToken('doc-2', second.key, clientId); return true; } catch { return false; }
    });
    await assert.rejects(keyClientToken('doc-1', first.key, clientId), (e) => e.error === 'invalid_client');
    const changed = await api(a.url, 'GET', `/api/v1/clients/${encodeURIComponent(clientId)}/history`);
    assert.equal(changed.body.events.length, 2);
    // An id that is not a document the registry may fetch is unknown to the provider.
    assert.equal(await idp.oidc.Client.find('https://elsewhere.example.org/client.json'), undefined);
  } finally {
    server.close();
  }
});

// The client registry as the client store of node oidc-provider.
//
//   const registry = createRegistryAdapter({ url, token });
//   const provider = new Provider(issuer, { adapter: registry, ...registryProviderConfig() });
//   useRegistrySecrets(provider, registry);
//
// - `find(id)` for the model `Client` answers the registry's client as oidc-provider metadata;
//   a disabled, deleted or unknown client is `undefined` (the provider answers
//   `invalid_client`). Other models live in memory, or in the adapter given as `fallback`.
// - The provider never holds a secret or a hash: its client metadata carries a random
//   placeholder, and `compareClientSecret` asks the registry (`POST /secret/verify`).
// - Metadata and verified secrets are cached in this process and kept coherent by the
//   registry's change stream (`GET /api/v1/events?wait=`): every event of a client forgets
//   it at once. While the stream is down, nothing cached is trusted longer than
//   `fallbackTtlMs`, and metadata is revalidated with `If-None-Match` (a 304 costs no body).
// - A verified secret is remembered as an HMAC-SHA-256 under a per-process random key, never
//   past the registry's `expires_at` (a secret in its rotation grace), and re-verified in the
//   background at most every `touchMs` so the registry's "last authenticated" stays true.
//   For `settleMs` after an event of a client, a success is not remembered: another registry
//   process behind the same address may still answer from its own memory for that long.
// - The registry unreachable: the provider answers 503 (`server_error`), not a crash; it
//   recovers by itself.

import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';

const CLIENT_MODEL = 'Client';

/** The registry could not be reached or answered an error: the provider answers 503. */
export class RegistryUnavailable extends Error {
  constructor(message, cause) {
    super(message, { cause });
    this.name = 'RegistryUnavailable';
    this.status = 503;
    this.statusCode = 503;
    this.expose = false;
  }
}

/** oidc-provider settings the adapter relies on: per-client PKCE, secret-based and public auth. */
export function registryProviderConfig() {
  return {
    extraClientMetadata: { properties: ['require_pkce'] },
    pkce: { required: (_ctx, client) => client.require_pkce !== false },
    clientAuthMethods: ['client_secret_basic', 'client_secret_post', 'none'],
  };
}

/** The registry's client (its API shape) as oidc-provider client metadata, or `undefined`. */
export function toMetadata(client) {
  if (!client || client.enabled === false) return undefined;
  const grants = [...(client.grant_types ?? [])];
  if (client.offline_access && grants.includes('authorization_code') && !grants.includes('refresh_token')) {
    grants.push('refresh_token');
  }
  const scopes = new Set(client.allowed_scopes ?? []);
  if (client.offline_access) scopes.add('offline_access');
  const metadata = {
    client_id: client.client_id,
    client_name: client.client_name ?? undefined,
    grant_types: grants,
    response_types: grants.includes('authorization_code') ? ['code'] : [],
    redirect_uris: client.redirect_uris ?? [],
    post_logout_redirect_uris: client.post_logout_redirect_uris ?? [],
    scope: [...scopes].join(' '),
    require_pkce: client.require_pkce !== false,
  };
  if (client.client_uri) metadata.client_uri = client.client_uri;
  if (client.require_client_secret) {
    metadata.token_endpoint_auth_method = 'client_secret_basic';
    // Never a real secret: the registry verifies (see useRegistrySecrets).
    metadata.client_secret = placeholder;
  } else {
    metadata.token_endpoint_auth_method = 'none';
  }
  return metadata;
}

const placeholder = `registry-verifies-${randomBytes(24).toString('hex')}`;

/** A memory store for the models the registry does not hold (sessions, grants, codes, tokens). */
class MemoryAdapter {
  static stores = new Map();
  constructor(name) {
    this.name = name;
    if (!MemoryAdapter.stores.has(name)) MemoryAdapter.stores.set(name, new Map());
    this.store = MemoryAdapter.stores.get(name);
  }
  key(id) { return `${this.name}:${id}`; }
  async upsert(id, payload, expiresIn) {
    const expires = expiresIn ? Date.now() + expiresIn * 1000 : Infinity;
    this.store.set(id, { payload, expires });
    if (payload.grantId) {
      const grant = `grant:${payload.grantId}`;
      const ids = this.store.get(grant)?.ids ?? new Set();
      ids.add(id);
      this.store.set(grant, { ids, expires: Infinity });
    }
    if (payload.userCode) this.store.set(`userCode:${payload.userCode}`, { id, expires });
    if (payload.uid) this.store.set(`uid:${payload.uid}`, { id, expires });
  }
  live(key) {
    const entry = this.store.get(key);
    if (!entry) return undefined;
    if (entry.expires <= Date.now()) { this.store.delete(key); return undefined; }
    return entry;
  }
  async find(id) { return this.live(id)?.payload; }
  async findByUserCode(code) { const ref = this.live(`userCode:${code}`); return ref && this.find(ref.id); }
  async findByUid(uid) { const ref = this.live(`uid:${uid}`); return ref && this.find(ref.id); }
  async consume(id) { const entry = this.live(id); if (entry) entry.payload.consumed = Math.floor(Date.now() / 1000); }
  async destroy(id) { this.store.delete(id); }
  async revokeByGrantId(grantId) {
    for (const id of this.store.get(`grant:${grantId}`)?.ids ?? []) this.store.delete(id);
    this.store.delete(`grant:${grantId}`);
  }
}

/**
 * The adapter for `new Provider(issuer, { adapter })`, backed by the registry at `url` with
 * `token` (roles `clients:read`, `secrets:verify` and `audit:read` for the change stream).
 */
export function createRegistryAdapter({
  url,
  token,
  fallback,
  fetch: fetchImpl = globalThis.fetch,
  fallbackTtlMs = 1000,
  settleMs = 2000,
  touchMs = 60_000,
  waitSeconds = 30,
  timeoutMs = 5000,
  follow = true,
} = {}) {
  if (!url || !token) throw new TypeError('createRegistryAdapter needs { url, token }');
  const base = url.replace(/\/+$/, '');
  const key = randomBytes(32);
  /** client id → { metadata, etag, checked } */
  const clients = new Map();
  /** client id → Map(digest hex → { expires, touched }) */
  const secrets = new Map();
  const state = { cursor: undefined, healthy: false, stopped: false, controller: undefined };
  /** client id → how many times it was forgotten; `all` counts clearing everything. An answer
   *  fetched before a forget is not cached after it (the event may have come in between). */
  const epochs = new Map();
  let all = 0;
  const epoch = (clientId) => `${all}:${epochs.get(clientId) ?? 0}`;
  /** client id → until when a success is not remembered (after an event of the client), and
   *  the same for every client after the cache was cleared. Behind one address several
   *  registry processes may answer: one that did not hear of the change yet may still find
   *  the revoked secret in its memory, for at most the registry's bound (2 s). */
  const settling = new Map();
  let allSettleUntil = 0;
  const settled = (clientId, started) => started >= Math.max(allSettleUntil, settling.get(clientId) ?? 0);

  async function call(path, init = {}) {
    const signal = init.signal ?? AbortSignal.timeout(timeoutMs);
    let response;
    try {
      response = await fetchImpl(`${base}${path}`, {
        ...init,
        signal,
        headers: { authorization: `Bearer ${token}`, accept: 'application/json', ...init.headers },
      });
    } catch (error) {
      throw new RegistryUnavailable('the client registry is unreachable', error);
    }
    if (response.status >= 500 || response.status === 401 || response.status === 403) {
      await response.body?.cancel();
      throw new RegistryUnavailable(`the client registry answered ${response.status}`);
    }
    return response;
  }

  function forget(clientId) {
    epochs.set(clientId, (epochs.get(clientId) ?? 0) + 1);
    clients.delete(clientId);
    secrets.delete(clientId);
    const now = Date.now();
    if (settling.size >= 10_000) {
      for (const [id, until] of settling) if (until <= now) settling.delete(id);
    }
    settling.set(clientId, now + settleMs);
  }

  function forgetAll() {
    all += 1;
    epochs.clear();
    clients.clear();
    secrets.clear();
    settling.clear();
    allSettleUntil = Date.now() + settleMs;
  }

  function trusted(checked) {
    return state.healthy || Date.now() - checked < fallbackTtlMs;
  }

  async function lookup(id) {
    const cached = clients.get(id);
    if (cached && trusted(cached.checked)) return cached.metadata;
    const headers = cached?.etag ? { 'if-none-match': cached.etag } : {};
    const seen = epoch(id);
    const response = await call(`/api/v1/clients/${encodeURIComponent(id)}`, { headers });
    if (response.status === 304 && cached) {
      if (epoch(id) === seen) cached.checked = Date.now();
      return cached.metadata;
    }
    if (response.status === 404 || response.status === 400 || response.status === 422) {
      await response.body?.cancel();
      if (epoch(id) === seen) clients.set(id, { metadata: undefined, etag: undefined, checked: Date.now() });
      return undefined;
    }
    if (response.status !== 200) {
      await response.body?.cancel();
      throw new RegistryUnavailable(`the client registry answered ${response.status}`);
    }
    const metadata = toMetadata(await response.json());
    if (epoch(id) === seen) {
      clients.set(id, { metadata, etag: response.headers.get('etag') ?? undefined, checked: Date.now() });
    }
    return metadata;
  }

  function digest(clientId, secret) {
    return createHmac('sha256', key).update(clientId).update('\0').update(secret).digest();
  }

  async function verifyRemote(clientId, secret) {
    const response = await call(`/api/v1/clients/${encodeURIComponent(clientId)}/secret/verify`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ client_secret: secret }),
    });
    if (response.status !== 200) {
      await response.body?.cancel();
      if (response.status === 404 || response.status === 422 || response.status === 400) return { valid: false };
      throw new RegistryUnavailable(`the client registry answered ${response.status}`);
    }
    return response.json();
  }

  function remember(clientId, secret, answer) {
    const expires = answer.expires_at ? Date.parse(answer.expires_at) : Infinity;
    const own = secrets.get(clientId) ?? new Map();
    own.set(digest(clientId, secret).toString('hex'), { expires, touched: Date.now(), checked: Date.now() });
    secrets.set(clientId, own);
  }

  /** Whether `secret` is a valid secret of `clientId` now. */
  async function verifySecret(clientId, secret) {
    if (typeof secret !== 'string' || secret.length === 0) return false;
    const presented = digest(clientId, secret);
    for (const [hex, entry] of secrets.get(clientId) ?? []) {
      const same = timingSafeEqual(Buffer.from(hex, 'hex'), presented);
      if (!same) continue;
      if (entry.expires <= Date.now() || !trusted(entry.checked)) break;
      if (Date.now() - entry.touched >= touchMs) {
        entry.touched = Date.now();
        // Keeps "last authenticated" true; a refusal forgets the client.
        verifyRemote(clientId, secret).then(
          (answer) => { if (!answer.valid) forget(clientId); },
          () => {},
        );
      }
      return true;
    }
    const seen = epoch(clientId);
    const started = Date.now();
    const answer = await verifyRemote(clientId, secret);
    if (answer.valid && epoch(clientId) === seen && settled(clientId, started)) remember(clientId, secret, answer);
    return answer.valid === true;
  }

  async function catchUp(signal) {
    // The cursor starts at the head: what happened before is read fresh on first lookup.
    let after = 0;
    for (;;) {
      const page = await (await call(`/api/v1/events?after=${after}&limit=1000`, { signal })).json();
      if (page.next_after <= after || page.events.length === 0) return page.next_after;
      after = page.next_after;
    }
  }

  async function followChanges() {
    let backoff = 100;
    while (!state.stopped) {
      state.controller = new AbortController();
      const { signal } = state.controller;
      try {
        if (state.cursor === undefined) {
          state.cursor = await catchUp(signal);
          // Anything cached before the stream was up may be stale.
          forgetAll();
        }
        const timeout = AbortSignal.timeout((waitSeconds + 10) * 1000);
        const response = await call(
          `/api/v1/events?after=${state.cursor}&limit=1000&wait=${waitSeconds}`,
          { signal: AbortSignal.any([signal, timeout]) },
        );
        if (response.status !== 200) throw new RegistryUnavailable(`the change stream answered ${response.status}`);
        const page = await response.json();
        for (const event of page.events) forget(event.client_id);
        state.cursor = Math.max(state.cursor, page.next_after);
        state.healthy = true;
        backoff = 100;
      } catch {
        if (state.stopped) break;
        // Until the stream is back, the cache is trusted only `fallbackTtlMs`; a stream that
        // was cut may have missed events, so start over from the head.
        state.healthy = false;
        state.cursor = undefined;
        await new Promise((resolve) => setTimeout(resolve, backoff).unref());
        backoff = Math.min(backoff * 2, 5000);
      }
    }
  }

  class RegistryAdapter {
    constructor(name) {
      this.name = name;
      if (name !== CLIENT_MODEL) {
        this.delegate = fallback
          ? (typeof fallback === 'function' && fallback.prototype ? new fallback(name) : fallback(name))
          : new MemoryAdapter(name);
      }
    }
    async find(id) { return this.delegate ? this.delegate.find(id) : lookup(id); }
    async upsert(...args) {
      if (this.delegate) return this.delegate.upsert(...args);
      throw new TypeError('clients are registered in the client registry, not through the provider');
    }
    async findByUserCode(code) { return this.delegate?.findByUserCode(code); }
    async findByUid(uid) { return this.delegate?.findByUid(uid); }
    async consume(id) { return this.delegate?.consume(id); }
    async destroy(id) { return this.delegate?.destroy(id); }
    async revokeByGrantId(id) { return this.delegate?.revokeByGrantId(id); }
  }

  RegistryAdapter.verifySecret = verifySecret;
  RegistryAdapter.forget = forget;
  RegistryAdapter.isFollowing = () => state.healthy;
  RegistryAdapter.stop = () => {
    state.stopped = true;
    state.controller?.abort();
  };
  if (follow) followChanges();
  return RegistryAdapter;
}

/**
 * Makes `provider` verify client secrets through the registry behind `adapter` (the class
 * `createRegistryAdapter` returned, or `{ url, token }` for one of its own): the provider
 * never holds a plaintext or a hash.
 */
export function useRegistrySecrets(provider, adapter) {
  if (typeof adapter?.verifySecret !== 'function') adapter = createRegistryAdapter(adapter);
  provider.Client.prototype.compareClientSecret = async function compareClientSecret(actual) {
    return adapter.verifySecret(this.clientId, actual);
  };
  return provider;
}

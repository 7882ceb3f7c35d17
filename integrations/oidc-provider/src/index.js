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
// - Metadata and verified secrets are cached in this process (bounded: `maxClients`, and
//   `maxUnknown` ids the registry does not know) and kept coherent by the registry's change
//   stream: it starts at `GET /api/v1/events/head` and long-polls `GET /api/v1/events?wait=`;
//   every event of a client forgets it at once, and an answer fetched before that event is
//   not kept. While the stream is down — an error, a `503 not_ready` from a registry process
//   that is not following its feed, or no answer for `waitSeconds` + 2 s — nothing cached is
//   trusted longer than `fallbackTtlMs`, and metadata is revalidated with `If-None-Match`
//   (a 304 costs no body). A `client_id` the registry could not hold is unknown at once.
// - A verified secret is remembered as an HMAC-SHA-256 under a per-process random key, never
//   past the registry's `expires_at` (a secret in its rotation grace), and re-verified in the
//   background at most every `touchMs` so the registry's "last authenticated" stays true.
//   For `settleMs` after an event of a client, a success is not remembered: another registry
//   process behind the same address may still answer from its own memory for that long.
// - A client whose id is an `https` URL (a client ID metadata document the registry fetches,
//   when it is configured to): the registry's answer is used only as long as its
//   `Cache-Control: max-age` says (the document's freshness), then asked again, so that a
//   changed document reaches the provider without an event to wait for.
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
    clientAuthMethods: ['client_secret_basic', 'client_secret_post', 'private_key_jwt', 'none'],
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
  // Its pages, for consent screens. Contacts are left out: the provider's stricter e-mail
  // check would make the whole client unusable for an address the registry accepted.
  for (const page of ['logo_uri', 'policy_uri', 'tos_uri']) {
    if (client[page]) metadata[page] = client[page];
  }
  // A native app (RFC 8252) may use private-use URI schemes, which the provider refuses for
  // web applications, its default.
  if (client.application_type === 'native') metadata.application_type = 'native';
  // The client's public keys: the provider checks a private_key_jwt assertion (RFC 7523)
  // against them itself; they may sign request objects too.
  if (client.jwks) metadata.jwks = client.jwks;
  if (client.jwks_uri) metadata.jwks_uri = client.jwks_uri;
  if (client.token_endpoint_auth_method === 'private_key_jwt') {
    // A confidential client without a secret.
    metadata.token_endpoint_auth_method = 'private_key_jwt';
  } else if (client.require_client_secret) {
    metadata.token_endpoint_auth_method = client.token_endpoint_auth_method === 'client_secret_post'
      ? 'client_secret_post'
      : 'client_secret_basic';
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

/** Ids the registry can hold (its `ClientId` rule: 1–128 of `A-Z a-z 0-9 - . _ ~`, or the
 *  `https` URL of a client ID metadata document, at most 255 characters, no query or
 *  fragment). Anything else is unknown without asking: a provider passes any `client_id` a
 *  caller sends. */
const PLAUSIBLE_ID = /^[A-Za-z0-9._~-]{1,128}$/;
const DOCUMENT_ID = /^https:\/\/[^\s?#]{1,247}$/;

function plausible(id) {
  return typeof id === 'string' && (PLAUSIBLE_ID.test(id) || DOCUMENT_ID.test(id));
}

/** Until when an answer for a document client may be used: the registry's
 *  `Cache-Control: max-age` (how long the document it fetched stays fresh), else not at all.
 *  Other clients change only through events, which the stream tells. */
function usableUntil(id, response) {
  if (!DOCUMENT_ID.test(id)) return Infinity;
  const maxAge = /max-age=(\d+)/.exec(response.headers.get('cache-control') ?? '')?.[1];
  return maxAge === undefined ? 0 : Date.now() + Number(maxAge) * 1000;
}

/** A Map used as a bounded LRU: `get` moves an entry to the back, `set` drops the oldest. */
class Lru extends Map {
  constructor(limit) { super(); this.limit = limit; }
  touch(key) {
    const value = super.get(key);
    if (value !== undefined) { super.delete(key); super.set(key, value); }
    return value;
  }
  set(key, value) {
    super.delete(key);
    super.set(key, value);
    while (this.size > this.limit) this.delete(this.keys().next().value);
    return this;
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
  settleMs = 4000,
  touchMs = 60_000,
  waitSeconds = 10,
  timeoutMs = 5000,
  maxClients = 10_000,
  maxUnknown = 1_000,
  follow = true,
} = {}) {
  if (!url || !token) throw new TypeError('createRegistryAdapter needs { url, token }');
  const base = url.replace(/\/+$/, '');
  const key = randomBytes(32);
  /** client id → { metadata, etag, checked } */
  const clients = new Lru(maxClients);
  /** client id → { checked }: ids the registry answered 404 for. */
  const unknown = new Lru(maxUnknown);
  /** client id → Map(digest hex → { expires, touched, checked }) */
  const secrets = new Lru(maxClients);
  const state = { cursor: undefined, healthy: false, lastAnswer: 0, stopped: false, controller: undefined };
  /** client id → { at, sequence, deleted } of its last event from the stream, oldest first,
   *  kept while an answer fetched before it could still arrive or must not be remembered. */
  const forgotten = new Map();
  const keepMs = Math.max(settleMs, timeoutMs) + 1000;
  let allForgottenAt = 0;

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

  function forget(clientId, sequence = 0, deleted = true) {
    clients.delete(clientId);
    unknown.delete(clientId);
    secrets.delete(clientId);
    const now = Date.now();
    forgotten.delete(clientId);
    forgotten.set(clientId, { at: now, sequence, deleted });
    for (const [id, entry] of forgotten) {
      if (entry.at > now - keepMs) break;
      forgotten.delete(id);
    }
  }

  function forgetAll() {
    allForgottenAt = Date.now();
    forgotten.clear();
    clients.clear();
    unknown.clear();
    secrets.clear();
  }

  /** Whether the client may have changed after `started` (an answer fetched since is old). */
  function changedSince(clientId, started) {
    return allForgottenAt >= started || (forgotten.get(clientId)?.at ?? 0) >= started;
  }

  /** Whether a success fetched from `started` on may be remembered: not within `settleMs` of
   *  an event of its client (another registry process may still answer from its memory). */
  function settled(clientId, started) {
    const last = Math.max(allForgottenAt, forgotten.get(clientId)?.at ?? 0);
    return started >= last + settleMs;
  }

  /** The change stream answered lately: what it has not told of has not happened. A stream
   *  that hangs without an error stops being trusted `waitSeconds` + 2 s after its last
   *  answer. */
  function following() {
    return state.healthy && Date.now() - state.lastAnswer < waitSeconds * 1000 + 2000;
  }

  function trusted(checked, until = Infinity) {
    return Date.now() < until && (following() || Date.now() - checked < fallbackTtlMs);
  }

  async function lookup(id) {
    if (!plausible(id)) return undefined;
    const cached = clients.touch(id);
    if (cached && trusted(cached.checked, cached.until)) return cached.metadata;
    const missing = unknown.touch(id);
    if (missing && trusted(missing.checked, missing.until)) return undefined;
    const headers = cached?.etag ? { 'if-none-match': cached.etag } : {};
    const started = Date.now();
    const response = await call(`/api/v1/clients/${encodeURIComponent(id)}`, { headers });
    if (response.status === 304 && cached) {
      if (!changedSince(id, started)) {
        cached.checked = Date.now();
        cached.until = usableUntil(id, response);
      }
      return cached.metadata;
    }
    if (response.status === 404) {
      await response.body?.cancel();
      // A registration told by the stream is readable by then; a 404 for it is not kept.
      if (!changedSince(id, started) && (forgotten.get(id)?.deleted ?? true)) {
        unknown.set(id, { checked: Date.now(), until: usableUntil(id, response) });
      }
      return undefined;
    }
    if (response.status === 400 || response.status === 422) {
      await response.body?.cancel();
      return undefined;
    }
    if (response.status !== 200) {
      await response.body?.cancel();
      throw new RegistryUnavailable(`the client registry answered ${response.status}`);
    }
    const metadata = toMetadata(await response.json());
    const etag = response.headers.get('etag') ?? undefined;
    const version = Number(/^"?(\d+)"?$/.exec(etag ?? '')?.[1] ?? NaN);
    const older = version < (forgotten.get(id)?.sequence ?? 0);
    if (!changedSince(id, started) && !older) {
      clients.set(id, { metadata, etag, checked: Date.now(), until: usableUntil(id, response) });
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
    const own = secrets.touch(clientId) ?? new Map();
    own.set(digest(clientId, secret).toString('hex'), { expires, touched: Date.now(), checked: Date.now() });
    secrets.set(clientId, own);
  }

  /** Whether `secret` is a valid secret of `clientId` now. */
  async function verifySecret(clientId, secret) {
    if (typeof secret !== 'string' || secret.length === 0) return false;
    const presented = digest(clientId, secret);
    for (const [hex, entry] of secrets.touch(clientId) ?? []) {
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
    const started = Date.now();
    const answer = await verifyRemote(clientId, secret);
    if (answer.valid && settled(clientId, started)) remember(clientId, secret, answer);
    return answer.valid === true;
  }

  async function startFollowing(signal) {
    const response = await call('/api/v1/events/head', {
      signal: AbortSignal.any([signal, AbortSignal.timeout(timeoutMs)]),
    });
    if (response.status !== 200) {
      await response.body?.cancel();
      throw new RegistryUnavailable(`the change stream's head answered ${response.status}`);
    }
    const head = await response.json();
    // Anything cached before may be stale; from here the stream tells every change.
    forgetAll();
    state.cursor = head.next_after;
    state.healthy = true;
    state.lastAnswer = Date.now();
  }

  async function followChanges() {
    let backoff = 100;
    while (!state.stopped) {
      state.controller = new AbortController();
      const { signal } = state.controller;
      try {
        if (state.cursor === undefined) await startFollowing(signal);
        const sent = Date.now();
        const timeout = AbortSignal.timeout((waitSeconds + 10) * 1000);
        const response = await call(
          `/api/v1/events?after=${state.cursor}&limit=1000&wait=${waitSeconds}`,
          { signal: AbortSignal.any([signal, timeout]) },
        );
        if (response.status !== 200) throw new RegistryUnavailable(`the change stream answered ${response.status}`);
        const page = await response.json();
        for (const event of page.events) {
          forget(event.client_id, event.sequence, event.event_type === 'ClientDeleted');
        }
        state.cursor = Math.max(state.cursor, page.next_after);
        state.lastAnswer = Date.now();
        backoff = 100;
        // Answered early with nothing (the registry is shutting down): do not spin.
        if (page.events.length === 0 && Date.now() - sent < waitSeconds * 500) {
          await new Promise((resolve) => setTimeout(resolve, 1000).unref());
        }
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
  RegistryAdapter.isFollowing = following;
  /** How many entries each cache holds now (each is bounded). */
  RegistryAdapter.cacheSizes = () => ({ clients: clients.size, unknown: unknown.size, secrets: secrets.size, forgotten: forgotten.size });
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

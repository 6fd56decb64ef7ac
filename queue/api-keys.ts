/**
 * API keys: who may call a server, for which tenant, with which roles.
 *
 * A key's secret is `sq_<id>_<random>`: the id is public (lists, logs,
 * revocation), the random part is 32 bytes from the system's CSPRNG. The
 * secret is shown once, when the key is created; Redis holds only its
 * SHA-256 (a fast hash is enough for 256 random bits: there is nothing to
 * guess from a dictionary) and the key's record. A lookup hashes the
 * presented secret and reads one field, then compares the stored hash in
 * constant time. Revoking removes the hash and publishes the id, so servers
 * that cache lookups drop it at once (and their cache lives at most a
 * second anyway).
 *
 * Names, tenants and roles are checked here. A key holds its tenant's name
 * and number (queue/tenants.ts), the number being what jobs and events carry.
 */
import { createHash, randomBytes, timingSafeEqual } from "node:crypto";
import type { Redis } from "ioredis";
import type { QueueKeys } from "./keys.js";
import { followChannel } from "./connection.js";
import { InvalidArgumentError, NotFoundError, quoted } from "./errors.js";
import { execAll, redisCall } from "./queue-script.js";
import { checkTenantName, tenantNumber } from "./tenants.js";

export const ROLES = ["submit", "read", "worker", "admin"] as const;
export type Role = (typeof ROLES)[number];

/** A key as listed: everything but its secret. */
export interface ApiKey {
  id: string;
  name: string;
  tenant: string;
  /** The tenant's number (queue/tenants.ts). */
  tenantNumber: number;
  roles: Role[];
  /** Unix ms. */
  createdAt: number;
  /** Unix ms; absent: never expires. */
  expiresAt?: number;
}

export interface NewApiKey {
  name: string;
  tenant: string;
  roles: readonly string[];
  expiresAt?: number;
}

interface StoredKey extends ApiKey {
  /** SHA-256 of the secret, hex. */
  hash: string;
}

const NAME = /^[A-Za-z0-9 _.:@-]{1,64}$/;
const KEY_ID = /^[a-z0-9]{12}$/;
const SECRET = /^sq_([a-z0-9]{12})_([A-Za-z0-9_-]{43})$/;
/** 9999-12-31T23:59:59.999Z, the last time a protobuf Timestamp can say in JSON. */
const LAST_EXPIRY_MS = 253_402_300_799_999;
const ID_ALPHABET = "0123456789abcdefghijklmnopqrstuvwxyz";

function newKeyId(): string {
  let id = "";
  for (const b of randomBytes(12)) id += ID_ALPHABET[b % 36];
  return id;
}

const sha256 = (secret: string) => createHash("sha256").update(secret).digest("hex");

/** Checks a new key's fields; throws INVALID_ARGUMENT naming the field. */
export function checkNewKey(k: NewApiKey, now = Date.now()): { roles: Role[] } {
  if (!NAME.test(k.name)) {
    const what = "must be 1-64 characters of letters, digits, space and _.:@-";
    throw new InvalidArgumentError("name", `${quoted(k.name)} ${what}`);
  }
  checkTenantName(k.tenant);
  if (k.roles.length === 0) {
    throw new InvalidArgumentError("roles", `a key needs at least one role (${ROLES.join(", ")})`);
  }
  for (const r of k.roles) {
    if (!(ROLES as readonly string[]).includes(r)) {
      throw new InvalidArgumentError("roles", `${quoted(r)} is not a role; roles are ${ROLES.join(", ")}`);
    }
  }
  if (k.expiresAt !== undefined && !(k.expiresAt > now)) {
    throw new InvalidArgumentError("expires_at", "must be in the future");
  }
  // Timestamps past year 9999 have no JSON form: ListKeys could not show the key.
  if (k.expiresAt !== undefined && k.expiresAt > LAST_EXPIRY_MS) {
    throw new InvalidArgumentError("expires_at", "must be before the year 10000");
  }
  return { roles: [...new Set(k.roles)] as Role[] };
}

/** Creates a key; returns it and its secret (the only time the secret exists outside the caller). */
export async function createApiKey(
  redis: Redis,
  keys: QueueKeys,
  k: NewApiKey,
): Promise<{ key: ApiKey; secret: string }> {
  const { roles } = checkNewKey(k);
  const id = newKeyId();
  const secret = `sq_${id}_${randomBytes(32).toString("base64url")}`;
  const number = await tenantNumber(redis, keys, k.tenant);
  const key: ApiKey = { id, name: k.name, tenant: k.tenant, tenantNumber: number, roles, createdAt: Date.now() };
  if (k.expiresAt !== undefined) key.expiresAt = k.expiresAt;
  const stored: StoredKey = { ...key, hash: sha256(secret) };
  await execAll(redis.multi().hset(keys.apiKeys, id, JSON.stringify(stored)).hset(keys.apiKeySecrets, stored.hash, id));
  return { key, secret };
}

const listed = ({ hash: _hash, ...key }: StoredKey): ApiKey => key;

/** Every key of the queue (without secrets), oldest first. */
export async function listApiKeys(redis: Redis, keys: QueueKeys): Promise<ApiKey[]> {
  const all = await redisCall(() => redis.hgetall(keys.apiKeys));
  return Object.values(all)
    .map((v) => listed(JSON.parse(v) as StoredKey))
    .sort((a, b) => a.createdAt - b.createdAt || a.id.localeCompare(b.id));
}

/** Revokes key `id`: its secret stops working at once here, and within a second on every server. */
export async function revokeApiKey(redis: Redis, keys: QueueKeys, id: string): Promise<ApiKey> {
  if (!KEY_ID.test(id)) {
    throw new InvalidArgumentError("id", `${quoted(id)} is not a key id (12 of [a-z0-9]; stepq keys list shows them)`);
  }
  const raw = await redisCall(() => redis.hget(keys.apiKeys, id));
  if (raw === null) throw new NotFoundError(`API key ${id} not found (revoked already, or not of this queue)`);
  const stored = JSON.parse(raw) as StoredKey;
  await execAll(redis.multi().hdel(keys.apiKeys, id).hdel(keys.apiKeySecrets, stored.hash).publish(keys.apiKeyRevocations, id));
  return listed(stored);
}

/**
 * The key a secret belongs to, or undefined when it is malformed, unknown,
 * revoked or expired (the caller answers UNAUTHENTICATED without saying
 * which: that would help someone guessing).
 */
export async function lookupApiKey(
  redis: Redis,
  keys: QueueKeys,
  secret: string,
  now = Date.now(),
): Promise<ApiKey | undefined> {
  const m = SECRET.exec(secret);
  if (!m) return undefined;
  const hash = sha256(secret);
  const id = await redisCall(() => redis.hget(keys.apiKeySecrets, hash));
  if (id !== m[1]) return undefined;
  const raw = await redisCall(() => redis.hget(keys.apiKeys, id));
  if (raw === null) return undefined;
  const stored = JSON.parse(raw) as StoredKey;
  if (!timingSafeEqual(Buffer.from(stored.hash, "hex"), Buffer.from(hash, "hex"))) return undefined;
  if (stored.expiresAt !== undefined && stored.expiresAt <= now) return undefined;
  // Keys made before tenants had numbers: the number is given now.
  stored.tenantNumber ??= await tenantNumber(redis, keys, stored.tenant);
  return listed(stored);
}

/** Calls `onRevoked(id)` for every key revoked from now on; `subscriber` is a subscriber connection of its own. */
export function followRevocations(subscriber: Redis, keys: QueueKeys, onRevoked: (id: string) => void): Promise<void> {
  return followChannel(subscriber, keys.apiKeyRevocations, onRevoked);
}

/**
 * The server's cache of API key lookups, so that authenticating a call
 * costs no Redis round trip most of the time. An answer (a key, or "no such
 * key") is kept at most `ttlMs` (1 s): a key revoked on another server
 * stops working here within that, and at once when the revocation message
 * arrives. Expiry is checked on every use. Bounded in entries; the oldest
 * go first. Concurrent calls with the same secret share one lookup.
 */
import { createHash } from "node:crypto";
import type { ApiKey } from "../queue/api-keys.js";

export interface KeyCacheOptions {
  lookup(secret: string): Promise<ApiKey | undefined>;
  /** How long an answer is reused, ms. Default 1,000. */
  ttlMs?: number;
  /** Most answers kept. Default 10,000. */
  maxEntries?: number;
}

export interface KeyCache {
  /** The key `secret` belongs to, if it is valid now. */
  get(secret: string): Promise<ApiKey | undefined>;
  /** Key `id` was revoked: forget it now. */
  revoked(id: string): void;
}

interface Entry {
  at: number;
  answer: Promise<ApiKey | undefined>;
  /** Set once the answer is in, for revocations. */
  id?: string;
}

export function createKeyCache(o: KeyCacheOptions): KeyCache {
  const ttlMs = o.ttlMs ?? 1000;
  const maxEntries = o.maxEntries ?? 10_000;
  // By the secret's hash: the cache never holds secrets themselves.
  const entries = new Map<string, Entry>();
  const digest = (secret: string) => createHash("sha256").update(secret).digest("base64");

  return {
    async get(secret) {
      const now = Date.now();
      const h = digest(secret);
      let entry = entries.get(h);
      if (!entry || now - entry.at >= ttlMs) {
        if (entry) entries.delete(h);
        if (entries.size >= maxEntries) entries.delete(entries.keys().next().value as string);
        const answer = o.lookup(secret);
        entry = { at: now, answer };
        const made = entry;
        entries.set(h, made);
        answer.then(
          (key) => (made.id = key?.id),
          () => entries.delete(h), // a failed lookup (Redis away) is not remembered
        );
      }
      const key = await entry.answer;
      return key && (key.expiresAt === undefined || key.expiresAt > Date.now()) ? key : undefined;
    },
    revoked(id) {
      for (const [h, e] of entries) if (e.id === id) entries.delete(h);
    },
  };
}

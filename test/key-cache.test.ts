/**
 * The server's cache of API key lookups (issue 15, item 1: revocation takes
 * effect within a second on every server process).
 */
import { describe, expect, it } from "vitest";
import { createApiKey, followRevocations, lookupApiKey, revokeApiKey } from "../queue/api-keys.js";
import { createRedis, waitReady } from "../queue/connection.js";
import { UnavailableError } from "../queue/errors.js";
import { createKeys } from "../queue/keys.js";
import { createKeyCache } from "../server/key-cache.js";
import { connect, useRedis } from "./helpers/redis.js";

const redisProcess = await useRedis();
const redis = await connect(redisProcess.url);
const keys = createKeys("cache-test");

/** A cache over the real store, counting its Redis lookups. */
function countingCache(ttlMs?: number, maxEntries?: number) {
  const counted = { lookups: 0 };
  const cache = createKeyCache({
    lookup: (secret) => {
      counted.lookups++;
      return lookupApiKey(redis, keys, secret);
    },
    ...(ttlMs !== undefined ? { ttlMs } : {}),
    ...(maxEntries !== undefined ? { maxEntries } : {}),
  });
  return { cache, counted };
}

describe("the key cache", () => {
  it("answers repeated and concurrent calls with one lookup a second", async () => {
    const { secret, key } = await createApiKey(redis, keys, { name: "a", tenant: "t", roles: ["read"] });
    const { cache, counted } = countingCache();
    const answers = await Promise.all(Array.from({ length: 20 }, () => cache.get(secret)));
    expect(answers.every((k) => k?.id === key.id)).toBe(true);
    expect(counted.lookups).toBe(1);
    expect(await cache.get("sq_nothing")).toBeUndefined();
    expect(await cache.get("sq_nothing")).toBeUndefined();
    expect(counted.lookups).toBe(2);
  });

  it("a key revoked elsewhere stops working within a second; with the revocation message, at once", async () => {
    const { secret, key } = await createApiKey(redis, keys, { name: "b", tenant: "t", roles: ["read"] });
    const deaf = countingCache().cache; // a server that missed the message
    const listening = countingCache().cache;
    const subscriber = createRedis(redisProcess.url, "subscriber");
    await waitReady(subscriber);
    const heard = new Promise<void>((resolve) =>
      followRevocations(subscriber, keys, (id) => {
        listening.revoked(id);
        if (id === key.id) resolve();
      }),
    );
    try {
      expect((await deaf.get(secret))?.id).toBe(key.id);
      expect((await listening.get(secret))?.id).toBe(key.id);
      const revokedAt = Date.now();
      await revokeApiKey(redis, keys, key.id);
      await heard;
      expect(await listening.get(secret)).toBeUndefined();
      while ((await deaf.get(secret)) !== undefined) await new Promise((r) => setTimeout(r, 10));
      expect(Date.now() - revokedAt).toBeLessThan(1100);
    } finally {
      subscriber.disconnect();
    }
  });

  it("checks expiry on every use, and does not remember a lookup that failed", async () => {
    const expiresAt = Date.now() + 300;
    const { secret } = await createApiKey(redis, keys, { name: "c", tenant: "t", roles: ["read"], expiresAt });
    const { cache } = countingCache(60_000);
    expect(await cache.get(secret)).toBeDefined();
    while (Date.now() <= expiresAt) await new Promise((r) => setTimeout(r, 20));
    expect(await cache.get(secret)).toBeUndefined();

    let fail = true;
    const flaky = createKeyCache({
      lookup: async (s) => {
        if (fail) throw new UnavailableError("Redis is unreachable");
        return lookupApiKey(redis, keys, s);
      },
    });
    const { secret: other } = await createApiKey(redis, keys, { name: "d", tenant: "t", roles: ["read"] });
    await expect(flaky.get(other)).rejects.toThrow(UnavailableError);
    fail = false;
    expect(await flaky.get(other)).toBeDefined();
  });

  it("holds at most maxEntries answers", async () => {
    const { cache, counted } = countingCache(60_000, 2);
    const made = await Promise.all([0, 1, 2].map((i) => createApiKey(redis, keys, { name: `e${i}`, tenant: "t", roles: ["read"] })));
    for (const m of made) await cache.get(m.secret);
    expect(counted.lookups).toBe(3);
    await cache.get((made[2] as { secret: string }).secret); // still held
    expect(counted.lookups).toBe(3);
    await cache.get((made[0] as { secret: string }).secret); // the oldest went
    expect(counted.lookups).toBe(4);
  });
});

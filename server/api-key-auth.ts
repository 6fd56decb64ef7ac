/**
 * API key authentication for one server process: the key cache over the
 * queue's key store, told at once of revocations (a subscriber connection
 * of its own), and the interceptor that checks every RPC. Built only when
 * the server runs with --auth required.
 */
import type { Interceptor } from "@connectrpc/connect";
import type { Redis } from "ioredis";
import { followRevocations, lookupApiKey } from "../queue/api-keys.js";
import { createRedis } from "../queue/connection.js";
import type { QueueKeys } from "../queue/keys.js";
import { createAuthInterceptor } from "./auth-interceptor.js";
import { createKeyCache } from "./key-cache.js";

export interface ApiKeyAuth {
  interceptor: Interceptor;
  close(): void;
}

export function startApiKeyAuth(redis: Redis, redisUrl: string, keys: QueueKeys, onError: (err: Error) => void, ca?: string): ApiKeyAuth {
  const cache = createKeyCache({ lookup: (secret) => lookupApiKey(redis, keys, secret) });
  const subscriber = createRedis(redisUrl, "subscriber", { name: "stepq-server-keys", onError, ca });
  // Missing a message costs at most the cache's second; a failed subscribe is retried by ioredis on reconnect.
  followRevocations(subscriber, keys, (id) => cache.revoked(id)).catch(onError);
  return {
    interceptor: createAuthInterceptor(cache),
    close: () => subscriber.disconnect(),
  };
}

/**
 * The webhooks and their state as the fan-out and the senders see them:
 * read from Redis at most every REFRESH_MS (so a webhook made, changed or
 * disabled through any server takes effect everywhere within that), or at
 * once after a change through this one (`invalidate`).
 */
import type { Queue } from "../../queue/queue.js";
import { listWebhooks, readWebhookStates, type WebhookRecord, type WebhookState } from "../../queue/webhooks.js";
import { cachedFor } from "../cached-read.js";

const REFRESH_MS = 1000;

export interface WebhookDirectory {
  webhooks(): Promise<WebhookRecord[]>;
  stateOf(id: string): Promise<WebhookState>;
  invalidate(): void;
}

export function createWebhookDirectory(queue: Queue): WebhookDirectory {
  const view = cachedFor(REFRESH_MS, async () => {
    const [list, state] = await Promise.all([listWebhooks(queue.redis, queue.keys), readWebhookStates(queue.redis, queue.keys)]);
    return { list, state };
  });
  return {
    webhooks: async () => (await view.get()).list,
    stateOf: async (id) => (await view.get()).state(id),
    invalidate: view.invalidate,
  };
}

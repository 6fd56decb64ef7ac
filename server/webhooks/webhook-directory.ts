/**
 * The webhooks and their state as the fan-out and the senders see them:
 * read from Redis at most every REFRESH_MS (so a webhook made, changed or
 * disabled through any server takes effect everywhere within that), or at
 * once after a change through this one (`invalidate`).
 */
import type { Queue } from "../../queue/queue.js";
import { listWebhooks, readWebhookStates, type WebhookRecord, type WebhookState } from "../../queue/webhooks.js";

const REFRESH_MS = 1000;

export interface WebhookDirectory {
  webhooks(): Promise<WebhookRecord[]>;
  stateOf(id: string): Promise<WebhookState>;
  invalidate(): void;
}

export function createWebhookDirectory(queue: Queue): WebhookDirectory {
  let at = 0;
  let current: Promise<{ list: WebhookRecord[]; state: (id: string) => WebhookState }> | undefined;
  const load = () => {
    if (!current || Date.now() - at > REFRESH_MS) {
      at = Date.now();
      current = Promise.all([listWebhooks(queue.redis, queue.keys), readWebhookStates(queue.redis, queue.keys)]).then(([list, state]) => ({ list, state }));
      current.catch(() => (at = 0)); // a failed read is tried again next time
    }
    return current;
  };
  return {
    webhooks: async () => (await load()).list,
    stateOf: async (id) => (await load()).state(id),
    invalidate: () => (at = 0),
  };
}

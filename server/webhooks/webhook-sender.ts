/**
 * The senders: for each enabled webhook with deliveries waiting, the server
 * holding its lease (queue/webhooks.ts leaseWebhook) posts them one at a
 * time, oldest first, so a receiver gets them in event order (and so every
 * job's in order). A delivery leaves the queue only once received; a failed
 * attempt is tried again after an exponential backoff with jitter (or the
 * receiver's Retry-After), and after `disableAfter` failures in a row the
 * webhook is disabled, with an event saying so, keeping its deliveries for
 * EnableWebhook. Each webhook has its own loop, so a slow receiver holds up
 * only itself, never the queue or the other webhooks.
 */
import { recordLegacyUse } from "../../queue/legacy-usage.js";
import type { Queue } from "../../queue/queue.js";
import { deliveryDone, leaseWebhook, logAttempt, nextDelivery, type WebhookRecord, webhookFailed, webhookSucceeded } from "../../queue/webhooks.js";
import type { WebhookDirectory } from "./webhook-directory.js";
import { type PostOptions, postDelivery } from "./webhook-post.js";

export interface SenderOptions {
  /** This server's id: the lease holder's name. */
  holder: string;
  /** Timeout of one attempt (--webhook-timeout) and whether private addresses are targets (--webhook-targets). */
  post: PostOptions;
  /** Failed attempts in a row that disable a webhook (--webhook-disable-after). */
  disableAfter: number;
  log(err: Error): void;
}

const SCAN_MS = 200;
/** The lease outlives the longest attempt (its timeout), so two servers never send one webhook's deliveries at once. */
const leaseMs = (timeoutMs: number) => timeoutMs + 5_000;
const FIRST_BACKOFF_MS = 1_000;
const MAX_BACKOFF_MS = 300_000;

/** The wait before attempt `n + 1` after `n` failed ones: doubling from 1 s to 5 min, +-20%. */
export function backoffMs(failures: number): number {
  const base = Math.min(MAX_BACKOFF_MS, FIRST_BACKOFF_MS * 2 ** Math.max(0, failures - 1));
  return Math.round(base * (0.8 + 0.4 * Math.random()));
}

export interface Senders {
  stop(): Promise<void>;
}

export function startSenders(queue: Queue, directory: WebhookDirectory, options: SenderOptions): Senders {
  const { redis, keys } = queue;
  let stopped = false;
  const stopping = new AbortController();
  const busy = new Set<string>();
  /** Per webhook: the delivery being retried and when it may go again. */
  const retry = new Map<string, { entry: string; failures: number; notBefore: number }>();

  /** Sends `w`'s waiting deliveries while it holds the lease and they are received. */
  async function drain(w: WebhookRecord): Promise<void> {
    while (!stopped && (await leaseWebhook(redis, keys, w.id, options.holder, leaseMs(options.post.timeoutMs)))) {
      const d = await nextDelivery(redis, keys, w.id);
      if (!d) return;
      const pending = retry.get(w.id);
      if (pending?.entry === d.entry && Date.now() < pending.notBefore) return;
      const attempt = await postDelivery(w, d, options.post, stopping.signal);
      if (stopped) return; // cut short by the server closing: not the receiver's failure; the next server sends it again
      const failures = pending?.entry === d.entry ? pending.failures : 0;
      await logAttempt(redis, keys, w.id, { ...attempt, status: attempt.ok ? "succeeded" : "failed", attempt: failures + 1 });
      if (attempt.ok) {
        retry.delete(w.id);
        await deliveryDone(redis, keys, w.id, d.entry);
        await webhookSucceeded(redis, keys, w.id);
        // An old event name received: counted, like the old routes, for ListLegacyUsage.
        if (d.id.endsWith(".legacy")) await recordLegacyUse(redis, keys, `event ${d.eventName}`);
        continue;
      }
      const reason = `${options.disableAfter} deliveries in a row failed; the last: ${attempt.error}`;
      const inARow = await webhookFailed(redis, keys, w.id, options.disableAfter, reason);
      if (inARow >= options.disableAfter) {
        retry.delete(w.id);
        directory.invalidate();
        await queue.webhookDisabledEvent(w.tenant, w.id, reason);
        return;
      }
      const wait = attempt.retryAfterS !== undefined ? Math.min(attempt.retryAfterS * 1000, MAX_BACKOFF_MS) : backoffMs(failures + 1);
      retry.set(w.id, { entry: d.entry, failures: failures + 1, notBefore: Date.now() + wait });
      return;
    }
  }

  const timer = setInterval(() => {
    void (async () => {
      for (const w of await directory.webhooks()) {
        if (stopped || busy.has(w.id) || (await directory.stateOf(w.id)).disabledReason !== undefined) continue;
        busy.add(w.id);
        drain(w)
          .catch((e: unknown) => options.log(e as Error))
          .finally(() => busy.delete(w.id));
      }
    })().catch((e: unknown) => options.log(e as Error));
  }, SCAN_MS);

  return {
    async stop() {
      stopped = true;
      stopping.abort();
      clearInterval(timer);
      while (busy.size > 0) await new Promise((r) => setTimeout(r, 20));
    },
  };
}

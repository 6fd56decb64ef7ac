/**
 * The fan-out: reads the queue's events through the `webhooks` consumer
 * group (every server takes a share; entries a dead server left pending are
 * claimed after PENDING_IDLE_MS) and queues, for each webhook an event
 * matches, one delivery per name it goes out under, acknowledging the entry
 * in the same MULTI (queue/webhooks.ts). A webhook matches an event of its
 * tenant when the event's type is one it asked for, its step's route one of
 * its routes (job events pass a route filter), and its job has its labels;
 * a step's progress events are thinned to one per progress_interval_ms.
 */
import { type JsonValue, toJson } from "@bufbuild/protobuf";
import { EventSchema, EventType } from "../../gen/stepq/v1/events_pb.js";
import { eventsAfter, type StreamEvent } from "../../queue/log-entry.js";
import type { Queue } from "../../queue/queue.js";
import { ensureEventsGroup, queueDeliveries, readEventsForWebhooks, skipEventsForWebhooks, type WebhookRecord } from "../../queue/webhooks.js";
import { toEvent } from "../convert.js";
import { namesOf, typeNamed } from "../events/event-names.js";
import type { WebhookDirectory } from "./webhook-directory.js";

/** Events another server read this long ago without acknowledging them are claimed (it died). */
const PENDING_IDLE_MS = 10_000;
const IDLE_POLL_MS = 100;
const LABEL_CACHE = 10_000;

export interface FanOut {
  stop(): Promise<void>;
}

/** Whether `w` wants event `e` (labels aside). */
function wants(w: WebhookRecord, e: StreamEvent["event"]): boolean {
  if (w.tenant !== e.tenant) return false;
  if (w.eventTypes.length > 0 && !w.eventTypes.some((t) => typeNamed(t) === e.type)) return false;
  if (w.routes.length > 0 && e.route !== undefined && !w.routes.includes(e.route)) return false;
  return true;
}

export function startFanOut(queue: Queue, directory: WebhookDirectory, consumer: string, log: (err: Error) => void): FanOut {
  let stopped = false;
  const labels = new Map<string, Record<string, string>>();
  const lastProgress = new Map<string, number>();

  async function labelsOf(jobId: string): Promise<Record<string, string>> {
    let l = labels.get(jobId);
    if (l) return l;
    l = (await queue.getJob(jobId))?.labels ?? {};
    if (labels.size >= LABEL_CACHE) labels.delete(labels.keys().next().value as string);
    labels.set(jobId, l);
    return l;
  }

  async function matches(w: WebhookRecord, e: StreamEvent): Promise<boolean> {
    if (!wants(w, e.event)) return false;
    const pairs = Object.entries(w.jobLabels);
    if (pairs.length > 0) {
      if (!e.event.jobId) return false;
      const l = await labelsOf(e.event.jobId);
      if (!pairs.every(([k, v]) => l[k] === v)) return false;
    }
    if (e.event.type === EventType.STEP_PROGRESS) {
      const key = `${w.id}|${e.event.jobId}.${e.event.stepIndex}`;
      const last = lastProgress.get(key) ?? 0;
      if (e.time - last < (w.progressIntervalMs || 1000)) return false;
      lastProgress.set(key, e.time);
      if (lastProgress.size > LABEL_CACHE) lastProgress.delete(lastProgress.keys().next().value as string);
    }
    return true;
  }

  async function deliveriesOf(entry: { id: string; fields: string[] }, webhooks: readonly WebhookRecord[]) {
    const out: { webhook: string; id: string; body: string; eventName: string }[] = [];
    for (const e of eventsAfter(entry.id, entry.fields, undefined)) {
      let event: JsonValue | undefined; // the event's JSON, made once for all the webhooks that want it
      for (const w of webhooks) {
        if (!(await matches(w, e))) continue;
        event ??= toJson(EventSchema, toEvent(e.cursor, e.time, e.event));
        for (const { name, style } of namesOf(e.event.type, w.legacyNames ? "both" : "new")) {
          const id = `${e.cursor}.${w.id}${style === "legacy" ? ".legacy" : ""}`;
          const body = JSON.stringify({ id, webhook_id: w.id, name, style, type: (event as { type?: string }).type, cursor: e.cursor, event });
          out.push({ webhook: w.id, id, body, eventName: name });
        }
      }
    }
    return out;
  }

  const done = (async () => {
    await ensureEventsGroup(queue.redis, queue.keys).catch(() => undefined); // Redis away: the loop makes it later
    while (!stopped) {
      try {
        if ((await directory.webhooks()).length === 0) {
          // Nobody wants the events: skip them rather than read and acknowledge each.
          await skipEventsForWebhooks(queue.redis, queue.keys);
          await new Promise((r) => setTimeout(r, IDLE_POLL_MS * 5));
          continue;
        }
        const entries = await readEventsForWebhooks(queue.redis, queue.keys, consumer, PENDING_IDLE_MS, 0);
        if (entries.length === 0) {
          await new Promise((r) => setTimeout(r, IDLE_POLL_MS));
          continue;
        }
        const webhooks = await directory.webhooks();
        for (const entry of entries) await queueDeliveries(queue.redis, queue.keys, entry.id, await deliveriesOf(entry, webhooks));
      } catch (e) {
        if (stopped) break;
        // A Redis that restarted without its data lost the group: make it again.
        if (/NOGROUP/.test((e as Error).message)) await ensureEventsGroup(queue.redis, queue.keys).catch(() => undefined);
        else log(e as Error);
        await new Promise((r) => setTimeout(r, 1000));
      }
    }
  })();
  return {
    async stop() {
      stopped = true;
      await done.catch(() => undefined);
    },
  };
}

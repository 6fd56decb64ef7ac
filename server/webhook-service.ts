/**
 * WebhookService: webhooks of the caller's tenant (every tenant's for an
 * admin key, or without keys). Records and state live in Redis
 * (queue/webhooks.ts); the fan-out and senders (server/webhooks/) deliver.
 * Another tenant's webhook answers as one that does not exist.
 */
import { randomBytes } from "node:crypto";
import { create } from "@bufbuild/protobuf";
import { timestampFromMs } from "@bufbuild/protobuf/wkt";
import type { HandlerContext, ServiceImpl } from "@connectrpc/connect";
import { type Delivery, DeliverySchema, type Webhook, type WebhookInput, WebhookSchema, type WebhookService } from "../gen/stepq/v1/webhook_service_pb.js";
import { InvalidArgumentError, NotFoundError } from "../queue/errors.js";
import { tenantNames } from "../queue/tenants.js";
import {
  deleteWebhook,
  enableWebhook,
  getWebhook,
  listWebhooks,
  logAttempt,
  pendingDeliveries,
  readAttempts,
  readWebhookStates,
  saveWebhook,
  type WebhookRecord,
} from "../queue/webhooks.js";
import { scopeOf, sees } from "./caller-scope.js";
import { typeNamed } from "./events/event-names.js";
import type { ServiceDeps } from "./step-service.js";
import type { Attempt } from "./webhooks/webhook-post.js";
import { type PostOptions, postDelivery } from "./webhooks/webhook-post.js";
import { privateTarget } from "./webhooks/webhook-targets.js";

const MAX_PROGRESS_INTERVAL_MS = 3_600_000;

/** Checks and applies `input` to `w` (lists only when `lists`). */
function applyInput(w: WebhookRecord, input: WebhookInput | undefined, lists: boolean, privateTargets: boolean): WebhookRecord {
  const out = { ...w };
  if (input?.url !== undefined) {
    let url: URL | undefined;
    try {
      url = new URL(input.url);
    } catch {
      url = undefined;
    }
    if (!url || (url.protocol !== "http:" && url.protocol !== "https:")) {
      throw new InvalidArgumentError("webhook.url", `${JSON.stringify(input.url)} is not an http or https URL`);
    }
    // A name is checked again at each delivery, on the address it resolves to.
    const why = privateTargets ? undefined : privateTarget(url);
    if (why) throw new InvalidArgumentError("webhook.url", `${why}; give a public URL`);
    out.url = url.toString();
  }
  if (lists) {
    input?.eventTypes.forEach((t, i) => {
      if (typeNamed(t) === undefined) throw new InvalidArgumentError(`webhook.event_types[${i}]`, `${JSON.stringify(t)} is not an event name (step_succeeded, job_failed, ... or EVENT_TYPE_...)`);
    });
    input?.routes.forEach((r, i) => {
      if (r === "") throw new InvalidArgumentError(`webhook.routes[${i}]`, "must not be empty");
    });
    out.eventTypes = [...(input?.eventTypes ?? [])];
    out.routes = [...(input?.routes ?? [])];
    out.jobLabels = { ...(input?.jobLabels ?? {}) };
  }
  if (input?.legacyNames !== undefined) out.legacyNames = input.legacyNames;
  if (input?.progressIntervalMs !== undefined) {
    if (input.progressIntervalMs > MAX_PROGRESS_INTERVAL_MS) throw new InvalidArgumentError("webhook.progress_interval_ms", `must be at most ${MAX_PROGRESS_INTERVAL_MS}`);
    out.progressIntervalMs = input.progressIntervalMs;
  }
  if (input?.secret !== undefined) {
    if (input.secret.length < 16 || input.secret.length > 256) throw new InvalidArgumentError("webhook.secret", "must be 16 to 256 characters (or leave it out to get one)");
    out.secret = input.secret;
  }
  return out;
}

function newId(): string {
  let id = "wh_";
  for (const b of randomBytes(12)) id += "abcdefghijklmnopqrstuvwxyz0123456789"[b % 36];
  return id;
}

function toDelivery(a: Attempt & { status?: string; attempt?: number }): Delivery {
  return create(DeliverySchema, {
    id: a.id,
    eventName: a.eventName,
    status: a.status ?? (a.ok ? "succeeded" : "failed"),
    attempt: a.attempt ?? 1,
    responseCode: a.responseCode,
    responseBody: a.responseBody,
    error: a.error,
    latencyMs: a.latencyMs,
    time: timestampFromMs(a.time),
  });
}

export function createWebhookService({ queue, webhooks }: ServiceDeps): ServiceImpl<typeof WebhookService> {
  const { redis, keys } = queue;

  /** What a Webhook message needs besides the record, read once for a whole listing. */
  const context = async () => ({ state: await readWebhookStates(redis, keys), names: await tenantNames(redis, keys) });

  async function toWebhook(w: WebhookRecord, shared?: Awaited<ReturnType<typeof context>>): Promise<Webhook> {
    const { state, names } = shared ?? (await context());
    const s = state(w.id);
    return create(WebhookSchema, {
      id: w.id,
      url: w.url,
      eventTypes: w.eventTypes,
      routes: w.routes,
      jobLabels: w.jobLabels,
      legacyNames: w.legacyNames,
      progressIntervalMs: w.progressIntervalMs,
      enabled: s.disabledReason === undefined,
      disabledReason: s.disabledReason ?? "",
      consecutiveFailures: s.consecutiveFailures,
      createdAt: timestampFromMs(w.createdAt),
      tenant: names.get(w.tenant) ?? String(w.tenant),
      pending: BigInt(await pendingDeliveries(redis, keys, w.id)),
    });
  }

  /** The caller's webhook `id`, or NOT_FOUND. */
  async function owned(ctx: HandlerContext, id: string): Promise<WebhookRecord> {
    const w = id === "" ? undefined : await getWebhook(redis, keys, id);
    if (!w || !sees(scopeOf(ctx.values), w.tenant)) throw new NotFoundError(`webhook ${JSON.stringify(id)} not found`);
    return w;
  }

  const changed = () => webhooks?.directory.invalidate();

  return {
    async createWebhook(req, ctx) {
      if (req.webhook?.url === undefined) throw new InvalidArgumentError("webhook.url", "is required: the URL that gets the POSTs");
      const blank: WebhookRecord = {
        id: newId(),
        tenant: scopeOf(ctx.values).tenant,
        url: "",
        eventTypes: [],
        routes: [],
        jobLabels: {},
        legacyNames: false,
        progressIntervalMs: 1000,
        secret: `whsec_${randomBytes(24).toString("base64url")}`,
        createdAt: Date.now(),
      };
      const w = applyInput(blank, req.webhook, true, webhooks?.post.privateTargets ?? false);
      await saveWebhook(redis, keys, w);
      changed();
      return { webhook: await toWebhook(w), secret: w.secret };
    },
    async getWebhook(req, ctx) {
      return { webhook: await toWebhook(await owned(ctx, req.id)) };
    },
    async listWebhooks(_req, ctx) {
      const scope = scopeOf(ctx.values);
      const mine = (await listWebhooks(redis, keys)).filter((w) => sees(scope, w.tenant));
      const shared = await context();
      return { webhooks: await Promise.all(mine.map((w) => toWebhook(w, shared))) };
    },
    async updateWebhook(req, ctx) {
      const w = applyInput(await owned(ctx, req.id), req.webhook, req.replaceLists, webhooks?.post.privateTargets ?? false);
      await saveWebhook(redis, keys, w);
      changed();
      return { webhook: await toWebhook(w) };
    },
    async deleteWebhook(req, ctx) {
      await owned(ctx, req.id);
      await deleteWebhook(redis, keys, req.id);
      changed();
      return {};
    },
    async testWebhook(req, ctx) {
      const w = await owned(ctx, req.id);
      const id = `test.${Date.now()}.${w.id}`;
      const body = JSON.stringify({ id, webhook_id: w.id, name: "webhook_test", style: "new", type: "WEBHOOK_TEST", event: { message: "a test delivery from stepq" } });
      const attempt = await postDelivery(w, { id, body, eventName: "webhook_test" }, webhooks?.post ?? { timeoutMs: 10_000, privateTargets: false });
      await logAttempt(redis, keys, w.id, { ...attempt, status: attempt.ok ? "succeeded" : "failed", attempt: 1 });
      return { delivery: toDelivery(attempt) };
    },
    async listDeliveries(req, ctx) {
      const w = await owned(ctx, req.id);
      if (req.pageSize > 100) throw new InvalidArgumentError("page_size", `must be 1 to 100 (0 means 20), got ${req.pageSize}`);
      const attempts = (await readAttempts(redis, keys, w.id, req.pageSize || 20)) as (Attempt & { status: string; attempt: number })[];
      return { deliveries: attempts.map(toDelivery) };
    },
    async enableWebhook(req, ctx) {
      const w = await owned(ctx, req.id);
      await enableWebhook(redis, keys, w.id);
      changed();
      return { webhook: await toWebhook(w) };
    },
  };
}

/** What WebhookService needs besides the queue: the senders' view (to refresh it after a change) and the attempt timeout. */
export interface WebhookDeps {
  directory: { invalidate(): void };
  /** How deliveries (and test deliveries) are posted. */
  post: PostOptions;
}

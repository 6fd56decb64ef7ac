/**
 * GET /v1/models and GET /v1/models/{model}: the models live workers serve
 * (their `infer:<model>` and `embed:<model>` routes, from the worker
 * registry), in OpenAI's list shape. A model no live worker serves is 404.
 */
import type { ServerResponse } from "node:http";
import { createClient } from "@connectrpc/connect";
import { QueueService } from "../../../gen/stepq/v1/queue_service_pb.js";
import type { HttpRoute, RouteCall } from "../http-api.js";
import type { InternalTransport } from "../internal-transport.js";
import { ModelNotFoundError, writeOpenAiError } from "./openai-error.js";

/** The models served now, each with the earliest start of a worker serving it. */
async function servedModels(call: RouteCall, internal: InternalTransport): Promise<Map<string, number>> {
  const { workers } = await createClient(QueueService, internal.transport).listWorkers({}, call.callOptions());
  const models = new Map<string, number>();
  for (const w of workers) {
    const started = Number(w.startedAt?.seconds ?? 0n);
    for (const route of w.routes) {
      const model = /^(?:infer|embed):(.+)$/.exec(route)?.[1];
      if (model) models.set(model, Math.min(models.get(model) ?? started, started));
    }
  }
  return models;
}

const modelObject = (id: string, created: number) => ({ id, object: "model", created, owned_by: "stepq" });

function reply(call: RouteCall, value: object): void {
  const body = JSON.stringify(value);
  (call.res as ServerResponse).writeHead(200, { "content-type": "application/json", "content-length": Buffer.byteLength(body) });
  call.res.end(body);
}

export function modelsRoutes(internal: InternalTransport): HttpRoute[] {
  return [
    {
      method: "GET",
      path: /^\/v1\/models$/,
      fail: writeOpenAiError,
      async handle(call) {
        const models = await servedModels(call, internal);
        reply(call, { object: "list", data: [...models].sort(([a], [b]) => (a < b ? -1 : 1)).map(([id, t]) => modelObject(id, t)) });
      },
    },
    {
      method: "GET",
      path: /^\/v1\/models\/(.+)$/,
      fail: writeOpenAiError,
      async handle(call) {
        const id = call.params[0] as string;
        const created = (await servedModels(call, internal)).get(id);
        if (created === undefined) throw new ModelNotFoundError(id);
        reply(call, modelObject(id, created));
      },
    },
  ];
}

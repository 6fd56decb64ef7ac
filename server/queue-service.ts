/**
 * QueueService: what the queue's machinery is doing, for anyone with
 * ROLE_READ: each route's steps by state and its throughput
 * (queue/queue-stats.ts; a tenant's key sees its own steps' numbers), and
 * the workers alive (queue/worker-registry.ts; workers and their routes are
 * the fleet's, not a tenant's data), and the uses of the old routes
 * (queue/legacy-usage.ts).
 */
import { create } from "@bufbuild/protobuf";
import { timestampFromMs } from "@bufbuild/protobuf/wkt";
import type { ServiceImpl } from "@connectrpc/connect";
import { LegacyUsageSchema, type QueueService, WorkerInfoSchema } from "../gen/stepq/v1/queue_service_pb.js";
import { InvalidArgumentError } from "../queue/errors.js";
import { MAX_WINDOW_MINUTES, readQueueStats } from "../queue/queue-stats.js";
import { readLegacyUsage } from "../queue/legacy-usage.js";
import { listWorkers } from "../queue/worker-registry.js";
import { LEGACY_NAMES, SUNSET_AT } from "./http/legacy/legacy-names.js";
import { scopeOf, tenantFilter } from "./caller-scope.js";
import { toQueueStatsResponse } from "./queue-stats-response.js";
import type { ServiceDeps } from "./step-service.js";

/** Minutes of throughput when the request says 0. */
const DEFAULT_WINDOW_MINUTES = 5;

export function createQueueService({ queue }: ServiceDeps): ServiceImpl<typeof QueueService> {
  return {
    async getQueueStats(req, ctx) {
      const window = req.windowMinutes === 0 ? DEFAULT_WINDOW_MINUTES : req.windowMinutes;
      if (window > MAX_WINDOW_MINUTES) {
        throw new InvalidArgumentError("window_minutes", `must be 1 to ${MAX_WINDOW_MINUTES} (0 means ${DEFAULT_WINDOW_MINUTES}), got ${window}`);
      }
      const stats = await readQueueStats(queue.redis, queue.keys, window, tenantFilter(scopeOf(ctx.values)));
      return toQueueStatsResponse(stats);
    },
    async listLegacyUsage() {
      const counts = await readLegacyUsage(queue.redis, queue.keys);
      const sunset = timestampFromMs(SUNSET_AT);
      return {
        usage: [...LEGACY_NAMES]
          .sort((a, b) => (a.name < b.name ? -1 : 1))
          .map((l) => {
            const c = counts.get(l.name);
            return create(LegacyUsageSchema, {
              name: l.name,
              kind: l.kind,
              uses: BigInt(c?.uses ?? 0),
              lastUsedAt: c?.lastUsedAt === undefined ? undefined : timestampFromMs(c.lastUsedAt),
              replacement: l.replacement,
              sunset,
            });
          }),
      };
    },
    async listWorkers() {
      const workers = await listWorkers(queue.redis, queue.keys);
      return {
        workers: workers.map((w) =>
          create(WorkerInfoSchema, {
            id: w.id,
            routes: w.routes,
            concurrency: w.concurrency,
            stepsInHand: w.stepsInHand,
            version: w.version,
            host: w.host,
            pid: w.pid,
            startedAt: timestampFromMs(w.startedAt),
            lastHeartbeatAt: timestampFromMs(w.heartbeatAt),
            engines: w.engines ?? [],
            tags: w.tags ?? [],
            memoryMb: w.memoryMb ?? 0,
            tenants: w.tenants ?? [],
            excludedTenants: w.excludedTenants ?? [],
            claimRoutes: w.claimRoutes ?? w.routes,
          }),
        ),
      };
    },
  };
}

/**
 * QueueService: what the queue's machinery is doing, for anyone with
 * ROLE_READ (workers and their routes are the fleet's, not a tenant's
 * data). For now, the workers alive (queue/worker-registry.ts).
 */
import { create } from "@bufbuild/protobuf";
import { timestampFromMs } from "@bufbuild/protobuf/wkt";
import type { ServiceImpl } from "@connectrpc/connect";
import { type QueueService, WorkerInfoSchema } from "../gen/stepq/v1/queue_service_pb.js";
import { listWorkers } from "../queue/worker-registry.js";
import type { ServiceDeps } from "./step-service.js";

export function createQueueService({ queue }: ServiceDeps): ServiceImpl<typeof QueueService> {
  return {
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
          }),
        ),
      };
    },
  };
}

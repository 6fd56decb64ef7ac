/**
 * GetQueueStats' reply from what queue/queue-stats.ts read: per route its
 * counts and its rates over the window, and every throughput bucket.
 */
import { create } from "@bufbuild/protobuf";
import { timestampFromMs } from "@bufbuild/protobuf/wkt";
import {
  type GetQueueStatsResponse,
  GetQueueStatsResponseSchema,
  RouteStatsSchema,
  ThroughputBucketSchema,
} from "../gen/stepq/v1/queue_service_pb.js";
import { BUCKET_SECONDS, type QueueStats } from "../queue/queue-stats.js";

/** The reply; rates are over the time the window's buckets cover so far (the last one is in progress). */
export function toQueueStatsResponse(stats: QueueStats): GetQueueStatsResponse {
  const last = stats.throughput.at(-1)?.start ?? stats.now;
  const seconds = Math.max(1, (stats.throughput.length - 1) * BUCKET_SECONDS + (stats.now - last) / 1000);
  const finished = new Map<string, { succeeded: number; failed: number }>();
  for (const b of stats.throughput) {
    for (const r of b.routes) {
      const sum = finished.get(r.route) ?? { succeeded: 0, failed: 0 };
      sum.succeeded += r.succeeded;
      sum.failed += r.failed;
      finished.set(r.route, sum);
    }
  }
  return create(GetQueueStatsResponseSchema, {
    routes: stats.routes.map((r) =>
      create(RouteStatsSchema, {
        route: r.route,
        waiting: BigInt(r.waiting),
        queued: BigInt(r.queued),
        scheduled: BigInt(r.scheduled),
        running: BigInt(r.running),
        deadLettered: BigInt(r.deadLettered),
        succeededPerSecond: (finished.get(r.route)?.succeeded ?? 0) / seconds,
        failedPerSecond: (finished.get(r.route)?.failed ?? 0) / seconds,
      }),
    ),
    bucketSeconds: BUCKET_SECONDS,
    throughput: stats.throughput.map((b) =>
      create(ThroughputBucketSchema, {
        start: timestampFromMs(b.start),
        routes: b.routes.map((r) => ({ route: r.route, succeeded: BigInt(r.succeeded), failed: BigInt(r.failed) })),
      }),
    ),
    now: timestampFromMs(stats.now),
  });
}

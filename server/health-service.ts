/**
 * grpc.health.v1.Health, gRPC's standard health protocol, for load
 * balancers, Kubernetes gRPC probes and grpc_health_probe. A service is
 * SERVING when this server is ready (queue/redis-health.ts: Redis reachable,
 * not full, this version's Functions library loaded), NOT_SERVING otherwise.
 * It answers for "" (the whole server) and every stepq.v1 service; another
 * name is NOT_FOUND (Check) or SERVICE_UNKNOWN (Watch), as gRPC specifies.
 * Watch sends the status at once, then each change. It needs no API key
 * (server/auth-interceptor.ts lets it through): a probe has none.
 */
import type { DescService } from "@bufbuild/protobuf";
import { Code, ConnectError, type ServiceImpl } from "@connectrpc/connect";
import type { Redis } from "ioredis";
import { type Health, HealthCheckResponse_ServingStatus as Status } from "../gen/grpc/health/v1/health_pb.js";
import { checkRedis } from "../queue/redis-health.js";

const WATCH_EVERY_MS = 1000;

export function createHealthService(redis: Redis, services: readonly DescService[]): ServiceImpl<typeof Health> {
  const known = new Set(["", ...services.map((s) => s.typeName)]);
  const status = async () => ((await checkRedis(redis)).status === "ok" ? Status.SERVING : Status.NOT_SERVING);
  return {
    async check(req) {
      if (!known.has(req.service)) throw new ConnectError(`no service ${JSON.stringify(req.service)} here; ask for "" or one of ${[...known].filter(Boolean).join(", ")}`, Code.NotFound);
      return { status: await status() };
    },
    async *watch(req, ctx) {
      if (!known.has(req.service)) {
        yield { status: Status.SERVICE_UNKNOWN };
        // Until the caller goes or its deadline passes (a signal aborted already sends no abort event: a deadline of 0).
        if (!ctx.signal.aborted) await new Promise<void>((resolve) => ctx.signal.addEventListener("abort", () => resolve(), { once: true }));
        return;
      }
      let last: Status | undefined;
      while (!ctx.signal.aborted) {
        const now = await status();
        if (now !== last) yield { status: now };
        last = now;
        await new Promise<void>((resolve) => {
          const timer = setTimeout(resolve, WATCH_EVERY_MS);
          ctx.signal.addEventListener("abort", () => (clearTimeout(timer), resolve()), { once: true });
        });
      }
    },
  };
}

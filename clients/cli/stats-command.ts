/**
 * `stepq stats`: each route's steps by state and its throughput, the
 * workers alive, and the old routes still in use (QueueService), as a table
 * for people or the stats' JSON for scripts.
 */
import { toJsonString } from "@bufbuild/protobuf";
import { createClient } from "@connectrpc/connect";
import { GetQueueStatsResponseSchema, type LegacyUsage, QueueService, type RouteStats, type WorkerInfo } from "../../gen/stepq/v1/queue_service_pb.js";
import type { OptionSpec } from "../../runtime/options.js";
import { createTransport } from "../node/client.js";
import type { CommandSpec, Io } from "./command.js";
import { EXIT } from "./exit-codes.js";

const statsOptions = (connection: OptionSpec[], json: OptionSpec): OptionSpec[] => [
  ...connection,
  { flag: "window", kind: "int", default: "5", help: "Minutes of throughput to average, 1 to 15." },
  json,
];

const COLUMNS = ["ROUTE", "WAITING", "QUEUED", "SCHEDULED", "RUNNING", "DEAD", "OK/S", "FAILED/S"];

function routeCells(r: RouteStats): string[] {
  return [r.route, r.waiting, r.queued, r.scheduled, r.running, r.deadLettered].map(String).concat(r.succeededPerSecond.toFixed(2), r.failedPerSecond.toFixed(2));
}

function workerLine(w: WorkerInfo): string {
  const has = [...w.tags, ...(w.memoryMb > 0 ? [`${w.memoryMb} MiB`] : []), ...(w.tenants.length > 0 ? [`only ${w.tenants.join(",")}`] : []), ...(w.excludedTenants.length > 0 ? [`not ${w.excludedTenants.join(",")}`] : [])];
  return `${w.id}  ${w.stepsInHand}/${w.concurrency} in hand  ${w.routes.join(",")}${has.length > 0 ? `  [${has.join(" ")}]` : ""}  (stepq ${w.version}, ${w.host} pid ${w.pid})`;
}

function legacyLine(u: LegacyUsage): string {
  const last = u.lastUsedAt ? new Date(Number(u.lastUsedAt.seconds) * 1000).toISOString() : "never";
  return `${u.name}  ${u.uses} uses, last ${last}; use ${u.replacement}`;
}

/** Rows padded to their columns' widths, numbers right-aligned. */
function table(rows: string[][]): string {
  const widths = rows[0]!.map((_, c) => Math.max(...rows.map((r) => (r[c] as string).length)));
  return rows.map((r) => r.map((cell, c) => (c === 0 ? cell.padEnd(widths[c]!) : cell.padStart(widths[c]!))).join("  ")).join("\n");
}

export const STATS_COMMAND = (connection: OptionSpec[], json: OptionSpec): CommandSpec & { run(v: Record<string, unknown>, args: string[], io: Io): Promise<number> } => ({
  usage: "stepq stats [--window MINUTES] [--json]",
  description:
    "Prints each route's steps by state (waiting, queued, scheduled, running, dead-lettered), the steps\n" +
    "that succeeded and failed per second over the window, and the workers alive.",
  options: statsOptions(connection, json),
  async run(v, _args, io) {
    const queue = createClient(QueueService, createTransport({ baseUrl: v.server as string, apiKey: v["api-key"] as string | undefined }));
    const [stats, { workers }, { usage }] = await Promise.all([
      queue.getQueueStats({ windowMinutes: v.window as number }),
      queue.listWorkers({}),
      queue.listLegacyUsage({}),
    ]);
    if (v.json) {
      io.out.write(`${toJsonString(GetQueueStatsResponseSchema, stats)}\n`);
      return EXIT.OK;
    }
    io.out.write(`${table([COLUMNS, ...stats.routes.map(routeCells)])}\n`);
    if (stats.routes.length === 0) io.err.write("no routes yet: nothing was submitted\n");
    io.out.write(workers.length === 0 ? "no workers alive\n" : `workers:\n${workers.map((w) => `  ${workerLine(w)}`).join("\n")}\n`);
    const used = usage.filter((u) => u.uses > 0n);
    if (used.length > 0) io.out.write(`old routes still in use (docs/migration.md):\n${used.map((u) => `  ${legacyLine(u)}`).join("\n")}\n`);
    return EXIT.OK;
  },
});

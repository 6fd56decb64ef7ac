/**
 * `stepq conformance`: runs the corpus and the stream rules against a
 * server and reports, per RPC, whether it conforms. An RPC conforms when
 * every case of it passed; it is skipped when each of its cases needs what
 * the server lacks (a worker serving echo, an admin key).
 */
import type { DescService } from "@bufbuild/protobuf";
import { createClient, type Interceptor, type Transport } from "@connectrpc/connect";
import { createConnectTransport } from "@connectrpc/connect-node";
import { JobService } from "../../gen/stepq/v1/job_service_pb.js";
import { KeyService } from "../../gen/stepq/v1/key_service_pb.js";
import { QueueService } from "../../gen/stepq/v1/queue_service_pb.js";
import { StepService } from "../../gen/stepq/v1/step_service_pb.js";
import { TenantService } from "../../gen/stepq/v1/tenant_service_pb.js";
import { loadCorpus, type Need } from "./corpus.js";
import { type CaseOutcome, runCase } from "./run-case.js";
import { runStreamRules } from "./stream-rules.js";

const SERVICES: readonly DescService[] = [StepService, JobService, QueueService, KeyService, TenantService];

export interface ConformanceReport {
  /** Per RPC (`Service.Method`, and "stream rules"): pass, fail or skip. */
  rpcs: { rpc: string; status: CaseOutcome["status"]; cases: CaseOutcome[] }[];
  passed: number;
  failed: number;
  skipped: number;
}

export interface ConformanceOptions {
  url: string;
  apiKey?: string;
  /** Another corpus folder (default: the one shipped with stepq). */
  corpus?: string;
}

/** What the server offers the cases that need it. */
async function abilities(t: Transport): Promise<Set<Need>> {
  const has = new Set<Need>();
  const workers = await createClient(QueueService, t).listWorkers({}).catch(() => ({ workers: [] }));
  if (workers.workers.some((w) => w.routes.includes("echo"))) has.add("echo");
  if (await createClient(TenantService, t).listTenants({}).then(() => true, () => false)) has.add("admin");
  return has;
}

export async function runConformance(options: ConformanceOptions): Promise<ConformanceReport> {
  const withKey: Interceptor = (next) => (req) => {
    if (options.apiKey) req.header.set("authorization", `Bearer ${options.apiKey}`);
    return next(req);
  };
  const transport = createConnectTransport({ baseUrl: options.url, httpVersion: "1.1", useBinaryFormat: false, interceptors: [withKey] });
  const has = await abilities(transport);
  const vars: Record<string, unknown> = { run: Math.random().toString(36).slice(2, 10) };
  const outcomes: CaseOutcome[] = [];
  for (const file of loadCorpus(options.corpus)) {
    const service = SERVICES.find((s) => s.typeName === file.service);
    if (!service) throw new Error(`${file.file}: unknown service ${file.service}`);
    for (const c of file.cases) outcomes.push(await runCase(c, service, transport, vars, has));
  }
  outcomes.push(...(await runStreamRules(transport, has.has("echo"))));
  const byRpc = new Map<string, CaseOutcome[]>();
  for (const o of outcomes) byRpc.set(o.rpc, [...(byRpc.get(o.rpc) ?? []), o]);
  const rpcs = [...byRpc].map(([rpc, cases]) => ({
    rpc,
    cases,
    status: cases.some((c) => c.status === "fail") ? ("fail" as const) : cases.every((c) => c.status === "skip") ? ("skip" as const) : ("pass" as const),
  }));
  const count = (s: CaseOutcome["status"]) => rpcs.filter((r) => r.status === s).length;
  return { rpcs, passed: count("pass"), failed: count("fail"), skipped: count("skip") };
}

/** The report for people: one line per RPC, then each failed or skipped case with why. */
export function formatReport(r: ConformanceReport): string {
  const mark = { pass: "✓", fail: "✗", skip: "-" };
  const lines: string[] = [];
  for (const rpc of r.rpcs) {
    lines.push(`${mark[rpc.status]} ${rpc.rpc}  (${rpc.cases.length} case${rpc.cases.length === 1 ? "" : "s"})`);
    for (const c of rpc.cases.filter((x) => x.status !== "pass")) lines.push(`    ${mark[c.status]} ${c.name}: ${c.detail.join("; ")}`);
  }
  lines.push(`${r.passed} conform, ${r.failed} do not, ${r.skipped} skipped`);
  return `${lines.join("\n")}\n`;
}

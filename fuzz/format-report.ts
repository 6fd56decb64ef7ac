/**
 * The fuzz report as text, and the list of rules the run broke (empty when
 * it passed): 0 failures (no internal/unknown, no unanswered request), 0
 * crashes, /healthz answering throughout, RSS back near the start, canaries
 * unchanged.
 */
import { failureCauses, formatRequest } from "./failure-log.js";
import type { FuzzReport } from "./run-fuzz.js";

export function fuzzViolations(r: FuzzReport): string[] {
  const out: string[] = [];
  if (r.failureCount > 0) out.push(`${r.failureCount} failing answers in ${r.failures.length} classes`);
  if (r.crashes > 0) out.push(`${r.crashes} server crashes`);
  if (r.health.failures.length > 0) out.push(`${r.health.failures.length} /healthz probes failed`);
  if (r.memory.finalKb > r.memory.allowedKb) out.push(`server RSS ${mb(r.memory.finalKb)} after settling, above ${mb(r.memory.allowedKb)}`);
  if (r.live.finalKb > r.live.allowedKb) out.push(`server live memory ${mb(r.live.finalKb)} after settling, above ${mb(r.live.allowedKb)}`);
  if (r.canariesChanged.length > 0) out.push(`${r.canariesChanged.length} canary records changed`);
  return out;
}

function mb(kb: number): string {
  return `${(kb / 1024).toFixed(1)} MiB`;
}

export function formatFuzzReport(r: FuzzReport): string {
  const lines: string[] = [];
  lines.push(`fuzz: seed ${r.seed}, ${r.sent} requests answered or judged, ${r.victims} cut off by crashes (${r.skipped} refused by the client library) in ${(r.durationMs / 1000).toFixed(1)} s (${Math.round(r.sent / (r.durationMs / 1000))}/s)`);
  for (const [why, n] of Object.entries(r.refusals)) lines.push(`  refused ${n}×: ${why}`);
  lines.push("");
  lines.push("answers (protocol/transport code: count):");
  for (const [k, v] of Object.entries(r.codes).sort()) lines.push(`  ${k}: ${v}`);
  lines.push("");
  lines.push(`must be 0: failing answers ${r.failureCount} (${r.failures.length} classes), crashes ${r.crashes}, failed /healthz probes ${r.health.failures.length}, changed canaries ${r.canariesChanged.length} of ${r.canaryCount}`);
  lines.push(`/healthz: ${r.health.probes} probes, p50 ${r.health.p50Ms.toFixed(1)} ms, worst ${r.health.worstMs.toFixed(1)} ms`);
  lines.push(`server live memory after a full GC: start ${mb(r.live.baselineKb)}, after settling ${mb(r.live.finalKb)} (allowed ${mb(r.live.allowedKb)}: start + max(16 MiB, 50%))`);
  lines.push(`server RSS: start ${mb(r.memory.baselineKb)}, peak ${mb(r.memory.peakKb)}, after settling ${mb(r.memory.finalKb)} (allowed ${mb(r.memory.allowedKb)}: start + max(128 MiB, 100%))`);
  for (const f of r.health.failures.slice(0, 5)) lines.push(`  /healthz failed at ${f.atMs} ms: ${f.detail}`);
  for (const c of r.canariesChanged) lines.push(`  canary ${c.id} changed:\n    before ${c.before}\n    after  ${c.after}`);
  if (r.failures.length > 0) {
    lines.push("");
    lines.push("failures by likely cause:");
    for (const c of failureCauses(r.failures)) lines.push(`  ${c.count}× in ${c.classes} classes: ${c.cause}`);
    lines.push("");
    lines.push("failures (one example per class):");
    for (const f of r.failures) {
      lines.push("");
      lines.push(`[${f.count}×] ${f.example.rpc} ${f.example.protocol}/${f.example.transport}: ${f.why}; code ${f.outcome.code}${f.outcome.message ? ` "${f.outcome.message.slice(0, 200)}"` : ""}`);
      lines.push(formatRequest(f.example, r.seed));
      if (f.detail) lines.push(`  server output:\n${f.detail.split("\n").slice(-12).map((l) => `    | ${l}`).join("\n")}`);
    }
  }
  const v = fuzzViolations(r);
  lines.push("");
  lines.push(v.length === 0 ? "PASS" : `FAIL: ${v.join("; ")}`);
  return `${lines.join("\n")}\n`;
}

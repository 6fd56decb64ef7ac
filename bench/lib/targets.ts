/**
 * The issue's performance targets, checked against a run's figures, so the
 * printed report says plainly which hold. A target whose figures were not
 * measured in this run (see --only, --deep) is reported as n/a.
 */
import type { Figure } from "./results.js";

/** One target's outcome. */
export interface TargetVerdict {
  target: string;
  /** null when the run did not measure it. */
  holds: boolean | null;
  detail: string;
}

type Lookup = (id: string) => Figure | undefined;
/** A target: its text, and a check giving [holds, detail], or null when not measured. */
type Check = { target: string; eval: (get: Lookup) => [boolean, string] | null };

const ratioAtLeast = (id: string, min: number) => (get: Lookup): [boolean, string] | null => {
  const f = get(id);
  return f?.ratio == null ? null : ([f.ratio >= min, `${id} ${f.ratio.toFixed(2)}× (need ≥ ${min}×)`]);
};

const ratioAtMost = (id: string, max: number) => (get: Lookup): [boolean, string] | null => {
  const f = get(id);
  return f?.ratio == null ? null : ([f.ratio <= max, `${id} ${(f.ratio * 100).toFixed(0)}% of BullMQ (need ≤ ${max * 100}%)`]);
};

/** A latency at most `max`; where the figure has a floor measured in the run, the detail gives it too. */
const valueAtMost = (id: string, max: number) => (get: Lookup): [boolean, string] | null => {
  const f = get(id);
  if (f === undefined || !Number.isFinite(f.stepq.median)) return null;
  const floor = f.share ? `; its floor in this run: ${(f.stepq.median / f.share).toFixed(2)} ${f.unit}` : "";
  return [f.stepq.median <= max, `${id} ${f.stepq.median.toFixed(2)} ${f.unit} (need ≤ ${max}${floor})`];
};

/** Degradation of a deep (1,000,000 queued) figure against its baseline on an empty queue, stepq side. */
const degradesAtMost = (deepId: string, normalId: string, max: number) => (get: Lookup): [boolean, string] | null => {
  const deep = get(deepId);
  const normal = get(normalId);
  if (!deep || !normal) return null;
  const loss = 1 - deep.stepq.median / normal.stepq.median;
  return [loss <= max, `${deepId} ${deep.stepq.median.toFixed(0)} vs ${normal.stepq.median.toFixed(0)} ${deep.unit}: ${loss >= 0 ? `${(loss * 100).toFixed(1)}% lower` : `${(-loss * 100).toFixed(1)}% higher`} (need ≤ ${max * 100}% lower)`];
};

/**
 * A loss of at most `max`, from a figure of paired ratios (each round's
 * "with" over its "without", measured back to back, so drift between rounds
 * cancels): 1 − their median.
 */
const pairedLossAtMost = (id: string, max: number) => (get: Lookup): [boolean, string] | null => {
  const f = get(id);
  if (f === undefined || !Number.isFinite(f.stepq.median)) return null;
  const loss = 1 - f.stepq.median;
  const range = `paired ratios ${f.stepq.min.toFixed(3)}–${f.stepq.max.toFixed(3)}`;
  return [loss <= max, `${id} median ${f.stepq.median.toFixed(3)}: ${loss >= 0 ? `${(loss * 100).toFixed(1)}% lower` : `${(-loss * 100).toFixed(1)}% higher`} (${range}; need ≤ ${max * 100}% lower)`];
};

const CHECKS: Check[] = [
  { target: "end to end ≥ 2× BullMQ at concurrency 16", eval: ratioAtLeast("e2e.c16", 2) },
  { target: "end to end ≥ 2× BullMQ at concurrency 64", eval: ratioAtLeast("e2e.c64", 2) },
  { target: "end to end ≥ 1.5× BullMQ at concurrency 1", eval: ratioAtLeast("e2e.c1", 1.5) },
  { target: "submit (one at a time) ≥ 1.5× BullMQ add", eval: ratioAtLeast("submit.lib.single", 1.5) },
  { target: "submit (batches) ≥ 1.5× BullMQ addBulk", eval: ratioAtLeast("submit.lib.batch", 1.5) },
  { target: "idle submit→start p50 ≤ 1 ms", eval: valueAtMost("latency.start.p50", 1) },
  { target: "idle submit→start p99 ≤ 5 ms", eval: valueAtMost("latency.start.p99", 5) },
  { target: "bytes per queued step ≤ 60% of BullMQ", eval: ratioAtMost("memory.queued", 0.6) },
  { target: "per-token latency p99 ≤ 5 ms with 100 followers", eval: valueAtMost("tokens.f100.p99", 5) },
  { target: "end to end c16 degrades ≤ 10% with 1,000,000 queued", eval: degradesAtMost("deep.e2e.c16", "deep.base.e2e.c16", 0.1) },
  { target: "Prometheus metrics, scraped every second, cost ≤ 2% of end-to-end throughput", eval: pairedLossAtMost("metrics.paired", 0.02) },
  { target: "submit degrades ≤ 10% with 1,000,000 queued", eval: degradesAtMost("deep.submit.lib.single", "deep.base.submit", 0.1) },
];

/** Checks every target against `figures`. */
export function checkTargets(figures: readonly Figure[]): TargetVerdict[] {
  const get = (id: string) => figures.find((f) => f.id === id);
  return CHECKS.map((c) => {
    const r = c.eval(get);
    if (r === null) return { target: c.target, holds: null, detail: "not measured in this run" };
    return { target: c.target, holds: r[0], detail: r[1] };
  });
}

/**
 * The printed table and the JSON file of one run. The table reads one line
 * per figure: stepq median (min–max), BullMQ median (min–max), their ratio,
 * and the share of the run's own ceiling where one applies.
 */
import { mkdirSync, writeFileSync } from "node:fs";
import { dirname } from "node:path";
import type { Ceiling, Figure } from "./results.js";
import type { Spread } from "./stats.js";
import type { TargetVerdict } from "./targets.js";

/** A number with a precision that suits its size and unit. */
export function fmt(value: number, unit = ""): string {
  if (!Number.isFinite(value)) return "–";
  if (unit === "ms") return value < 10 ? value.toFixed(2) : value.toFixed(1);
  if (Math.abs(value) >= 100) return Math.round(value).toLocaleString("en-US");
  return value.toFixed(value >= 10 ? 1 : 2);
}

function cell(s: Spread | null, unit: string): string {
  if (!s || s.runs.length === 0) return "–";
  return s.runs.length === 1 ? fmt(s.median, unit) : `${fmt(s.median, unit)} (${fmt(s.min, unit)}–${fmt(s.max, unit)})`;
}

function pad(text: string, width: number): string {
  return text.length >= width ? `${text} ` : text.padEnd(width);
}

/** The results table, ceilings first, grouped by scenario. */
export function formatTable(figures: readonly Figure[], ceilings: readonly Ceiling[], notes: readonly string[]): string {
  const lines: string[] = [];
  if (ceilings.length > 0) {
    lines.push("Ceilings of this run (same machine, same Redis)");
    for (const c of ceilings) lines.push(`  ${pad(c.label, 64)}${pad(cell(c.value, c.unit), 26)}${c.unit}`);
    lines.push("");
  }
  const w = [64, 26, 26, 8];
  lines.push(`  ${pad("figure", w[0] as number)}${pad("stepq median (min–max)", w[1] as number)}${pad("BullMQ median (min–max)", w[2] as number)}${pad("ratio", w[3] as number)}limit`);
  let scenario = "";
  for (const f of figures) {
    if (f.scenario !== scenario) {
      scenario = f.scenario;
      lines.push(`${scenario}`);
    }
    const ratio = f.ratio === null ? "–" : `${f.ratio.toFixed(2)}×`;
    const ceiling = f.limit ? ceilings.find((c) => c.id === f.limit) : undefined;
    let limit = "";
    if (ceiling && f.share !== null) {
      // A throughput is a share of its ceiling; a latency is a multiple of its floor.
      limit = f.better === "higher" ? `${(f.share * 100).toFixed(0)}% of ${ceiling.label}` : `${f.share.toFixed(1)}× ${ceiling.label}`;
    }
    lines.push(
      `  ${pad(`${f.label} [${f.unit}${f.better === "lower" ? ", lower is better" : ""}]`, w[0] as number)}` +
        `${pad(cell(f.stepq, f.unit), w[1] as number)}${pad(f.peerOf ? `${cell(f.bullmq, f.unit)}*` : cell(f.bullmq, f.unit), w[2] as number)}` +
        `${pad(ratio, w[3] as number)}${limit}`,
    );
  }
  if (figures.some((f) => f.peerOf)) lines.push("  * BullMQ has no network API: its library figure stands in as the peer.");
  for (const n of notes) lines.push(`  note: ${n}`);
  return lines.join("\n");
}

/** The verdict of each target, one line each. */
export function formatTargets(verdicts: readonly TargetVerdict[]): string {
  return ["Targets", ...verdicts.map((v) => `  ${v.holds === null ? "n/a " : v.holds ? "HOLDS" : "MISSES"}  ${v.target}: ${v.detail}`)].join("\n");
}

/** Writes `data` as pretty JSON to `path`, creating its folder. */
export function writeJson(path: string, data: unknown): void {
  mkdirSync(dirname(path), { recursive: true });
  writeFileSync(path, `${JSON.stringify(data, null, 2)}\n`);
}

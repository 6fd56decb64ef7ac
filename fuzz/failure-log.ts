/**
 * Failures of a run, grouped by (rpc, protocol, code, message pattern) so a
 * bug hit a thousand times is one entry, each with its first request in a
 * form that can be replayed (headers, body in hex or base64, and the seed
 * and index that regenerate it).
 */
import type { Outcome } from "./classify-response.js";
import type { WireRequest } from "./wire-request.js";

/** One distinct failure and how often it happened. */
export interface FailureClass {
  key: string;
  count: number;
  why: string;
  outcome: Outcome;
  example: WireRequest;
  /** For crashes: what the server printed as it died. */
  detail?: string;
}

/** A message with ids, numbers and quoted values blanked, so similar messages group. */
export function messagePattern(message: string): string {
  return message
    .replace(/[0-9a-z]{16}(\.\d+)?/g, "<id>")
    .replace(/"[^"]*"/g, '"…"')
    .replace(/\d+/g, "N")
    .slice(0, 100);
}

export interface FailureLog {
  add(req: WireRequest, outcome: Outcome & { failure: string }, detail?: string): void;
  classes(): FailureClass[];
  total(): number;
}

export function createFailureLog(): FailureLog {
  const byKey = new Map<string, FailureClass>();
  let total = 0;
  return {
    add(req, outcome, detail) {
      total++;
      const protocol = `${req.protocol}/${req.transport}`;
      const key = `${req.rpc} | ${protocol} | ${outcome.code} | ${messagePattern(outcome.failure)} | ${messagePattern(outcome.message)}`;
      const seen = byKey.get(key);
      if (seen) seen.count++;
      else byKey.set(key, { key, count: 1, why: outcome.failure, outcome, example: req, ...(detail ? { detail } : {}) });
    },
    classes: () => [...byKey.values()].sort((a, b) => b.count - a.count),
    total: () => total,
  };
}

/** The request as text: enough to send it again with curl, a socket, or `--seed S --only I`. */
export function formatRequest(req: WireRequest, seed: number): string {
  const lines = [
    `  replay: npm run fuzz -- --seed ${seed} --only ${req.index}`,
    `  ${req.protocol} over ${req.transport}; mutations: ${req.mutations.join(" ") || "none"}`,
  ];
  if (req.rawBytes) {
    lines.push(`  raw bytes (${req.rawBytes.length}) base64: ${clip(req.rawBytes.toString("base64"))}`);
    lines.push(`  as text: ${JSON.stringify(clip(req.rawBytes.toString("latin1"), 400))}`);
    return lines.join("\n");
  }
  lines.push(`  ${req.method} ${clip(req.path, 600)}`);
  for (const [k, v] of Object.entries(req.headers)) lines.push(`  ${k}: ${clip(v, 200)}`);
  if (req.body.length > 0) {
    lines.push(req.body.length <= 256 ? `  body (${req.body.length} bytes) hex: ${req.body.toString("hex")}` : `  body (${req.body.length} bytes) base64: ${clip(req.body.toString("base64"))}`);
    if (/json/.test(req.headers["content-type"] ?? "")) lines.push(`  body as text: ${clip(req.body.toString("utf8"), 400)}`);
  }
  return lines.join("\n");
}

function clip(s: string, max = 1200): string {
  return s.length <= max ? s : `${s.slice(0, max)}…(${s.length} chars; regenerate with --only)`;
}

/** Failure classes grouped by their likely root cause: the crash's error, the error the server logged, or the rule broken. */
export function failureCauses(classes: readonly FailureClass[]): { cause: string; count: number; classes: number }[] {
  const byCause = new Map<string, { cause: string; count: number; classes: number }>();
  for (const f of classes) {
    const logged = /error="([^"]*)"/.exec(f.detail ?? "")?.[1];
    const cause =
      f.outcome.code === "crash"
        ? `crash: ${f.outcome.message}`
        : logged
          ? `${f.outcome.code}: server logged "${messagePattern(logged)}"`
          : `${f.outcome.code}: ${messagePattern(f.why)}`;
    const entry = byCause.get(cause) ?? { cause, count: 0, classes: 0 };
    entry.count += f.count;
    entry.classes++;
    byCause.set(cause, entry);
  }
  return [...byCause.values()].sort((a, b) => b.count - a.count);
}

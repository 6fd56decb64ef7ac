/**
 * The servers' and workers' logger, on pino: one JSON object per line on
 * stderr (`level` as a name, `time` ISO, `pid`, `hostname`, `component`,
 * the event's fields, `msg`), which log stores index as they come.
 * STEPQ_LOG_LEVEL=debug|info|warn|error|silent filters (default info);
 * STEPQ_LOG_FORMAT=text prints `time LEVEL component: message key=value...`
 * for a terminal instead (what `stepq dev` shows, and what the tests' child
 * processes print).
 *
 * Kept behind this small interface so callers do not depend on pino, and
 * Error values in fields are logged as their message, as before. With
 * tracing on (runtime/tracing.ts), a line written inside a traced call
 * carries `trace_id`; a worker's step lines carry their job's.
 */
import { trace } from "@opentelemetry/api";
import { pino, type DestinationStream, type Logger as Pino } from "pino";
import { tracingOn } from "./tracing.js";

export type LogLevel = "debug" | "info" | "warn" | "error";

export interface Logger {
  debug(msg: string, fields?: Record<string, unknown>): void;
  info(msg: string, fields?: Record<string, unknown>): void;
  warn(msg: string, fields?: Record<string, unknown>): void;
  error(msg: string, fields?: Record<string, unknown>): void;
  /**
   * A logger for a part of this one: `component` is appended to the
   * component's name ("" keeps it), and `fields` (a step id, a worker id...)
   * go on every line it writes.
   */
  child(component: string, fields?: Record<string, unknown>): Logger;
}

export interface LoggerOptions {
  level?: LogLevel | "silent";
  /** JSON lines (default, unless STEPQ_LOG_FORMAT=text) or the one-line text format. */
  json?: boolean;
  /** Where each line goes, without its newline (default: stderr). */
  write?: (line: string) => void;
}

const LEVELS = new Set(["debug", "info", "warn", "error", "silent"]);
/** Keys of a pino line that the text format shows in its own place, or not at all. */
const TEXT_SKIPS = new Set(["time", "level", "component", "msg", "pid", "hostname"]);

function format(v: unknown): string {
  if (typeof v === "string") return /[\s="]/.test(v) ? JSON.stringify(v) : v;
  return JSON.stringify(v);
}

/** One pino JSON line in the text format. */
function textOf(line: string): string {
  const o = JSON.parse(line) as Record<string, unknown>;
  const rest = Object.entries(o)
    .filter(([k]) => !TEXT_SKIPS.has(k))
    .map(([k, v]) => `${k}=${format(v)}`)
    .join(" ");
  return `${String(o.time)} ${String(o.level).toUpperCase().padEnd(5)} ${String(o.component)}: ${String(o.msg)}${rest ? ` ${rest}` : ""}`;
}

/** stderr, written synchronously (lines are not lost when the process exits right after), shared by every logger. */
let stderr: DestinationStream | undefined;

function destinationOf(json: boolean, write: ((line: string) => void) | undefined): DestinationStream {
  if (write) return { write: (s: string) => write(json ? s.trimEnd() : textOf(s)) };
  if (json) return (stderr ??= pino.destination({ dest: 2, sync: true }));
  return { write: (s: string) => void process.stderr.write(`${textOf(s)}\n`) };
}

/** `fields` with Error values replaced by their message (pino would print an Error under another key as {}). */
function plain(fields: Record<string, unknown>): Record<string, unknown> {
  for (const v of Object.values(fields)) {
    if (v instanceof Error) return Object.fromEntries(Object.entries(fields).map(([k, x]) => [k, x instanceof Error ? x.message : x]));
  }
  return fields;
}

function wrap(root: Pino, json: boolean, component: string, bound: Record<string, unknown>): Logger {
  // Children are made from the root with every binding at once: a child of a child would repeat `component`.
  // The text format shows a line's own fields first, then the bound ones (`started routes=echo ... worker=w1`).
  const p = root.child(json ? { component, ...bound } : { component });
  const at =
    (level: LogLevel) =>
    (msg: string, fields?: Record<string, unknown>): void => {
      if (!p.isLevelEnabled(level)) return;
      // Inside a traced call (an RPC's span is active in its handler), the line carries its trace id.
      const traceId = tracingOn() ? trace.getActiveSpan()?.spanContext().traceId : undefined;
      if (traceId) fields = { ...fields, trace_id: traceId };
      const all = json ? fields : { ...fields, ...bound };
      if (all) p[level](plain(all), msg);
      else p[level](msg);
    };
  return {
    debug: at("debug"),
    info: at("info"),
    warn: at("warn"),
    error: at("error"),
    child: (sub, fields) => wrap(root, json, sub ? `${component}.${sub}` : component, fields ? { ...bound, ...plain(fields) } : bound),
  };
}

/** A logger for `component`, writing to `options.write` (stderr by default). */
export function createLogger(component: string, options: LoggerOptions = {}): Logger {
  const envLevel = process.env.STEPQ_LOG_LEVEL;
  const level = options.level ?? (envLevel && LEVELS.has(envLevel) ? (envLevel as LogLevel | "silent") : "info");
  const json = options.json ?? process.env.STEPQ_LOG_FORMAT !== "text";
  const root = pino(
    {
      level,
      messageKey: "msg",
      timestamp: pino.stdTimeFunctions.isoTime,
      formatters: { level: (label) => ({ level: label }) },
    },
    destinationOf(json, options.write),
  );
  return wrap(root, json, component, {});
}

/**
 * A small line logger for servers and workers: `time level component
 * message key=value...` on stderr, or JSON lines when STEPQ_LOG_FORMAT=json.
 * STEPQ_LOG_LEVEL=debug|info|warn|error|silent filters.
 */
export type LogLevel = "debug" | "info" | "warn" | "error";

export interface Logger {
  debug(msg: string, fields?: Record<string, unknown>): void;
  info(msg: string, fields?: Record<string, unknown>): void;
  warn(msg: string, fields?: Record<string, unknown>): void;
  error(msg: string, fields?: Record<string, unknown>): void;
  child(component: string): Logger;
}

const RANK: Record<LogLevel | "silent", number> = { debug: 10, info: 20, warn: 30, error: 40, silent: 100 };

function format(v: unknown): string {
  if (v instanceof Error) return JSON.stringify(v.message);
  if (typeof v === "string") return /[\s="]/.test(v) ? JSON.stringify(v) : v;
  return JSON.stringify(v);
}

/** A logger for `component`, writing to `write` (stderr by default). */
export function createLogger(
  component: string,
  options: { level?: LogLevel | "silent"; json?: boolean; write?: (line: string) => void } = {},
): Logger {
  const envLevel = process.env.STEPQ_LOG_LEVEL as LogLevel | "silent" | undefined;
  const level = options.level ?? (envLevel && envLevel in RANK ? envLevel : "info");
  const json = options.json ?? process.env.STEPQ_LOG_FORMAT === "json";
  const write = options.write ?? ((line: string) => process.stderr.write(`${line}\n`));
  const log = (lvl: LogLevel, msg: string, fields: Record<string, unknown> = {}) => {
    if (RANK[lvl] < RANK[level]) return;
    const time = new Date().toISOString();
    if (json) {
      const plain = Object.fromEntries(Object.entries(fields).map(([k, v]) => [k, v instanceof Error ? v.message : v]));
      write(JSON.stringify({ time, level: lvl, component, msg, ...plain }));
    } else {
      const rest = Object.entries(fields)
        .map(([k, v]) => `${k}=${format(v)}`)
        .join(" ");
      write(`${time} ${lvl.toUpperCase().padEnd(5)} ${component}: ${msg}${rest ? ` ${rest}` : ""}`);
    }
  };
  return {
    debug: (m, f) => log("debug", m, f),
    info: (m, f) => log("info", m, f),
    warn: (m, f) => log("warn", m, f),
    error: (m, f) => log("error", m, f),
    child: (sub) => createLogger(`${component}.${sub}`, { level, json, write }),
  };
}

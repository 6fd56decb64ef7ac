/**
 * Command-line flags with environment-variable fallbacks, shared by the
 * server, the worker and the CLI. One table per command describes each
 * option once; parsing and the `--help` text both come from it, so the help
 * cannot drift from what is parsed.
 */
import { readFileSync } from "node:fs";
import { parseArgs } from "node:util";

export type OptionKind = "string" | "int" | "duration" | "bytes" | "bool" | "list";

export interface OptionSpec {
  /** Long flag without dashes, e.g. "redis-url". */
  flag: string;
  /** Environment variable read when the flag is absent. */
  env?: string;
  kind: OptionKind;
  /** Default as the user would write it ("30s", "8MiB", "8080"). */
  default?: string;
  help: string;
  /** Single-letter alias. */
  short?: string;
}

/** Thrown for a bad flag or value; the message says which and why. */
export class OptionError extends Error {
  override name = "OptionError";
}

const DURATION = /^(\d+(?:\.\d+)?)(ms|s|m|h|d)?$/;
const BYTES = /^(\d+(?:\.\d+)?)(B|KiB|MiB|GiB|KB|MB|GB)?$/i;

/** Parses "30s", "500ms", "5m", "24h", "2d" or plain milliseconds. */
export function parseDuration(text: string): number {
  const m = DURATION.exec(text.trim());
  if (!m) throw new OptionError(`"${text}" is not a duration (examples: 500ms, 30s, 5m, 24h)`);
  const unit = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 }[m[2] ?? "ms"] as number;
  return Math.round(Number(m[1]) * unit);
}

/** Parses "8MiB", "512KiB", "1GB" or plain bytes. */
export function parseBytes(text: string): number {
  const m = BYTES.exec(text.trim());
  if (!m) throw new OptionError(`"${text}" is not a size (examples: 65536, 512KiB, 8MiB)`);
  const units: Record<string, number> = { b: 1, kib: 1024, mib: 1024 ** 2, gib: 1024 ** 3, kb: 1e3, mb: 1e6, gb: 1e9 };
  return Math.round(Number(m[1]) * (units[(m[2] ?? "b").toLowerCase()] as number));
}

function convert(spec: OptionSpec, raw: string, source: string): unknown {
  try {
    switch (spec.kind) {
      case "string":
        return raw;
      case "int": {
        if (!/^-?\d+$/.test(raw.trim())) throw new OptionError(`"${raw}" is not an integer`);
        return Number(raw);
      }
      case "duration":
        return parseDuration(raw);
      case "bytes":
        return parseBytes(raw);
      case "bool":
        if (/^(1|true|yes|on)$/i.test(raw)) return true;
        if (/^(0|false|no|off|)$/i.test(raw)) return false;
        throw new OptionError(`"${raw}" is not a boolean (use true or false)`);
      case "list":
        return raw.split(",").map((x) => x.trim()).filter((x) => x !== "");
    }
  } catch (e) {
    throw new OptionError(`${source}: ${(e as Error).message}`);
  }
}

/** Values by flag name, plus positional arguments. */
export interface ParsedOptions {
  values: Record<string, unknown>;
  positionals: string[];
  help: boolean;
}

/** Parses `argv` against `specs`, falling back to `env`, then to defaults. */
export function parseOptions(specs: readonly OptionSpec[], argv: readonly string[], env: NodeJS.ProcessEnv = process.env): ParsedOptions {
  const options: Record<string, { type: "string" | "boolean"; short?: string }> = {
    help: { type: "boolean", short: "h" },
  };
  for (const s of specs) options[s.flag] = { type: s.kind === "bool" ? "boolean" : "string", ...(s.short ? { short: s.short } : {}) };
  let parsed;
  try {
    parsed = parseArgs({ args: [...argv], options, allowPositionals: true, strict: true });
  } catch (e) {
    throw new OptionError(`${(e as Error).message.replace(/\. To specify.*$/, "")}; see --help`);
  }
  const values: Record<string, unknown> = {};
  for (const s of specs) {
    const flagValue = (parsed.values as Record<string, string | boolean | undefined>)[s.flag];
    if (flagValue !== undefined) {
      values[s.flag] = typeof flagValue === "boolean" ? flagValue : convert(s, flagValue, `--${s.flag}`);
    } else if (s.env && env[s.env] !== undefined && env[s.env] !== "") {
      values[s.flag] = convert(s, env[s.env] as string, s.env);
    } else if (s.default !== undefined) {
      values[s.flag] = convert(s, s.default, `default of --${s.flag}`);
    }
  }
  return { values, positionals: parsed.positionals, help: parsed.values.help === true };
}

/** The help text: usage line, description, then one line per option. */
export function helpText(usage: string, description: string, specs: readonly OptionSpec[]): string {
  const rows = specs.map((s) => {
    const flag = `${s.short ? `-${s.short}, ` : "    "}--${s.flag}${s.kind === "bool" ? "" : ` <${s.kind === "list" ? "a,b" : s.kind}>`}`;
    const extra = [s.env ? `env ${s.env}` : "", s.default !== undefined && s.default !== "" ? `default ${s.default}` : ""]
      .filter(Boolean)
      .join("; ");
    return { flag, text: `${s.help}${extra ? ` (${extra})` : ""}` };
  });
  rows.push({ flag: "-h, --help", text: "Show this help." });
  const width = Math.max(...rows.map((r) => r.flag.length)) + 2;
  return [`Usage: ${usage}`, "", description, "", "Options:", ...rows.map((r) => `  ${r.flag.padEnd(width)}${r.text}`), ""].join("\n");
}

/** The options every process that talks to Redis shares (server, worker). */
export const REDIS_OPTIONS: readonly OptionSpec[] = [
  { flag: "redis-url", env: "REDIS_URL", kind: "string", default: "redis://127.0.0.1:6379", help: "Redis to use (rediss:// for TLS)." },
  {
    flag: "redis-ca",
    env: "STEPQ_REDIS_CA",
    kind: "string",
    default: "",
    help: "PEM file of the CA that a rediss:// Redis's certificate chains to (default: the system's CAs).",
  },
  { flag: "queue", env: "STEPQ_QUEUE", kind: "string", default: "default", help: "Queue name (all its keys share the hash tag {name})." },
];

/** The PEM of --redis-ca (undefined when not given); it needs a rediss:// --redis-url. */
export function redisCaOption(caPath: string, redisUrl: string): string | undefined {
  if (caPath === "") return undefined;
  if (!redisUrl.startsWith("rediss://")) throw new OptionError(`--redis-ca is for TLS to Redis: --redis-url must then be rediss://… (it is ${redisUrl.split("@").pop()})`);
  try {
    return readFileSync(caPath, "utf8");
  } catch (e) {
    throw new OptionError(`--redis-ca: cannot read ${caPath} (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`);
  }
}

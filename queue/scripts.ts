/**
 * Loads the Lua scripts and registers them on ioredis connections.
 *
 * Each script in queue/scripts/ is sent as: `local P = ARGV[1]`, the
 * generated key helpers, the generated constants, lib/prelude.lua, then the
 * script itself. ioredis runs them with EVALSHA and falls back to EVAL when
 * Redis answers NOSCRIPT (after a restart or SCRIPT FLUSH), so scripts are
 * reloaded without help.
 */
import { readFileSync } from "node:fs";
import type { ChainableCommander, Redis } from "ioredis";
import { EventType } from "../gen/stepq/v1/events_pb.js";
import { FailurePolicy, JobState } from "../gen/stepq/v1/job_pb.js";
import { NarrationLevel } from "../gen/stepq/v1/output_pb.js";
import { StepErrorCode, StepState } from "../gen/stepq/v1/step_pb.js";
import { luaKeyHelpers } from "./keys.js";
import { ScriptCode } from "./script-codes.js";

export const SCRIPT_NAMES = [
  "submitJobs",
  "claimSteps",
  "extendLeases",
  "appendOutput",
  "reportProgress",
  "completeStep",
  "failStep",
  "cancelSteps",
  "releaseSteps",
  "recoverLeases",
  "expireQueued",
  "promoteScheduled",
  "purgeExpired",
  "openLog",
  "retryStep",
  "purgeStep",
] as const;

export type ScriptName = (typeof SCRIPT_NAMES)[number];

/** Settings baked into the script text. */
export interface ScriptSettings {
  /** Approximate cap of the queue-wide events stream. */
  eventsMaxLen: number;
}

const SCRIPT_DIR = new URL("./scripts/", import.meta.url);

function luaEnum(name: string, e: Record<string, string | number>, strip = ""): string {
  const fields = Object.entries(e)
    .filter(([k, v]) => typeof v === "number" && !k.endsWith("UNSPECIFIED"))
    .map(([k, v]) => `${k.replace(strip, "")} = ${v}`);
  return `local ${name} = {${fields.join(", ")}}`;
}

function constants(settings: ScriptSettings): string {
  return [
    luaEnum("S", StepState),
    luaEnum("JS", JobState),
    luaEnum("EV", EventType),
    luaEnum("EC", StepErrorCode),
    luaEnum("CODE", ScriptCode as unknown as Record<string, number>),
    luaEnum("POLICY", FailurePolicy),
    luaEnum("LEVEL", NarrationLevel),
    `local EVENTS_MAXLEN = ${Math.max(1, Math.floor(settings.eventsMaxLen))}`,
  ].join("\n");
}

const sourceCache = new Map<string, string>();
function read(file: string): string {
  let text = sourceCache.get(file);
  if (text === undefined) {
    text = readFileSync(new URL(file, SCRIPT_DIR), "utf8");
    sourceCache.set(file, text);
  }
  return text;
}

/** The full Lua text sent to Redis for script `name`. */
export function scriptSource(name: ScriptName, settings: ScriptSettings): string {
  return [
    "local P = ARGV[1]",
    luaKeyHelpers(),
    constants(settings),
    read("lib/prelude.lua"),
    `-- ${name}.lua`,
    read(`${name}.lua`),
  ].join("\n");
}

type ScriptFn = (numKeys: number, ...args: (string | Buffer | number)[]) => Promise<unknown>;

/** Registers every script on `redis` (idempotent per connection). */
export function registerScripts(redis: Redis, settings: ScriptSettings): void {
  const registered = redis as unknown as { __stepqScripts?: boolean };
  if (registered.__stepqScripts) return;
  for (const name of SCRIPT_NAMES) {
    redis.defineCommand(name, { lua: scriptSource(name, settings) });
  }
  registered.__stepqScripts = true;
}

/**
 * Runs script `name` with `keys` and `args` (the key prefix must be args[0]).
 * Replies keep binary data: bulk strings come back as Buffers.
 */
export function runScript(
  target: Redis | ChainableCommander,
  name: ScriptName,
  keys: readonly string[],
  args: readonly (string | Buffer | number)[],
): Promise<unknown> {
  const fn = (target as unknown as Record<string, ScriptFn>)[`${name}Buffer`];
  if (!fn) throw new Error(`script ${name} is not registered on this connection`);
  return fn.call(target, keys.length, ...keys, ...args);
}

/**
 * Builds the Lua transitions into one Redis Functions library and calls them.
 *
 * The library is: the generated key helpers and constants (state and event
 * numbers come from the generated protobuf enums; binary layouts from
 * wire/layouts.ts), the shared code in
 * queue/scripts/lib/, then every script of queue/scripts/ wrapped as a
 * function and registered. Redis
 * keeps the library loaded, so a call runs only its transition, not the
 * helpers' definitions again (that cost ~9 us per call as EVAL scripts).
 * The library's name carries a hash of its source, so stepq versions sharing
 * a Redis never replace each other's code. It is loaded on every
 * (re)connection, and again if Redis answers "Function not found" (after a
 * FUNCTION FLUSH, or a restart without persistence).
 */
import { createHash } from "node:crypto";
import { readFileSync } from "node:fs";
import type { Redis } from "ioredis";
import { EventType } from "../gen/stepq/v1/events_pb.js";
import { FailurePolicy, JobState } from "../gen/stepq/v1/job_pb.js";
import { NarrationLevel } from "../gen/stepq/v1/output_pb.js";
import { StepErrorCode, StepState } from "../gen/stepq/v1/step_pb.js";
import { luaLayouts } from "../wire/layouts.js";
import { luaKeyHelpers } from "./keys.js";
import { DEFAULT_LIMITS } from "./limits.js";
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
  "settleSteps",
  "streamView",
  "registerWorker",
  "queuePosition",
] as const;

/** Shared Lua, in library order (later files use earlier ones). */
const LIB_FILES = [
  "lib/record.lua",
  "lib/record-writes.lua",
  "lib/prelude.lua",
  "lib/events.lua",
  "lib/queueing.lua",
  "lib/finishing.lua",
  "lib/limits.lua",
  "lib/submit-limits.lua",
  "lib/complete.lua",
  "lib/claim.lua",
];

export type ScriptName = (typeof SCRIPT_NAMES)[number];


const SCRIPT_DIR = new URL("./scripts/", import.meta.url);

function luaEnum(name: string, e: Record<string, string | number>, strip = ""): string {
  const fields = Object.entries(e)
    .filter(([k, v]) => typeof v === "number" && !k.endsWith("UNSPECIFIED"))
    .map(([k, v]) => `${k.replace(strip, "")} = ${v}`);
  return `local ${name} = {${fields.join(", ")}}`;
}

function constants(): string {
  return [
    luaEnum("S", StepState),
    luaEnum("JS", JobState),
    luaEnum("EV", EventType),
    luaEnum("EC", StepErrorCode),
    luaEnum("CODE", ScriptCode as unknown as Record<string, number>),
    luaEnum("POLICY", FailurePolicy),
    luaEnum("LEVEL", NarrationLevel),
    luaLayouts(),
    `local DEFAULT_LIMIT = {output = ${DEFAULT_LIMITS.maxOutputBytes}, job = ${DEFAULT_LIMITS.maxJobBytes}, operation = ${DEFAULT_LIMITS.maxOperationBytes}}`,
  ].join("\n");
}

function read(file: string): string {
  return readFileSync(new URL(file, SCRIPT_DIR), "utf8");
}

/** A built library: its source and the Redis name of each transition. */
export interface Library {
  readonly name: string;
  readonly source: string;
  readonly functions: Readonly<Record<ScriptName, string>>;
}

let built: Library | undefined;

/** The library (built once per process). */
export function buildLibrary(): Library {
  if (built) return built;
  // Each transition runs as begin(), its body, then flushWrites(): writes a
  // body gathered (record-writes.lua) always reach Redis before the call returns.
  const bodies = SCRIPT_NAMES.map((name) => [
    `-- ${name}.lua`,
    `local function ${name}_body(KEYS, ARGV)`,
    read(`${name}.lua`),
    "end",
    `local function ${name}(KEYS, ARGV)`,
    "  begin(ARGV[1])",
    `  local reply = ${name}_body(KEYS, ARGV)`,
    "  flushWrites()",
    "  return reply",
    "end",
  ].join("\n"));
  const code = [luaKeyHelpers(), constants(), ...LIB_FILES.map(read), ...bodies].join("\n");
  const name = `stepq_${createHash("sha1").update(code).digest("hex").slice(0, 12)}`;
  const functions = Object.fromEntries(SCRIPT_NAMES.map((n) => [n, `${name}_${n}`])) as Record<ScriptName, string>;
  const registrations = SCRIPT_NAMES.map((n) => `redis.register_function('${functions[n]}', ${n})`);
  const library = { name, functions, source: [`#!lua name=${name}`, code, ...registrations].join("\n") };
  built = library;
  return library;
}

interface Registered {
  library: Library;
  loading?: Promise<void>;
}
const registered = new WeakMap<Redis, Registered>();

function load(redis: Redis, state: Registered): Promise<void> {
  state.loading ??= (redis.function("LOAD", "REPLACE", state.library.source) as Promise<unknown>)
    .then(() => undefined)
    .finally(() => {
      state.loading = undefined;
    });
  return state.loading;
}

/** Makes `redis` able to run the transitions; the library is (re)loaded on every connection. */
export function registerScripts(redis: Redis): void {
  if (registered.has(redis)) return;
  const state: Registered = { library: buildLibrary() };
  registered.set(redis, state);
  redis.on("ready", () => void load(redis, state).catch(() => {}));
  if (redis.status === "ready") void load(redis, state).catch(() => {});
}

type FcallFn = (fn: string, numKeys: number, ...args: (string | Buffer | number)[]) => Promise<unknown>;

/**
 * Runs transition `name` with `keys` and `args` (the key prefix must be
 * args[0]). Replies keep binary data: bulk strings come back as Buffers.
 */
export async function runScript(
  redis: Redis,
  name: ScriptName,
  keys: readonly string[],
  args: readonly (string | Buffer | number)[],
): Promise<unknown> {
  const state = registered.get(redis);
  if (!state) throw new Error(`stepq functions are not registered on this connection (calling ${name})`);
  const fcall = (redis as unknown as { fcallBuffer: FcallFn }).fcallBuffer.bind(redis);
  const fn = state.library.functions[name];
  if (state.loading) await state.loading;
  try {
    return await fcall(fn, keys.length, ...keys, ...args);
  } catch (e) {
    if (!(e instanceof Error && /Function not found/i.test(e.message))) throw e;
    await load(redis, state);
    return fcall(fn, keys.length, ...keys, ...args);
  }
}

/** Whether this stepq version's functions library is loaded in the Redis behind `redis` (readiness). */
export async function functionsLoaded(redis: Redis): Promise<boolean> {
  const list = (await redis.call("FUNCTION", "LIST", "LIBRARYNAME", buildLibrary().name)) as unknown[];
  return list.length > 0;
}

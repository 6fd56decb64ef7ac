/**
 * Capability routing: what a step requires of a worker, written into its
 * route, and whether a worker meets it.
 *
 * A step with requirements waits on the route `<base>?<parts>`, e.g.
 * `infer:qwen?mem=40960;tag=gpu=a100`: its operation's route, then the
 * requirements in one canonical order (parts sorted, each once), so steps
 * that ask for the same thing share one route, and so one set of lists. A
 * worker claims from its own routes plus the requirement routes it meets
 * (worker/claim-routes.ts reads them from the queue's `routes` set), so a
 * claim stays a pop from a few lists, never a scan of the ready steps.
 *
 * Parts: `mem=<MiB>`, `model=<name>` (another model the worker must serve),
 * `not=<worker id>`, `only=<worker id>`, `tag=<key>=<value>`. Every value's
 * characters exclude `;` and `?`, so a route splits back unambiguously.
 */
import { InvalidArgumentError } from "./errors.js";

/** What a step asks of the worker that claims it (the contract's Requirements). */
export interface Requirements {
  models?: readonly string[];
  tags?: readonly string[];
  minMemoryMb?: number;
  onlyWorkers?: readonly string[];
  excludeWorkers?: readonly string[];
}

/** What a worker has, as requirements are matched against. */
export interface Capabilities {
  id: string;
  /** The routes its engines serve (no requirement part). */
  routes: readonly string[];
  /** "key=value" */
  tags: readonly string[];
  memoryMb: number;
}

const TAG = /^[A-Za-z0-9._-]{1,64}=[A-Za-z0-9._-]{1,64}$/;
const MODEL = /^[A-Za-z0-9][A-Za-z0-9._:/@+-]{0,127}$/;
const WORKER_ID = /^[A-Za-z0-9._:@-]{1,128}$/;
const MAX_LIST = { models: 8, tags: 16, onlyWorkers: 16, excludeWorkers: 16 } as const;
const FIELD = { models: "models", tags: "tags", onlyWorkers: "only_workers", excludeWorkers: "exclude_workers" } as const;
const MAX_MEMORY_MB = 16 * 1024 * 1024; // 16 TiB

/** The route's part before any requirements: the route the worker's engine serves. */
export function baseRoute(route: string): string {
  const q = route.indexOf("?");
  return q < 0 ? route : route.slice(0, q);
}

/** Whether `route` carries requirements. */
export function hasRequirements(route: string): boolean {
  return route.includes("?");
}

/**
 * The route a step with `req` waits on: `base` itself when `req` asks for
 * nothing, else `base?<canonical parts>`. Throws INVALID_ARGUMENT naming
 * the field (`path` is its prefix, e.g. "steps[1].requirements.").
 */
export function routeWithRequirements(base: string, req: Requirements | undefined, path: string): string {
  if (!req) return base;
  const parts = new Set<string>();
  const list = (key: keyof typeof MAX_LIST, pattern: RegExp, what: string, prefix: string) => {
    const values = req[key] ?? [];
    if (values.length > MAX_LIST[key]) bad(`${path}${FIELD[key]}`, `has ${values.length} entries; at most ${MAX_LIST[key]}`);
    values.forEach((v, i) => {
      if (!pattern.test(v)) bad(`${path}${FIELD[key]}[${i}]`, `${JSON.stringify(v)} is not ${what}`);
      parts.add(prefix + v);
    });
  };
  list("models", MODEL, "a model name (1-128 characters of letters, digits and ._:/@+-)", "model=");
  list("tags", TAG, 'a tag: "key=value", each side 1-64 characters of [A-Za-z0-9._-], e.g. "gpu=a100"', "tag=");
  list("onlyWorkers", WORKER_ID, "a worker id (1-128 characters of [A-Za-z0-9._:@-])", "only=");
  list("excludeWorkers", WORKER_ID, "a worker id (1-128 characters of [A-Za-z0-9._:@-])", "not=");
  const mem = req.minMemoryMb ?? 0;
  if (!Number.isInteger(mem) || mem < 0 || mem > MAX_MEMORY_MB) bad(`${path}min_memory_mb`, `${mem} must be a whole number of MiB from 0 to ${MAX_MEMORY_MB}`);
  if (mem > 0) parts.add(`mem=${mem}`);
  for (const id of req.onlyWorkers ?? []) {
    if ((req.excludeWorkers ?? []).includes(id)) bad(`${path}exclude_workers`, `names ${id}, which only_workers also names: no worker could claim the step`);
  }
  if (parts.size === 0) return base;
  return `${base}?${[...parts].sort().join(";")}`;
}

/** The requirements a route carries (empty fields when it has none). */
export function requirementsOf(route: string): { models: string[]; tags: string[]; minMemoryMb: number; onlyWorkers: string[]; excludeWorkers: string[] } {
  const out = { models: [] as string[], tags: [] as string[], minMemoryMb: 0, onlyWorkers: [] as string[], excludeWorkers: [] as string[] };
  const q = route.indexOf("?");
  if (q < 0) return out;
  for (const part of route.slice(q + 1).split(";")) {
    const eq = part.indexOf("=");
    const name = part.slice(0, eq);
    const value = part.slice(eq + 1);
    if (name === "mem") out.minMemoryMb = Number(value);
    else if (name === "model") out.models.push(value);
    else if (name === "tag") out.tags.push(value);
    else if (name === "only") out.onlyWorkers.push(value);
    else if (name === "not") out.excludeWorkers.push(value);
  }
  return out;
}

/** The first requirement of `route` the worker does not meet, in words; undefined when it meets them all (and serves the base route). */
export function unmetRequirement(route: string, w: Capabilities): string | undefined {
  const base = baseRoute(route);
  if (!w.routes.includes(base)) return `serves no ${base}`;
  const req = requirementsOf(route);
  if (req.onlyWorkers.length > 0 && !req.onlyWorkers.includes(w.id)) return `is not one of only_workers (${req.onlyWorkers.join(", ")})`;
  if (req.excludeWorkers.includes(w.id)) return "is in exclude_workers";
  if (w.memoryMb < req.minMemoryMb) return `has ${w.memoryMb} MiB of memory, under min_memory_mb ${req.minMemoryMb}`;
  const tag = req.tags.find((t) => !w.tags.includes(t));
  if (tag !== undefined) return `has no tag ${tag}`;
  const model = req.models.find((m) => !w.routes.includes(`infer:${m}`) && !w.routes.includes(`embed:${m}`));
  if (model !== undefined) return `serves no model ${model}`;
  return undefined;
}

/** Whether worker `w` may claim steps of `route`. */
export function meets(route: string, w: Capabilities): boolean {
  return unmetRequirement(route, w) === undefined;
}

/** Checks a worker's tags (--tag); throws naming the bad one. */
export function checkTags(tags: readonly string[]): void {
  for (const t of tags) {
    if (!TAG.test(t)) throw new Error(`tag ${JSON.stringify(t)} must be "key=value", each side 1-64 characters of [A-Za-z0-9._-] (--tag)`);
  }
}

function bad(path: string, message: string): never {
  throw new InvalidArgumentError(path, message);
}

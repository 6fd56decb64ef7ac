/**
 * Mutations of a request's JSON form: type confusion (a string where a
 * number goes, an object for a list...), unknown and misspelt fields, bad
 * enum names and timestamps, deep nesting, duplicate keys, and text that is
 * not JSON at all.
 */
import type { Prng } from "./prng.js";
import { randomText } from "./string-values.js";

type Json = null | boolean | number | string | Json[] | { [k: string]: Json };

const CONFUSED: Json[] = [null, true, false, 0, -1, 1.5, 1e309, "", "x", "NaN", "-0", [], [1], {}, { a: 1 }, "9223372036854775808", "0x10"];

function paths(value: Json, prefix: string[] = [], out: string[][] = []): string[][] {
  if (value && typeof value === "object") {
    for (const [k, v] of Object.entries(value)) {
      out.push([...prefix, k]);
      if (out.length < 200) paths(v, [...prefix, k], out);
    }
  }
  return out;
}

function setAt(root: Json, path: string[], value: Json): void {
  let node = root as Record<string, Json>;
  for (const key of path.slice(0, -1)) node = node[key] as Record<string, Json>;
  node[path[path.length - 1] as string] = value;
}

function deep(depth: number, list: boolean): string {
  return list ? `${"[".repeat(depth)}${"]".repeat(depth)}` : `${'{"a":'.repeat(depth)}1${"}".repeat(depth)}`;
}

/** A mutated JSON text for `json` (an object), and what was done. */
export function mutateJson(prng: Prng, json: Record<string, Json>): { text: string; label: string } {
  const copy = structuredClone(json) as Record<string, Json>;
  const targets = paths(copy);
  const kind = prng.weighted({ typeConfusion: 5, unknownField: 3, enumName: 2, timestamp: 2, deepNesting: 1, notJson: 2, topLevel: 1, duplicateKey: 1 });
  switch (kind) {
    case "typeConfusion": {
      if (targets.length === 0) return { text: JSON.stringify({ [prng.pick(["stepId", "jobId", "pageSize", "state"])]: prng.pick(CONFUSED) }), label: "json:type-confusion(top)" };
      const path = prng.pick(targets);
      setAt(copy, path, prng.pick(CONFUSED));
      return { text: JSON.stringify(copy), label: `json:type-confusion(${path.join(".")})` };
    }
    case "unknownField": {
      const name = prng.pick(["bogus", "step_id", "stepID", "__proto__", "constructor", "@type", randomText(prng, 8)]);
      const text = JSON.stringify(copy);
      const inject = `${JSON.stringify(name)}:${JSON.stringify(prng.pick(CONFUSED))}`;
      return { text: text === "{}" ? `{${inject}}` : `{${inject},${text.slice(1)}`, label: `json:unknown-field(${name})` };
    }
    case "enumName": {
      const field = prng.pick(["state", "types", "failurePolicy", "role"]);
      copy[field] = prng.pick(["STEP_STATE_BOGUS", "JOB_STATE_RUNNING", "step_state_running", "", 99, ["EVENT_TYPE_BOGUS"], "1"]);
      return { text: JSON.stringify(copy), label: `json:enum(${field})` };
    }
    case "timestamp": {
      const ts = prng.pick(["10000-01-01T00:00:00Z", "0000-01-01T00:00:00Z", "2024-13-45T99:99:99Z", "yesterday", "", "2024-01-01T00:00:00.1234567890Z", "2024-01-01T00:00:00+25:00"]);
      copy.notBefore = ts;
      return { text: JSON.stringify(copy), label: "json:timestamp" };
    }
    case "deepNesting": {
      const depth = prng.pick([100, 1000, 10_000, 100_000]);
      return { text: `{"bogus":${deep(depth, prng.chance(0.5))}}`, label: `json:deep(${depth})` };
    }
    case "notJson": {
      const text = JSON.stringify(copy);
      const bad = prng.pick([text.slice(0, prng.int(0, text.length)), `${text}}`, "", "null", "[]", "1", '"x"', "\u0000", "{'a':1}", "\ufeff{}", randomText(prng, 30)]);
      return { text: bad, label: "json:not-json" };
    }
    case "topLevel":
      return { text: JSON.stringify(prng.pick<Json>([[], null, 1, "x", [copy]])), label: "json:top-level" };
    default: {
      const text = JSON.stringify(copy);
      return { text: text === "{}" ? '{"stepId":"a","stepId":1}' : `{"pageSize":1,${text.slice(1, -1)},"pageSize":"x"}`, label: "json:duplicate-key" };
    }
  }
}

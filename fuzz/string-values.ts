/**
 * Strings for generated fields, chosen by what the field holds (an id, a
 * cursor, a page token, a route, free text): mostly values the server
 * accepts, often values at or past its limits, sometimes garbage.
 */
import type { IdPool } from "./id-pool.js";
import type { Prng } from "./prng.js";

const BASE36 = "0123456789abcdefghijklmnopqrstuvwxyz";

/** Strings every field sometimes gets: empty, odd characters, long, encoded. */
const ODD = [
  "",
  " ",
  "\u0000",
  "\ud800",
  "é🙂",
  "\u202e",
  "%00",
  "../../etc/passwd",
  "{{steps.a.output}}",
  "{{steps.}}",
  "{{",
  "null",
  "-1",
  "0",
  "18446744073709551616",
  "1e309",
  "NaN",
  "\r\nX-Injected: 1",
];

const CURSORS = [
  "0-0",
  "1-0",
  "0-1",
  "9999999999999-0",
  "9999999999999-99999",
  "18446744073709551615-0",
  "18446744073709551616-0",
  "99999999999999999999-99999999999999999999",
  "0-18446744073709551616",
  "1-0.5",
  "1-0.999999",
  "1-0.1234567",
  "-1-0",
  "1",
  "1-",
  "-",
  "+",
  "$",
  ">",
  "1e3-0",
];

const PAGE_TOKENS = [
  "j:0-0",
  "j:9999999999999-0",
  "j:18446744073709551616-0",
  "j:99999999999999999999-0",
  "r:0",
  "r:999999999",
  "d:1",
  "d:999999999",
  "r:-1",
  "x:1",
  "j:",
  "9999999999999-0",
  "99999999999999999999-0",
];

/** Random text of `length` characters drawn from a mix of alphabets. */
export function randomText(prng: Prng, length: number): string {
  const alphabet = prng.pick(["abcdefghijklmnopqrstuvwxyz ", BASE36, "aé🙂\u0000\n\"\\{}", "x"]);
  const chars = Array.from(alphabet);
  if (chars.length === 1) return (chars[0] as string).repeat(length);
  let out = "";
  for (let i = 0; i < length; i++) out += chars[prng.int(0, chars.length - 1)];
  return out;
}

function randomId(prng: Prng, step: boolean): string {
  let id = "";
  for (let i = 0; i < 16; i++) id += BASE36[prng.int(0, 35)];
  return step ? `${id}.${prng.int(0, 120)}` : id;
}

/** A string for a field named `name` (proto name, snake_case); `maxLen` bounds long strings. */
export function stringFor(prng: Prng, pool: IdPool, name: string, maxLen: number): string {
  const roll = prng.next();
  if (roll < 0.08) return prng.pick(ODD);
  if (roll < 0.11) return randomText(prng, prng.int(1000, Math.max(1000, maxLen)));
  if (name === "step_id" || name === "step_ids") {
    if (prng.chance(0.75)) return pool.draw(prng, "stepId") ?? randomId(prng, true);
    return prng.chance(0.5) ? randomId(prng, true) : `${pool.draw(prng, "jobId") ?? randomId(prng, false)}.${prng.pick([0, 1, 99, 9999, 99999])}`;
  }
  if (name === "job_id") return prng.chance(0.75) ? (pool.draw(prng, "jobId") ?? randomId(prng, false)) : randomId(prng, prng.chance(0.3));
  if (name.endsWith("cursor")) {
    if (prng.chance(0.3)) return "";
    return prng.chance(0.4) ? (pool.draw(prng, "cursor") ?? prng.pick(CURSORS)) : prng.pick(CURSORS);
  }
  if (name === "page_token") {
    if (prng.chance(0.3)) return "";
    return prng.chance(0.4) ? (pool.draw(prng, "pageToken") ?? prng.pick(PAGE_TOKENS)) : prng.pick(PAGE_TOKENS);
  }
  if (name === "idempotency_key") return prng.chance(0.8) ? `key-${prng.int(0, 500)}` : randomText(prng, prng.int(0, 300));
  if (name === "route" || name === "routes") return prng.pick(["echo", "embed:tiny", "infer:tiny", "", "infer:", randomText(prng, 20)]);
  if (name === "model") return prng.pick(["tiny", "missing-model", "", randomText(prng, prng.int(1, 80))]);
  if (name === "name" || name === "depends_on") return prng.pick(["a", "b", "c", "step-1", randomText(prng, prng.int(0, 40))]);
  if (name === "text" || name === "prompt" || name === "content" || name === "inputs") {
    if (prng.chance(0.3)) return `${prng.pick(["x", ""])}{{steps.${prng.pick(["a", "b", "c", "zz"])}.output}}`.repeat(prng.int(1, 4));
  }
  return randomText(prng, prng.int(0, prng.chance(0.9) ? 24 : 300));
}

/**
 * Builds a request message for any schema by walking its descriptor: every
 * field kind (scalars, enums, nested messages, oneofs, lists, maps) gets a
 * value chosen by the field's type and name. Most messages are valid, small
 * and echo-routed (so the worker runs them and streams have output); many
 * carry values at or past a limit (edge integers, unknown enum numbers,
 * long lists, long strings, far timestamps).
 */
import { create, type DescField, type DescMessage, type Message, ScalarType } from "@bufbuild/protobuf";
import type { IdPool } from "./id-pool.js";
import type { Prng } from "./prng.js";
import { stringFor } from "./string-values.js";

/** How big generated values may get. */
export interface GeneratorLimits {
  /** Longest generated string (characters); the server's request cap is 8 MiB. */
  maxStringLength: number;
  /** Longest generated list. */
  maxListLength: number;
}

const INT32_EDGES = [0, -1, 1, 2147483647, -2147483648, 100, 101, 32768, 32769];
const UINT32_EDGES = [0, 1, 4294967295, 2147483648, 100, 101, 60000, 86400000];

function intFor(prng: Prng, name: string, unsigned: boolean): number {
  if (prng.chance(0.15)) return prng.pick(unsigned ? UINT32_EDGES : INT32_EDGES);
  switch (name) {
    case "token_count":
      return prng.chance(0.95) ? prng.int(0, 12) : prng.int(0, 200_000);
    case "delay_ms":
    case "token_delay_ms":
      return prng.chance(0.9) ? prng.int(0, 5) : prng.int(0, 3000);
    case "fail_attempts":
    case "max_attempts":
      return prng.int(0, 5);
    case "page_size":
      // Signed in most requests (a negative size must be refused), unsigned in some (ListDeliveries).
      return prng.pick(unsigned ? [0, 1, 2, 10, 100, 1000, 4294967295] : [0, 1, 2, 10, 100, 1000, -5]);
    case "timeout_ms":
    case "queue_timeout_ms":
      return prng.pick([0, 0, 100, 1000, 60_000]);
    case "max_tokens":
      return prng.int(0, 64);
    case "priority":
      return prng.int(-10, 10);
    case "max_backoff_ms":
    case "initial_backoff_ms":
      return prng.pick([0, 10, 100, 1000]);
    default:
      return prng.int(0, 100);
  }
}

function scalarValue(prng: Prng, pool: IdPool, field: DescField, scalar: ScalarType, limits: GeneratorLimits): unknown {
  const name = field.name;
  switch (scalar) {
    case ScalarType.STRING:
      return stringFor(prng, pool, name, limits.maxStringLength);
    case ScalarType.BOOL:
      return prng.chance(0.5);
    case ScalarType.BYTES:
      return new Uint8Array(prng.bytes(prng.int(0, 64)));
    case ScalarType.DOUBLE:
    case ScalarType.FLOAT:
      return prng.pick([0, 0.5, 1, 2, -1, Number.NaN, Number.POSITIVE_INFINITY, 3.4e38, 1e-45]);
    case ScalarType.INT64:
    case ScalarType.SINT64:
    case ScalarType.SFIXED64:
      return prng.pick([0n, 1n, -1n, 9223372036854775807n, -9223372036854775808n, BigInt(Math.floor(Date.now() / 1000))]);
    case ScalarType.UINT64:
    case ScalarType.FIXED64:
      return prng.pick([0n, 1n, 18446744073709551615n]);
    case ScalarType.UINT32:
    case ScalarType.FIXED32:
      return intFor(prng, name, true);
    default:
      return intFor(prng, name, false);
  }
}

/** A Timestamp: mostly near now, sometimes at or past the range JSON allows. */
function timestampValue(prng: Prng): { seconds: bigint; nanos: number } {
  const now = BigInt(Math.floor(Date.now() / 1000));
  if (prng.chance(0.7)) return { seconds: now + BigInt(prng.int(-5, 2)), nanos: prng.int(0, 999_999_999) };
  const seconds = prng.pick([now, now + 1n, now - 3600n, 0n, -62135596800n, 253402300799n, 253402300800n, -62135596801n, 9223372036854775807n]);
  return { seconds, nanos: prng.pick([0, 1, 999_999_999, 1_000_000_000, -1]) };
}

function listLength(prng: Prng, limits: GeneratorLimits, name = ""): number {
  if (prng.chance(0.03)) return prng.int(0, limits.maxListLength);
  // A job or a batch needs at least one step; other lists are often empty.
  return name === "steps" || name === "requests" ? prng.pick([0, 1, 1, 2, 3, 3]) : prng.pick([0, 1, 1, 2, 3]);
}

/**
 * How often a field is left unset: rarely for the ids an RPC needs (a
 * missing one only tests "is required"), often for the optional extras
 * that most often make a request invalid.
 */
function omitChance(name: string): number {
  if (name.endsWith("_id")) return 0.05;
  if (name === "operation") return 0.05;
  if (["idempotency_key", "not_before", "labels", "page_token", "after_cursor", "priority", "retry", "failure_policy"].includes(name)) return 0.6;
  return 0.3;
}

/** A message of `schema`, with each field set with probability ~0.7. */
export function generateMessage(prng: Prng, pool: IdPool, schema: DescMessage, limits: GeneratorLimits, depth = 0): Message {
  return create(schema, generateInit(prng, pool, schema, limits, depth) as never);
}

function generateInit(prng: Prng, pool: IdPool, schema: DescMessage, limits: GeneratorLimits, depth: number): Record<string, unknown> {
  if (schema.typeName === "google.protobuf.Timestamp") return timestampValue(prng);
  const init: Record<string, unknown> = {};
  for (const oneof of schema.oneofs) {
    if (prng.chance(0.05)) continue;
    // Echo most of the time, so the worker runs the step and streams have output.
    const echo = oneof.fields.find((f) => f.name === "echo");
    const field = echo && prng.chance(0.75) ? echo : prng.pick(oneof.fields);
    init[oneof.localName] = { case: field.localName, value: fieldValue(prng, pool, field, limits, depth) };
  }
  for (const field of schema.fields) {
    if (field.oneof || prng.chance(omitChance(field.name))) continue;
    if (field.fieldKind === "list") {
      const n = listLength(prng, limits, field.name);
      const items: unknown[] = [];
      for (let i = 0; i < n; i++) items.push(elementValue(prng, pool, field, limits, depth));
      init[field.localName] = items;
    } else if (field.fieldKind === "map") {
      const map: Record<string, unknown> = {};
      const n = listLength(prng, limits);
      for (let i = 0; i < n; i++) map[stringFor(prng, pool, `${field.name}_key`, 64)] = elementValue(prng, pool, field, limits, depth);
      init[field.localName] = map;
    } else {
      init[field.localName] = fieldValue(prng, pool, field, limits, depth);
    }
  }
  return init;
}

function fieldValue(prng: Prng, pool: IdPool, field: DescField, limits: GeneratorLimits, depth: number): unknown {
  switch (field.fieldKind) {
    case "scalar":
      return scalarValue(prng, pool, field, field.scalar, limits);
    case "enum":
      return enumValue(prng, field.enum.values.map((v) => v.number));
    case "message":
      return depth > 6 ? {} : generateInit(prng, pool, field.message, limits, depth + 1);
    default:
      return elementValue(prng, pool, field, limits, depth);
  }
}

/** A value for one element of a list or map field. */
function elementValue(prng: Prng, pool: IdPool, field: DescField, limits: GeneratorLimits, depth: number): unknown {
  if (field.fieldKind === "list") {
    if (field.listKind === "scalar") return scalarValue(prng, pool, field, field.scalar, limits);
    if (field.listKind === "enum") return enumValue(prng, field.enum.values.map((v) => v.number));
    return depth > 6 ? {} : generateInit(prng, pool, field.message, limits, depth + 1);
  }
  if (field.fieldKind === "map") {
    if (field.mapKind === "scalar") return scalarValue(prng, pool, field, field.scalar, limits);
    if (field.mapKind === "enum") return enumValue(prng, field.enum.values.map((v) => v.number));
    return depth > 6 ? {} : generateInit(prng, pool, field.message, limits, depth + 1);
  }
  return fieldValue(prng, pool, field, limits, depth);
}

function enumValue(prng: Prng, numbers: number[]): number {
  if (prng.chance(0.1)) return prng.pick([-1, 99, 2147483647, -2147483648]);
  return prng.pick(numbers);
}

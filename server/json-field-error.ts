/**
 * Which field of a JSON request is wrong, and what it should be.
 *
 * protobuf-es rejects a bad JSON request with a message about a type, not a
 * field: `cannot decode enum stepq.v1.StepState from JSON: "STEP_STATE_BOGUS"`,
 * `cannot decode message google.protobuf.Timestamp from JSON: invalid RFC
 * 3339 string`. A client needs the field's path and the values it takes, as
 * every other INVALID_ARGUMENT gives them (`operation.infer.messages[0].role:
 * unknown value "BOSS"; use one of CHAT_ROLE_SYSTEM, ...`).
 *
 * The walk asks protobuf-es itself whether each part is valid (fromJson of a
 * message holding just that field, list item or map entry) and descends into
 * the part it refuses, so what counts as valid stays protobuf-es's rule; only
 * the wording is ours. It runs only after a request failed to parse.
 */
import { type DescEnum, type DescField, type DescMessage, fromJson, type JsonValue, ScalarType } from "@bufbuild/protobuf";

type Json = JsonValue;

const RANGES: Partial<Record<ScalarType, string>> = {
  [ScalarType.INT32]: "an integer from -2147483648 to 2147483647",
  [ScalarType.SINT32]: "an integer from -2147483648 to 2147483647",
  [ScalarType.SFIXED32]: "an integer from -2147483648 to 2147483647",
  [ScalarType.UINT32]: "an integer from 0 to 4294967295",
  [ScalarType.FIXED32]: "an integer from 0 to 4294967295",
  [ScalarType.INT64]: "an integer from -9223372036854775808 to 9223372036854775807 (a number or a decimal string)",
  [ScalarType.SINT64]: "an integer from -9223372036854775808 to 9223372036854775807 (a number or a decimal string)",
  [ScalarType.SFIXED64]: "an integer from -9223372036854775808 to 9223372036854775807 (a number or a decimal string)",
  [ScalarType.UINT64]: "an integer from 0 to 18446744073709551615 (a number or a decimal string)",
  [ScalarType.FIXED64]: "an integer from 0 to 18446744073709551615 (a number or a decimal string)",
  [ScalarType.FLOAT]: "a number (32-bit float)",
  [ScalarType.DOUBLE]: "a number",
  [ScalarType.BOOL]: "true or false",
  [ScalarType.STRING]: "a string",
  [ScalarType.BYTES]: "base64 text",
};

/** A JSON value as a short phrase for a message. */
function show(v: Json | undefined): string {
  if (Array.isArray(v)) return "an array";
  if (v !== null && typeof v === "object") return "an object";
  const s = JSON.stringify(v) ?? String(v);
  return s.length > 80 ? `${s.slice(0, 77)}...` : s;
}

function isObject(v: Json): v is { [k: string]: Json } {
  return v !== null && typeof v === "object" && !Array.isArray(v);
}

/** Whether protobuf-es accepts `json` as a `desc`. */
function accepts(desc: DescMessage, json: Json): boolean {
  try {
    fromJson(desc, json, { ignoreUnknownFields: false });
    return true;
  } catch {
    return false;
  }
}

function enumNames(e: DescEnum): string {
  return e.values
    .filter((v) => v.number !== 0)
    .map((v) => v.name)
    .join(", ");
}

/** A value of a field's element type (scalar, enum or message) that protobuf-es refused. */
function valueProblem(path: string, value: Json, kind: { scalar?: ScalarType; enum?: DescEnum; message?: DescMessage }): string | undefined {
  if (kind.enum) {
    if (typeof value === "string") return `${path}: unknown value ${show(value)}; use one of ${enumNames(kind.enum)}`;
    return `${path}: expected one of ${enumNames(kind.enum)} (or its number), got ${show(value)}`;
  }
  if (kind.message) return messageProblem(kind.message, value, path);
  if (kind.scalar !== undefined) return `${path}: expected ${RANGES[kind.scalar] ?? "a scalar"}, got ${show(value)}`;
  return undefined;
}

/** A value for a message-typed field; well-known types with their own JSON form get their own wording. */
function messageProblem(desc: DescMessage, value: Json, path: string): string | undefined {
  if (desc.typeName === "google.protobuf.Timestamp") {
    return `${path}: ${show(value)} is not a timestamp; send an RFC 3339 time in UTC such as "2026-01-31T09:30:00Z" (years 0001 to 9999)`;
  }
  if (desc.typeName.startsWith("google.protobuf.")) return undefined;
  return locate(desc, value, `${path}.`);
}

function fieldProblem(desc: DescMessage, field: DescField, key: string, value: Json, path: string): string | undefined {
  if (accepts(desc, { [key]: value })) return undefined;
  switch (field.fieldKind) {
    case "scalar":
      return valueProblem(path, value, { scalar: field.scalar });
    case "enum":
      return valueProblem(path, value, { enum: field.enum });
    case "message":
      return valueProblem(path, value, { message: field.message });
    case "list": {
      if (!Array.isArray(value)) return `${path}: expected a JSON array, got ${show(value)}`;
      const kind = { scalar: field.scalar, enum: field.enum, message: field.message };
      for (const [i, item] of value.entries()) {
        if (item === null) return `${path}[${i}]: must not be null`;
        if (!accepts(desc, { [key]: [item] })) return valueProblem(`${path}[${i}]`, item, kind);
      }
      return undefined;
    }
    case "map": {
      if (!isObject(value)) return `${path}: expected a JSON object, got ${show(value)}`;
      const kind = { scalar: field.scalar, enum: field.enum, message: field.message };
      for (const [k, v] of Object.entries(value)) {
        if (v === null) return `${path}[${JSON.stringify(k)}]: must not be null`;
        if (!accepts(desc, { [key]: { [k]: v } })) return valueProblem(`${path}[${JSON.stringify(k)}]`, v, kind);
      }
      return undefined;
    }
  }
}

/** The first problem in `json` as a `desc` at `prefix` ("" or "a.b."), or undefined. */
function locate(desc: DescMessage, json: Json, prefix: string): string | undefined {
  const here = prefix === "" ? "the request" : prefix.slice(0, -1);
  if (!isObject(json)) return `${here}: expected a JSON object (${desc.typeName}), got ${show(json)}`;
  const seen = new Map<DescField, string>();
  for (const [key, value] of Object.entries(json)) {
    const field = desc.fields.find((f) => f.jsonName === key || f.name === key);
    if (!field) {
      return `${prefix}${key}: unknown field; ${desc.typeName} has ${desc.fields.map((f) => f.name).join(", ")}`;
    }
    const twice = seen.get(field);
    if (twice !== undefined) return `${prefix}${field.name}: set twice (as "${twice}" and "${key}"); send it once`;
    seen.set(field, key);
    if (value === null) continue;
    const problem = fieldProblem(desc, field, key, value, prefix + field.name);
    if (problem) return problem;
  }
  for (const oneof of desc.oneofs) {
    const set = oneof.fields.filter((f) => seen.has(f) && json[seen.get(f) as string] !== null);
    if (set.length > 1) {
      const names = oneof.fields.map((f) => f.name);
      return `${prefix ? here : oneof.name}: has ${set.map((f) => f.name).join(" and ")}; set exactly one of ${names.join(", ")}`;
    }
  }
  return undefined;
}

/**
 * The message for a JSON request `text` of type `desc` that protobuf-es
 * refused with `err`: the field's path and what it takes, or protobuf-es's
 * own reason when the walk finds nothing more precise.
 */
export function explainJsonError(desc: DescMessage, text: string, err: unknown): string {
  if (text.trim() === "") {
    return `the request is empty; send a JSON object with the fields of ${desc.typeName} (at least {}; with GET, in the message query parameter)`;
  }
  let json: Json;
  try {
    json = JSON.parse(text) as Json;
  } catch (e) {
    return `the request body is not valid JSON (${(e as Error).message}); send a JSON object with the fields of ${desc.typeName}`;
  }
  const found = locate(desc, json, "");
  if (found) return found;
  const reason = (err instanceof Error ? err.message : String(err)).replace(/^cannot decode [^:]* from JSON:? ?/, "");
  return `the request is not a valid ${desc.typeName} in JSON: ${reason}`;
}

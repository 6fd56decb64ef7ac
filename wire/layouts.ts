/**
 * The binary layouts TypeScript and the Lua scripts exchange, declared once.
 *
 * Each layout is a list of little-endian fields. The Lua side is generated
 * from it: `luaLayouts()` defines, in the function library, a `struct`
 * format string per layout (`JOB_HDR = '<BBBHi6i6i6i6I4'`), its size when
 * every field is fixed (`JOB_HDR_SIZE`) and the 1-based position of each
 * fixed field (`JOB_HDR_AT.steps`). The TypeScript readers and writers stay
 * hand-written for speed (they are on the submit, claim and settle paths)
 * but take their sizes and offsets from here, and test/layouts.test.ts holds
 * each of them to `packLayout`/`unpackLayout` and round-trips every layout
 * through Redis's `struct`.
 *
 * Why not msgpack for these (msgpackr is the usual library): the records
 * carry protobuf bytes, and msgpackr writes bytes as `bin`, which Redis's
 * `cmsgpack` refuses, and reads `str` as UTF-8, which corrupts them
 * (measured, see README.md). Fixed positions are also what lets claim and
 * complete rewrite a job's headers without decoding the rest.
 */

/** A field: an unsigned integer (u8, u16, u32), a signed 6-byte time (i48), or bytes after their length (1, 2 or 4 bytes). */
export type FieldType = "u8" | "u16" | "u32" | "i48" | "bytes8" | "bytes16" | "bytes32";

export interface Layout {
  readonly name: string;
  /** What it is for and who writes and reads it. */
  readonly doc: string;
  readonly fields: readonly (readonly [name: string, type: FieldType])[];
}

/** A field's value: a number, or the bytes of a bytes field. */
export type FieldValue = number | Uint8Array;

const LUA_CODE: Record<FieldType, string> = {
  u8: "B",
  u16: "H",
  u32: "I4",
  i48: "i6",
  bytes8: "Bc0",
  bytes16: "Hc0",
  bytes32: "I4c0",
};
/** Bytes of a number, or of a bytes field's length. */
const WIDTH: Record<FieldType, number> = { u8: 1, u16: 2, u32: 4, i48: 6, bytes8: 1, bytes16: 2, bytes32: 4 };
const MAX_BYTES: Partial<Record<FieldType, number>> = { bytes8: 0xff, bytes16: 0xffff, bytes32: 0xffffffff };

function layout<const F extends Layout["fields"]>(name: string, doc: string, fields: F): Layout & { readonly fields: F } {
  return { name, doc, fields };
}

/** The names of a layout's fields. */
type FieldName<L extends Layout> = L["fields"][number][0];

const JOB_HDR = layout("JOB_HDR", "a job record's header (queue/scripts/lib/record.lua; read by queue/job-record.ts)", [
  ["format", "u8"],
  ["flags", "u8"],
  ["state", "u8"],
  ["steps", "u16"],
  ["createdAt", "i48"],
  ["startedAt", "i48"],
  ["finishedAt", "i48"],
  ["retentionMs", "i48"],
  ["indexSeq", "u32"],
  ["tenant", "u16"],
]);
const STEP_HDR = layout("STEP_HDR", "one per step, after JOB_HDR (record.lua; read by job-record.ts)", [
  ["state", "u8"],
  ["queuedIn", "u8"],
  ["flags", "u8"],
  ["attempt", "u32"],
  ["leaseDeadline", "i48"],
  ["startedAt", "i48"],
  ["finishedAt", "i48"],
]);
const SPEC = layout("SPEC", "one per step, after the step headers, never changed (record.lua; written in a SIMPLE job's body by queue/record-body.ts)", [
  ["name", "bytes8"],
  ["route", "bytes16"],
  ["operation", "bytes32"],
  ["timeoutMs", "u32"],
]);

/** Every layout, by name. */
export const LAYOUTS = {
  JOB_HDR,
  STEP_HDR,
  HEADERS_1: layout("HEADERS_1", "both headers of a one-step job, packed and unpacked in one call (claim.lua, complete.lua)", [
    ...JOB_HDR.fields,
    ...STEP_HDR.fields.map(([n, t]) => [`step.${n}`, t] as const),
  ]),
  SPEC,
  SPEC_NAMES: layout("SPEC_NAMES", "the start of SPEC: a step's name and route (submitJobs.lua, complete.lua)", SPEC.fields.slice(0, 2)),
  JOB_SPEC: layout("JOB_SPEC", "one submitted job (queue/submit.ts writes, submitJobs.lua reads)", [
    ["kind", "u8"],
    ["tenant", "u16"],
    ["jobId", "bytes8"],
    ["idempotencyKey", "bytes8"],
    ["requestDigest", "bytes8"],
    ["retentionMs", "i48"],
    ["body", "bytes32"],
  ]),
  OUTCOME_OK: layout("OUTCOME_OK", "a stored job in the submit reply (submitJobs.lua writes, submit.ts reads)", [
    ["code", "u8"],
    ["jobId", "bytes8"],
    ["deduplicated", "u8"],
    ["record", "bytes32"],
  ]),
  OUTCOME_QUEUE_FULL: layout("OUTCOME_QUEUE_FULL", "a job refused because its route is full, in the submit reply", [
    ["code", "u8"],
    ["route", "bytes16"],
    ["queued", "u32"],
    ["max", "u32"],
  ]),
  OUTCOME_RATE_LIMITED: layout("OUTCOME_RATE_LIMITED", "a job refused because its tenant used up its submits per second, in the submit reply", [
    ["code", "u8"],
    ["max", "u32"],
    ["nth", "u32"],
  ]),
  OUTCOME_TENANT_FULL: layout("OUTCOME_TENANT_FULL", "a job refused because its tenant has as many steps waiting as its quota allows, in the submit reply", [
    ["code", "u8"],
    ["waiting", "u32"],
    ["adding", "u32"],
    ["max", "u32"],
  ]),
  APPEND: layout("APPEND", "a running step's output (queue/append-outputs.ts writes, appendOutput.lua reads)", [
    ["jobId", "bytes8"],
    ["stepIndex", "u16"],
    ["attempt", "u32"],
    ["firstSeq", "u32"],
    ["output", "bytes32"],
  ]),
  COMPLETION: layout("COMPLETION", "a finished step (queue/lease-records.ts writes, settleSteps.lua reads)", [
    ["jobId", "bytes8"],
    ["stepIndex", "u16"],
    ["attempt", "u32"],
    ["firstSeq", "u32"],
    ["result", "bytes32"],
    ["output", "bytes32"],
  ]),
  CLAIMED: layout(
    "CLAIMED",
    "a claimed step in a claim or settle reply: its lease, SPEC and dependencies' results as msgpack (claim.lua writes, queue/claimed-steps.ts reads)",
    [["jobId", "bytes8"], ["stepIndex", "u16"], ["attempt", "u32"], ["leaseDeadline", "i48"], ["submittedAt", "i48"], ["readyAt", "i48"], ["traceparent", "bytes8"], ...SPEC.fields, ["dependencies", "bytes32"]],
  ),
  CLAIMED_HEAD: layout("CLAIMED_HEAD", "the lease part of CLAIMED, which claim.lua packs apart from the stored SPEC", [
    ["jobId", "bytes8"],
    ["stepIndex", "u16"],
    ["attempt", "u32"],
    ["leaseDeadline", "i48"],
    ["submittedAt", "i48"],
    ["readyAt", "i48"],
    ["traceparent", "bytes8"],
  ]),
} as const satisfies Record<string, Layout>;

export type LayoutName = keyof typeof LAYOUTS;

/** The layout's `struct` format string (Lua's `struct.pack`/`unpack`). */
export function luaFormat(l: Layout): string {
  return `<${l.fields.map(([, t]) => LUA_CODE[t]).join("")}`;
}

function isBytes(t: FieldType): boolean {
  return t.startsWith("bytes");
}

/** The layout's size in bytes; it must have no bytes fields. */
export function fixedSize(l: Layout): number {
  let size = 0;
  for (const [name, t] of l.fields) {
    if (isBytes(t)) throw new Error(`${l.name}.${name} has a variable size`);
    size += WIDTH[t];
  }
  return size;
}

/** The bytes a record of the layout takes besides the contents of its bytes fields. */
export function overheadOf(l: Layout): number {
  let size = 0;
  for (const [, t] of l.fields) size += WIDTH[t];
  return size;
}

/** The 0-based offset of each field before the first bytes field. */
export function offsetsOf<L extends Layout>(l: L): Readonly<Record<FieldName<L>, number>> {
  const at: Record<string, number> = {};
  let p = 0;
  for (const [name, t] of l.fields) {
    at[name] = p;
    if (isBytes(t)) break;
    p += WIDTH[t];
  }
  return at as Record<FieldName<L>, number>;
}

function writeInt(b: Buffer, t: FieldType, v: number, p: number): number {
  switch (WIDTH[t]) {
    case 1:
      return b.writeUInt8(v, p);
    case 2:
      return b.writeUInt16LE(v, p);
    case 4:
      return b.writeUInt32LE(v, p);
    default:
      return b.writeIntLE(v, p, 6);
  }
}

function readInt(b: Buffer, t: FieldType, p: number): number {
  switch (WIDTH[t]) {
    case 1:
      return b.readUInt8(p);
    case 2:
      return b.readUInt16LE(p);
    case 4:
      return b.readUInt32LE(p);
    default:
      return b.readIntLE(p, 6);
  }
}

/** Packs `values` (one per field, by name) as the layout says: the reference the hand-written writers are held to. */
export function packLayout(l: Layout, values: Readonly<Record<string, FieldValue>>): Buffer {
  const parts: Buffer[] = [];
  for (const [name, t] of l.fields) {
    const v = values[name];
    if (v === undefined) throw new Error(`${l.name}.${name}: no value`);
    if (isBytes(t)) {
      if (typeof v === "number") throw new Error(`${l.name}.${name}: bytes expected`);
      if (v.length > (MAX_BYTES[t] as number)) throw new Error(`${l.name}.${name}: ${v.length} bytes do not fit ${t}`);
      const len = Buffer.alloc(WIDTH[t]);
      writeInt(len, t, v.length, 0);
      parts.push(len, Buffer.from(v));
    } else {
      if (typeof v !== "number") throw new Error(`${l.name}.${name}: a number expected`);
      const b = Buffer.alloc(WIDTH[t]);
      writeInt(b, t, v, 0);
      parts.push(b);
    }
  }
  return Buffer.concat(parts);
}

/** Reads one record of the layout at `pos`: its values by field name and the position after it. */
export function unpackLayout(l: Layout, b: Buffer, pos = 0): { values: Record<string, FieldValue>; end: number } {
  const values: Record<string, FieldValue> = {};
  let p = pos;
  for (const [name, t] of l.fields) {
    const n = readInt(b, t, p);
    p += WIDTH[t];
    if (isBytes(t)) {
      if (p + n > b.length) throw new RangeError(`${l.name}.${name}: ${n} bytes run past the end`);
      values[name] = b.subarray(p, p + n);
      p += n;
    } else {
      values[name] = n;
    }
  }
  return { values, end: p };
}

/**
 * The Lua definitions of every layout, for the function library: per layout
 * its format string, and when all its fields are fixed its size and a table
 * of each field's 1-based position.
 */
export function luaLayouts(): string {
  const lines: string[] = [];
  for (const l of Object.values(LAYOUTS) as Layout[]) {
    lines.push(`local ${l.name} = '${luaFormat(l)}'`);
    if (l.fields.some(([, t]) => isBytes(t))) continue;
    lines.push(`local ${l.name}_SIZE = ${fixedSize(l)}`);
    const at = Object.entries(offsetsOf(l))
      .filter(([name]) => /^[a-zA-Z]\w*$/.test(name))
      .map(([name, p]) => `${name} = ${p + 1}`);
    lines.push(`local ${l.name}_AT = {${at.join(", ")}}`);
  }
  return lines.join("\n");
}

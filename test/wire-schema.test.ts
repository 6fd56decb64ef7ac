/**
 * Issue 14, item 3: every hand-written encoder in wire/ checks, when it is
 * loaded, that the generated schema is the one it was written for (field
 * numbers, names and types), and uses protobuf-es's toBinary otherwise.
 * The byte-for-byte tests are per encoder (operation-encoding, step-result,
 * output-lane); this one tests the check.
 */
import { type DescField, type DescMessage, ScalarType } from "@bufbuild/protobuf";
import { describe, expect, it } from "vitest";
import { UsageSchema } from "../gen/stepq/v1/step_pb.js";
import { OPERATION_FIELDS, SCHEMA_KNOWN as OPERATION_KNOWN } from "../wire/operation-encoding.js";
import { schemaIs } from "../wire/protobuf-wire.js";
import { STEP_RESULT_FIELDS } from "../wire/step-result.js";
import { SCHEMA_KNOWN as TOKENS_KNOWN } from "../wire/token-chunk-encoding.js";

/** `desc` with its fields changed by `change` (a copy: the generated descriptor is left alone). */
function altered(desc: DescMessage, change: (fields: DescField[]) => DescField[]): DescMessage {
  return { ...desc, fields: change(desc.fields.map((f) => ({ ...f }) as DescField)) } as DescMessage;
}

describe("the encoders' schema check", () => {
  it("passes for the schema the encoders were written for", () => {
    expect(OPERATION_KNOWN).toBe(true);
    expect(TOKENS_KNOWN).toBe(true);
    expect(schemaIs(STEP_RESULT_FIELDS)).toBe(true);
    expect(schemaIs(OPERATION_FIELDS)).toBe(true);
  });

  it("fails when a field is added, removed, renumbered, renamed or retyped", () => {
    const usage = STEP_RESULT_FIELDS[1] as [DescMessage, string];
    const check = (d: DescMessage) => schemaIs([[d, usage[1]]]);
    expect(check(UsageSchema)).toBe(true);
    const extra = { ...UsageSchema.fields[0], number: 6, localName: "cachedTokens" } as DescField;
    expect(check(altered(UsageSchema, (f) => [...f, extra]))).toBe(false);
    expect(check(altered(UsageSchema, (f) => f.slice(1)))).toBe(false);
    expect(check(altered(UsageSchema, (f) => f.map((x) => (x.number === 4 ? ({ ...x, number: 9 } as DescField) : x))))).toBe(false);
    expect(check(altered(UsageSchema, (f) => f.map((x) => (x.number === 1 ? ({ ...x, localName: "inputTokens" } as DescField) : x))))).toBe(false);
    expect(
      check(altered(UsageSchema, (f) => f.map((x) => (x.number === 2 ? ({ ...x, scalar: ScalarType.UINT64 } as DescField) : x)))),
    ).toBe(false);
  });
});

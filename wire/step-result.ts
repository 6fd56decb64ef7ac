/**
 * Encodes a step's result (`stepq.v1.StepResult`) for its completion.
 *
 * Every successful step is encoded once, so this sits on the worker's hot
 * path: a result without embeddings (every infer and echo step) is written
 * by hand, ~10× faster than protobuf-es's reflective `toBinary`, in exactly
 * the bytes `toBinary` writes (field order, implicit presence: zero values
 * left out, the `usage` message always present). test/step-result.test.ts
 * holds the two to the same output. Results with embeddings go through
 * `toBinary`, and so does every result while the generated schema is not
 * the one this was written for (a field added, renumbered or retyped).
 */
import { create, toBinary } from "@bufbuild/protobuf";
import { StepResultSchema, UsageSchema } from "../gen/stepq/v1/step_pb.js";
import { schemaIs, strFieldSize, uintFieldSize, varintSize, writeUintField, writeVarint } from "./protobuf-wire.js";

/** The fields, numbers and types the hand-written path writes. */
export const STEP_RESULT_FIELDS: [typeof StepResultSchema | typeof UsageSchema, string][] = [
  [StepResultSchema, "1:text:string 2:embeddings:list 3:usage:message 4:stopReason:enum"],
  [UsageSchema, "1:promptTokens:uint32 2:completionTokens:uint32 3:timeToFirstTokenMs:uint32 4:durationMs:uint32 5:tokensPerSecond:float"],
];
const SCHEMA_KNOWN = schemaIs(STEP_RESULT_FIELDS);

/** The fields of a result, as the worker computes them. */
export interface ResultFields {
  text: string;
  embeddings: readonly (readonly number[])[];
  promptTokens: number;
  completionTokens: number;
  timeToFirstTokenMs: number;
  durationMs: number;
  tokensPerSecond: number;
  /** `stepq.v1.StopReason` number. */
  stopReason: number;
}

/** `r` as a StepResult in protobuf binary. */
export function encodeStepResult(r: ResultFields): Uint8Array {
  const ints = [r.promptTokens, r.completionTokens, r.timeToFirstTokenMs, r.durationMs];
  if (!SCHEMA_KNOWN || r.embeddings.length > 0 || ints.some((n) => !Number.isInteger(n) || n < 0 || n > 0xffffffff)) {
    return encodeStepResultWithToBinary(r);
  }
  const textBytes = Buffer.byteLength(r.text);
  const tps = Math.fround(r.tokensPerSecond);
  let usage = uintFieldSize(ints[0] as number) + uintFieldSize(ints[1] as number) + uintFieldSize(ints[2] as number) + uintFieldSize(ints[3] as number);
  if (tps !== 0 || Object.is(tps, -0)) usage += 5;
  const size = strFieldSize(textBytes) + 1 + varintSize(usage) + usage + uintFieldSize(r.stopReason);
  const b = Buffer.allocUnsafe(size);
  let p = 0;
  if (textBytes > 0) {
    b[p] = 0x0a;
    p = writeVarint(b, p + 1, textBytes);
    p += b.write(r.text, p, "utf8");
  }
  b[p] = 0x1a;
  p = writeVarint(b, p + 1, usage);
  p = writeUintField(b, p, 0x08, ints[0] as number);
  p = writeUintField(b, p, 0x10, ints[1] as number);
  p = writeUintField(b, p, 0x18, ints[2] as number);
  p = writeUintField(b, p, 0x20, ints[3] as number);
  if (tps !== 0 || Object.is(tps, -0)) {
    b[p] = 0x2d;
    b.writeFloatLE(tps, p + 1);
    p += 5;
  }
  writeUintField(b, p, 0x20, r.stopReason);
  return b;
}

/** `r` encoded by protobuf-es's `toBinary`: results with embeddings, and the reference the tests hold the fast path to. */
export function encodeStepResultWithToBinary(r: ResultFields): Uint8Array {
  return toBinary(
    StepResultSchema,
    create(StepResultSchema, {
      text: r.text,
      embeddings: r.embeddings.map((values) => ({ values: [...values] })),
      usage: {
        promptTokens: r.promptTokens,
        completionTokens: r.completionTokens,
        timeToFirstTokenMs: r.timeToFirstTokenMs,
        durationMs: r.durationMs,
        tokensPerSecond: r.tokensPerSecond,
      },
      stopReason: r.stopReason,
    }),
  );
}

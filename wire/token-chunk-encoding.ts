/**
 * Encodes a token chunk response (StreamJobOutputResponse or
 * StreamTokensResponse with `event.tokens` set) straight from its log entry.
 *
 * Token chunks are most of what output streams send, so the direct writer
 * (server/output-lane.ts) encodes them by hand, several times faster than
 * creating the message and running protobuf-es's reflective `toBinary`, in
 * exactly the bytes `toBinary` writes; test/output-lane.test.ts holds the
 * two to the same output. While the generated schema is not the one this
 * was written for, every chunk goes through `toBinary`.
 */
import { toBinary } from "@bufbuild/protobuf";
import { StreamJobOutputResponseSchema } from "../gen/stepq/v1/job_service_pb.js";
import { TokenChunkSchema, TokenSchema } from "../gen/stepq/v1/output_pb.js";
import { StreamTokensResponseSchema } from "../gen/stepq/v1/step_service_pb.js";
import { stepIdOf } from "../queue/ids.js";
import { isUint32, schemaIs, strFieldSize, uintFieldSize, varintSize, WireWriter } from "./protobuf-wire.js";
import { type NamedJob, toTokenChunk } from "../server/convert.js";
import { type TokensEntry, type TokensResponseSchema, tokensMessage } from "../server/output-streams.js";

export const SCHEMA_KNOWN =
  schemaIs([
    [TokenChunkSchema, "1:cursor:string 2:stepId:string 3:stepName:string 4:attempt:uint32 5:tokens:list"],
    [TokenSchema, "1:index:uint32 2:text:string"],
  ]) &&
  [StreamJobOutputResponseSchema, StreamTokensResponseSchema].every((s) => {
    const f = s.fields.find((x) => x.number === 1);
    return f?.localName === "tokens" && f.message === TokenChunkSchema;
  });


/** The response carrying `entry`'s tokens, in protobuf binary. */
export function encodeTokensResponse(schema: TokensResponseSchema, job: NamedJob, entry: TokensEntry): Uint8Array {
  const last = entry.firstIndex + entry.texts.length - 1;
  if (!SCHEMA_KNOWN || !isUint32(entry.attempt) || !isUint32(entry.firstIndex) || !isUint32(last)) {
    return toBinary(schema, tokensMessage(schema, toTokenChunk(job, entry)) as never);
  }
  const stepId = stepIdOf(job.id, entry.stepIndex);
  const stepName = job.steps[entry.stepIndex]?.name ?? "";
  const cursorLen = Buffer.byteLength(entry.cursor, "utf8");
  const idLen = Buffer.byteLength(stepId, "utf8");
  const nameLen = Buffer.byteLength(stepName, "utf8");
  const textLens = entry.texts.map((t) => Buffer.byteLength(t, "utf8"));
  const tokenLens = textLens.map((len, i) => uintFieldSize(entry.firstIndex + i) + strFieldSize(len));
  let chunk = strFieldSize(cursorLen) + strFieldSize(idLen) + strFieldSize(nameLen) + uintFieldSize(entry.attempt);
  // Repeated messages are written even when empty.
  for (const len of tokenLens) chunk += 1 + varintSize(len) + len;
  const w = new WireWriter(1 + varintSize(chunk) + chunk);
  w.buf[w.pos++] = 0x0a; // event.tokens = 1
  w.varint(chunk);
  if (cursorLen > 0) w.str(0x0a, entry.cursor, cursorLen);
  if (idLen > 0) w.str(0x12, stepId, idLen);
  if (nameLen > 0) w.str(0x1a, stepName, nameLen);
  w.uint(0x20, entry.attempt);
  entry.texts.forEach((text, i) => {
    w.buf[w.pos++] = 0x2a;
    w.varint(tokenLens[i] as number);
    w.uint(0x08, entry.firstIndex + i);
    if (text !== "") w.str(0x12, text, textLens[i] as number);
  });
  return w.buf;
}

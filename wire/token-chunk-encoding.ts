/**
 * Encodes a token chunk response (StreamJobOutputResponse or
 * StreamTokensResponse with `event.tokens` set) straight from its log entry.
 *
 * Token chunks are most of what output streams send, so the direct writer
 * (server/output-lane.ts) encodes them by hand, several times faster than
 * creating the message and running protobuf-es's reflective `toBinary`, in
 * exactly the bytes `toBinary` writes; test/output-lane.test.ts holds the
 * two to the same output. It returns undefined when it cannot write the
 * chunk (the generated schema is not the one this was written for, or a
 * number is out of range) and the caller (server/output-streams.ts,
 * encodeTokensResponse) then goes through `toBinary`.
 */
import { StreamJobOutputResponseSchema } from "../gen/stepq/v1/job_service_pb.js";
import { TokenChunkSchema, TokenSchema } from "../gen/stepq/v1/output_pb.js";
import { StreamTokensResponseSchema } from "../gen/stepq/v1/step_service_pb.js";
import { isUint32, schemaIs, strFieldSize, uintFieldSize, varintSize, WireWriter } from "./protobuf-wire.js";

/** The fields of a TokenChunk, its tokens numbered from `firstIndex`. */
export interface TokenChunkFields {
  readonly cursor: string;
  readonly stepId: string;
  readonly stepName: string;
  readonly attempt: number;
  readonly firstIndex: number;
  readonly texts: readonly string[];
}

export const SCHEMA_KNOWN =
  schemaIs([
    [TokenChunkSchema, "1:cursor:string 2:stepId:string 3:stepName:string 4:attempt:uint32 5:tokens:list"],
    [TokenSchema, "1:index:uint32 2:text:string"],
  ]) &&
  [StreamJobOutputResponseSchema, StreamTokensResponseSchema].every((s) => {
    const f = s.fields.find((x) => x.number === 1);
    return f?.localName === "tokens" && f.message === TokenChunkSchema;
  });


/**
 * A StreamJobOutputResponse or StreamTokensResponse (the same bytes: both
 * carry the chunk as field 1) with `entry`'s tokens, in protobuf binary; or
 * undefined when only `toBinary` can write it.
 */
export function encodeTokenChunkResponse(entry: TokenChunkFields): Uint8Array | undefined {
  const last = entry.firstIndex + entry.texts.length - 1;
  if (!SCHEMA_KNOWN || !isUint32(entry.attempt) || !isUint32(entry.firstIndex) || !isUint32(last)) return undefined;
  const { stepId, stepName } = entry;
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

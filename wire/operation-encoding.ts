/**
 * Encodes a step's `stepq.v1.Operation` for its record.
 *
 * Every submit encodes one, so this is on the submit path: infer, embed and
 * echo operations are written by hand, several times faster than
 * protobuf-es's reflective `toBinary`, in exactly the bytes `toBinary`
 * writes (field order, implicit and explicit presence). test/
 * operation-encoding.test.ts holds the two to the same output.
 *
 * The hand-written encoder is used only while the generated schema is the
 * one it was written for: a field added to operation.proto (or a message
 * carrying unknown fields) goes through `toBinary`, so nothing is dropped.
 */
import { type DescMessage, toBinary } from "@bufbuild/protobuf";
import {
  ChatMessageSchema,
  type EchoOperation,
  EchoOperationSchema,
  type EmbedOperation,
  EmbedOperationSchema,
  type InferOperation,
  InferOperationSchema,
  type Operation,
  OperationSchema,
} from "../gen/stepq/v1/operation_pb.js";
import { isUint32, schemaIs, strFieldSize, uintFieldSize, varintSize, WireWriter as Out } from "./protobuf-wire.js";

/** The fields this encoder writes, per message: `number:name:type`. */
export const OPERATION_FIELDS: [DescMessage, string][] = [
  [OperationSchema, "1:infer:message 2:embed:message 3:echo:message"],
  [
    InferOperationSchema,
    "1:model:string 2:prompt:string 3:messages:list 4:maxTokens:int32 5:temperature:float 6:topP:float 7:topK:int32 8:seed:uint32 9:stop:list",
  ],
  [ChatMessageSchema, "1:role:enum 2:content:string"],
  [EmbedOperationSchema, "1:model:string 2:inputs:list"],
  [
    EchoOperationSchema,
    "1:text:string 2:tokenCount:uint32 3:tokenDelayMs:uint32 4:delayMs:uint32 5:failMessage:string 6:failAttempts:uint32 7:failPermanently:bool",
  ],
];

/** Whether the generated schema is the one the hand-written encoder knows (else every operation goes through toBinary). */
export const SCHEMA_KNOWN = schemaIs(OPERATION_FIELDS);

const utf8 = (s: string) => Buffer.byteLength(s, "utf8");

const hasUnknown = (m: { $unknown?: unknown[] }) => m.$unknown !== undefined && m.$unknown.length > 0;

function viaToBinary(op: Operation): Uint8Array {
  return toBinary(OperationSchema, op);
}

/** `op` in protobuf binary. */
export function encodeOperation(op: Operation): Uint8Array {
  if (!SCHEMA_KNOWN || hasUnknown(op)) return viaToBinary(op);
  const k = op.kind;
  const bytes =
    k.case === "echo" ? encodeEcho(k.value) : k.case === "embed" ? encodeEmbed(k.value) : k.case === "infer" ? encodeInfer(k.value) : undefined;
  return bytes ?? viaToBinary(op);
}

/** An Operation holding `v` as `echo` (field 3), or undefined when only toBinary can write it. */
function encodeEcho(v: EchoOperation): Uint8Array | undefined {
  if (hasUnknown(v) || !isUint32(v.tokenCount) || !isUint32(v.tokenDelayMs) || !isUint32(v.delayMs) || !isUint32(v.failAttempts)) {
    return undefined;
  }
  const textLen = utf8(v.text);
  const failLen = utf8(v.failMessage);
  const inner =
    strFieldSize(textLen) +
    uintFieldSize(v.tokenCount) +
    uintFieldSize(v.tokenDelayMs) +
    uintFieldSize(v.delayMs) +
    strFieldSize(failLen) +
    uintFieldSize(v.failAttempts) +
    (v.failPermanently ? 2 : 0);
  const o = new Out(1 + varintSize(inner) + inner);
  o.buf[o.pos++] = 0x1a;
  o.varint(inner);
  if (v.text !== "") o.str(0x0a, v.text, textLen);
  o.uint(0x10, v.tokenCount);
  o.uint(0x18, v.tokenDelayMs);
  o.uint(0x20, v.delayMs);
  if (v.failMessage !== "") o.str(0x2a, v.failMessage, failLen);
  o.uint(0x30, v.failAttempts);
  if (v.failPermanently) (o.buf[o.pos++] = 0x38), (o.buf[o.pos++] = 1);
  return o.buf;
}

/** An Operation holding `v` as `embed` (field 2), or undefined when only toBinary can write it. */
function encodeEmbed(v: EmbedOperation): Uint8Array | undefined {
  if (hasUnknown(v)) return undefined;
  const modelLen = utf8(v.model);
  const lens = v.inputs.map(utf8);
  let inner = strFieldSize(modelLen);
  // Repeated strings are written even when empty.
  for (const len of lens) inner += 1 + varintSize(len) + len;
  const o = new Out(1 + varintSize(inner) + inner);
  o.buf[o.pos++] = 0x12;
  o.varint(inner);
  if (v.model !== "") o.str(0x0a, v.model, modelLen);
  v.inputs.forEach((s, i) => o.str(0x12, s, lens[i] as number));
  return o.buf;
}

/** An Operation holding `v` as `infer` (field 1), or undefined when only toBinary can write it. */
function encodeInfer(v: InferOperation): Uint8Array | undefined {
  if (
    hasUnknown(v) ||
    v.messages.some((m) => hasUnknown(m) || !isUint32(m.role)) ||
    !isUint32(v.maxTokens) ||
    (v.topK !== undefined && !isUint32(v.topK)) ||
    (v.seed !== undefined && !isUint32(v.seed))
  ) {
    return undefined;
  }
  const modelLen = utf8(v.model);
  const promptLen = utf8(v.prompt);
  const messages = v.messages.map((m) => {
    const contentLen = utf8(m.content);
    return { size: uintFieldSize(m.role) + strFieldSize(contentLen), contentLen };
  });
  const stopLens = v.stop.map(utf8);
  let inner = strFieldSize(modelLen) + strFieldSize(promptLen) + uintFieldSize(v.maxTokens);
  for (const m of messages) inner += 1 + varintSize(m.size) + m.size;
  if (v.temperature !== undefined) inner += 5;
  if (v.topP !== undefined) inner += 5;
  if (v.topK !== undefined) inner += 1 + varintSize(v.topK);
  if (v.seed !== undefined) inner += 1 + varintSize(v.seed);
  for (const len of stopLens) inner += 1 + varintSize(len) + len;
  const o = new Out(1 + varintSize(inner) + inner);
  o.buf[o.pos++] = 0x0a;
  o.varint(inner);
  if (v.model !== "") o.str(0x0a, v.model, modelLen);
  if (v.prompt !== "") o.str(0x12, v.prompt, promptLen);
  v.messages.forEach((m, i) => {
    const mm = messages[i] as { size: number; contentLen: number };
    o.buf[o.pos++] = 0x1a;
    o.varint(mm.size);
    o.uint(0x08, m.role);
    if (m.content !== "") o.str(0x12, m.content, mm.contentLen);
  });
  o.uint(0x20, v.maxTokens);
  if (v.temperature !== undefined) o.float(0x2d, v.temperature);
  if (v.topP !== undefined) o.float(0x35, v.topP);
  if (v.topK !== undefined) (o.buf[o.pos++] = 0x38), o.varint(v.topK);
  if (v.seed !== undefined) (o.buf[o.pos++] = 0x40), o.varint(v.seed);
  v.stop.forEach((s, i) => o.str(0x4a, s, stopLens[i] as number));
  return o.buf;
}

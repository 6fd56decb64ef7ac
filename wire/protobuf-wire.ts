/**
 * Protobuf wire-format pieces for the hand-written encoders of the hot
 * paths (wire/operation-encoding.ts, wire/step-result.ts,
 * wire/token-chunk-encoding.ts), and the schema check that makes each fall
 * back to toBinary when the generated schema is not the one it was written for.
 */
import { type DescField, type DescMessage, ScalarType } from "@bufbuild/protobuf";

/** Whether `n` fits a uint32 field (the hand-written encoders leave anything else to toBinary). */
export const isUint32 = (n: number) => Number.isInteger(n) && n >= 0 && n <= 0xffffffff;

/** Bytes of `n` (a non-negative integer below 2^53) as a varint. */
export function varintSize(n: number): number {
  let size = 1;
  while (n >= 0x80) {
    n = Math.floor(n / 128);
    size++;
  }
  return size;
}

/** Writes `n` as a varint at `p`; returns the position after it. */
export function writeVarint(b: Buffer, p: number, n: number): number {
  while (n >= 0x80) {
    b[p++] = (n & 0x7f) | 0x80;
    n = Math.floor(n / 128);
  }
  b[p++] = n;
  return p;
}

/** Bytes of a varint field with implicit presence (tag + value), 0 when the value is 0 (left out). */
export function uintFieldSize(n: number): number {
  return n === 0 ? 0 : 1 + varintSize(n);
}

/** Writes a varint field (one-byte `tag`, then `n`) at `p` unless `n` is 0; returns the position after it. */
export function writeUintField(b: Buffer, p: number, tag: number, n: number): number {
  if (n === 0) return p;
  b[p] = tag;
  return writeVarint(b, p + 1, n);
}

/** Bytes of a string field with implicit presence (tag + length + `len` bytes), 0 when empty (left out). */
export function strFieldSize(len: number): number {
  return len === 0 ? 0 : 1 + varintSize(len) + len;
}

/**
 * Whether each message's fields are exactly `number:localName …` (a
 * hand-written encoder's guard against schema drift). A field written
 * `number:localName:type` must also have that type: a scalar's name
 * (`uint32`, `string`, `float`…), or `message`, `enum`, `list`, `map`.
 */
export function schemaIs(expected: readonly [DescMessage, string][]): boolean {
  return expected.every(([desc, fields]) => {
    const wanted = fields.split(" ");
    if (wanted.length !== desc.fields.length) return false;
    return wanted.every((w) => {
      const [number, name, type] = w.split(":");
      const f = desc.fields.find((x) => x.number === Number(number));
      return f !== undefined && f.localName === name && (type === undefined || fieldType(f) === type);
    });
  });
}

/** A field's type as schemaIs names it. */
export function fieldType(f: DescField): string {
  return f.fieldKind === "scalar" ? ScalarType[f.scalar].toLowerCase() : f.fieldKind;
}

/** A buffer of known size filled front to back: encoders size a message first, then write it. */
export class WireWriter {
  buf: Buffer;
  pos = 0;
  constructor(size: number) {
    this.buf = Buffer.allocUnsafe(size);
  }
  varint(n: number): void {
    this.pos = writeVarint(this.buf, this.pos, n);
  }
  /** A varint field with implicit presence: left out when 0. */
  uint(tag: number, n: number): void {
    this.pos = writeUintField(this.buf, this.pos, tag, n);
  }
  /** A string field of `len` UTF-8 bytes (written even when empty: callers leave out empty implicit-presence fields). */
  str(tag: number, s: string, len: number): void {
    this.buf[this.pos++] = tag;
    this.varint(len);
    this.pos += this.buf.write(s, this.pos, "utf8");
  }
  float(tag: number, v: number): void {
    this.buf[this.pos++] = tag;
    this.buf.writeFloatLE(v, this.pos);
    this.pos += 4;
  }
}

/**
 * Protobuf wire-format pieces for the hand-written encoders of the hot
 * paths (queue/operation-encoding.ts, worker/step-result.ts).
 */

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

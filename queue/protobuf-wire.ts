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

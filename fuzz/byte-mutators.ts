/**
 * Mutations of a binary protobuf body: bit flips, truncation, appended
 * garbage, and hand-written wire data the generator cannot produce (unknown
 * fields of every wire type, over-long varints, lengths past the end, deeply
 * nested groups).
 */
import type { Prng } from "./prng.js";

function varint(n: bigint): Buffer {
  const out: number[] = [];
  let v = BigInt.asUintN(64, n);
  do {
    let b = Number(v & 0x7fn);
    v >>= 7n;
    if (v > 0n) b |= 0x80;
    out.push(b);
  } while (v > 0n);
  return Buffer.from(out);
}

function tag(field: number, wireType: number): Buffer {
  return varint(BigInt((field << 3) | wireType));
}

/** Raw protobuf wire snippets, valid and not. */
function wireSnippet(prng: Prng): { bytes: Buffer; label: string } {
  const field = prng.pick([1, 2, 3, 4, 5, 99, 536870911]);
  switch (prng.int(0, 8)) {
    case 0:
      return { bytes: Buffer.concat([tag(field, 0), varint(prng.pick([0n, -1n, 1n << 63n]))]), label: `varint(${field})` };
    case 1:
      return { bytes: Buffer.concat([tag(field, 2), varint(BigInt(prng.pick([0, 5, 1 << 30, 0xffffffff]))), Buffer.from("abc")]), label: `length-past-end(${field})` };
    case 2:
      return { bytes: Buffer.concat([tag(field, 0), Buffer.alloc(11, 0xff)]), label: "overlong-varint" };
    case 3: {
      const depth = prng.pick([10, 100, 10_000, 100_000]);
      return { bytes: Buffer.concat([Buffer.concat(Array(depth).fill(tag(99, 3))), Buffer.concat(Array(depth).fill(tag(99, 4)))]), label: `nested-groups(${depth})` };
    }
    case 4:
      return { bytes: Buffer.concat([tag(field, prng.pick([6, 7])), Buffer.from([1, 2, 3])]), label: "bad-wire-type" };
    case 5:
      return { bytes: Buffer.concat([tag(field, 5), Buffer.from([1, 2])]), label: "short-fixed32" };
    case 6:
      return { bytes: tag(field, 4), label: "stray-end-group" };
    case 7:
      return { bytes: Buffer.concat([tag(field, 2), varint(3n), Buffer.from([0xff, 0xfe, 0xc0])]), label: `invalid-utf8(${field})` };
    default:
      return { bytes: Buffer.from([0]), label: "field-zero" };
  }
}

/** A mutated copy of `body`, and what was done. */
export function mutateBytes(prng: Prng, body: Buffer): { bytes: Buffer; label: string } {
  const kind = prng.weighted({ bitFlip: 4, truncate: 3, append: 2, wire: 5, random: 1 });
  switch (kind) {
    case "bitFlip": {
      if (body.length === 0) return { bytes: Buffer.from([prng.int(0, 255)]), label: "bytes:one-random" };
      const out = Buffer.from(body);
      const flips = prng.int(1, 4);
      for (let i = 0; i < flips; i++) {
        const at = prng.int(0, out.length - 1);
        out[at] = (out[at] as number) ^ (1 << prng.int(0, 7));
      }
      return { bytes: out, label: `bytes:bit-flip(${flips})` };
    }
    case "truncate":
      return { bytes: body.subarray(0, prng.int(0, Math.max(0, body.length - 1))), label: "bytes:truncate" };
    case "append":
      return { bytes: Buffer.concat([body, prng.bytes(prng.int(1, 32))]), label: "bytes:append-garbage" };
    case "wire": {
      const snippet = wireSnippet(prng);
      const bytes = prng.chance(0.5) ? Buffer.concat([body, snippet.bytes]) : Buffer.concat([snippet.bytes, body]);
      return { bytes, label: `bytes:wire-${snippet.label}` };
    }
    default:
      return { bytes: prng.bytes(prng.int(1, 200)), label: "bytes:random" };
  }
}

/**
 * The 5-byte envelope of Connect streaming, gRPC and gRPC-Web messages
 * (flags, big-endian length, data), and the ways the fuzzer breaks it.
 */
import { gzipSync } from "node:zlib";
import type { Prng } from "./prng.js";

/** One enveloped message. */
export function envelope(flags: number, data: Buffer, length = data.length): Buffer {
  const head = Buffer.alloc(5);
  head[0] = flags;
  head.writeUInt32BE(length >>> 0, 1);
  return Buffer.concat([head, data]);
}

/** A broken envelope around `data`, and what is wrong with it. */
export function brokenEnvelope(prng: Prng, data: Buffer): { bytes: Buffer; label: string } {
  switch (prng.int(0, 9)) {
    case 0:
      return { bytes: envelope(0, data, data.length + prng.int(1, 100)), label: "envelope:length-too-long" };
    case 1:
      return { bytes: envelope(0, data, Math.max(0, data.length - prng.int(1, 5))), label: "envelope:length-too-short" };
    case 2:
      return { bytes: envelope(1, data), label: "envelope:compressed-flag-uncompressed-data" };
    case 3: {
      const flags = prng.pick([0x02, 0x80, 0xff, 0x04, 0x03]);
      return { bytes: envelope(flags, data), label: `envelope:flags-${flags}` };
    }
    case 4:
      return { bytes: Buffer.concat([envelope(0, data), envelope(0, data)]), label: "envelope:two-messages" };
    case 5:
      return { bytes: data, label: "envelope:missing" };
    case 6:
      return { bytes: Buffer.alloc(0), label: "envelope:empty-body" };
    case 7:
      return { bytes: envelope(0, data).subarray(0, prng.int(1, 4)), label: "envelope:truncated-prefix" };
    case 8:
      return { bytes: envelope(0, data, 0xffffffff), label: "envelope:length-4GiB" };
    default:
      return { bytes: Buffer.concat([envelope(0, data), Buffer.from([0])]), label: "envelope:trailing-byte" };
  }
}

/** `data` gzipped, or a body that claims to be gzip and is not (or is a bomb). */
export function gzipVariant(prng: Prng, data: Buffer): { bytes: Buffer; label: string } {
  switch (prng.weighted({ valid: 5, corrupt: 2, truncated: 1, notGzip: 1, bomb: 1 })) {
    case "valid":
      return { bytes: gzipSync(data), label: "gzip:valid" };
    case "corrupt": {
      const z = Buffer.from(gzipSync(data));
      const at = prng.int(10, Math.max(10, z.length - 1));
      z[at] = (z[at] ?? 0) ^ 0x55;
      return { bytes: z, label: "gzip:corrupt" };
    }
    case "truncated": {
      const z = gzipSync(data);
      return { bytes: z.subarray(0, prng.int(0, z.length - 1)), label: "gzip:truncated" };
    }
    case "notGzip":
      return { bytes: data, label: "gzip:not-compressed" };
    default:
      return { bytes: gzipSync(Buffer.alloc(prng.pick([9, 64]) * 1024 * 1024)), label: "gzip:bomb" };
  }
}

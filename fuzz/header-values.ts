/**
 * Header values the fuzzer sends: deadlines (valid, huge, malformed),
 * content types (right, wrong, odd), encodings, and stray headers.
 */
import type { Prng } from "./prng.js";

/** A deadline header for `protocol`: its name, value, and the deadline in ms when it is valid and short. */
export function timeoutHeader(prng: Prng, protocol: string): { name: string; value: string; deadlineMs?: number } {
  const grpc = protocol === "grpc" || protocol === "grpc-web";
  const name = grpc ? "grpc-timeout" : "connect-timeout-ms";
  if (prng.chance(0.7)) {
    const ms = prng.pick([0, 1, 50, 200, 500, 1000, 1500]);
    if (!grpc) return { name, value: String(ms), deadlineMs: ms };
    return prng.pick([
      { name, value: `${ms}m`, deadlineMs: ms },
      { name, value: `${ms * 1000}u`, deadlineMs: ms },
      { name, value: ms >= 1000 ? `${ms / 1000}S` : `${ms}m`, deadlineMs: ms },
    ]);
  }
  const bad = grpc
    ? ["", "abc", "1", "-1m", "1.5S", "123456789m", "99999999H", "1X", " 1m", "1m ", "0x10m", "１m"]
    : ["", "abc", "-1", "1.5", "12345678901", "99999999999999999999", "1e3", " 1", "0x10", "+5", "１"];
  return { name, value: prng.pick(bad) };
}

/** The right content type for a protocol and codec. */
export function contentTypeFor(protocol: string): string {
  switch (protocol) {
    case "connect-json":
      return "application/json";
    case "connect-proto":
      return "application/proto";
    case "connect-stream-json":
      return "application/connect+json";
    case "connect-stream-proto":
      return "application/connect+proto";
    case "grpc":
      return "application/grpc";
    case "grpc-web":
      return "application/grpc-web+proto";
    default:
      return "application/json";
  }
}

/** Content types that are wrong, odd or missing. */
export const ODD_CONTENT_TYPES = [
  "",
  "text/plain",
  "application/x-www-form-urlencoded",
  "application/json; charset=latin1",
  "application/json; charset=utf-8",
  "application/JSON",
  "application/protobuf",
  "application/grpc+json",
  "application/grpc-web+json",
  "application/grpc-web-text",
  "application/grpc-web-text+proto",
  "application/connect+xml",
  "application/grpc+xml",
  "multipart/form-data; boundary=x",
  "application/json, application/proto",
  "*/*",
];

/** Stray request headers a careless client might send. */
export function strayHeader(prng: Prng): [string, string] {
  return prng.pick<[string, string]>([
    ["accept-encoding", "gzip"],
    ["accept-encoding", "br, zstd"],
    ["connect-accept-encoding", "gzip"],
    ["grpc-accept-encoding", "gzip, identity"],
    ["connect-protocol-version", "2"],
    ["connect-protocol-version", ""],
    ["te", "gzip"],
    ["x-user-agent", "x".repeat(8000)],
    ["grpc-encoding", "identity"],
    ["content-encoding", "identity"],
    ["authorization", "Bearer x"],
    ["grpc-message", "%%%"],
    ["cookie", "a=b"],
    ["x-forwarded-for", "1.2.3.4"],
  ]);
}

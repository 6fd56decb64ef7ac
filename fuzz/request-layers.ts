/**
 * The layers a fuzz request is built and mutated at, below the message:
 * the payload (valid, mutated JSON or bytes, or past the size cap), the body
 * framing (envelopes, compression), the GET query of a Connect GET, and
 * request-level mistakes (content type, HTTP method, path, stray headers).
 * Each draws from the request's PRNG in a fixed order, so a (seed, index)
 * always builds the same request.
 */
import { mutateBytes } from "./byte-mutators.js";
import { brokenEnvelope, envelope, gzipVariant } from "./envelope.js";
import { contentTypeFor, ODD_CONTENT_TYPES, strayHeader } from "./header-values.js";
import { mutateJson } from "./json-mutators.js";
import type { Prng } from "./prng.js";
import type { EncodedBody, Transport } from "./wire-request.js";

/** The HTTP parts of a request that mistakes change. */
export interface HttpParts {
  method: string;
  path: string;
  headers: Record<string, string>;
}

/** The payload: valid (half the time), mutated, or just past `maxRequestBytes`. */
export function payloadLayer(
  prng: Prng,
  body: EncodedBody,
  binaryCodec: boolean,
  maxRequestBytes: number,
  mutations: string[],
): { bytes: Buffer; oversize: boolean } {
  const payload = binaryCodec ? body.binary : (body.json as Buffer);
  const layer = prng.weighted({ none: 50, payload: 30, oversize: 0.4 });
  if (layer === "payload") {
    const m = binaryCodec ? mutateBytes(prng, payload) : mutateJsonText(prng, payload);
    mutations.push(m.label);
    return { bytes: m.bytes, oversize: false };
  }
  if (layer === "oversize") {
    const size = maxRequestBytes + prng.int(1, 1024 * 1024);
    mutations.push(`oversize(${size})`);
    const bytes = binaryCodec
      ? Buffer.concat([payload, Buffer.from([0x9a, 0x06]), varintBuf(size), Buffer.alloc(size, 0x61)])
      : Buffer.from(`{"bogus":"${"a".repeat(size)}"}`);
    return { bytes, oversize: true };
  }
  return { bytes: payload, oversize: false };
}

function mutateJsonText(prng: Prng, json: Buffer): { bytes: Buffer; label: string } {
  const m = mutateJson(prng, JSON.parse(json.toString()));
  return { bytes: Buffer.from(m.text), label: m.label };
}

/** The POST body for `protocol`: enveloped for streams and gRPC, sometimes compressed or broken; sets the content headers. */
export function bodyLayer(prng: Prng, protocol: string, payload: Buffer, headers: Record<string, string>, mutations: string[]): Buffer {
  const enveloped = protocol.startsWith("grpc") || protocol.startsWith("connect-stream");
  headers["content-type"] = contentTypeFor(protocol);
  let wireBody = payload;
  const compress = prng.chance(0.1);
  if (enveloped) {
    let flags = 0;
    if (compress) {
      const z = gzipVariant(prng, payload);
      mutations.push(z.label);
      wireBody = z.bytes;
      flags = 1;
      if (prng.chance(0.85)) {
        const name = protocol.startsWith("grpc") ? "grpc-encoding" : "connect-content-encoding";
        headers[name] = prng.chance(0.9) ? "gzip" : prng.pick(["br", "zstd", "identity", "deflate", "GZIP"]);
      } else mutations.push("compressed-without-encoding-header");
    }
    if (prng.chance(0.12)) {
      const e = brokenEnvelope(prng, wireBody);
      wireBody = e.bytes;
      mutations.push(e.label);
    } else wireBody = envelope(flags, wireBody);
  } else if (compress) {
    const z = gzipVariant(prng, payload);
    mutations.push(z.label);
    wireBody = z.bytes;
    headers["content-encoding"] = prng.chance(0.9) ? "gzip" : prng.pick(["br", "zstd", "deflate", "x-gzip"]);
  }
  if (protocol === "grpc") headers.te = "trailers";
  return wireBody;
}

/** One request-level mistake in 7: an odd content type, HTTP method or path, or a stray header. */
export function requestMistake(prng: Prng, rpcPath: string, transport: Transport, http: HttpParts, mutations: string[]): void {
  const mistake = prng.weighted({ none: 85, contentType: 4, httpMethod: 3, path: 3, stray: 5 });
  if (mistake === "contentType") {
    const ct = prng.pick(ODD_CONTENT_TYPES);
    if (ct === "") delete http.headers["content-type"];
    else http.headers["content-type"] = ct;
    mutations.push(`content-type(${JSON.stringify(ct)})`);
  } else if (mistake === "httpMethod") {
    http.method = prng.pick(["PUT", "DELETE", "PATCH", "OPTIONS", "HEAD", "TRACE", "GET", "get", "CONNECT"]);
    if (http.method === "CONNECT" && transport === "h2c") http.method = "PUT";
    mutations.push(`method(${http.method})`);
  } else if (mistake === "path") {
    http.path = prng.pick([
      `${rpcPath}/`,
      `${rpcPath}?x=1`,
      rpcPath.toLowerCase(),
      `/${rpcPath}`,
      rpcPath.replace("/stepq.v1.", "/stepq.v2."),
      rpcPath.replace(/\/[^/]+$/, "/NoSuchMethod"),
      rpcPath.replace("/", "%2F"),
      `${rpcPath}${"x".repeat(prng.pick([100, 10_000]))}`,
      "/",
      "/healthz/../stepq.v1.JobService/ListJobs",
    ]);
    mutations.push(`path(${http.path.length > 120 ? `${http.path.slice(0, 60)}…(${http.path.length})` : http.path})`);
  } else if (mistake === "stray") {
    const [k, v] = strayHeader(prng);
    http.headers[k] = v;
    mutations.push(`header(${k})`);
  }
}

function varintBuf(n: number): Buffer {
  const out: number[] = [];
  let v = n;
  while (v >= 0x80) {
    out.push((v & 0x7f) | 0x80);
    v = Math.floor(v / 128);
  }
  out.push(v);
  return Buffer.from(out);
}

/** The path and query of a Connect GET: the message as JSON, base64 JSON or base64 binary, or a broken query. */
export function getPath(prng: Prng, rpcPath: string, payload: Buffer, binary: boolean, body: EncodedBody, mutations: string[]): string {
  const params = new URLSearchParams({ connect: "v1" });
  const kind = prng.weighted({ json: 4, jsonBase64: 2, proto: 3, broken: 2 });
  if (kind === "json") {
    params.set("encoding", "json");
    params.set("message", (binary ? (body.json ?? Buffer.from("{}")) : payload).toString());
  } else if (kind === "jsonBase64") {
    params.set("encoding", "json");
    params.set("base64", "1");
    params.set("message", (binary ? (body.json ?? Buffer.from("{}")) : payload).toString("base64url"));
  } else if (kind === "proto") {
    params.set("encoding", "proto");
    params.set("base64", "1");
    params.set("message", (binary ? payload : body.binary).toString(prng.chance(0.8) ? "base64url" : "base64"));
  } else {
    const variant = prng.int(0, 7);
    mutations.push(`get:broken-${variant}`);
    if (variant === 0) params.set("encoding", "json");
    else if (variant === 1) params.set("message", "{}");
    else if (variant === 2) (params.set("encoding", "proto"), params.set("message", "{}"));
    else if (variant === 3) (params.set("encoding", "json"), params.set("base64", "1"), params.set("message", "!!!not base64"));
    else if (variant === 4) (params.set("encoding", "xml"), params.set("message", "{}"));
    else if (variant === 5) (params.set("encoding", "json"), params.set("compression", prng.pick(["gzip", "br"])), params.set("message", "{}"));
    else if (variant === 6) (params.set("encoding", "proto"), params.set("base64", "1"), params.set("message", prng.bytes(20).toString("base64url")));
    else return `${rpcPath}?encoding=json&message=%zz%7B`;
  }
  if (kind !== "broken") mutations.push(`get:${kind}`);
  return `${rpcPath}?${params.toString()}`;
}

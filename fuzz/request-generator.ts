/**
 * Request `index` of a run: picks an RPC, builds a message for it, encodes
 * it for one protocol (Connect JSON/binary/GET/streaming, gRPC, gRPC-Web)
 * on HTTP/1.1 or h2c, and mutates some layer of it (fields, JSON, bytes,
 * envelope, compression, deadline headers, content type, method, path, or
 * the HTTP framing itself). Each index draws from its own PRNG derived from
 * the seed, so a run's requests do not depend on answer timing; only the
 * ids drawn from the pool (learned from answers) may differ between runs.
 */
import { create, type Message, toBinary, toJson } from "@bufbuild/protobuf";
import { mutateBytes } from "./byte-mutators.js";
import { brokenEnvelope, envelope, gzipVariant } from "./envelope.js";
import type { FuzzMethod } from "./fuzz-methods.js";
import { contentTypeFor, ODD_CONTENT_TYPES, strayHeader, timeoutHeader } from "./header-values.js";
import type { IdPool } from "./id-pool.js";
import { mutateJson } from "./json-mutators.js";
import { generateMessage, type GeneratorLimits } from "./message-generator.js";
import { createPrng, type Prng } from "./prng.js";
import { rawRequest } from "./raw-requests.js";
import type { Transport, WireRequest } from "./wire-request.js";

export interface RequestGeneratorOptions {
  seed: number;
  methods: readonly FuzzMethod[];
  pool: IdPool;
  limits: GeneratorLimits;
  /** The server's request cap: oversize bodies go just past it. */
  maxRequestBytes: number;
}

/** Returns request `index` of the run. */
export type RequestGenerator = (index: number) => WireRequest;

/** A per-request PRNG: the same (seed, index) always gives the same one. */
export function requestPrng(seed: number, index: number): Prng {
  return createPrng((Math.imul(seed ^ 0x5bd1e995, 0x9e3779b1) + Math.imul(index, 0x85ebca6b)) >>> 0);
}

const UNARY_PROTOCOLS: Record<string, number> = { "connect-json": 25, "connect-proto": 18, "connect-get": 10, grpc: 16, "grpc-web": 14, "connect-stream-json": 2, raw: 5 };
const STREAM_PROTOCOLS: Record<string, number> = { "connect-stream-json": 25, "connect-stream-proto": 20, grpc: 22, "grpc-web": 20, "connect-json": 3, "connect-get": 3, raw: 3 };

interface Body {
  json: Buffer | undefined;
  binary: Buffer;
}

function encode(method: FuzzMethod, message: Message): Body {
  let json: Buffer | undefined;
  try {
    json = Buffer.from(JSON.stringify(toJson(method.desc.input, message)));
  } catch {
    json = undefined; // e.g. a Timestamp past year 9999 has no JSON form; use binary
  }
  return { json, binary: Buffer.from(toBinary(method.desc.input, message)) };
}

export function createRequestGenerator(o: RequestGeneratorOptions): RequestGenerator {
  return (index) => {
    const prng = requestPrng(o.seed, index);
    // The message draws from its own generator: how many draws it takes
    // depends on the id pool, and the request's shape (protocol, transport,
    // mutations) must not.
    const messagePrng = prng.fork(1);
    const method = prng.pick(o.methods);
    const mutations: string[] = [];
    let message = generateMessage(messagePrng, o.pool, method.desc.input, o.limits);
    if (method.desc.input.field.operation && prng.chance(0.01)) {
      // An operation right at the 1 MiB operation cap (or a little past it).
      const size = prng.pick([1024 * 1024 - 64, 1024 * 1024 - 8, 1024 * 1024 + 1, 1024 * 1024 + 4096]);
      message = create(method.desc.input, { operation: { kind: { case: "echo", value: { text: "a".repeat(size) } } } } as never);
      mutations.push(`operation-near-cap(${size})`);
    }
    const body = encode(method, message);
    let protocol: string = prng.weighted(method.streaming ? STREAM_PROTOCOLS : UNARY_PROTOCOLS);
    if (body.json === undefined && /json|get/.test(protocol)) protocol = protocol === "connect-stream-json" ? "connect-stream-proto" : "connect-proto";
    if (protocol === "raw") {
      const raw = rawRequest(prng, method.path, body.json ?? Buffer.from("{}"));
      return base(index, method, "http", "raw", raw.method, method.path, raw.headers, Buffer.alloc(0), { rawBytes: raw.bytes, brokenHttp: raw.broken, mutations: [raw.label] });
    }
    const transport: Transport = protocol === "grpc" ? (prng.chance(0.9) ? "h2c" : "http1") : prng.chance(0.5) ? "h2c" : "http1";
    const binaryCodec = protocol === "connect-proto" || protocol === "connect-stream-proto" || protocol.startsWith("grpc");
    // Payload: valid, mutated, or oversize.
    let payload = binaryCodec ? body.binary : (body.json as Buffer);
    const layer = prng.weighted({ none: 50, payload: 30, oversize: 0.4 });
    if (layer === "payload") {
      if (binaryCodec) {
        const m = mutateBytes(prng, payload);
        payload = m.bytes;
        mutations.push(m.label);
      } else {
        const m = mutateJson(prng, JSON.parse((body.json as Buffer).toString()));
        payload = Buffer.from(m.text);
        mutations.push(m.label);
      }
    } else if (layer === "oversize") {
      const size = o.maxRequestBytes + prng.int(1, 1024 * 1024);
      payload = binaryCodec ? Buffer.concat([payload, Buffer.from([0x9a, 0x06]), varintBuf(size), Buffer.alloc(size, 0x61)]) : Buffer.from(`{"bogus":"${"a".repeat(size)}"}`);
      mutations.push(`oversize(${size})`);
    }
    const headers: Record<string, string> = {};
    let httpMethod = "POST";
    let path = method.path;
    let wireBody: Buffer;
    const enveloped = protocol.startsWith("grpc") || protocol.startsWith("connect-stream");
    if (protocol === "connect-get") {
      httpMethod = "GET";
      path = getPath(prng, method.path, payload, binaryCodec, body, mutations);
      wireBody = Buffer.alloc(0);
    } else {
      headers["content-type"] = contentTypeFor(protocol);
      wireBody = payload;
      const compress = prng.chance(0.1);
      if (enveloped) {
        let flags = 0;
        if (compress) {
          const z = gzipVariant(prng, payload);
          mutations.push(z.label);
          wireBody = z.bytes;
          flags = 1;
          if (prng.chance(0.85)) headers[protocol.startsWith("grpc") ? "grpc-encoding" : "connect-content-encoding"] = prng.chance(0.9) ? "gzip" : prng.pick(["br", "zstd", "identity", "deflate", "GZIP"]);
          else mutations.push("compressed-without-encoding-header");
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
    }
    if (protocol.startsWith("connect")) headers["connect-protocol-version"] = "1";
    // Deadlines: most streams get a short one, so they end on their own.
    let deadlineMs: number | undefined;
    if (prng.chance(method.streaming ? 0.8 : 0.15)) {
      const t = timeoutHeader(prng, protocol);
      headers[t.name] = t.value;
      deadlineMs = t.deadlineMs;
      mutations.push(`timeout(${t.name}=${JSON.stringify(t.value)})`);
    }
    // Request-level mistakes.
    const mistake = prng.weighted({ none: 85, contentType: 4, httpMethod: 3, path: 3, stray: 5 });
    if (mistake === "contentType") {
      const ct = prng.pick(ODD_CONTENT_TYPES);
      if (ct === "") delete headers["content-type"];
      else headers["content-type"] = ct;
      mutations.push(`content-type(${JSON.stringify(ct)})`);
    } else if (mistake === "httpMethod") {
      httpMethod = prng.pick(["PUT", "DELETE", "PATCH", "OPTIONS", "HEAD", "TRACE", "GET", "get", "CONNECT"]);
      if (httpMethod === "CONNECT" && transport === "h2c") httpMethod = "PUT";
      mutations.push(`method(${httpMethod})`);
    } else if (mistake === "path") {
      path = prng.pick([
        `${method.path}/`,
        `${method.path}?x=1`,
        method.path.toLowerCase(),
        `/${method.path}`,
        method.path.replace("/stepq.v1.", "/stepq.v2."),
        method.path.replace(/\/[^/]+$/, "/NoSuchMethod"),
        method.path.replace("/", "%2F"),
        `${method.path}${"x".repeat(prng.pick([100, 10_000]))}`,
        "/",
        "/healthz/../stepq.v1.JobService/ListJobs",
      ]);
      mutations.push(`path(${path.length > 120 ? `${path.slice(0, 60)}…(${path.length})` : path})`);
    } else if (mistake === "stray") {
      const [k, v] = strayHeader(prng);
      headers[k] = v;
      mutations.push(`header(${k})`);
    }
    const streaming = method.streaming && protocol !== "connect-json" && protocol !== "connect-get";
    // Not valid HTTP: a :path or request target must start with "/", and a
    // request line past the server's 16 KiB header limit may be cut off.
    // CONNECT asks for a tunnel, which Node's HTTP/1.1 server refuses by
    // closing the connection.
    const brokenHttp = !path.startsWith("/") || path.length > 16 * 1024 || httpMethod === "CONNECT";
    const isolated = layer === "oversize" || mutations.includes("gzip:bomb");
    return base(index, method, protocol, transport, httpMethod, path, headers, wireBody, {
      streaming,
      brokenHttp,
      isolated,
      mutations,
      ...(deadlineMs !== undefined ? { deadlineMs } : {}),
    });
  };
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

function getPath(prng: Prng, rpcPath: string, payload: Buffer, binary: boolean, body: Body, mutations: string[]): string {
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

function base(
  index: number,
  method: FuzzMethod,
  protocol: string,
  transport: Transport,
  httpMethod: string,
  path: string,
  headers: Record<string, string>,
  body: Buffer,
  extra: { rawBytes?: Buffer; brokenHttp: boolean; isolated?: boolean; mutations: string[]; streaming?: boolean; deadlineMs?: number },
): WireRequest {
  return {
    index,
    rpc: method.name,
    protocol,
    transport,
    method: httpMethod,
    path,
    headers,
    body,
    streaming: extra.streaming ?? method.streaming,
    brokenHttp: extra.brokenHttp,
    mutations: extra.mutations,
    ...(extra.isolated ? { isolated: true } : {}),
    ...(extra.rawBytes ? { rawBytes: extra.rawBytes } : {}),
    ...(extra.deadlineMs !== undefined ? { deadlineMs: extra.deadlineMs } : {}),
  };
}

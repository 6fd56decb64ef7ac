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
import type { FuzzMethod } from "./fuzz-methods.js";
import { timeoutHeader } from "./header-values.js";
import type { IdPool } from "./id-pool.js";
import { generateMessage, type GeneratorLimits } from "./message-generator.js";
import { createPrng, type Prng } from "./prng.js";
import { rawRequest } from "./raw-requests.js";
import { bodyLayer, getPath, type HttpParts, payloadLayer, requestMistake } from "./request-layers.js";
import type { EncodedBody, Transport, WireRequest } from "./wire-request.js";

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

function encode(method: FuzzMethod, message: Message): EncodedBody {
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
    const payload = payloadLayer(prng, body, binaryCodec, o.maxRequestBytes, mutations);
    const http: HttpParts = { method: "POST", path: method.path, headers: {} };
    let wireBody: Buffer;
    if (protocol === "connect-get") {
      http.method = "GET";
      http.path = getPath(prng, method.path, payload.bytes, binaryCodec, body, mutations);
      wireBody = Buffer.alloc(0);
    } else {
      wireBody = bodyLayer(prng, protocol, payload.bytes, http.headers, mutations);
    }
    if (protocol.startsWith("connect")) http.headers["connect-protocol-version"] = "1";
    // Deadlines: most streams get a short one, so they end on their own.
    let deadlineMs: number | undefined;
    if (prng.chance(method.streaming ? 0.8 : 0.15)) {
      const t = timeoutHeader(prng, protocol);
      http.headers[t.name] = t.value;
      deadlineMs = t.deadlineMs;
      mutations.push(`timeout(${t.name}=${JSON.stringify(t.value)})`);
    }
    requestMistake(prng, method.path, transport, http, mutations);
    const streaming = method.streaming && protocol !== "connect-json" && protocol !== "connect-get";
    // Not valid HTTP: a :path or request target must start with "/", and a
    // request line past the server's 16 KiB header limit may be cut off.
    // CONNECT asks for a tunnel, which Node's HTTP/1.1 server refuses by
    // closing the connection.
    const brokenHttp = !http.path.startsWith("/") || http.path.length > 16 * 1024 || http.method === "CONNECT";
    const isolated = payload.oversize || mutations.includes("gzip:bomb");
    return base(index, method, protocol, transport, http.method, http.path, http.headers, wireBody, {
      streaming,
      brokenHttp,
      isolated,
      mutations,
      ...(deadlineMs !== undefined ? { deadlineMs } : {}),
    });
  };
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

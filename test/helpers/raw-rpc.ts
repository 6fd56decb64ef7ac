/**
 * Hand-made requests in each wire protocol, sent with real sockets (fetch
 * over HTTP/1.1, node:http2 for gRPC), and the error read back the way that
 * protocol carries it: Connect's JSON body or end-of-stream message, gRPC's
 * trailers, gRPC-Web's trailer frame. What a broken or hostile client would
 * send, which the generated clients never do.
 */
import { connect as http2Connect } from "node:http2";
import { Code } from "@connectrpc/connect";
import { codeFromString } from "@connectrpc/connect/protocol-connect";

export type Protocol = "connect" | "connect-stream" | "grpc" | "grpc-web";

export interface RawReply {
  /** HTTP status. */
  status: number;
  /** The RPC's code (Code.Unknown when the reply carried none, 0 for OK). */
  code: Code | 0;
  message: string;
  /** Data frames / messages before the end (streams). */
  messages: number;
}

/** `data` in a 5-byte envelope with `flags`. */
export function envelope(data: Uint8Array | string, flags = 0): Uint8Array {
  const bytes = typeof data === "string" ? new TextEncoder().encode(data) : data;
  const out = new Uint8Array(5 + bytes.length);
  out[0] = flags;
  new DataView(out.buffer).setUint32(1, bytes.length);
  out.set(bytes, 5);
  return out;
}

/** Content types: binary by default, JSON with `json`. */
export function contentType(protocol: Protocol, json = false): string {
  const kind = json ? "json" : "proto";
  switch (protocol) {
    case "connect":
      return `application/${kind}`;
    case "connect-stream":
      return `application/connect+${kind}`;
    case "grpc":
      return `application/grpc+${kind}`;
    case "grpc-web":
      return `application/grpc-web+${kind}`;
  }
}

function splitEnvelopes(body: Uint8Array): { flags: number; data: Uint8Array }[] {
  const out: { flags: number; data: Uint8Array }[] = [];
  let at = 0;
  while (at + 5 <= body.length) {
    const len = new DataView(body.buffer, body.byteOffset + at + 1, 4).getUint32(0);
    out.push({ flags: body[at] as number, data: body.subarray(at + 5, at + 5 + len) });
    at += 5 + len;
  }
  return out;
}

function fromConnectJson(text: string): { code: Code; message: string } {
  const j = JSON.parse(text) as { code?: string; message?: string };
  return { code: (j.code && codeFromString(j.code)) || Code.Unknown, message: j.message ?? "" };
}

function fromGrpcStatus(status: string | undefined, message: string | undefined): { code: Code | 0; message: string } {
  if (status === undefined) return { code: Code.Unknown, message: "no grpc-status" };
  return { code: Number(status) as Code | 0, message: decodeURIComponent(message ?? "") };
}

/**
 * POSTs `body` to `<base>/<path>` in `protocol` (HTTP/1.1 for Connect and
 * gRPC-Web, h2c for gRPC) and reads the RPC's outcome.
 */
export async function rawPost(
  base: string,
  path: string,
  protocol: Protocol,
  body: Uint8Array | string,
  headers: Record<string, string> = {},
): Promise<RawReply> {
  const allHeaders = { "content-type": contentType(protocol), ...headers };
  if (protocol === "grpc") return grpcPost(base, path, body, allHeaders);
  const res = await fetch(`${base}/${path}`, { method: "POST", headers: allHeaders, body });
  const bytes = new Uint8Array(await res.arrayBuffer());
  if (protocol === "connect") {
    if (res.status === 200) return { status: 200, code: 0, message: "", messages: 1 };
    return { status: res.status, ...fromConnectJson(new TextDecoder().decode(bytes)), messages: 0 };
  }
  const frames = splitEnvelopes(bytes);
  const endFlag = protocol === "connect-stream" ? 0x02 : 0x80;
  const end = frames.find((f) => (f.flags & endFlag) !== 0);
  const messages = frames.filter((f) => f !== end).length;
  if (!end) return { status: res.status, code: Code.Unknown, message: "no end of stream", messages };
  const text = new TextDecoder().decode(end.data);
  if (protocol === "connect-stream") {
    const j = JSON.parse(text) as { error?: { code?: string; message?: string } };
    if (!j.error) return { status: res.status, code: 0, message: "", messages };
    return { status: res.status, ...fromConnectJson(JSON.stringify(j.error)), messages };
  }
  const trailer = Object.fromEntries(text.split("\r\n").filter(Boolean).map((l) => [l.slice(0, l.indexOf(":")).toLowerCase(), l.slice(l.indexOf(":") + 1).trim()]));
  return { status: res.status, ...fromGrpcStatus(trailer["grpc-status"], trailer["grpc-message"]), messages };
}

/** GETs a NO_SIDE_EFFECTS RPC with the given query parameters (Connect unary). */
export async function rawGet(base: string, path: string, query: Record<string, string>): Promise<RawReply> {
  const res = await fetch(`${base}/${path}?${new URLSearchParams(query)}`);
  if (res.status === 200) return { status: 200, code: 0, message: "", messages: 1 };
  return { status: res.status, ...fromConnectJson(await res.text()), messages: 0 };
}

function grpcPost(base: string, path: string, body: Uint8Array | string, headers: Record<string, string>): Promise<RawReply> {
  return new Promise((resolve, reject) => {
    const session = http2Connect(base);
    session.on("error", reject);
    const req = session.request({ ":method": "POST", ":path": `/${path}`, te: "trailers", ...headers });
    let status = 0;
    let head: Record<string, string | string[] | undefined> = {};
    const chunks: Buffer[] = [];
    req.on("response", (h) => {
      status = Number(h[":status"]);
      head = h;
    });
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("trailers", (t) => {
      head = { ...head, ...t };
    });
    req.on("error", reject);
    req.on("end", () => {
      session.close();
      const messages = splitEnvelopes(new Uint8Array(Buffer.concat(chunks))).length;
      resolve({ status, ...fromGrpcStatus(head["grpc-status"] as string | undefined, head["grpc-message"] as string | undefined), messages });
    });
    req.end(body);
  });
}

/**
 * Writes hand-made bytes to a fresh TCP connection and reads what comes
 * back: the only way to send what `node:http` refuses to (HTTP/1.0 without
 * Host, broken chunking, conflicting lengths, a half HTTP/2 preface).
 */
import * as net from "node:net";
import type { ReadLimits } from "./read-limits.js";
import type { WireRequest, WireResponse } from "./wire-request.js";

/** How long a raw exchange may take before the fuzzer hangs up. */
export const RAW_TIMEOUT_MS = 3000;

export function sendRaw(baseUrl: string, wire: WireRequest, limits: ReadLimits): Promise<WireResponse> {
  const { hostname, port } = new URL(baseUrl);
  const started = performance.now();
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    let size = 0;
    let done = false;
    const socket = net.connect(Number(port), hostname);
    const finish = (end: WireResponse["end"], error?: string) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      socket.destroy();
      const res = parseHttp1(Buffer.concat(chunks));
      resolve({ ...res, end: res.status === 0 && end === "complete" ? "reset" : end, ...(error ? { error } : {}), elapsedMs: performance.now() - started });
    };
    const timer = setTimeout(() => finish("timeout"), RAW_TIMEOUT_MS);
    // Write without half-closing, as HTTP clients do: Node's HTTP/1.1 server
    // takes a client's FIN as an abort and drops answers not yet written.
    socket.on("connect", () => socket.write(wire.rawBytes ?? Buffer.alloc(0)));
    socket.on("data", (d: Buffer) => {
      if (size < limits.bodyCap) chunks.push(d);
      size += d.length;
      if (answerComplete(Buffer.concat(chunks))) finish("complete");
    });
    socket.on("end", () => finish("complete"));
    socket.on("close", () => finish("complete"));
    socket.on("error", (e) => finish("reset", e.message));
  });
}

interface Parsed {
  status: number;
  headers: Record<string, string>;
  trailers: Record<string, string>;
  body: Buffer;
}

function splitHead(buf: Buffer): { head: string; rest: Buffer } | undefined {
  const at = buf.indexOf("\r\n\r\n");
  return at < 0 ? undefined : { head: buf.subarray(0, at).toString("latin1"), rest: buf.subarray(at + 4) };
}

function answerComplete(buf: Buffer): boolean {
  const parts = splitHead(buf);
  if (!parts) return false;
  const length = /\r\ncontent-length:\s*(\d+)/i.exec(parts.head);
  if (length) return parts.rest.length >= Number(length[1]);
  if (/\r\ntransfer-encoding:\s*chunked/i.test(parts.head)) return parts.rest.includes("0\r\n\r\n");
  return false;
}

/** Status, headers and (de-chunked) body of the first HTTP/1.x answer in `buf`. */
export function parseHttp1(buf: Buffer): Parsed {
  const empty: Parsed = { status: 0, headers: {}, trailers: {}, body: Buffer.alloc(0) };
  const parts = splitHead(buf);
  if (!parts) {
    const m = /^HTTP\/1\.[01] (\d{3})/.exec(buf.toString("latin1"));
    return m ? { ...empty, status: Number(m[1]) } : empty;
  }
  const [statusLine, ...lines] = parts.head.split("\r\n");
  const m = /^HTTP\/1\.[01] (\d{3})/.exec(statusLine ?? "");
  if (!m) return empty;
  const headers: Record<string, string> = {};
  for (const line of lines) {
    const colon = line.indexOf(":");
    if (colon > 0) headers[line.slice(0, colon).trim().toLowerCase()] = line.slice(colon + 1).trim();
  }
  let body = parts.rest;
  if (/chunked/i.test(headers["transfer-encoding"] ?? "")) body = dechunk(body);
  else if (headers["content-length"] !== undefined) body = body.subarray(0, Number(headers["content-length"]));
  return { status: Number(m[1]), headers, trailers: {}, body };
}

function dechunk(buf: Buffer): Buffer {
  const out: Buffer[] = [];
  let at = 0;
  for (;;) {
    const eol = buf.indexOf("\r\n", at);
    if (eol < 0) break;
    const n = Number.parseInt(buf.subarray(at, eol).toString("latin1"), 16);
    if (!Number.isFinite(n) || n === 0) break;
    out.push(buf.subarray(eol + 2, eol + 2 + n));
    at = eol + 2 + n + 2;
  }
  return Buffer.concat(out);
}

/**
 * Reads the RPC outcome out of a raw answer, whatever protocol the server
 * chose to answer in (Connect unary or streaming, gRPC, gRPC-Web, or plain
 * HTTP), and decides whether it is a failure: `internal`/`unknown`/
 * `data_loss`, a 5xx without a code, no answer to a well-formed request, a
 * unary call or a deadline stream that never ends.
 */
import type { ReadLimits } from "./read-limits.js";
import type { WireRequest, WireResponse } from "./wire-request.js";

/** The outcome of one request. */
export interface Outcome {
  /** A Connect code name ("ok", "invalid_argument"...), "open" (a stream still running when cut), or "http-NNN" / "no-answer". */
  code: string;
  message: string;
  /** What the server logged meanwhile, for internal errors. */
  serverLog?: string;
  /** Set when the outcome breaks one of the run's rules: why. */
  failure?: string;
}

const GRPC_CODES = [
  "ok",
  "canceled",
  "unknown",
  "invalid_argument",
  "deadline_exceeded",
  "not_found",
  "already_exists",
  "permission_denied",
  "resource_exhausted",
  "failed_precondition",
  "aborted",
  "out_of_range",
  "unimplemented",
  "internal",
  "unavailable",
  "data_loss",
  "unauthenticated",
];

const FAILING_CODES = new Set(["internal", "unknown", "data_loss"]);

interface Frame {
  flags: number;
  data: Buffer;
}

/** The enveloped messages in `body` (a partial last frame is dropped). */
export function parseFrames(body: Buffer): Frame[] {
  const frames: Frame[] = [];
  let at = 0;
  while (at + 5 <= body.length) {
    const len = body.readUInt32BE(at + 1);
    if (at + 5 + len > body.length) break;
    frames.push({ flags: body[at] as number, data: body.subarray(at + 5, at + 5 + len) });
    at += 5 + len;
  }
  return frames;
}

function grpcOutcome(status: string | undefined, message: string | undefined): { code: string; message: string } | undefined {
  if (status === undefined) return undefined;
  const code = GRPC_CODES[Number(status)] ?? `grpc-status-${status}`;
  return { code, message: decodeURIComponent((message ?? "").replace(/%(?![0-9a-fA-F]{2})/g, "%25")) };
}

function parseJson(buf: Buffer): Record<string, unknown> | undefined {
  try {
    const v: unknown = JSON.parse(buf.toString("utf8"));
    return v && typeof v === "object" ? (v as Record<string, unknown>) : undefined;
  } catch {
    return undefined;
  }
}

/** The code and message the answer carries, before judging it. */
export function readCode(res: WireResponse): { code: string; message: string } {
  const type = res.headers["content-type"] ?? "";
  const fromHeaders = grpcOutcome(res.trailers["grpc-status"] ?? res.headers["grpc-status"], res.trailers["grpc-message"] ?? res.headers["grpc-message"]);
  if (type.startsWith("application/grpc-web")) {
    const trailer = parseFrames(res.body).find((f) => (f.flags & 0x80) !== 0);
    if (trailer) {
      const text = trailer.data.toString("utf8");
      const status = /grpc-status:\s*(\d+)/i.exec(text)?.[1];
      const message = /grpc-message:\s*(.*)/i.exec(text)?.[1]?.trim();
      const out = grpcOutcome(status, message);
      if (out) return out;
    }
    return fromHeaders ?? { code: res.end === "cut" ? "open" : "no-status", message: "" };
  }
  if (type.startsWith("application/grpc")) return fromHeaders ?? { code: res.end === "cut" ? "open" : "no-status", message: "" };
  if (fromHeaders) return fromHeaders;
  if (type.startsWith("application/connect+")) {
    const end = parseFrames(res.body).find((f) => (f.flags & 0x02) !== 0);
    if (!end) return { code: res.end === "cut" ? "open" : res.status === 200 ? "no-end-message" : `http-${res.status}`, message: "" };
    const json = parseJson(end.data);
    const error = json?.error as { code?: string; message?: string } | undefined;
    return error ? { code: String(error.code ?? "no-code"), message: String(error.message ?? "") } : { code: "ok", message: "" };
  }
  if (res.status === 200) return { code: "ok", message: "" };
  const json = parseJson(res.body);
  if (json && typeof json.code === "string") return { code: json.code, message: String(json.message ?? "") };
  return { code: `http-${res.status}`, message: res.body.subarray(0, 200).toString("utf8") };
}

/** The outcome of `req` answered by `res`. */
export function classifyResponse(req: WireRequest, res: WireResponse, limits: ReadLimits): Outcome {
  if (res.end === "timeout") {
    if (req.brokenHttp) return { code: "held-open", message: "" };
    const out = res.status === 0 ? { code: "no-answer", message: "" } : readCode(res);
    const why =
      req.deadlineMs !== undefined
        ? `did not end within its deadline (${req.deadlineMs} ms) + ${limits.deadlineGraceMs} ms`
        : `no complete answer within ${Math.round(res.elapsedMs)} ms`;
    return { ...out, failure: why };
  }
  if (res.status === 0) {
    if (res.end === "cut") return { code: "open", message: "" };
    const message = res.error ?? "connection closed";
    return req.brokenHttp ? { code: "closed", message } : { code: "no-answer", message, failure: `no answer: ${message}` };
  }
  // An answer to HEAD has a status line and no body (HTTP says so): the status is the answer.
  if (req.method === "HEAD") {
    return res.status >= 500 && res.status !== 501 && res.status !== 503
      ? { code: `http-${res.status}`, message: "", failure: `answered HEAD with HTTP ${res.status}` }
      : { code: `http-${res.status}`, message: "" };
  }
  const out = readCode(res);
  if (FAILING_CODES.has(out.code)) return { ...out, failure: `answered ${out.code}` };
  if (out.code.startsWith("http-5") && !["http-501", "http-503", "http-504"].includes(out.code)) {
    return { ...out, failure: `answered HTTP ${res.status} without an RPC code` };
  }
  // A server may answer an error early and close while the body is still
  // being sent (the client then sees a reset after the status): that is an
  // answer. A success or stream cut off mid-way is not.
  if (res.end === "reset" && !req.brokenHttp && res.status < 400) return { ...out, failure: `answer cut off: ${res.error ?? "reset"}` };
  if ((out.code === "no-status" || out.code === "no-end-message") && res.truncated) return { code: "truncated", message: "" };
  if (out.code === "no-status" || out.code === "no-end-message") return { ...out, failure: "answer ended without a status (gRPC trailers or Connect end-of-stream message)" };
  if (req.streaming && req.deadlineMs !== undefined && out.code === "ok" && res.elapsedMs > req.deadlineMs + 250) {
    return { ...out, failure: `stream ended OK ${Math.round(res.elapsedMs)} ms after a ${req.deadlineMs} ms deadline (want deadline_exceeded)` };
  }
  return out;
}

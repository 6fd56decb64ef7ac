/**
 * A request as it goes on the wire, and what came back. Both are plain data
 * so a failure can be printed, saved and replayed byte for byte.
 */

/** How a request is carried. `raw`: `rawBytes` are written as is to a fresh TCP connection. */
export type Transport = "http1" | "h2c" | "raw";

/** One generated request. */
export interface WireRequest {
  /** Position in the run (request `index` of seed `seed` is always the same request). */
  readonly index: number;
  readonly rpc: string;
  /** connect-json, connect-proto, connect-get, connect-stream-json, connect-stream-proto, grpc, grpc-web, http. */
  readonly protocol: string;
  readonly transport: Transport;
  readonly method: string;
  readonly path: string;
  readonly headers: Readonly<Record<string, string>>;
  readonly body: Buffer;
  /** For `raw`: the exact bytes sent. */
  readonly rawBytes?: Buffer;
  /** The answer is a stream (read until it ends or the fuzzer stops reading). */
  readonly streaming: boolean;
  /** A valid deadline header was sent (ms): a stream must end soon after it. */
  readonly deadlineMs?: number;
  /** The HTTP framing itself is broken on purpose: a closed connection is a fine answer. */
  readonly brokenHttp: boolean;
  /** Sent on a connection of its own (oversize bodies), so HTTP/2 flow control or session limits it trips touch no other request. */
  readonly isolated?: boolean;
  /** What the generator did, e.g. "json:type-confusion(pageSize) gzip:corrupt". */
  readonly mutations: readonly string[];
}

/** What the server sent back (or did not). */
export interface WireResponse {
  /** HTTP status, 0 when none arrived. */
  status: number;
  headers: Record<string, string>;
  /** HTTP/2 trailers. */
  trailers: Record<string, string>;
  /** The body (at most the first `bodyCap` bytes the sender keeps). */
  body: Buffer;
  /** The body passed the sender's cap and was cut. */
  truncated?: boolean;
  /** How the exchange ended. */
  end: "complete" | "reset" | "timeout" | "cut" | "client-refused";
  /** The client-side error, when `end` is not complete. */
  error?: string;
  elapsedMs: number;
}

/** A generated message in both encodings (JSON is absent when the message has no JSON form). */
export interface EncodedBody {
  json: Buffer | undefined;
  binary: Buffer;
}

/**
 * One TCP port for HTTP/1.1 and HTTP/2 without TLS (h2c, prior knowledge).
 *
 * Node's `http2.createServer({ allowHTTP1 })` only falls back to HTTP/1.1
 * under TLS, so this server peeks at each connection's first bytes: the
 * HTTP/2 preface starts with "PRI * HTTP/2.0", which no HTTP/1.1 method does.
 * Both protocols reach the same request handler, so Connect, gRPC and
 * gRPC-Web all work on one port. With a certificate (`tls`), every
 * connection is TLS instead, and ALPN picks HTTP/2 ("h2") or HTTP/1.1.
 *
 * Every phase in which a peer can hold a connection by saying nothing has a
 * timeout (see ConnectionLimits), and one client address can hold only so
 * many connections: a slowloris client or a crowd of silent sockets cannot
 * lock others out. A request in flight is never timed out while the server
 * is the one talking, so a stream that waits minutes for its next token
 * lives on.
 */
import { createServer as createHttpServer, type IncomingMessage, type Server as HttpServer, type ServerResponse } from "node:http";
import {
  constants as h2,
  createServer as createHttp2Server,
  type Http2Server,
  type Http2ServerRequest,
  type Http2ServerResponse,
  type ServerHttp2Session,
  type ServerHttp2Stream,
} from "node:http2";
import { createServer as createTcpServer, type Socket } from "node:net";
import type { Duplex } from "node:stream";
import { createServer as createTlsServer, type TLSSocket } from "node:tls";

export type RequestHandler = (
  req: IncomingMessage | Http2ServerRequest,
  res: ServerResponse | Http2ServerResponse,
) => void;

/** Takes an HTTP/1.1 upgrade request (a WebSocket); true if it did. */
export type UpgradeHandler = (req: IncomingMessage, socket: Duplex, head: Buffer) => boolean;

export interface Listener {
  /** The port actually bound (useful with port 0). */
  readonly port: number;
  readonly host: string;
  /** Connections open now. */
  readonly connections: number;
  /**
   * Stops accepting connections, lets requests in flight finish for up to
   * `graceMs`, then destroys what is left.
   */
  close(graceMs?: number): Promise<void>;
}

/** Timeouts and caps of the connection layer (`stepq serve --help` lists their flags). */
export interface ConnectionLimits {
  /** A new connection that sends no first bytes within this is closed. */
  sniffTimeoutMs: number;
  /** HTTP/1.1: the request's header block must arrive within this (else 408 and close). */
  headersTimeoutMs: number;
  /**
   * The whole request (headers and body) must arrive within this: HTTP/1.1
   * answers 408 and closes, an HTTP/2 stream is reset (CANCEL). Only the
   * request: a response may take as long as it needs.
   */
  requestTimeoutMs: number;
  /** An HTTP/1.1 keep-alive socket, or an HTTP/2 session, with no request in flight is closed after this. */
  idleTimeoutMs: number;
  /** Connections one client address may hold at once; more are closed on arrival. */
  maxConnectionsPerClient: number;
  /** Connections the server holds at once; more are closed on arrival. */
  maxConnections: number;
  /**
   * HTTP/2: bytes a session may have queued to send (and in header tables)
   * before Node refuses NEW streams on it with ENHANCE_YOUR_CALM. Node's
   * default, 10 MB, is under one reply this server may send (a 16 MiB job
   * record): a client that had not yet read one large GetJob had every
   * other call on its connection refused (measured). It bounds no memory
   * by itself (existing streams may pass it); replies and streams have
   * their own caps.
   */
  sessionMemoryBytes: number;
}

export const DEFAULT_CONNECTION_LIMITS: ConnectionLimits = {
  sniffTimeoutMs: 10_000,
  headersTimeoutMs: 15_000,
  requestTimeoutMs: 60_000,
  idleTimeoutMs: 65_000,
  maxConnectionsPerClient: 1024,
  maxConnections: 8192,
  sessionMemoryBytes: 64 * 1024 * 1024,
};

const PREFACE = Buffer.from("PRI * HTTP/2.0");

/** Counts open HTTP/2 streams per session, to tell an idle session from a quiet one. */
const openStreams = new WeakMap<ServerHttp2Session, number>();

/** Resets `stream` if its request has not fully arrived within `ms`. */
function timeRequest(stream: ServerHttp2Stream, ms: number): void {
  if (stream.endAfterHeaders) return;
  const timer = setTimeout(() => {
    if (!stream.destroyed && !stream.readableEnded) stream.close(h2.NGHTTP2_CANCEL);
  }, ms);
  timer.unref();
  const clear = () => clearTimeout(timer);
  stream.once("end", clear);
  stream.once("close", clear);
}

/** A certificate chain and its private key, PEM. */
export interface TlsFiles {
  cert: Buffer;
  key: Buffer;
}

/** The HTTP/1.1 server, fed sockets by the TCP server, with the header, request and idle timeouts of `limits`. */
function createH1Server(handler: RequestHandler, limits: ConnectionLimits): HttpServer {
  const h1 = createHttpServer(
    {
      headersTimeout: limits.headersTimeoutMs,
      requestTimeout: limits.requestTimeoutMs,
      keepAliveTimeout: limits.idleTimeoutMs,
      // How often Node checks the two timeouts above (its default, 30 s, would let them run over by that much).
      connectionsCheckingInterval: Math.max(50, Math.min(1000, Math.floor(limits.headersTimeoutMs / 4))),
    },
    handler as (req: IncomingMessage, res: ServerResponse) => void,
  );
  // http.Server arms its header and request timeouts (and the connection
  // list closeIdleConnections uses) when it starts listening. It never
  // listens here (the TCP server hands it sockets), so start them as
  // listening would.
  h1.emit("listening");
  return h1;
}

/**
 * The HTTP/2 server, fed sockets by the TCP server: each stream gets the
 * request timeout, and a session idle with no stream open gets GOAWAY.
 * `sessions` holds the open sessions (for a graceful close).
 */
function createH2Server(handler: RequestHandler, limits: ConnectionLimits): { server: Http2Server; sessions: Set<ServerHttp2Session> } {
  const server = createHttp2Server(
    { maxSessionMemory: Math.max(10, Math.ceil(limits.sessionMemoryBytes / 2 ** 20)) },
    handler as (req: Http2ServerRequest, res: Http2ServerResponse) => void,
  );
  const sessions = new Set<ServerHttp2Session>();
  server.on("session", (session) => {
    sessions.add(session);
    openStreams.set(session, 0);
    session.once("close", () => sessions.delete(session));
    session.on("stream", (stream: ServerHttp2Stream) => {
      openStreams.set(session, (openStreams.get(session) ?? 0) + 1);
      stream.once("close", () => openStreams.set(session, (openStreams.get(session) ?? 1) - 1));
      timeRequest(stream, limits.requestTimeoutMs);
    });
    // Inactivity with no stream open: GOAWAY. A stream waiting for output is not idleness.
    session.setTimeout(limits.idleTimeoutMs, () => {
      if ((openStreams.get(session) ?? 0) === 0) session.close();
    });
  });
  return { server, sessions };
}

/**
 * Hands a plain-text socket to HTTP/2 or HTTP/1.1 by its first bytes (the
 * HTTP/2 preface or not); until they say which, only the socket's sniff
 * timeout runs.
 */
function sniffProtocol(socket: Socket, h1: HttpServer, h2: Http2Server): void {
  let head = Buffer.alloc(0);
  const onData = (chunk: Buffer) => {
    head = Buffer.concat([head, chunk]);
    const n = Math.min(head.length, PREFACE.length);
    const isH2 = head.subarray(0, n).equals(PREFACE.subarray(0, n));
    if (isH2 && head.length < PREFACE.length) return; // need more bytes to decide
    socket.off("data", onData);
    socket.setTimeout(0);
    socket.pause();
    socket.unshift(head);
    if (isH2) {
      // The HTTP/2 session takes the buffered bytes and then reads the
      // socket's handle itself; resuming the JS stream would steal data.
      h2.emit("connection", socket);
    } else {
      h1.emit("connection", socket);
      socket.resume();
    }
  };
  socket.on("data", onData);
}

/** Listens on `host:port` (port 0: any free port); with `tls`, every connection is TLS. */
export async function listen(
  handler: RequestHandler,
  port: number,
  host: string,
  limits: ConnectionLimits = DEFAULT_CONNECTION_LIMITS,
  tls?: TlsFiles,
  upgrade?: UpgradeHandler,
): Promise<Listener> {
  // TLS is done by a tls.Server that never listens: it gets each socket once
  // the caps let it in, and hands the decrypted connection on by ALPN.
  const secure = tls ? createTlsServer({ cert: tls.cert, key: tls.key, ALPNProtocols: ["h2", "http/1.1"] }) : undefined;
  const h1 = createH1Server(handler, limits);
  // An HTTP/1.1 upgrade (a WebSocket) that no handler takes is answered 404 and closed.
  h1.on("upgrade", (req: IncomingMessage, socket: Duplex, head: Buffer) => {
    if (!upgrade?.(req, socket, head)) socket.end("HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\nconnection: close\r\n\r\n");
  });
  const { server: h2server, sessions } = createH2Server(handler, limits);
  const sockets = new Set<Socket>();
  const perClient = new Map<string, number>();

  secure?.on("secureConnection", (socket: TLSSocket) => {
    // Node's TLS socket times nothing by itself; the raw one's sniff timeout ends with the handshake.
    (socket as TLSSocket & { _parent?: Socket })._parent?.setTimeout(0);
    if (socket.alpnProtocol === "h2") h2server.emit("connection", socket);
    else h1.emit("connection", socket);
  });
  secure?.on("tlsClientError", (_err, socket) => socket.destroy());

  const tcp = createTcpServer((socket) => {
    const client = socket.remoteAddress ?? "";
    const held = perClient.get(client) ?? 0;
    if (held >= limits.maxConnectionsPerClient || sockets.size >= limits.maxConnections) {
      // Refused before a byte is read: the peer sees its connection closed.
      socket.destroy();
      return;
    }
    perClient.set(client, held + 1);
    // Streams write many small messages: send each at once (no Nagle delay
    // waiting for the client's ACK). http.Server would do this itself, but
    // its own listener is bypassed here.
    socket.setNoDelay(true);
    sockets.add(socket);
    socket.once("close", () => {
      sockets.delete(socket);
      const n = (perClient.get(client) ?? 1) - 1;
      if (n === 0) perClient.delete(client);
      else perClient.set(client, n);
    });
    // Until the first bytes say which protocol this is, nobody else times the socket.
    socket.setTimeout(limits.sniffTimeoutMs, () => socket.destroy());
    if (secure) {
      // The handshake has the sniffing phase's time (the raw socket's timeout, cleared once it is done).
      secure.emit("connection", socket);
      return;
    }
    sniffProtocol(socket, h1, h2server);
    socket.on("error", () => socket.destroy());
  });

  await new Promise<void>((resolve, reject) => {
    tcp.once("error", reject);
    tcp.listen(port, host, () => {
      tcp.off("error", reject);
      resolve();
    });
  });
  const addr = tcp.address();
  const bound = typeof addr === "object" && addr ? addr.port : port;

  return {
    port: bound,
    host,
    get connections() {
      return sockets.size;
    },
    async close(graceMs = 5000) {
      const stopped = new Promise<void>((resolve) => tcp.close(() => resolve()));
      h1.closeIdleConnections();
      h1.close();
      h2server.close();
      // GOAWAY: no new streams; open ones may finish.
      for (const session of sessions) session.close();
      const deadline = setTimeout(() => {
        for (const s of sockets) s.destroy();
      }, graceMs);
      // Idle HTTP/1.1 keep-alive sockets do not end by themselves.
      const sweep = setInterval(() => h1.closeIdleConnections(), 100);
      await stopped;
      while (sockets.size > 0) await new Promise((r) => setTimeout(r, 20));
      clearTimeout(deadline);
      clearInterval(sweep);
    },
  };
}

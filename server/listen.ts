/**
 * One TCP port for HTTP/1.1 and HTTP/2 without TLS (h2c, prior knowledge).
 *
 * Node's `http2.createServer({ allowHTTP1 })` only falls back to HTTP/1.1
 * under TLS, so this server peeks at each connection's first bytes: the
 * HTTP/2 preface starts with "PRI * HTTP/2.0", which no HTTP/1.1 method does.
 * Both protocols reach the same request handler, so Connect, gRPC and
 * gRPC-Web all work on one port.
 */
import { createServer as createHttpServer, type IncomingMessage, type ServerResponse } from "node:http";
import { createServer as createHttp2Server, type Http2ServerRequest, type Http2ServerResponse } from "node:http2";
import { createServer as createTcpServer, type Socket } from "node:net";

export type RequestHandler = (
  req: IncomingMessage | Http2ServerRequest,
  res: ServerResponse | Http2ServerResponse,
) => void;

export interface Listener {
  /** The port actually bound (useful with port 0). */
  readonly port: number;
  readonly host: string;
  /**
   * Stops accepting connections, lets requests in flight finish for up to
   * `graceMs`, then destroys what is left.
   */
  close(graceMs?: number): Promise<void>;
}

const PREFACE = Buffer.from("PRI * HTTP/2.0");

/** Listens on `host:port` (port 0: any free port). */
export async function listen(handler: RequestHandler, port: number, host: string): Promise<Listener> {
  const h1 = createHttpServer(handler as (req: IncomingMessage, res: ServerResponse) => void);
  h1.keepAliveTimeout = 65_000;
  const h2 = createHttp2Server({}, handler as (req: Http2ServerRequest, res: Http2ServerResponse) => void);
  const sockets = new Set<Socket>();
  const sessions = new Set<import("node:http2").ServerHttp2Session>();
  h2.on("session", (session) => {
    sessions.add(session);
    session.once("close", () => sessions.delete(session));
  });

  const tcp = createTcpServer((socket) => {
    // Streams write many small messages: send each at once (no Nagle delay
    // waiting for the client's ACK). http.Server would do this itself, but
    // its own listener is bypassed here.
    socket.setNoDelay(true);
    sockets.add(socket);
    socket.once("close", () => sockets.delete(socket));
    let head = Buffer.alloc(0);
    const onData = (chunk: Buffer) => {
      head = Buffer.concat([head, chunk]);
      const n = Math.min(head.length, PREFACE.length);
      const isH2 = head.subarray(0, n).equals(PREFACE.subarray(0, n));
      if (isH2 && head.length < PREFACE.length) return; // need more bytes to decide
      socket.off("data", onData);
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
    async close(graceMs = 5000) {
      const stopped = new Promise<void>((resolve) => tcp.close(() => resolve()));
      h1.closeIdleConnections();
      h1.close();
      h2.close();
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

/**
 * The bare server behind the token fan-out floor: what it costs to push one
 * small chunk to many open HTTP responses at once, with nothing behind it.
 * `GET /fanout?n=N&ticks=T&every=MS` holds each response open until N have
 * arrived, then, every MS milliseconds on one timer (as the bench's pace
 * engine emits every running step's token on one clock), writes `<now>|` to
 * all N (now: epoch ms, the same clock as the followers' receive time), T
 * times, and ends them. Serves HTTP/1.1 and, with `--h2`, cleartext HTTP/2.
 * Prints `listening <port>`.
 */
import { createServer as createHttpServer, type ServerResponse } from "node:http";
import { createServer as createHttp2Server, type Http2ServerResponse } from "node:http2";

/** An open response, as the ticks use it. */
interface Sink {
  write(chunk: Buffer): void;
  end(): void;
}

let waiting: Sink[] = [];

/** Writes one tick to every response `ticks` times, `every` ms apart on a shared clock, then ends them. */
function run(group: Sink[], ticks: number, every: number): void {
  const start = performance.now();
  let tick = 0;
  const next = () => {
    const chunk = Buffer.from(`${(performance.timeOrigin + performance.now()).toFixed(3)}|`);
    for (const res of group) res.write(chunk);
    if (++tick === ticks) {
      for (const res of group) res.end();
      return;
    }
    setTimeout(next, Math.max(0, start + tick * every - performance.now()));
  };
  setTimeout(next, every);
}

function handle(url: string | undefined, res: ServerResponse | Http2ServerResponse): void {
  const q = new URL(url ?? "/", "http://x").searchParams;
  const n = Number(q.get("n"));
  const ticks = Number(q.get("ticks"));
  const every = Number(q.get("every") ?? 20);
  if (!(n > 0 && ticks > 0 && every > 0)) {
    res.statusCode = 400;
    res.end("want /fanout?n=N&ticks=T&every=MS");
    return;
  }
  res.writeHead(200, { "content-type": "text/plain" });
  if ("flushHeaders" in res) res.flushHeaders();
  const out = res as { write(chunk: Buffer): boolean; end(): void };
  waiting.push({ write: (chunk) => out.write(chunk), end: () => out.end() });
  if (waiting.length >= n) {
    const group = waiting;
    waiting = [];
    run(group, ticks, every);
  }
}

const server = process.argv.includes("--h2")
  ? createHttp2Server({ settings: { maxConcurrentStreams: 10_000 } }, (req, res) => handle(req.url, res))
  : createHttpServer((req, res) => handle(req.url, res));
server.listen(0, "127.0.0.1", () => {
  const addr = server.address();
  process.stdout.write(`listening ${typeof addr === "object" && addr ? addr.port : 0}\n`);
});
process.on("SIGTERM", () => process.exit(0));

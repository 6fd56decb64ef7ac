/**
 * Peers that hold connections by saying nothing: a silent socket, a
 * slowloris header, a trickled body, idle keep-alive sockets and HTTP/2
 * sessions, and one address opening many connections. Each is cut by its
 * own timeout or cap, while a stream that waits for output longer than
 * every timeout lives on. The timeouts are short here; the defaults are in
 * DEFAULT_CONNECTION_LIMITS.
 */
import { request as httpRequest } from "node:http";
import { connect as h2connect } from "node:http2";
import { connect as netConnect, type Socket } from "node:net";
import { describe, expect, it } from "vitest";
import { createStepqClient } from "../clients/node/client.js";
import { StepState } from "../gen/stepq/v1/step_pb.js";
import { echo, useStack } from "./helpers/stack.js";

const connections = {
  sniffTimeoutMs: 400,
  headersTimeoutMs: 400,
  requestTimeoutMs: 800,
  idleTimeoutMs: 400,
  maxConnectionsPerClient: 4,
  maxConnections: 1000,
  sessionMemoryBytes: 64 * 1024 * 1024,
};
const stack = await useStack({ connections });
void (await stack.worker()).runForever();
const port = stack.server.port;

/** A raw socket to the server from `localAddress`, with when it closed and what it received. */
function open(localAddress = "127.0.0.1") {
  const socket = netConnect({ port, host: "127.0.0.1", localAddress });
  let received = "";
  socket.on("data", (d) => (received += d.toString("latin1")));
  socket.on("error", () => {});
  const opened = Date.now();
  const closed = new Promise<number>((resolve) => socket.once("close", () => resolve(Date.now() - opened)));
  const connected = new Promise<void>((resolve) => socket.once("connect", () => resolve()));
  return { socket, closed, connected, received: () => received };
}

/** Writes `text` one byte every `everyMs` until the socket closes. */
function trickle(socket: Socket, text: string, everyMs: number): void {
  let i = 0;
  const timer = setInterval(() => {
    if (socket.destroyed || i >= text.length) return clearInterval(timer);
    socket.write(text[i++] as string);
  }, everyMs);
  socket.once("close", () => clearInterval(timer));
}

describe("connection timeouts", () => {
  it("a connection that sends nothing is closed after the sniff timeout", async () => {
    const c = open();
    const after = await c.closed;
    expect(after).toBeGreaterThanOrEqual(350);
    expect(after).toBeLessThan(5000);
    expect(c.received()).toBe("");
  });

  it("a slowloris client sending its headers a byte at a time is cut after the header timeout", async () => {
    const c = open();
    await c.connected;
    trickle(c.socket, "GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: " + "a".repeat(10_000), 50);
    const after = await c.closed;
    expect(after).toBeLessThan(5000);
    expect(c.received()).toMatch(/^HTTP\/1\.1 408 /);
  });

  it("a request body trickled a byte at a time is cut after the request timeout", async () => {
    const c = open();
    await c.connected;
    c.socket.write("POST /stepq.v1.StepService/GetStep HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 10000\r\n\r\n");
    trickle(c.socket, "{".padEnd(10_000, " "), 50);
    const after = await c.closed;
    expect(after).toBeGreaterThanOrEqual(700);
    expect(after).toBeLessThan(5000);
    expect(c.received()).toMatch(/^HTTP\/1\.1 408 /);
  });

  it("an idle keep-alive HTTP/1.1 connection is closed after the idle timeout", async () => {
    const c = open();
    await c.connected;
    c.socket.write("GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n");
    const after = await c.closed;
    expect(c.received()).toMatch(/^HTTP\/1\.1 200 /);
    expect(after).toBeLessThan(5000);
  });

  it("an idle HTTP/2 session gets GOAWAY after the idle timeout", async () => {
    const session = h2connect(stack.server.url);
    const goaway = new Promise<void>((resolve) => session.once("goaway", () => resolve()));
    const req = session.request({ ":path": "/healthz" });
    req.resume();
    await new Promise((resolve) => req.once("close", resolve));
    const idleSince = Date.now();
    await goaway;
    expect(Date.now() - idleSince).toBeLessThan(5000);
    session.destroy();
  });

  it("streams waiting longer than every timeout for their output stay open and get it all, over HTTP/1.1 and HTTP/2", async () => {
    const step = await stack.client.submit(echo({ text: "late but whole", delayMs: 1500, tokenCount: 3 }));
    const followers = [stack.client, createStepqClient({ baseUrl: stack.server.url, httpVersion: "2" })].map(async (client) => {
      const texts: string[] = [];
      let state: StepState | undefined;
      for await (const e of client.follow(step.id, { maxReconnects: 0 })) {
        if (e.type === "tokens") texts.push(...e.tokens.map((t) => t.text));
        if (e.type === "end") state = e.state;
      }
      return { texts, state };
    });
    for (const f of await Promise.all(followers)) {
      expect(f.state).toBe(StepState.SUCCEEDED);
      expect(f.texts.join("")).toBe("late but whole ");
    }
  });
});

describe("connection caps", () => {
  it("one address holds at most max-connections-per-client connections; others still get in", async () => {
    const held = Array.from({ length: 4 }, () => open("127.0.0.2"));
    await Promise.all(held.map((c) => c.connected));
    for (const c of held) c.socket.write("GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n");
    await Promise.all(held.map((c) => new Promise((r) => c.socket.once("data", r))));

    const refused = open("127.0.0.2");
    const after = await refused.closed;
    expect(after).toBeLessThan(300);
    expect(refused.received()).toBe("");

    // Another address is served meanwhile.
    const status = await new Promise<number>((resolve, reject) => {
      const req = httpRequest({ host: "127.0.0.1", port, path: "/healthz", localAddress: "127.0.0.3" }, (res) => {
        res.resume();
        resolve(res.statusCode ?? 0);
      });
      req.on("error", reject);
      req.end();
    });
    expect(status).toBe(200);
    for (const c of held) c.socket.destroy();
  });
});

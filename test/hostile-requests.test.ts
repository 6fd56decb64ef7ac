/**
 * No request can end the server process. The server runs as a real child
 * process here, so a crash shows as an exit, not as a failed assertion in
 * the same process.
 */
import { connect as netConnect } from "node:net";
import { describe, expect, it } from "vitest";
import { startProcess } from "./helpers/process.js";
import { useRedis } from "./helpers/redis.js";

const redis = await useRedis();
const server = startProcess(process.execPath, ["--import", "tsx", "server/main.ts", "--port", "0", "--redis-url", redis.url]);
const url = (await server.waitFor(/listening url=(http:\/\/\S+)/))[1] as string;
const port = Number(new URL(url).port);

/** Sends `bytes` on a fresh TCP connection and resolves with everything the server sends until it closes. */
function raw(bytes: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = netConnect(port, "127.0.0.1", () => socket.write(bytes));
    let out = "";
    socket.on("data", (d) => (out += d.toString("latin1")));
    socket.on("error", reject);
    socket.on("close", () => resolve(out));
  });
}

describe("requests that once ended the process", () => {
  it("an HTTP/1.0 GET of an RPC without a Host header is answered, and the server lives on", async () => {
    const reply = await raw("GET /stepq.v1.JobService/ListJobs?encoding=json&message=%7B%7D HTTP/1.0\r\n\r\n");
    expect(reply).toMatch(/^HTTP\/1\.[01] 200 /);
    expect(reply).toMatch(/"jobs"|\{\}/);
    expect(server.child.exitCode).toBeNull();
    expect((await fetch(`${url}/healthz`)).status).toBe(200);
  });

  it("an HTTP/1.0 POST of an RPC without a Host header is answered, and the server lives on", async () => {
    const body = JSON.stringify({ stepId: "0000000000000000.0" });
    const reply = await raw(
      `POST /stepq.v1.StepService/GetStep HTTP/1.0\r\nContent-Type: application/json\r\nContent-Length: ${body.length}\r\n\r\n${body}`,
    );
    expect(reply).toMatch(/^HTTP\/1\.[01] 404 /);
    expect(reply).toContain('"code":"not_found"');
    const stream = await raw(
      "POST /stepq.v1.StepService/StreamTokens HTTP/1.0\r\nContent-Type: application/connect+json\r\nContent-Length: 0\r\n\r\n",
    );
    expect(stream).toMatch(/^HTTP\/1\.[01] \d{3} /);
    expect(server.child.exitCode).toBeNull();
    expect((await fetch(`${url}/healthz`)).status).toBe(200);
  });

  it("an HTTP/1.1 request with an empty or malformed Host header is answered, and the server lives on", async () => {
    for (const host of ["", "a b", "[zz"]) {
      const reply = await raw(`GET /stepq.v1.JobService/ListJobs?encoding=json&message=%7B%7D HTTP/1.1\r\nHost: ${host}\r\nConnection: close\r\n\r\n`);
      expect(reply).toMatch(/^HTTP\/1\.1 (200|400) /);
    }
    expect(server.child.exitCode).toBeNull();
    expect((await fetch(`${url}/healthz`)).status).toBe(200);
  });

  it("an HTTP/0.9-style request line is refused, and the server lives on", async () => {
    const reply = await raw("GET /stepq.v1.StepService/GetStep\r\n\r\n");
    expect(reply).not.toMatch(/^HTTP\/1\.[01] 5/);
    expect(server.child.exitCode).toBeNull();
    expect((await fetch(`${url}/healthz`)).status).toBe(200);
  });

  it("an HTTP/1.1 request without a Host header is refused with 400, and the server lives on", async () => {
    const reply = await raw("GET /stepq.v1.JobService/ListJobs?encoding=json&message=%7B%7D HTTP/1.1\r\n\r\n");
    expect(reply).toMatch(/^HTTP\/1\.1 400 /);
    expect(server.child.exitCode).toBeNull();
  });
});

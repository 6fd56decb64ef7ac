/**
 * Issue 17: bad input on every route beyond the RPCs gets a clear 4xx in
 * that route's own shape, never a 500, and never ends the server: bodies
 * over --max-request-bytes (declared, or growing past it while chunked),
 * bodies of every wrong kind, paths that are not UTF-8, wrong methods, and a
 * few thousand seeded random bodies.
 */
import { request } from "node:http";
import { describe, expect, it } from "vitest";
import { echo, useStack } from "./helpers/stack.js";

const stack = await useStack({ maxRequestBytes: 4096 });
const { port } = stack.server;

interface Answer {
  status: number;
  body: string;
}

/** Sends `body` to `path` (chunked when `chunked`), with raw node:http (any bytes, any length). */
function send(method: string, path: string, body: string | Buffer = "", chunked = false): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const headers: Record<string, string | number> = { "content-type": "application/json" };
    if (!chunked) headers["content-length"] = Buffer.byteLength(body);
    const req = request({ host: "127.0.0.1", port, method, path, headers }, (res) => {
      const parts: Buffer[] = [];
      res.on("data", (c: Buffer) => parts.push(c));
      res.on("end", () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(parts).toString() }));
    });
    req.on("error", reject);
    if (chunked && body.length > 0) {
      for (let i = 0; i < body.length; i += 1000) req.write(body.slice(i, i + 1000));
    } else if (body.length > 0) req.write(body);
    req.end();
  });
}

const ROUTES: { path: string; shape: (a: Answer) => void }[] = [
  { path: "/v1/chat/completions", shape: (a) => expect(JSON.parse(a.body)).toEqual({ error: expect.objectContaining({ message: expect.any(String), type: expect.any(String) }) }) },
  { path: "/v1/completions", shape: (a) => expect(JSON.parse(a.body).error.message).toEqual(expect.any(String)) },
  { path: "/v1/embeddings", shape: (a) => expect(JSON.parse(a.body).error.message).toEqual(expect.any(String)) },
  { path: "/submit-job", shape: (a) => expect(JSON.parse(a.body)).toEqual({ success: false, error: expect.any(String) }) },
  { path: "/submit-step", shape: (a) => expect(JSON.parse(a.body)).toEqual({ success: false, error: expect.any(String) }) },
  { path: "/v1/jobs", shape: (a) => expect(JSON.parse(a.body)).toEqual({ error: { code: expect.any(String), message: expect.any(String) } }) },
  { path: "/v1/inference", shape: (a) => expect(JSON.parse(a.body)).toEqual({ error: { code: expect.any(String), message: expect.any(String) } }) },
];

describe("bodies the routes refuse", () => {
  it("a body over --max-request-bytes is 413 in each route's shape, declared or chunked", async () => {
    const big = JSON.stringify({ model: "m", prompt: "x".repeat(10_000) });
    for (const { path, shape } of ROUTES) {
      for (const chunked of [false, true]) {
        const a = await send("POST", path, big, chunked);
        expect(a.status, `${path} chunked=${chunked}: ${a.body}`).toBe(413);
        shape(a);
        expect(a.body).toMatch(/over this server's limit of 4096 \(--max-request-bytes\)/);
      }
    }
  });

  it("bodies of every wrong kind are 4xx in each route's shape", async () => {
    const bodies = ["", "null", "[]", "42", '"text"', "{", '{"model": 5}', '{"model": "m", "messages": "hi"}', "\u0000\u00ff", '{"operation": {"infer": 7}}'];
    for (const { path, shape } of ROUTES) {
      for (const body of bodies) {
        const a = await send("POST", path, body);
        expect(a.status, `${path} ${JSON.stringify(body)}: ${a.body}`).toBeGreaterThanOrEqual(400);
        expect(a.status, `${path} ${JSON.stringify(body)}: ${a.body}`).toBeLessThan(500);
        shape(a);
      }
    }
  });

  it("a path that is not UTF-8 is 400; a wrong method 405 with Allow", async () => {
    const bad = await send("GET", "/v1/steps/%ff%fe/events");
    expect(bad.status).toBe(400);
    expect(JSON.parse(bad.body)).toEqual({ code: "invalid_argument", message: "/v1/steps/%ff%fe/events is not a valid path: a part of it is not URL-encoded UTF-8" });
    expect((await send("PATCH", "/v1/embeddings")).status).toBe(405);
  });
});

describe("seeded random bodies", () => {
  it("never answer 5xx and never stop the server", async () => {
    let seed = 17;
    const rand = () => (seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31;
    const pick = <T>(xs: readonly T[]) => xs[Math.floor(rand() * xs.length)] as T;
    const values = [null, true, 0, -1, 1e308, "", "x", "stepq-tiny", [], [1], ["a"], {}, { type: "text", text: "t" }, { role: "user", content: "c" }];
    const fields = ["model", "messages", "prompt", "input", "stream", "max_tokens", "temperature", "stop", "n", "service_required", "payload", "operation", "text", "token_count", "priority", "max_retries", "encoding_format"];
    for (let i = 0; i < 1500; i++) {
      const body: Record<string, unknown> = {};
      const n = Math.floor(rand() * 5);
      for (let k = 0; k < n; k++) body[pick(fields)] = pick(values);
      const { path } = pick(ROUTES);
      const a = await send("POST", path, JSON.stringify(body));
      expect(a.status, `${path} ${JSON.stringify(body)}: ${a.body}`).toBeLessThan(500);
    }
    // Still serving.
    const step = await stack.client.submit(echo({ text: "alive" }));
    expect(step.id).toMatch(/\.0$/);
  }, 60_000);
});

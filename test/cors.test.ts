/**
 * Issue 16, item 2: CORS. A page served from an origin listed in
 * --cors-origins calls stepq from real Chromium (unary and server
 * streaming, with an Authorization header, so every call is preflighted);
 * a page from any other origin is refused by the browser, and its request
 * never reaches the queue. Without --cors-origins no origin is allowed.
 */
import { createServer, request, type Server } from "node:http";
import { afterAll, describe, expect, it } from "vitest";
import { cors as connectCors } from "@connectrpc/connect";
import { buildServer } from "../server/main.js";
import { serverConfig } from "../server/config.js";
import { PREFLIGHT_MAX_AGE_S } from "../server/cors.js";
import { useChromium } from "./helpers/browser.js";
import { quiet, useStack } from "./helpers/stack.js";

/** A server of one empty page: an origin for the browser to call stepq from. */
async function pageServer(): Promise<{ server: Server; origin: string }> {
  const server = createServer((_req, res) => res.writeHead(200, { "content-type": "text/html" }).end("<!doctype html><title>page</title>"));
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as { port: number };
  return { server, origin: `http://127.0.0.1:${port}` };
}

const allowed = await pageServer();
const other = await pageServer();
const stack = await useStack({ corsOrigins: [allowed.origin] });
const closedByDefault = await buildServer({ redisUrl: stack.redis.url, port: 0, logger: quiet, queue: "cors-off" });
const browser = await useChromium();
afterAll(async () => {
  await closedByDefault.close();
  allowed.server.close();
  other.server.close();
});

interface PageResult {
  ok?: boolean;
  body?: string;
  error?: string;
}

/** From a page of `origin`, POSTs a Connect JSON SubmitStep (with an Authorization header) and reads its answer. */
async function submitFrom(origin: string, base: string): Promise<PageResult> {
  const page = await browser.newPage();
  try {
    await page.goto(`${origin}/`);
    return await page.evaluate(async (url) => {
      try {
        const res = await fetch(`${url}/stepq.v1.StepService/SubmitStep`, {
          method: "POST",
          headers: { "content-type": "application/json", "connect-protocol-version": "1", authorization: "Bearer not-needed-on-loopback" },
          body: JSON.stringify({ operation: { echo: { text: "from the browser", tokenCount: 3 } } }),
        });
        return { ok: res.ok, body: await res.text() };
      } catch (e) {
        return { error: String(e) };
      }
    }, base);
  } finally {
    await page.close();
  }
}

/** From a page of `origin`, reads a step's tokens as a Connect server stream (enveloped JSON), returning the frames' text. */
async function streamFrom(origin: string, base: string, stepId: string): Promise<PageResult> {
  const page = await browser.newPage();
  try {
    await page.goto(`${origin}/`);
    return await page.evaluate(
      async ({ url, id }) => {
        try {
          const msg = new TextEncoder().encode(JSON.stringify({ stepId: id }));
          const body = new Uint8Array(5 + msg.length);
          new DataView(body.buffer).setUint32(1, msg.length);
          body.set(msg, 5);
          const res = await fetch(`${url}/stepq.v1.StepService/StreamTokens`, {
            method: "POST",
            headers: { "content-type": "application/connect+json", "connect-protocol-version": "1" },
            body,
          });
          return { ok: res.ok, body: new TextDecoder().decode(await res.arrayBuffer()) };
        } catch (e) {
          return { error: String(e) };
        }
      },
      { url: base, id: stepId },
    );
  } finally {
    await page.close();
  }
}

const jobCount = async () => stack.server.queue.redis.xlen(stack.server.queue.keys.jobIndex);

describe("CORS, in Chromium", () => {
  it("a page from a listed origin submits a step and streams its tokens", async () => {
    void (await stack.worker()).runForever();
    const submitted = await submitFrom(allowed.origin, stack.server.url);
    expect(submitted.ok, JSON.stringify(submitted)).toBe(true);
    const stepId = (JSON.parse(submitted.body ?? "{}") as { step?: { id?: string } }).step?.id ?? "";
    expect(stepId).toMatch(/^[0-9a-z]{16}\.0$/);
    await stack.client.wait(stepId);
    const streamed = await streamFrom(allowed.origin, stack.server.url, stepId);
    expect(streamed.ok, JSON.stringify(streamed)).toBe(true);
    expect(streamed.body).toContain('"text"');
  });

  it("a page from another origin is refused by the browser, and its request never reaches the queue", async () => {
    const before = await jobCount();
    const refused = await submitFrom(other.origin, stack.server.url);
    expect(refused.error).toMatch(/TypeError: Failed to fetch/);
    expect(await jobCount()).toBe(before);
  });

  it("without --cors-origins no origin is allowed", async () => {
    const refused = await submitFrom(allowed.origin, closedByDefault.url);
    expect(refused.error).toMatch(/TypeError: Failed to fetch/);
  });

  it("the preflight allows Connect's and gRPC-Web's methods and headers and Authorization, cached for two hours", async () => {
    const res = await new Promise<{ status: number; headers: Record<string, string | string[] | undefined> }>((resolve, reject) => {
      const req = request(`${stack.server.url}/stepq.v1.StepService/SubmitStep`, {
        method: "OPTIONS",
        headers: { origin: allowed.origin, "access-control-request-method": "POST", "access-control-request-headers": "content-type,authorization" },
      });
      req.on("response", (r) => resolve({ status: r.statusCode ?? 0, headers: r.headers }));
      req.on("error", reject);
      req.end();
    });
    expect(res.status).toBe(204);
    expect(res.headers["access-control-allow-origin"]).toBe(allowed.origin);
    expect(res.headers["access-control-max-age"]).toBe(String(PREFLIGHT_MAX_AGE_S));
    const allowedHeaders = String(res.headers["access-control-allow-headers"]).toLowerCase().split(",");
    for (const h of [...connectCors.allowedHeaders, "Authorization"]) expect(allowedHeaders).toContain(h.toLowerCase());
    expect(String(res.headers["access-control-allow-methods"]).split(",")).toEqual([...connectCors.allowedMethods]);
  });

  it("--cors-origins takes origins only: a path or a bare host is refused at start, naming the flag", () => {
    expect(serverConfig(["--cors-origins", "https://app.example.com,http://[::1]:5173,*"], {}).corsOrigins).toEqual([
      "https://app.example.com",
      "http://[::1]:5173",
      "*",
    ]);
    for (const bad of ["https://app.example.com/", "app.example.com", "ftp://x.org"]) {
      expect(() => serverConfig(["--cors-origins", bad], {})).toThrow(
        `--cors-origins: ${JSON.stringify(bad)} is not an origin; give scheme://host[:port] with no path, e.g. https://app.example.com, or *`,
      );
    }
  });
});

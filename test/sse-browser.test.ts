/**
 * Issue 17, item 1, in a real browser: Chromium's EventSource reads a step's
 * server-sent events, and across connections a proxy cuts mid-stream it
 * reconnects by itself with Last-Event-ID: the text it assembles has every
 * token once, in order. After the end it stops (the server answers 204).
 */
import { describe, expect, it } from "vitest";
import { useChromium } from "./helpers/browser.js";
import { useFlakyProxy } from "./helpers/flaky-proxy.js";
import { echo, useStack } from "./helpers/stack.js";

const stack = await useStack();
void (await stack.worker({ concurrency: 2 })).runForever();
const browser = await useChromium();

interface Read {
  text: string;
  opens: number;
  ends: number;
  state: string;
  requests: number;
}

/** From a page of `origin`, reads `path` with EventSource until its end event, then waits to see whether it reconnects. */
async function readInBrowser(origin: string, path: string): Promise<Read> {
  const page = await browser.newPage();
  let requests = 0;
  page.on("request", (r) => {
    if (r.url().includes("/events")) requests++;
  });
  try {
    await page.goto(`${origin}/healthz`);
    const read = await page.evaluate(
      (p) =>
        new Promise<Omit<Read, "requests">>((resolve, reject) => {
          const es = new EventSource(p);
          let text = "";
          let opens = 0;
          let ends = 0;
          let state = "";
          es.onopen = () => opens++;
          es.addEventListener("token", (e) => {
            for (const t of JSON.parse((e as MessageEvent).data).tokens) text += t.text;
          });
          es.addEventListener("end", (e) => {
            ends++;
            state = JSON.parse((e as MessageEvent).data).state;
            // The server's next answer, to EventSource's reconnect after the end, is 204: it stops.
          });
          es.onerror = () => {
            if (es.readyState === EventSource.CLOSED) resolve({ text, opens, ends, state });
          };
          setTimeout(() => reject(new Error(`no end after 20 s; text so far ${text.length} chars, ${opens} opens`)), 20_000);
        }),
      path,
    );
    return { ...read, requests };
  } finally {
    await page.close();
  }
}

describe("EventSource in Chromium", () => {
  it("reads a step's events to its end, then stops reconnecting", async () => {
    const step = await stack.client.submit(echo({ text: "alpha beta", tokenCount: 20 }));
    const read = await readInBrowser(stack.server.url, `/v1/steps/${step.id}/events`);
    expect(read).toMatchObject({ text: "alpha beta ".repeat(10), opens: 1, ends: 1, state: "STEP_STATE_SUCCEEDED" });
    expect(read.requests).toBe(2); // the stream, then the reconnect that got 204
  });

  it("reconnects by itself across cut connections and resumes with Last-Event-ID: no gap, no repeat", async () => {
    const proxy = await useFlakyProxy({ host: "127.0.0.1", port: stack.server.port }, 2500, 3);
    const step = await stack.client.submit(echo({ text: "one two three four", tokenCount: 200, tokenDelayMs: 2 }));
    const read = await readInBrowser(proxy.url, `/v1/steps/${step.id}/events`);
    expect(proxy.cuts).toBeGreaterThan(0);
    expect(read.opens).toBeGreaterThan(1);
    expect(read.text).toBe("one two three four ".repeat(50));
    expect(read).toMatchObject({ ends: 1, state: "STEP_STATE_SUCCEEDED" });
  });
});

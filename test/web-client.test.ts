/**
 * Issue 16, item 1: the browser client in real Chromium, from a page of
 * another origin (listed in --cors-origins), against a real server and
 * worker: submit with an idempotency key (a repeat returns the same step),
 * follow(stepId) and follow(jobId) with every token once and in order,
 * resuming by itself across connections a proxy cuts, the gRPC-Web option,
 * and the shipped bundle: built without any Node built-in, and running the
 * README's browser example as written.
 */
import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { createServer, type Server } from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { build } from "esbuild";
import { afterAll, describe, expect, it } from "vitest";
import { buildWeb } from "../scripts/build-web.mjs";
import { useFlakyProxy } from "./helpers/flaky-proxy.js";
import { useChromium } from "./helpers/browser.js";
import { useStack } from "./helpers/stack.js";

const root = join(import.meta.dirname, "..");
// The client as one script that sets window.stepq (the shipped bundle is an ES module of the same code).
const bundle = (await build({ entryPoints: [join(root, "clients/web/index.ts")], bundle: true, format: "iife", globalName: "stepq", platform: "browser", write: false, logLevel: "error" }))
  .outputFiles[0]!.text;

// The bundle `npm run build` ships (an ES module), built the same way into a temp folder.
const out = mkdtempSync(join(tmpdir(), "stepq-web-"));
const shipped = await buildWeb(root, out);
// The README's browser example, as written (its server URL aside): set once the server is up.
const readme = readFileSync(join(root, "README.md"), "utf8");
const example = /## From a browser[\s\S]*?```html\n([\s\S]*?)```/.exec(readme)?.[1] ?? "";
let examplePage = "";

/** A page origin serving an empty page and the client, the shipped bundle, and the README's example. */
async function pageServer(): Promise<{ server: Server; origin: string }> {
  const server = createServer((req, res) => {
    if (req.url === "/stepq.js") return res.writeHead(200, { "content-type": "text/javascript" }).end(bundle);
    if (req.url === "/stepq-web.js") return res.writeHead(200, { "content-type": "text/javascript" }).end(readFileSync(shipped.outfile));
    if (req.url === "/readme.html") return res.writeHead(200, { "content-type": "text/html" }).end(`<!doctype html>${examplePage}`);
    res.writeHead(200, { "content-type": "text/html" }).end('<!doctype html><title>page</title><script src="/stepq.js"></script>');
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  return { server, origin: `http://127.0.0.1:${(server.address() as { port: number }).port}` };
}

const page = await pageServer();
const stack = await useStack({ corsOrigins: [page.origin] });
void (await stack.worker({ concurrency: 4 })).runForever();
const browser = await useChromium();
examplePage = example.replace("http://127.0.0.1:8080", stack.server.url);
afterAll(async () => {
  page.server.close();
});

/** Runs `fn` (a function's source, given the client's module and `arg`) in a fresh tab of the page. */
async function inPage<T>(fn: string, arg: unknown): Promise<T> {
  const tab = await browser.newPage();
  try {
    await tab.goto(page.origin);
    return (await tab.evaluate(`(${fn})(window.stepq, ${JSON.stringify(arg)})`)) as T;
  } finally {
    await tab.close();
  }
}

/** In the page: follows `id` to its end, returning the text of each step, the ends, and the reconnects. */
const FOLLOW = `async (stepq, { baseUrl, protocol, submit, job }) => {
  const client = stepq.createStepqWebClient({ baseUrl, protocol });
  let id;
  if (job) id = (await client.jobs.submitJob(job)).job.id;
  else id = (await client.submit(submit)).id;
  const text = {}; const ends = []; let reconnects = 0;
  for await (const e of client.follow(id, { onReconnect: () => reconnects++ })) {
    if (e.type === "tokens") text[e.stepId] = (text[e.stepId] ?? "") + e.tokens.map((t) => t.text).join("");
    if (e.type === "end") ends.push([e.stepId, stepq.StepState[e.state]]);
    if (e.type === "jobEnd") ends.push([e.jobId, stepq.JobState[e.state]]);
  }
  return { id, text, ends, reconnects };
}`;

const echo = (value: object) => ({ kind: { case: "echo", value } });

describe("the browser client", () => {
  it("submits with an idempotency key: the repeat returns the same step", async () => {
    const ids = await inPage<string[]>(
      `async (stepq, { baseUrl }) => {
        const client = stepq.createStepqWebClient({ baseUrl });
        const key = crypto.randomUUID();
        const a = await client.submit({ kind: { case: "echo", value: { text: "once" } } }, { idempotencyKey: key });
        const b = await client.submit({ kind: { case: "echo", value: { text: "once" } } }, { idempotencyKey: key });
        return [a.id, b.id];
      }`,
      { baseUrl: stack.server.url },
    );
    expect(ids[0]).toMatch(/\.0$/);
    expect(ids[1]).toBe(ids[0]);
  });

  it("follows a step: every token once, in order, then its end (Connect and gRPC-Web)", async () => {
    for (const protocol of ["connect", "grpc-web"]) {
      const r = await inPage<{ id: string; text: Record<string, string>; ends: string[][] }>(FOLLOW, {
        baseUrl: stack.server.url,
        protocol,
        submit: echo({ text: "red green blue", tokenCount: 60 }),
      });
      expect(r.text[r.id], protocol).toBe("red green blue ".repeat(20));
      expect(r.ends).toEqual([[r.id, "SUCCEEDED"]]);
    }
  });

  it("follows a job: each step's tokens and end, then the job's end", async () => {
    const job = {
      steps: [
        { name: "a", operation: echo({ text: "x", tokenCount: 3 }) },
        { name: "b", operation: echo({ text: "y", tokenCount: 2 }), dependsOn: ["a"] },
      ],
    };
    const r = await inPage<{ id: string; text: Record<string, string>; ends: string[][] }>(FOLLOW, { baseUrl: stack.server.url, job });
    expect(r.text).toEqual({ [`${r.id}.0`]: "x x x ", [`${r.id}.1`]: "y y " });
    expect(r.ends).toEqual([
      [`${r.id}.0`, "SUCCEEDED"],
      [`${r.id}.1`, "SUCCEEDED"],
      [r.id, "SUCCEEDED"],
    ]);
  });

  it("resumes by itself across connections a proxy cuts: no gap, no repeat", async () => {
    const proxy = await useFlakyProxy({ host: "127.0.0.1", port: stack.server.port }, 3000, 4);
    const r = await inPage<{ id: string; text: Record<string, string>; reconnects: number }>(FOLLOW, {
      baseUrl: proxy.url,
      submit: echo({ text: "one two three four", tokenCount: 400, tokenDelayMs: 1 }),
    });
    expect(proxy.cuts).toBeGreaterThan(0);
    expect(r.reconnects).toBeGreaterThan(0);
    expect(r.text[r.id]).toBe("one two three four ".repeat(100));
  });

  it("ships as one ES module with no Node built-in, and the README's example runs on it as written", async () => {
    expect(example).toContain('from "/stepq-web.js"');
    expect(shipped.bytes).toBeGreaterThan(10_000);
    expect(readFileSync(shipped.outfile, "utf8")).not.toMatch(/from\s*"node:|require\("node:/);
    const tab = await browser.newPage();
    const errors: string[] = [];
    tab.on("pageerror", (e) => errors.push(e.message));
    try {
      await tab.goto(`${page.origin}/readme.html`);
      const expected = "hello from a page ".repeat(3);
      // Until the page has printed at least the whole text (or failed); then exactly it, nothing repeated.
      await tab.waitForFunction(`document.getElementById("out").textContent.length >= ${expected.length}`, undefined, { timeout: 10_000 }).catch(() => {});
      expect(errors).toEqual([]);
      expect(await tab.textContent("#out")).toBe(expected);
    } finally {
      await tab.close();
    }
    const bad = join(out, "bad.ts");
    writeFileSync(bad, 'import { readFileSync } from "node:fs"; export const x = readFileSync;');
    await expect(buildWeb(root, join(out, "bad"), bad)).rejects.toThrow(/node:fs/);
  });
});

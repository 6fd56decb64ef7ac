/**
 * The worker registry (issue 16 item 3, issue 19 item 3): QueueService.
 * ListWorkers shows the workers alive, with their routes, concurrency,
 * steps in hand, version and heartbeat, over the typed client and curl. A
 * worker that stops leaves at once; one that is killed leaves when its
 * record expires (three heartbeats), by Redis's clock.
 */
import { execFile } from "node:child_process";
import { join } from "node:path";
import { promisify } from "node:util";
import { timestampMs } from "@bufbuild/protobuf/wkt";
import { createClient } from "@connectrpc/connect";
import { createConnectTransport } from "@connectrpc/connect-node";
import { describe, expect, it } from "vitest";
import { QueueService } from "../gen/stepq/v1/queue_service_pb.js";
import { VERSION } from "../runtime/version.js";
import { startProcess } from "./helpers/process.js";
import { echo, eventually, useStack } from "./helpers/stack.js";

const root = join(import.meta.dirname, "..");
const stack = await useStack();
const queueService = createClient(QueueService, createConnectTransport({ baseUrl: stack.server.url, httpVersion: "1.1" }));
const workers = async () => (await queueService.listWorkers({})).workers;

describe("the worker registry", () => {
  it("lists the workers alive with what they run and hold; one that stops leaves at once", async () => {
    const a = await stack.worker({ workerId: "worker-a", concurrency: 2, heartbeatMs: 100 });
    const b = await stack.worker({ workerId: "worker-b", concurrency: 5, heartbeatMs: 100 });
    const listed = await workers();
    expect(listed.map((w) => [w.id, w.routes, w.concurrency, w.version, w.pid])).toEqual([
      ["worker-a", ["echo"], 2, VERSION, process.pid],
      ["worker-b", ["echo"], 5, VERSION, process.pid],
    ]);
    const beat = listed[0]?.lastHeartbeatAt;
    expect(beat && Math.abs(timestampMs(beat) - Date.now())).toBeLessThan(2000);

    // A slow step in worker-a's hands shows up at its next heartbeat.
    void a.runForever();
    const step = await stack.client.submit(echo({ text: "slow", delayMs: 1500 }));
    await eventually(workers, (ws) => ws.find((w) => w.id === "worker-a")?.stepsInHand === 1);
    await stack.client.wait(step.id);

    // curl, with JSON.
    const { stdout } = await promisify(execFile)("curl", [
      "-sS",
      "-X",
      "POST",
      "-H",
      "content-type: application/json",
      "-d",
      "{}",
      `${stack.server.url}/stepq.v1.QueueService/ListWorkers`,
    ]);
    const viaCurl = JSON.parse(stdout) as { workers: { id: string; concurrency: number }[] };
    expect(viaCurl.workers.map((w) => [w.id, w.concurrency])).toEqual([
      ["worker-a", 2],
      ["worker-b", 5],
    ]);

    await b.stop(100);
    expect((await workers()).map((w) => w.id)).toEqual(["worker-a"]);
    await a.stop(100);
    expect(await workers()).toEqual([]);
  });

  it("a worker id that cannot name its record is refused when the worker is made", async () => {
    await expect(stack.worker({ workerId: "has spaces" })).rejects.toThrow(
      'worker id "has spaces" must be 1-128 characters of [A-Za-z0-9._:@-] (--worker-id)',
    );
  });

  it("a worker killed with SIGKILL leaves the list when its record expires (three heartbeats)", async () => {
    const killed = startProcess(process.execPath, ["--import", "tsx", join(root, "worker/main.ts"), "--heartbeat", "200ms", "--worker-id", "doomed"], {
      REDIS_URL: stack.redis.url,
      STEPQ_LOG_LEVEL: "info",
    });
    await killed.waitFor(/started routes=echo/);
    expect((await workers()).map((w) => w.id)).toEqual(["doomed"]);
    const pid = (await workers())[0]?.pid;
    expect(pid).toBe(killed.child.pid);
    expect(await killed.stop("SIGKILL")).toBe(null);
    const killedAt = performance.now();
    await eventually(workers, (ws) => ws.length === 0, 5000);
    // Not before its record's time to live (600 ms, less the time since its last heartbeat).
    expect(performance.now() - killedAt).toBeGreaterThan(300);
  });
});

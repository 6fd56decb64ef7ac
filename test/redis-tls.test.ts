/**
 * Issue 15, item 5 (Redis part): servers, workers and `stepq keys` reach a
 * Redis that speaks only TLS (`rediss://`) whose certificate comes from a
 * private CA, given with --redis-ca (STEPQ_REDIS_CA). A real redis-server
 * with TLS on, certificates made with openssl, the server and worker as
 * processes.
 */
import { execFile } from "node:child_process";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { afterAll, describe, expect, it } from "vitest";
import { createStepqClient } from "../clients/node/client.js";
import { StepState } from "../gen/stepq/v1/step_pb.js";
import { createRedis, waitReady } from "../queue/connection.js";
import { freePort, startRedisProcess } from "../runtime/redis-process.js";
import { serverConfig } from "../server/config.js";
import { workerConfig } from "../worker/config.js";
import { startProcess } from "./helpers/process.js";
import { echo } from "./helpers/stack.js";

const run = promisify(execFile);
const dir = mkdtempSync(join(tmpdir(), "stepq-redis-tls-"));
const file = (name: string) => join(dir, name);
await run("openssl", ["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-keyout", file("ca.key"), "-out", file("ca.pem"), "-subj", "/CN=stepq test CA"]);
await run("openssl", ["req", "-newkey", "rsa:2048", "-nodes", "-keyout", file("redis.key"), "-out", file("redis.csr"), "-subj", "/CN=127.0.0.1"]);
await run("sh", [
  "-c",
  `printf 'subjectAltName=IP:127.0.0.1\\n' > ${file("san.ext")} && openssl x509 -req -in ${file("redis.csr")} -CA ${file("ca.pem")} -CAkey ${file("ca.key")} -CAcreateserial -days 2 -out ${file("redis.pem")} -extfile ${file("san.ext")}`,
]);

const tlsPort = await freePort();
const redis = await startRedisProcess({
  extraArgs: ["--tls-port", String(tlsPort), "--tls-cert-file", file("redis.pem"), "--tls-key-file", file("redis.key"), "--tls-ca-cert-file", file("ca.pem"), "--tls-auth-clients", "no"],
});
const url = `rediss://127.0.0.1:${tlsPort}`;
afterAll(() => redis.stop());

describe("a Redis that speaks only TLS, with a private CA", () => {
  it("a server and a worker reach it with --redis-ca and run a step end to end", async () => {
    const env = { STEPQ_REDIS_CA: file("ca.pem") };
    const server = startProcess(process.execPath, ["--import", "tsx", "server/main.ts", "--port", "0", "--redis-url", url], env);
    const worker = startProcess(process.execPath, ["--import", "tsx", "worker/main.ts", "--redis-url", url, "--redis-ca", file("ca.pem"), "--engines", "echo"]);
    try {
      const base = (await server.waitFor(/listening url=(http:\/\/\S+)/))[1] as string;
      await worker.waitFor(/started routes=echo/);
      const client = createStepqClient({ baseUrl: base });
      const step = await client.submit(echo({ text: "over TLS", tokenCount: 3 }));
      expect((await client.wait(step.id)).state).toBe(StepState.SUCCEEDED);
    } finally {
      await Promise.all([server.stop(), worker.stop()]);
    }
  }, 60_000);

  it("without the CA the certificate is refused; with it a connection is ready", async () => {
    const untrusting = createRedis(url, "command");
    const errors: string[] = [];
    untrusting.on("error", (e: Error) => errors.push(e.message));
    await expect(waitReady(untrusting, 1500)).rejects.toThrow(/not ready/);
    expect(errors.join("\n")).toMatch(/self-signed certificate in certificate chain|unable to get local issuer certificate/);
    untrusting.disconnect();
    const trusting = createRedis(url, "command", { ca: (await import("node:fs")).readFileSync(file("ca.pem"), "utf8") });
    await waitReady(trusting, 5000);
    expect(await trusting.ping()).toBe("PONG");
    trusting.disconnect();
  });

  it("--redis-ca needs a rediss:// URL and a readable file, and says so", () => {
    expect(serverConfig(["--redis-url", url, "--redis-ca", file("ca.pem")], {}).redisCa).toContain("BEGIN CERTIFICATE");
    expect(workerConfig(["--redis-url", url], { STEPQ_REDIS_CA: file("ca.pem") }).redisCa).toContain("BEGIN CERTIFICATE");
    expect(() => serverConfig(["--redis-url", "redis://u:secret@10.0.0.1:6379", "--redis-ca", file("ca.pem")], {})).toThrow(
      "--redis-ca is for TLS to Redis: --redis-url must then be rediss://… (it is 10.0.0.1:6379)",
    );
    expect(() => workerConfig(["--redis-url", url, "--redis-ca", file("nope.pem")], {})).toThrow(`--redis-ca: cannot read ${file("nope.pem")} (ENOENT)`);
  });
});

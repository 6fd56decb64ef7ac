/**
 * Issue 15, item 5 (TLS part): with --tls-cert and --tls-key every
 * connection is TLS; ALPN picks HTTP/2 (gRPC, Connect over h2) or HTTP/1.1
 * (Connect, gRPC-Web, curl), on the one port.
 */
import { execFile } from "node:child_process";
import { mkdtempSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { createClient, type Interceptor } from "@connectrpc/connect";
import { createConnectTransport, createGrpcTransport, createGrpcWebTransport } from "@connectrpc/connect-node";
import { describe, expect, it } from "vitest";
import { createStepqClient } from "../clients/node/client.js";
import { JobService } from "../gen/stepq/v1/job_service_pb.js";
import { StepService } from "../gen/stepq/v1/step_service_pb.js";
import { connect } from "node:net";
import { serverConfig } from "../server/config.js";
import { servedByLane } from "../server/context.js";
import { DEFAULT_CONNECTION_LIMITS } from "../server/listen.js";
import { buildServer } from "../server/main.js";
import { echo, quiet, useStack } from "./helpers/stack.js";

const run = promisify(execFile);
const dir = mkdtempSync(join(tmpdir(), "stepq-tls-"));
const certPath = join(dir, "cert.pem");
const keyPath = join(dir, "key.pem");
await run("openssl", [
  "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-days", "1",
  "-keyout", keyPath, "-out", certPath, "-subj", "/CN=localhost", "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost",
]);
const ca = readFileSync(certPath);
/** The URL each call's interceptors saw, and whether the output lane served it. */
const seen: { method: string; url: string; lane: boolean }[] = [];
const recorder: Interceptor = (next) => (req) => {
  seen.push({ method: req.method.name, url: req.url, lane: req.contextValues.get(servedByLane) });
  return next(req);
};
const stack = await useStack({ tls: { cert: ca, key: readFileSync(keyPath) }, interceptors: [recorder] });
void (await stack.worker()).runForever();
const base = stack.server.url;

async function curl(...args: string[]): Promise<{ code: number; stdout: string }> {
  try {
    const { stdout } = await run("curl", ["-s", "--max-time", "5", ...args]);
    return { code: 0, stdout };
  } catch (e) {
    const err = e as { code: number; stdout: string };
    return { code: err.code, stdout: err.stdout };
  }
}

describe("a server with a certificate", () => {
  it("has an https URL and serves Connect over HTTP/1.1, gRPC over HTTP/2 and gRPC-Web, all over TLS", async () => {
    expect(base).toMatch(/^https:\/\/127\.0\.0\.1:\d+$/);
    const connect = createClient(StepService, createConnectTransport({ baseUrl: base, httpVersion: "1.1", nodeOptions: { ca } }));
    const { step } = await connect.submitStep({ operation: echo({ text: "over tls", tokenCount: 3 }) });
    const grpc = createClient(StepService, createGrpcTransport({ baseUrl: base, nodeOptions: { ca } }));
    expect((await grpc.getStep({ stepId: step?.id ?? "" })).step?.id).toBe(step?.id);
    const grpcWeb = createClient(JobService, createGrpcWebTransport({ baseUrl: base, httpVersion: "1.1", nodeOptions: { ca } }));
    expect((await grpcWeb.getJob({ jobId: step?.jobId ?? "" })).job?.id).toBe(step?.jobId);
    const h2 = createClient(StepService, createConnectTransport({ baseUrl: base, httpVersion: "2", nodeOptions: { ca } }));
    let tokens = 0;
    for await (const res of h2.streamTokens({ stepId: step?.id ?? "" })) {
      if (res.event.case === "tokens") tokens += res.event.value.tokens.length;
      if (res.event.case === "end") break;
    }
    expect(tokens).toBeGreaterThan(0);
    // The lane hands its interceptors the same URL Connect does: https under TLS.
    const lane = seen.filter((s) => s.lane);
    expect(lane.map((s) => s.method)).toContain("StreamTokens");
    for (const s of seen) expect(s.url, `${s.method} (lane: ${s.lane})`).toMatch(new RegExp(`^${base}/stepq\\.v1\\.`));
  });

  it("the Node client with ca: submit and follow() over Connect (HTTP/1.1 and HTTP/2), gRPC and gRPC-Web", async () => {
    const clients = [
      createStepqClient({ baseUrl: base, ca }),
      createStepqClient({ baseUrl: base, ca, httpVersion: "2" }),
      createStepqClient({ baseUrl: base, ca, protocol: "grpc" }),
      createStepqClient({ baseUrl: base, ca, protocol: "grpc-web" }),
    ];
    for (const client of clients) {
      const step = await client.submit(echo({ text: "followed over tls", tokenCount: 3 }));
      let tokens = 0;
      for await (const e of client.follow(step.id)) if (e.type === "tokens") tokens += e.tokens.length;
      expect(tokens).toBe(3);
    }
    const untrusting = createStepqClient({ baseUrl: base });
    await expect(untrusting.submit(echo({ text: "x" }))).rejects.toThrow(/certificate/i);
  });

  it("curl gets JSON over HTTP/1.1 and HTTP/2 (ALPN), and plain HTTP on the port gets nothing", async () => {
    const args = ["--cacert", certPath, "-H", "content-type: application/json", "-d", "{}", "-w", "\n%{http_version}"];
    for (const version of ["--http1.1", "--http2"]) {
      const r = await curl(version, ...args, `${base}/stepq.v1.JobService/ListJobs`);
      expect(r.code).toBe(0);
      const [body, httpVersion] = r.stdout.split("\n");
      expect(JSON.parse(body as string)).toHaveProperty("jobs");
      expect(httpVersion).toBe(version === "--http2" ? "2" : "1.1");
    }
    const plain = await curl("-H", "content-type: application/json", "-d", "{}", `${base.replace("https", "http")}/stepq.v1.JobService/ListJobs`);
    expect(plain.code).not.toBe(0);
    const untrusted = await curl("-H", "content-type: application/json", "-d", "{}", `${base}/stepq.v1.JobService/ListJobs`);
    expect(untrusted.code).toBe(60); // the certificate is not trusted without --cacert
  });

  it("the handshake has the sniff timeout, and a connection past it lives on (the timeout ends with the handshake)", async () => {
    const quick = await buildServer({
      redisUrl: stack.redis.url,
      port: 0,
      logger: quiet,
      tls: { cert: ca, key: readFileSync(keyPath) },
      connections: { ...DEFAULT_CONNECTION_LIMITS, sniffTimeoutMs: 300 },
    });
    try {
      const silent = connect(quick.port, "127.0.0.1");
      const closedAt = await new Promise<number>((resolve) => silent.once("close", () => resolve(Date.now())));
      expect(closedAt).toBeGreaterThan(0);
      const client = createClient(StepService, createConnectTransport({ baseUrl: quick.url, httpVersion: "1.1", nodeOptions: { ca } }));
      const { step } = await client.submitStep({ operation: echo({ text: "late", tokenCount: 2, delayMs: 800 }) });
      let tokens = 0;
      for await (const res of client.streamTokens({ stepId: step?.id ?? "" })) {
        if (res.event.case === "tokens") tokens += res.event.value.tokens.length;
        if (res.event.case === "end") break;
      }
      expect(tokens).toBe(2);
    } finally {
      await quick.close();
    }
  });

  it("--tls-cert and --tls-key go together, and a file that cannot be read is named", () => {
    expect(() => serverConfig(["--tls-cert", certPath], {})).toThrow(/^--tls-cert and --tls-key go together/);
    expect(() => serverConfig(["--tls-cert", join(dir, "nope.pem"), "--tls-key", keyPath], {})).toThrow(
      /^--tls-cert: cannot read .*nope\.pem \(ENOENT\)$/,
    );
    expect(serverConfig(["--tls-cert", certPath, "--tls-key", keyPath], {}).tls?.cert.equals(ca)).toBe(true);
  });
});

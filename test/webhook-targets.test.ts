/**
 * Webhook targets on a server reachable from a network (--webhook-targets
 * public, the default off loopback): a webhook may not post to loopback,
 * private, link-local (cloud metadata) or other non-public addresses,
 * whether its URL names one or its host name resolves to one when a
 * delivery connects. A real receiver listens on loopback the whole time:
 * it must never be reached.
 */
import { createServer } from "node:http";
import { hostname } from "node:os";
import { lookup } from "node:dns/promises";
import { Code, ConnectError, createClient } from "@connectrpc/connect";
import { createConnectTransport } from "@connectrpc/connect-node";
import { afterAll, describe, expect, it } from "vitest";
import { WebhookService } from "../gen/stepq/v1/webhook_service_pb.js";
import { isPrivateAddress } from "../server/webhooks/webhook-targets.js";
import { useStack } from "./helpers/stack.js";

const stack = await useStack({ webhookTargets: "public" });
const webhooks = createClient(WebhookService, createConnectTransport({ baseUrl: stack.server.url, httpVersion: "1.1" }));
let reached = 0;
const receiver = createServer((_req, res) => {
  reached++;
  res.end("ok");
});
await new Promise<void>((r) => receiver.listen(0, "127.0.0.1", r));
afterAll(() => new Promise<void>((r) => receiver.close(() => r())));
const port = (receiver.address() as { port: number }).port;

describe("webhook targets (public only)", () => {
  it("knows the non-public ranges", () => {
    for (const a of ["127.0.0.1", "10.1.2.3", "172.16.0.9", "192.168.1.1", "169.254.169.254", "100.64.0.1", "0.0.0.0", "::1", "fd00::1", "fe80::1", "::ffff:127.0.0.1", "::ffff:10.0.0.1"]) {
      expect(isPrivateAddress(a), a).toBe(true);
    }
    for (const a of ["8.8.8.8", "1.1.1.1", "172.32.0.1", "2606:4700:4700::1111", "::ffff:8.8.8.8"]) expect(isPrivateAddress(a), a).toBe(false);
  });

  it("refuses a URL naming a loopback, private or metadata address when the webhook is created, naming the field", async () => {
    for (const url of [`http://127.0.0.1:${port}/hook`, "http://localhost:8080/", "http://169.254.169.254/latest/meta-data/", "http://[::1]:9000/", "https://10.0.0.5/x"]) {
      const err = await webhooks.createWebhook({ webhook: { url } }).catch((e: unknown) => ConnectError.from(e));
      expect(err, url).toBeInstanceOf(ConnectError);
      expect((err as ConnectError).code).toBe(Code.InvalidArgument);
      expect((err as ConnectError).rawMessage).toMatch(/^webhook\.url: .* is a loopback or private address, and this server posts webhooks only to public ones \(--webhook-targets public\); give a public URL$/);
    }
    expect(reached).toBe(0);
  });

  it("refuses, when a delivery connects, a host name that resolves to a private address", async () => {
    const name = hostname();
    const { address } = await lookup(name);
    // This machine's own name resolves to loopback (Debian's /etc/hosts): a name the create check cannot see through.
    expect(isPrivateAddress(address)).toBe(true);
    const { webhook } = await webhooks.createWebhook({ webhook: { url: `http://${name}:${port}/hook` } });
    const test = await webhooks.testWebhook({ id: webhook?.id ?? "" });
    expect(test.delivery?.status).toBe("failed");
    expect(test.delivery?.error).toBe(`${name} resolves to ${address}, a loopback or private address; this server posts webhooks only to public ones (--webhook-targets public)`);
    expect(reached).toBe(0);
  });
});

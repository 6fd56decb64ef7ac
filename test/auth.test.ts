/**
 * Issue 15, items 1, 2, 5 and 6 (first part): with --auth required, every
 * RPC of every service, on every protocol, the output lane's streams
 * included, needs an API key with the role its method declares.
 * What a key sees of other tenants is test/tenants.test.ts.
 */
import { create, type DescMethod, type DescService, toJsonString } from "@bufbuild/protobuf";
import { Code, ConnectError, createClient, type Transport } from "@connectrpc/connect";
import { createConnectTransport, createGrpcTransport, createGrpcWebTransport } from "@connectrpc/connect-node";
import { describe, expect, it } from "vitest";
import { createStepqClient } from "../clients/node/client.js";
import { Role } from "../gen/stepq/v1/auth_pb.js";
import { JobService } from "../gen/stepq/v1/job_service_pb.js";
import { QueueService } from "../gen/stepq/v1/queue_service_pb.js";
import { TenantService } from "../gen/stepq/v1/tenant_service_pb.js";
import { KeyService, ListKeysResponseSchema } from "../gen/stepq/v1/key_service_pb.js";
import { StepService } from "../gen/stepq/v1/step_service_pb.js";
import { createApiKey, revokeApiKey } from "../queue/api-keys.js";
import { serverConfig } from "../server/config.js";
import { connect } from "./helpers/redis.js";
import { echo, useStack } from "./helpers/stack.js";

const SERVICES: DescService[] = [StepService, JobService, KeyService, TenantService, QueueService];
const stack = await useStack({ auth: "required" });
void (await stack.worker()).runForever();
const base = stack.server.url;
const redis = await connect(stack.redis.url);
const keys = stack.server.queue.keys;

const TRANSPORTS: Record<string, () => Transport> = {
  "connect-json": () => createConnectTransport({ baseUrl: base, httpVersion: "1.1", useBinaryFormat: false }),
  "connect-proto": () => createConnectTransport({ baseUrl: base, httpVersion: "1.1", useBinaryFormat: true }),
  grpc: () => createGrpcTransport({ baseUrl: base }),
  "grpc-web": () => createGrpcWebTransport({ baseUrl: base, httpVersion: "1.1" }),
};

async function call(transport: Transport, service: DescService, method: DescMethod, headers?: Record<string, string>): Promise<ConnectError | undefined> {
  const client = createClient(service, transport) as unknown as Record<string, (req: unknown, o: unknown) => unknown>;
  const fn = client[method.localName] as (req: unknown, o: unknown) => unknown;
  const options = { signal: AbortSignal.timeout(5000), headers };
  try {
    if (method.methodKind === "unary") await (fn(create(method.input), options) as Promise<unknown>);
    else for await (const _ of fn(create(method.input), options) as AsyncIterable<unknown>) break;
    return undefined;
  } catch (e) {
    return ConnectError.from(e);
  }
}

const everyCall = Object.keys(TRANSPORTS).flatMap((protocol) =>
  SERVICES.flatMap((service) => service.methods.map((method) => ({ protocol, service, method }))),
);

describe("--auth required", () => {
  it("every RPC of every service on every protocol answers UNAUTHENTICATED without a key, saying how to send one", async () => {
    for (const { protocol, service, method } of everyCall) {
      const err = await call((TRANSPORTS[protocol] as () => Transport)(), service, method);
      expect(err?.code, `${protocol} ${service.name}.${method.name}`).toBe(Code.Unauthenticated);
      expect(err?.rawMessage).toMatch(/^this server requires an API key: send it as the header Authorization: Bearer <secret>/);
    }
  });

  it("a malformed, unknown or revoked key is UNAUTHENTICATED without saying which", async () => {
    const { key, secret } = await createApiKey(redis, keys, { name: "soon revoked", tenant: "t", roles: ["read"] });
    await revokeApiKey(redis, keys, key.id);
    const t = (TRANSPORTS["connect-json"] as () => Transport)();
    for (const header of [`Basic ${secret}`, "Bearer sq_nope", `Bearer ${secret}`]) {
      const err = await call(t, StepService, StepService.method.getStep, { authorization: header });
      expect(err?.code, header).toBe(Code.Unauthenticated);
    }
    expect((await call(t, StepService, StepService.method.getStep, { authorization: "Basic x" }))?.rawMessage).toBe(
      "the Authorization header must be Bearer <secret>",
    );
    expect((await call(t, StepService, StepService.method.getStep, { authorization: `Bearer ${secret}` }))?.rawMessage).toBe(
      "this API key is not valid here (unknown, revoked or expired)",
    );
  });

  it("a key without the method's role is PERMISSION_DENIED naming the role; with it the call goes through", async () => {
    const reader = await createApiKey(redis, keys, { name: "dashboard", tenant: "t", roles: ["read"] });
    const readOnly = createStepqClient({ baseUrl: base, apiKey: reader.secret });
    const err = await readOnly.submit(echo({ text: "x" })).then(
      () => undefined,
      (e: unknown) => ConnectError.from(e),
    );
    expect(err?.code).toBe(Code.PermissionDenied);
    expect(err?.rawMessage).toBe(`API key ${reader.key.id} ("dashboard") has the roles read; StepService.SubmitStep needs the role submit`);

    const submitter = await createApiKey(redis, keys, { name: "ci", tenant: "t", roles: ["submit"] });
    for (const protocol of ["connect", "grpc", "grpc-web"] as const) {
      const client = createStepqClient({ baseUrl: base, apiKey: submitter.secret, protocol });
      const step = await client.submit(echo({ text: "with a key", tokenCount: 3 }));
      let tokens = 0;
      for await (const e of client.follow(step.id)) if (e.type === "tokens") tokens += e.tokens.length;
      expect(tokens, protocol).toBe(3);
      expect((await readOnly.get(step.id)).id).toBe(step.id);
    }
  });

  it("a key revoked while a client uses it stops working within a second", async () => {
    const { key, secret } = await createApiKey(redis, keys, { name: "leaked", tenant: "t", roles: ["admin"] });
    const client = createStepqClient({ baseUrl: base, apiKey: secret });
    const step = await client.submit(echo({ text: "x" }));
    await revokeApiKey(redis, keys, key.id);
    const revokedAt = Date.now();
    let err: ConnectError | undefined;
    while (!err) err = await client.get(step.id).then(() => undefined, (e: unknown) => ConnectError.from(e));
    expect(err.code).toBe(Code.Unauthenticated);
    expect(Date.now() - revokedAt).toBeLessThan(1000);
  });
});

const admin = await createApiKey(redis, keys, { name: "operator", tenant: "ops", roles: ["admin"] });

describe("KeyService", () => {
  const keyClient = (secret: string) =>
    createClient(KeyService, createConnectTransport({ baseUrl: base, httpVersion: "1.1", interceptors: [(next) => (req) => {
      req.header.set("authorization", `Bearer ${secret}`);
      return next(req);
    }] }));
  const asAdmin = keyClient(admin.secret);

  it("an admin creates a key whose secret works at once, lists it without the secret, and revokes it", async () => {
    const made = await asAdmin.createKey({ name: "ci runner", tenant: "acme", roles: [Role.SUBMIT] });
    expect(made.secret).toMatch(/^sq_[a-z0-9]{12}_[A-Za-z0-9_-]{43}$/);
    expect([made.key?.name, made.key?.tenant, made.key?.roles]).toEqual(["ci runner", "acme", [Role.SUBMIT]]);
    const client = createStepqClient({ baseUrl: base, apiKey: made.secret });
    const step = await client.submit(echo({ text: "made over the API" }));
    const all = await asAdmin.listKeys({});
    expect(all.keys.find((k) => k.id === made.key?.id)?.tenant).toBe("acme");
    expect(toJsonString(ListKeysResponseSchema, all)).not.toContain(made.secret.slice(-43));
    expect((await asAdmin.revokeKey({ id: made.key!.id })).key?.id).toBe(made.key?.id);
    const revokedAt = Date.now();
    let err: ConnectError | undefined;
    while (!err) err = await client.get(step.id).then(() => undefined, (e: unknown) => ConnectError.from(e));
    expect(err.code).toBe(Code.Unauthenticated);
    expect(Date.now() - revokedAt).toBeLessThan(1000);
  });

  it("needs an admin key, and names the field of a bad request", async () => {
    const submitter = await createApiKey(redis, keys, { name: "not an admin", tenant: "acme", roles: ["submit"] });
    const denied = await keyClient(submitter.secret).listKeys({}).catch((e: unknown) => ConnectError.from(e));
    expect((denied as ConnectError).code).toBe(Code.PermissionDenied);
    expect((denied as ConnectError).rawMessage).toMatch(/KeyService\.ListKeys needs the role admin$/);
    const cases: [object, string][] = [
      [{ name: "", tenant: "acme", roles: [Role.READ] }, "name: \"\" must be 1-64 characters of letters, digits, space and _.:@-"],
      [{ name: "x", tenant: "ACME", roles: [Role.READ] }, "tenant: \"ACME\" must be 1-64 characters of [a-z0-9_-], starting with one of [a-z0-9]"],
      [{ name: "x", tenant: "acme", roles: [] }, "roles: a key needs at least one role (submit, read, worker, admin)"],
      [{ name: "x", tenant: "acme", roles: [Role.UNSPECIFIED] }, "roles[0]: 0 is not a role; use ROLE_READ, ROLE_SUBMIT, ROLE_WORKER or ROLE_ADMIN"],
      [{ name: "x", tenant: "acme", roles: [Role.READ], expiresAt: { seconds: 1n } }, "expires_at: must be in the future"],
      [{ name: "x", tenant: "acme", roles: [Role.READ], expiresAt: { seconds: 253_402_300_800n } }, "expires_at: must be before the year 10000"],
    ];
    for (const [req, message] of cases) {
      const e = ConnectError.from(await asAdmin.createKey(req).catch((x: unknown) => x));
      expect([e.code, e.rawMessage]).toEqual([Code.InvalidArgument, message]);
    }
    const missing = ConnectError.from(await asAdmin.revokeKey({ id: "aaaaaaaaaaaa" }).catch((x: unknown) => x));
    expect([missing.code, missing.rawMessage]).toEqual([Code.NotFound, "API key aaaaaaaaaaaa not found (revoked already, or not of this queue)"]);
  });
});

describe("--auth defaults", () => {
  it("off on loopback, required elsewhere; off elsewhere needs --insecure", () => {
    expect(serverConfig([], {}).auth).toBe("off");
    expect(serverConfig(["--host", "0.0.0.0"], {}).auth).toBe("required");
    expect(serverConfig(["--host", "::1"], {}).auth).toBe("off");
    expect(serverConfig([], { STEPQ_AUTH: "required" }).auth).toBe("required");
    expect(() => serverConfig(["--host", "0.0.0.0", "--auth", "off"], {})).toThrow(
      /^--auth off on 0\.0\.0\.0 would let anyone who reaches the port read, submit and cancel everything; .*or pass --insecure$/,
    );
    expect(serverConfig(["--host", "0.0.0.0", "--auth", "off", "--insecure"], {}).auth).toBe("off");
    expect(() => serverConfig(["--auth", "maybe"], {})).toThrow(/^--auth: "maybe" is not required or off$/);
  });
});

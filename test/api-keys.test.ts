/**
 * API keys (issue 15, item 1): random secrets shown once, stored only as a
 * hash with a name, a tenant, roles and an optional expiry; managed with
 * `stepq keys create|list|revoke`, which talk to Redis directly.
 */
import { createHash } from "node:crypto";
import { describe, expect, it } from "vitest";
import { createApiKey, listApiKeys, lookupApiKey, revokeApiKey } from "../queue/api-keys.js";
import { createRedis, waitReady } from "../queue/connection.js";
import { InvalidArgumentError, NotFoundError } from "../queue/errors.js";
import { createKeys } from "../queue/keys.js";
import { runStepq } from "./helpers/cli.js";
import { connect, useRedis } from "./helpers/redis.js";

const redisProcess = await useRedis();
const redis = await connect(redisProcess.url);
const keys = createKeys("keys-test");

/** Every value Redis holds for the queue, as one string (to look for a secret in it). */
async function everything(): Promise<string> {
  const out: string[] = [];
  for (const k of await redis.keys("*")) {
    const type = await redis.type(k);
    if (type === "hash") out.push(k, JSON.stringify(await redis.hgetall(k)));
    else if (type === "string") out.push(k, (await redis.get(k)) ?? "");
  }
  return out.join("\n");
}

describe("the key store", () => {
  it("creates a key whose secret finds it, and stores only the secret's SHA-256", async () => {
    const { key, secret } = await createApiKey(redis, keys, { name: "ci pipeline", tenant: "team-a", roles: ["submit", "read", "submit"] });
    expect(secret).toMatch(new RegExp(`^sq_${key.id}_[A-Za-z0-9_-]{43}$`));
    expect(key).toMatchObject({ name: "ci pipeline", tenant: "team-a", roles: ["submit", "read"] });
    expect(await lookupApiKey(redis, keys, secret)).toEqual(key);
    const stored = await everything();
    expect(stored).not.toContain(secret);
    expect(stored).not.toContain(secret.slice(-43));
    expect(stored).toContain(createHash("sha256").update(secret).digest("hex"));
    expect((await listApiKeys(redis, keys)).find((k) => k.id === key.id)).toEqual(key);
    expect(JSON.stringify(await listApiKeys(redis, keys))).not.toMatch(/hash|secret/);
  });

  it("finds nothing for a malformed, unknown or altered secret", async () => {
    const { key, secret } = await createApiKey(redis, keys, { name: "a", tenant: "t", roles: ["read"] });
    const altered = `${secret.slice(0, -1)}${secret.endsWith("A") ? "B" : "A"}`;
    const otherId = secret.replace(key.id, "zzzzzzzzzzzz");
    for (const s of ["", "Bearer x", "sq_", `${secret}x`, altered, otherId, "sq_abc_def"]) {
      expect(await lookupApiKey(redis, keys, s), s).toBeUndefined();
    }
  });

  it("an expired key finds nothing", async () => {
    const expiresAt = Date.now() + 60_000;
    const { key, secret } = await createApiKey(redis, keys, { name: "short", tenant: "t", roles: ["read"], expiresAt });
    expect(await lookupApiKey(redis, keys, secret, expiresAt - 1)).toEqual(key);
    expect(await lookupApiKey(redis, keys, secret, expiresAt)).toBeUndefined();
  });

  it("revoking stops the secret at once and announces the id on the revocation channel", async () => {
    const { key, secret } = await createApiKey(redis, keys, { name: "leaked", tenant: "t", roles: ["admin"] });
    const listener = createRedis(redisProcess.url, "subscriber");
    await waitReady(listener);
    const heard = new Promise<string>((resolve) => listener.on("message", (_channel: string, id: string) => resolve(id)));
    await listener.subscribe(keys.apiKeyRevocations);
    try {
      expect(await revokeApiKey(redis, keys, key.id)).toEqual(key);
      expect(await heard).toBe(key.id);
      expect(await lookupApiKey(redis, keys, secret)).toBeUndefined();
      expect((await listApiKeys(redis, keys)).map((k) => k.id)).not.toContain(key.id);
      await expect(revokeApiKey(redis, keys, key.id)).rejects.toThrow(NotFoundError);
    } finally {
      listener.disconnect();
    }
  });

  it("refuses bad fields, naming each", async () => {
    const cases: [Parameters<typeof createApiKey>[2], RegExp][] = [
      [{ name: "", tenant: "t", roles: ["read"] }, /^name: "" must be 1-64 characters/],
      [{ name: "n", tenant: "Team A", roles: ["read"] }, /^tenant: "Team A" must be 1-64 characters of \[a-z0-9_-\]/],
      [{ name: "n", tenant: "{other}", roles: ["read"] }, /^tenant: "\{other\}"/],
      [{ name: "n", tenant: "t", roles: [] }, /^roles: a key needs at least one role \(submit, read, worker, admin\)/],
      [{ name: "n", tenant: "t", roles: ["root"] }, /^roles: "root" is not a role; roles are submit, read, worker, admin/],
      [{ name: "n", tenant: "t", roles: ["read"], expiresAt: Date.now() - 1 }, /^expires_at: must be in the future/],
    ];
    for (const [k, message] of cases) {
      const err = await createApiKey(redis, keys, k).then(() => undefined, (e: unknown) => e);
      expect(err).toBeInstanceOf(InvalidArgumentError);
      expect((err as Error).message).toMatch(message);
    }
    await expect(revokeApiKey(redis, keys, "../../etc")).rejects.toThrow(/^id: "\.\.\/\.\.\/etc" is not a key id/);
  });
});

describe("stepq keys", () => {
  const stepq = (...args: string[]) => runStepq(["keys", ...args], { REDIS_URL: redisProcess.url, STEPQ_QUEUE: "cli-keys" });

  it("create prints the secret alone on stdout; list shows the key without it; revoke ends it", async () => {
    const made = await stepq("create", "--name", "ci", "--tenant", "team-b", "--role", "submit,read", "--expires", "30d");
    expect(made.code).toBe(0);
    const secret = made.stdout.trim();
    expect(secret).toMatch(/^sq_[a-z0-9]{12}_[A-Za-z0-9_-]{43}$/);
    const id = secret.split("_")[1] as string;
    expect(made.stderr).toMatch(new RegExp(`created key ${id} "ci" for tenant team-b \\(submit, read\\), expires 20`));
    const cliKeys = createKeys("cli-keys");
    expect((await lookupApiKey(redis, cliKeys, secret))?.tenant).toBe("team-b");

    const listed = await stepq("list");
    expect(listed.code).toBe(0);
    expect(listed.stdout).toMatch(new RegExp(`^${id}  team-b  submit,read  expires 20\\S+  ci$`, "m"));
    expect(listed.stdout).not.toContain(secret.slice(-43));

    const revoked = await stepq("revoke", id);
    expect(revoked).toMatchObject({ code: 0, stderr: `revoked key ${id} "ci" of tenant team-b\n` });
    expect(await lookupApiKey(redis, cliKeys, secret)).toBeUndefined();
  });

  it("exit codes: 2 for a missing flag or a bad field, 4 for an unknown key, 3 when Redis is unreachable", async () => {
    expect(await stepq("create", "--name", "x", "--role", "read")).toMatchObject({ code: 2, stderr: "stepq keys create: --name, --tenant and --role are required\n" });
    expect((await stepq("create", "--name", "x", "--tenant", "t", "--role", "root")).stderr).toMatch(/roles: "root" is not a role/);
    expect(await stepq("revoke", "aaaaaaaaaaaa")).toMatchObject({ code: 4 });
    expect(await stepq("nope")).toMatchObject({ code: 2 });
    const away = await stepq("list", "--redis-url", "redis://127.0.0.1:1");
    expect(away.code).toBe(3);
    expect(away.stderr).toMatch(/^stepq keys list: cannot reach Redis at redis:\/\/127\.0\.0\.1:1/);
  });
});

/**
 * Waits on conditions Redis can report, for tests that need time to pass
 * or a client to reach a state: a lease deadline passed by Redis's own
 * clock (the clock the scripts use), a client blocked in a command.
 */
import type { Redis } from "ioredis";

const tick = () => new Promise((r) => setTimeout(r, 5));

/** Redis's clock, Unix ms. */
export async function redisNow(redis: Redis): Promise<number> {
  const [s, us] = await redis.time();
  return Number(s) * 1000 + Math.floor(Number(us) / 1000);
}

/** Resolves once Redis's clock has passed `deadlineMs` (a lease deadline, say). */
export async function untilRedisTimePasses(redis: Redis, deadlineMs: number): Promise<void> {
  while ((await redisNow(redis)) <= deadlineMs) await tick();
}

/** Resolves once at least `n` clients of `redis` are blocked in command `cmd` (e.g. "blpop"). */
export async function untilBlocked(redis: Redis, cmd: string, n = 1, timeoutMs = 10_000): Promise<void> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    const list = (await redis.client("LIST")) as string;
    const blocked = list.split("\n").filter((line) => line.includes(` cmd=${cmd} `) && /\bflags=\S*b/.test(line)).length;
    if (blocked >= n) return;
    if (Date.now() > until) throw new Error(`fewer than ${n} clients blocked in ${cmd} after ${timeoutMs} ms`);
    await tick();
  }
}

/**
 * The periodic maintenance pass (recover expired leases, expire queued steps,
 * promote due scheduled steps, delete expired jobs) that every server and
 * worker runs. Running it everywhere means recovery needs no special process;
 * the scripts are atomic, so processes never recover the same thing twice.
 */
import { coerceError } from "./errors.js";
import type { Queue } from "./queue.js";

export interface Sweeper {
  /** Runs one pass now (also used by tests). */
  runOnce(): Promise<void>;
  stop(): void;
}

/** Sweeps `queue` every `intervalMs` (with ±20% jitter so processes spread out). */
export function startSweeper(queue: Queue, opts: { intervalMs: number; onError?: (err: Error) => void }): Sweeper {
  const limit = 200;
  let timer: NodeJS.Timeout | undefined;
  let stopped = false;
  let running: Promise<void> | undefined;

  async function pass(): Promise<void> {
    // Keep going while a pass hit its limit: a backlog is cleared quickly.
    for (let rounds = 0; rounds < 50 && !stopped; rounds++) {
      const r = await queue.sweep(limit);
      if (r.recovered < limit && r.expired < limit && r.promoted < limit && r.purged < limit) return;
    }
  }

  const runOnce = () => {
    running ??= pass()
      .catch((e: unknown) => opts.onError?.(coerceError(e)))
      .finally(() => {
        running = undefined;
      });
    return running;
  };

  const schedule = () => {
    if (stopped) return;
    const delay = opts.intervalMs * (0.8 + Math.random() * 0.4);
    timer = setTimeout(() => void runOnce().then(schedule), delay);
    timer.unref();
  };
  schedule();

  return {
    runOnce,
    stop() {
      stopped = true;
      if (timer) clearTimeout(timer);
    },
  };
}

/**
 * Handing leases back to the queue without using an attempt: steps claimed
 * ahead that waited too long for a slot (a step ran far longer than
 * expected), and whatever a stopping worker still holds. Another worker
 * can take them at once.
 */
import { coerceError } from "../queue/errors.js";
import type { Lease } from "../queue/leases.js";
import type { Queue } from "../queue/queue.js";
import type { Prefetch } from "./prefetch.js";
import type { RunningStep } from "./running-step.js";
import type { StepSlots } from "./step-slots.js";

export interface HandBackHost {
  queue(): Queue;
  workerId: string;
  slots: StepSlots;
  prefetch: Prefetch;
  /** If no step starts for this long while steps wait to, those steps are handed back. */
  waitMs: number;
  released(r: RunningStep): void;
  reportError(error: Error): void;
}

export class HandBack {
  private timer: NodeJS.Timeout | undefined;
  private lastStartAt = 0;

  constructor(private readonly host: HandBackHost) {}

  /** A step started: steps waiting behind it are not stuck. */
  noteStart(): void {
    this.lastStartAt = performance.now();
  }

  /** Watches the steps waiting for a slot (call while some wait). */
  watch(): void {
    if (!this.timer) this.timer = setTimeout(() => this.check(), this.host.waitMs);
  }

  /** Stops watching (the worker stops). */
  cancel(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
  }

  private check(): void {
    this.timer = undefined;
    const { slots, waitMs } = this.host;
    if (slots.ready.length === 0) return;
    if (performance.now() - this.lastStartAt < waitMs) {
      this.watch();
      return;
    }
    this.host.prefetch.reset();
    void this.unstarted(slots.takeReady(), "busy");
  }

  /**
   * Stops `steps` and hands their leases back to the queue without using an
   * attempt; resolves with how many the queue took back (undefined: Redis
   * did not answer, and their leases expire instead).
   */
  async steps(steps: readonly RunningStep[], why: "stopping" | "busy"): Promise<number | undefined> {
    if (steps.length === 0) return 0;
    for (const r of steps) r.stop({ kind: "shutdown" });
    // ─── HAND BACK EVERY STEP GIVEN ───────────────────────────────────────
    try {
      const n = await this.host.queue().release(this.host.workerId, steps.map((r) => r.step as Lease), why);
      for (const r of steps) this.host.released(r);
      return n;
    } catch (e) {
      this.host.reportError(coerceError(e)); // their leases expire and recovery requeues them
      return undefined;
    }
  }

  /** Hands back steps claimed ahead that never started, and forgets them (nothing of theirs runs). */
  async unstarted(steps: readonly RunningStep[], why: "stopping" | "busy"): Promise<void> {
    await this.steps(steps, why);
    for (const r of steps) this.host.slots.release(r);
  }
}

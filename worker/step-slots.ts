/**
 * The worker's steps and slots: every step it holds a lease on (running,
 * claimed ahead, or waiting for its completion call), the ones claimed
 * ahead that wait for a free slot, how many engines run, and how many
 * leases claim calls in flight have been promised. Whoever waits for a
 * slot, or for the worker to drain, waits here.
 */
import type { RunningStep } from "./running-step.js";

export class StepSlots {
  /** Steps this worker holds a lease on, by lease member. */
  readonly held = new Map<string, RunningStep>();
  /** Steps claimed ahead, waiting for a free slot (oldest first). */
  ready: RunningStep[] = [];
  /** Steps whose engine is running. */
  active = 0;
  /** Leases promised to claim calls in flight (so together they never exceed the capacity). */
  reserved = 0;
  private waiters: (() => void)[] = [];

  constructor(readonly concurrency: number) {}

  /** Leases a claim may ask for now, given the worker's `capacity`. */
  free(capacity: number): number {
    return capacity - this.held.size - this.reserved;
  }

  /** The step is no longer this worker's: forget it and free its slot. */
  release(r: RunningStep): void {
    if (this.held.delete(r.step.member)) this.wake();
  }

  /** Takes every step still waiting for a slot. */
  takeReady(): RunningStep[] {
    const all = this.ready;
    this.ready = [];
    return all;
  }

  /** Wakes everyone waiting for a slot (a slot freed up, or the worker stops). */
  wake(): void {
    if (this.waiters.length === 0) return;
    const waiters = this.waiters;
    this.waiters = [];
    for (const w of waiters) w();
  }

  /** Resolves once a slot frees up (or the worker stops). */
  freed(): Promise<void> {
    return new Promise((resolve) => this.waiters.push(resolve));
  }

  /** Resolves once no step is held. */
  async drained(): Promise<void> {
    while (this.held.size > 0) await this.freed();
  }
}

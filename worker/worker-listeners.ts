/** The listeners of a worker's events (`worker.on("step:completed", …)`). */
import type { Listener, WorkerEvents } from "./worker-options.js";

export class WorkerListeners {
  private readonly byEvent = new Map<keyof WorkerEvents, Set<Listener<never>>>();

  on<K extends keyof WorkerEvents>(event: K, fn: Listener<K>): void {
    let set = this.byEvent.get(event);
    if (!set) this.byEvent.set(event, (set = new Set()));
    set.add(fn as Listener<never>);
  }

  /** Whether anyone listens to `event` (to skip building a payload nobody reads on hot paths). */
  has(event: keyof WorkerEvents): boolean {
    return this.byEvent.has(event);
  }

  emit<K extends keyof WorkerEvents>(event: K, payload: WorkerEvents[K]): void {
    const set = this.byEvent.get(event);
    if (set) for (const fn of set) (fn as Listener<K>)(payload);
  }
}

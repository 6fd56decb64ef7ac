/**
 * A limit on how many requests run at once (one upstream's concurrency
 * limit): `take` waits for a free slot, or stops waiting when `signal`
 * aborts; the returned function gives the slot back.
 */
export function createSlotLimiter(limit: number) {
  let used = 0;
  const waiting: (() => void)[] = [];
  return {
    /** Whether a slot is free now (take would not wait). */
    get free() {
      return used < limit;
    },
    async take(signal: AbortSignal): Promise<() => void> {
      while (used >= limit) {
        signal.throwIfAborted();
        await new Promise<void>((resolve, reject) => {
          const wake = () => {
            signal.removeEventListener("abort", abort);
            resolve();
          };
          const abort = () => {
            const i = waiting.indexOf(wake);
            if (i >= 0) waiting.splice(i, 1);
            reject(signal.reason);
          };
          waiting.push(wake);
          signal.addEventListener("abort", abort, { once: true });
        });
      }
      used++;
      let given = false;
      return () => {
        if (given) return;
        given = true;
        used--;
        waiting.shift()?.();
      };
    },
  };
}

/**
 * A hook that calls `load` now and every `everyMs` while the page shows,
 * keeping the last value and the last error (a failed poll keeps the value
 * it had, so a blip does not blank the page).
 */
import { useEffect, useState } from "preact/hooks";
import { messageOf } from "./client.js";

export function usePoll<T>(load: () => Promise<T>, everyMs: number, deps: unknown[] = []): { value?: T; error?: string; reload(): void } {
  const [value, setValue] = useState<T>();
  const [error, setError] = useState<string>();
  const [tick, setTick] = useState(0);
  useEffect(() => {
    let live = true;
    const run = () =>
      load().then(
        (v) => live && (setValue(v), setError(undefined)),
        (e: unknown) => live && setError(messageOf(e)),
      );
    void run();
    const timer = setInterval(run, everyMs);
    return () => {
      live = false;
      clearInterval(timer);
    };
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [...deps, tick]);
  return { value, error, reload: () => setTick((t) => t + 1) };
}

/**
 * A hook that calls `load` now and every `everyMs` while the page shows,
 * keeping the last value and the last error (a failed poll keeps the value
 * it had, so a blip does not blank the page), and `asOf`: when the call
 * that read the value was sent.
 */
import { useEffect, useState } from "preact/hooks";
import { messageOf } from "./client.js";

export function usePoll<T>(load: () => Promise<T>, everyMs: number, deps: unknown[] = []): { value?: T; asOf: number; error?: string; reload(): void } {
  const [value, setValue] = useState<T>();
  const [asOf, setAsOf] = useState(0);
  const [error, setError] = useState<string>();
  const [tick, setTick] = useState(0);
  useEffect(() => {
    let live = true;
    let newest = 0; // a reply older than the one shown is dropped
    const run = () => {
      const sent = Date.now();
      return load().then(
        (v) => live && sent >= newest && ((newest = sent), setValue(v), setAsOf(sent), setError(undefined)),
        (e: unknown) => live && setError(messageOf(e)),
      );
    };
    void run();
    const timer = setInterval(run, everyMs);
    return () => {
      live = false;
      clearInterval(timer);
    };
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [...deps, tick]);
  return { value, asOf, error, reload: () => setTick((t) => t + 1) };
}

/**
 * Tells crash victims from failures and keeps the suspects of each crash.
 * When the server dies, every request in flight fails (reset, refused), and
 * the exit event can arrive a little after those errors: an exchange that
 * ended without an answer waits `graceMs` for it before being judged. The
 * request that killed the server has often finished already (its socket
 * closed as the process died), so the suspects are the requests in flight
 * plus the last ones that ended.
 */
import type { FuzzStack } from "./fuzz-stack.js";
import type { WireRequest } from "./wire-request.js";

export interface CrashTracker {
  /** Marks `req` as sent; returns the crash epoch it started in. */
  begin(req: WireRequest): number;
  /** Marks `req` as answered (or not). */
  end(req: WireRequest): void;
  /** Whether the server died during an exchange that started in `epoch` (waits up to graceMs when `suspicious`). */
  crashedSince(epoch: number, suspicious: boolean): Promise<boolean>;
  /** Takes the suspects of the crashes so far, most suspicious first. */
  takeSuspects(): WireRequest[];
}

export function createCrashTracker(stack: FuzzStack, graceMs = 500, recentCount = 48): CrashTracker {
  let epoch = 0;
  const inFlight = new Set<WireRequest>();
  const recent: WireRequest[] = [];
  let suspects: WireRequest[] = [];
  stack.onCrash(() => {
    epoch++;
    suspects.push(...inFlight, ...[...recent].reverse());
  });
  return {
    begin(req) {
      inFlight.add(req);
      return epoch;
    },
    end(req) {
      inFlight.delete(req);
      recent.push(req);
      if (recent.length > recentCount) recent.shift();
    },
    async crashedSince(start, suspicious) {
      if (epoch !== start || !stack.serverUp()) return true;
      if (!suspicious) return false;
      const until = performance.now() + graceMs;
      while (performance.now() < until) {
        await new Promise((r) => setTimeout(r, 20));
        if (epoch !== start || !stack.serverUp()) return true;
      }
      return false;
    },
    takeSuspects() {
      const seen = new Set<WireRequest>();
      const out = suspects.filter((r) => !seen.has(r) && seen.add(r));
      suspects = [];
      return out;
    },
  };
}

/**
 * After the server dies: restart it, then name the request that killed it.
 * A crash whose signature (the error line the server printed) was seen
 * before is charged to the request that reproduced it then; a new one
 * replays the suspects one at a time, raw-socket requests first, until one
 * kills the server again.
 */
import type { CrashTracker } from "./crash-tracker.js";
import type { FailureLog } from "./failure-log.js";
import { messagePattern } from "./failure-log.js";
import type { FuzzExchange } from "./fuzz-exchange.js";
import type { FuzzStack } from "./fuzz-stack.js";
import type { WireRequest } from "./wire-request.js";

/** The error line a dying server printed, with ids and numbers blanked. */
export function crashSignature(outputTail: string): string {
  const lines = outputTail.split("\n");
  const line =
    lines.find((l) => /^\s*rawMessage: /.test(l)) ??
    [...lines].reverse().find((l) => /^[A-Za-z]*Error\b/.test(l)) ??
    lines.find((l) => /Error\b|error:/.test(l)) ??
    "exited without an error line";
  return messagePattern(line.trim());
}

export interface CrashIdentifier {
  /** Restarts the server and records the crash as a failure of the request that caused it. */
  identify(): Promise<void>;
  /** Crashes caused by replaying suspects (not counted as the run's crashes). */
  replayCrashes(): number;
}

export interface CrashIdentifierParts {
  stack: FuzzStack;
  tracker: CrashTracker;
  failures: FailureLog;
  exchange: FuzzExchange["exchange"];
  log: (line: string) => void;
  /** At most this many suspects are replayed per crash. */
  maxReplays?: number;
}

export function createCrashIdentifier(p: CrashIdentifierParts): CrashIdentifier {
  const known = new Map<string, WireRequest>();
  let replayCrashes = 0;
  const crashOutcome = (message: string) => ({ code: "crash", message, failure: "the server process exited" });
  return {
    replayCrashes: () => replayCrashes,
    async identify() {
      await p.stack.restartAfterCrash();
      const crash = p.stack.crashes()[p.stack.crashes().length - 1];
      const signature = crashSignature(crash?.outputTail ?? "");
      const suspects = p.tracker.takeSuspects().sort((a, b) => Number(b.transport === "raw") - Number(a.transport === "raw"));
      const seen = known.get(signature);
      if (seen) {
        p.failures.add(seen, crashOutcome(signature), crash?.outputTail);
        return;
      }
      for (const req of suspects.slice(0, p.maxReplays ?? 60)) {
        const { crashed } = await p.exchange(req, true);
        if (!crashed) continue;
        replayCrashes++;
        known.set(signature, req);
        p.failures.add(req, crashOutcome(signature), crash?.outputTail);
        p.log(`crash reproduced by request ${req.index} (${req.protocol}/${req.transport} ${req.rpc} ${req.mutations.join(" ")})`);
        await p.stack.restartAfterCrash();
        p.tracker.takeSuspects();
        return;
      }
      const first = suspects[0];
      if (first) p.failures.add(first, crashOutcome(`${signature} (not reproduced by any single suspect request)`), crash?.outputTail);
    },
  };
}

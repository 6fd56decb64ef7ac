/**
 * What a fuzz run counts: requests sent (and the ones the client library
 * refused to send, by why), answers by "protocol/transport code", and the
 * failures, grouped. Ids in successful JSON answers feed the id pool so
 * later requests name real jobs and steps.
 */
import type { Outcome } from "./classify-response.js";
import { createFailureLog, type FailureLog, messagePattern } from "./failure-log.js";
import type { IdPool } from "./id-pool.js";
import type { WireRequest, WireResponse } from "./wire-request.js";

export interface FuzzTally {
  readonly failures: FailureLog;
  readonly codes: Record<string, number>;
  readonly refusals: Record<string, number>;
  sent(): number;
  skipped(): number;
  /** Counts one exchange the server answered (or the client refused to send). */
  record(req: WireRequest, res: WireResponse, outcome: Outcome): void;
}

export function createFuzzTally(pool: IdPool): FuzzTally {
  const failures = createFailureLog();
  const codes: Record<string, number> = {};
  const refusals: Record<string, number> = {};
  let sent = 0;
  let skipped = 0;
  return {
    failures,
    codes,
    refusals,
    sent: () => sent,
    skipped: () => skipped,
    record(req, res, outcome) {
      if (res.end === "client-refused") {
        skipped++;
        const why = messagePattern(res.error ?? "?");
        refusals[why] = (refusals[why] ?? 0) + 1;
        return;
      }
      sent++;
      const key = `${req.protocol}/${req.transport} ${outcome.code}`;
      codes[key] = (codes[key] ?? 0) + 1;
      if (outcome.failure) failures.add(req, outcome as Outcome & { failure: string }, outcome.serverLog);
      if (res.status === 200 && /json/.test(res.headers["content-type"] ?? "")) pool.learn(res.body.toString("utf8"));
    },
  };
}

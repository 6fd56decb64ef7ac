/**
 * One fuzz exchange: send a request on its transport, classify the answer,
 * attach what the server logged for an internal error, and tell whether the
 * server died meanwhile (the crash tracker waits a little for a late exit
 * when the answer was suspicious).
 */
import { classifyResponse, type Outcome } from "./classify-response.js";
import type { CrashTracker } from "./crash-tracker.js";
import type { FuzzStack } from "./fuzz-stack.js";
import type { ReadLimits } from "./read-limits.js";
import { createH2cSender } from "./send-h2c.js";
import { createHttp1Sender } from "./send-http1.js";
import { sendRaw } from "./send-raw.js";
import type { WireRequest, WireResponse } from "./wire-request.js";

export interface ExchangeResult {
  outcome: Outcome;
  crashed: boolean;
  res: WireResponse;
}

export interface FuzzExchange {
  /** Sends `req`; `alwaysWait` waits for a late crash even after a clean answer (when replaying suspects). */
  exchange(req: WireRequest, alwaysWait?: boolean): Promise<ExchangeResult>;
  /** Closes the HTTP/1.1 agent and the HTTP/2 sessions. */
  close(): void;
}

export function createFuzzExchange(stack: FuzzStack, tracker: CrashTracker, limits: ReadLimits): FuzzExchange {
  const http1 = createHttp1Sender(stack.url, limits);
  const h2c = createH2cSender(stack.url, limits);
  const send = (req: WireRequest): Promise<WireResponse> =>
    req.transport === "raw" ? sendRaw(stack.url(), req, limits) : req.transport === "h2c" ? h2c.send(req) : http1.send(req);
  return {
    async exchange(req, alwaysWait = false) {
      const at = tracker.begin(req);
      const logFrom = stack.serverLogOffset();
      const res = await send(req);
      tracker.end(req);
      const outcome = classifyResponse(req, res, limits);
      if (outcome.code === "internal" || outcome.code === "unknown") {
        // The server logs the cause of an internal error: keep the line(s) logged meanwhile.
        const logged = stack.serverLogSince(logFrom).split("\n").filter((l) => / ERROR /.test(l));
        if (logged.length > 0) outcome.serverLog = logged.slice(0, 3).join("\n").slice(0, 1500);
      }
      const suspicious = alwaysWait || outcome.failure !== undefined || res.status === 0;
      return { res, outcome, crashed: await tracker.crashedSince(at, suspicious) };
    },
    close() {
      http1.close();
      h2c.close();
    },
  };
}

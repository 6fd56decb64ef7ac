/**
 * A server-wide budget for request bytes in flight. --max-request-bytes
 * bounds one request, not how many arrive together: eight concurrent 8 MiB
 * SubmitSteps once took ~600 MB of server memory (each body is read,
 * parsed into messages and encoded again before its reply). Here a request
 * holds budget for its body from its first byte until its handler has
 * answered; one that does not fit waits without its body being read (the
 * socket's flow control holds the client back) and, after `waitMs`, fails
 * with RESOURCE_EXHAUSTED naming the budget.
 *
 * A request holds its content-length when it declares one (taken in one
 * piece, so requests waiting for room cannot deadlock holding parts of it),
 * else STEP bytes, growing by STEP as its body arrives. A request alone may
 * exceed the budget (it is still within --max-request-bytes). Waiters are
 * served in arrival order, so a large request is not starved by small ones.
 * A waiter whose deadline (grpc-timeout, connect-timeout-ms) comes first
 * fails with DEADLINE_EXCEEDED then, and one whose client went away stops
 * waiting at once.
 */
import { Code, ConnectError } from "@connectrpc/connect";
import type { UniversalHandler, UniversalServerRequest, UniversalServerResponse } from "@connectrpc/connect/protocol";
import { requestDeadlineMs } from "./request-deadline.js";
import { wrapHandler } from "./wrap-handler.js";

/** What a request without a content-length holds at first, and grows by. */
const STEP = 64 * 1024;

export interface RequestBudget {
  /** Bytes held now. */
  readonly held: number;
  /** Requests waiting for room now. */
  readonly waiting: number;
  /**
   * Takes `n` bytes, waiting for room up to the budget's wait time, or until
   * `deadlineAt` (performance.now() ms) or `signal`, whichever comes first.
   */
  acquire(n: number, deadlineAt?: number, signal?: AbortSignal): Promise<void>;
  release(n: number): void;
}

interface Waiter {
  n: number;
  resolve(): void;
  timer: NodeJS.Timeout;
}

/** A budget of `maxBytes`; a request waits at most `waitMs` for room. */
export function createRequestBudget(maxBytes: number, waitMs: number): RequestBudget {
  let held = 0;
  const waiters: Waiter[] = [];

  function grant() {
    while (waiters.length > 0) {
      const w = waiters[0] as Waiter;
      if (held > 0 && held + w.n > maxBytes) return;
      waiters.shift();
      clearTimeout(w.timer);
      held += w.n;
      w.resolve();
    }
  }

  return {
    get held() {
      return held;
    },
    get waiting() {
      return waiters.length;
    },
    acquire(n, deadlineAt, signal) {
      if (waiters.length === 0 && (held === 0 || held + n <= maxBytes)) {
        held += n;
        return Promise.resolve();
      }
      if (signal?.aborted) return Promise.reject(new ConnectError("the client went away while its request waited for room", Code.Canceled));
      const untilDeadline = deadlineAt === undefined ? Infinity : Math.max(0, deadlineAt - performance.now());
      return new Promise<void>((resolve, reject) => {
        const leave = (err: Error) => {
          clearTimeout(w.timer);
          signal?.removeEventListener("abort", onAbort);
          const i = waiters.indexOf(w);
          if (i < 0) return;
          waiters.splice(i, 1);
          grant();
          reject(err);
        };
        const onAbort = () => leave(new ConnectError("the client went away while its request waited for room", Code.Canceled));
        const timedOut = () =>
          leave(
            untilDeadline < waitMs
              ? new ConnectError(
                  `the request's deadline passed while it waited for room among requests in flight (the server is receiving ${held} ` +
                    `bytes of other requests, its limit is --max-inflight-request-bytes ${maxBytes}); retry shortly, or with a longer deadline`,
                  Code.DeadlineExceeded,
                )
              : new ConnectError(
                  `the server is busy receiving ${held} bytes of other requests, its limit for requests in flight ` +
                    `(--max-inflight-request-bytes ${maxBytes}), and this request waited ${waitMs} ms for room; retry shortly, ` +
                    "or send smaller requests",
                  Code.ResourceExhausted,
                ),
          );
        const w: Waiter = {
          n,
          resolve: () => {
            signal?.removeEventListener("abort", onAbort);
            resolve();
          },
          timer: setTimeout(timedOut, Math.min(waitMs, untilDeadline)),
        };
        waiters.push(w);
        signal?.addEventListener("abort", onAbort, { once: true });
      });
    },
    release(n) {
      held -= n;
      grant();
    },
  };
}

/**
 * `handler` with its requests' bodies counted against `budget`, held until
 * the body has been read and the handler has answered, whichever is later
 * (a unary handler reads, parses and runs before it answers; a streaming
 * one may read its request after).
 */
export function withRequestBudget(handler: UniversalHandler, budget: RequestBudget): UniversalHandler {
  const wrapped = async (req: UniversalServerRequest): Promise<UniversalServerResponse> => {
    const declared = Number(req.header.get("content-length") ?? NaN);
    const deadlineMs = requestDeadlineMs(req.header);
    const deadlineAt = deadlineMs === undefined ? undefined : performance.now() + deadlineMs;
    let holding = 0;
    let refused = false;
    let pending = 2; // the body read to its end (or abandoned), and the handler's answer
    const settle = () => {
      if (--pending === 0 && holding > 0) budget.release(holding);
    };
    async function* counted(body: AsyncIterable<Uint8Array>): AsyncIterable<Uint8Array> {
      let seen = 0;
      try {
        for await (const chunk of body) {
          seen += chunk.byteLength;
          if (seen > holding) {
            const first = holding === 0 && Number.isSafeInteger(declared) && declared >= seen ? declared : 0;
            const more = first || Math.ceil((seen - holding) / STEP) * STEP;
            await budget.acquire(more, deadlineAt, req.signal).catch((e: unknown) => {
              refused = true;
              throw e;
            });
            holding += more;
          }
          yield chunk;
        }
      } finally {
        settle();
      }
    }
    const body = req.body;
    const counting = body !== null && typeof body === "object" && Symbol.asyncIterator in body;
    if (!counting) pending--;
    try {
      const res = await handler(counting ? { ...req, body: counted(body as AsyncIterable<Uint8Array>) } : req);
      if (!refused) return res;
      // The rest of the body will never be read: the client must not reuse the connection.
      const header = new Headers(res.header);
      header.set("connection", "close");
      return { ...res, header };
    } finally {
      settle();
    }
  };
  return wrapHandler(handler, wrapped);
}

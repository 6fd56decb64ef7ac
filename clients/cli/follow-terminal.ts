/**
 * Following a step on a terminal: tokens to stdout as they arrive,
 * narration to stderr, and while nothing has started, where the step stands
 * (the server's queue-position lines, "3rd in line for ..."; from a server
 * without them, a "waiting in the queue" line from polling the step). Returns the final step so callers can report and exit.
 */
import { NarrationLevel } from "../../gen/stepq/v1/output_pb.js";
import { type Step, StepState } from "../../gen/stepq/v1/step_pb.js";
import type { StepqClient } from "../node/client.js";
import { stepStateName } from "./render.js";

export interface TerminalOptions {
  out: NodeJS.WritableStream & { isTTY?: boolean };
  err: NodeJS.WritableStream & { isTTY?: boolean };
  afterCursor?: string;
  /** Print raw events as JSON lines on stdout instead. */
  json?: boolean;
  signal?: AbortSignal;
}

const LEVEL_MARK: Record<number, string> = {
  [NarrationLevel.DEBUG]: "·",
  [NarrationLevel.INFO]: "·",
  [NarrationLevel.WARN]: "!",
  [NarrationLevel.ERROR]: "✗",
};

/** Follows `stepId` to its end; resolves with the step in its final state. */
export async function followToTerminal(client: StepqClient, stepId: string, o: TerminalOptions): Promise<Step> {
  const started = Date.now();
  let active = false;
  let waitingShown = false;
  /** The server sends queue-position lines: no need to poll. */
  let positioned = false;
  let atLineStart = true;
  const clearWaiting = () => {
    if (waitingShown && o.err.isTTY) o.err.write("\r\x1b[2K");
    waitingShown = false;
  };
  const poll = setInterval(() => {
    if (active || positioned || o.json) return;
    client.get(stepId).then(
      (s) => {
        if (active || positioned) return;
        const secs = Math.round((Date.now() - started) / 1000);
        const what = s.state === StepState.QUEUED ? `waiting in the queue for a worker serving ${s.route}` : stepStateName(s.state);
        if (o.err.isTTY) o.err.write(`\r\x1b[2K… ${what} (${secs}s)`);
        else if (!waitingShown) o.err.write(`… ${what}\n`);
        waitingShown = true;
      },
      () => {},
    );
  }, 1000);
  poll.unref();
  try {
    for await (const e of client.follow(stepId, { afterCursor: o.afterCursor, signal: o.signal })) {
      if (o.json) {
        o.out.write(`${JSON.stringify(e, (_k, v) => (typeof v === "bigint" ? String(v) : v))}\n`);
        continue;
      }
      if (e.type === "narration" && e.attempt === 0 && !active) {
        // A queue-side line while the step waits: where it stands.
        positioned = true;
        const secs = Math.round((Date.now() - started) / 1000);
        if (o.err.isTTY) o.err.write(`\r\x1b[2K… ${e.text} (${secs}s)`);
        else o.err.write(`… ${e.text}\n`);
        waitingShown = true;
        continue;
      }
      active = true;
      clearWaiting();
      switch (e.type) {
        case "tokens": {
          const text = e.tokens.map((t) => t.text).join("");
          o.out.write(text);
          if (text.length > 0) atLineStart = text.endsWith("\n");
          break;
        }
        case "narration":
          if (!atLineStart) {
            o.out.write("\n");
            atLineStart = true;
          }
          o.err.write(`${LEVEL_MARK[e.level] ?? "·"} ${e.text}\n`);
          break;
        case "restart":
          o.err.write(`\n↻ attempt ${e.attempt} started; output above is from an earlier attempt\n`);
          atLineStart = true;
          break;
        case "end":
          if (!atLineStart) o.out.write("\n");
          break;
      }
    }
  } finally {
    clearInterval(poll);
    clearWaiting();
  }
  return client.get(stepId);
}

/**
 * The stream rules every stepq server must keep, checked by running them:
 * a stream resumed from any cursor it sent continues with nothing lost or
 * repeated; resumed after its end it ends at once; a cursor beyond the end
 * is OUT_OF_RANGE and a malformed one INVALID_ARGUMENT naming after_cursor;
 * WatchSteps from a cursor delivers the events after it. Each
 * needs a worker serving echo.
 */
import { Code, ConnectError, createClient, type Transport } from "@connectrpc/connect";
import { JobService, type StreamJobOutputResponse } from "../../gen/stepq/v1/job_service_pb.js";
import { StepService } from "../../gen/stepq/v1/step_service_pb.js";
import type { CaseOutcome } from "./run-case.js";

const TIMEOUT_MS = 15_000;

type Rule = (t: Transport) => Promise<string[]>;

async function submitEcho(t: Transport, tokens: number): Promise<{ jobId: string; stepId: string }> {
  const { step } = await createClient(StepService, t).submitStep({ operation: { kind: { case: "echo", value: { text: "resume me", tokenCount: tokens } } } });
  return { jobId: step?.jobId ?? "", stepId: step?.id ?? "" };
}

async function read(t: Transport, jobId: string, afterCursor: string, stopAfter = Infinity): Promise<StreamJobOutputResponse[]> {
  const out: StreamJobOutputResponse[] = [];
  const stop = new AbortController();
  const signal = AbortSignal.any([stop.signal, AbortSignal.timeout(TIMEOUT_MS)]);
  try {
    for await (const m of createClient(JobService, t).streamJobOutput({ jobId, afterCursor }, { signal })) {
      out.push(m);
      if (out.length >= stopAfter) stop.abort();
    }
  } catch (e) {
    if (!stop.signal.aborted) throw e;
  }
  return out;
}

const textOf = (ms: StreamJobOutputResponse[]) => ms.map((m) => (m.event.case === "tokens" ? m.event.value.tokens.map((x) => x.text).join("") : "")).join("");
const cursorOf = (m: StreamJobOutputResponse | undefined) => (m?.event.case ? m.event.value.cursor : "");

async function expectCode(p: Promise<unknown>, code: Code, field: string): Promise<string[]> {
  try {
    await p;
    return [`expected ${Code[code]}, got an answer`];
  } catch (e) {
    const err = ConnectError.from(e);
    if (err.code !== code) return [`expected ${Code[code]}, got ${Code[err.code]}: ${err.rawMessage}`];
    return err.rawMessage.includes(field) ? [] : [`the message does not name ${field}: ${err.rawMessage}`];
  }
}

export const STREAM_RULES: Record<string, Rule> = {
  async "a stream resumed from any cursor it sent loses and repeats nothing"(t) {
    const { jobId } = await submitEcho(t, 40);
    const whole = await read(t, jobId, "");
    const problems: string[] = [];
    for (const cut of [1, Math.floor(whole.length / 2), whole.length - 1]) {
      const head = whole.slice(0, cut);
      const rest = await read(t, jobId, cursorOf(head.at(-1)));
      if (textOf(head) + textOf(rest) !== textOf(whole)) problems.push(`resumed after message ${cut}: the text differs from the whole stream's`);
      if (cursorOf(rest.at(-1)) !== cursorOf(whole.at(-1))) problems.push(`resumed after message ${cut}: it did not end with the same end`);
    }
    return problems;
  },
  async "a stream resumed after its end ends at once, with no message"(t) {
    const { jobId } = await submitEcho(t, 3);
    const whole = await read(t, jobId, "");
    const started = Date.now();
    const again = await read(t, jobId, cursorOf(whole.at(-1)));
    if (again.length > 0) return [`got ${again.length} messages after the end`];
    return Date.now() - started > 5000 ? ["it took over 5 s to end"] : [];
  },
  async "a cursor beyond the end is OUT_OF_RANGE"(t) {
    const { jobId } = await submitEcho(t, 1);
    return expectCode(read(t, jobId, "18446744073709551615-18446744073709551615"), Code.OutOfRange, "after_cursor");
  },
  async "a malformed cursor is INVALID_ARGUMENT naming after_cursor"(t) {
    const { jobId } = await submitEcho(t, 1);
    return expectCode(read(t, jobId, "nope"), Code.InvalidArgument, "after_cursor");
  },
  async "WatchSteps from a cursor delivers the events after it"(t) {
    // The events stream's cursors are Redis stream ids, "<ms>-<n>" by the server's clock: the
    // step's creation time gives a cursor just before its first event.
    const { step } = await createClient(StepService, t).submitStep({ operation: { kind: { case: "echo", value: { text: "watched" } } } });
    const created = Number(step?.createdAt?.seconds ?? 0n) * 1000 + Math.floor((step?.createdAt?.nanos ?? 0) / 1e6);
    const stop = new AbortController();
    const signal = AbortSignal.any([stop.signal, AbortSignal.timeout(TIMEOUT_MS)]);
    try {
      for await (const m of createClient(StepService, t).watchSteps({ routes: ["echo"], afterCursor: `${created - 1}-0` }, { signal })) {
        if (m.event?.stepId === step?.id) return [];
      }
      return ["the stream ended without the step's events"];
    } catch (e) {
      return [`no event for ${step?.id}: ${ConnectError.from(e).rawMessage}`];
    } finally {
      stop.abort();
    }
  },
};

/** Runs every rule (or skips them all, saying why, when no worker serves echo). */
export async function runStreamRules(t: Transport, echo: boolean): Promise<CaseOutcome[]> {
  const out: CaseOutcome[] = [];
  for (const [name, rule] of Object.entries(STREAM_RULES)) {
    if (!echo) {
      out.push({ rpc: "stream rules", name, status: "skip", detail: ["no live worker serves the echo route"] });
      continue;
    }
    let detail: string[];
    try {
      detail = await rule(t);
    } catch (e) {
      detail = [(e as Error).message];
    }
    out.push({ rpc: "stream rules", name, status: detail.length === 0 ? "pass" : "fail", detail });
  }
  return out;
}

/**
 * Telling a follower where a queued step stands: while a step waits in its
 * line, the narration streams (StreamNarration, StreamJobOutput, and the
 * routes built on them) carry a line such as "3rd in line for infer:qwen2.5
 * — 2 workers busy", or why nothing takes it ("no live worker meets its
 * requirements ..."), sent again whenever it changes. Nothing in Redis keeps
 * it: the server computes it on follow (queue/queue-position.ts, and the
 * live workers from server/live-fleet.ts), every EVERY_MS while the step is
 * queued, only for steps someone follows. The lines are not in the log (a
 * resumed stream gets the current one, not old ones); each carries the
 * cursor of the last log entry the stream sent, so resuming from it loses
 * nothing.
 */
import { create } from "@bufbuild/protobuf";
import { timestampFromMs } from "@bufbuild/protobuf/wkt";
import { EventType } from "../gen/stepq/v1/events_pb.js";
import { type Narration, NarrationLevel, NarrationSchema } from "../gen/stepq/v1/output_pb.js";
import { stepIdOf } from "../queue/ids.js";
import type { Queue } from "../queue/queue.js";
import { queuePosition } from "../queue/queue-position.js";
import { baseRoute } from "../queue/requirements.js";
import type { LiveFleet } from "./live-fleet.js";
import { whyNot } from "./unserved-routes.js";

/** How often a queued step's position is looked at while it is followed. */
export const EVERY_MS = 1000;

/** Events after which a step may be queued again (so worth looking at). */
const REQUEUED = new Set<number>([EventType.STEP_SUBMITTED, EventType.STEP_QUEUED, EventType.STEP_RETRYING]);

/** "1st", "2nd", "3rd", "4th", "11th", "22nd" ... */
export function ordinal(n: number): string {
  const tens = n % 100;
  const suffix = tens >= 11 && tens <= 13 ? "th" : (["th", "st", "nd", "rd"][n % 10] ?? "th");
  return `${n.toLocaleString("en-US")}${suffix}`;
}

/** The line for step `index` of job `job` now, or undefined when it is not queued. */
export async function positionLine(queue: Queue, fleet: LiveFleet, job: { id: string; tenant: number }, index: number): Promise<string | undefined> {
  const p = await queuePosition(queue, job.id, index);
  if (p.position === 0) return undefined;
  const { workers, names } = await fleet.get();
  const tenant = names.get(job.tenant) ?? String(job.tenant);
  const place = p.position < 0 ? "more than 100,000th" : ordinal(p.position);
  const turns = p.tenants > 1 ? ` (${p.tenants} tenants take turns on it)` : "";
  const able = workers.filter((w) => whyNot(w, p.route, tenant) === undefined);
  let who: string;
  if (p.quota > 0 && p.running >= p.quota) {
    who = `its tenant has ${p.running} steps running, its quota; it waits until one of them ends`;
  } else if (able.length > 0) {
    // A queued step that some worker could take is waiting for a free slot:
    // the workers' own "steps in hand" (from their last heartbeat) can be
    // seconds old, so they are not what this says.
    const n = able.length;
    who = `${n} worker${n === 1 ? "" : "s"} busy`;
  } else {
    const base = baseRoute(p.route);
    const serving = workers.filter((w) => w.routes.includes(base));
    who =
      serving.length === 0
        ? `no live worker serves ${base}; it waits until one starts`
        : `no live worker could take it (${serving
            .slice(0, 3)
            .map((w) => `${w.id} ${whyNot(w, p.route, tenant)}`)
            .join("; ")}); it waits until one can`;
  }
  return `${place} in line for ${p.route}${turns} — ${who}`;
}

/**
 * The position lines of the steps a stream follows: `watch` the steps that
 * may be queued, `seen` each log entry the stream passes (its cursor, and
 * the events that may queue a step again), and `lines()` at each tick.
 */
export class PositionNarrator {
  private readonly watching = new Set<number>();
  private readonly last = new Map<number, string>();
  private cursor: string;

  constructor(
    private readonly queue: Queue,
    private readonly fleet: LiveFleet,
    private readonly job: { id: string; tenant: number; steps: readonly { name: string }[] },
    afterCursor: string,
  ) {
    this.cursor = afterCursor;
  }

  watch(index: number): void {
    this.watching.add(index);
  }

  /** A log entry the stream passed: its cursor; an event that may queue its step again starts watching it. */
  seen(cursor: string, stepIndex: number | undefined, eventType?: number): void {
    this.cursor = cursor;
    if (stepIndex !== undefined && eventType !== undefined && REQUEUED.has(eventType)) this.watch(stepIndex);
  }

  /** The lines that changed since the last tick; a step found not queued is no longer watched. */
  async lines(): Promise<Narration[]> {
    const out: Narration[] = [];
    for (const index of [...this.watching]) {
      const text = await positionLine(this.queue, this.fleet, this.job, index).catch(() => undefined);
      if (text === undefined) {
        this.watching.delete(index);
        this.last.delete(index);
        continue;
      }
      if (this.last.get(index) === text) continue;
      this.last.set(index, text);
      out.push(
        create(NarrationSchema, {
          cursor: this.cursor,
          stepId: stepIdOf(this.job.id, index),
          stepName: this.job.steps[index]?.name ?? "",
          attempt: 0,
          level: NarrationLevel.INFO,
          text,
          time: timestampFromMs(Date.now()),
        }),
      );
    }
    return out;
  }
}

export const TICK = Symbol("tick");

/**
 * `source`'s values, with TICK in between at once and then every `everyMs`
 * (between values when they come faster). The source's next value is asked for only when the
 * caller wants one, so a caller that stops after a value leaves nothing
 * pending.
 */
export async function* withTicks<T>(source: AsyncIterable<T>, everyMs: number): AsyncGenerator<T | typeof TICK> {
  const it = source[Symbol.asyncIterator]();
  let next: Promise<IteratorResult<T>> | undefined;
  let dueAt = Date.now();
  try {
    for (;;) {
      if (Date.now() >= dueAt) {
        dueAt = Date.now() + everyMs;
        yield TICK;
      }
      next ??= it.next();
      let timer: NodeJS.Timeout | undefined;
      const tick = new Promise<typeof TICK>((resolve) => {
        timer = setTimeout(() => resolve(TICK), Math.max(0, dueAt - Date.now()));
      });
      const got = await Promise.race([next, tick]);
      clearTimeout(timer);
      if (got === TICK) continue;
      next = undefined;
      if (got.done) return;
      yield got.value;
    }
  } finally {
    // A pending next() settles when the stream's signal aborts; its return runs then.
    if (next) void next.then(() => it.return?.(), () => {});
    else await it.return?.();
  }
}

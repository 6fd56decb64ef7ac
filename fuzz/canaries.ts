/**
 * Canary jobs: submitted before the fuzzer starts, run to the end, and read
 * back after the run. Their ids never enter the fuzzer's id pool, so if one
 * changed (cancelled, purged, retried, rewritten), a request reached a
 * record it could not have named: a real isolation bug.
 */

/** The canaries' ids and their records as read before the run. */
export interface Canaries {
  readonly jobIds: readonly string[];
  readonly stepIds: readonly string[];
  /** GetJob / GetStep answers (JSON text) by id. */
  readonly snapshot: ReadonlyMap<string, string>;
}

async function call(base: string, rpc: string, body: unknown): Promise<Record<string, unknown>> {
  const res = await fetch(`${base}/stepq.v1.${rpc}`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify(body),
    signal: AbortSignal.timeout(15_000),
  });
  const json = (await res.json()) as Record<string, unknown>;
  if (res.status !== 200) throw new Error(`canary ${rpc}: ${res.status} ${JSON.stringify(json)}`);
  return json;
}

const UNFINISHED = /"state":"(STEP_STATE_(UNSPECIFIED|WAITING|QUEUED|SCHEDULED|RUNNING)|JOB_STATE_(UNSPECIFIED|QUEUED|RUNNING))"/;

/** Reads every canary record, as JSON text. */
export async function readCanaries(base: string, jobIds: readonly string[], stepIds: readonly string[]): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  for (const id of jobIds) out.set(id, JSON.stringify(await call(base, "JobService/GetJob", { jobId: id })));
  for (const id of stepIds) out.set(id, JSON.stringify(await call(base, "StepService/GetStep", { stepId: id })));
  return out;
}

/** Submits `jobs` two-step jobs and `steps` single steps, waits until all finished, and snapshots them. */
export async function submitCanaries(base: string, jobs = 3, steps = 2, timeoutMs = 60_000): Promise<Canaries> {
  const jobIds: string[] = [];
  const stepIds: string[] = [];
  for (let i = 0; i < jobs; i++) {
    const res = await call(base, "JobService/SubmitJob", {
      steps: [
        { name: "a", operation: { echo: { text: `canary ${i}`, tokenCount: 3 } } },
        { name: "b", operation: { echo: { text: `after {{steps.a.output}}` } }, dependsOn: ["a"] },
      ],
      labels: { canary: String(i) },
    });
    jobIds.push((res.job as { id: string }).id);
  }
  for (let i = 0; i < steps; i++) {
    const res = await call(base, "StepService/SubmitStep", { operation: { echo: { text: `canary step ${i}`, tokenCount: 2 } } });
    stepIds.push((res.step as { id: string }).id);
  }
  const until = Date.now() + timeoutMs;
  for (;;) {
    const snapshot = await readCanaries(base, jobIds, stepIds);
    const pending = [...snapshot.values()].filter((json) => UNFINISHED.test(json));
    if (pending.length === 0) return { jobIds, stepIds, snapshot };
    if (Date.now() > until) throw new Error(`canaries did not finish within ${timeoutMs} ms: ${pending[0]}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** Ids of canaries whose record differs from the snapshot (with both texts). */
export async function changedCanaries(base: string, canaries: Canaries): Promise<{ id: string; before: string; after: string }[]> {
  const now = await readCanaries(base, canaries.jobIds, canaries.stepIds);
  const changed: { id: string; before: string; after: string }[] = [];
  for (const [id, before] of canaries.snapshot) {
    const after = now.get(id) ?? "";
    if (after !== before) changed.push({ id, before, after });
  }
  return changed;
}

/**
 * The overview: each route's steps by state and throughput (QueueService.
 * GetQueueStats, every 2 s), a chart of the last 5 minutes, the live
 * workers with their routes and the steps they run, and the submit form.
 */
import { StepState } from "../../clients/web/index.js";
import { stepq } from "../client.js";
import { SubmitForm } from "../components/submit-form.js";
import { ThroughputChart } from "../components/throughput-chart.js";
import { usePoll } from "../use-poll.js";

const fmt = (n: bigint | number) => Number(n).toLocaleString();

export function Overview() {
  const stats = usePoll(() => stepq().queue.getQueueStats({ windowMinutes: 5 }), 2000);
  const workers = usePoll(() => stepq().queue.listWorkers({}), 2000);
  // The steps running now (first 100), by worker: what each worker has in hand.
  const running = usePoll(() => stepq().steps.listSteps({ state: StepState.RUNNING, pageSize: 100 }), 2000);
  const byWorker = new Map<string, string[]>();
  for (const s of running.value?.steps ?? []) byWorker.set(s.workerId, [...(byWorker.get(s.workerId) ?? []), s.id]);
  const routes = [...new Set((workers.value?.workers ?? []).flatMap((w) => w.routes))];
  return (
    <section>
      <h2>Routes</h2>
      {stats.error && <p class="error" role="alert">{stats.error}</p>}
      <table class="routes">
        <thead>
          <tr>
            <th>route</th>
            <th>waiting</th>
            <th>queued</th>
            <th>scheduled</th>
            <th>running</th>
            <th>dead letters</th>
            <th>succeeded/s</th>
            <th>failed/s</th>
          </tr>
        </thead>
        <tbody>
          {(stats.value?.routes ?? []).map((r) => (
            <tr data-route={r.route}>
              <td>
                <a href={`#/steps?route=${encodeURIComponent(r.route)}`}>{r.route}</a>
              </td>
              <td data-col="waiting">{fmt(r.waiting)}</td>
              <td data-col="queued">{fmt(r.queued)}</td>
              <td data-col="scheduled">{fmt(r.scheduled)}</td>
              <td data-col="running">{fmt(r.running)}</td>
              <td data-col="dead">
                <a href={`#/steps?state=FAILED&route=${encodeURIComponent(r.route)}`}>{fmt(r.deadLettered)}</a>
              </td>
              <td>{r.succeededPerSecond.toFixed(2)}</td>
              <td>{r.failedPerSecond.toFixed(2)}</td>
            </tr>
          ))}
          {stats.value?.routes.length === 0 && (
            <tr>
              <td colSpan={8} class="empty">
                Nothing submitted yet.
              </td>
            </tr>
          )}
        </tbody>
      </table>
      <h2>Finished per second, last 5 minutes</h2>
      <ThroughputChart
        buckets={stats.value?.throughput ?? []}
        bucketSeconds={stats.value?.bucketSeconds ?? 10}
        now={Number(stats.value?.now?.seconds ?? BigInt(Math.floor(Date.now() / 1000)))}
      />
      <h2>Workers</h2>
      {workers.error && <p class="error" role="alert">{workers.error}</p>}
      <table class="workers">
        <thead>
          <tr>
            <th>worker</th>
            <th>routes</th>
            <th>has</th>
            <th>steps in hand</th>
            <th>running now</th>
            <th>version</th>
            <th>last heartbeat</th>
          </tr>
        </thead>
        <tbody>
          {(workers.value?.workers ?? []).map((w) => (
            <tr>
              <td>{w.id}</td>
              <td>{w.routes.join(", ")}</td>
              <td class="capabilities">{capabilities(w)}</td>
              <td>
                {w.stepsInHand} / {w.concurrency}
              </td>
              <td class="current" data-worker={w.id}>
                {(byWorker.get(w.id) ?? []).map((id) => (
                  <a href={`#/jobs/${id.split(".")[0]}`}>{id} </a>
                ))}
              </td>
              <td>{w.version}</td>
              <td>{w.lastHeartbeatAt ? new Date(Number(w.lastHeartbeatAt.seconds) * 1000).toLocaleTimeString() : ""}</td>
            </tr>
          ))}
          {workers.value?.workers.length === 0 && (
            <tr>
              <td colSpan={6} class="empty">
                No worker is alive: queued steps wait for one.
              </td>
            </tr>
          )}
        </tbody>
      </table>
      <h2>Submit a step</h2>
      <SubmitForm routes={routes} />
    </section>
  );
}

/** A worker's tags, memory and tenant choice, in one cell. */
function capabilities(w: { tags: string[]; memoryMb: number; tenants: string[]; excludedTenants: string[] }): string {
  const parts = [...w.tags];
  if (w.memoryMb > 0) parts.push(`${(w.memoryMb / 1024).toFixed(w.memoryMb % 1024 === 0 ? 0 : 1)} GiB`);
  if (w.tenants.length > 0) parts.push(`only ${w.tenants.join(", ")}`);
  if (w.excludedTenants.length > 0) parts.push(`not ${w.excludedTenants.join(", ")}`);
  return parts.join(" · ");
}

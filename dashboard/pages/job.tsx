/**
 * One job: its state, its steps as a graph, each step's attempts and
 * errors with its actions, and the live output (which survives a reload).
 */
import { useState } from "preact/hooks";
import { JobState } from "../../clients/web/index.js";
import { messageOf, stepq } from "../client.js";
import { Dag } from "../components/dag.js";
import { LiveOutput } from "../components/live-output.js";
import { JobBadge, StepBadge } from "../components/state-badge.js";
import { StepActions } from "../components/step-actions.js";
import { attemptsText } from "../components/attempts.js";
import { usePoll } from "../use-poll.js";

export function Job({ jobId }: { jobId: string }) {
  const job = usePoll(() => stepq().jobs.getJob({ jobId }), 2000, [jobId]);
  const [error, setError] = useState<string>();
  const j = job.value?.job;
  const final = j !== undefined && (j.state === JobState.SUCCEEDED || j.state === JobState.FAILED || j.state === JobState.CANCELLED);
  const cancelJob = async () => {
    if (!confirm(`Cancel job ${jobId} and every unfinished step of it?`)) return;
    try {
      await stepq().jobs.cancelJob({ jobId, reason: "cancelled from the dashboard" });
      job.reload();
    } catch (e) {
      setError(messageOf(e));
    }
  };
  return (
    <section>
      <h2>
        Job {jobId} {j && <JobBadge state={j.state} />}
      </h2>
      {j && (
        <p class="meta">
          {j.steps.length} {j.steps.length === 1 ? "step" : "steps"}
          {j.createdAt && ` · created ${new Date(Number(j.createdAt.seconds) * 1000).toLocaleString()}`}
          {Object.entries(j.labels).map(([k, v]) => ` · ${k}=${v}`)}
        </p>
      )}
      {(job.error || error) && <p class="error" role="alert">{job.error ?? error}</p>}
      {j && !final && (
        <button data-action="cancel-job" onClick={cancelJob}>
          Cancel job
        </button>
      )}
      {j && <Dag steps={j.steps} />}
      <table class="steps">
        <thead>
          <tr>
            <th>step</th>
            <th>state</th>
            <th>route</th>
            <th>attempts and errors</th>
            <th />
          </tr>
        </thead>
        <tbody>
          {(j?.steps ?? []).map((s) => (
            <tr data-step={s.id}>
              <td>{s.name}</td>
              <td>
                <StepBadge state={s.state} />
              </td>
              <td>{s.route}</td>
              <td>
                {attemptsText(s.attempt, s.maxAttempts)}
                {s.errors.map((e) => (
                  <div class="step-error">
                    #{e.attempt}: {e.message}
                  </div>
                ))}
              </td>
              <td>
                <StepActions stepId={s.id} state={s.state} done={job.reload} />
              </td>
            </tr>
          ))}
        </tbody>
      </table>
      {j && <LiveOutput jobId={jobId} names={Object.fromEntries(j.steps.map((s) => [s.id, s.name]))} state={(JobState[j.state] ?? "").toLowerCase()} asOf={job.asOf} onEnd={job.reload} />}
    </section>
  );
}

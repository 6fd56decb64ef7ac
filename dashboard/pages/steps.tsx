/**
 * Steps, newest first, filtered by state and route (StepService.ListSteps):
 * a page of 50 at a time, Next and Back through the page tokens, so any
 * number of steps stays quick (nothing loads everything).
 */
import { useState } from "preact/hooks";
import { StepState } from "../../clients/web/index.js";
import { stepq } from "../client.js";
import { StepBadge } from "../components/state-badge.js";
import { StepActions } from "../components/step-actions.js";
import { usePoll } from "../use-poll.js";

const STATES = ["", "WAITING", "QUEUED", "SCHEDULED", "RUNNING", "SUCCEEDED", "FAILED", "CANCELLED"];

export function Steps({ query }: { query: URLSearchParams }) {
  const [state, setState] = useState(query.get("state") ?? "");
  const [route, setRoute] = useState(query.get("route") ?? "");
  const [tokens, setTokens] = useState<string[]>([""]); // the token of each page seen, for Back
  const token = tokens.at(-1) ?? "";
  const page = usePoll(
    () => stepq().steps.listSteps({ state: state ? StepState[state as keyof typeof StepState] : 0, route, pageSize: 50, pageToken: token }),
    3000,
    [state, route, token],
  );
  const restart = () => setTokens([""]);
  return (
    <section>
      <h2>Steps</h2>
      <form class="filters" onSubmit={(e) => e.preventDefault()}>
        <select name="state" value={state} onChange={(e) => (setState((e.target as HTMLSelectElement).value), restart())}>
          {STATES.map((s) => (
            <option value={s}>{s ? s.toLowerCase() : "any state"}</option>
          ))}
        </select>
        <input name="route" placeholder="route, e.g. echo" value={route} onChange={(e) => (setRoute((e.target as HTMLInputElement).value), restart())} />
      </form>
      {page.error && <p class="error" role="alert">{page.error}</p>}
      <table class="steps">
        <thead>
          <tr>
            <th>step</th>
            <th>state</th>
            <th>route</th>
            <th>attempt</th>
            <th>created</th>
            <th />
          </tr>
        </thead>
        <tbody>
          {(page.value?.steps ?? []).map((s) => (
            <tr data-step={s.id}>
              <td>
                <a href={`#/jobs/${s.jobId}`}>{s.id}</a>
              </td>
              <td>
                <StepBadge state={s.state} />
              </td>
              <td>{s.route}</td>
              <td>
                {s.attempt}/{s.maxAttempts}
              </td>
              <td>{s.createdAt ? new Date(Number(s.createdAt.seconds) * 1000).toLocaleString() : ""}</td>
              <td>
                <StepActions stepId={s.id} state={s.state} done={page.reload} />
              </td>
            </tr>
          ))}
          {page.value?.steps.length === 0 && (
            <tr>
              <td colSpan={6} class="empty">
                No step matches{page.value.nextPageToken ? " in this part; Next looks further" : ""}.
              </td>
            </tr>
          )}
        </tbody>
      </table>
      <nav class="pages">
        <button disabled={tokens.length === 1} onClick={() => setTokens(tokens.slice(0, -1))}>
          Back
        </button>
        <button data-action="next" disabled={!page.value?.nextPageToken} onClick={() => setTokens([...tokens, page.value?.nextPageToken ?? ""])}>
          Next
        </button>
      </nav>
    </section>
  );
}

/**
 * Steps, newest first, filtered by state and route (StepService.ListSteps):
 * a page of 50 at a time, Next and Back through the page tokens, so any
 * number of steps stays quick (nothing loads everything). The filters live
 * in the URL (#/steps?state=&route=), so a reload or a link keeps them.
 */
import { attemptsText } from "../components/attempts.js";
import { StepState } from "../../clients/web/index.js";
import { stepq } from "../client.js";
import { StepBadge } from "../components/state-badge.js";
import { StepActions } from "../components/step-actions.js";
import { EmptyRow, Pager, usePageTokens } from "../components/pager.js";
import { usePoll } from "../use-poll.js";

const STATES = ["", "WAITING", "QUEUED", "SCHEDULED", "RUNNING", "SUCCEEDED", "FAILED", "CANCELLED"];

export function Steps({ query }: { query: URLSearchParams }) {
  const state = query.get("state") ?? "";
  const route = query.get("route") ?? "";
  // A new filter is a new URL: main.tsx draws this page again for it, from its first page.
  const filter = (name: string, value: string) => {
    const q = new URLSearchParams(query);
    if (value) q.set(name, value);
    else q.delete(name);
    location.hash = `#/steps?${q}`;
  };
  const pages = usePageTokens();
  const token = pages.token;
  const page = usePoll(
    () => stepq().steps.listSteps({ state: state ? StepState[state as keyof typeof StepState] : 0, route, pageSize: 50, pageToken: token }),
    3000,
    [state, route, token],
  );
  return (
    <section>
      <h2>{state === "FAILED" ? "Dead letters" : "Steps"}</h2>
      <form class="filters" onSubmit={(e) => e.preventDefault()}>
        <select name="state" value={state} onChange={(e) => filter("state", (e.target as HTMLSelectElement).value)}>
          {STATES.map((s) => (
            <option value={s}>{s ? s.toLowerCase() : "any state"}</option>
          ))}
        </select>
        <input name="route" placeholder="route, e.g. echo" value={route} onChange={(e) => filter("route", (e.target as HTMLInputElement).value.trim())} />
      </form>
      {page.error && <p class="error" role="alert">{page.error}</p>}
      <table class="steps">
        <thead>
          <tr>
            <th>step</th>
            <th>state</th>
            <th>route</th>
            <th>attempt</th>
            <th>last error</th>
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
                {attemptsText(s.attempt, s.maxAttempts, true)}
              </td>
              <td class="step-error">{s.errors.at(-1)?.message ?? ""}</td>
              <td>{s.createdAt ? new Date(Number(s.createdAt.seconds) * 1000).toLocaleString() : ""}</td>
              <td>
                <StepActions stepId={s.id} state={s.state} done={page.reload} />
              </td>
            </tr>
          ))}
          {page.value?.steps.length === 0 && <EmptyRow columns={7} what="step" more={page.value.nextPageToken !== ""} />}
        </tbody>
      </table>
      <Pager pages={pages} nextToken={page.value?.nextPageToken} />
    </section>
  );
}

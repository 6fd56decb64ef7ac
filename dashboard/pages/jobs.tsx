/**
 * Jobs, newest first, filtered by state (JobService.ListJobs): a page of 50
 * at a time, Next and Back through the page tokens. The filter lives in the
 * URL (#/jobs?state=), so a reload or a link keeps it.
 */
import { JobState } from "../../clients/web/index.js";
import { stepq } from "../client.js";
import { JobBadge } from "../components/state-badge.js";
import { EmptyRow, Pager, usePageTokens } from "../components/pager.js";
import { usePoll } from "../use-poll.js";

const STATES = ["", "QUEUED", "RUNNING", "SUCCEEDED", "FAILED", "CANCELLED"];

export function Jobs({ query }: { query: URLSearchParams }) {
  const state = query.get("state") ?? "";
  const pages = usePageTokens();
  const token = pages.token;
  const page = usePoll(() => stepq().jobs.listJobs({ state: state ? JobState[state as keyof typeof JobState] : 0, pageSize: 50, pageToken: token }), 3000, [state, token]);
  return (
    <section>
      <h2>Jobs</h2>
      <form class="filters" onSubmit={(e) => e.preventDefault()}>
        <select name="state" value={state} onChange={(e) => (location.hash = `#/jobs?${new URLSearchParams({ state: (e.target as HTMLSelectElement).value })}`)}>
          {STATES.map((s) => (
            <option value={s}>{s ? s.toLowerCase() : "any state"}</option>
          ))}
        </select>
      </form>
      {page.error && <p class="error" role="alert">{page.error}</p>}
      <table class="jobs">
        <thead>
          <tr>
            <th>job</th>
            <th>state</th>
            <th>steps</th>
            <th>labels</th>
            <th>created</th>
          </tr>
        </thead>
        <tbody>
          {(page.value?.jobs ?? []).map((j) => (
            <tr data-job={j.id}>
              <td>
                <a href={`#/jobs/${j.id}`}>{j.id}</a>
              </td>
              <td>
                <JobBadge state={j.state} />
              </td>
              <td>{j.steps.map((s) => s.name).join(", ")}</td>
              <td>{Object.entries(j.labels).map(([k, v]) => `${k}=${v}`).join(" ")}</td>
              <td>{j.createdAt ? new Date(Number(j.createdAt.seconds) * 1000).toLocaleString() : ""}</td>
            </tr>
          ))}
          {page.value?.jobs.length === 0 && <EmptyRow columns={5} what="job" more={page.value.nextPageToken !== ""} />}
        </tbody>
      </table>
      <Pager pages={pages} nextToken={page.value?.nextPageToken} />
    </section>
  );
}

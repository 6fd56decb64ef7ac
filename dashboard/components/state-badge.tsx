/** A step's or job's state as a coloured badge (the colours are in app.css). */
import { JobState, StepState } from "../../clients/web/index.js";

export function StepBadge({ state }: { state: StepState }) {
  const name = (StepState[state] ?? "UNKNOWN").toLowerCase();
  return <span class={`badge ${name}`}>{name}</span>;
}

export function JobBadge({ state }: { state: JobState }) {
  const name = (JobState[state] ?? "UNKNOWN").toLowerCase();
  return <span class={`badge ${name}`}>{name}</span>;
}

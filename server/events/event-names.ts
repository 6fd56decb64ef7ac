/**
 * The names of stepq's lifecycle events outside the contract (the WebSocket
 * feed, and webhooks): stepq's own, and the ones the job-queue system it
 * replaces used, whose "job" is a stepq step and whose "workflow" a stepq
 * job. A consumer asks for either style or both; with both, each change
 * comes once under each name (the typed `type` field says which change it
 * is, whatever the name). docs/migration.md has the table.
 */
import { EventType } from "../../gen/stepq/v1/events_pb.js";

export type NameStyle = "new" | "legacy" | "both";

/** Per event type: its name, and the old system's. */
export const EVENT_NAMES: Readonly<Record<Exclude<EventType, EventType.UNSPECIFIED>, { name: string; legacy: string }>> = {
  [EventType.STEP_SUBMITTED]: { name: "step_submitted", legacy: "job_submitted" },
  [EventType.STEP_QUEUED]: { name: "step_queued", legacy: "job_queued" },
  [EventType.STEP_CLAIMED]: { name: "step_claimed", legacy: "job_assigned" },
  [EventType.STEP_PROGRESS]: { name: "step_progress", legacy: "job_progress" },
  [EventType.STEP_SUCCEEDED]: { name: "step_succeeded", legacy: "job_completed" },
  [EventType.STEP_FAILED]: { name: "step_failed", legacy: "job_failed" },
  [EventType.STEP_RETRYING]: { name: "step_retrying", legacy: "job_retrying" },
  [EventType.STEP_CANCELLED]: { name: "step_cancelled", legacy: "job_cancelled" },
  [EventType.JOB_SUBMITTED]: { name: "job_submitted", legacy: "workflow_submitted" },
  [EventType.JOB_SUCCEEDED]: { name: "job_succeeded", legacy: "workflow_completed" },
  [EventType.JOB_FAILED]: { name: "job_failed", legacy: "workflow_failed" },
  [EventType.JOB_CANCELLED]: { name: "job_cancelled", legacy: "workflow_cancelled" },
  [EventType.WORKER_JOINED]: { name: "worker_joined", legacy: "worker_connected" },
  [EventType.WORKER_LEFT]: { name: "worker_left", legacy: "worker_disconnected" },
  [EventType.WEBHOOK_DISABLED]: { name: "webhook_disabled", legacy: "webhook_disconnected" },
};

/** The names an event of `type` goes out under in `style`, each with its style. */
export function namesOf(type: EventType, style: NameStyle): { name: string; style: "new" | "legacy" }[] {
  const names = EVENT_NAMES[type as keyof typeof EVENT_NAMES];
  if (!names) return [];
  const out: { name: string; style: "new" | "legacy" }[] = [];
  if (style !== "legacy") out.push({ name: names.name, style: "new" });
  if (style !== "new") out.push({ name: names.legacy, style: "legacy" });
  return out;
}

/**
 * The event type a filter names: stepq's name, the contract's enum name
 * (EVENT_TYPE_STEP_SUCCEEDED), or, for the step events, the old name. The
 * old names job_failed and job_cancelled are stepq's names of job events,
 * so as filters they mean the job events; job_completed (old only) means a
 * step.
 */
export function typeNamed(name: string): EventType | undefined {
  const byEnum = EventType[name.replace(/^EVENT_TYPE_/, "") as keyof typeof EventType];
  if (typeof byEnum === "number" && byEnum !== EventType.UNSPECIFIED) return byEnum;
  for (const [type, n] of Object.entries(EVENT_NAMES)) if (n.name === name) return Number(type) as EventType;
  for (const [type, n] of Object.entries(EVENT_NAMES)) if (n.legacy === name) return Number(type) as EventType;
  return undefined;
}

/**
 * The old routes stepq keeps for the clients of the systems it replaces
 * (../../../docs/migration.md), each with its replacement, and the dates
 * every answer of theirs announces: deprecated since DEPRECATED_AT
 * (`Deprecation`, RFC 9745), to be removed at SUNSET_AT (`Sunset`,
 * RFC 8594), with a `Link` to the migration guide and to the successor.
 * ListLegacyUsage lists them all, with their use counts, and the old event
 * names (kind "event") beside them.
 */
import { EVENT_NAMES } from "../../events/event-names.js";

/** When the old routes were deprecated: the release that brought their replacements. */
export const DEPRECATED_AT = Date.UTC(2026, 11, 5);
/** When they are planned to be removed. */
export const SUNSET_AT = Date.UTC(2027, 5, 30);
/** The migration guide, as shipped in the package. */
export const MIGRATION_DOC = "/docs/migration.md";

export interface LegacyName {
  /** "METHOD /path" as the old client calls it. */
  name: string;
  kind: "route" | "event";
  /** What to use instead. */
  replacement: string;
  /** The successor's path, for the `Link: rel="successor-version"` header. */
  successor: string;
}

const route = (name: string, replacement: string, successor: string): LegacyName => ({ name, kind: "route", replacement, successor });

export const LEGACY_ROUTES = {
  submitJob: route("POST /submit-job", "StepService.SubmitStep (POST /stepq.v1.StepService/SubmitStep)", "/stepq.v1.StepService/SubmitStep"),
  submitStep: route("POST /submit-step", "StepService.SubmitStep (POST /stepq.v1.StepService/SubmitStep)", "/stepq.v1.StepService/SubmitStep"),
  getJob: route("GET /job/:id", "StepService.GetStep (POST /stepq.v1.StepService/GetStep)", "/stepq.v1.StepService/GetStep"),
  getStep: route("GET /step/:id", "StepService.GetStep (POST /stepq.v1.StepService/GetStep)", "/stepq.v1.StepService/GetStep"),
  listJobs: route("GET /jobs", "StepService.ListSteps (POST /stepq.v1.StepService/ListSteps)", "/stepq.v1.StepService/ListSteps"),
  postJobs: route("POST /v1/jobs", "StepService.SubmitStep, then GET /v1/steps/{id}/events", "/stepq.v1.StepService/SubmitStep"),
  jobStream: route("GET /v1/jobs/:id/stream", "GET /v1/steps/{id}/events (server-sent events)", "/v1/steps/{id}/events"),
  deleteJob: route("DELETE /v1/jobs/:id", "StepService.CancelStep (POST /stepq.v1.StepService/CancelStep)", "/stepq.v1.StepService/CancelStep"),
  postInference: route("POST /v1/inference", "StepService.SubmitStep, then GET /v1/steps/{id}/events", "/stepq.v1.StepService/SubmitStep"),
  inferenceStream: route("GET /v1/inference/:id/stream", "GET /v1/steps/{id}/events (server-sent events)", "/v1/steps/{id}/events"),
} as const;

/** The old event names (server/events/event-names.ts), counted as `event <name>` when sent. */
export const LEGACY_EVENTS: readonly LegacyName[] = Object.values(EVENT_NAMES).map((n) => ({
  name: `event ${n.legacy}`,
  kind: "event",
  replacement: `the event name ${n.name}`,
  successor: "/docs/migration.md",
}));

/** Every old name ListLegacyUsage reports. */
export const LEGACY_NAMES: readonly LegacyName[] = [...Object.values(LEGACY_ROUTES), ...LEGACY_EVENTS];

/** The headers every answer of an old route carries. */
export function deprecationHeaders(legacy: LegacyName): Record<string, string> {
  return {
    deprecation: `@${Math.floor(DEPRECATED_AT / 1000)}`,
    sunset: new Date(SUNSET_AT).toUTCString(),
    link: `<${MIGRATION_DOC}>; rel="deprecation"; type="text/markdown", <${legacy.successor}>; rel="successor-version"`,
  };
}

/**
 * stepq's browser client (see client.ts), and the generated message types
 * and enums a page needs with it.
 */
export { createStepqWebClient, type FollowEvent, type FollowOptions, type JobFollowEvent, type StepqWebClient, type StepqWebClientOptions } from "./client.js";
export { JobState } from "../../gen/stepq/v1/job_pb.js";
export { StepState, StopReason } from "../../gen/stepq/v1/step_pb.js";
export { NarrationLevel } from "../../gen/stepq/v1/output_pb.js";
export { EventType } from "../../gen/stepq/v1/events_pb.js";
export { ChatRole } from "../../gen/stepq/v1/operation_pb.js";

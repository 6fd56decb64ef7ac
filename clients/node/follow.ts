/**
 * The Node client's follow: the shared implementation (clients/shared/follow.ts),
 * re-exported where the Node client's users import it from.
 */
export { type FollowEvent, type FollowOptions, followJob, followStep, type JobFollowEvent, type OpenJobOutput } from "../shared/follow.js";

/**
 * Reading job records: several in one round trip, decoded into views; and
 * their stored sizes alone (STRLEN), so listings can load records in groups
 * bounded in bytes.
 */
import { asQueueError } from "./errors.js";
import { decodeJobRecord } from "./job-record.js";
import { type QueueContext, redisCall } from "./queue-script.js";
import { type JobView, view } from "./submit.js";

/** The jobs (undefined for one that does not exist, any more), in one round trip. */
export async function loadJobs(ctx: QueueContext, jobIds: readonly string[]): Promise<(JobView | undefined)[]> {
  if (jobIds.length === 0) return [];
  const raws = await redisCall(() => Promise.all(jobIds.map((id) => ctx.redis.getBuffer(ctx.keys.job(id)))));
  return raws.map((raw, i) => (raw ? view(decodeJobRecord(jobIds[i] as string, raw)) : undefined));
}

/** The stored size of each job's record, bytes (0: no such job), in one round trip. */
export async function recordSizes(ctx: QueueContext, jobIds: readonly string[]): Promise<number[]> {
  if (jobIds.length === 0) return [];
  const pipeline = ctx.redis.pipeline();
  for (const id of jobIds) pipeline.strlen(ctx.keys.job(id));
  const replies = await redisCall(() => pipeline.exec());
  return (replies ?? []).map(([err, n]) => {
    if (err) throw asQueueError(err);
    return Number(n);
  });
}

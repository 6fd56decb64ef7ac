/**
 * Reading job records: several in one round trip, decoded into views; and
 * their stored sizes alone (STRLEN), so listings can load records in groups
 * bounded in bytes.
 */
import { fixedSize, LAYOUTS, offsetsOf } from "../wire/layouts.js";
import { checkRecordFormat, decodeJobRecord } from "./job-record.js";
import { execAll, type QueueContext, redisCall } from "./queue-script.js";
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
  return (await execAll(pipeline)).map(Number);
}

const HDR = offsetsOf(LAYOUTS.JOB_HDR);
const HDR_LAST_BYTE = fixedSize(LAYOUTS.JOB_HDR) - 1;

/** The tenant number of a job, read from its header alone; undefined when there is no such job. */
export async function tenantOf(ctx: QueueContext, jobId: string): Promise<number | undefined> {
  const head = await redisCall(() => ctx.redis.getrangeBuffer(ctx.keys.job(jobId), 0, HDR_LAST_BYTE));
  if (head.length === 0) return undefined;
  checkRecordFormat(jobId, head);
  return head.readUInt16LE(HDR.tenant);
}

/**
 * A queue over this file's private Redis, for tests of the Redis layer
 * itself (no server in between).
 */
import { create, toBinary } from "@bufbuild/protobuf";
import { StepResultSchema } from "../../gen/stepq/v1/step_pb.js";
import { createQueue, type Queue, type QueueOptions } from "../../queue/queue.js";
import { connect, useRedis } from "./redis.js";

export async function useQueue(options: Partial<QueueOptions> = {}): Promise<Queue> {
  return (await useQueues(options))();
}

let counter = 0;

/** A factory of fresh queues (distinct names) over one private Redis: one per test. */
export async function useQueues(options: Partial<QueueOptions> = {}): Promise<(more?: Partial<QueueOptions>) => Queue> {
  const proc = await useRedis();
  const redis = await connect(proc.url);
  return (more = {}) => createQueue({ redis, queue: `q${++counter}`, ...options, ...more });
}

/** A StepResult with `text`, encoded. */
export function resultBytes(text: string): Uint8Array {
  return toBinary(StepResultSchema, create(StepResultSchema, { text }));
}

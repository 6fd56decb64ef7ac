/**
 * A model that writes one token every 20 ms until it is cancelled (1,000 at
 * most), on route infer:slow: a stream a client can leave in the middle of.
 */
import { setTimeout as sleep } from "node:timers/promises";
import { StopReason } from "../../gen/stepq/v1/step_pb.js";
import type { Engine } from "../../worker/engines/engine.js";

export const slowEngine: Engine = {
  name: "slow",
  routes: () => ["infer:slow"],
  async run(_step, ctx) {
    for (let i = 0; i < 1000; i++) {
      ctx.token(`t${i} `);
      await sleep(20, undefined, { signal: ctx.signal });
    }
    return { completionTokens: 1000, stopReason: StopReason.MAX_TOKENS };
  },
};

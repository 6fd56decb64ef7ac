/**
 * The bare server behind the HTTP and Connect ceilings: what a request costs
 * with no queue behind it. `POST /rt` answers "ok" from plain node:http;
 * everything else is a connect-node adapter whose StepService implements only
 * SubmitStep (echoes a step without touching Redis) and StreamTokens (streams
 * `after_cursor` token chunks as fast as the stream takes them). Prints
 * `listening <port>`.
 */
import { createServer } from "node:http";
import { create } from "@bufbuild/protobuf";
import type { ConnectRouter } from "@connectrpc/connect";
import { connectNodeAdapter } from "@connectrpc/connect-node";
import { StepService, StreamTokensResponseSchema } from "../../gen/stepq/v1/step_service_pb.js";
import { StepState } from "../../gen/stepq/v1/step_pb.js";

let seq = 0;
const connect = connectNodeAdapter({
  routes: (router: ConnectRouter) =>
    router.service(StepService, {
      submitStep: (req) => {
        const jobId = (++seq).toString(36).padStart(16, "0");
        return { step: { id: `${jobId}.0`, jobId, name: "main", operation: req.operation, state: StepState.QUEUED, route: "echo", maxAttempts: 3 } };
      },
      async *streamTokens(req) {
        const n = Number(req.afterCursor);
        for (let i = 0; i < n; i++) {
          yield create(StreamTokensResponseSchema, {
            event: { case: "tokens", value: { cursor: `1700000000000-${i}`, stepId: req.stepId, stepName: "main", attempt: 1, tokens: [{ index: i, text: "word " }] } },
          });
        }
      },
    }),
});

const server = createServer((req, res) => {
  if (req.url === "/rt") {
    req.resume();
    req.on("end", () => res.end("ok"));
  } else connect(req, res);
});
server.keepAliveTimeout = 65_000;
server.listen(0, "127.0.0.1", () => {
  const addr = server.address();
  process.stdout.write(`listening ${typeof addr === "object" && addr ? addr.port : 0}\n`);
});
process.on("SIGTERM", () => process.exit(0));

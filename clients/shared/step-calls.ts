/**
 * The step conveniences both clients (Node and browser) offer over the
 * generated StepService client: submit, retried safely when it has an
 * idempotency key, and get and cancel answering the step itself.
 */
import type { MessageInitShape } from "@bufbuild/protobuf";
import { type Client, Code, ConnectError } from "@connectrpc/connect";
import type { OperationSchema } from "../../gen/stepq/v1/operation_pb.js";
import type { Step } from "../../gen/stepq/v1/step_pb.js";
import type { StepService, SubmitStepRequestSchema } from "../../gen/stepq/v1/step_service_pb.js";

/**
 * Codes after which a submit with an idempotency key is safe and worth
 * repeating (the reply may have been lost after the job was stored).
 * CANCELED is among them because submit takes no signal: over HTTP/2 a
 * dropped connection resets its streams with CANCEL.
 */
const RETRYABLE_SUBMIT = new Set([Code.Unavailable, Code.Aborted, Code.Unknown, Code.DeadlineExceeded, Code.Canceled]);

function stepOf(res: { step?: Step }, rpc: string): Step {
  if (!res.step) throw new ConnectError(`${rpc} returned no step`, Code.Internal);
  return res.step;
}

export function stepCalls(steps: Client<typeof StepService>) {
  return {
    /**
     * Submits a one-step job and returns its step. With an idempotency key,
     * a call whose connection failed is retried, up to 5 times with backoff;
     * the key makes the retry return the first job instead of a second one.
     */
    async submit(
      operation: MessageInitShape<typeof OperationSchema>,
      more: Omit<MessageInitShape<typeof SubmitStepRequestSchema>, "operation" | "$typeName"> = {},
    ): Promise<Step> {
      const retries = more.idempotencyKey ? 5 : 0;
      for (let attempt = 0; ; attempt++) {
        try {
          return stepOf(await steps.submitStep({ ...more, operation }), "SubmitStep");
        } catch (e) {
          const err = ConnectError.from(e);
          if (attempt >= retries || !RETRYABLE_SUBMIT.has(err.code)) throw err;
          await new Promise((r) => setTimeout(r, 100 * 2 ** attempt));
        }
      }
    },

    /** The step now. */
    async get(stepId: string): Promise<Step> {
      return stepOf(await steps.getStep({ stepId }), "GetStep");
    },

    /** Cancels the step (its worker stops); returns it. */
    async cancel(stepId: string, reason = ""): Promise<Step> {
      return stepOf(await steps.cancelStep({ stepId, reason }), "CancelStep");
    },
  };
}

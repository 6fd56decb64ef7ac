/**
 * The operation of an old client's submit, as a stepq Operation:
 *
 * - job-queue style (`POST /submit-job`, `/submit-step`): `service_required`
 *   names the service and `payload` carries its input: "echo" {text},
 *   "infer" (or "openai", "ollama", "llm", "infer:<model>") {model, prompt or
 *   messages, max_tokens, temperature, top_p, top_k, seed, stop}, "embed"
 *   {model, input or inputs}; or `payload.operation`, a stepq Operation in
 *   its JSON form, for any service.
 * - worker style (`POST /v1/jobs`, `/v1/inference`): the body is the
 *   operation, tagged by `operation` ("infer", "embed", "echo"), its fields
 *   beside the tag.
 *
 * Either way the result goes through the Operation's JSON reader, so a field
 * of the wrong type or name is refused naming it, and then through
 * SubmitStep's checks like any step.
 */
import { fromJson, type JsonObject, type JsonValue } from "@bufbuild/protobuf";
import { Code, ConnectError } from "@connectrpc/connect";
import { type Operation, OperationSchema } from "../../../gen/stepq/v1/operation_pb.js";

const INFER_SERVICES = new Set(["infer", "openai", "ollama", "llm", "text-generation"]);

function bad(message: string): never {
  throw new ConnectError(message, Code.InvalidArgument);
}

/** Reads `json` (an Operation's JSON form) as an Operation, naming `where` in its errors. */
function operationFromJson(json: JsonValue, where: string): Operation {
  try {
    return fromJson(OperationSchema, json, { ignoreUnknownFields: false });
  } catch (e) {
    return bad(`${where}: ${(e as Error).message}`);
  }
}

function object(v: unknown, where: string): JsonObject {
  if (typeof v !== "object" || v === null || Array.isArray(v)) bad(`${where} must be a JSON object`);
  return v as JsonObject;
}

/** The operation of a job-queue-style submit body. */
export function jobQueueOperation(body: JsonObject): Operation {
  const payload = object(body.payload ?? {}, "payload");
  if (payload.operation !== undefined) return operationFromJson(payload.operation, "payload.operation");
  const service = body.service_required;
  if (typeof service !== "string" || service === "") bad('service_required is required: "echo", "infer", "infer:<model>" or "embed" (or give payload.operation)');
  const [kind, model] = service.split(/:(.*)/s) as [string, string | undefined];
  const { input, inputs, ...rest } = payload;
  if (kind === "echo") return operationFromJson({ echo: rest }, "payload");
  if (INFER_SERVICES.has(kind)) return operationFromJson({ infer: model ? { model, ...rest } : rest }, "payload");
  if (kind === "embed") {
    const texts = inputs ?? (typeof input === "string" ? [input] : input);
    return operationFromJson({ embed: { ...(model ? { model } : {}), ...rest, inputs: texts ?? [] } }, "payload");
  }
  return bad(`service_required: ${JSON.stringify(service)} has no stepq operation; use "echo", "infer", "infer:<model>" or "embed", or give payload.operation`);
}

/** The operation of a worker-style submit body (`{"operation": "infer", "model": ..., ...}`). */
export function workerOperation(body: JsonObject): Operation {
  const { operation, hive_id: _hive, ...fields } = body;
  if (typeof operation !== "string") bad('operation is required: "infer", "embed" or "echo", with the operation\'s fields beside it');
  const kind = operation.toLowerCase();
  if (kind !== "infer" && kind !== "embed" && kind !== "echo") bad(`operation: ${JSON.stringify(operation)} is not supported by stepq; use "infer", "embed" or "echo"`);
  return operationFromJson({ [kind]: fields }, "body");
}

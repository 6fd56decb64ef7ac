/**
 * References from one step's operation to the output of another step of the
 * same job: `{{steps.NAME.output}}` inside any text field (a prompt, a chat
 * message, an embed input, echo text). They let a DAG pass data along: a
 * summary step's text becomes the prompt of the step that depends on it.
 */
import { clone } from "@bufbuild/protobuf";
import { type Operation, OperationSchema } from "../gen/stepq/v1/operation_pb.js";

const REFERENCE = /\{\{\s*steps\.([A-Za-z0-9_-]+)\.output\s*\}\}/g;

/** The text fields of an operation that may carry references, with their proto paths. */
export function textFields(op: Operation): { path: string; text: string }[] {
  const k = op.kind;
  switch (k.case) {
    case "infer":
      return [
        { path: "infer.prompt", text: k.value.prompt },
        ...k.value.messages.map((m, i) => ({ path: `infer.messages[${i}].content`, text: m.content })),
      ];
    case "embed":
      return k.value.inputs.map((text, i) => ({ path: `embed.inputs[${i}]`, text }));
    case "echo":
      return [{ path: "echo.text", text: k.value.text }];
    default:
      return [];
  }
}

/** Every step name referenced by `op`, with the field that references it. */
export function findReferences(op: Operation): { path: string; name: string }[] {
  const out: { path: string; name: string }[] = [];
  for (const { path, text } of textFields(op)) {
    if (!text.includes("{{")) continue;
    for (const m of text.matchAll(REFERENCE)) out.push({ path, name: m[1] as string });
  }
  return out;
}

/**
 * How many bytes `op` (encoded in `encodedBytes`) grows to once its
 * references are resolved, computed without building it: a small operation
 * that references a large output many times would otherwise be built in
 * memory before anything could refuse it. An upper bound: each replaced
 * text also lengthens its field's length prefix by at most 4 bytes.
 */
export function resolvedBytes(op: Operation, encodedBytes: number, outputs: ReadonlyMap<string, string>): number {
  let bytes = encodedBytes;
  const sizes = new Map<string, number>();
  for (const { text } of textFields(op)) {
    if (!text.includes("{{")) continue;
    let grew = false;
    for (const m of text.matchAll(REFERENCE)) {
      const name = m[1] as string;
      let size = sizes.get(name);
      if (size === undefined) {
        const output = outputs.get(name);
        if (output === undefined) continue;
        size = Buffer.byteLength(output);
        sizes.set(name, size);
      }
      bytes += size - m[0].length; // a reference is ASCII
      grew = true;
    }
    if (grew) bytes += 4;
  }
  return bytes;
}

/**
 * A copy of `op` with each reference replaced by the named step's output
 * text. Outputs are final once a step succeeded, so resolving at start time
 * gives the same operation whenever it runs (retries included).
 */
export function resolveReferences(op: Operation, outputs: ReadonlyMap<string, string>): Operation {
  if (findReferences(op).length === 0) return op;
  const replace = (text: string) => text.replace(REFERENCE, (whole, name: string) => outputs.get(name) ?? whole);
  const out = clone(OperationSchema, op);
  const k = out.kind;
  switch (k.case) {
    case "infer":
      k.value.prompt = replace(k.value.prompt);
      for (const m of k.value.messages) m.content = replace(m.content);
      break;
    case "embed":
      k.value.inputs = k.value.inputs.map(replace);
      break;
    case "echo":
      k.value.text = replace(k.value.text);
      break;
  }
  return out;
}

/**
 * Submits an echo or infer step: the model picker lists the models of the
 * live workers' infer routes. On success it opens the step's job page; a
 * refusal shows the server's message.
 */
import { useState } from "preact/hooks";
import { messageOf, stepq } from "../client.js";

export function SubmitForm({ routes }: { routes: readonly string[] }) {
  const models = [...new Set(routes.filter((r) => r.startsWith("infer:")).map((r) => r.slice(6)))].sort();
  const [kind, setKind] = useState<"echo" | "infer">("echo");
  const [text, setText] = useState("");
  const [model, setModel] = useState("");
  const [error, setError] = useState<string>();
  const submit = async (ev: Event) => {
    ev.preventDefault();
    if (!confirm(`Submit this ${kind} step?`)) return;
    try {
      const operation =
        kind === "echo"
          ? { kind: { case: "echo" as const, value: { text, tokenCount: 40, tokenDelayMs: 50 } } }
          : { kind: { case: "infer" as const, value: { model: model || models[0] || "", prompt: text, maxTokens: 64 } } };
      const step = await stepq().submit(operation, { idempotencyKey: crypto.randomUUID() });
      location.hash = `#/jobs/${step.jobId}`;
    } catch (e) {
      setError(messageOf(e));
    }
  };
  return (
    <form class="submit" onSubmit={submit}>
      <select name="kind" value={kind} onChange={(e) => setKind((e.target as HTMLSelectElement).value as "echo" | "infer")}>
        <option value="echo">echo</option>
        <option value="infer">infer</option>
      </select>
      {kind === "infer" && (
        <select name="model" value={model} onChange={(e) => setModel((e.target as HTMLSelectElement).value)}>
          {models.length === 0 && <option value="">no worker serves a model</option>}
          {models.map((m) => (
            <option value={m}>{m}</option>
          ))}
        </select>
      )}
      <input name="text" placeholder={kind === "echo" ? "text to echo" : "prompt"} value={text} onInput={(e) => setText((e.target as HTMLInputElement).value)} required />
      <button type="submit">Submit</button>
      {error && <span class="error" role="alert">{error}</span>}
    </form>
  );
}

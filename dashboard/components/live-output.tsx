/**
 * A job's live tokens and narration, per step, from follow(jobId). What it
 * has shown and the cursor it reached are kept in sessionStorage, so after
 * a page reload it goes on from that cursor: no text lost, none twice.
 */
import { useEffect, useState } from "preact/hooks";
import { JobState, NarrationLevel } from "../../clients/web/index.js";
import { messageOf, stepq } from "../client.js";

interface Shown {
  cursor: string;
  text: Record<string, string>;
  narration: string[];
  ended?: string;
}

const keyOf = (jobId: string) => `stepq.follow.${jobId}`;

function load(jobId: string): Shown {
  try {
    return JSON.parse(sessionStorage.getItem(keyOf(jobId)) ?? "") as Shown;
  } catch {
    return { cursor: "", text: {}, narration: [] };
  }
}

export function LiveOutput({ jobId }: { jobId: string }) {
  const [shown, setShown] = useState<Shown>(() => load(jobId));
  const [error, setError] = useState<string>();
  useEffect(() => {
    const stop = new AbortController();
    let s = load(jobId);
    if (s.ended) return;
    void (async () => {
      try {
        for await (const e of stepq().follow(jobId, { afterCursor: s.cursor, signal: stop.signal })) {
          s = { ...s, cursor: e.cursor };
          if (e.type === "tokens") s.text = { ...s.text, [e.stepId]: (s.text[e.stepId] ?? "") + e.tokens.map((t) => t.text).join("") };
          if (e.type === "narration") s.narration = [...s.narration.slice(-199), `${e.stepId.split(".")[1]} · ${NarrationLevel[e.level]?.toLowerCase() ?? ""} · ${e.text}`];
          if (e.type === "jobEnd") s.ended = JobState[e.state]?.toLowerCase();
          sessionStorage.setItem(keyOf(jobId), JSON.stringify(s));
          setShown(s);
        }
      } catch (e) {
        if (!stop.signal.aborted) setError(messageOf(e));
      }
    })();
    return () => stop.abort();
  }, [jobId]);
  return (
    <div class="live">
      {error && <p class="error" role="alert">{error}</p>}
      {Object.entries(shown.text).map(([stepId, text]) => (
        <div>
          <h3>Output of step {stepId.split(".")[1]}</h3>
          <pre class="tokens" data-step={stepId}>
            {text}
          </pre>
        </div>
      ))}
      <h3>Narration</h3>
      <pre class="narration">{shown.narration.join("\n")}</pre>
      <p class="follow-state" data-ended={shown.ended ?? ""}>
        {shown.ended ? `The job ended: ${shown.ended}.` : "Following live…"}
      </p>
    </div>
  );
}

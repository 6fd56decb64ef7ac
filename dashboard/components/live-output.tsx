/**
 * A job's live tokens and narration, per step, from follow(jobId). What it
 * has shown and the cursor it reached are kept together in sessionStorage,
 * so after a page reload it goes on from that cursor: no text lost, none
 * twice. A step's new attempt (restart) starts its text again, as the
 * contract says; a job that runs again after it ended (a dead letter
 * retried) is followed again from the kept cursor. The page is redrawn and
 * the copy saved at most every 100 ms (and when the page goes away), so a
 * long output stays cheap.
 */
import { useEffect, useRef, useState } from "preact/hooks";
import { JobState, NarrationLevel, StepState } from "../../clients/web/index.js";
import { messageOf, stepq } from "../client.js";

interface Shown {
  cursor: string;
  /** Each step's text, by step id. */
  text: Record<string, string>;
  /** The last 200 narration lines: [step id, line]. */
  narration: [string, string][];
  ended?: string;
}

const PREFIX = "stepq.follow.v2.";
const keyOf = (jobId: string) => PREFIX + jobId;

function load(jobId: string): Shown {
  try {
    return JSON.parse(sessionStorage.getItem(keyOf(jobId)) ?? "") as Shown;
  } catch {
    return { cursor: "", text: {}, narration: [] };
  }
}

/** Keeps `s`; over the tab's quota, drops the other jobs' copies, then this one's (a reload then replays it all). */
function save(jobId: string, s: Shown): void {
  const json = JSON.stringify(s);
  try {
    sessionStorage.setItem(keyOf(jobId), json);
  } catch {
    for (const k of Object.keys(sessionStorage)) if (k.startsWith(PREFIX) && k !== keyOf(jobId)) sessionStorage.removeItem(k);
    try {
      sessionStorage.setItem(keyOf(jobId), json);
    } catch {
      sessionStorage.removeItem(keyOf(jobId));
    }
  }
}

const line = (e: { attempt: number }, text: string) => `attempt ${e.attempt} · ${text}`;

/**
 * `state`: the job's state as GetJob said in a call sent at `asOf`; when a
 * call sent after the stream's end says otherwise, the job ran again.
 * `onEnd`: the stream saw the job end (to read the job again).
 */
export function LiveOutput(props: { jobId: string; names: Record<string, string>; state: string; asOf: number; onEnd(): void }) {
  const { jobId, names, state, asOf } = props;
  const onEnd = useRef(props.onEnd);
  onEnd.current = props.onEnd;
  const endSeenAt = useRef(0);
  const [shown, setShown] = useState<Shown>(() => load(jobId));
  const [error, setError] = useState<string>();
  const [round, setRound] = useState(0);
  const again = shown.ended !== undefined && shown.ended !== state && asOf > endSeenAt.current;
  useEffect(() => {
    if (again) setRound((r) => r + 1);
  }, [again]);
  useEffect(() => {
    let s = load(jobId);
    const before = s.ended;
    if (before) {
      if (round === 0) return;
      s = { ...s, ended: undefined };
    }
    const stop = new AbortController();
    let timer: ReturnType<typeof setTimeout> | undefined;
    const flush = () => {
      clearTimeout(timer);
      timer = undefined;
      save(jobId, s);
      setShown(s);
    };
    addEventListener("pagehide", flush);
    void (async () => {
      try {
        for await (const e of stepq().follow(jobId, { afterCursor: s.cursor, signal: stop.signal })) {
          const said = (text: string) => [...s.narration.slice(-199), ["stepId" in e ? e.stepId : "", text] as [string, string]];
          s = { ...s, cursor: e.cursor };
          if (e.type === "tokens") s.text = { ...s.text, [e.stepId]: (s.text[e.stepId] ?? "") + e.tokens.map((t) => t.text).join("") };
          if (e.type === "narration") s.narration = said(line(e, `${NarrationLevel[e.level]?.toLowerCase() ?? ""} · ${e.text}`));
          if (e.type === "restart") {
            s.text = { ...s.text, [e.stepId]: "" };
            s.narration = said(line(e, "a new attempt started; its output replaces the last one's"));
          }
          if (e.type === "end") s.narration = said(`${StepState[e.state]?.toLowerCase() ?? ""}${e.error ? `: ${e.error.message}` : ""}`);
          if (e.type === "jobEnd") {
            s.ended = JobState[e.state]?.toLowerCase() ?? "ended";
            endSeenAt.current = Date.now();
            flush();
            onEnd.current();
          } else timer ??= setTimeout(flush, 100);
        }
        // Ended without a jobEnd: the job had already ended again when the stream opened
        // (a later GetJob that says otherwise starts another round).
        if (!s.ended && !stop.signal.aborted) {
          s = { ...s, ended: before ?? "ended" };
          endSeenAt.current = Date.now();
          flush();
        }
      } catch (e) {
        if (!stop.signal.aborted) setError(messageOf(e));
      }
    })();
    return () => {
      stop.abort();
      clearTimeout(timer);
      save(jobId, s);
      removeEventListener("pagehide", flush);
    };
  }, [jobId, round]);
  const name = (stepId: string) => names[stepId] ?? stepId;
  return (
    <div class="live">
      {error && (
        <p class="error" role="alert">
          Following the output stopped: {error}
        </p>
      )}
      {Object.entries(shown.text).map(([stepId, text]) => (
        <div>
          <h3>Output of {name(stepId)}</h3>
          <pre class="tokens" data-step={stepId}>
            {text}
          </pre>
        </div>
      ))}
      <h3>Narration</h3>
      <pre class="narration">{shown.narration.map(([stepId, text]) => `${stepId ? name(stepId) : "job"} · ${text}`).join("\n")}</pre>
      <p class="follow-state" data-ended={again ? "" : (shown.ended ?? "")}>
        {shown.ended && !again ? `The job ended: ${shown.ended}.` : "Following live…"}
      </p>
    </div>
  );
}

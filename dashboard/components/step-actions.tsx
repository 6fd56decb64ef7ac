/**
 * Cancel, retry and purge buttons for one step, each asking first and
 * showing the server's message when it refuses; `done` refreshes the page.
 */
import { useState } from "preact/hooks";
import { StepState } from "../../clients/web/index.js";
import { messageOf, stepq } from "../client.js";

export function StepActions({ stepId, state, done }: { stepId: string; state: StepState; done(): void }) {
  const [error, setError] = useState<string>();
  const act = async (what: string, run: () => Promise<unknown>) => {
    if (!confirm(`${what} step ${stepId}?`)) return;
    try {
      await run();
      setError(undefined);
      done();
    } catch (e) {
      setError(messageOf(e));
    }
  };
  const final = state === StepState.SUCCEEDED || state === StepState.FAILED || state === StepState.CANCELLED;
  return (
    <span class="actions">
      {!final && (
        <button data-action="cancel" onClick={() => act("Cancel", () => stepq().cancel(stepId, "cancelled from the dashboard"))}>
          Cancel
        </button>
      )}
      {state === StepState.FAILED && (
        <button data-action="retry" onClick={() => act("Retry", () => stepq().steps.retryStep({ stepId }))}>
          Retry
        </button>
      )}
      {state === StepState.FAILED && (
        <button data-action="purge" onClick={() => act("Purge", () => stepq().steps.purgeStep({ stepId }))}>
          Purge
        </button>
      )}
      {error && <span class="error" role="alert">{error}</span>}
    </span>
  );
}

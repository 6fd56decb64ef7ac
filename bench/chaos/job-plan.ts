/**
 * The jobs of a chaos run, planned up front from the seed: single echo steps
 * and small DAGs with random durations, token counts and designed failures.
 * The plan is the run's ground truth: what each job should end as, and the
 * exact tokens each step emits (echo is deterministic), which the audit and
 * the stream check compare against.
 */
import type { EchoOperation } from "../../gen/stepq/v1/operation_pb.js";
import type { Prng } from "./prng.js";

/** What a step is designed to do. */
export type StepDesign =
  /** Succeeds on its first attempt that runs to the end. */
  | "ok"
  /** Fails its first 1-2 attempts (retryable), then succeeds. */
  | "flaky"
  /** Fails for good at once (fail_permanently). */
  | "fatal"
  /** Fails every attempt until its few attempts are used up. */
  | "exhaust";

/** The EchoOperation fields of one step, every one of them planned. */
export type EchoPlan = Omit<EchoOperation, "$typeName" | "$unknown">;

/** One planned step. */
export interface PlannedStep {
  name: string;
  dependsOn: string[];
  design: StepDesign;
  echo: EchoPlan;
  /** retry.max_attempts: generous for steps meant to succeed, so worker kills cannot use them up. */
  maxAttempts: number;
  /** Requires a worker tagged ZONE_TAG (capability routing): only the even worker slots have it. */
  zoned: boolean;
}

/** The tag the even worker slots have, and a quarter of the steps require. */
export const ZONE_TAG = "zone=eu";

/** One planned job. */
export interface PlannedJob {
  index: number;
  /** The idempotency key every (re)submit of this job carries. */
  idempotencyKey: string;
  /** "single" goes through SubmitSteps (batched), "dag" through SubmitJob. */
  shape: "single" | "dag";
  steps: PlannedStep[];
  /** True when some step is fatal or exhaust: the job must end FAILED (fail fast). */
  designedToFail: boolean;
  /** Whether the run follows this job's token streams through the dropping proxy. */
  followed: boolean;
}

/** Backoff of designed retries: short, so retries happen within the run. */
export const RETRY_BACKOFF = { initialBackoffMs: 100, maxBackoffMs: 400 } as const;

/** Attempts a step meant to succeed may lose to killed workers before it fails for real. */
const KILL_SLACK = 6;

const WORDS = ["alpha", "bravo", "charlie", "delta", "echo", "foxtrot", "golf", "hotel", "india", "juliet", "kilo", "lima"];

/** Plans `count` jobs; `followFraction` of those with tokens are followed. */
export function planJobs(count: number, rng: Prng, options: { followFraction: number; keyPrefix: string }): PlannedJob[] {
  const jobs: PlannedJob[] = [];
  for (let index = 0; index < count; index++) {
    const shape = rng.chance(0.25) ? "dag" : "single";
    const steps = shape === "single" ? [planStep(rng, "main", [])] : planDag(rng);
    const designedToFail = steps.some((s) => s.design === "fatal" || s.design === "exhaust");
    const hasTokens = steps.some((s) => s.echo.tokenCount > 0);
    jobs.push({
      index,
      idempotencyKey: `${options.keyPrefix}-${index}`,
      shape,
      steps,
      designedToFail,
      followed: hasTokens && rng.chance(options.followFraction),
    });
  }
  return jobs;
}

/** A chain a -> b, or a fan a -> (b, c), or a join (a, b) -> c. */
function planDag(rng: Prng): PlannedStep[] {
  switch (rng.int(0, 2)) {
    case 0:
      return [planStep(rng, "a", []), planStep(rng, "b", ["a"])];
    case 1:
      return [planStep(rng, "a", []), planStep(rng, "b", ["a"]), planStep(rng, "c", ["a"])];
    default:
      return [planStep(rng, "a", []), planStep(rng, "b", []), planStep(rng, "c", ["a", "b"])];
  }
}

function planStep(rng: Prng, name: string, dependsOn: string[]): PlannedStep {
  const roll = rng.next();
  const design: StepDesign = roll < 0.82 ? "ok" : roll < 0.94 ? "flaky" : roll < 0.97 ? "fatal" : "exhaust";
  const words = Array.from({ length: rng.int(0, 5) }, () => rng.pick(WORDS));
  const streams = rng.chance(0.7);
  const failAttempts = design === "flaky" ? rng.int(1, 2) : 0;
  const echo: EchoPlan = {
    text: words.join(" "),
    tokenCount: streams ? rng.int(1, 40) : 0,
    tokenDelayMs: streams ? rng.pick([0, 2, 5, 10, 20]) : 0,
    delayMs: rng.chance(0.3) ? 0 : rng.int(10, 400),
    failMessage: design === "ok" ? "" : `designed ${design} failure`,
    failAttempts,
    failPermanently: design === "fatal",
  };
  const maxAttempts = design === "exhaust" ? 2 : failAttempts + KILL_SLACK;
  return { name, dependsOn, design, echo, maxAttempts, zoned: rng.chance(0.25) };
}

/**
 * The tokens an echo step emits, from the EchoOperation contract: token i
 * is the (i mod n)-th of the text's n words followed by one space, or
 * "tI " when the text has no words.
 */
export function expectedTokens(echo: EchoPlan): string[] {
  const words = echo.text.split(/\s+/).filter((w) => w !== "");
  return Array.from({ length: echo.tokenCount }, (_, i) => (words.length > 0 ? `${words[i % words.length]} ` : `t${i} `));
}

/** The result text of a succeeded echo step: its text, or its tokens joined when it streams. */
export function expectedText(echo: EchoPlan): string {
  return echo.tokenCount > 0 ? expectedTokens(echo).join("") : echo.text;
}

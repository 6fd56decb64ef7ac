/**
 * The commands that talk to a running server: submit, get, follow, cancel,
 * stats, list. Each has its own option table (for parsing and --help).
 */
import { type Step, StepState } from "../../gen/stepq/v1/step_pb.js";
import { JobState } from "../../gen/stepq/v1/job_pb.js";
import { parseMemoryMb } from "../../runtime/memory-size.js";
import { type OptionSpec, OptionError } from "../../runtime/options.js";
import { createStepqClient } from "../node/client.js";
import { type CommandSpec, type Io, runCommand } from "./command.js";
import { describeClientError, EXIT } from "./exit-codes.js";

export type { Io };
import { followToTerminal } from "./follow-terminal.js";
import { describeStep, jobRow, stepJson, stepRow, stepStateName } from "./render.js";
import { STATS_COMMAND } from "./stats-command.js";

const SERVER: OptionSpec = {
  flag: "server",
  short: "s",
  env: "STEPQ_SERVER",
  kind: "string",
  default: "http://127.0.0.1:8080",
  help: "stepq server URL.",
};
const API_KEY: OptionSpec = {
  flag: "api-key",
  env: "STEPQ_API_KEY",
  kind: "string",
  help: "An API key's secret, for a server started with --auth required (stepq keys create).",
};
/** Where the server is and how to sign in: every client command's first options. */
const CONNECTION: OptionSpec[] = [SERVER, API_KEY];
const JSON_OUT: OptionSpec = { flag: "json", kind: "bool", help: "Print JSON instead of text." };

/** The client for the parsed connection options. */
function clientOf(v: Record<string, unknown>) {
  return createStepqClient({ baseUrl: v.server as string, apiKey: v["api-key"] as string | undefined });
}

interface Command extends CommandSpec {
  run(v: Record<string, unknown>, args: string[], io: Io): Promise<number>;
}

/** Reports the end of a followed step; exit 0 only for success. */
export async function finish(io: Io, stepId: string, follow: () => Promise<Step>): Promise<number> {
  const step = await follow();
  const u = step.result?.usage;
  if (step.state === StepState.SUCCEEDED) {
    io.err.write(`✓ ${stepId} succeeded${u ? `: ${u.completionTokens} tokens, first after ${u.timeToFirstTokenMs} ms, ${u.tokensPerSecond.toFixed(0)} tok/s` : ""}\n`);
    return EXIT.OK;
  }
  io.err.write(`✗ ${stepId} ${stepStateName(step.state)}${step.error ? `: ${step.error.message}` : ""}\n`);
  return EXIT.FAILED;
}

/** What a step requires of the worker that claims it (Requirements). */
const REQUIREMENT_OPTIONS: OptionSpec[] = [
  { flag: "require-tag", kind: "list", default: "", help: "Tags the worker must have, key=value (e.g. gpu=a100)." },
  { flag: "min-memory", kind: "string", help: "Least memory the worker must offer: MiB, or a size such as 40g." },
  { flag: "require-model", kind: "list", default: "", help: "Other models the worker must also serve (e.g. a draft model)." },
  { flag: "only-workers", kind: "list", default: "", help: "Only these worker ids may run it." },
  { flag: "exclude-workers", kind: "list", default: "", help: "These worker ids may not run it." },
];

function requirementsOf(v: Record<string, unknown>) {
  let minMemoryMb = 0;
  if (v["min-memory"] !== undefined) {
    try {
      minMemoryMb = parseMemoryMb(v["min-memory"] as string);
    } catch {
      throw new OptionError(`--min-memory "${String(v["min-memory"])}": give MiB as a number, or a size such as 40g or 512m`);
    }
  }
  return {
    tags: v["require-tag"] as string[],
    minMemoryMb,
    models: v["require-model"] as string[],
    onlyWorkers: v["only-workers"] as string[],
    excludeWorkers: v["exclude-workers"] as string[],
  };
}

const SUBMIT_INFER_OPTIONS: OptionSpec[] = [
  ...CONNECTION,
  { flag: "prompt", short: "p", kind: "string", help: "The prompt (required)." },
  { flag: "model", short: "m", env: "STEPQ_MODEL", kind: "string", default: "stepq-tiny", help: "Model to run; a worker must serve infer:<model>." },
  { flag: "max-tokens", kind: "int", default: "0", help: "Most tokens to generate (0: the server's default)." },
  { flag: "temperature", kind: "string", help: "Sampling temperature, 0 to 2." },
  { flag: "top-p", kind: "string", help: "Nucleus sampling, (0, 1]." },
  { flag: "top-k", kind: "int", help: "Top-k sampling." },
  { flag: "seed", kind: "int", help: "Seed for reproducible sampling." },
  { flag: "stop", kind: "list", help: "Stop strings, comma-separated." },
  { flag: "priority", kind: "int", default: "0", help: "Priority, -1000 to 1000; higher runs first." },
  { flag: "idempotency-key", kind: "string", help: "Makes a repeated submit return the first step." },
  { flag: "follow", short: "f", kind: "bool", help: "Stream the step's output until it ends." },
  ...REQUIREMENT_OPTIONS,
  JSON_OUT,
];

const SUBMIT_ECHO_OPTIONS: OptionSpec[] = [
  ...CONNECTION,
  { flag: "text", short: "t", kind: "string", default: "", help: "Text to echo." },
  { flag: "tokens", kind: "int", default: "0", help: "Tokens to stream." },
  { flag: "token-delay", kind: "int", default: "0", help: "Milliseconds between tokens." },
  { flag: "fail", kind: "string", help: "Make every attempt fail with this message." },
  { flag: "priority", kind: "int", default: "0", help: "Priority, -1000 to 1000; higher runs first." },
  { flag: "follow", short: "f", kind: "bool", help: "Stream the step's output until it ends." },
  ...REQUIREMENT_OPTIONS,
  JSON_OUT,
];

function float(v: unknown, flag: string): number | undefined {
  if (v === undefined) return undefined;
  const n = Number(v);
  if (!Number.isFinite(n)) throw new OptionError(`--${flag}: "${String(v)}" is not a number`);
  return n;
}

async function submitAndMaybeFollow(
  v: Record<string, unknown>,
  io: Io,
  operation: Parameters<ReturnType<typeof createStepqClient>["submit"]>[0],
  more: Parameters<ReturnType<typeof createStepqClient>["submit"]>[1],
): Promise<number> {
  const client = clientOf(v);
  const step = await client.submit(operation, more);
  if (v.json && !v.follow) {
    io.out.write(`${stepJson(step)}\n`);
    return EXIT.OK;
  }
  if (!v.follow) {
    io.out.write(`${step.id}\n`);
    io.err.write(`submitted ${step.id} (${stepStateName(step.state)}, route ${step.route}); follow it with: stepq follow ${step.id}\n`);
    return EXIT.OK;
  }
  io.err.write(`submitted ${step.id} (route ${step.route})\n`);
  return finish(io, step.id, () => followToTerminal(client, step.id, { out: io.out, err: io.err, json: v.json as boolean }));
}

export const CLIENT_COMMANDS: Record<string, Command> = {
  "submit infer": {
    usage: "stepq submit infer --prompt TEXT [options]",
    description: "Submits a text-generation step and prints its id (or streams it with --follow).",
    options: SUBMIT_INFER_OPTIONS,
    async run(v, _args, io) {
      if (!v.prompt) throw new OptionError("--prompt is required (the text to complete)");
      const topK = v["top-k"] as number | undefined;
      const seed = v.seed as number | undefined;
      return submitAndMaybeFollow(
        v,
        io,
        {
          kind: {
            case: "infer",
            value: {
              model: v.model as string,
              prompt: v.prompt as string,
              maxTokens: v["max-tokens"] as number,
              temperature: float(v.temperature, "temperature"),
              topP: float(v["top-p"], "top-p"),
              topK,
              seed,
              stop: (v.stop as string[] | undefined) ?? [],
            },
          },
        },
        { priority: v.priority as number, idempotencyKey: (v["idempotency-key"] as string | undefined) ?? "", requirements: requirementsOf(v) },
      );
    },
  },
  "submit echo": {
    usage: "stepq submit echo [--text TEXT] [--tokens N] [options]",
    description: "Submits a diagnostic echo step (no model needed).",
    options: SUBMIT_ECHO_OPTIONS,
    run(v, _args, io) {
      return submitAndMaybeFollow(
        v,
        io,
        {
          kind: {
            case: "echo",
            value: {
              text: v.text as string,
              tokenCount: v.tokens as number,
              tokenDelayMs: v["token-delay"] as number,
              failMessage: (v.fail as string | undefined) ?? "",
            },
          },
        },
        { priority: v.priority as number, requirements: requirementsOf(v) },
      );
    },
  },
  get: {
    usage: "stepq get STEP_ID [--json]",
    description: "Prints a step: state, attempts, timings, error and result.",
    options: [...CONNECTION, JSON_OUT],
    async run(v, args, io) {
      const id = args[0];
      if (!id) throw new OptionError("give the step id: stepq get STEP_ID");
      const step = await clientOf(v).get(id);
      io.out.write(`${v.json ? stepJson(step) : describeStep(step)}\n`);
      return EXIT.OK;
    },
  },
  follow: {
    usage: "stepq follow STEP_ID [--after CURSOR] [--json]",
    description:
      "Streams a step's tokens to stdout and its narration to stderr until it ends, resuming by itself\n" +
      "after dropped connections. Exits 0 when the step succeeded, 1 when it failed or was cancelled.",
    options: [...CONNECTION, { flag: "after", kind: "string", help: "Resume after this cursor." }, JSON_OUT],
    async run(v, args, io) {
      const id = args[0];
      if (!id) throw new OptionError("give the step id: stepq follow STEP_ID");
      const client = clientOf(v);
      return finish(io, id, () =>
        followToTerminal(client, id, { out: io.out, err: io.err, afterCursor: v.after as string | undefined, json: v.json as boolean }),
      );
    },
  },
  cancel: {
    usage: "stepq cancel STEP_ID [--reason TEXT]",
    description: "Cancels a step that has not finished; a running step's worker stops it.",
    options: [...CONNECTION, { flag: "reason", kind: "string", default: "", help: "Why (kept in the step's error)." }, JSON_OUT],
    async run(v, args, io) {
      const id = args[0];
      if (!id) throw new OptionError("give the step id: stepq cancel STEP_ID");
      const step = await clientOf(v).cancel(id, v.reason as string);
      io.out.write(v.json ? `${stepJson(step)}\n` : `${step.id} ${stepStateName(step.state)}\n`);
      return EXIT.OK;
    },
  },
  stats: STATS_COMMAND(CONNECTION, JSON_OUT),
  list: {
    usage: "stepq list [--state STATE] [--route ROUTE] [--limit N] [--jobs]",
    description: "Lists steps (or jobs with --jobs), newest first.",
    options: [
      ...CONNECTION,
      { flag: "state", kind: "string", help: "queued, scheduled, waiting, running, succeeded, failed or cancelled." },
      { flag: "route", kind: "string", default: "", help: "Only steps of this route (e.g. infer:stepq-tiny)." },
      { flag: "limit", kind: "int", default: "20", help: "Most rows." },
      { flag: "jobs", kind: "bool", help: "List jobs instead of steps." },
    ],
    async run(v, _args, io) {
      const client = clientOf(v);
      const stateName = (v.state as string | undefined)?.toUpperCase();
      if (v.jobs) {
        const state = stateName ? (JobState as unknown as Record<string, number>)[stateName] : 0;
        if (state === undefined) throw new OptionError(`--state: unknown job state "${String(v.state)}"`);
        const res = await client.jobs.listJobs({ state, pageSize: v.limit as number });
        for (const j of res.jobs) io.out.write(`${jobRow(j)}\n`);
        return EXIT.OK;
      }
      const state = stateName ? (StepState as unknown as Record<string, number>)[stateName] : 0;
      if (state === undefined) throw new OptionError(`--state: unknown step state "${String(v.state)}"`);
      const res = await client.steps.listSteps({ state, route: v.route as string, pageSize: v.limit as number });
      for (const s of res.steps) io.out.write(`${stepRow(s)}\n`);
      if (res.steps.length === 0) io.err.write("no steps\n");
      return EXIT.OK;
    },
  },
};

/** Runs client command `name` with `argv`; maps errors to exit codes. */
export function runClientCommand(name: string, argv: string[], io: Io): Promise<number> {
  const cmd = CLIENT_COMMANDS[name] as Command;
  return runCommand(name, cmd, argv, io, (values, args) => cmd.run(values, args, io), (e, values) =>
    describeClientError(e, values.server as string),
  );
}

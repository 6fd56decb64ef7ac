/**
 * `stepq dev` and `stepq demo`: the whole system on one machine with no setup.
 */
import { mkdirSync } from "node:fs";
import { resolve } from "node:path";
import { createLogger } from "../../runtime/logger.js";
import type { OptionSpec } from "../../runtime/options.js";
import { modelOptions } from "../../worker/config.js";
import { buildEngines, parseModelSpec } from "../../worker/engines/index.js";
import { createStepqClient } from "../node/client.js";
import { finish } from "./client-commands.js";
import { type CommandSpec, type Io, runCommand } from "./command.js";
import { type DevStack, startDevStack } from "./dev-stack.js";
import { EXIT } from "./exit-codes.js";
import { followToTerminal } from "./follow-terminal.js";

const COMMON = modelOptions("tiny");

export const DEV_OPTIONS: OptionSpec[] = [
  { flag: "port", short: "p", env: "STEPQ_PORT", kind: "int", default: "8080", help: "API port (0: any free port)." },
  { flag: "concurrency", short: "c", env: "STEPQ_CONCURRENCY", kind: "int", default: "1", help: "Steps the worker runs at once." },
  ...COMMON,
];

export const DEMO_OPTIONS: OptionSpec[] = [
  ...COMMON,
  { flag: "prompt", kind: "string", default: "Once upon a time, a queue", help: "Prompt to complete." },
  { flag: "max-tokens", kind: "int", default: "48", help: "Tokens to generate." },
  { flag: "seed", kind: "int", default: "42", help: "Sampling seed." },
];

export const DEV_COMMAND: CommandSpec = {
  usage: "stepq dev [options]",
  description:
    "Runs everything on this machine: a private redis-server (started on a free port, data in\n" +
    "<data-dir>/redis, AOF on; or the Redis at REDIS_URL when set), the API server and one worker with\n" +
    "the echo and llama engines. Ctrl-C stops all of it.",
  options: DEV_OPTIONS,
};

export const DEMO_COMMAND: CommandSpec = {
  usage: "stepq demo [options]",
  description:
    "Starts the dev stack on free ports, submits an infer step, streams its tokens (stdout) and\n" +
    "narration (stderr), prints the result and stops everything. Exits 0 when the step succeeded.",
  options: DEMO_OPTIONS,
};

const TINY_NOTE =
  "the built-in tiny model (random weights: its text is gibberish). Pass --model path/to/model.gguf for real text.";

async function startFromOptions(v: Record<string, unknown>, io: Io, port: number, concurrency: number): Promise<DevStack> {
  const dataDir = resolve(v["data-dir"] as string);
  mkdirSync(dataDir, { recursive: true });
  const models = v.model as string[];
  const engines = await buildEngines(["echo", "llama"], { models, dataDir, threads: v.threads as number });
  // A terminal tool: the text format unless JSON is asked for.
  const logger = createLogger("dev", { level: (io.env.STEPQ_LOG_LEVEL as "info" | undefined) ?? "warn", json: io.env.STEPQ_LOG_FORMAT === "json" });
  return startDevStack({ dataDir, redisUrl: io.env.REDIS_URL || undefined, port, engines, concurrency, logger });
}

function modelLines(models: string[]): string[] {
  return models.map((m) => {
    const spec = parseModelSpec(m);
    return spec.path ? `${spec.name} (${spec.path})` : `${spec.name}: ${TINY_NOTE}`;
  });
}

/** Starts, prints where everything is, and runs until Ctrl-C. */
export async function runDev(v: Record<string, unknown>, io: Io): Promise<number> {
  const stack = await startFromOptions(v, io, v.port as number, v.concurrency as number);
  const models = v.model as string[];
  io.out.write(
    [
      "stepq dev is running",
      `  server  ${stack.server.url}  (Connect, gRPC and gRPC-Web; GET /healthz)`,
      `  dashboard ${stack.server.url}/  (open it in a browser)`,
      `  redis   ${stack.redisUrl}${stack.redis ? `  (private: data in ${stack.redis.dir}, AOF on)` : "  (from REDIS_URL)"}`,
      `  worker  ${stack.worker.id}: ${stack.worker.routes.join(", ")}`,
      ...modelLines(models).map((l) => `  model   ${l}`),
      "",
      `Try:   stepq submit infer --server ${stack.server.url} --model ${parseModelSpec(models[0] ?? "tiny").name} --prompt "Hello" --follow`,
      "Stop:  Ctrl-C",
      "",
    ].join("\n"),
  );
  await new Promise<void>((resolveStop) => {
    let signals = 0;
    const onSignal = () => {
      if (++signals === 1) {
        io.err.write("\nstopping: worker, server, redis...\n");
        resolveStop();
      } else process.exit(130);
    };
    process.on("SIGINT", onSignal);
    process.on("SIGTERM", onSignal);
  });
  await stack.stop();
  io.err.write("stopped\n");
  return EXIT.OK;
}

/** The demo: one infer step streamed to the terminal, then everything stopped. */
export async function runDemo(v: Record<string, unknown>, io: Io): Promise<number> {
  const stack = await startFromOptions(v, io, 0, 1);
  try {
    const models = v.model as string[];
    const spec = parseModelSpec(models[0] ?? "tiny");
    io.err.write(`stepq demo: redis ${stack.redisUrl}, server ${stack.server.url}, worker ${stack.worker.id}\n`);
    if (!spec.path) io.err.write(`note: using ${TINY_NOTE}\n`);
    const client = createStepqClient({ baseUrl: stack.server.url });
    const step = await client.submit({
      kind: {
        case: "infer",
        value: { model: spec.name, prompt: v.prompt as string, maxTokens: v["max-tokens"] as number, seed: v.seed as number, temperature: 0.8 },
      },
    });
    io.err.write(`submitted ${step.id} (route ${step.route}); streaming tokens to stdout, narration to stderr:\n\n`);
    return await finish(io, step.id, () => followToTerminal(client, step.id, { out: io.out, err: io.err }));
  } finally {
    await stack.stop();
  }
}

/** Parses and runs `dev` or `demo`. */
export function runDevCommand(name: "dev" | "demo", argv: string[], io: Io): Promise<number> {
  const spec = name === "dev" ? DEV_COMMAND : DEMO_COMMAND;
  return runCommand(
    name,
    spec,
    argv,
    io,
    (values) => (name === "dev" ? runDev(values, io) : runDemo(values, io)),
    (e) => ({ code: EXIT.FAILED, message: e instanceof Error ? e.message : String(e) }),
  );
}

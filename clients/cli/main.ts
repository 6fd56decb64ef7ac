#!/usr/bin/env node
/**
 * The `stepq` command (the package's bin): runs the system (dev, demo,
 * serve, worker) and talks to a running server (submit, get, follow,
 * cancel, list). `stepq <command> --help` describes each command.
 */
import { isMainModule } from "../../runtime/main-module.js";
import { runServerCommand, VERSION } from "../../server/main.js";
import { runWorkerCommand } from "../../worker/main.js";
import { CLIENT_COMMANDS, type Io, runClientCommand } from "./client-commands.js";
import { runConformanceCommand } from "./conformance-command.js";
import { runDevCommand } from "./dev-command.js";
import { runKeysCommand } from "./keys-command.js";
import { runTenantsCommand } from "./tenants-command.js";
import { EXIT } from "./exit-codes.js";

export const MAIN_HELP = `Usage: stepq <command> [options]

stepq is a Redis-backed job queue for AI inference with a Protobuf contract.

Run it:
  dev        Everything on this machine: a private Redis, the server and a worker (Ctrl-C stops it)
  demo       Start the dev stack, stream one infer step to the terminal, stop
  serve      The API server (Connect, gRPC, gRPC-Web on one port)
  worker     A worker (echo and llama engines)
  keys       API keys for --auth required: create, list, revoke (straight in Redis)
  tenants    Each tenant's load and quotas: list, set (straight in Redis)

Talk to a server (--server URL or STEPQ_SERVER, default http://127.0.0.1:8080):
  submit infer --prompt TEXT [--model M] [--follow]    Submit a text-generation step
  submit echo [--text TEXT] [--tokens N] [--follow]    Submit a diagnostic echo step
  get STEP_ID                                          Show a step
  follow STEP_ID                                       Stream its tokens (stdout) and narration (stderr)
  cancel STEP_ID                                       Cancel it
  list [--state S] [--route R] [--jobs]                List steps or jobs
  stats [--window MINUTES]                             Each route's steps by state, throughput, workers
  conformance [--url URL]                              Check a server against the contract's golden cases

"stepq <command> --help" shows a command's options.
Exit codes: 0 ok; 1 step failed/cancelled or error; 2 usage; 3 server or Redis unreachable;
4 not found; 5 request rejected.
`;

/** Runs `stepq` with `argv` (without node and the script). */
export async function main(argv: string[], io: Io): Promise<number> {
  const [command, ...rest] = argv;
  switch (command) {
    case undefined:
    case "help":
    case "--help":
    case "-h":
      io.out.write(MAIN_HELP);
      return command === undefined ? EXIT.USAGE : EXIT.OK;
    case "--version":
    case "version":
      io.out.write(`stepq ${VERSION}\n`);
      return EXIT.OK;
    case "dev":
    case "demo":
      return runDevCommand(command, rest, io);
    case "serve":
      return runServerCommand(rest);
    case "keys":
      return runKeysCommand(rest, io);
    case "tenants":
      return runTenantsCommand(rest, io);
    case "conformance":
      return runConformanceCommand(rest, io);
    case "worker":
      return runWorkerCommand(rest);
    case "submit": {
      const [kind, ...more] = rest;
      const name = `submit ${kind ?? ""}`;
      if (!(name in CLIENT_COMMANDS)) {
        io.err.write(`stepq submit: say what to submit: "stepq submit infer --prompt TEXT" or "stepq submit echo --text TEXT"\n`);
        return EXIT.USAGE;
      }
      return runClientCommand(name, more, io);
    }
    default:
      if (command in CLIENT_COMMANDS) return runClientCommand(command, rest, io);
      io.err.write(`stepq: unknown command "${command}"; see "stepq --help"\n`);
      return EXIT.USAGE;
  }
}

if (isMainModule(import.meta.url)) {
  main(process.argv.slice(2), { out: process.stdout, err: process.stderr, env: process.env }).then(
    (code) => {
      process.exitCode = code;
      // Let stdout drain, then leave even if a library keeps a handle open.
      setTimeout(() => process.exit(code), 50).unref();
    },
    (e: unknown) => {
      process.stderr.write(`stepq: ${(e as Error).stack ?? String(e)}\n`);
      process.exit(EXIT.FAILED);
    },
  );
}

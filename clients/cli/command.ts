/**
 * What every `stepq` subcommand does around its own work: parse flags (with
 * environment fallbacks), print --help, turn usage mistakes into exit code 2
 * and other failures into the exit code and one line `describe` chooses.
 */
import { helpText, type OptionSpec, OptionError, parseOptions } from "../../runtime/options.js";
import { EXIT } from "./exit-codes.js";

/** Where a command writes, and the environment it reads. */
export interface Io {
  out: NodeJS.WritableStream & { isTTY?: boolean };
  err: NodeJS.WritableStream & { isTTY?: boolean };
  env: NodeJS.ProcessEnv;
}

export interface CommandSpec {
  usage: string;
  description: string;
  options: readonly OptionSpec[];
}

/** Runs `run` with the parsed options of `spec`; see the module comment. */
export async function runCommand(
  name: string,
  spec: CommandSpec,
  argv: readonly string[],
  io: Io,
  run: (values: Record<string, unknown>, positionals: string[]) => Promise<number>,
  describe: (e: unknown, values: Record<string, unknown>) => { code: number; message: string },
): Promise<number> {
  const usage = (e: OptionError) => {
    io.err.write(`stepq ${name}: ${e.message}\n`);
    return EXIT.USAGE;
  };
  let parsed;
  try {
    parsed = parseOptions(spec.options, argv, io.env);
  } catch (e) {
    if (e instanceof OptionError) return usage(e);
    throw e;
  }
  if (parsed.help) {
    io.out.write(helpText(spec.usage, spec.description, spec.options));
    return EXIT.OK;
  }
  try {
    return await run(parsed.values, parsed.positionals);
  } catch (e) {
    if (e instanceof OptionError) return usage(e);
    const { code, message } = describe(e, parsed.values);
    io.err.write(`stepq ${name}: ${message}\n`);
    return code;
  }
}

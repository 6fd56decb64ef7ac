/**
 * Runs the `stepq` CLI from source in a child process, as a user would,
 * and returns its exit code and output.
 */
import { execFile } from "node:child_process";
import { join } from "node:path";
import { promisify } from "node:util";

const exec = promisify(execFile);
const root = join(import.meta.dirname, "../..");

export interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** `stepq ...args` with `env` added to this process's environment. */
export async function runStepq(args: readonly string[], env: Record<string, string>): Promise<CliResult> {
  try {
    const { stdout, stderr } = await exec(process.execPath, ["--import", "tsx", join(root, "clients/cli/main.ts"), ...args], {
      env: { ...process.env, ...env },
      cwd: root,
      timeout: 30_000,
    });
    return { code: 0, stdout, stderr };
  } catch (e) {
    const err = e as { code: number; stdout: string; stderr: string };
    return { code: err.code, stdout: err.stdout, stderr: err.stderr };
  }
}

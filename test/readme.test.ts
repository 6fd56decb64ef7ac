import { execFile } from "node:child_process";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { promisify } from "node:util";
import { describe, expect, it } from "vitest";
import { echo, useStack } from "./helpers/stack.js";

const run = promisify(execFile);
const root = join(import.meta.dirname, "..");
const readme = readFileSync(join(root, "README.md"), "utf8");

/** The shell commands of the first ```sh block after `heading`, one string each (continuations joined). */
function commandsUnder(heading: string): string[] {
  const at = readme.indexOf(heading);
  expect(at, `README has "${heading}"`).toBeGreaterThanOrEqual(0);
  const block = /```sh\n([\s\S]*?)```/.exec(readme.slice(at))?.[1] ?? "";
  const commands: string[] = [];
  let current = "";
  for (const line of block.split("\n")) {
    if (current === "" && (line.trim() === "" || line.trim().startsWith("#"))) continue;
    current += (current ? "\n" : "") + line;
    const quotes = (current.match(/'/g) ?? []).length;
    if (!line.endsWith("\\") && quotes % 2 === 0) {
      commands.push(current);
      current = "";
    }
  }
  return commands;
}

const stack = await useStack();
const worker = await stack.worker();
void worker.runForever();

describe("the README's examples work as written", () => {
  it("every curl example of the unary API answers 200 with JSON", async () => {
    const queued = await stack.client.submit({ kind: { case: "infer", value: { model: "nobody-runs-this", prompt: "x" } } });
    const failed = await stack.client.submit(echo({ failMessage: "x", failPermanently: true }));
    const dead = await stack.client.submit(echo({ failMessage: "y", failPermanently: true }));
    await stack.client.wait(failed.id);
    await stack.client.wait(dead.id);
    const ids: Record<string, string> = { STEP_ID: queued.id, JOB_ID: queued.jobId, FAILED_STEP_ID: failed.id, DEAD_STEP_ID: dead.id };

    const commands = commandsUnder("## The API with curl");
    const curls = commands.filter((c) => c.startsWith("curl"));
    expect(curls.length).toBe(15);
    expect(commands[0]).toBe("S=http://127.0.0.1:8080");
    const methods = new Set<string>();
    for (const original of curls) {
      const cmd = original.replace(/STEP_ID|JOB_ID|FAILED_STEP_ID|DEAD_STEP_ID/g, (m) => ids[m] as string);
      const { stdout } = await run("bash", ["-c", `set -e; S=${stack.server.url}; ${cmd} -w '\\n%{http_code}'`]);
      const lines = stdout.trimEnd().split("\n");
      const status = lines.pop();
      expect(status, `${original}\n${stdout}`).toBe("200");
      const body = JSON.parse(lines.join("\n")) as Record<string, unknown>;
      expect(body.code, original).toBeUndefined();
      methods.add(/\/stepq\.v1\.\w+\/(\w+)/.exec(original)?.[1] ?? "healthz");
    }
    // Every unary RPC of StepService, JobService and QueueService has an example.
    expect([...methods].sort()).toEqual(
      ["CancelJob", "CancelStep", "GetJob", "GetQueueStats", "GetStep", "ListJobs", "ListSteps", "ListWorkers", "PurgeStep", "RetryStep", "SubmitJob", "SubmitStep", "SubmitSteps", "healthz"].sort(),
    );
  }, 60_000);

  it("the buf curl examples stream a step's tokens and a job's output", async () => {
    const step = await stack.client.submit(echo({ text: "streamed by buf", tokenCount: 3 }));
    await stack.client.wait(step.id);
    const commands = commandsUnder("## Streaming").filter((c) => c.startsWith("npx buf curl"));
    expect(commands).toHaveLength(2);
    const outputs: string[] = [];
    for (const original of commands) {
      const cmd = original
        .replace(/STEP_ID/g, step.id)
        .replace(/JOB_ID/g, step.jobId)
        .replace("http://127.0.0.1:8080", stack.server.url);
      const { stdout } = await run("bash", ["-c", cmd], { cwd: root, env: { ...process.env, PATH: `${join(root, "node_modules/.bin")}:${process.env.PATH}` } });
      outputs.push(stdout);
    }
    expect(outputs[0]).toMatch(/"text": "streamed "/);
    expect(outputs[0]).toMatch(/"end"/);
    expect(outputs[1]).toMatch(/"jobEnd"/);
  }, 60_000);
});

/**
 * Issue 19, item 5: `stepq worker --models-dir DIR` serves every GGUF file
 * in a folder, each as its own routes (infer:<file name>, embed:<file
 * name>), next to --model; a folder without one, or a name given twice, is
 * a usage error naming the flag. Real GGUF files (the tiny model, written
 * twice) and the real worker command.
 */
import { copyFileSync, mkdirSync, mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { buildEngines } from "../worker/engines/index.js";
import { runStepq } from "./helpers/cli.js";
import { useTinyModel } from "./helpers/tiny-model.js";

const tiny = await useTinyModel();
const dir = mkdtempSync(join(tmpdir(), "stepq-models-"));
copyFileSync(tiny, join(dir, "alpha.gguf"));
copyFileSync(tiny, join(dir, "beta.GGUF"));
copyFileSync(tiny, join(dir, "notes.txt"));

describe("--models-dir", () => {
  it("serves every .gguf file of the folder as its own routes, next to --model", async () => {
    const [llama] = await buildEngines(["llama"], { models: [`gamma=${tiny}`], modelsDir: dir, dataDir: dir, threads: 1 });
    expect([...(llama?.routes() ?? [])].sort()).toEqual(["embed:alpha", "embed:beta", "embed:gamma", "infer:alpha", "infer:beta", "infer:gamma"]);
    await llama?.close?.();
  });

  it("refuses a folder without a GGUF file, and two models of one name, naming the flag", async () => {
    const empty = mkdtempSync(join(tmpdir(), "stepq-empty-"));
    mkdirSync(join(empty, "sub"));
    await expect(buildEngines(["llama"], { models: [], modelsDir: empty, dataDir: empty, threads: 1 })).rejects.toThrow(`--models-dir: ${empty} has no .gguf file`);
    await expect(buildEngines(["llama"], { models: [`alpha=${tiny}`], modelsDir: dir, dataDir: dir, threads: 1 })).rejects.toThrow('--model: two models are named "alpha"');
    const res = await runStepq(["worker", "--models-dir", join(dir, "missing")], {});
    expect(res.code).toBe(2);
    expect(res.stderr).toMatch(/--models-dir: cannot read .*missing/);
  });
});

/**
 * The tiny random-weight llama model for tests, written once per test file
 * into a fresh temporary folder (removed after the file's tests).
 */
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll } from "vitest";
import { ensureTinyModel } from "../../worker/engines/tiny-model.js";

/** Writes the tiny model for this file; returns its path. */
export async function useTinyModel(): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), "stepq-tiny-"));
  afterAll(() => rm(dir, { recursive: true, force: true }));
  return ensureTinyModel(dir);
}

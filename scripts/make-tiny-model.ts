#!/usr/bin/env -S npx tsx
// Writes the tiny random-weight llama GGUF that the llama engine's tests and
// the dev stack serve as "stepq-tiny" (no model can be downloaded there).
// Usage: npx tsx scripts/make-tiny-model.ts [path] (default .stepq/models/stepq-tiny.gguf)
import { stat } from "node:fs/promises";
import { resolve } from "node:path";
import { TINY_MODEL_NAME, writeTinyModel } from "../worker/engines/tiny-model.js";

const path = resolve(process.argv[2] ?? `.stepq/models/${TINY_MODEL_NAME}.gguf`);
await writeTinyModel(path);
const { size } = await stat(path);
console.log(`${path} (${size} bytes)`);

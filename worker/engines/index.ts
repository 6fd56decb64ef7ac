/**
 * Engines by name, for `--engines`, built from the worker's model options.
 */
import { readdirSync } from "node:fs";
import { join } from "node:path";
import { OptionError } from "../../runtime/options.js";
import { createEchoEngine } from "./echo.js";
import type { Engine } from "./engine.js";
import { createLlamaEngine } from "./llama.js";
import { createOpenAiEngine, modelMap } from "./openai.js";
import { ensureTinyModel, TINY_MODEL_NAME } from "./tiny-model.js";

export const ENGINE_NAMES = ["echo", "llama", "openai"] as const;

export interface EngineSettings {
  /**
   * GGUF models for the llama engine: "path/to/model.gguf" (its name is the
   * file name without .gguf), "name=path", or "tiny" for the built-in tiny
   * model (random weights) generated into `dataDir`.
   */
  models: readonly string[];
  /** Folder for generated models. */
  dataDir: string;
  /** A folder whose every .gguf file is a model, named after its file (--models-dir). */
  modelsDir?: string;
  /** CPU threads per generation (llama); 0: the engine's default. */
  threads: number;
  /** The openai engine's upstream (--upstream and its options). */
  upstream?: { baseUrl: string; apiKey?: string; models: string[]; embedModels: string[]; concurrency: number; timeoutMs: number };
}

/** A model spec parsed: its route name and file (undefined: the built-in tiny model). */
export function parseModelSpec(spec: string): { name: string; path?: string } {
  if (spec === "tiny") return { name: TINY_MODEL_NAME };
  const eq = spec.indexOf("=");
  if (eq > 0) return { name: spec.slice(0, eq), path: spec.slice(eq + 1) };
  const base = spec.split("/").pop() ?? spec;
  return { name: base.replace(/\.gguf$/i, ""), path: spec };
}

/** Builds the engines named in `names`. */
export async function buildEngines(names: readonly string[], settings: EngineSettings): Promise<Engine[]> {
  const engines: Engine[] = [];
  for (const name of names) {
    switch (name) {
      case "echo":
        engines.push(createEchoEngine());
        break;
      case "llama":
        engines.push(await buildLlama(settings));
        break;
      case "openai":
        engines.push(buildOpenAi(settings));
        break;
      default:
        throw new OptionError(`--engines: unknown engine "${name}"; available: ${ENGINE_NAMES.join(", ")}`);
    }
  }
  if (engines.length === 0) throw new OptionError("--engines: name at least one engine");
  return engines;
}

/** The .gguf files of `dir` as model specs, by name; an unreadable folder or one without any is a usage error. */
function modelsIn(dir: string): string[] {
  let files: string[];
  try {
    files = readdirSync(dir).filter((f) => f.toLowerCase().endsWith(".gguf"));
  } catch (e) {
    throw new OptionError(`--models-dir: cannot read ${dir}: ${(e as Error).message}`);
  }
  if (files.length === 0) throw new OptionError(`--models-dir: ${dir} has no .gguf file`);
  return files.sort().map((f) => join(dir, f));
}

async function buildLlama(settings: EngineSettings): Promise<Engine> {
  const specs = [...settings.models, ...(settings.modelsDir ? modelsIn(settings.modelsDir) : [])];
  if (specs.length === 0) {
    throw new OptionError("the llama engine needs --model (a GGUF file: path, or name=path; or 'tiny' for the built-in test model) or --models-dir");
  }
  const models = [];
  for (const spec of specs.map(parseModelSpec)) {
    models.push({ name: spec.name, path: spec.path ?? (await ensureTinyModel(join(settings.dataDir, "models"))) });
  }
  const names = models.map((m) => m.name);
  const twice = names.find((n, i) => names.indexOf(n) !== i);
  if (twice) throw new OptionError(`--model: two models are named "${twice}"; name them with name=path`);
  return createLlamaEngine({ models, threads: settings.threads || undefined });
}

function buildOpenAi(settings: EngineSettings): Engine {
  const u = settings.upstream;
  if (!u) throw new OptionError("the openai engine needs --upstream: an OpenAI-compatible server's base URL, e.g. http://gpu-1:8000/v1");
  try {
    new URL(u.baseUrl);
  } catch {
    throw new OptionError(`--upstream: "${u.baseUrl}" is not a URL`);
  }
  if (u.models.length + u.embedModels.length === 0) throw new OptionError("the openai engine needs --upstream-model or --upstream-embed-model: the models to serve");
  return createOpenAiEngine({ baseUrl: u.baseUrl, apiKey: u.apiKey, models: modelMap(u.models), embedModels: modelMap(u.embedModels), concurrency: u.concurrency, timeoutMs: u.timeoutMs });
}

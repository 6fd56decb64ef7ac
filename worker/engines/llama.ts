/**
 * The llama engine: real llama.cpp inference through node-llama-cpp, in the
 * worker's process. It serves "infer:<name>" and "embed:<name>" for each
 * configured GGUF model. The backend is opened once per engine (never built
 * from source), each model is loaded once on first use and shared by the
 * steps running at once, and every step gets a context of its own that is
 * freed when the step ends.
 */
import { constants } from "node:fs";
import { access } from "node:fs/promises";
import { availableParallelism } from "node:os";
import type { Llama } from "node-llama-cpp";
import { coerceError } from "../../queue/errors.js";
import type { ClaimedStep } from "../../queue/leases.js";
import { InvalidOperationError } from "../step-failure.js";
import type { Engine, EngineContext, EngineResult } from "./engine.js";
import { runEmbed } from "./llama-embed.js";
import { type LoadedModel, runInfer } from "./llama-infer.js";

/** A GGUF file served under a model name. */
export interface LlamaModelSpec {
  /** The name in operations and routes ("infer:<name>"). */
  name: string;
  path: string;
}

/** What a worker's llama engine serves and how it runs (flags map onto it). */
export interface LlamaEngineOptions {
  models: readonly LlamaModelSpec[];
  /** "auto" uses Metal, CUDA or Vulkan when a prebuilt backend for it loads, else the CPU. Default "auto". */
  gpu?: "auto" | false;
  /** CPU threads per step; unset or 0: {@link defaultLlamaThreads}. */
  threads?: number;
  /** Tokens per context. Default: the model's training context, at most 4,096. */
  contextSize?: number;
}

/**
 * CPU threads per step: one core is left to the worker's own event loop
 * (Redis, output streaming), and no more than 4. ggml's threads spin at a
 * barrier after every operation, so when they outnumber the free cores they
 * stall one another: on a 2-core machine the tiny model ran at ~1,700-2,600
 * tokens/s with 1 thread, ~140-280 with 2 and ~2 with 4 (node-llama-cpp's
 * own default on a CPU backend is max(cores, 4)).
 */
export function defaultLlamaThreads(cpus = availableParallelism()): number {
  return Math.min(4, Math.max(1, cpus - 1));
}

async function openLlama(gpu: "auto" | false): Promise<Llama> {
  // Imported on demand: node-llama-cpp takes ~0.3 s to import, which workers
  // without a llama engine should not pay.
  const { getLlama } = await import("node-llama-cpp");
  try {
    // build "never": "auto" would silently start a minutes-long source build
    // when no prebuilt binary fits.
    return await getLlama({ gpu, build: "never" });
  } catch (e) {
    throw new Error(
      `llama: no usable llama.cpp backend for ${process.platform}-${process.arch} (gpu: ${String(gpu)}); ` +
        `is the @node-llama-cpp prebuilt binary package installed? ${coerceError(e).message}`,
      { cause: e },
    );
  }
}

async function loadModel(llama: Llama, spec: LlamaModelSpec): Promise<LoadedModel> {
  try {
    await access(spec.path, constants.R_OK);
  } catch (e) {
    throw new InvalidOperationError(`model ${spec.name}: cannot read ${spec.path}: ${coerceError(e).message}`);
  }
  const { InsufficientMemoryError, resolveChatWrapper } = await import("node-llama-cpp");
  let model;
  try {
    model = await llama.loadModel({ modelPath: spec.path });
  } catch (e) {
    if (e instanceof InsufficientMemoryError) throw e; // the machine, not the file: another worker may manage
    throw new InvalidOperationError(`model ${spec.name}: ${spec.path} is not a loadable GGUF model: ${coerceError(e).message}`);
  }
  const chatWrapper = resolveChatWrapper(model);
  return { name: spec.name, path: spec.path, model, chatWrapper };
}

/** The llama engine: an Engine whose start() and close() always exist. */
export type LlamaEngine = Engine & Required<Pick<Engine, "start" | "close">>;

/** Creates the llama engine; `start()` opens the backend, models load on first use. */
export function createLlamaEngine(options: LlamaEngineOptions): LlamaEngine {
  const specs = new Map<string, LlamaModelSpec>();
  for (const spec of options.models) {
    if (spec.name === "" || specs.has(spec.name)) throw new Error(`llama: model names must be unique and non-empty ("${spec.name}")`);
    specs.set(spec.name, spec);
  }
  const threads = options.threads !== undefined && options.threads > 0 ? options.threads : defaultLlamaThreads();
  const gpu = options.gpu ?? "auto";
  let llama: Promise<Llama> | undefined;
  const models = new Map<string, Promise<LoadedModel>>();
  let closed = false;

  function backend(): Promise<Llama> {
    llama ??= openLlama(gpu).catch((e: unknown) => {
      llama = undefined; // let a later call try again
      throw e;
    });
    return llama;
  }

  /** The loaded model; the step that triggers the load narrates it, concurrent steps share the same load. */
  function model(name: string, ctx: EngineContext): Promise<LoadedModel> {
    const spec = specs.get(name);
    if (!spec) {
      return Promise.reject(new InvalidOperationError(`llama: no model named "${name}" here (serving: ${[...specs.keys()].join(", ")})`));
    }
    const loaded = models.get(name);
    if (loaded) return loaded;
    const started = Date.now();
    ctx.narrate(`loading model ${name}`);
    const loading = backend()
      .then((l) => loadModel(l, spec))
      .then((m) => {
        ctx.narrate(`model ${name} loaded in ${Date.now() - started} ms`);
        return m;
      });
    models.set(name, loading);
    // A failed load is forgotten, so fixing the file needs no worker restart.
    loading.catch(() => models.get(name) === loading && models.delete(name));
    return loading;
  }

  return {
    name: "llama",
    routes: () => [...specs.keys()].flatMap((name) => [`infer:${name}`, `embed:${name}`]),

    async start() {
      await backend(); // fail the worker's start, not every step, when llama.cpp cannot load
    },

    async run(step: ClaimedStep, ctx: EngineContext): Promise<EngineResult> {
      if (closed) throw new Error("llama engine is closed");
      const startedAt = Date.now();
      const k = step.operation.kind;
      switch (k.case) {
        case "infer":
          return runInfer(await model(k.value.model, ctx), k.value, ctx, { threads, contextSize: options.contextSize, startedAt });
        case "embed":
          return runEmbed(await model(k.value.model, ctx), k.value, ctx, { threads, contextSize: options.contextSize });
        default:
          throw new InvalidOperationError(`llama engine cannot run a ${k.case ?? "missing"} operation`);
      }
    },

    async close() {
      closed = true;
      const loaded = await Promise.allSettled(models.values());
      models.clear();
      for (const r of loaded) if (r.status === "fulfilled") await r.value.model.dispose();
      const l = await llama?.catch(() => undefined);
      llama = undefined;
      await l?.dispose();
    },
  };
}

/**
 * A tiny llama-architecture GGUF with seeded random weights, written here in
 * TypeScript. No model can be downloaded in CI or on a fresh laptop, yet the
 * llama engine must be exercised through real llama.cpp; this ~470 KB file
 * loads in milliseconds and generates printable text at over 500 tokens/s.
 *
 * Layout (GGUF v3, all f32): vocab 260 (<unk>, <s>, </s>, the 256 byte tokens
 * <0x00>..<0xFF>, and "▁"), context 256, embedding 64, 2 blocks, 4 heads, FFN
 * 128. Every token embedding carries a large constant in component 0, and the
 * output layer reads that component to favour printable ASCII and shun </s>,
 * so text runs to max_tokens instead of ending at once in invalid UTF-8.
 */
import { randomBytes } from "node:crypto";
import { access, mkdir, rename, rm, writeFile } from "node:fs/promises";
import { dirname, join } from "node:path";

/** The model name the tiny model is served under ("infer:stepq-tiny"). */
export const TINY_MODEL_NAME = "stepq-tiny";

const VOCAB = 260;
const CONTEXT = 256;
const EMBD = 64;
const LAYERS = 2;
const FFN = 128;
const HEADS = 4;
const ALIGN = 32;
const SPACE_TOKEN = 259;

/** GGUF metadata value types (gguf.h `gguf_type`). */
const T = { u32: 4, i32: 5, f32: 6, bool: 7, string: 8, array: 9 } as const;

type Meta =
  | { t: "u32" | "i32" | "f32"; v: number }
  | { t: "bool"; v: boolean }
  | { t: "string"; v: string }
  | { t: "strings"; v: string[] }
  | { t: "f32s"; v: number[] }
  | { t: "i32s"; v: number[] };

/** Little-endian byte sink for the GGUF header. */
class Bytes {
  private parts: Buffer[] = [];
  length = 0;
  push(b: Buffer): void {
    this.parts.push(b);
    this.length += b.length;
  }
  num(kind: "u32" | "i32" | "f32" | "u64", v: number): void {
    const b = Buffer.alloc(kind === "u64" ? 8 : 4);
    if (kind === "u32") b.writeUInt32LE(v);
    else if (kind === "i32") b.writeInt32LE(v);
    else if (kind === "f32") b.writeFloatLE(v);
    else b.writeBigUInt64LE(BigInt(v));
    this.push(b);
  }
  str(s: string): void {
    const b = Buffer.from(s, "utf8");
    this.num("u64", b.length);
    this.push(b);
  }
  pad(): void {
    const n = (ALIGN - (this.length % ALIGN)) % ALIGN;
    if (n > 0) this.push(Buffer.alloc(n));
  }
  concat(): Buffer {
    return Buffer.concat(this.parts, this.length);
  }
}

function writeMeta(out: Bytes, key: string, m: Meta): void {
  out.str(key);
  switch (m.t) {
    case "u32":
    case "i32":
    case "f32":
      out.num("u32", T[m.t]);
      out.num(m.t, m.v);
      break;
    case "bool":
      out.num("u32", T.bool);
      out.push(Buffer.from([m.v ? 1 : 0]));
      break;
    case "string":
      out.num("u32", T.string);
      out.str(m.v);
      break;
    case "strings":
      out.num("u32", T.array);
      out.num("u32", T.string);
      out.num("u64", m.v.length);
      for (const s of m.v) out.str(s);
      break;
    case "f32s":
    case "i32s":
      out.num("u32", T.array);
      out.num("u32", m.t === "f32s" ? T.f32 : T.i32);
      out.num("u64", m.v.length);
      for (const x of m.v) out.num(m.t === "f32s" ? "f32" : "i32", x);
      break;
  }
}

/** mulberry32: small, fast, and the same sequence on every platform. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const isPrintable = (id: number) => id === SPACE_TOKEN || (id >= 3 + 0x20 && id <= 3 + 0x7e);

/** The tensors, in file order: name, GGUF dims (ne0 first), f32 data. */
function tensors(seed: number, endsEarly: boolean): { name: string; dims: number[]; data: Float32Array }[] {
  const rand = prng(seed);
  const uniform = (n: number, scale: number) => Float32Array.from({ length: n }, () => (rand() * 2 - 1) * scale);
  const ones = (n: number) => new Float32Array(n).fill(1);
  // Component 0 of every embedding is a large constant that dominates the
  // residual stream, so after the final RMS norm it is ~sqrt(EMBD) for any input.
  const embd = uniform(EMBD * VOCAB, 0.5);
  for (let v = 0; v < VOCAB; v++) embd[v * EMBD] = 8;
  const output = uniform(EMBD * VOCAB, 0.25);
  for (let v = 0; v < VOCAB; v++) {
    // Logit offset ~ 8 * weight: printable +4, other tokens -4, and </s>
    // -24 (never) or, when it should end early, +7 (~1 in 5 at temperature 1).
    output[v * EMBD] = v === 2 ? (endsEarly ? 0.9 : -3) : isPrintable(v) ? 0.5 : -0.5;
  }
  const list = [
    { name: "token_embd.weight", dims: [EMBD, VOCAB], data: embd },
    { name: "output_norm.weight", dims: [EMBD], data: ones(EMBD) },
    { name: "output.weight", dims: [EMBD, VOCAB], data: output },
  ];
  for (let i = 0; i < LAYERS; i++) {
    const p = `blk.${i}.`;
    list.push(
      { name: `${p}attn_norm.weight`, dims: [EMBD], data: ones(EMBD) },
      { name: `${p}attn_q.weight`, dims: [EMBD, EMBD], data: uniform(EMBD * EMBD, 0.3) },
      { name: `${p}attn_k.weight`, dims: [EMBD, EMBD], data: uniform(EMBD * EMBD, 0.3) },
      { name: `${p}attn_v.weight`, dims: [EMBD, EMBD], data: uniform(EMBD * EMBD, 0.3) },
      { name: `${p}attn_output.weight`, dims: [EMBD, EMBD], data: uniform(EMBD * EMBD, 0.02) },
      { name: `${p}ffn_norm.weight`, dims: [EMBD], data: ones(EMBD) },
      { name: `${p}ffn_gate.weight`, dims: [EMBD, FFN], data: uniform(EMBD * FFN, 0.3) },
      { name: `${p}ffn_up.weight`, dims: [EMBD, FFN], data: uniform(EMBD * FFN, 0.3) },
      { name: `${p}ffn_down.weight`, dims: [FFN, EMBD], data: uniform(FFN * EMBD, 0.02) },
    );
  }
  return list;
}

function metadata(): [string, Meta][] {
  const tokens = ["<unk>", "<s>", "</s>"];
  for (let b = 0; b < 256; b++) tokens.push(`<0x${b.toString(16).toUpperCase().padStart(2, "0")}>`);
  tokens.push("▁");
  // llama_token_type: 1 normal, 2 unknown, 3 control, 6 byte.
  const types = tokens.map((_, id) => (id === 0 ? 2 : id < 3 ? 3 : id === SPACE_TOKEN ? 1 : 6));
  const u32 = (v: number): Meta => ({ t: "u32", v });
  return [
    ["general.architecture", { t: "string", v: "llama" }],
    ["general.name", { t: "string", v: TINY_MODEL_NAME }],
    ["general.alignment", u32(ALIGN)],
    ["general.file_type", u32(0)],
    ["llama.vocab_size", u32(VOCAB)],
    ["llama.context_length", u32(CONTEXT)],
    ["llama.embedding_length", u32(EMBD)],
    ["llama.block_count", u32(LAYERS)],
    ["llama.feed_forward_length", u32(FFN)],
    ["llama.attention.head_count", u32(HEADS)],
    ["llama.attention.head_count_kv", u32(HEADS)],
    ["llama.rope.dimension_count", u32(EMBD / HEADS)],
    ["llama.rope.freq_base", { t: "f32", v: 10000 }],
    ["llama.attention.layer_norm_rms_epsilon", { t: "f32", v: 1e-5 }],
    ["tokenizer.ggml.model", { t: "string", v: "llama" }],
    ["tokenizer.ggml.tokens", { t: "strings", v: tokens }],
    ["tokenizer.ggml.scores", { t: "f32s", v: tokens.map(() => 0) }],
    ["tokenizer.ggml.token_type", { t: "i32s", v: types }],
    ["tokenizer.ggml.unknown_token_id", u32(0)],
    ["tokenizer.ggml.bos_token_id", u32(1)],
    ["tokenizer.ggml.eos_token_id", u32(2)],
    ["tokenizer.ggml.add_bos_token", { t: "bool", v: true }],
    ["tokenizer.ggml.add_eos_token", { t: "bool", v: false }],
    ["tokenizer.ggml.add_space_prefix", { t: "bool", v: false }],
  ];
}

/** The whole GGUF file for `seed`: header, tensor infos, aligned tensor data. */
function buildGguf(seed: number, endsEarly: boolean): Buffer {
  const meta = metadata();
  const ts = tensors(seed, endsEarly);
  const out = new Bytes();
  out.push(Buffer.from("GGUF", "ascii"));
  out.num("u32", 3);
  out.num("u64", ts.length);
  out.num("u64", meta.length);
  for (const [key, m] of meta) writeMeta(out, key, m);
  let offset = 0;
  for (const t of ts) {
    out.str(t.name);
    out.num("u32", t.dims.length);
    for (const d of t.dims) out.num("u64", d);
    out.num("u32", 0); // GGML_TYPE_F32
    out.num("u64", offset);
    offset += Math.ceil(t.data.byteLength / ALIGN) * ALIGN;
  }
  out.pad();
  for (const t of ts) {
    out.push(Buffer.from(t.data.buffer, t.data.byteOffset, t.data.byteLength));
    out.pad();
  }
  return out.concat();
}

/** Options of {@link writeTinyModel}. */
export interface TinyModelOptions {
  /** Seeds the weights; the same seed gives the same bytes. Default 1. */
  seed?: number;
  /**
   * Favour </s> so that generations end by themselves after a few tokens,
   * which exercises the end-of-text path. Default false: text runs to max_tokens.
   */
  endsEarly?: boolean;
}

/**
 * Writes the tiny model to `path` (creating its folder). The file appears
 * atomically: it is written under a temporary name and renamed, so a
 * concurrent reader never sees half a model.
 */
export async function writeTinyModel(path: string, options: TinyModelOptions = {}): Promise<void> {
  await mkdir(dirname(path), { recursive: true });
  const tmp = `${path}.${process.pid}-${randomBytes(4).toString("hex")}.tmp`;
  try {
    await writeFile(tmp, buildGguf(options.seed ?? 1, options.endsEarly ?? false));
    await rename(tmp, path);
  } catch (e) {
    await rm(tmp, { force: true });
    throw e;
  }
}

/**
 * The path of `<dir>/stepq-tiny.gguf`, written first when missing. Tests and
 * dev stacks call it concurrently; the atomic write makes that safe (the
 * last rename wins with identical bytes).
 */
export async function ensureTinyModel(dir: string): Promise<string> {
  const path = join(dir, `${TINY_MODEL_NAME}.gguf`);
  try {
    await access(path);
  } catch {
    await writeTinyModel(path);
  }
  return path;
}

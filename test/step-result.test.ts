import { describe, expect, it } from "vitest";
import { StopReason } from "../gen/stepq/v1/step_pb.js";
import { encodeStepResult, encodeStepResultWithToBinary, type ResultFields } from "../wire/step-result.js";

/** The reference: protobuf-es's reflective encoder. */
const reference = encodeStepResultWithToBinary;

const base: ResultFields = {
  text: "",
  embeddings: [],
  promptTokens: 0,
  completionTokens: 0,
  timeToFirstTokenMs: 0,
  durationMs: 0,
  tokensPerSecond: 0,
  stopReason: StopReason.UNSPECIFIED,
};

describe("step results", () => {
  const cases: [string, Partial<ResultFields>][] = [
    ["all defaults", {}],
    ["a short ASCII text", { text: "hello", stopReason: StopReason.END_OF_TEXT }],
    ["multi-byte text", { text: "héllo wörld — 漢字 🙂" }],
    ["a text longer than 127 bytes", { text: "x".repeat(300) }],
    ["a text longer than 16 KiB", { text: "ab".repeat(10_000) }],
    ["every usage field", { promptTokens: 12, completionTokens: 200, timeToFirstTokenMs: 35, durationMs: 1234, tokensPerSecond: 171.3 }],
    ["values needing long varints", { promptTokens: 300, completionTokens: 70_000, durationMs: 4_000_000_000 }],
    ["a tokens/s value that is not a float32", { tokensPerSecond: 1 / 3 }],
    ["a max-tokens stop", { stopReason: StopReason.MAX_TOKENS, completionTokens: 256 }],
    ["embeddings", { embeddings: [[0.5, -1.25, 3], []], promptTokens: 4 }],
    ["a negative zero tokens/s", { tokensPerSecond: -0 }],
    ["a NaN tokens/s", { tokensPerSecond: Number.NaN }],
  ];
  for (const [name, fields] of cases) {
    it(`are encoded byte for byte as toBinary encodes them: ${name}`, () => {
      const r = { ...base, ...fields };
      expect(Buffer.from(encodeStepResult(r)).toString("hex")).toBe(Buffer.from(reference(r)).toString("hex"));
    });
  }

  it("are encoded as toBinary encodes them for many random results", () => {
    let seed = 7;
    const rnd = (n: number) => {
      seed = (seed * 1103515245 + 12345) % 2147483648;
      return seed % n;
    };
    for (let i = 0; i < 500; i++) {
      const r: ResultFields = {
        ...base,
        text: "é".repeat(rnd(3)) + "a".repeat(rnd(200)),
        promptTokens: rnd(2) ? rnd(100_000) : 0,
        completionTokens: rnd(2) ? rnd(100_000) : 0,
        timeToFirstTokenMs: rnd(2) ? rnd(10_000) : 0,
        durationMs: rnd(2) ? rnd(1_000_000) : 0,
        tokensPerSecond: rnd(2) ? rnd(100_000) / 7 : 0,
        stopReason: rnd(4),
      };
      expect(Buffer.from(encodeStepResult(r)).equals(Buffer.from(reference(r)))).toBe(true);
    }
  });
});

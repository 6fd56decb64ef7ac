import { create, toBinary } from "@bufbuild/protobuf";
import { describe, expect, it } from "vitest";
import { ChatRole, type Operation, OperationSchema } from "../gen/stepq/v1/operation_pb.js";
import { encodeOperation, SCHEMA_KNOWN } from "../wire/operation-encoding.js";

const hex = (b: Uint8Array) => Buffer.from(b).toString("hex");
const same = (op: Operation) => expect(hex(encodeOperation(op))).toBe(hex(toBinary(OperationSchema, op)));

describe("operations", () => {
  it("are encoded by hand while the generated schema is the one the encoder was written for", () => {
    expect(SCHEMA_KNOWN).toBe(true);
  });

  it("are encoded as toBinary encodes them: echo with every field, and with none", () => {
    same(create(OperationSchema, { kind: { case: "echo", value: {} } }));
    same(
      create(OperationSchema, {
        kind: {
          case: "echo",
          value: { text: "héllo 🙂", tokenCount: 300, tokenDelayMs: 5, delayMs: 70_000, failMessage: "no", failAttempts: 2, failPermanently: true },
        },
      }),
    );
  });

  it("are encoded as toBinary encodes them: infer with a prompt, chat messages, sampling and stops", () => {
    same(create(OperationSchema, { kind: { case: "infer", value: { model: "m", prompt: "p" } } }));
    same(
      create(OperationSchema, {
        kind: {
          case: "infer",
          value: {
            model: "llama-3:8b@q4",
            messages: [
              { role: ChatRole.SYSTEM, content: "be brief" },
              { role: ChatRole.USER, content: "x".repeat(200) },
              { role: ChatRole.UNSPECIFIED, content: "" },
            ],
            maxTokens: 256,
            temperature: 0,
            topP: 0.9,
            topK: 40,
            seed: 4_000_000_000,
            stop: ["\n", "", "END"],
          },
        },
      }),
    );
  });

  it("are encoded as toBinary encodes them: embed with empty and long inputs", () => {
    same(create(OperationSchema, { kind: { case: "embed", value: { model: "e5", inputs: ["", "a", "ü".repeat(5000)] } } }));
    same(create(OperationSchema, { kind: { case: "embed", value: {} } }));
  });

  it("are encoded as toBinary encodes them for many random operations", () => {
    let seed = 11;
    const rnd = (n: number) => {
      seed = (seed * 1103515245 + 12345) % 2147483648;
      return seed % n;
    };
    const text = () => "ab é".repeat(rnd(3)) + "z".repeat(rnd(300));
    for (let i = 0; i < 600; i++) {
      const kind = rnd(3);
      const op =
        kind === 0
          ? create(OperationSchema, {
              kind: {
                case: "echo",
                value: { text: text(), tokenCount: rnd(2) * rnd(1_000_000), delayMs: rnd(2) * rnd(300), failMessage: rnd(4) ? "" : text(), failPermanently: rnd(2) === 1 },
              },
            })
          : kind === 1
            ? create(OperationSchema, { kind: { case: "embed", value: { model: text(), inputs: Array.from({ length: rnd(4) }, text) } } })
            : create(OperationSchema, {
                kind: {
                  case: "infer",
                  value: {
                    model: text(),
                    prompt: rnd(2) ? text() : "",
                    messages: Array.from({ length: rnd(3) }, () => ({ role: rnd(4), content: text() })),
                    maxTokens: rnd(2) * rnd(40_000),
                    temperature: rnd(2) ? rnd(200) / 100 : undefined,
                    topP: rnd(2) ? rnd(100) / 100 : undefined,
                    topK: rnd(2) ? rnd(1000) : undefined,
                    seed: rnd(2) ? rnd(2_000_000_000) : undefined,
                    stop: Array.from({ length: rnd(3) }, text),
                  },
                },
              });
      expect(Buffer.from(encodeOperation(op)).equals(Buffer.from(toBinary(OperationSchema, op)))).toBe(true);
    }
  });

  it("that the hand-written encoder cannot write (negative numbers, unknown fields) are encoded by toBinary", () => {
    same(create(OperationSchema, { kind: { case: "infer", value: { model: "m", prompt: "p", maxTokens: -1, topK: -3 } } }));
    const withUnknown = create(OperationSchema, { kind: { case: "echo", value: { text: "t" } } });
    withUnknown.$unknown = [{ no: 99, wireType: 0, data: new Uint8Array([5]) }];
    same(withUnknown);
  });
});

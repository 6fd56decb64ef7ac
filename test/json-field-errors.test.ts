/**
 * JSON values of the wrong kind (a string for a number, true for an enum,
 * a bad timestamp...) are refused with the field's path and what it takes,
 * in every way JSON reaches the server: POST, GET with encoding=json, and
 * JSON streams. protobuf-es refuses them while parsing, before a handler
 * runs; server/json-field-error.ts turns its message into one naming the
 * field. (Split from bad-input.test.ts, which covers the other bad inputs.)
 */
import { fromJsonString } from "@bufbuild/protobuf";
import { UninterpretedOptionSchema } from "@bufbuild/protobuf/wkt";
import { Code } from "@connectrpc/connect";
import { describe, expect, it } from "vitest";
import { explainJsonError } from "../server/json-field-error.js";
import { expectJsonError, getJson } from "./helpers/json-rpc.js";
import { envelope, rawPost } from "./helpers/raw-rpc.js";
import { useStack } from "./helpers/stack.js";

const stack = await useStack({ limits: { maxOperationBytes: 64 * 1024, maxStepsPerJob: 5 }, maxRequestBytes: 1024 * 1024 });
const S = "stepq.v1.StepService";
const J = "stepq.v1.JobService";
const base = stack.server.url;

const expectError = (path: string, body: unknown, code: string, ...patterns: RegExp[]) => expectJsonError(base, path, body, code, ...patterns);

const infer = (v: Record<string, unknown>) => ({ operation: { infer: { model: "tiny", prompt: "hi", ...v } } });

describe("JSON values of the wrong kind name the field's path and what it takes", () => {
  // protobuf-es refuses these while parsing, before any handler runs, and
  // names a type (`cannot decode enum stepq.v1.ChatRole from JSON`), not a field.
  const cases: [string, string, unknown, RegExp][] = [
    ["an enum given as true", `${S}/ListSteps`, { state: true }, /^state: expected one of STEP_STATE_WAITING, .* \(or its number\), got true$/],
    [
      "an unknown enum name inside a list of messages",
      `${S}/SubmitStep`,
      infer({ prompt: "", messages: [{ role: "CHAT_ROLE_USER", content: "a" }, { role: "CHAT_ROLE_BOSS", content: "b" }] }),
      /^operation\.infer\.messages\[1\]\.role: unknown value "CHAT_ROLE_BOSS"; use one of CHAT_ROLE_SYSTEM, CHAT_ROLE_USER, CHAT_ROLE_ASSISTANT$/,
    ],
    [
      "a timestamp that is not RFC 3339",
      `${S}/SubmitStep`,
      { operation: { echo: {} }, notBefore: "yesterday" },
      /^not_before: "yesterday" is not a timestamp; send an RFC 3339 time in UTC such as "2026-01-31T09:30:00Z"/,
    ],
    ["a timestamp given as a number", `${J}/SubmitJob`, { steps: [{ name: "a", operation: { echo: {} } }], notBefore: 12 }, /^not_before: 12 is not a timestamp/],
    ["a string where an integer goes", `${S}/ListSteps`, { pageSize: "abc" }, /^page_size: expected an integer from -2147483648 to 2147483647, got "abc"$/],
    ["a number out of int32 range", `${J}/ListJobs`, { pageSize: 1e12 }, /^page_size: expected an integer from -2147483648 to 2147483647, got 1000000000000$/],
    ["a fraction where an integer goes", `${S}/ListSteps`, { pageSize: 1.5 }, /^page_size: expected an integer .*, got 1\.5$/],
    ["a negative unsigned integer", `${S}/SubmitStep`, { operation: { echo: {} }, retry: { maxAttempts: -1 } }, /^retry\.max_attempts: expected an integer from 0 to 4294967295, got -1$/],
    ["a string where a number goes", `${S}/SubmitStep`, infer({ temperature: "hot" }), /^operation\.infer\.temperature: expected a number \(32-bit float\), got "hot"$/],
    ["a number where a string goes", `${S}/SubmitStep`, { operation: { echo: { text: 5 } } }, /^operation\.echo\.text: expected a string, got 5$/],
    ["a map value of the wrong kind", `${S}/SubmitStep`, { operation: { echo: {} }, labels: { team: 5 } }, /^labels\["team"\]: expected a string, got 5$/],
    ["an object where a list goes", `${J}/SubmitJob`, { steps: { name: "a" } }, /^steps: expected a JSON array, got an object$/],
    [
      "a list item of the wrong kind, two levels down",
      `${J}/SubmitJob`,
      { steps: [{ name: "a", operation: { echo: {} } }, { name: "b", operation: { echo: {} }, dependsOn: ["a", 5] }] },
      /^steps\[1\]\.depends_on\[1\]: expected a string, got 5$/,
    ],
    ["a null list item", `${J}/SubmitJob`, { steps: [null] }, /^steps\[0\]: must not be null$/],
    [
      "two kinds of operation at once",
      `${S}/SubmitStep`,
      { operation: { echo: {}, infer: { model: "m", prompt: "p" } } },
      /^operation: has infer and echo; set exactly one of infer, embed, echo$/,
    ],
    ["one field under both of its names", `${S}/ListSteps`, { pageSize: 1, page_size: 2 }, /^page_size: set twice \(as "pageSize" and "page_size"\); send it once$/],
    ["an unknown field inside an operation", `${S}/SubmitStep`, { operation: { echo: { txt: "x" } } }, /^operation\.echo\.txt: unknown field; stepq\.v1\.EchoOperation has text, token_count/],
    ["an array instead of the request", `${S}/SubmitStep`, [], /^the request: expected a JSON object \(stepq\.v1\.SubmitStepRequest\), got an array$/],
    ["malformed JSON", `${S}/SubmitStep`, "{not json", /^the request body is not valid JSON \(.*\); send a JSON object with the fields of stepq\.v1\.SubmitStepRequest$/],
    ["a key given twice", `${S}/SubmitStep`, '{"operation":{"echo":{}},"operation":{"echo":{}}}', /^the request is not a valid stepq\.v1\.SubmitStepRequest in JSON: duplicate object key "operation"$/],
  ];
  for (const [what, path, body, pattern] of cases) {
    it(`${what} is INVALID_ARGUMENT naming the field`, () => expectError(path, body, "invalid_argument", pattern));
  }

  it("a bytes field that is not base64 names the field (no stepq request has one; the explainer is generic)", () => {
    const text = JSON.stringify({ name: [{ namePart: "a", isExtension: false }], stringValue: "%%% not base64" });
    let err: unknown;
    try {
      fromJsonString(UninterpretedOptionSchema, text);
    } catch (e) {
      err = e;
    }
    expect(explainJsonError(UninterpretedOptionSchema, text, err)).toBe('string_value: expected base64 text, got "%%% not base64"');
  });

  it("a JSON body that is not UTF-8 is INVALID_ARGUMENT", async () => {
    const res = await fetch(`${base}/${S}/GetStep`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: new Uint8Array([0x7b, 0x22, 0x73, 0x74, 0x65, 0x70, 0x49, 0x64, 0x22, 0x3a, 0x22, 0xff, 0xfe, 0x22, 0x7d]),
    });
    const reply = (await res.json()) as { code: string; message: string };
    expect(reply).toEqual({ code: "invalid_argument", message: "the request body is not valid UTF-8; send JSON encoded as UTF-8" });
  });

  it("a GET with encoding=json gets the same field-named message", async () => {
    const { status, body } = await getJson(base, `${S}/ListSteps`, { state: "STEP_STATE_BOGUS" });
    expect(status).toBe(400);
    expect(body.message).toMatch(/^state: unknown value "STEP_STATE_BOGUS"; use one of STEP_STATE_WAITING/);
  });

  it("a JSON stream request gets it too, with the index of the bad list item", async () => {
    const reply = await rawPost(base, `${S}/WatchSteps`, "connect-stream", envelope(JSON.stringify({ types: ["EVENT_TYPE_STEP_QUEUED", "EVENT_TYPE_NOPE"] })), {
      "content-type": "application/connect+json",
    });
    expect(reply.code).toBe(Code.InvalidArgument);
    expect(reply.message).toMatch(/^types\[1\]: unknown value "EVENT_TYPE_NOPE"; use one of EVENT_TYPE_/);
  });

  it("gRPC with JSON messages gets it too", async () => {
    const reply = await rawPost(base, `${S}/GetStep`, "grpc", envelope(JSON.stringify({ stepId: 7 })), { "content-type": "application/grpc+json" });
    expect(reply.code).toBe(Code.InvalidArgument);
    expect(reply.message).toBe("step_id: expected a string, got 7");
  });
});


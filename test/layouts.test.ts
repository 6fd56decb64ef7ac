/**
 * Every binary layout TypeScript and Lua exchange (wire/layouts.ts) against
 * Redis's own `struct`, and every hand-written reader and writer against the
 * declaration: a field added, moved or resized on one side fails here.
 */
import { create, toBinary } from "@bufbuild/protobuf";
import { describe, expect, it } from "vitest";
import { OperationSchema } from "../gen/stepq/v1/operation_pb.js";
import { StepResultSchema } from "../gen/stepq/v1/step_pb.js";
import { decodeClaimed } from "../queue/claimed-steps.js";
import { decodeJobRecord } from "../queue/job-record.js";
import { encodeAppends, encodeCompletions } from "../queue/lease-records.js";
import { type Lease, type OutputEntry, packOutput } from "../queue/leases.js";
import type { PreparedJob } from "../queue/prepare-job.js";
import { encodeSimpleBody } from "../queue/record-body.js";
import { encodeJobs } from "../queue/submit.js";
import { type FieldValue, fixedSize, type Layout, LAYOUTS, luaFormat, luaLayouts, offsetsOf, packLayout, unpackLayout } from "../wire/layouts.js";
import { pack } from "../wire/msgpack.js";
import { connect, useRedis } from "./helpers/redis.js";

const redis = await connect((await useRedis()).url);

const MAX: Record<string, number> = { u8: 0xff, u16: 0xffff, u32: 0xffffffff, i48: 2 ** 47 - 1 };
const LEN: Record<string, number> = { bytes8: 255, bytes16: 300, bytes32: 70_000 };

/** Values for every field of `l`: the smallest (`which` 0), the largest (1) or in between (2). */
function sample(l: Layout, which: 0 | 1 | 2): Record<string, FieldValue> {
  const values: Record<string, FieldValue> = {};
  l.fields.forEach(([name, t], i) => {
    if (t.startsWith("bytes")) {
      const n = which === 0 ? 0 : which === 1 ? (LEN[t] as number) : 3 + i;
      values[name] = Buffer.from(Array.from({ length: n }, (_, k) => (k * 7 + i) & 0xff)); // every byte value, 0x00 and 0xff among them
    } else {
      values[name] = which === 0 ? (t === "i48" ? -(2 ** 47) : 0) : which === 1 ? (MAX[t] as number) : 100 + i;
    }
  });
  return values;
}

/**
 * Unpacks ARGV[2] with layout ARGV[1] in Redis, packs the values again, and
 * for a fixed layout also reads each field alone at its generated position:
 * {repacked, bytes read, values..., field-by-field values...}.
 */
const ROUND_TRIP = `
${luaLayouts()}
local L = {${Object.keys(LAYOUTS).map((n) => `${n} = {${n}, ${LAYOUTS[n as keyof typeof LAYOUTS].fields.some(([, t]) => t.startsWith("bytes")) ? "nil" : `${n}_AT`}}`).join(", ")}}
local fmt, at = L[ARGV[1]][1], L[ARGV[1]][2]
local names, codes = cjson.decode(ARGV[3]), cjson.decode(ARGV[4])
local v = {struct.unpack(fmt, ARGV[2])}
local finish = table.remove(v)
local args = {}
for i = 1, #v do
  if type(v[i]) == 'string' then args[#args + 1] = #v[i] end
  args[#args + 1] = v[i]
end
local out = {struct.pack(fmt, unpack(args)), finish - 1}
for i = 1, #v do out[#out + 1] = v[i] end
if at then
  for i, name in ipairs(names) do
    if at[name] then out[#out + 1] = struct.unpack('<' .. codes[i], ARGV[2], at[name]) end
  end
end
return out
`;

function luaCodes(l: Layout): string[] {
  return l.fields.map((_, i) => luaFormat({ ...l, fields: [l.fields[i]!] }).slice(1));
}

const asBuffer = (v: FieldValue) => (typeof v === "number" ? v : Buffer.from(v));

describe("every layout", () => {
  for (const [name, l] of Object.entries(LAYOUTS) as [string, Layout][]) {
    it(`${name} reads and writes in Redis's struct exactly as packLayout and unpackLayout do`, async () => {
      for (const which of [0, 1, 2] as const) {
        const values = sample(l, which);
        const packed = packLayout(l, values);
        expect(unpackLayout(l, packed)).toEqual({ values: Object.fromEntries(Object.entries(values).map(([k, v]) => [k, asBuffer(v)])), end: packed.length });
        const names = l.fields.map(([n]) => n);
        const reply = (await redis.callBuffer("EVAL", ROUND_TRIP, 0, name, packed, JSON.stringify(names), JSON.stringify(luaCodes(l)))) as unknown[];
        expect(reply[0]).toEqual(packed);
        expect(reply[1]).toBe(packed.length);
        const fromLua = reply.slice(2, 2 + names.length);
        expect(fromLua).toEqual(names.map((n) => asBuffer(values[n]!)));
        if (!l.fields.some(([, t]) => t.startsWith("bytes"))) {
          expect(packed.length).toBe(fixedSize(l));
          // Only fields with Lua names have a generated position (HEADERS_1's step.* do not).
          const atLua = reply.slice(2 + names.length);
          const expected = names.filter((n) => /^[a-zA-Z]\w*$/.test(n)).map((n) => values[n]);
          expect(atLua).toEqual(expected);
          const offsets = offsetsOf(l) as Record<string, number>;
          for (const [n, t] of l.fields) if (n in offsets) expect(unpackLayout({ ...l, fields: [[n, t]] }, packed, offsets[n]).values[n]).toBe(values[n]);
        }
      }
    });
  }

  it("packLayout refuses bytes too long for their length field, and unpackLayout bytes that run past the end", () => {
    const values = { ...sample(LAYOUTS.APPEND, 2), jobId: Buffer.alloc(256) };
    expect(() => packLayout(LAYOUTS.APPEND, values)).toThrow("APPEND.jobId: 256 bytes do not fit bytes8");
    const packed = packLayout(LAYOUTS.APPEND, sample(LAYOUTS.APPEND, 2));
    expect(() => unpackLayout(LAYOUTS.APPEND, packed.subarray(0, packed.length - 1))).toThrow("APPEND.output: 7 bytes run past the end");
  });
});

const lease = (jobId: string, index: number, attempt: number): Lease => ({ jobId, index, attempt, stepId: `${jobId}.${index}`, member: `${jobId}.${index}|${attempt}` });
const entries: OutputEntry[] = [
  { kind: "tokens", firstIndex: 4, texts: ["he", "llo"] },
  { kind: "narration", level: 2, text: "thinking" },
];
const result = toBinary(StepResultSchema, create(StepResultSchema, { text: "done" }));

describe("the hand-written writers", () => {
  it("encodeJobs writes JOB_SPEC records", () => {
    const jobs = [
      { kind: 1, tenant: 0, x: "abcdefgh", retentionMs: 86_400_000, body: Buffer.from([1, 2, 3]) },
      { kind: 2, tenant: 65_535, x: "ijklmnop", idempotencyKey: "order-7", digest: "d1g3st", retentionMs: 2 ** 47 - 1, body: Buffer.alloc(0) },
    ] as PreparedJob[];
    const expected = jobs.map((j) =>
      packLayout(LAYOUTS.JOB_SPEC, {
        kind: j.kind,
        tenant: j.tenant,
        jobId: Buffer.from(j.x, "latin1"),
        idempotencyKey: Buffer.from(j.idempotencyKey ?? "", "latin1"),
        requestDigest: Buffer.from(j.digest ?? "", "latin1"),
        retentionMs: j.retentionMs,
        body: j.body,
      }),
    );
    expect(encodeJobs(jobs)).toEqual(Buffer.concat(expected));
  });

  it("encodeAppends writes APPEND records and encodeCompletions COMPLETION records", () => {
    const a = lease("00000001abcdefgh", 0, 1);
    const b = lease("00000002abcdefgh", 65_535, 4_000_000_000);
    const appends = [
      { lease: a, batch: { firstSeq: 0, entries } },
      { lease: b, batch: { firstSeq: 9, entries: [] } },
    ];
    const head = (l: Lease, firstSeq: number) => ({ jobId: Buffer.from(l.jobId), stepIndex: l.index, attempt: l.attempt, firstSeq });
    expect(encodeAppends(appends)).toEqual(
      Buffer.concat(appends.map((x) => packLayout(LAYOUTS.APPEND, { ...head(x.lease, x.batch.firstSeq), output: packOutput(x.batch.entries) }))),
    );
    const completions = [
      { step: a, result, trailing: { firstSeq: 3, entries } },
      { step: b, result: new Uint8Array(), trailing: { firstSeq: 0, entries: [] } },
    ];
    expect(encodeCompletions(completions)).toEqual(
      Buffer.concat(
        completions.map((c) =>
          packLayout(LAYOUTS.COMPLETION, { ...head(c.step, c.trailing.firstSeq), result: c.result, output: packOutput(c.trailing.entries) }),
        ),
      ),
    );
  });

  it("encodeSimpleBody starts with the step's SPEC", () => {
    const operation = toBinary(OperationSchema, create(OperationSchema, { kind: { case: "echo", value: { text: "hi" } } }));
    const body = encodeSimpleBody({
      name: "main",
      route: "echo/ünï",
      operation,
      timeoutMs: 1234,
      maxAttempts: 3,
      backoffInitialMs: 1000,
      backoffMaxMs: 60000,
      labels: [],
      failurePolicy: 0,
    });
    const spec = packLayout(LAYOUTS.SPEC, { name: Buffer.from("main"), route: Buffer.from("echo/ünï"), operation, timeoutMs: 1234 });
    expect(body.subarray(0, spec.length)).toEqual(spec);
    expect(body.subarray(spec.length)).toEqual(Buffer.from([0x80])); // the cold map: empty
  });
});

describe("the hand-written readers", () => {
  it("decodeClaimed reads CLAIMED records", () => {
    const op = create(OperationSchema, { kind: { case: "echo", value: { text: "hi" } } });
    const deps = pack([{ n: "first", rs: Buffer.from(result) }]);
    const records = [
      { jobId: "00000001abcdefgh", stepIndex: 0, attempt: 1, leaseDeadline: 1_800_000_000_000, submittedAt: 1_799_999_999_000, readyAt: 1_799_999_999_500, traceparent: "", name: "main", route: "echo", timeoutMs: 0, dependencies: Buffer.alloc(0) },
      { jobId: "00000002abcdefgh", stepIndex: 65_535, attempt: 4_000_000_000, leaseDeadline: 2 ** 47 - 1, submittedAt: 2 ** 47 - 2, readyAt: 2 ** 47 - 3, traceparent: "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01", name: "second", route: "ünï", timeoutMs: 99, dependencies: deps },
    ];
    const blob = Buffer.concat(
      records.map((r) =>
        packLayout(LAYOUTS.CLAIMED, { ...r, jobId: Buffer.from(r.jobId), traceparent: Buffer.from(r.traceparent), name: Buffer.from(r.name), route: Buffer.from(r.route), operation: toBinary(OperationSchema, op) }),
      ),
    );
    const claimed = decodeClaimed(blob, 2, 1 << 20);
    expect(claimed.map((c) => [c.jobId, c.index, c.attempt, c.leaseDeadline, c.submittedAt, c.readyAt, c.traceparent, c.name, c.route, c.timeoutMs, c.operation.kind.case])).toEqual(
      records.map((r) => [r.jobId, r.stepIndex, r.attempt, r.leaseDeadline, r.submittedAt, r.readyAt, r.traceparent || undefined, r.name, r.route, r.timeoutMs, "echo"]),
    );
    expect(claimed[1]!.dependencies.map((d) => [d.name, d.result.text])).toEqual([["first", "done"]]);
  });

  it("decodeJobRecord reads JOB_HDR, STEP_HDR and SPEC", () => {
    const hdr = { format: 2, flags: 1, state: 3, steps: 1, createdAt: 1_700_000_000_001, startedAt: 1_700_000_000_002, finishedAt: 1_700_000_000_003, retentionMs: 5000, indexSeq: 7, tenant: 513 };
    const step = { state: 4, queuedIn: 1, flags: 0, attempt: 3, leaseDeadline: 1_700_000_000_004, startedAt: 1_700_000_000_005, finishedAt: 1_700_000_000_006 };
    const operation = toBinary(OperationSchema, create(OperationSchema, { kind: { case: "echo", value: { text: "x" } } }));
    const raw = Buffer.concat([
      packLayout(LAYOUTS.JOB_HDR, hdr),
      packLayout(LAYOUTS.STEP_HDR, step),
      packLayout(LAYOUTS.SPEC, { name: Buffer.from("main"), route: Buffer.from("echo"), operation, timeoutMs: 250 }),
      Buffer.from([0x80]),
    ]);
    const job = decodeJobRecord("00000001abcdefgh", raw);
    expect([job.state, job.createdAt, job.startedAt, job.finishedAt, job.expiresAt, job.hasLog, job.tenant]).toEqual([
      3, hdr.createdAt, hdr.startedAt, hdr.finishedAt, hdr.finishedAt + 5000, true, 513,
    ]);
    const s = job.steps[0]!;
    expect([s.state, s.attempt, s.leaseDeadline, s.startedAt, s.finishedAt, s.name, s.route, s.timeoutMs]).toEqual([
      4, 3, step.leaseDeadline, step.startedAt, step.finishedAt, "main", "echo", 250,
    ]);
    expect(Buffer.from(s.operation)).toEqual(Buffer.from(operation));
  });
});

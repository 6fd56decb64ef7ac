/**
 * Runs one corpus case against a server: builds the request from its JSON
 * (strictly: an unknown field in the corpus is a corpus error), calls the
 * RPC with Connect's JSON encoding, and holds the answer to the golden
 * (match-json.ts). A case that needs what the server lacks is skipped.
 */
import { type DescMethod, type DescService, fromJson, type JsonValue, toJson } from "@bufbuild/protobuf";
import { type Client, ConnectError, createClient, type Transport } from "@connectrpc/connect";
import { codeToString } from "@connectrpc/connect/protocol-connect";
import type { CorpusCase, Need } from "./corpus.js";
import { mismatches, substitute } from "./match-json.js";

export interface CaseOutcome {
  /** `Service.Method`. */
  rpc: string;
  name: string;
  status: "pass" | "fail" | "skip";
  /** Why it failed or was skipped. */
  detail: string[];
}

/** How long an `until` case keeps asking, and how long any call may take. */
const UNTIL_MS = 15_000;
const CALL_MS = 15_000;

type AnyClient = Record<string, (req: unknown, options: { signal: AbortSignal }) => unknown>;

/** The JSON of the RPC's answer: a unary response, or a stream's messages. */
async function call(client: Client<DescService>, method: DescMethod, request: unknown): Promise<JsonValue | JsonValue[]> {
  const fn = (client as unknown as AnyClient)[method.localName] as AnyClient[string];
  const message = fromJson(method.input, request as JsonValue, { ignoreUnknownFields: false });
  const signal = AbortSignal.timeout(CALL_MS);
  if (method.methodKind === "unary") return toJson(method.output, (await fn(message, { signal })) as never);
  const out: JsonValue[] = [];
  for await (const m of fn(message, { signal }) as AsyncIterable<never>) out.push(toJson(method.output, m));
  return out;
}

/** The text of a stream's token messages. */
function tokenText(messages: JsonValue[]): string {
  return messages
    .map((m) => ((m as { tokens?: { tokens?: { text?: string }[] } }).tokens?.tokens ?? []).map((t) => t.text ?? "").join(""))
    .join("");
}

function check(c: CorpusCase, vars: Record<string, unknown>, answer: JsonValue | JsonValue[]): string[] {
  if (c.stream) {
    const messages = answer as JsonValue[];
    const s = substitute(c.stream, vars) as NonNullable<CorpusCase["stream"]>;
    return [
      ...(s.first !== undefined ? mismatches(s.first, messages[0], "first") : []),
      ...(s.last !== undefined ? mismatches(s.last, messages.at(-1), "last") : []),
      ...(s.text !== undefined && tokenText(messages) !== s.text ? [`text: expected ${JSON.stringify(s.text)}, got ${JSON.stringify(tokenText(messages))}`] : []),
    ];
  }
  if (c.error) return [`expected the error ${c.error.code}, got an answer: ${JSON.stringify(answer).slice(0, 300)}`];
  return mismatches(substitute(c.response ?? {}, vars), answer);
}

function checkError(c: CorpusCase, e: unknown): string[] {
  const err = ConnectError.from(e);
  if (!c.error) return [`unexpected error ${codeToString(err.code)}: ${err.rawMessage}`];
  const out: string[] = [];
  if (codeToString(err.code) !== c.error.code) out.push(`expected the error ${c.error.code}, got ${codeToString(err.code)}: ${err.rawMessage}`);
  if (!err.rawMessage.includes(c.error.message)) out.push(`expected an error message containing ${JSON.stringify(c.error.message)}, got ${JSON.stringify(err.rawMessage)}`);
  return out;
}

/** Runs `c` (of `service`), recording its answer in `vars` under its name. */
export async function runCase(c: CorpusCase, service: DescService, transport: Transport, vars: Record<string, unknown>, has: ReadonlySet<Need>): Promise<CaseOutcome> {
  const rpc = `${service.name}.${c.method}`;
  const outcome = (status: CaseOutcome["status"], detail: string[]): CaseOutcome => ({ rpc, name: c.name, status, detail });
  if (c.needs && !has.has(c.needs)) return outcome("skip", [c.needs === "echo" ? "no live worker serves the echo route" : "needs an admin key (--api-key)"]);
  const method = service.methods.find((m) => m.name === c.method);
  if (!method) return outcome("fail", [`${service.typeName} has no method ${c.method}`]);
  const client = createClient(service, transport);
  const deadline = Date.now() + (c.until ? UNTIL_MS : 0);
  for (;;) {
    let problems: string[];
    try {
      const request = substitute(c.request, vars);
      const answer = await call(client, method, request);
      vars[c.name] = answer;
      problems = check(c, vars, answer);
    } catch (e) {
      problems = e instanceof ConnectError || (e as Error)?.name === "ConnectError" ? checkError(c, e) : [(e as Error).message];
    }
    if (problems.length === 0) return outcome("pass", []);
    if (Date.now() >= deadline) return outcome("fail", problems);
    await new Promise((r) => setTimeout(r, 200));
  }
}

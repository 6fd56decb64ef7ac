/**
 * Unary Connect calls with plain fetch and JSON: exactly what curl sends.
 */
import { expect } from "vitest";
export interface JsonReply {
  status: number;
  body: Record<string, unknown> & { code?: string; message?: string };
}

/** POSTs `body` as JSON to `<base>/<service>/<method>`. */
export async function postJson(base: string, path: string, body: unknown): Promise<JsonReply> {
  const res = await fetch(`${base}/${path}`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: typeof body === "string" ? body : JSON.stringify(body),
  });
  return { status: res.status, body: (await res.json()) as JsonReply["body"] };
}

/** GETs a NO_SIDE_EFFECTS RPC with the message in the query string. */
export async function getJson(base: string, path: string, body: unknown): Promise<JsonReply> {
  const q = new URLSearchParams({ encoding: "json", message: JSON.stringify(body) });
  const res = await fetch(`${base}/${path}?${q}`);
  return { status: res.status, body: (await res.json()) as JsonReply["body"] };
}

/** POSTs `body` and expects a Connect JSON error with `code` and a message matching every pattern. */
export async function expectJsonError(base: string, path: string, body: unknown, code: string, ...patterns: RegExp[]): Promise<void> {
  const { status, body: reply } = await postJson(base, path, body);
  expect(reply.code, JSON.stringify(reply)).toBe(code);
  expect(status).toBeGreaterThanOrEqual(400);
  for (const p of patterns) expect(reply.message).toMatch(p);
}

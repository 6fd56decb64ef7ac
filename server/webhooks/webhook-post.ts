/**
 * One delivery attempt: a signed POST of the delivery's JSON body to the
 * webhook's URL, with a timeout, and what came of it (the status, the start
 * of the answer, the time it took). Any 2xx is received; anything else, no
 * answer or the timeout, is a failed attempt.
 */
import { request as httpRequest } from "node:http";
import { request as httpsRequest } from "node:https";
import type { LookupFunction } from "node:net";
import type { WebhookRecord } from "../../queue/webhooks.js";
import { privateTarget, publicOnlyLookup } from "./webhook-targets.js";
import { signatureHeaders } from "./webhook-signature.js";

export interface Attempt {
  id: string;
  eventName: string;
  ok: boolean;
  responseCode: number;
  responseBody: string;
  error: string;
  latencyMs: number;
  /** Unix ms when it ended. */
  time: number;
  /** Seconds the receiver asked to wait (Retry-After), if it did. */
  retryAfterS?: number;
}

const BODY_CUT = 512;

/** How deliveries are posted: the attempt's timeout, and whether private addresses are allowed targets (webhook-targets.ts). */
export interface PostOptions {
  timeoutMs: number;
  privateTargets: boolean;
}

/**
 * Posts `d` to `webhook`; `stop` aborts it (the server is closing). Node's
 * http(s).request rather than fetch: its `lookup` is where the address a
 * delivery connects to is checked (webhook-targets.ts).
 */
export async function postDelivery(webhook: WebhookRecord, d: { id: string; body: string; eventName: string }, o: PostOptions, stop?: AbortSignal): Promise<Attempt> {
  const started = Date.now();
  const base = { id: d.id, eventName: d.eventName };
  const failed = (error: string): Attempt => ({ ...base, ok: false, responseCode: 0, responseBody: "", error, latencyMs: Date.now() - started, time: Date.now() });
  const url = new URL(webhook.url);
  if (!o.privateTargets) {
    const why = privateTarget(url);
    if (why) return failed(why);
  }
  const signal = stop ? AbortSignal.any([stop, AbortSignal.timeout(o.timeoutMs)]) : AbortSignal.timeout(o.timeoutMs);
  const headers = { "content-type": "application/json", "user-agent": "stepq-webhooks", ...signatureHeaders(webhook.secret, d.id, d.body, Math.floor(Date.now() / 1000)) };
  try {
    const res = await send(url, headers, d.body, signal, o.privateTargets ? undefined : publicOnlyLookup);
    const ok = res.status >= 200 && res.status < 300;
    const retryAfter = Number(res.retryAfter);
    return {
      ...base,
      ok,
      responseCode: res.status,
      responseBody: res.body,
      error: ok ? "" : `the receiver answered ${res.status}`,
      latencyMs: Date.now() - started,
      time: Date.now(),
      ...(Number.isFinite(retryAfter) && retryAfter > 0 ? { retryAfterS: retryAfter } : {}),
    };
  } catch (e) {
    const err = e as Error & { code?: string };
    if (signal.aborted && !stop?.aborted) return failed(`no answer within ${o.timeoutMs} ms`);
    return failed(err.code === "EPRIVATETARGET" ? err.message : `${err.code ?? err.name}: ${err.message}`);
  }
}

/** One POST: the status, the first BODY_CUT characters of the answer, and its Retry-After. */
function send(url: URL, headers: Record<string, string>, body: string, signal: AbortSignal, lookup: LookupFunction | undefined): Promise<{ status: number; body: string; retryAfter: string | undefined }> {
  return new Promise((resolve, reject) => {
    const request = url.protocol === "https:" ? httpsRequest : httpRequest;
    const req = request(url, { method: "POST", headers: { ...headers, "content-length": Buffer.byteLength(body) }, signal, ...(lookup ? { lookup } : {}) }, (res) => {
      let text = "";
      res.setEncoding("utf8");
      res.on("data", (chunk: string) => {
        if (text.length < BODY_CUT) text += chunk;
      });
      res.on("end", () => resolve({ status: res.statusCode ?? 0, body: text.slice(0, BODY_CUT), retryAfter: res.headers["retry-after"] }));
      res.on("error", reject);
    });
    req.on("error", reject);
    req.end(body);
  });
}

/**
 * One delivery attempt: a signed POST of the delivery's JSON body to the
 * webhook's URL, with a timeout, and what came of it (the status, the start
 * of the answer, the time it took). Any 2xx is received; anything else, no
 * answer or the timeout, is a failed attempt.
 */
import type { WebhookRecord } from "../../queue/webhooks.js";
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

/** Posts `d` to `webhook`; `stop` aborts it (the server is closing). */
export async function postDelivery(webhook: WebhookRecord, d: { id: string; body: string; eventName: string }, timeoutMs: number, stop?: AbortSignal): Promise<Attempt> {
  const started = Date.now();
  const base = { id: d.id, eventName: d.eventName };
  try {
    const res = await fetch(webhook.url, {
      method: "POST",
      headers: { "content-type": "application/json", "user-agent": "stepq-webhooks", ...signatureHeaders(webhook.secret, d.id, d.body, Math.floor(Date.now() / 1000)) },
      body: d.body,
      redirect: "manual",
      signal: stop ? AbortSignal.any([stop, AbortSignal.timeout(timeoutMs)]) : AbortSignal.timeout(timeoutMs),
    });
    const text = (await res.text().catch(() => "")).slice(0, BODY_CUT);
    const ok = res.status >= 200 && res.status < 300;
    const retryAfter = Number(res.headers.get("retry-after"));
    return {
      ...base,
      ok,
      responseCode: res.status,
      responseBody: text,
      error: ok ? "" : `the receiver answered ${res.status}`,
      latencyMs: Date.now() - started,
      time: Date.now(),
      ...(Number.isFinite(retryAfter) && retryAfter > 0 ? { retryAfterS: retryAfter } : {}),
    };
  } catch (e) {
    const err = e as Error & { cause?: { code?: string } };
    const why = err.name === "TimeoutError" ? `no answer within ${timeoutMs} ms` : `${err.cause?.code ?? err.name}: ${err.message}`;
    return { ...base, ok: false, responseCode: 0, responseBody: "", error: why, latencyMs: Date.now() - started, time: Date.now() };
  }
}

/**
 * How deliveries are signed (docs/webhooks.md has the receiver's side, a
 * snippet test/webhooks.test.ts runs): HMAC-SHA256 with the webhook's
 * secret over `<delivery id>.<unix seconds>.<body>`, sent as
 *
 *   webhook-id: <delivery id>          the same on every attempt: de-duplicate by it
 *   webhook-timestamp: <unix seconds>  when this attempt was signed: refuse old ones (replays)
 *   webhook-signature: v1=<hex digest>
 */
import { createHmac } from "node:crypto";

export function signatureHeaders(secret: string, id: string, body: string, nowSeconds: number): Record<string, string> {
  const digest = createHmac("sha256", secret).update(`${id}.${nowSeconds}.${body}`).digest("hex");
  return { "webhook-id": id, "webhook-timestamp": String(nowSeconds), "webhook-signature": `v1=${digest}` };
}

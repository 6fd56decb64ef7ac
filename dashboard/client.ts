/**
 * The dashboard's one stepq client: the browser client (clients/web) on
 * this page's own server, with the API key the operator gave (kept in
 * sessionStorage, for this tab only), and the server's error text for any
 * failure, to show as it is.
 */
import { ConnectError } from "@connectrpc/connect";
import { createStepqWebClient, type StepqWebClient } from "../clients/web/index.js";

const KEY = "stepq.apiKey";

export function apiKey(): string {
  return sessionStorage.getItem(KEY) ?? "";
}

export function setApiKey(key: string): void {
  if (key) sessionStorage.setItem(KEY, key);
  else sessionStorage.removeItem(KEY);
  current = undefined;
}

let current: StepqWebClient | undefined;

export function stepq(): StepqWebClient {
  current ??= createStepqWebClient({ baseUrl: location.origin, apiKey: apiKey() || undefined });
  return current;
}

/** The message to show for a failed call: the server's own. */
export function messageOf(e: unknown): string {
  return ConnectError.from(e).rawMessage;
}

/**
 * Which tenants' jobs a call may see and act on: its key's tenant, or every
 * tenant for an admin key and for calls to a server that does not require
 * keys (one trust domain). Another tenant's job is answered as if it did
 * not exist (NOT_FOUND, never its data), so ids cannot be probed.
 */
import type { ContextValues } from "@connectrpc/connect";
import { jobNotFound } from "../queue/errors.js";
import type { Queue } from "../queue/queue.js";
import { CALLER_KEY } from "./auth-interceptor.js";

export interface Scope {
  /** The caller's tenant number: the tenant of the jobs it submits. */
  readonly tenant: number;
  /** Whether it sees every tenant's jobs (admin keys; auth off). */
  readonly allTenants: boolean;
}

/** The scope of a server that does not require keys. */
export const EVERY_TENANT: Scope = Object.freeze({ tenant: 0, allTenants: true });

/** The scope of a call, from the key the auth interceptor left in its context values. */
export function scopeOf(values: ContextValues): Scope {
  const key = values.get(CALLER_KEY);
  if (!key) return EVERY_TENANT;
  return { tenant: key.tenantNumber, allTenants: key.roles.includes("admin") };
}

/** Whether a call of `scope` may see a job of tenant `tenant`. */
export function sees(scope: Scope, tenant: number): boolean {
  return scope.allTenants || scope.tenant === tenant;
}

/** The tenant filter of a listing: undefined (every tenant) or the caller's. */
export function tenantFilter(scope: Scope): number | undefined {
  return scope.allTenants ? undefined : scope.tenant;
}

/**
 * Throws NOT_FOUND unless the caller may act on job `jobId` (before a
 * cancel, retry or purge). A job's tenant never changes and job ids are
 * never reused, so checking before acting is as good as checking in the
 * same script. Reads only the job's header; nothing for all-tenant scopes.
 */
export async function checkJobInScope(queue: Queue, scope: Scope, jobId: string): Promise<void> {
  if (scope.allTenants) return;
  const tenant = await queue.tenantOf(jobId);
  if (tenant === undefined || tenant !== scope.tenant) throw jobNotFound(jobId);
}

/**
 * The routes a worker claims from: the routes its engines serve, plus every
 * route with requirements (queue/requirements.ts) that it meets, e.g.
 * `infer:qwen?tag=gpu=a100` for a worker tagged gpu=a100 serving
 * infer:qwen. The queue's `routes` set lists every route used; it is read
 * again whenever its size changes (each heartbeat reply says the size, and
 * each claim that came back short, from a worker about to wait), so a step with requirements no earlier step had is claimed by the
 * next claim after it arrives (its submit wakes the base route's idle
 * workers). Also the worker's tenant filter as the claim scripts take it.
 */
import { tenantFilterArg } from "../queue/claim-steps.js";
import type { Queue } from "../queue/queue.js";
import { type Capabilities, checkTags, hasRequirements, meets } from "../queue/requirements.js";
import { checkTenantName, tenantNumber } from "../queue/tenants.js";
import { usedRoutes } from "../queue/worker-registry.js";

export interface TenantChoice {
  /** The only tenants whose steps the worker claims (names). */
  only: readonly string[];
  /** Tenants whose steps it never claims (names). */
  except: readonly string[];
}

export class ClaimRoutes {
  /** The routes to claim from now. */
  current: string[];
  /** The claim scripts' tenant filter argument. */
  tenantFilter = "";
  private known = -1;
  private refreshing: Promise<void> | undefined;

  constructor(
    readonly capabilities: Capabilities,
    readonly tenants: TenantChoice,
  ) {
    checkTags(capabilities.tags);
    this.current = [...capabilities.routes];
    if (tenants.only.length > 0 && tenants.except.length > 0) throw new Error("give --tenants or --exclude-tenants, not both");
    for (const t of [...tenants.only, ...tenants.except]) checkTenantName(t, "--tenants");
  }

  /** Resolves the tenant names to numbers (once, at start) and reads the routes. */
  async start(queue: Queue): Promise<void> {
    const numbers = (names: readonly string[]) => Promise.all(names.map((n) => tenantNumber(queue.redis, queue.keys, n)));
    this.tenantFilter = tenantFilterArg(await numbers(this.tenants.only), await numbers(this.tenants.except));
    await this.refresh(queue);
  }

  /**
   * Called with the route count a claim or heartbeat reply carried; reads the
   * routes again when it changed. Resolves true when the claim routes grew.
   */
  async seen(queue: Queue, routeCount: number): Promise<boolean> {
    // -1: a claim that got all it asked for does not count the routes (saves a call on the hot path).
    if (routeCount < 0 || routeCount === this.known) return false;
    const before = this.current.length;
    await this.refresh(queue, routeCount);
    return this.current.length > before;
  }

  /** Whether the worker meets route `route`'s requirements (and serves its base route). */
  accepts(route: string): boolean {
    return meets(route, this.capabilities);
  }

  private refresh(queue: Queue, routeCount?: number): Promise<void> {
    this.refreshing ??= (async () => {
      try {
        const all = await usedRoutes(queue.redis, queue.keys);
        this.known = routeCount ?? all.length;
        const extra = all.filter((r) => hasRequirements(r) && meets(r, this.capabilities)).sort();
        this.current = [...this.capabilities.routes, ...extra];
      } finally {
        this.refreshing = undefined;
      }
    })();
    return this.refreshing;
  }
}

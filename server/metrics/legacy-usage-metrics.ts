/**
 * stepq_legacy_uses_total{name}: uses of each old route or event name kept
 * for the replaced systems' clients (queue/legacy-usage.ts), read on each
 * scrape from its hash. The names are a fixed list in the code, so the
 * label is bounded. Queue-wide: every server reports the same values.
 */
import { Counter, type Registry } from "prom-client";
import type { LegacyCount } from "../../queue/legacy-usage.js";

/** Registers the counter; `read` gives the counts (a failed read leaves the series out and calls `failed`). */
export function registerLegacyUsageMetrics(registry: Registry, read: () => Promise<Map<string, LegacyCount>>, failed: () => void): void {
  new Counter({
    name: "stepq_legacy_uses_total",
    help: "Uses of each old route or event name (docs/migration.md) since the queue was created; the same on every server of the queue.",
    labelNames: ["name"] as const,
    registers: [registry],
    async collect() {
      // The count lives in Redis: each scrape sets it to what Redis holds.
      this.reset();
      let usage: Map<string, LegacyCount>;
      try {
        usage = await read();
      } catch {
        failed();
        return;
      }
      for (const [name, count] of usage) this.inc({ name }, count.uses);
    },
  });
}

/**
 * Probes GET /healthz on a fresh connection every `everyMs` while the run
 * goes on, and records the worst latency and every probe that failed while
 * the server was up: a hostile request must not stall the event loop or the
 * port for the load balancer's health checks.
 */
import * as http from "node:http";

export interface HealthProbe {
  stop(): Promise<HealthReport>;
}

export interface HealthReport {
  probes: number;
  worstMs: number;
  p50Ms: number;
  /** Probes that got no 200 within the timeout, with what happened. */
  failures: { atMs: number; detail: string }[];
}

function probeOnce(url: string, timeoutMs: number): Promise<{ ok: boolean; ms: number; detail: string }> {
  const started = performance.now();
  return new Promise((resolve) => {
    const req = http.get(new URL("/healthz", url), { agent: false, timeout: timeoutMs }, (res) => {
      res.resume();
      res.on("end", () => resolve({ ok: res.statusCode === 200, ms: performance.now() - started, detail: `HTTP ${res.statusCode}` }));
    });
    req.on("timeout", () => req.destroy(new Error(`no answer within ${timeoutMs} ms`)));
    req.on("error", (e) => resolve({ ok: false, ms: performance.now() - started, detail: e.message }));
  });
}

/**
 * Starts probing; `url()` follows server restarts. A probe that failed is
 * not counted when `crashes()` changed by 2 s after it (the crash is
 * counted instead), nor one sent while the server is down (`up()`).
 */
export function startHealthProbe(url: () => string, up: () => boolean, crashes: () => number, everyMs = 200, timeoutMs = 5000): HealthProbe {
  const started = performance.now();
  const latencies: number[] = [];
  const failures: HealthReport["failures"] = [];
  let running = true;
  const loop = (async () => {
    while (running) {
      const wasUp = up();
      const crashesBefore = crashes();
      const r = await probeOnce(url(), timeoutMs);
      // A probe that failed because the server just died is the crash's, not a health failure.
      if (!r.ok) await new Promise((res) => setTimeout(res, 2000));
      if (wasUp && crashes() === crashesBefore) {
        latencies.push(r.ms);
        if (!r.ok) failures.push({ atMs: Math.round(performance.now() - started), detail: r.detail });
      }
      await new Promise((res) => setTimeout(res, everyMs));
    }
  })();
  return {
    async stop() {
      running = false;
      await loop;
      const sorted = [...latencies].sort((a, b) => a - b);
      return { probes: latencies.length, worstMs: sorted[sorted.length - 1] ?? 0, p50Ms: sorted[Math.floor(sorted.length / 2)] ?? 0, failures };
    },
  };
}

/**
 * A histogram with a `route` label whose observe() allocates nothing: a
 * bucket array per route, summed up only when Prometheus scrapes. It takes
 * the place of prom-client's Histogram on a worker's per-step path, and is
 * registered in the same prom-client Registry, which formats it like its own
 * (the metric object shape of Registry.getMetricsAsJSON: name, help, type,
 * values with metricName and labels).
 *
 * Why not prom-client's Histogram: its observe() builds a label hash string,
 * a closure and a value pair per call (~200 ns plus the garbage). A worker
 * observes several histograms per step; with them, the worker's CPU per
 * step rose by several µs (bench `--only metrics`), and a busy worker's
 * metrics must cost under 2% of its throughput. This costs a Map lookup and
 * a few array writes.
 */
import type { Metric } from "prom-client";

interface HistogramValue {
  labels: Record<string, string | number>;
  sharedLabels?: Record<string, string>;
  value: number;
  metricName: string;
  exemplar: null | undefined;
}

interface HistogramData {
  name: string;
  help: string;
  type: string;
  values: HistogramValue[];
  aggregator: string;
}

interface RouteBuckets {
  /** Observations per bucket (not cumulative); one past the last bound: +Inf. */
  counts: Float64Array;
  sum: number;
}

export class RouteHistogram {
  readonly type = "histogram";
  readonly aggregator = "sum";
  private readonly byRoute = new Map<string, RouteBuckets>();

  constructor(
    readonly name: string,
    readonly help: string,
    /** Upper bounds, ascending (a value equal to a bound falls in its bucket, as Prometheus's `le` says). */
    private readonly bounds: readonly number[],
  ) {}

  observe(route: string, value: number): void {
    let r = this.byRoute.get(route);
    if (!r) this.byRoute.set(route, (r = { counts: new Float64Array(this.bounds.length + 1), sum: 0 }));
    const b = this.bounds;
    let i = 0;
    while (i < b.length && value > (b[i] as number)) i++;
    (r.counts[i] as number)++;
    r.sum += value;
  }

  /**
   * What prom-client's Registry formats at a scrape, as its Histogram gives
   * it: per route, cumulative buckets (`le` first, the route as a shared
   * label), +Inf, sum and count.
   */
  getForPromString(): HistogramData {
    const values: HistogramValue[] = [];
    const bucket = `${this.name}_bucket`;
    for (const [route, r] of this.byRoute) {
      const shared = { route };
      let acc = 0;
      this.bounds.forEach((le, i) => {
        acc += r.counts[i] as number;
        values.push({ labels: { le }, sharedLabels: shared, value: acc, metricName: bucket, exemplar: null });
      });
      acc += r.counts[this.bounds.length] as number;
      values.push({ labels: { le: "+Inf" }, sharedLabels: shared, value: acc, metricName: bucket, exemplar: null });
      values.push({ labels: {}, sharedLabels: shared, value: r.sum, metricName: `${this.name}_sum`, exemplar: undefined });
      values.push({ labels: {}, sharedLabels: shared, value: acc, metricName: `${this.name}_count`, exemplar: undefined });
    }
    return { name: this.name, help: this.help, type: this.type, values, aggregator: this.aggregator };
  }

  /** The same with each value's labels in one object (getMetricsAsJSON). */
  get(): HistogramData {
    const data = this.getForPromString();
    data.values = data.values.map(({ sharedLabels, labels, ...v }) => ({ ...v, labels: { ...labels, ...sharedLabels } }));
    return data;
  }

  reset(): void {
    this.byRoute.clear();
  }

  /** As the Registry's registerMetric() takes it (it reads name, get() and reset()). */
  asMetric(): Metric {
    return this as unknown as Metric;
  }
}

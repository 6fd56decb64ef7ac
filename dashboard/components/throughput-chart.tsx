/**
 * Steps finished per second over the window, one line for succeeded and one
 * for failed, all routes together: uPlot, drawn into a div this component
 * owns and redrawn when the buckets change. The last bucket is still filling:
 * its steps are divided by the seconds it has had so far (by Redis's clock,
 * `now`), not by the whole bucket, or the line would dip at its right edge.
 */
import { useEffect, useRef } from "preact/hooks";
import uPlot from "uplot";
import type { ThroughputBucket } from "../../gen/stepq/v1/queue_service_pb.js";

export function ThroughputChart({ buckets, bucketSeconds, now }: { buckets: readonly ThroughputBucket[]; bucketSeconds: number; now: number }) {
  const box = useRef<HTMLDivElement>(null);
  const plot = useRef<uPlot | undefined>(undefined);
  useEffect(() => {
    const x = buckets.map((b) => Number(b.start?.seconds ?? 0n));
    const seconds = (start: number) => Math.min(bucketSeconds, Math.max(1, now - start));
    const per = (f: "succeeded" | "failed") => buckets.map((b, i) => b.routes.reduce((n, r) => n + Number(r[f]), 0) / seconds(x[i] as number));
    const data: uPlot.AlignedData = [x, per("succeeded"), per("failed")];
    if (!plot.current && box.current) {
      plot.current = new uPlot(
        {
          width: box.current.clientWidth || 600,
          height: 180,
          series: [{}, { label: "succeeded/s", stroke: "#2e7d32", width: 2, points: { show: false } }, { label: "failed/s", stroke: "#c62828", width: 2, points: { show: false } }],
          axes: [{}, { label: "steps/s" }],
        },
        data,
        box.current,
      );
    } else plot.current?.setData(data);
  }, [buckets, bucketSeconds, now]);
  useEffect(() => () => plot.current?.destroy(), []);
  return <div class="chart" ref={box} />;
}

/**
 * A job's steps as a graph: each step a box coloured by its state, in
 * columns by dependency depth, with an arrow from each dependency to the
 * step that waits for it. Plain SVG: a job has at most a few hundred steps.
 */
import { StepState } from "../../clients/web/index.js";
import type { Step } from "../../gen/stepq/v1/step_pb.js";

const W = 150;
const H = 36;
const GAP_X = 50;
const GAP_Y = 16;

export function Dag({ steps }: { steps: readonly Step[] }) {
  const byName = new Map(steps.map((s, i) => [s.name, i]));
  const depth: number[] = [];
  const depthOf = (i: number, seen = new Set<number>()): number => {
    if (depth[i] !== undefined) return depth[i] as number;
    if (seen.has(i)) return 0;
    seen.add(i);
    const d = Math.max(-1, ...(steps[i]?.dependsOn ?? []).map((n) => depthOf(byName.get(n) ?? 0, seen))) + 1;
    depth[i] = d;
    return d;
  };
  steps.forEach((_, i) => depthOf(i));
  const row: number[] = [];
  const perDepth = new Map<number, number>();
  steps.forEach((_, i) => {
    const d = depth[i] ?? 0;
    row[i] = perDepth.get(d) ?? 0;
    perDepth.set(d, (row[i] as number) + 1);
  });
  const x = (i: number) => (depth[i] ?? 0) * (W + GAP_X) + 4;
  const y = (i: number) => (row[i] ?? 0) * (H + GAP_Y) + 4;
  const width = (Math.max(0, ...depth) + 1) * (W + GAP_X);
  const height = Math.max(1, ...perDepth.values()) * (H + GAP_Y);
  return (
    <svg class="dag" width={width} height={height} role="img" aria-label="the job's steps and their dependencies">
      <defs>
        <marker id="arrow" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="6" markerHeight="6" orient="auto-start-reverse">
          <path d="M 0 0 L 10 5 L 0 10 z" />
        </marker>
      </defs>
      {steps.flatMap((s, i) =>
        s.dependsOn.map((n) => {
          const d = byName.get(n) ?? 0;
          return <line class="edge" x1={x(d) + W} y1={y(d) + H / 2} x2={x(i)} y2={y(i) + H / 2} marker-end="url(#arrow)" />;
        }),
      )}
      {steps.map((s, i) => (
        <g class={`node ${(StepState[s.state] ?? "").toLowerCase()}`} data-step={s.name} transform={`translate(${x(i)},${y(i)})`}>
          <rect width={W} height={H} rx="6" />
          <text x="8" y="15">{s.name}</text>
          <text x="8" y="29" class="sub">
            {(StepState[s.state] ?? "").toLowerCase()}
          </text>
        </g>
      ))}
    </svg>
  );
}

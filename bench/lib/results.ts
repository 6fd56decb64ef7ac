/**
 * What a run measured: figures (one value per round for stepq and, where
 * there is a peer, for BullMQ) and ceilings (the same run's raw limits of
 * Redis and HTTP), summarised as medians with min–max and written to
 * `bench/results/latest.json`.
 */
import { type Spread, spread } from "./stats.js";

/** Which system a value belongs to. */
export type SideKey = "stepq" | "bullmq";

/** How a figure is described before it is measured. */
export interface FigureSpec {
  /** Stable id, e.g. "e2e.c16"; the JSON and the targets use it. */
  id: string;
  /** The heading it is printed under: its scenario and that scenario's N. */
  scenario: string;
  label: string;
  unit: string;
  better: "higher" | "lower";
  /** Id of the ceiling a throughput is a share of, or the floor a latency is a multiple of. */
  limit?: string;
  /** Figure id whose BullMQ values stand in as the peer (BullMQ has no network API). */
  peerOf?: string;
}

/** A summarised figure, as written to the JSON file. */
export interface Figure extends FigureSpec {
  stepq: Spread;
  bullmq: Spread | null;
  /** stepq median ÷ BullMQ median. */
  ratio: number | null;
  /** stepq median ÷ the limit's median, when `limit` is set. */
  share: number | null;
}

/** A raw limit measured in the same run. */
export interface Ceiling {
  id: string;
  label: string;
  unit: string;
  value: Spread;
}

/** Collects round values; `summary()` turns them into figures. */
export function createResults() {
  const specs = new Map<string, FigureSpec>();
  const values = new Map<string, { stepq: number[]; bullmq: number[] }>();
  const ceilings = new Map<string, { label: string; unit: string; runs: number[] }>();
  const notes: string[] = [];

  return {
    /** Declares a figure (idempotent, so every round may call it). */
    define(spec: FigureSpec): void {
      specs.set(spec.id, spec);
      if (!values.has(spec.id)) values.set(spec.id, { stepq: [], bullmq: [] });
    },
    /** Records one round's value. */
    add(id: string, side: SideKey, value: number): void {
      const v = values.get(id);
      if (!v) throw new Error(`figure ${id} was not defined`);
      v[side].push(value);
    },
    /** Records one round's value of a ceiling. */
    ceiling(id: string, label: string, unit: string, value: number): void {
      const c = ceilings.get(id) ?? { label, unit, runs: [] };
      c.runs.push(value);
      ceilings.set(id, c);
    },
    /** Adds a line to the notes printed under the table. */
    note(text: string): void {
      notes.push(text);
    },

    summary(): { figures: Figure[]; ceilings: Ceiling[]; notes: string[] } {
      const ceil: Ceiling[] = [...ceilings].map(([id, c]) => ({ id, label: c.label, unit: c.unit, value: spread(c.runs) }));
      const figures = [...specs.values()].map((spec): Figure => {
        const v = values.get(spec.id) as { stepq: number[]; bullmq: number[] };
        const peerRuns = spec.peerOf ? values.get(spec.peerOf)?.bullmq ?? [] : v.bullmq;
        const stepq = spread(v.stepq);
        const bullmq = peerRuns.length > 0 ? spread(peerRuns) : null;
        const limit = spec.limit ? ceil.find((c) => c.id === spec.limit) : undefined;
        return {
          ...spec,
          stepq,
          bullmq,
          ratio: bullmq ? stepq.median / bullmq.median : null,
          share: limit ? stepq.median / limit.value.median : null,
        };
      });
      return { figures, ceilings: ceil, notes };
    },
  };
}

/** The collector every scenario records into. */
export type Results = ReturnType<typeof createResults>;

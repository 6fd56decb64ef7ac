/**
 * Identifiers the fuzzer has seen in answers (step and job ids, cursors, page
 * tokens), so generated requests reach real records and not only "not
 * found". Only ids from the fuzzer's own submits enter the pool: canary jobs
 * are submitted before the pool exists and their ids are refused, so the run
 * can check that nothing it sent touched them.
 */
import type { Prng } from "./prng.js";

export type PoolKind = "stepId" | "jobId" | "cursor" | "pageToken";

/** A bounded set of seen identifiers per kind. */
export interface IdPool {
  /** Records every identifier found in a JSON answer body. */
  learn(text: string): void;
  /** A seen identifier of `kind`, or undefined when none was seen yet. */
  draw(prng: Prng, kind: PoolKind): string | undefined;
  size(kind: PoolKind): number;
}

const PATTERNS: Record<PoolKind, RegExp> = {
  stepId: /"(?:id|stepId)":"([0-9a-z]{16}\.\d{1,4})"/g,
  jobId: /"(?:id|jobId)":"([0-9a-z]{16})"/g,
  cursor: /"(?:cursor|afterCursor)":"([^"]{1,64})"/g,
  pageToken: /"nextPageToken":"([^"]{1,256})"/g,
};

/** A pool holding at most `capacity` identifiers of each kind; `excluded` never enter it. */
export function createIdPool(excluded: ReadonlySet<string>, capacity = 500): IdPool {
  const seen: Record<PoolKind, string[]> = { stepId: [], jobId: [], cursor: [], pageToken: [] };
  const isExcluded = (id: string) => excluded.has(id) || excluded.has(id.split(".")[0] as string);
  return {
    learn(text) {
      for (const kind of Object.keys(PATTERNS) as PoolKind[]) {
        for (const m of text.matchAll(PATTERNS[kind])) {
          const id = m[1] as string;
          const list = seen[kind];
          if (isExcluded(id) || list.includes(id)) continue;
          if (list.length >= capacity) list.shift();
          list.push(id);
        }
      }
    },
    draw(prng, kind) {
      const list = seen[kind];
      return list.length === 0 ? undefined : prng.pick(list);
    },
    size: (kind) => seen[kind].length,
  };
}

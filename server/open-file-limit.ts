/**
 * Whether the process may open enough files for its connection cap: past
 * the open-file limit (`ulimit -n`, often 1,024) accept() fails and every
 * new client is locked out, which --max-connections exists to prevent.
 * Linux only (it reads /proc/self/limits); elsewhere it says nothing.
 */
import { readFileSync } from "node:fs";

/** Files kept for Redis connections, logs and the like besides client connections. */
const RESERVE = 64;

/** A warning when the soft open-file limit is below `maxConnections` plus a reserve; undefined when it is not (or unknown). */
export function openFileLimitWarning(maxConnections: number): string | undefined {
  let text: string;
  try {
    text = readFileSync("/proc/self/limits", "utf8");
  } catch {
    return undefined;
  }
  const soft = Number(/^Max open files\s+(\d+)/m.exec(text)?.[1]);
  if (!Number.isFinite(soft) || soft >= maxConnections + RESERVE) return undefined;
  return (
    `the open-file limit (${soft}) is below --max-connections (${maxConnections}) plus ${RESERVE}: past it new clients are refused ` +
    `by the system, not by the cap; raise it (ulimit -n ${maxConnections + RESERVE}) or lower --max-connections to ${Math.max(1, soft - RESERVE)}`
  );
}

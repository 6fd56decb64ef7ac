/**
 * Finds a file shipped with stepq (docs, the conformance corpus) from the
 * code that needs it, wherever that code runs from: the source tree
 * (server/, clients/) or the compiled one (dist/server/, dist/clients/).
 */
import { existsSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

/** `relative` under the nearest folder above module `moduleUrl` that has it; undefined if none does. */
export function findUp(moduleUrl: string, relative: string): string | undefined {
  for (let at = dirname(fileURLToPath(moduleUrl)); at !== dirname(at); at = dirname(at)) {
    const path = join(at, relative);
    if (existsSync(path)) return path;
  }
  return undefined;
}

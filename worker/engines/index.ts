/**
 * Engines by name, for `--engines`. Each entry builds its engine from the
 * worker's configuration.
 */
import { OptionError } from "../../queue/options.js";
import { createEchoEngine } from "./echo.js";
import type { Engine } from "./engine.js";

export const ENGINE_NAMES = ["echo"] as const;

/** Builds the engines named in `names`. */
export async function buildEngines(names: readonly string[]): Promise<Engine[]> {
  const engines: Engine[] = [];
  for (const name of names) {
    switch (name) {
      case "echo":
        engines.push(createEchoEngine());
        break;
      default:
        throw new OptionError(`--engines: unknown engine "${name}"; available: ${ENGINE_NAMES.join(", ")}`);
    }
  }
  if (engines.length === 0) throw new OptionError("--engines: name at least one engine");
  return engines;
}

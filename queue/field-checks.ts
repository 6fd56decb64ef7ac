/** The checks request fields share, throwing INVALID_ARGUMENT naming the field. */
import { InvalidArgumentError } from "./errors.js";

export const DAY_MS = 24 * 3600 * 1000;

/** Throws INVALID_ARGUMENT for the field at `path`. */
export function bad(path: string, message: string): never {
  throw new InvalidArgumentError(path, message);
}

/** Checks an integer field; the field's path (`prefix` + `field`) is built only for the error. */
export function checkInt(prefix: string, field: string, value: number, min: number, max: number, unit = ""): void {
  if (!Number.isInteger(value) || value < min || value > max) {
    bad(prefix + field, `must be an integer from ${min} to ${max}${unit} (got ${value})`);
  }
}

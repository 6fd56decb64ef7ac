/**
 * How a response is held to its golden: partially, so that a server may add
 * fields (an additive, compatible change) without failing consumers' tests.
 *
 * - an object matches when each of its keys matches the actual value's;
 * - an array matches when its elements match the actual's first elements, in
 *   order (the actual may have more);
 * - "<any>" matches any value that is present; "<step-id>", "<job-id>" and
 *   "<timestamp>" match values of that form;
 * - "${case.path}" stands for a value of an earlier case's response (and
 *   "${run}" for this run's id); it is replaced before matching.
 */
const FORMS: Record<string, RegExp> = {
  "<step-id>": /^[0-9a-z]{16}\.\d+$/,
  "<job-id>": /^[0-9a-z]{16}$/,
  "<timestamp>": /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$/,
};

/** Replaces every "${name.path}" in `value` with what `vars` holds there. */
export function substitute(value: unknown, vars: Record<string, unknown>): unknown {
  if (typeof value === "string") {
    const whole = /^\$\{([^}]+)\}$/.exec(value);
    if (whole) return lookup(vars, whole[1] as string);
    return value.replace(/\$\{([^}]+)\}/g, (_, path: string) => String(lookup(vars, path)));
  }
  if (Array.isArray(value)) return value.map((v) => substitute(v, vars));
  if (value && typeof value === "object") return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, substitute(v, vars)]));
  return value;
}

function lookup(vars: Record<string, unknown>, path: string): unknown {
  let at: unknown = vars;
  for (const part of path.split(".")) {
    if (at === null || typeof at !== "object" || !(part in at)) throw new Error(`\${${path}}: no value at "${part}" (is the case it names earlier in the corpus, and did it pass?)`);
    at = (at as Record<string, unknown>)[part];
  }
  return at;
}

/** The differences between `expected` and `actual`, one line each ("" when they match). */
export function mismatches(expected: unknown, actual: unknown, path = "$"): string[] {
  if (typeof expected === "string" && expected in FORMS) {
    return typeof actual === "string" && (FORMS[expected] as RegExp).test(actual) ? [] : [`${path}: expected ${expected}, got ${JSON.stringify(actual)}`];
  }
  if (expected === "<any>") return actual === undefined || actual === null ? [`${path}: expected a value, got none`] : [];
  if (Array.isArray(expected)) {
    if (!Array.isArray(actual)) return [`${path}: expected an array, got ${JSON.stringify(actual)}`];
    if (actual.length < expected.length) return [`${path}: expected at least ${expected.length} elements, got ${actual.length}`];
    return expected.flatMap((e, i) => mismatches(e, actual[i], `${path}[${i}]`));
  }
  if (expected && typeof expected === "object") {
    if (!actual || typeof actual !== "object" || Array.isArray(actual)) return [`${path}: expected an object, got ${JSON.stringify(actual)}`];
    return Object.entries(expected).flatMap(([k, e]) => mismatches(e, (actual as Record<string, unknown>)[k], `${path}.${k}`));
  }
  return expected === actual ? [] : [`${path}: expected ${JSON.stringify(expected)}, got ${JSON.stringify(actual)}`];
}

/**
 * A step's attempts in words. A dead-lettered step that is retried by hand
 * gets attempts beyond its policy's max_attempts: "attempt 2 of 1" would
 * read as a bug, so those say what happened instead.
 */
export function attemptsText(attempt: number, maxAttempts: number, short = false): string {
  if (attempt <= maxAttempts) return short ? `${attempt}/${maxAttempts}` : `attempt ${attempt} of ${maxAttempts}`;
  return short ? `${attempt} (${maxAttempts} + retried)` : `attempt ${attempt} (all ${maxAttempts} used, then retried from the dead letters)`;
}

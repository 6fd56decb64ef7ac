/**
 * A value read from Redis at most every `ms` milliseconds (and at once after
 * `invalidate`); a failed read is not kept, so the next `get` tries again.
 * What the webhook senders' view and the unserved-route check share.
 */
export function cachedFor<T>(ms: number, load: () => Promise<T>): { get(): Promise<T>; invalidate(): void } {
  let at = 0;
  let current: Promise<T> | undefined;
  return {
    get() {
      if (!current || Date.now() - at > ms) {
        at = Date.now();
        current = load();
        current.catch(() => (at = 0));
      }
      return current;
    },
    invalidate: () => (at = 0),
  };
}

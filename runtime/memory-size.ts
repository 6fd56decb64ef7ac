/** Memory sizes in flags: --memory of a worker, --min-memory of a submit. */

/** "80g", "24576m", "512M" or a bare number of MiB, as MiB; throws naming the value. */
export function parseMemoryMb(text: string): number {
  const m = /^(\d+(?:\.\d+)?)\s*([mMgGtT]i?[bB]?)?$/.exec(text.trim());
  if (!m) throw new Error(`--memory ${JSON.stringify(text)}: give MiB as a number, or a size such as 80g or 512m`);
  const unit = (m[2] ?? "m")[0]?.toLowerCase();
  const mb = Number(m[1]) * (unit === "g" ? 1024 : unit === "t" ? 1024 * 1024 : 1);
  return Math.floor(mb);
}

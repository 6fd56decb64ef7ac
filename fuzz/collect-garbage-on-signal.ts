/**
 * Preloaded (`--import`) into the server the fuzz run attacks, never into
 * stepq itself: on SIGUSR2 it runs a full garbage collection and prints
 * `fuzz-gc <n> rss=<kB> live=<kB>` (live: the JS heap in use plus memory
 * outside it held by JS objects, such as Buffers). The fuzz run measures the
 * server's memory after one, so "returns its memory" compares what is still
 * held rather than whenever V8 last chose to collect. RSS alone cannot say:
 * after seed 7, live memory went back from 20 to 22 MiB while RSS stayed
 * 55 MiB above its start (memory the allocator keeps for reuse), and RSS
 * without a collection varied by 30+ MiB between runs of the same seed.
 */
import { setFlagsFromString } from "node:v8";
import { runInNewContext } from "node:vm";

setFlagsFromString("--expose-gc");
const gc = runInNewContext("gc") as () => void;
let count = 0;
process.on("SIGUSR2", () => {
  gc();
  const m = process.memoryUsage();
  console.log(`fuzz-gc ${++count} rss=${Math.round(m.rss / 1024)} live=${Math.round((m.heapUsed + m.external) / 1024)}`);
});

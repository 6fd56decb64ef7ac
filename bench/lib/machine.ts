/**
 * The machine a run happened on, and how much of its CPU other processes
 * took meanwhile: on a shared machine a figure is only as good as the quiet
 * it was measured in, so the report says how quiet it was.
 */
import { readFileSync } from "node:fs";
import { cpus, release, totalmem } from "node:os";

/** What the JSON file and the header line say about the machine. */
export interface MachineInfo {
  cpu: string;
  cores: number;
  memoryGiB: number;
  kernel: string;
  node: string;
}

/** The machine's description. */
export function machineInfo(): MachineInfo {
  return {
    cpu: cpus()[0]?.model ?? "?",
    cores: cpus().length,
    memoryGiB: Math.round(totalmem() / 2 ** 30),
    kernel: release(),
    node: process.version,
  };
}

/** User + system CPU seconds of process `pid` so far (Linux /proc; 100 ticks a second); 0 without a pid. */
export function processCpuSeconds(pid: number | undefined): number {
  if (pid === undefined) return 0;
  const fields = readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1]?.split(" ") ?? [];
  return (Number(fields[11]) + Number(fields[12])) / 100;
}

/** Busy CPU ticks of the whole machine, and of this process plus its exited children (Linux /proc). */
function ticks(): { machine: number; ours: number } | undefined {
  try {
    const cpu = (readFileSync("/proc/stat", "utf8").split("\n")[0] ?? "").trim().split(/\s+/).slice(1).map(Number);
    const busy = cpu.reduce((a, b) => a + b, 0) - (cpu[3] ?? 0) - (cpu[4] ?? 0); // minus idle and iowait
    // Fields after the ")" of /proc/self/stat: utime, stime, cutime, cstime are the 12th–15th.
    const self = (readFileSync("/proc/self/stat", "utf8").split(") ")[1] ?? "").split(" ").map(Number);
    const ours = (self[11] ?? 0) + (self[12] ?? 0) + (self[13] ?? 0) + (self[14] ?? 0);
    return { machine: busy, ours };
  } catch {
    return undefined;
  }
}

/**
 * Starts counting; the returned function gives the share (0–1) of the
 * machine's CPU that processes outside this benchmark used since, or
 * undefined where /proc is missing. Call it after every child has exited.
 */
export function watchForeignLoad(): () => number | undefined {
  const start = ticks();
  const t0 = performance.now();
  const cores = cpus().length;
  return () => {
    const end = ticks();
    if (!start || !end) return undefined;
    const hz = 100; // USER_HZ on Linux
    const foreign = end.machine - start.machine - (end.ours - start.ours);
    const available = ((performance.now() - t0) / 1000) * hz * cores;
    return Math.max(0, foreign / available);
  };
}

import { defineConfig } from "vitest/config";

// Every test file starts its own redis-server on a random port, so files run
// in parallel safely. Timeouts are generous because the machines are shared.
export default defineConfig({
  test: {
    include: ["test/**/*.test.ts"],
    testTimeout: 30_000,
    hookTimeout: 30_000,
    pool: "forks",
    reporters: ["default"],
  },
});

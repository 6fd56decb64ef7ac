/** The stepq version every process reports (server health, worker registry, `stepq --version`). */
export const VERSION = "0.1.0";

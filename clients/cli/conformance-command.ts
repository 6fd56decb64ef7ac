/**
 * `stepq conformance --url URL`: runs the contract's golden cases and the
 * stream rules against a running server and says which RPCs conform
 * (clients/conformance). Exit 0 when none fails, 1 when one does.
 */
import { runConformance, formatReport } from "../conformance/run-conformance.js";
import { type Io, runCommand } from "./command.js";
import { describeClientError, EXIT } from "./exit-codes.js";

const SPEC = {
  usage: "stepq conformance --url URL [--api-key KEY] [--corpus DIR] [--json]",
  description:
    "Runs the golden request/response pairs of every RPC (conformance/corpus, in Connect JSON) and the\n" +
    "stream-resume rules against the server at URL and reports which RPCs conform. Cases that need a\n" +
    "worker serving echo, or an admin key, are skipped (and say so) when the server has none.",
  options: [
    { flag: "url", env: "STEPQ_SERVER", kind: "string", default: "http://127.0.0.1:8080", help: "The server to check." },
    { flag: "api-key", env: "STEPQ_API_KEY", kind: "string", help: "An API key's secret, for a server with --auth required (admin: every case runs)." },
    { flag: "corpus", kind: "string", help: "Another corpus folder (default: the one shipped with stepq)." },
    { flag: "json", kind: "bool", help: "Print the report as JSON." },
  ],
} as const;

export function runConformanceCommand(argv: string[], io: Io): Promise<number> {
  return runCommand(
    "conformance",
    { ...SPEC, options: [...SPEC.options] },
    argv,
    io,
    async (v) => {
      const report = await runConformance({ url: v.url as string, apiKey: v["api-key"] as string | undefined, corpus: v.corpus as string | undefined });
      io.out.write(v.json ? `${JSON.stringify(report, null, 2)}\n` : formatReport(report));
      return report.failed === 0 ? EXIT.OK : EXIT.FAILED;
    },
    (e, v) => describeClientError(e, v.url as string),
  );
}

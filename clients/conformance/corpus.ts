/**
 * The conformance corpus (conformance/corpus/ at the top of the repository,
 * shipped in the package): golden request/response pairs of the RPCs in
 * Connect JSON, one file per service, run in the order index.json lists.
 * conformance/README.md describes the format.
 */
import { readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { findUp } from "../../runtime/find-up.js";

/** What a case needs from the server: a worker serving echo, or an admin caller. */
export type Need = "echo" | "admin";

export interface CorpusCase {
  name: string;
  method: string;
  needs?: Need;
  /** Call again (for up to 15 s) until the response matches: for states reached asynchronously. */
  until?: boolean;
  request: unknown;
  /** The expected response (partial: see match-json.ts). */
  response?: unknown;
  /** The expected error: its Connect code name and a text the message contains. */
  error?: { code: string; message: string };
  /** A server stream: its first and last message, and the text of all its tokens. */
  stream?: { first?: unknown; last?: unknown; text?: string };
}

export interface CorpusFile {
  file: string;
  service: string;
  cases: CorpusCase[];
}

/** The corpus folder: `dir`, or conformance/corpus found above this module (source or dist). */
export function corpusDir(dir?: string): string {
  if (dir) return dir;
  const index = findUp(import.meta.url, "conformance/corpus/index.json");
  if (index) return dirname(index);
  throw new Error("the conformance corpus (conformance/corpus/index.json) is not found above this module; give --corpus DIR");
}

/** Reads the corpus's files in their order. */
export function loadCorpus(dir?: string): CorpusFile[] {
  const root = corpusDir(dir);
  const index = JSON.parse(readFileSync(join(root, "index.json"), "utf8")) as { files: string[] };
  return index.files.map((file) => ({ file, ...(JSON.parse(readFileSync(join(root, file), "utf8")) as Omit<CorpusFile, "file">) }));
}

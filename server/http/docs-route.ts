/**
 * GET /docs/migration.md: the migration guide the old routes' `Link`
 * headers point to (legacy/legacy-names.ts), served from the docs/ folder
 * shipped with stepq, so an old client's operator can read it from the
 * server it talks to.
 */
import type { ServerResponse } from "node:http";
import { existsSync, readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { Code, ConnectError } from "@connectrpc/connect";
import type { HttpRoute } from "./http-api.js";
import { writeJsonError } from "./json-error.js";

/** docs/<name>, found above this module (source or dist); undefined if not shipped. */
function findDoc(name: string): string | undefined {
  for (let at = dirname(fileURLToPath(import.meta.url)); at !== dirname(at); at = dirname(at)) {
    const path = join(at, "docs", name);
    if (existsSync(path)) return path;
  }
  return undefined;
}

export function docsRoute(): HttpRoute {
  return {
    method: "GET",
    path: /^\/docs\/migration\.md$/,
    fail: writeJsonError,
    async handle(call) {
      const path = findDoc("migration.md");
      if (!path) throw new ConnectError("docs/migration.md is not shipped with this server", Code.NotFound);
      const body = readFileSync(path);
      (call.res as ServerResponse).writeHead(200, {
        "content-type": "text/markdown; charset=utf-8",
        "content-length": body.length,
        "cache-control": "public, max-age=3600",
        "x-content-type-options": "nosniff",
      });
      if (call.req.method === "HEAD") call.res.end();
      else call.res.end(body);
    },
  };
}

/**
 * GET /docs/migration.md: the migration guide the old routes' `Link`
 * headers point to (legacy/legacy-names.ts), served from the docs/ folder
 * shipped with stepq, so an old client's operator can read it from the
 * server it talks to.
 */
import type { ServerResponse } from "node:http";
import { readFileSync } from "node:fs";
import { Code, ConnectError } from "@connectrpc/connect";
import { findUp } from "../../runtime/find-up.js";
import type { HttpRoute } from "./http-api.js";
import { writeJsonError } from "./json-error.js";

export function docsRoute(): HttpRoute {
  return {
    method: "GET",
    path: /^\/docs\/migration\.md$/,
    fail: writeJsonError,
    async handle(call) {
      const path = findUp(import.meta.url, "docs/migration.md");
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

/**
 * The dashboard's files, served at / (scripts/build-dashboard.mjs builds
 * them into dist/dashboard): index.html, never cached, and app-<hash>.js /
 * .css, cached for good (their names change with their content). Only those
 * names are served (no path reaches the file system), GET and HEAD only,
 * with a Content-Security-Policy that lets the page load its own files and
 * call its own server and nothing else. Without a built dashboard, / says
 * how to build it.
 */
import { existsSync, readFileSync } from "node:fs";
import type { IncomingMessage, ServerResponse } from "node:http";
import type { Http2ServerRequest, Http2ServerResponse } from "node:http2";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const NAME = /^\/(?:(app-[A-Za-z0-9]+\.(?:js|css))|index\.html)?$/;
const TYPES: Record<string, string> = { js: "text/javascript; charset=utf-8", css: "text/css; charset=utf-8", html: "text/html; charset=utf-8" };
const SECURITY = {
  "content-security-policy": "default-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'",
  "x-content-type-options": "nosniff",
  "referrer-policy": "no-referrer",
};

/**
 * The built dashboard next to the server's code: dist/dashboard, which is
 * ../dashboard from the compiled dist/server, and ../dist/dashboard from
 * server/ when run from source with tsx. Nothing further up is looked at.
 */
export function defaultDashboardDir(): string | undefined {
  const here = dirname(fileURLToPath(import.meta.url));
  return [join(here, "..", "dashboard"), join(here, "..", "dist", "dashboard")].find((dir) => existsSync(join(dir, "index.html")));
}

/** The handler: true if it answered `req` (a dashboard path), else false. */
export function createDashboardFiles(dir: string | undefined): (req: IncomingMessage | Http2ServerRequest, res: ServerResponse | Http2ServerResponse) => boolean {
  const cache = new Map<string, Buffer>();
  return (req, response) => {
    if (req.method !== "GET" && req.method !== "HEAD") return false;
    const path = (req.url ?? "/").split("?")[0] as string;
    const m = NAME.exec(path);
    if (!m) return false;
    const res = response as ServerResponse;
    const file = m[1] ?? "index.html";
    const full = dir ? join(dir, file) : undefined;
    let body = full ? cache.get(full) : undefined;
    if (!body && full && existsSync(full)) {
      body = readFileSync(full);
      if (file !== "index.html") cache.set(full, body);
    }
    if (!body) {
      const text = file === "index.html" ? "The dashboard is not built: run npm run build (it writes dist/dashboard), then restart the server." : "not found";
      res.writeHead(404, { "content-type": "text/plain; charset=utf-8", "cache-control": "no-cache", ...SECURITY });
      res.end(text);
      return true;
    }
    const type = TYPES[file.split(".").pop() as string] as string;
    res.writeHead(200, {
      "content-type": type,
      "content-length": body.length,
      "cache-control": file === "index.html" ? "no-cache" : "public, max-age=31536000, immutable",
      ...SECURITY,
    });
    if (req.method === "HEAD") res.end();
    else res.end(body);
    return true;
  };
}

/**
 * The error shape of stepq's own HTTP routes (server-sent events): the
 * Connect protocol's JSON error, `{"code": "not_found", "message": "..."}`,
 * with the HTTP status Connect gives its code, as an RPC's error over curl.
 */
import type { ServerResponse } from "node:http";
import type { ConnectError } from "@connectrpc/connect";
import { codeToString } from "@connectrpc/connect/protocol-connect";
import type { HttpResponse } from "./http-api.js";

export function writeJsonError(res: HttpResponse, err: ConnectError, status: number): void {
  const body = JSON.stringify({ code: codeToString(err.code), message: err.rawMessage });
  (res as ServerResponse).writeHead(status, { "content-type": "application/json", "content-length": Buffer.byteLength(body) });
  res.end(body);
}

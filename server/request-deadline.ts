/**
 * The deadline a request's headers ask for, in ms from now: gRPC and
 * gRPC-Web's `grpc-timeout` (1-8 digits and a unit: H, M, S, m, u, n) or
 * Connect's `connect-timeout-ms` (1-10 digits). Undefined when there is
 * none or it is malformed (Connect refuses a malformed one itself, with
 * its own error). Used where the server waits before Connect's handler
 * runs (the request budget), so such a wait ends at the deadline too.
 */
const GRPC_UNITS: Record<string, number> = { H: 3_600_000, M: 60_000, S: 1000, m: 1, u: 0.001, n: 0.000001 };

export function requestDeadlineMs(header: Headers): number | undefined {
  const grpc = header.get("grpc-timeout");
  if (grpc !== null) {
    const m = /^(\d{1,8})([HMSmun])$/.exec(grpc);
    return m ? Number(m[1]) * (GRPC_UNITS[m[2] as string] as number) : undefined;
  }
  const connect = header.get("connect-timeout-ms");
  if (connect !== null && /^\d{1,10}$/.test(connect)) return Number(connect);
  return undefined;
}

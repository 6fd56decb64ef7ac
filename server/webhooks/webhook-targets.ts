/**
 * Where webhooks may post. A server reachable from a network must not let
 * a caller with a key point deliveries at the server's own neighbours: its
 * loopback, the cloud metadata service (169.254.169.254), or the private
 * network behind it (server-side request forgery). With public-only targets
 * (`--webhook-targets public`, the default on a non-loopback address), an
 * address in PRIVATE is refused both when a webhook's URL names it and
 * when its host name resolves to it: the check runs on the address each
 * delivery actually connects to (the `lookup` of its request), so a name
 * that resolves differently later (DNS rebinding) gains nothing.
 */
import { lookup as dnsLookup, type LookupAddress, type LookupAllOptions } from "node:dns";
import { BlockList, isIP, type LookupFunction } from "node:net";

const PRIVATE = new BlockList();
for (const [net, bits] of [
  ["0.0.0.0", 8],
  ["10.0.0.0", 8],
  ["100.64.0.0", 10],
  ["127.0.0.0", 8],
  ["169.254.0.0", 16],
  ["172.16.0.0", 12],
  ["192.0.0.0", 24],
  ["192.168.0.0", 16],
  ["198.18.0.0", 15],
  ["224.0.0.0", 3],
] as const) {
  PRIVATE.addSubnet(net, bits, "ipv4");
}
for (const [net, bits] of [
  ["::", 128],
  ["::1", 128],
  ["fc00::", 7],
  ["fe80::", 10],
  ["ff00::", 8],
  ["64:ff9b::", 96],
] as const) {
  PRIVATE.addSubnet(net, bits, "ipv6");
}

/** Whether `address` (an IP literal) is loopback, private, link-local, multicast or otherwise not a public host. */
export function isPrivateAddress(address: string): boolean {
  const family = isIP(address);
  if (family === 0) return false;
  if (family === 6) {
    // An IPv4 address written as IPv6 (::ffff:10.0.0.1) is that IPv4 address.
    const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(address);
    if (mapped) return PRIVATE.check(mapped[1] as string, "ipv4");
    return PRIVATE.check(address, "ipv6");
  }
  return PRIVATE.check(address, "ipv4");
}

/** Why `url` may not be a target now (its host is a private IP literal or localhost); undefined when it may be (a name is checked when it is resolved). */
export function privateTarget(url: URL): string | undefined {
  const host = url.hostname.replace(/^\[|\]$/g, "");
  if (host === "localhost" || host.endsWith(".localhost") || isPrivateAddress(host)) {
    return `${url.hostname} is a loopback or private address, and this server posts webhooks only to public ones (--webhook-targets public)`;
  }
  return undefined;
}

/** A `lookup` for requests that refuses names resolving to a private address. */
export const publicOnlyLookup: LookupFunction = (hostname, options, callback) => {
  dnsLookup(hostname, { ...(options as object), all: true } as LookupAllOptions, (err, addresses: LookupAddress[]) => {
    if (err) return callback(err, "", 0);
    const bad = addresses.find((a) => isPrivateAddress(a.address));
    if (bad) {
      const e = Object.assign(new Error(`${hostname} resolves to ${bad.address}, a loopback or private address; this server posts webhooks only to public ones (--webhook-targets public)`), {
        code: "EPRIVATETARGET",
      });
      return callback(e, "", 0);
    }
    const wantsAll = (options as { all?: boolean }).all === true;
    if (wantsAll) return (callback as unknown as (e: null, a: LookupAddress[]) => void)(null, addresses);
    const first = addresses[0] as LookupAddress;
    callback(null, first.address, first.family);
  });
};

/**
 * Which role an RPC needs, read from the contract: every method of
 * stepq.v1 declares `option (stepq.v1.required_role)` in its .proto file
 * (proto/stepq/v1/auth.proto defines the option and the roles), so the
 * table the server checks is the one clients read next to each method.
 */
import { type DescMethod, getOption } from "@bufbuild/protobuf";
import { Role, required_role } from "../gen/stepq/v1/auth_pb.js";

/**
 * Services every caller may use without a key: gRPC's health protocol is
 * for probes, which hold none, and says only whether the server serves.
 * Every other RPC, of any contract, needs a key when the server requires
 * keys (a method of stepq.v1 declares which role; any other needs one of
 * any role).
 */
const PUBLIC_SERVICES: ReadonlySet<string> = new Set(["grpc.health.v1.Health"]);

/** Whether `method` needs no key. */
export function isPublic(method: DescMethod): boolean {
  return PUBLIC_SERVICES.has(method.parent.typeName);
}

/** The role `method` declares (ROLE_UNSPECIFIED for a method of another contract, e.g. gRPC health). */
export function requiredRole(method: DescMethod): Role {
  return getOption(method, required_role);
}

/** Roles nest: ADMIN holds every role, SUBMIT holds READ; WORKER stands apart. */
export function roleGrants(held: readonly Role[], needed: Role): boolean {
  if (needed === Role.UNSPECIFIED) return true;
  return held.some((r) => r === needed || r === Role.ADMIN || (r === Role.SUBMIT && needed === Role.READ));
}

/** The name a key's record and the CLI use for a role ("submit"), from its enum value. */
export function roleName(role: Role): string {
  return Role[role].toLowerCase();
}

/** A role's enum value from its name ("submit"); undefined for an unknown name. */
export function roleFromName(name: string): Role | undefined {
  const value = (Role as unknown as Record<string, number>)[name.toUpperCase()];
  return value === undefined || value === Role.UNSPECIFIED ? undefined : (value as Role);
}

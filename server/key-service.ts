/**
 * KeyService: API keys over the API, for admins (what `stepq keys` does
 * with Redis credentials). Handlers check nothing themselves: the auth
 * interceptor lets only ROLE_ADMIN keys through, and queue/api-keys.ts
 * validates the fields and names the one that is wrong.
 */
import { create } from "@bufbuild/protobuf";
import { timestampFromMs, timestampMs } from "@bufbuild/protobuf/wkt";
import type { ServiceImpl } from "@connectrpc/connect";
import { Role } from "../gen/stepq/v1/auth_pb.js";
import { type ApiKey as ApiKeyMessage, ApiKeySchema, type KeyService } from "../gen/stepq/v1/key_service_pb.js";
import { type ApiKey, createApiKey, listApiKeys, revokeApiKey } from "../queue/api-keys.js";
import { InvalidArgumentError } from "../queue/errors.js";
import { roleFromName, roleName } from "./required-role.js";
import type { ServiceDeps } from "./step-service.js";

function toApiKey(k: ApiKey): ApiKeyMessage {
  return create(ApiKeySchema, {
    id: k.id,
    name: k.name,
    tenant: k.tenant,
    roles: k.roles.map((r) => roleFromName(r) ?? Role.UNSPECIFIED),
    createdAt: timestampFromMs(k.createdAt),
    expiresAt: k.expiresAt === undefined ? undefined : timestampFromMs(k.expiresAt),
  });
}

export function createKeyService({ queue }: ServiceDeps): ServiceImpl<typeof KeyService> {
  return {
    async createKey(req) {
      const roles = req.roles.map((r, i) => {
        if (r === Role.UNSPECIFIED || Role[r] === undefined) {
          throw new InvalidArgumentError(`roles[${i}]`, `${r} is not a role; use ROLE_READ, ROLE_SUBMIT, ROLE_WORKER or ROLE_ADMIN`);
        }
        return roleName(r);
      });
      const expiresAt = req.expiresAt ? timestampMs(req.expiresAt) : undefined;
      const { key, secret } = await createApiKey(queue.redis, queue.keys, { name: req.name, tenant: req.tenant, roles, expiresAt });
      return { key: toApiKey(key), secret };
    },

    async listKeys() {
      return { keys: (await listApiKeys(queue.redis, queue.keys)).map(toApiKey) };
    },

    async revokeKey(req) {
      return { key: toApiKey(await revokeApiKey(queue.redis, queue.keys, req.id)) };
    },
  };
}

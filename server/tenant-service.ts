/**
 * TenantService: each tenant's load against its quotas, and a tenant's own
 * quota values, for admins (what `stepq tenants` does with Redis
 * credentials). The auth interceptor lets only ROLE_ADMIN keys through;
 * queue/tenant-quotas.ts validates and names the wrong field.
 */
import { create } from "@bufbuild/protobuf";
import type { ServiceImpl } from "@connectrpc/connect";
import {
  type Tenant,
  type TenantQuotas,
  TenantQuotasSchema,
  TenantSchema,
  type TenantService,
} from "../gen/stepq/v1/tenant_service_pb.js";
import { listTenants, type QuotaValues, setTenantQuotas, type TenantLoad } from "../queue/tenant-quotas.js";
import type { ServiceDeps } from "./step-service.js";

function toQuotas(q: QuotaValues): TenantQuotas {
  return create(TenantQuotasSchema, { maxWaitingSteps: q.waiting, maxRunningSteps: q.running, maxSubmitsPerSecond: q.rate });
}

function toTenant(t: TenantLoad): Tenant {
  return create(TenantSchema, { name: t.name, quotas: toQuotas(t.quotas), waitingSteps: BigInt(t.waiting), runningSteps: BigInt(t.running) });
}

export function createTenantService({ queue }: ServiceDeps): ServiceImpl<typeof TenantService> {
  return {
    async listTenants() {
      const l = queue.limits;
      return {
        tenants: (await listTenants(queue.redis, queue.keys)).map(toTenant),
        defaults: toQuotas({ waiting: l.maxQueuedPerTenant, running: l.maxRunningPerTenant, rate: l.maxSubmitsPerSecond }),
      };
    },

    async setTenantQuotas(req) {
      const q = req.quotas;
      const values: QuotaValues = { waiting: q?.maxWaitingSteps, running: q?.maxRunningSteps, rate: q?.maxSubmitsPerSecond };
      return { tenant: toTenant(await setTenantQuotas(queue.redis, queue.keys, req.tenant, values)) };
    },
  };
}

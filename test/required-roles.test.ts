/**
 * Issue 15, item 2: each RPC's required role is declared next to the
 * contract (a method option in the .proto files) and checked RPC by RPC.
 */
import type { DescService } from "@bufbuild/protobuf";
import { describe, expect, it } from "vitest";
import { Role } from "../gen/stepq/v1/auth_pb.js";
import { JobService } from "../gen/stepq/v1/job_service_pb.js";
import { QueueService } from "../gen/stepq/v1/queue_service_pb.js";
import { TenantService } from "../gen/stepq/v1/tenant_service_pb.js";
import { KeyService } from "../gen/stepq/v1/key_service_pb.js";
import { StepService } from "../gen/stepq/v1/step_service_pb.js";
import { WebhookService } from "../gen/stepq/v1/webhook_service_pb.js";
import { ROLES } from "../queue/api-keys.js";
import { requiredRole, roleFromName, roleGrants, roleName } from "../server/required-role.js";

const SERVICES: DescService[] = [StepService, JobService, KeyService, TenantService, QueueService, WebhookService];

describe("the role table in the contract", () => {
  it("every method of every stepq service declares a role", () => {
    for (const service of SERVICES) {
      for (const method of service.methods) {
        expect(requiredRole(method), `${service.typeName}.${method.name}`).not.toBe(Role.UNSPECIFIED);
      }
    }
  });

  it("reading needs read; submitting, cancelling, retrying and purging need submit; managing keys needs admin", () => {
    const table = Object.fromEntries(SERVICES.flatMap((s) => s.methods.map((m) => [`${s.name}.${m.name}`, roleName(requiredRole(m))])));
    expect(table).toEqual({
      "StepService.SubmitStep": "submit",
      "StepService.SubmitSteps": "submit",
      "StepService.GetStep": "read",
      "StepService.ListSteps": "read",
      "StepService.CancelStep": "submit",
      "StepService.StreamTokens": "read",
      "StepService.StreamNarration": "read",
      "StepService.RetryStep": "submit",
      "StepService.PurgeStep": "submit",
      "StepService.WatchSteps": "read",
      "JobService.SubmitJob": "submit",
      "JobService.GetJob": "read",
      "JobService.ListJobs": "read",
      "JobService.CancelJob": "submit",
      "JobService.WatchJob": "read",
      "JobService.StreamJobOutput": "read",
      "KeyService.CreateKey": "admin",
      "KeyService.ListKeys": "admin",
      "KeyService.RevokeKey": "admin",
      "TenantService.ListTenants": "admin",
      "TenantService.SetTenantQuotas": "admin",
      "QueueService.GetQueueStats": "read",
      "QueueService.ListLegacyUsage": "read",
      "QueueService.ListWorkers": "read",
      "WebhookService.CreateWebhook": "submit",
      "WebhookService.DeleteWebhook": "submit",
      "WebhookService.EnableWebhook": "submit",
      "WebhookService.GetWebhook": "read",
      "WebhookService.ListDeliveries": "read",
      "WebhookService.ListWebhooks": "read",
      "WebhookService.TestWebhook": "submit",
      "WebhookService.UpdateWebhook": "submit",
    });
  });

  it("roles nest: admin holds all, submit holds read, worker stands apart", () => {
    const { READ, SUBMIT, WORKER, ADMIN } = Role;
    expect([READ, SUBMIT, WORKER, ADMIN].map((needed) => roleGrants([ADMIN], needed))).toEqual([true, true, true, true]);
    expect([READ, SUBMIT, WORKER, ADMIN].map((needed) => roleGrants([SUBMIT], needed))).toEqual([true, true, false, false]);
    expect([READ, SUBMIT, WORKER, ADMIN].map((needed) => roleGrants([READ], needed))).toEqual([true, false, false, false]);
    expect([READ, SUBMIT, WORKER, ADMIN].map((needed) => roleGrants([WORKER], needed))).toEqual([false, false, true, false]);
    expect(roleGrants([], READ)).toBe(false);
  });

  it("the key store's role names are the contract's roles", () => {
    expect(ROLES.map((r) => roleFromName(r))).toEqual([Role.SUBMIT, Role.READ, Role.WORKER, Role.ADMIN]);
    expect(roleFromName("unspecified")).toBeUndefined();
    expect(roleFromName("root")).toBeUndefined();
  });
});

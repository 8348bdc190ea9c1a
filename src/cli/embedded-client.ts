import { packManifest } from "../artifacts/archive.js";
import { findArtifact, listArtifacts } from "../artifacts/catalog.js";
import { revoke } from "../artifacts/gate/index.js";
import { listAudit } from "../audit/log.js";
import { auditHead, verifyAudit } from "../audit/verify.js";
import {
  createUser,
  ensureLocalAdmin,
  issueToken,
  listUsers,
  type Principal,
  revokeToken,
} from "../auth/index.js";
import type { Config } from "../config/config.js";
import { attestationsOf } from "../controller/attestations.js";
import { Controller } from "../controller/controller.js";
import { provenanceKeys } from "../controller/publish.js";
import { promoteArtifact, verifyStoredArtifact } from "../controller/verify.js";
import {
  listRunViews,
  listWaitingJobs,
  loadJobView,
  loadRunView,
  type RunView,
} from "../controller/views.js";
import { AirlockError } from "../errors.js";
import { SigningKeys } from "../identity/index.js";
import { isId } from "../ids.js";
import { type LogLine, readLogs } from "../logs/pipeline.js";
import { auditedDestinations, listFlows, suggestAllowlist } from "../network/proxy/index.js";
import { listEnvironments, putEnvironment } from "../repos/environments.js";
import { listRepos, registerRepo, setOidcSubject } from "../repos/registry.js";
import { deleteSecret, listSecrets, setSecret } from "../secrets/index.js";
import type { AirlockClient } from "./client.js";

const finishedJobStates = new Set(["torn_down", "denied", "skipped", "cancelled"]);
const pollMs = 150;

/**
 * The CLI without a server: this process opens the store, acts as the local admin, and for runs
 * also runs the scheduler (so it takes the data directory's controller lock).
 */
export async function createEmbeddedClient(
  config: Config,
  opts: { schedule: boolean },
): Promise<AirlockClient> {
  const controller = await Controller.open({ config, schedule: opts.schedule });
  const db = controller.db;
  const principal: Principal = await ensureLocalAdmin(db);

  const client: AirlockClient = {
    mode: "embedded",
    async submitRun(req) {
      if (!opts.schedule) throw new AirlockError("INTERNAL", "this client was opened without a scheduler");
      const { run } = await controller.submit(req, principal);
      return loadRunView(db, run.id);
    },
    getRun: (id) => loadRunView(db, id),
    listRuns: (o) => listRunViews(db, o),
    getJob: (id) => loadJobView(db, id),
    async *logs(jobId, o): AsyncIterable<LogLine> {
      let after = o.afterSeq ?? 0;
      for (;;) {
        const lines = await readLogs(db, jobId, after);
        for (const line of lines) {
          after = line.seq;
          yield line;
        }
        if (lines.length > 0) continue;
        if (!o.follow) return;
        const job = await loadJobView(db, jobId);
        if (finishedJobStates.has(job.state)) {
          // One last read: lines flushed between the read above and the state check.
          const rest = await readLogs(db, jobId, after);
          for (const line of rest) yield line;
          return;
        }
        await new Promise((r) => setTimeout(r, pollMs));
      }
    },
    async cancel(id) {
      if (isId("run", id)) return controller.cancelRun(id, principal);
      if (isId("job", id)) return controller.cancelJob(id, principal);
      throw new AirlockError("REQUEST_INVALID", `"${id}" is neither a run id (run_…) nor a job id (job_…)`);
    },
    async waitForRun(runId, onChange) {
      let last = "";
      for (;;) {
        const run = await loadRunView(db, runId);
        const key = JSON.stringify([run.state, run.jobs?.map((j) => j.state)]);
        if (key !== last) {
          last = key;
          onChange?.(run);
        }
        if (isDone(run)) return run;
        await new Promise((r) => setTimeout(r, pollMs));
      }
    },
    auditVerify: (anchors) => verifyAudit(db, { anchors: anchors ?? [] }),
    auditHead: () => auditHead(db),
    auditList: (q) => listAudit(db, q),
    egressFlows: (jobId) => listFlows(db, { jobId }),
    egressSuggest: async (repo) => suggestAllowlist(await auditedDestinations(db, repo)),
    async decideApproval(jobId, decision, comment) {
      await controller.decideApproval(jobId, principal, decision, comment);
      return loadJobView(db, jobId);
    },
    listWaitingJobs: () => listWaitingJobs(db),
    putEnvironment: (input) => putEnvironment(db, input, principal.userName),
    listEnvironments: (repo) => listEnvironments(db, repo),
    setSecret: (input) => setSecret(db, controller.deps.kek, input, principal.userName),
    listSecrets: (scope) => listSecrets(db, scope),
    deleteSecret: async (input) => {
      await deleteSecret(db, input, principal.userName);
    },
    setOidcSubject: (repo, customization) => setOidcSubject(db, repo, customization, principal.userName),
    async rotateSigningKey(which = "id-token") {
      if (which === "provenance") {
        const { created, retired } = await provenanceKeys(controller.deps).rotate(principal.userName);
        return { created: created.keyid, retired: retired?.keyid ?? null };
      }
      const keys = new SigningKeys(db, {
        kek: controller.deps.kek,
        maxTokenLifetimeSeconds: config.identity.tokenLifetimeSeconds,
      });
      const { created, retired } = await keys.rotate(principal.userName);
      return { created: created.kid, retired: retired?.kid ?? null };
    },
    listArtifacts: (o) => listArtifacts(db, o),
    async downloadArtifact(ref) {
      const found = await findArtifact(db, ref);
      const { manifest, ...info } = found;
      return { info, tar: packManifest(controller.deps.artifacts, manifest) };
    },
    attestations: (ref) => attestationsOf(controller.deps, ref),
    verifyArtifact: (req) => verifyStoredArtifact(controller.deps, req, principal.userName),
    revoke: async (input) => ({ created: (await revoke(db, input, principal.userName)).created }),
    promote: (input) => promoteArtifact(controller.deps, input, principal),
    addRepo: (input) => registerRepo(db, input, principal.userName),
    listRepos: () => listRepos(db),
    createUser: (input) => createUser(db, input as Parameters<typeof createUser>[1], principal),
    listUsers: () => listUsers(db, principal),
    async issueToken(input) {
      let userId = principal.userId;
      if (input.user) {
        const user = (await listUsers(db, principal)).find((u) => u.name === input.user);
        if (!user) throw new AirlockError("NOT_FOUND", `user ${input.user} does not exist`);
        userId = user.id;
      }
      return issueToken(db, { userId, name: input.name, ttlSeconds: input.ttlSeconds }, principal);
    },
    revokeToken: (id) => revokeToken(db, id, principal),
    close: () => controller.close(),
  };
  return client;
}

export function isDone(run: RunView): boolean {
  return (
    ["succeeded", "failed", "cancelled"].includes(run.state) &&
    (run.jobs ?? []).every((j) => finishedJobStates.has(j.state))
  );
}

import { PassThrough } from "node:stream";
import { ingestTar, type Manifest, packManifest } from "../../artifacts/archive.js";
import { appendAudit } from "../../audit/log.js";
import { AirlockError } from "../../errors.js";
import { newId } from "../../ids.js";
import { sandboxPath, sinkFor } from "./paths.js";
import type { StepEnv, StepResult } from "./types.js";

const uploadLimits = { maxBytes: 10 * 1024 * 1024 * 1024, maxFiles: 100_000 };

/**
 * actions/upload-artifact: tar runs inside the sandbox, so links and paths resolve in the job's own
 * view and nothing of the host can be packed; the controller stores each file by digest.
 */
export async function uploadArtifact(s: StepEnv): Promise<StepResult> {
  const name = (s.with.name ?? "artifact").trim();
  if (s.mask(name) !== name) {
    throw new AirlockError(
      "WORKFLOW_INVALID",
      "the artifact name contains a secret; artifact metadata is never masked, so it is refused",
    );
  }
  if (!/^[\w.-]{1,100}$/.test(name))
    throw new AirlockError(
      "WORKFLOW_INVALID",
      `artifact name "${name}" may hold only letters, digits, ".", "_" and "-"`,
    );
  const paths = (s.with.path ?? "")
    .split("\n")
    .map((p) => p.trim())
    .filter(Boolean)
    .map((p) => sandboxPath(p, "path").slice("/workspace/".length) || ".");
  if (paths.length === 0)
    throw new AirlockError("WORKFLOW_INVALID", "actions/upload-artifact needs with.path");

  const tarStream = new PassThrough();
  const ingest = ingestTar(s.deps.artifacts, tarStream, uploadLimits);
  ingest.catch(() => undefined);
  const logSink = sinkFor(s);
  const result = await s.sandbox.exec(
    {
      argv: ["tar", "-c", "-f", "-", "-C", "/workspace", "--", ...paths],
      env: s.env,
      timeoutMs: s.timeoutMs,
      signal: s.signal,
    },
    {
      write: (stream, chunk) => (stream === "stdout" ? tarStream.write(chunk) : logSink.write(stream, chunk)),
    },
  );
  tarStream.end();
  if (result.exitCode !== 0) {
    tarStream.destroy();
    return result;
  }
  const { manifest, digest, size } = await ingest;
  const id = newId("art");
  await s.deps.db.transaction().execute(async (trx) => {
    await trx
      .insertInto("artifacts")
      .values({
        id,
        run_id: s.run.id,
        job_id: s.job.id,
        name,
        digest,
        size,
        manifest: JSON.stringify(manifest),
        created_at: s.deps.clock.now().toISOString(),
      })
      .execute();
    await appendAudit(
      trx,
      {
        type: "artifact.uploaded",
        actor: s.runnerId,
        runId: s.run.id,
        jobId: s.job.id,
        runnerId: s.runnerId,
        data: { artifact: id, name, digest, size, files: manifest.files.length },
      },
      s.deps.clock,
    );
  });
  s.logs.write(
    s.stepIdx,
    "system",
    `Uploaded artifact ${name}: ${manifest.files.length} files, ${size} bytes, ${digest}\n`,
  );
  return result;
}

/** actions/download-artifact: an artifact of the same run, verified blob by blob, unpacked by tar inside the sandbox. */
export async function downloadArtifact(s: StepEnv): Promise<StepResult> {
  const name = (s.with.name ?? "").trim();
  if (!name) throw new AirlockError("WORKFLOW_INVALID", "actions/download-artifact needs with.name");
  const dest = sandboxPath(s.with.path ?? "", "path");
  const row = await s.deps.db
    .selectFrom("artifacts")
    .selectAll()
    .where("run_id", "=", s.run.id)
    .where("name", "=", name)
    .orderBy("created_at", "desc")
    .executeTakeFirst();
  if (!row) throw new AirlockError("NOT_FOUND", `run ${s.run.id} has no artifact named "${name}"`);
  const manifest = JSON.parse(row.manifest) as Manifest;
  return s.sandbox.exec(
    {
      argv: ["sh", "-c", 'mkdir -p -- "$1" && exec tar -x --no-same-owner -f - -C "$1"', "download", dest],
      env: s.env,
      stdin: packManifest(s.deps.artifacts, manifest),
      timeoutMs: s.timeoutMs,
      signal: s.signal,
    },
    sinkFor(s),
  );
}

import { randomBytes } from "node:crypto";
import { once } from "node:events";
import { createReadStream, createWriteStream } from "node:fs";
import { rm } from "node:fs/promises";
import { join } from "node:path";
import { ingestTar, type Manifest, packManifest } from "../../artifacts/archive.js";
import { assertNoSecrets, scanTarStream } from "../../artifacts/scan/index.js";
import { appendAudit } from "../../audit/log.js";
import { AirlockError } from "../../errors.js";
import { newId } from "../../ids.js";
import { sandboxPath, sinkFor } from "./paths.js";
import type { StepEnv, StepResult } from "./types.js";

const uploadLimits = { maxBytes: 10 * 1024 * 1024 * 1024, maxFiles: 100_000 };
/**
 * The most tar output an upload within uploadLimits can take: the content plus a header and
 * padding per entry and a long-name record for some. The spool is on the controller's disk, and
 * the job controls what `tar` writes (a sparse 1 TiB file reads as 1 TiB of zeros; its own `tar`
 * on PATH can write forever), so the spool stops there and the step is killed.
 */
const maxSpoolBytes = uploadLimits.maxBytes + uploadLimits.maxFiles * 2 * 3 * 512 + 1024 * 1024;

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

  // The upload is spooled first: it is scanned for the job's secrets before anything is stored.
  const spool = join(s.deps.artifacts.root, "incoming", `${randomBytes(12).toString("hex")}.tar`);
  const out = createWriteStream(spool, { mode: 0o600 });
  const written = new Promise<void>((resolve, reject) => {
    out.on("finish", resolve);
    out.on("error", reject);
  });
  const logSink = sinkFor(s);
  let spooled = 0;
  const tooBig = new AbortController();
  const onCancel = () => tooBig.abort();
  if (s.signal.aborted) tooBig.abort();
  else s.signal.addEventListener("abort", onCancel, { once: true });
  try {
    const result = await s.sandbox.exec(
      {
        argv: ["tar", "-c", "-f", "-", "-C", "/workspace", "--", ...paths],
        env: s.env,
        timeoutMs: s.timeoutMs,
        signal: tooBig.signal,
        expectMore: s.expectMore,
      },
      {
        write: (stream, chunk) => {
          if (stream !== "stdout") return logSink.write(stream, chunk);
          if (tooBig.signal.aborted) return;
          spooled += chunk.length;
          if (spooled > maxSpoolBytes) return tooBig.abort();
          out.write(chunk);
        },
        // The spool's disk may be slower than the job's tar: pause the pipe rather than buffer.
        ready: () => (out.writableNeedDrain ? once(out, "drain") : undefined),
      },
    );
    out.end();
    await written;
    if (spooled > maxSpoolBytes) {
      throw new AirlockError(
        "ARTIFACT_INVALID",
        `artifact "${name}" exceeds its limit of ${uploadLimits.maxBytes} bytes (stopped at ${maxSpoolBytes} bytes of tar)`,
        { hint: "upload less, or split it into several artifacts" },
      );
    }
    if (result.exitCode !== 0) return result;
    const scan = await scanTarStream(s.secretSet, createReadStream(spool), uploadLimits);
    await assertNoSecrets(
      s.deps.db,
      s.secretSet,
      scan,
      { artifact: name, actor: s.runnerId, runId: s.run.id, jobId: s.job.id, runnerId: s.runnerId },
      s.deps.clock,
    );
    await storeArtifact(s, name, await ingestTar(s.deps.artifacts, createReadStream(spool), uploadLimits));
    return result;
  } finally {
    s.signal.removeEventListener("abort", onCancel);
    out.destroy();
    await rm(spool, { force: true });
  }
}

async function storeArtifact(
  s: StepEnv,
  name: string,
  { manifest, digest, size }: Awaited<ReturnType<typeof ingestTar>>,
): Promise<void> {
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
      expectMore: s.expectMore,
    },
    sinkFor(s),
  );
}

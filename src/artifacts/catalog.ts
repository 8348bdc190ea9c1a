import { AirlockError } from "../errors.js";
import type { Db } from "../store/database.js";
import type { Manifest } from "./archive.js";

/** An uploaded artifact and where it came from. */
export interface ArtifactInfo {
  id: string;
  name: string;
  digest: string;
  size: number;
  files: number;
  runId: string;
  jobId: string;
  runnerId: string | null;
  repo: string;
  ref: string;
  sha: string;
  workflow: string;
  createdAt: string;
}

function query(db: Db) {
  return db
    .selectFrom("artifacts as a")
    .innerJoin("jobs as j", "j.id", "a.job_id")
    .innerJoin("runs as r", "r.id", "a.run_id")
    .innerJoin("repos as p", "p.id", "r.repo_id")
    .select([
      "a.id",
      "a.name",
      "a.digest",
      "a.size",
      "a.manifest",
      "a.run_id",
      "a.job_id",
      "a.created_at",
      "j.runner_id",
      "p.name as repo",
      "r.ref",
      "r.sha",
      "r.workflow_path",
    ]);
}

type Row = Awaited<ReturnType<ReturnType<typeof query>["executeTakeFirstOrThrow"]>>;

function toInfo(r: Row): ArtifactInfo {
  return {
    id: r.id,
    name: r.name,
    digest: r.digest,
    size: Number(r.size),
    files: (JSON.parse(r.manifest) as Manifest).files.length,
    runId: r.run_id,
    jobId: r.job_id,
    runnerId: r.runner_id,
    repo: r.repo,
    ref: r.ref,
    sha: r.sha,
    workflow: r.workflow_path,
    createdAt: r.created_at,
  };
}

export async function listArtifacts(
  db: Db,
  opts: { runId?: string; limit?: number } = {},
): Promise<ArtifactInfo[]> {
  let q = query(db)
    .orderBy("a.created_at", "desc")
    .limit(opts.limit ?? 100);
  if (opts.runId) q = q.where("a.run_id", "=", opts.runId);
  return (await q.execute()).map(toInfo);
}

/** By id (`art_…`) or by the artifact's manifest digest (`sha256:…`). */
export async function findArtifact(db: Db, ref: string): Promise<ArtifactInfo & { manifest: Manifest }> {
  const row = await query(db)
    .where((eb) => eb.or([eb("a.id", "=", ref), eb("a.digest", "=", ref)]))
    .orderBy("a.created_at", "desc")
    .executeTakeFirst();
  if (!row)
    throw new AirlockError("NOT_FOUND", `no artifact ${ref}`, {
      hint: "list them with `airlock artifacts list`",
    });
  return { ...toInfo(row), manifest: JSON.parse(row.manifest) as Manifest };
}

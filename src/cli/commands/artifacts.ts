import type { Command } from "commander";
import { extractArtifact } from "../../artifacts/extract.js";
import { withClient } from "../connect.js";
import { table } from "../output.js";

export function registerArtifacts(program: Command): void {
  const artifacts = program.command("artifacts").description("content-addressed build outputs");
  artifacts
    .command("list")
    .option("--run <run>", "only this run's")
    .option("--json", "print JSON")
    .action(async (o: { run?: string; json?: boolean }, cmd: Command) => {
      await withClient(cmd, {}, async (client) => {
        const list = await client.listArtifacts(o.run ? { runId: o.run } : {});
        if (o.json) return void process.stdout.write(`${JSON.stringify(list, null, 2)}\n`);
        process.stdout.write(
          `${table(
            ["ARTIFACT", "NAME", "DIGEST", "FILES", "BYTES", "REPO", "REF", "RUN", "RUNNER"],
            list.map((a) => [a.id, a.name, a.digest, a.files, a.size, a.repo, a.ref, a.runId, a.runnerId]),
          )}\n`,
        );
      });
    });
  artifacts
    .command("download")
    .description("fetch an artifact's files, each checked against its digest")
    .argument("<artifact>", "art_… id or sha256:… digest")
    .requiredOption("--out <dir>", "where to write the files")
    .action(async (ref: string, o: { out: string }, cmd: Command) => {
      await withClient(cmd, {}, async (client) => {
        const { info, tar } = await client.downloadArtifact(ref);
        const { files } = await extractArtifact(tar, o.out);
        process.stdout.write(`${info.name} (${info.digest}): ${files} files written to ${o.out}\n`);
      });
    });
}

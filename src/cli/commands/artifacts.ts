import { mkdir, writeFile } from "node:fs/promises";
import { join } from "node:path";
import type { Command } from "commander";
import { extractArtifact } from "../../artifacts/extract.js";
import { AirlockError } from "../../errors.js";
import { withClient } from "../connect.js";
import { paint, table } from "../output.js";

export function registerVerify(program: Command): void {
  program
    .command("verify")
    .description(
      "check an artifact's signed provenance: digest, signature, trusted key, subject, builder, revocations",
    )
    .argument("<artifact>", "art_… id, or the sha256:… digest of an artifact or one of its files")
    .option("--repo <repo>", "must have been built from this repository (OWNER/NAME)")
    .option("--ref <ref>", "… from this branch or tag")
    .option("--workflow <path>", "… by this workflow file")
    .option("--protected", "… from a protected ref")
    .option("--json", "print the verification as JSON")
    .action(
      async (
        artifact: string,
        o: { repo?: string; ref?: string; workflow?: string; protected?: boolean; json?: boolean },
        cmd: Command,
      ) => {
        const ok = await withClient(cmd, {}, async (client) => {
          const v = await client.verifyArtifact({
            artifact,
            ...(o.repo ? { repo: o.repo } : {}),
            ...(o.ref ? { ref: o.ref } : {}),
            ...(o.workflow ? { workflow: o.workflow } : {}),
            ...(o.protected ? { protectedRefOnly: true } : {}),
          });
          if (o.json) process.stdout.write(`${JSON.stringify(v, null, 2)}\n`);
          else if (v.ok) process.stdout.write(`${paint("green", "verified")}: ${v.message}\n`);
          else
            process.stderr.write(
              `${paint("red", `verification failed (${v.reason})`, "err")}: ${v.message}\n`,
            );
          return v.ok;
        });
        if (!ok) process.exitCode = 3;
      },
    );
}

export function registerGate(program: Command): void {
  program
    .command("revoke")
    .description(
      "revoke an artifact, a provenance signing key or a runner; verification refuses it from now on",
    )
    .argument("<kind>", "artifact | key | runner")
    .argument("<subject>", "sha256:… digest, key id, or rnr_… runner id")
    .requiredOption("--reason <text>", "why, for the audit log")
    .action(async (kind: string, subject: string, o: { reason: string }, cmd: Command) => {
      if (!["artifact", "key", "runner"].includes(kind)) {
        throw new AirlockError("REQUEST_INVALID", `"${kind}" is not artifact, key or runner`);
      }
      await withClient(cmd, {}, async (client) => {
        const r = await client.revoke({
          kind: kind as "artifact" | "key" | "runner",
          subject,
          reason: o.reason,
        });
        process.stdout.write(`${r.created ? "revoked" : "already revoked"}: ${kind} ${subject}\n`);
      });
    });
  program
    .command("promote")
    .description("promote a verified artifact to a channel, if its provenance satisfies the channel's policy")
    .argument("<artifact>", "art_… id or sha256:… digest")
    .requiredOption("--to <channel>", "e.g. staging or production")
    .action(async (artifact: string, o: { to: string }, cmd: Command) => {
      await withClient(cmd, {}, async (client) => {
        const p = await client.promote({ artifact, channel: o.to });
        process.stdout.write(
          `${paint("green", "promoted")} ${p.artifactDigest} to ${p.channel} (${p.policies.join(", ")})\n`,
        );
      });
    });
}

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
    .command("attestations")
    .description("write the artifact's signed provenance and SBOM (Sigstore bundles) to files")
    .argument("<artifact>", "art_… id or sha256:… digest")
    .requiredOption("--out <dir>", "where to write provenance.sigstore.json and sbom.sigstore.json")
    .action(async (ref: string, o: { out: string }, cmd: Command) => {
      await withClient(cmd, {}, async (client) => {
        const a = await client.attestations(ref);
        await mkdir(o.out, { recursive: true });
        for (const [name, bundle] of [
          ["provenance.sigstore.json", a.provenance],
          ["sbom.sigstore.json", a.sbom],
        ] as const) {
          if (!bundle) continue;
          await writeFile(join(o.out, name), bundle);
          process.stdout.write(`${join(o.out, name)}\n`);
        }
        if (!a.provenance && !a.sbom) process.stdout.write(`no attestations for ${a.artifact}\n`);
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

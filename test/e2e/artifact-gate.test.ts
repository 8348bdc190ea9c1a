import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Airlock, GitRepo, jobByKey, runIdOf } from "./cli-harness.js";

/**
 * What stands between a build and a release: an upload that carries a secret is refused before
 * anything is stored; promotion takes only verified artifacts whose provenance the channel's Cedar
 * policy accepts; a revoked runner's artifacts are refused from then on.
 */
let airlock: Airlock;
let repo: GitRepo;
const repoName = "e2e-gate/app";
const secretValue = "gate-s3cret-value-42";

const leakyWorkflow = `on: push
jobs:
  leak:
    runs-on: airlock
    secrets: [DEPLOY_TOKEN]
    steps:
      - run: |
          mkdir -p out
          echo clean > out/ok.txt
          printf 'token: %s\\n' '\${{ secrets.DEPLOY_TOKEN }}' | base64 > out/config.b64
      - uses: actions/upload-artifact@v4
        with: { name: leaky, path: out/ }
`;

beforeAll(async () => {
  airlock = Airlock.create("artifact-gate", {
    config: { sandbox: { uidBase: 520_000, uidCount: 64 }, network: { pool: "10.252.0.0/16" } },
  });
  repo = GitRepo.create(
    "artifact-gate",
    { ".airlock/workflows/leak.yml": leakyWorkflow },
    resolve("examples/hello-node"),
  );
  repo.git("checkout", "-q", "-b", "feature");
  // Different bytes, same behaviour: the unit tests still pass on the feature branch.
  repo.commit(
    {
      "src/greet.js":
        '// feature branch\nexport function greet(name) {\n  if (!name) throw new Error("a name is needed");\n  return "Hello, " + name + "!";\n}\n',
    },
    "feature build",
  );
  repo.git("checkout", "-q", "main");
  for (const args of [["repo", "add", repoName, "--source", repo.dir, "--protected-branch", "main"]]) {
    const r = await airlock.cli(...args);
    expect(r.status, r.stderr).toBe(0);
  }
  const set = await airlock.cliWith(
    { input: secretValue },
    "secret",
    "set",
    "DEPLOY_TOKEN",
    "--repo",
    repoName,
  );
  expect(set.status, set.stderr).toBe(0);
}, 120_000);

afterAll(() => {
  airlock?.cleanup();
  repo?.cleanup();
});

async function build(ref: string): Promise<string> {
  const r = await airlock.cli(
    "run",
    repoName,
    "--ref",
    ref,
    "--workflow",
    ".airlock/workflows/ci.yml",
    "--event",
    "workflow_dispatch",
  );
  expect(r.status, r.stdout + r.stderr).toBe(0);
  const run = await airlock.run(runIdOf(r.stdout));
  const list = await airlock.json<{ id: string; runId: string }[]>("artifacts", "list", "--run", run.id);
  expect(list).toHaveLength(1);
  return (list[0] as { id: string }).id;
}

describe("the artifact gate", () => {
  it("blocks an upload that carries a secret, naming the file and the secret, storing nothing", async () => {
    const r = await airlock.cli("run", repoName, "--workflow", ".airlock/workflows/leak.yml");
    expect(r.status).not.toBe(0);
    expect(r.stdout).toContain("out/config.b64 contains secret DEPLOY_TOKEN; the upload is blocked");
    const run = await airlock.run(runIdOf(r.stdout));
    expect(jobByKey(run, "leak").conclusion).toBe("failed");
    expect(await airlock.json<unknown[]>("artifacts", "list", "--run", run.id)).toEqual([]);
    const blocked = await airlock.audit({ type: "artifact.upload_blocked", run: run.id });
    expect(blocked).toHaveLength(1);
    expect(JSON.stringify(blocked[0]?.data)).toContain("DEPLOY_TOKEN");
    expect(JSON.stringify(await airlock.audit({ run: run.id }))).not.toContain(secretValue);
    expect(airlock.databaseBytes().toString("latin1")).not.toContain(secretValue);
  });

  it("promotes a protected build, refuses an unprotected one, and refuses a revoked runner's", async () => {
    const main = await build("main");
    const promoted = await airlock.cli("promote", main, "--to", "production");
    expect(promoted.status, promoted.stderr).toBe(0);
    expect(promoted.stdout).toMatch(/promoted sha256:[0-9a-f]{64} to production \(promote-protected-ref\)/);

    const feature = await build("feature");
    const refused = await airlock.cli("promote", feature, "--to", "production");
    expect(refused.status).not.toBe(0);
    expect(refused.stderr).toMatch(/promote-production-requires-protected-ref/);

    const runner = (await airlock.json<{ id: string; runnerId: string }[]>("artifacts", "list")).find(
      (a) => a.id === main,
    )?.runnerId;
    expect(runner).toMatch(/^rnr_/);
    const revoked = await airlock.cli("revoke", "runner", runner as string, "--reason", "host compromised");
    expect(revoked.status, revoked.stderr).toBe(0);
    const again = await airlock.cli("promote", main, "--to", "production");
    expect(again.status).not.toBe(0);
    expect(again.stderr).toMatch(/runner_revoked/);

    const types = (await airlock.audit()).map((e) => e.type);
    expect(types).toEqual(
      expect.arrayContaining(["artifact.promoted", "artifact.promotion_denied", "revocation.added"]),
    );
  });

  it("rotates the provenance key; artifacts signed before stay verifiable", async () => {
    const before = await build("main");
    const rotated = await airlock.cli("keys", "rotate", "--provenance");
    expect(rotated.status, rotated.stderr).toBe(0);
    const after = await build("main");
    for (const art of [before, after]) {
      const v = await airlock.cli("verify", art, "--repo", repoName, "--protected");
      expect(v.status, v.stdout + v.stderr).toBe(0);
    }
  });

  it("attaches a signed CycloneDX SBOM over the same subjects as the provenance", async () => {
    const art = await build("main");
    const out = mkdtempSync(join(tmpdir(), "airlock-e2e-att-"));
    try {
      const r = await airlock.cli("artifacts", "attestations", art, "--out", out);
      expect(r.status, r.stderr).toBe(0);
      const statementOf = (file: string) => {
        const bundle = JSON.parse(readFileSync(join(out, file), "utf8")) as {
          dsseEnvelope: { payload: string };
        };
        return JSON.parse(Buffer.from(bundle.dsseEnvelope.payload, "base64").toString("utf8")) as {
          predicateType: string;
          predicate: { bomFormat?: string };
          subject: unknown[];
        };
      };
      const provenance = statementOf("provenance.sigstore.json");
      const sbom = statementOf("sbom.sigstore.json");
      expect(provenance.predicateType).toBe("https://slsa.dev/provenance/v1");
      expect(sbom.predicateType).toBe("https://cyclonedx.org/bom");
      expect(sbom.predicate.bomFormat).toBe("CycloneDX");
      expect(sbom.subject).toEqual(provenance.subject);
    } finally {
      rmSync(out, { recursive: true, force: true });
    }
  });
});

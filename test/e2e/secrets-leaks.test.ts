import { createHash, randomBytes } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { AuditRecord } from "../../src/audit/events.js";
import type { RunView } from "../../src/controller/views.js";
import { Airlock, type CliResult, GitRepo, jobByKey, runIdOf } from "./cli-harness.js";

/**
 * A job that tries every way to print the secrets it was given. Secrets are stored with
 * `airlock secret set` (value on stdin) at all three scopes; the job declares them and prints each
 * raw, base64 at the three byte alignments, URL-encoded, JSON-escaped, hex, split across two writes
 * with a pause, and one byte at a time — on stdout and stderr. None of those forms may appear in
 * `airlock logs`, the live `airlock run` stream, the audit log or any byte of the database (main
 * file, WAL, shared memory); `secret list` shows no value; a step that does not interpolate a secret
 * does not have it in its environment; and a secret written to a step output does not travel on as
 * a job output (it would reach the database and, through `needs`, a job whose masker does not
 * know it).
 */
let airlock: Airlock;
let repo: GitRepo;
let run: RunView;
let result: CliResult;
let audit: AuditRecord[];

const owner = "e2e-leaks";
const repoName = `${owner}/app`;
const nonce = randomBytes(6).toString("hex");
// Characters that make each encoding differ from the raw value (and from each other).
const secrets = {
  LEAK_REPO: `repo-${nonce}/R+v=1&x"y\\z:q`,
  LEAK_ORG: `org-${nonce}~O.p_q<>#%w`,
  LEAK_ENV: `env-${nonce}@E$(ls)!'k`,
} as const;

/** The encodings the job prints, as they would appear if not masked. */
function forms(value: string): Record<string, string> {
  const b64 = (prefix: string) => Buffer.from(prefix + value).toString("base64");
  // Everything but the edges, whose characters also depend on the neighbouring bytes.
  const inner = (s: string) => s.slice(4, -4);
  return {
    raw: value,
    base64_0: inner(b64("")),
    base64_1: inner(b64("x")),
    base64_2: inner(b64("xy")),
    url: encodeURIComponent(value).replace(
      /[!'()*]/g,
      (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`,
    ),
    json: JSON.stringify(value).slice(1, -1),
    hex: Buffer.from(value).toString("hex"),
  };
}

// Reads the value from the step's env (never pasted into the script), prints it every way.
const printAll = `
for name in LEAK_REPO LEAK_ORG LEAK_ENV; do
  V="\${!name}"
  echo "form-raw $name: $V"
  echo "form-stderr $name: $V" >&2
  echo "form-b64-0 $name: $(printf '%s' "$V" | base64 -w0)"
  echo "form-b64-1 $name: $(printf 'x%s' "$V" | base64 -w0)"
  echo "form-b64-2 $name: $(printf 'xy%s' "$V" | base64 -w0)"
  echo "form-url $name: $(python3 -c 'import os,sys,urllib.parse; print(urllib.parse.quote(os.environ[sys.argv[1]], safe=""))' "$name")"
  echo "form-json $name: $(python3 -c 'import json,os,sys; print(json.dumps(os.environ[sys.argv[1]]))' "$name")"
  echo "form-hex $name: $(python3 -c 'import os,sys; print(os.environ[sys.argv[1]].encode().hex())' "$name")"
  printf 'form-split %s: %s' "$name" "\${V:0:9}"; sleep 0.3; printf '%s\\n' "\${V:9}"
  python3 - "$name" <<'PY'
import os, sys, time
v = os.environ[sys.argv[1]]
sys.stdout.write("form-slow %s: " % sys.argv[1]); sys.stdout.flush()
for ch in v:
    sys.stdout.write(ch); sys.stdout.flush(); time.sleep(0.02)
sys.stdout.write("\\n"); sys.stdout.flush()
PY
done
`;

const indent = (s: string, n: number) =>
  s
    .trim()
    .split("\n")
    .map((l) => `${" ".repeat(n)}${l}`)
    .join("\n");

// Counts environment entries holding a secret, by hash of every window of the value's length:
// the step learns only hashes, so it cannot print what it looks for.
const envProbe = (label: string) => {
  const hashes = Object.values(secrets).map((v) => [
    Buffer.byteLength(v),
    createHash("sha256").update(v).digest("hex"),
  ]);
  return `python3 - <<'PY'
import hashlib, os
wanted = ${JSON.stringify(hashes)}
def holds(b):
    return any(hashlib.sha256(b[i:i + n]).hexdigest() == h for n, h in wanted for i in range(len(b) - n + 1))
env = open("/proc/self/environ", "rb").read().split(b"\\0")
print("${label}:", sum(1 for e in env if holds(e)))
PY`;
};

const workflow = `on: push
jobs:
  leaky:
    runs-on: airlock
    environment: staging
    secrets: [LEAK_REPO, LEAK_ORG, LEAK_ENV]
    outputs:
      leak: \${{ steps.out.outputs.leak }}
      harmless: \${{ steps.out.outputs.harmless }}
    steps:
      - name: print every form
        env:
          LEAK_REPO: \${{ secrets.LEAK_REPO }}
          LEAK_ORG: \${{ secrets.LEAK_ORG }}
          LEAK_ENV: \${{ secrets.LEAK_ENV }}
        run: |
${indent(printAll, 10)}
${indent(envProbe("env-with-secrets"), 10)}
      - name: no secrets here
        run: |
${indent(envProbe("env-without-secrets"), 10)}
      - id: out
        env:
          V: \${{ secrets.LEAK_REPO }}
        run: |
          echo "leak=$V" >> "$GITHUB_OUTPUT"
          echo "harmless=plain-output" >> "$GITHUB_OUTPUT"
  consumer:
    needs: leaky
    runs-on: airlock
    steps:
      - env:
          LEAK: \${{ needs.leaky.outputs.leak }}
          HARMLESS: \${{ needs.leaky.outputs.harmless }}
        run: |
          echo "consumer got: [$LEAK]"
          echo "consumer harmless: [$HARMLESS]"
`;

beforeAll(async () => {
  airlock = Airlock.create("secrets-leaks", {
    config: { sandbox: { uidBase: 416_000, uidCount: 64 }, network: { pool: "10.244.0.0/16" } },
  });
  repo = GitRepo.create("secrets-leaks", { ".airlock/workflows/ci.yml": workflow });
  for (const args of [
    ["repo", "add", repoName, "--source", repo.dir],
    ["env", "set", repoName, "staging", "--branch", "main"],
  ]) {
    const r = await airlock.cli(...args);
    expect(r.status, r.stderr).toBe(0);
  }
  const scopes: Record<keyof typeof secrets, string[]> = {
    LEAK_REPO: ["--repo", repoName],
    LEAK_ORG: ["--org", owner],
    LEAK_ENV: ["--repo", repoName, "--env", "staging"],
  };
  for (const [name, value] of Object.entries(secrets)) {
    // The trailing newline `echo` adds is not part of the value.
    const r = await airlock.cliWith(
      { input: `${value}\n` },
      "secret",
      "set",
      name,
      ...scopes[name as keyof typeof secrets],
    );
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout + r.stderr).not.toContain(value);
  }
  result = await airlock.cli("run", repoName);
  run = await airlock.run(runIdOf(result.stdout));
  audit = await airlock.audit();
}, 180_000);

afterAll(() => {
  airlock?.cleanup();
  repo?.cleanup();
});

function expectNoSecretIn(where: string, text: string): void {
  for (const [name, value] of Object.entries(secrets)) {
    for (const [form, encoded] of Object.entries(forms(value))) {
      expect(text.includes(encoded), `${name} ${form} in ${where}`).toBe(false);
    }
  }
}

describe("a job printing its secrets every way it can", () => {
  it("runs, with each secret resolved from its own scope at provisioning", async () => {
    expect(result.status, result.stdout + result.stderr).toBe(0);
    const leaky = jobByKey(run, "leaky");
    const granted = audit.filter((r) => r.type === "secret.granted" && r.jobId === leaky.id);
    expect(granted).toHaveLength(1);
    const scopes = Object.fromEntries(
      ((granted[0]?.data.decisions ?? []) as { name: string; scope: string }[]).map((d) => [d.name, d.scope]),
    );
    expect(scopes).toEqual({
      LEAK_REPO: `repo:${repoName}`,
      LEAK_ORG: `org:${owner}`,
      LEAK_ENV: `environment:${repoName}:staging`,
    });
    expect(granted[0]?.data).toMatchObject({ via: "provision" });
  });

  it("shows *** for every form in the stored log and the live stream", async () => {
    const logs = await airlock.logs(jobByKey(run, "leaky").id);
    for (const [where, text] of [
      ["airlock logs", logs],
      ["airlock run output", result.stdout],
    ] as const) {
      for (const name of Object.keys(secrets)) {
        for (const form of [
          "raw",
          "stderr",
          "b64-0",
          "b64-1",
          "b64-2",
          "url",
          "json",
          "hex",
          "split",
          "slow",
        ]) {
          const line = text.split("\n").find((l) => l.includes(`form-${form} ${name}: `));
          expect(line, `${where}: form-${form} ${name}`).toBeDefined();
          expect(line, `${where}: form-${form} ${name}`).toContain("***");
        }
      }
      expectNoSecretIn(where, text);
    }
  });

  it("leaves no form in the audit log or anywhere in the database files", async () => {
    const auditText = (await airlock.cli("audit", "list", "--limit", "100000", "--json")).stdout;
    expect(auditText).toContain("secret.granted");
    expectNoSecretIn("audit list --json", auditText);
    expectNoSecretIn("the database files", airlock.databaseBytes().toString("latin1"));
    expectNoSecretIn("the database files (utf8)", airlock.databaseBytes().toString("utf8"));
  });

  it("secret list shows names and scopes, never values", async () => {
    const list = await airlock.cli("secret", "list");
    expect(list.status, list.stderr).toBe(0);
    for (const name of Object.keys(secrets)) expect(list.stdout).toContain(name);
    expectNoSecretIn("secret list", list.stdout);
  });

  it("gives a secret only to steps that interpolate it", async () => {
    const logs = await airlock.logs(jobByKey(run, "leaky").id);
    expect(logs).toContain("env-with-secrets: 3");
    expect(logs).toContain("env-without-secrets: 0");
  });

  it("does not pass a secret on through a step output and a job output", async () => {
    const leaky = await airlock.job(jobByKey(run, "leaky").id);
    // Masked where it is read (or dropped): either way the value is not what is stored or passed.
    expect(leaky.outputs.harmless).toBe("plain-output");
    expect(leaky.outputs.leak ?? "***").toBe("***");
    const consumer = await airlock.logs(jobByKey(run, "consumer").id);
    expect(consumer).toContain("consumer harmless: [plain-output]");
    expect(consumer).toMatch(/consumer got: \[(\*\*\*)?\]/);
    expectNoSecretIn("the consumer's log", consumer);
  });
});

import { chmodSync, existsSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { AuditRecord } from "../../src/audit/events.js";
import type { RunView } from "../../src/controller/views.js";
import { Airlock, type BackgroundCli, GitRepo, jobByKey, waitFor } from "./cli-harness.js";

/**
 * Stolen job credentials, through the real CLI and jobs. One run, three jobs:
 *
 * - `victim` gets its request token and an ID token for the secrets broker, proves they work (a
 *   lease for REPLAY_SECRET), drops them in its workspace and waits.
 * - `thief` runs at the same time. The test plays the exfiltration channel: it copies the
 *   victim's credentials into the thief's workspace (jobs share nothing, so no job could). While
 *   the victim is still running, the thief presents them: the victim's request token at its own
 *   token endpoint (refused: token of another job), the victim's ID token at its own broker
 *   (refused: token_other_job, although the thief is entitled to the same secret by scope — its
 *   own token gets it), the victim's own job API (unreachable), the victim's workspace (not there).
 * - `replayer` needs `victim`, so it starts after the victim ended and its credentials were revoked
 *   at teardown: replaying both is refused (revoked).
 *
 * Every refusal is a 401/403 to the job and an audit record that says why.
 */
let airlock: Airlock;
let repo: GitRepo;

const repoName = "e2e-replay/app";

const idTokenFn = `id_token() {
  curl -fsS --noproxy '*' -H "Authorization: bearer $ACTIONS_ID_TOKEN_REQUEST_TOKEN" \\
    "$ACTIONS_ID_TOKEN_REQUEST_URL&audience=$1" | python3 -c 'import json,sys; print(json.load(sys.stdin)["value"])'
}
# status URL [curl args…]: the HTTP status only (000 when nothing answered).
status() { curl -s --noproxy '*' --max-time 5 -o /dev/null -w '%{http_code}' "$@" || true; }
exchange() {
  status -X POST -H "Authorization: bearer $1" -H 'content-type: application/json' \\
    -d '{"secrets":["REPLAY_SECRET"]}' "$AIRLOCK_SECRETS_URL"
}
wait_for() { for _ in $(seq 1 300); do [ -f "$1" ] && return 0; sleep 0.2; done; echo "no $1"; exit 1; }`;

const indent = (s: string, n: number) =>
  s
    .split("\n")
    .map((l) => `${" ".repeat(n)}${l}`)
    .join("\n");

// The loot file: request token, ID token (broker audience), request URL (the victim's own API).
const attacks = `read_loot() { { read -r A_REQ; read -r A_ID; read -r A_URL; } < /workspace/loot; }
wait_for /workspace/loot
read_loot
echo "request token of another job at my endpoint: $(status -H "Authorization: bearer $A_REQ" "$ACTIONS_ID_TOKEN_REQUEST_URL&audience=x")"
echo "ID token of another job at my broker: $(exchange "$A_ID")"`;

const workflow = `on: push
jobs:
  victim:
    runs-on: airlock
    # A job's own exchange is held to what it declares.
    secrets: [REPLAY_SECRET]
    permissions:
      id-token: write
    steps:
      - run: |
${indent(idTokenFn, 10)}
          id=$(id_token "$AIRLOCK_SECRETS_AUDIENCE")
          echo "victim exchange: $(exchange "$id")"
          printf '%s\\n%s\\n%s\\n' "$ACTIONS_ID_TOKEN_REQUEST_TOKEN" "$id" "$ACTIONS_ID_TOKEN_REQUEST_URL" > /workspace/loot
          wait_for /workspace/release
  thief:
    runs-on: airlock
    secrets: [REPLAY_SECRET]
    permissions:
      id-token: write
    steps:
      - run: |
${indent(idTokenFn, 10)}
${indent(attacks, 10)}
          echo "request token of another job at its own endpoint: $(status -H "Authorization: bearer $A_REQ" "$A_URL&audience=x")"
          echo "my own ID token at my broker: $(exchange "$(id_token "$AIRLOCK_SECRETS_AUDIENCE")")"
          victim_ws=$(cat /workspace/victim-workspace)
          if ls "$victim_ws" >/dev/null 2>&1; then echo "victim workspace: visible"; else echo "victim workspace: absent"; fi
          ls /workspace
  replayer:
    needs: victim
    runs-on: airlock
    permissions:
      id-token: write
    steps:
      - run: |
${indent(idTokenFn, 10)}
${indent(attacks, 10)}
`;

let run: RunView;
/** The whole audit log once the run is over; each check filters it. */
let audit: AuditRecord[];
let background: BackgroundCli;
let finished: Awaited<BackgroundCli["exited"]>;

beforeAll(async () => {
  airlock = Airlock.create("identity-replay", {
    config: {
      sandbox: { uidBase: 414_000, uidCount: 64 },
      network: { pool: "10.243.0.0/16" },
    },
  });
  repo = GitRepo.create("identity-replay", { ".airlock/workflows/ci.yml": workflow });
  const added = await airlock.cli("repo", "add", repoName, "--source", repo.dir);
  expect(added.status, added.stderr).toBe(0);
  const set = await airlock.cliWith(
    { input: "replay-secret-value-4711\n" },
    "secret",
    "set",
    "REPLAY_SECRET",
    "--repo",
    repoName,
  );
  expect(set.status, set.stderr).toBe(0);

  background = airlock.start(["run", repoName]);
  const runId = await waitFor(
    "the run id",
    async () => /^run (run_[a-z0-9]+) #/m.exec(background.output().stdout)?.[1],
  );
  const current = await airlock.run(runId);
  const victim = jobByKey(current, "victim");
  const thief = jobByKey(current, "thief");
  const replayer = jobByKey(current, "replayer");
  const loot = join(airlock.workspaceDir(victim.id), "loot");
  // The test is the channel an attacker would need: it reads the victim's workspace as root.
  const stolen = await waitFor(
    "the victim's credentials",
    async () => {
      if (!existsSync(loot)) return undefined;
      const text = readFileSync(loot, "utf8");
      return text.split("\n").length >= 4 ? text : undefined;
    },
    60_000,
  );
  const plant = (jobId: string, name: string, text: string) => {
    const file = join(airlock.workspaceDir(jobId), name);
    writeFileSync(file, text);
    chmodSync(file, 0o644);
  };
  await waitFor("the thief's workspace", async () => existsSync(airlock.workspaceDir(thief.id)), 60_000);
  plant(thief.id, "victim-workspace", `${airlock.workspaceDir(victim.id)}\n`);
  plant(thief.id, "loot", stolen);
  await waitFor("the thief to finish", async () => (await airlock.job(thief.id)).finishedAt, 60_000);
  // Only now may the victim end: the thief's attacks ran against live credentials.
  plant(victim.id, "release", "");
  await waitFor(
    "the replayer's workspace",
    async () => existsSync(airlock.workspaceDir(replayer.id)),
    60_000,
  );
  plant(replayer.id, "loot", stolen);
  finished = await background.exited;
  run = await airlock.run(runId);
  audit = await airlock.audit();
}, 180_000);

afterAll(() => {
  if (background && background.child.exitCode === null) background.child.kill("SIGTERM");
  airlock?.cleanup();
  repo?.cleanup();
});

function events(type: string, jobId?: string): AuditRecord[] {
  return audit.filter((r) => r.type === type && (jobId === undefined || r.jobId === jobId));
}

/**
 * Records from a job's address while it ran. Addresses are reused once a job is torn down, and a
 * refusal before the token is tied to a job carries no job id, so the address and the time say whose.
 */
function fromJob(type: string, jobId: string): AuditRecord[] {
  const ip = jobAddr(jobId);
  const start = events("job.running", jobId)[0]?.seq ?? Number.POSITIVE_INFINITY;
  const end = events("job.torn_down", jobId)[0]?.seq ?? Number.POSITIVE_INFINITY;
  return events(type).filter((r) => r.data.ip === ip && r.seq > start && r.seq < end);
}

function jobAddr(jobId: string): string {
  const [rec] = events("job.running", jobId);
  return String((rec?.data.network as { jobAddr?: string } | undefined)?.jobAddr);
}

const reasonOf = (r: AuditRecord | undefined) => r?.data.reason;

describe("a job's credentials in another job's hands", () => {
  it("work for their own job (the control)", async () => {
    expect(finished.status, finished.stdout + finished.stderr).toBe(0);
    const victim = jobByKey(run, "victim");
    expect(await airlock.logs(victim.id)).toContain("victim exchange: 200");
    // Declared, so also granted once at provisioning; this is about the job's own exchange.
    const granted = events("secret.granted", victim.id).filter((r) => r.data.via === "exchange");
    expect(granted).toHaveLength(1);
    expect(granted[0]?.data).toMatchObject({
      via: "exchange",
      decisions: [expect.objectContaining({ name: "REPLAY_SECRET", allowed: true })],
    });
  });

  it("are refused while their job still runs: another job's request token and ID token", async () => {
    const victim = jobByKey(run, "victim");
    const thief = jobByKey(run, "thief");
    const logs = await airlock.logs(thief.id);
    expect(logs).toContain("request token of another job at my endpoint: 401");
    expect(logs).toContain("ID token of another job at my broker: 403");
    // The thief's own listener answers only the thief; the victim's is not on the thief's network.
    expect(logs).toContain("request token of another job at its own endpoint: 000");
    // Same repository, same secret: the thief is entitled to it with its own token, so the refusal
    // above was about whose token it was.
    expect(logs).toContain("my own ID token at my broker: 200");
    expect(logs).toContain("victim workspace: absent");

    const tokenDenied = events("identity.token_request_denied", thief.id);
    expect(tokenDenied).toHaveLength(1);
    expect(tokenDenied[0]).toMatchObject({
      actor: victim.id,
      data: { reason: "token_of_another_job", ip: jobAddr(thief.id) },
    });

    const secretDenied = events("secret.denied", thief.id);
    expect(secretDenied).toHaveLength(1);
    expect(reasonOf(secretDenied[0])).toBe("token_other_job");
    expect(secretDenied[0]?.data).toMatchObject({
      tokenJobId: victim.id,
      requested: ["REPLAY_SECRET"],
      claims: expect.objectContaining({ run_id: run.id }),
    });
    expect(events("secret.granted", thief.id).filter((r) => r.data.via === "exchange")).toHaveLength(1);
  });

  it("are refused after their job ended: both were revoked at teardown", async () => {
    const victim = jobByKey(run, "victim");
    const replayer = jobByKey(run, "replayer");
    const logs = await airlock.logs(replayer.id);
    expect(logs).toContain("request token of another job at my endpoint: 401");
    expect(logs).toContain("ID token of another job at my broker: 401");

    const revoked = events("identity.job_tokens_revoked", victim.id);
    expect(revoked).toHaveLength(1);
    const requestDenied = fromJob("identity.request_token_denied", replayer.id);
    expect(requestDenied).toHaveLength(1);
    expect(requestDenied[0]).toMatchObject({
      jobId: victim.id,
      data: { reason: "revoked", expectedJob: replayer.id },
    });
    const secretDenied = fromJob("secret.denied", replayer.id);
    expect(secretDenied).toHaveLength(1);
    expect(reasonOf(secretDenied[0])).toBe("token_revoked");
    const rejected = events("identity.token_rejected");
    expect(rejected.map((r) => r.data.reason)).toContain("revoked");
    expect(run.state).toBe("succeeded");
  });
});

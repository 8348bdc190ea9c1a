// biome-ignore-all lint/suspicious/noTemplateCurlyInString: ${{ }} is GitHub expression syntax, not a JS template
import { describe, expect, it } from "vitest";
import { type AirlockError, isAirlockError } from "../errors.js";
import { maxJobs, maxStepsPerJob, parseWorkflow } from "./parse.js";
import type { Workflow, WorkflowProblem } from "./types.js";

/** Hostile workflow files: each is refused cleanly, quickly, naming file:line:col — or grants nothing. */
function refused(text: string): WorkflowProblem[] {
  try {
    parseWorkflow(text, "wf.yml");
  } catch (e) {
    if (!isAirlockError(e)) throw e;
    expect((e as AirlockError).code).toBe("WORKFLOW_INVALID");
    return (e as AirlockError).details?.errors as WorkflowProblem[];
  }
  throw new Error("the workflow was accepted");
}

function timed<T>(fn: () => T, ms = 10_000): T {
  const start = performance.now();
  const out = fn();
  expect(performance.now() - start).toBeLessThan(ms);
  return out;
}

const job = (keys: string, steps = "      - run: echo hi\n") =>
  `on: [push, pull_request]\njobs:\n  a:\n    runs-on: airlock\n${keys}    steps:\n${steps}`;

describe("environment names", () => {
  it.each([
    ["    environment: ' prod'\n", 5, 18],
    ['    environment: "prod\\n"\n', 5, 18],
    ['    environment: "prod\\t"\n', 5, 18],
    ["    environment: prоd\n", 5, 18], // Cyrillic о
    ["    environment: {name: 'pro d'}\n", 5, 25],
    ["    environment: ${{ 'prod' }}\n", 5, 18],
    ["    environment: {name: '${{ inputs.env }}'}\n", 5, 26],
  ])("refuses %j", (keys, line, col) => {
    const [p] = refused(job(keys));
    expect(p).toMatchObject({ file: "wf.yml", line, col });
  });

  it("keeps the map form's name", () => {
    const wf = parseWorkflow(job("    environment: {name: prod}\n"), "wf.yml");
    expect(wf.jobs[0]?.environment).toEqual({ name: "prod" });
  });
});

describe("privilege and mounts", () => {
  const jobOf = (w: Workflow) => w.jobs[0];
  it.each(["true", "True", "TRUE", '"true"', "!!bool true", "!custom true"])(
    "privileged: %s reaches policy as privileged",
    (v) => {
      expect(jobOf(parseWorkflow(job(`    privileged: ${v}\n`), "wf.yml"))?.privileged).toBe(true);
    },
  );

  it.each(["yes", "1", "on", "${{ true }}", "[true]", "{a: 1}"])("privileged: %s is refused", (v) => {
    expect(refused(job(`    privileged: ${v}\n`))[0]).toMatchObject({ line: 5 });
  });

  it.each(["{}", "{volumes: []}", "node:20", "{image: node:20}", "{options: --cap-add=ALL}"])(
    "container: %s is refused, never ignored",
    (v) => {
      expect(refused(job(`    container: ${v}\n`))[0]).toMatchObject({ line: 5 });
    },
  );

  it("container options and volumes reach policy as privilege and host mounts", () => {
    const w = parseWorkflow(job("    container: {options: --privileged, volumes: ['/:/host']}\n"), "wf.yml");
    expect(jobOf(w)).toMatchObject({ privileged: true, hostMounts: ["/"] });
  });

  it("mounts at step level, services and matrices are refused", () => {
    expect(refused(job("", "      - run: echo\n        mounts: [/]\n"))[0]).toMatchObject({
      line: 7,
      col: 9,
    });
    expect(refused(job("    services: {db: {image: postgres}}\n"))[0]).toMatchObject({ line: 5, col: 5 });
    expect(refused(job("    strategy: {matrix: {x: [1]}}\n"))[0]).toMatchObject({ line: 5, col: 5 });
  });
});

describe("uses:", () => {
  it.each([
    "./local",
    "docker://alpine",
    "../x@v1",
    "evil/action@v1",
    "actions/checkout/sub@v4",
    "actions/checkout@v4;rm",
    "actions/checkout@$(id)",
    "actions/checkout@",
    "${{ 'actions/checkout@v4' }}",
  ])("refuses %s at its line and column", (uses) => {
    expect(refused(job("", `      - uses: "${uses}"\n`))[0]).toMatchObject({
      file: "wf.yml",
      line: 6,
      col: 15,
    });
  });
});

describe("script injection", () => {
  const dispatch = (keys: string, steps: string) =>
    `on: {workflow_dispatch: {inputs: {x: {}}}}\njobs:\n  a:\n    runs-on: airlock\n${keys}    steps:\n${steps}`;

  it.each([
    "echo ${{ inputs.x }}",
    'echo "${{ inputs.x }}"',
    "echo ${{ format('{0}', inputs.x) }}",
    "echo ${{ toJSON(inputs) }}",
    "echo ${{ github.head_ref }}",
    "echo ${{ github.event.pull_request.title }}",
    "echo ${{ toJSON(github) }}",
  ])("refuses %s in run:", (run) => {
    const [p] = refused(dispatch("", `      - run: ${JSON.stringify(run)}\n`));
    expect(p?.message).toMatch(/splices .* into the script text/);
    expect(p).toMatchObject({ line: 6 });
  });

  it("follows env: an env value holding input is tainted at every level", () => {
    for (const [keys, steps] of [
      ["    env: {X: '${{ inputs.x }}'}\n", "      - run: echo ${{ env.X }}\n"],
      ["", "      - env: {X: '${{ inputs.x }}'}\n        run: echo ${{ env.x }}\n"],
    ] as const) {
      expect(refused(dispatch(keys, steps))[0]?.message).toMatch(/splices env\.[xX]/);
    }
    const wfEnv = `on: {workflow_dispatch: {inputs: {x: {}}}}\nenv: {X: '\${{ inputs.x }}'}\njobs:\n  a:\n    runs-on: airlock\n    steps:\n      - run: echo \${{ env.X }}\n`;
    expect(refused(wfEnv)[0]).toMatchObject({ line: 7 });
  });

  it("allows the safe form: input in env, read by the shell", () => {
    const w = parseWorkflow(
      dispatch(
        "    env: {X: '${{ inputs.x }}'}\n",
        '      - run: echo "$X" ${{ github.sha }} ${{ env.Y }}\n',
      ),
      "wf.yml",
    );
    expect(w.jobs[0]?.steps[0]?.run).toContain('"$X"');
  });

  it("a clean redefinition clears the taint", () => {
    parseWorkflow(
      dispatch(
        "    env: {X: '${{ inputs.x }}'}\n",
        "      - env: {X: fixed}\n        run: echo ${{ env.X }}\n",
      ),
      "wf.yml",
    );
  });
});

describe("resource exhaustion", () => {
  it("refuses a billion-laughs alias bomb quickly", () => {
    let text = "on: push\nenv:\n  L0: &l0 lol\n";
    const lists = ["l0"];
    text = "on: push\nx0: &x0 [lol, lol, lol, lol, lol, lol, lol, lol, lol, lol]\n";
    for (let i = 1; i < 10; i++) {
      text += `x${i}: &x${i} [${Array(10)
        .fill(`*x${i - 1}`)
        .join(", ")}]\n`;
      lists.push(`x${i}`);
    }
    text += "jobs:\n  a:\n    runs-on: airlock\n    steps: *x9\n";
    const [p] = timed(() => refused(text));
    expect(p?.message).toMatch(/aliases expand the workflow/);
  });

  it("refuses many jobs aliasing one large job", () => {
    let text = "on: push\njobs:\n  j0: &j\n    runs-on: airlock\n    steps:\n";
    for (let i = 0; i < 1000; i++) text += `      - run: echo ${i}\n`;
    for (let i = 1; i < 200; i++) text += `  j${i}: *j\n`;
    expect(timed(() => refused(text))[0]?.message).toMatch(/aliases expand/);
  });

  it("resolves many aliases in linear time", () => {
    let text = "on: push\njobs:\n  a:\n    runs-on: airlock\n    env:\n      A: &v x\n";
    for (let i = 0; i < 20_000; i++) text += `      B${i}: *v\n`;
    text += "    steps:\n      - run: echo\n";
    timed(() => parseWorkflow(text, "wf.yml"));
  });

  it("finds duplicate keys in linear time, and still finds them", () => {
    let text = "on: push\njobs:\n  a:\n    runs-on: airlock\n    env:\n";
    for (let i = 0; i < 40_000; i++) text += `      B${i}: x\n`;
    text += "    steps:\n      - run: echo\n";
    timed(() => parseWorkflow(text, "wf.yml"));
    expect(refused(job("    privileged: false\n    'privileged': true\n"))[0]).toMatchObject({
      line: 6,
      col: 5,
      message: "YAML: Map keys must be unique",
    });
  });

  it("refuses deep nesting without crashing", () => {
    for (const text of [
      `on: push\nx: ${"[".repeat(20_000)}${"]".repeat(20_000)}\n`,
      `on: push\nx: ${"{a: ".repeat(20_000)}1${"}".repeat(20_000)}\n`,
    ]) {
      expect(timed(() => refused(text))[0]?.message).toMatch(/nests too deeply/);
    }
  });

  it.each([
    ["a member chain", `github${".a".repeat(5_000)}`],
    ["an index chain", `github${"['a']".repeat(3_000)}`],
    ["an || chain", Array(3_000).fill("true").join("||")],
    ["a != chain", Array(3_000).fill("1").join("!=")],
    ["nested parentheses", `${"(".repeat(5_000)}1${")".repeat(5_000)}`],
    ["nested calls", `${"format('{0}', ".repeat(1_000)}1${")".repeat(1_000)}`],
    ["a long string", `'${"a".repeat(100_000)}'`],
  ])("refuses %s in an expression cleanly", (_name, expr) => {
    const [p] = timed(() => refused(job("", `      - run: echo \${{ ${expr} }}\n`)));
    expect(p).toMatchObject({ line: 6 });
    expect(p?.message).toMatch(/invalid expression/);
  });

  it("bounds jobs, steps and timeouts", () => {
    let jobs = "on: push\njobs:\n";
    for (let i = 0; i <= maxJobs; i++) jobs += `  j${i}: {runs-on: a, steps: [{run: e}]}\n`;
    expect(refused(jobs)[0]?.message).toMatch(/at most 256/);
    const steps = Array(maxStepsPerJob + 1)
      .fill("      - run: e\n")
      .join("");
    expect(refused(job("", steps))[0]?.message).toMatch(/at most 1000/);
    expect(refused(job("    timeout-minutes: 1e12\n"))[0]).toMatchObject({ line: 5, col: 22 });
  });

  it("refuses a file over 1 MiB before parsing it", () => {
    expect(timed(() => refused(`on: push\n${"#".repeat(2 * 1024 * 1024)}`))[0]?.message).toMatch(
      /larger than/,
    );
  });
});

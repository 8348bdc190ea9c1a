/**
 * The `needs` graph. Parsing guarantees every need names a job and that there are no cycles, so
 * these helpers can assume a DAG; `findCycles` is what parsing uses to guarantee it.
 */
import type { ExecutionStatus } from "./expressions/index.js";
import type { Workflow } from "./types.js";

type Graph = Pick<Workflow, "jobs">;

/**
 * Jobs in topological layers: every job in layer n needs only jobs in layers < n, so each layer
 * can run in parallel. Within a layer, jobs keep file order.
 */
export function jobOrder(workflow: Graph): string[][] {
  const remaining = new Map(workflow.jobs.map((j) => [j.id, new Set(j.needs)]));
  const layers: string[][] = [];
  while (remaining.size > 0) {
    const layer = [...remaining].filter(([, needs]) => needs.size === 0).map(([id]) => id);
    if (layer.length === 0) throw new Error(`needs cycle among: ${[...remaining.keys()].join(", ")}`);
    for (const id of layer) remaining.delete(id);
    for (const needs of remaining.values()) for (const id of layer) needs.delete(id);
    layers.push(layer);
  }
  return layers;
}

/** Jobs that name `jobId` in their own `needs`. */
export function directDependants(workflow: Graph, jobId: string): string[] {
  return workflow.jobs.filter((j) => j.needs.includes(jobId)).map((j) => j.id);
}

/** Every job that needs `jobId` directly or through others, in file order. */
export function dependants(workflow: Graph, jobId: string): string[] {
  const found = new Set<string>();
  const queue = [jobId];
  for (let id = queue.shift(); id !== undefined; id = queue.shift()) {
    for (const d of directDependants(workflow, id)) {
      if (!found.has(d)) {
        found.add(d);
        queue.push(d);
      }
    }
  }
  return workflow.jobs.map((j) => j.id).filter((id) => found.has(id));
}

/** Every job `jobId` needs directly or through others, in file order. */
export function ancestors(workflow: Graph, jobId: string): string[] {
  const byId = new Map(workflow.jobs.map((j) => [j.id, j]));
  const found = new Set<string>();
  const queue = [...(byId.get(jobId)?.needs ?? [])];
  for (let id = queue.shift(); id !== undefined; id = queue.shift()) {
    if (found.has(id)) continue;
    found.add(id);
    queue.push(...(byId.get(id)?.needs ?? []));
  }
  return workflow.jobs.map((j) => j.id).filter((id) => found.has(id));
}

export type JobResult = "success" | "failure" | "cancelled" | "skipped";

/**
 * The status a job's `if` sees through success()/failure()/cancelled(), from the results of
 * the jobs before it. GitHub's rules: failure() holds when any ancestor failed (not only direct
 * needs); success() only when all of them succeeded. A skipped ancestor makes neither hold, so a
 * plain dependant is skipped too, while `if: always()` still runs.
 */
export function upstreamStatus(
  workflow: Graph,
  jobId: string,
  results: Readonly<Record<string, JobResult | undefined>>,
  runCancelled = false,
): ExecutionStatus {
  if (runCancelled) return "cancelled";
  const up = ancestors(workflow, jobId).map((id) => results[id]);
  if (up.includes("failure")) return "failure";
  if (up.includes("cancelled")) return "cancelled";
  if (up.every((r) => r === "success")) return "success";
  return "skipped";
}

/**
 * Cycles in a needs relation, each written as a closed path (`[a, b, a]`) starting from the
 * earliest job in `ids` order. One cycle is reported per strongly connected knot, which is enough
 * to name the problem without drowning the user in rotations of the same loop.
 */
export function findCycles(ids: readonly string[], needsOf: (id: string) => readonly string[]): string[][] {
  const known = new Set(ids);
  const state = new Map<string, "active" | "done">();
  const stack: string[] = [];
  const cycles: string[][] = [];
  const seen = new Set<string>();

  const visit = (id: string): void => {
    state.set(id, "active");
    stack.push(id);
    for (const next of needsOf(id)) {
      if (!known.has(next)) continue;
      const s = state.get(next);
      if (s === "active") {
        const loop = stack.slice(stack.indexOf(next));
        // Rotate to start at the job that comes first in the file, so messages are stable.
        const first = loop.reduce((a, b) => (ids.indexOf(a) <= ids.indexOf(b) ? a : b));
        const at = loop.indexOf(first);
        const rotated = [...loop.slice(at), ...loop.slice(0, at)];
        const key = [...rotated].sort().join("\0");
        if (!seen.has(key)) {
          seen.add(key);
          cycles.push([...rotated, first]);
        }
      } else if (s === undefined) {
        visit(next);
      }
    }
    stack.pop();
    state.set(id, "done");
  };
  for (const id of ids) if (!state.has(id)) visit(id);
  return cycles;
}

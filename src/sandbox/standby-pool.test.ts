/** The standby pool on real cgroups (needs root). */
import { rmdir } from "node:fs/promises";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { detectCgroups } from "./cgroups/detect.js";
import { backendFor } from "./cgroups/index.js";
import { WRAPPER_PATH } from "./host.js";
import { StandbyPool, type StandbySlot } from "./standby-pool.js";

const layout = await detectCgroups();
const parent = `airlock-pool-test-${process.pid}`;
const backend = backendFor(layout, parent);

afterAll(async () => {
  for (const name of await backend.list()) await backend.open(name).remove();
  const mounts = layout.version === 2 ? [layout.mount] : [...new Set(Object.values(layout.mounts))];
  for (const m of mounts) await rmdir(join(m, parent)).catch(() => undefined);
});

describe("standby pool", () => {
  it("hands out a slot only once its launcher is inside the slot's cgroup", async () => {
    await backend.check();
    const pool = new StandbyPool(async () => backend, { PATH: WRAPPER_PATH }, 1, 0);
    try {
      // Asked again at once and again: the first slot offered must already hold its launcher,
      // since claiming renames the cgroup under a launcher that has not written its pid yet.
      let slot: StandbySlot | undefined = pool.take();
      const until = Date.now() + 5000;
      while (!slot && Date.now() < until) {
        await new Promise((r) => setImmediate(r));
        slot = pool.take();
      }
      expect(slot).toBeDefined();
      const s = slot as StandbySlot;
      expect(s.launcher.joined).toBe(true);
      expect(await backend.open(s.name).pids()).toEqual([s.launcher.child.pid]);
      await pool.discard(s);
      expect(await backend.list()).not.toContain(s.name);
    } finally {
      await pool.close();
    }
    expect((await backend.list()).filter((n) => n.startsWith("standby-"))).toEqual([]);
  });
});

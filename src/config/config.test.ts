import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { loadConfig } from "./config.js";

describe("config", () => {
  it("defaults to loopback and a closed, small footprint", () => {
    const c = loadConfig({ env: { AIRLOCK_DATA_DIR: "/tmp/x" } });
    expect(c.server.host).toBe("127.0.0.1");
    expect(c.dataDir).toBe("/tmp/x");
    expect(c.scheduler.concurrency).toBeGreaterThan(0);
  });

  it("names the bad setting and the file", () => {
    const dir = mkdtempSync(join(tmpdir(), "airlock-cfg-"));
    const file = join(dir, "airlock.yml");
    writeFileSync(file, "scheduler:\n  concurrency: 0\n");
    expect(() => loadConfig({ file, env: {} })).toThrow(/airlock\.yml: scheduler\.concurrency/);
    writeFileSync(file, "shceduler: {}\n");
    expect(() => loadConfig({ file, env: {} })).toThrow(/shceduler/);
    expect(() => loadConfig({ file: join(dir, "missing.yml"), env: {} })).toThrow(/cannot read config file/);
  });
});

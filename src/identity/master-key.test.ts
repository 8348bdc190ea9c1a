import { chmod, mkdtemp, readFile, rm, stat, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { AirlockError } from "../errors.js";
import { openWithKek, sealWithKek } from "./envelope.js";
import { loadMasterKey, localKek } from "./master-key.js";

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), "airlock-mk-"));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe("master key", () => {
  it("creates <dataDir>/master.key with mode 0600 on first use and reuses it", async () => {
    const kek = loadMasterKey({ dataDir: dir, env: {} });
    const st = await stat(join(dir, "master.key"));
    expect(st.mode & 0o777).toBe(0o600);
    expect(Buffer.from((await readFile(join(dir, "master.key"), "utf8")).trim(), "base64")).toHaveLength(32);
    const again = loadMasterKey({ dataDir: dir, env: {} });
    expect(again.id).toBe(kek.id);
    const sealed = await sealWithKek(kek, "hello", "rec:1");
    expect((await openWithKek(again, sealed, "rec:1")).toString()).toBe("hello");
  });

  it("creates the data directory if needed", async () => {
    const kek = loadMasterKey({ dataDir: join(dir, "nested", "data"), env: {} });
    expect(kek.id).toMatch(/^local:[0-9a-f]{16}$/);
  });

  it("refuses a key file others can read", async () => {
    const file = join(dir, "master.key");
    await writeFile(file, `${Buffer.alloc(32, 3).toString("base64")}\n`, { mode: 0o644 });
    await chmod(file, 0o644);
    expect(() => loadMasterKey({ dataDir: dir, env: {} })).toThrow(/readable by others/);
  });

  it("takes AIRLOCK_MASTER_KEY (base64) over the file, and checks its length", async () => {
    const key = Buffer.alloc(32, 9);
    const fromEnv = loadMasterKey({ dataDir: dir, env: { AIRLOCK_MASTER_KEY: key.toString("base64") } });
    expect(fromEnv.id).toBe(localKek(key).id);
    await expect(stat(join(dir, "master.key"))).rejects.toThrow();
    expect(() =>
      loadMasterKey({ dataDir: dir, env: { AIRLOCK_MASTER_KEY: Buffer.alloc(16).toString("base64") } }),
    ).toThrow(AirlockError);
    expect(() => loadMasterKey({ dataDir: dir, env: { AIRLOCK_MASTER_KEY: "not base64!" } })).toThrow(
      /base64/,
    );
  });

  it("error messages never carry the key", () => {
    const bad = Buffer.alloc(16, 5).toString("base64");
    try {
      loadMasterKey({ dataDir: dir, env: { AIRLOCK_MASTER_KEY: bad } });
      expect.unreachable();
    } catch (e) {
      expect(String((e as Error).message)).not.toContain(bad);
    }
  });
});

describe("envelope", () => {
  const kek = localKek(Buffer.alloc(32, 1));

  it("round-trips and uses a fresh data key and IV per object", async () => {
    const a = await sealWithKek(kek, "secret value", "secret:1");
    const b = await sealWithKek(kek, "secret value", "secret:1");
    expect(a).not.toBe(b);
    expect(JSON.parse(a).dek).not.toBe(JSON.parse(b).dek);
    expect(a).not.toContain("secret value");
    expect((await openWithKek(kek, a, "secret:1")).toString()).toBe("secret value");
  });

  it("binds the record id: the wrong AAD does not open", async () => {
    const a = await sealWithKek(kek, "x", "secret:1");
    await expect(openWithKek(kek, a, "secret:2")).rejects.toThrow(/failed authentication/);
  });

  it("detects a tampered ciphertext, tag or wrapped key", async () => {
    const a = JSON.parse(await sealWithKek(kek, "hello world", "r"));
    for (const field of ["ct", "tag", "dek"]) {
      const buf = Buffer.from(a[field], "base64url");
      buf[0] = (buf[0] as number) ^ 1;
      const t = JSON.stringify({ ...a, [field]: buf.toString("base64url") });
      await expect(openWithKek(kek, t, "r")).rejects.toThrow(/cannot open sealed data/);
    }
    await expect(openWithKek(kek, "{}", "r")).rejects.toThrow(/not a version-1/);
    await expect(openWithKek(kek, "nope", "r")).rejects.toThrow(/not a sealed envelope/);
  });

  it("names the master key mismatch", async () => {
    const a = await sealWithKek(kek, "x", "r");
    await expect(openWithKek(localKek(Buffer.alloc(32, 2)), a, "r")).rejects.toThrow(
      /another master key|master key/,
    );
  });

  it("is deterministic under an injected random source", async () => {
    let i = 0;
    const random = (n: number) => Buffer.alloc(n, ++i);
    const a = await sealWithKek(localKek(Buffer.alloc(32, 1), random), "x", "r", random);
    i = 0;
    const b = await sealWithKek(localKek(Buffer.alloc(32, 1), random), "x", "r", random);
    expect(a).toBe(b);
  });
});

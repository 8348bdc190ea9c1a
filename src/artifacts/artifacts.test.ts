import { createHash } from "node:crypto";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Readable } from "node:stream";
import { buffer } from "node:stream/consumers";
import tar from "tar-stream";
import { describe, expect, it } from "vitest";
import { ingestTar, packManifest } from "./archive.js";
import { ArtifactStore } from "./store.js";

const sha = (b: string | Buffer) => `sha256:${createHash("sha256").update(b).digest("hex")}`;

function tarOf(
  entries: { name: string; body?: string; type?: "file" | "symlink" | "directory"; linkname?: string }[],
) {
  const pack = tar.pack();
  for (const e of entries) {
    if (e.type === "symlink") pack.entry({ name: e.name, type: "symlink", linkname: e.linkname ?? "" });
    else if (e.type === "directory") pack.entry({ name: e.name, type: "directory" });
    else pack.entry({ name: e.name }, e.body ?? "");
  }
  pack.finalize();
  return Readable.from(pack as AsyncIterable<Buffer>);
}

const limits = { maxBytes: 1 << 20, maxFiles: 100 };

describe("content-addressed store", () => {
  it("names blobs by their sha256 and stores identical content once", async () => {
    const store = new ArtifactStore(mkdtempSync(join(tmpdir(), "airlock-cas-")));
    const a = await store.put("hello");
    const b = await store.put(Readable.from([Buffer.from("hel"), Buffer.from("lo")]));
    expect(a.digest).toBe(sha("hello"));
    expect(b.digest).toBe(a.digest);
    expect((await buffer(store.read(a.digest))).toString()).toBe("hello");
  });

  it("refuses to hand out a blob whose content changed on disk", async () => {
    const store = new ArtifactStore(mkdtempSync(join(tmpdir(), "airlock-cas-")));
    const { digest } = await store.put("original");
    writeFileSync(store.pathOf(digest), "tampered");
    await expect(buffer(store.read(digest))).rejects.toThrow(/corrupt/);
  });

  it("rejects malformed digests", () => {
    const store = new ArtifactStore(mkdtempSync(join(tmpdir(), "airlock-cas-")));
    expect(() => store.pathOf("sha256:../../etc/passwd" as never)).toThrow(/not a sha256 digest/);
  });
});

describe("artifact ingestion", () => {
  it("stores each file by digest and names the artifact by its manifest", async () => {
    const store = new ArtifactStore(mkdtempSync(join(tmpdir(), "airlock-cas-")));
    const { manifest, digest, size } = await ingestTar(
      store,
      tarOf([
        { name: "dist/", type: "directory" },
        { name: "dist/b.txt", body: "bee" },
        { name: "dist/a.txt", body: "a" },
        { name: "dist/link", type: "symlink", linkname: "a.txt" },
      ]),
      limits,
    );
    expect(manifest.files.map((f) => f.path)).toEqual(["dist/a.txt", "dist/b.txt", "dist/link"]);
    expect(manifest.files[0]).toMatchObject({ type: "file", digest: sha("a"), size: 1 });
    expect(manifest.files[2]).toMatchObject({ type: "symlink", target: "a.txt" });
    expect(size).toBe(4);
    expect(await store.has(digest)).toBe(true);

    // Round trip: packing the manifest yields the same files.
    const back = tar.extract();
    const seen: Record<string, string> = {};
    back.on("entry", (h, s, next) => {
      const chunks: Buffer[] = [];
      s.on("data", (c: unknown) => chunks.push(c as Buffer));
      s.on("end", () => {
        seen[h.name] = Buffer.concat(chunks).toString();
        next();
      });
    });
    const done = new Promise<void>((r) => back.on("finish", () => r()));
    packManifest(store, manifest).pipe(back as unknown as NodeJS.WritableStream);
    await done;
    expect(seen["dist/a.txt"]).toBe("a");
    expect(seen["dist/b.txt"]).toBe("bee");
  });

  it("refuses paths that climb out and uploads over the limit", async () => {
    const store = new ArtifactStore(mkdtempSync(join(tmpdir(), "airlock-cas-")));
    await expect(ingestTar(store, tarOf([{ name: "../escape", body: "x" }]), limits)).rejects.toThrow(
      /may not contain/,
    );
    await expect(
      ingestTar(store, tarOf([{ name: "big", body: "x".repeat(2048) }]), { maxBytes: 1024, maxFiles: 10 }),
    ).rejects.toThrow(/exceeds its limit/);
  });
});

describe("artifact download", () => {
  it("writes files under the target only, and links last", async () => {
    const { extractArtifact } = await import("./extract.js");
    const out = mkdtempSync(join(tmpdir(), "airlock-dl-"));
    const r = await extractArtifact(
      tarOf([
        { name: "dist/a.txt", body: "a" },
        { name: "dist/link", type: "symlink", linkname: "a.txt" },
      ]),
      out,
    );
    expect(r.files).toBe(1);
    const { readFileSync, readlinkSync } = await import("node:fs");
    expect(readFileSync(join(out, "dist/a.txt"), "utf8")).toBe("a");
    expect(readlinkSync(join(out, "dist/link"))).toBe("a.txt");
    await expect(extractArtifact(tarOf([{ name: "../escape.txt", body: "x" }]), out)).rejects.toThrow(
      /may not contain "\.\."/,
    );
  });
});

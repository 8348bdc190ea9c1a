import { randomBytes } from "node:crypto";
import { Readable } from "node:stream";
import tar from "tar-stream";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { listAudit } from "../../audit/log.js";
import { AirlockError } from "../../errors.js";
import { base64Stable, deriveNeedles } from "../../secrets/masker/needles.js";
import { SecretSet } from "../../secrets/masker/secret-set.js";
import { type Db, openSqlite } from "../../store/database.js";
import { assertNoSecrets } from "./block.js";
import { FileScanner, scanFiles, scanTarStream, secretsFoundError } from "./scan.js";

const NPM = "npm_Q7x9Lr2TzW4kY8pB3nV6cJ1mH5sD0fGa";
const DB_URL = "postgres://ci:p@ss w/rd+&=x@db:5432/app";
const UMLAUT = "geheimes-Pässwort-ÄÖÜ";

const secrets = () =>
  new SecretSet([
    ["NPM_TOKEN", NPM],
    ["DATABASE_URL", DB_URL],
    ["LEGACY_PASSWORD", UMLAUT],
  ]);

function found(set: SecretSet, chunks: (Buffer | string)[]): string[] {
  const s = new FileScanner(set);
  for (const c of chunks) s.write(c);
  return s.end();
}

const wrap = (middle: Buffer | string): Buffer =>
  Buffer.concat([Buffer.from("const config = {\n  token: '"), Buffer.from(middle), Buffer.from("',\n};\n")]);

describe("secret scanning of file content", () => {
  const set = secrets();

  it.each([
    ["raw", NPM],
    ["hex", Buffer.from(NPM).toString("hex")],
    ["HEX", Buffer.from(NPM).toString("hex").toUpperCase()],
    ["url-encoded", encodeURIComponent(DB_URL)],
    ["form-encoded", encodeURIComponent(DB_URL).replace(/%20/g, "+")],
    ["JSON-escaped", JSON.stringify(DB_URL)],
  ])("finds a secret %s inside a file", (_form, text) => {
    const names = found(set, [wrap(text)]);
    expect(names.length).toBe(1);
    expect(names[0]).toMatch(/NPM_TOKEN|DATABASE_URL/);
  });

  it.each([0, 1, 2])("finds a secret base64-encoded at byte alignment %i", (offset) => {
    const payload = Buffer.concat([randomBytes(offset), Buffer.from(NPM), randomBytes(3)]);
    expect(found(set, [wrap(payload.toString("base64"))])).toEqual(["NPM_TOKEN"]);
    expect(found(set, [wrap(payload.toString("base64url"))])).toEqual(["NPM_TOKEN"]);
    // Sanity: the stable part the needle is made of really is in the text.
    expect(payload.toString("base64")).toContain(base64Stable(Buffer.from(NPM), offset as 0 | 1 | 2));
  });

  it("finds a secret split across chunks at every position", () => {
    const file = wrap(NPM);
    for (let cut = 1; cut < file.length; cut++) {
      expect(found(set, [file.subarray(0, cut), file.subarray(cut)])).toEqual(["NPM_TOKEN"]);
    }
    expect(
      found(
        set,
        [...file].map((b) => Buffer.from([b])),
      ),
    ).toEqual(["NPM_TOKEN"]);
    // A non-ASCII secret in UTF-8, cut inside a multi-byte character too.
    const utf8 = wrap(Buffer.from(UMLAUT, "utf8"));
    for (let cut = 1; cut < utf8.length; cut++) {
      expect(found(set, [utf8.subarray(0, cut), utf8.subarray(cut)])).toEqual(["LEGACY_PASSWORD"]);
    }
  });

  it("finds a secret in a binary file, even right after bytes that start a UTF-8 sequence", () => {
    for (const lead of [0xc3, 0xe2, 0xf0, 0xff, 0x80]) {
      const bin = Buffer.concat([
        randomBytes(4096),
        Buffer.from([lead]),
        Buffer.from(NPM),
        randomBytes(4096),
      ]);
      // Chunked awkwardly, as a stream would deliver it.
      const chunks = [bin.subarray(0, 4097), bin.subarray(4097, 4105), bin.subarray(4105)];
      expect(found(set, chunks)).toEqual(["NPM_TOKEN"]);
    }
  });

  it("finds a non-ASCII secret written as UTF-8, as latin1 and as UTF-16 with a BOM", () => {
    expect(found(set, [wrap(Buffer.from(UMLAUT, "utf8"))])).toEqual(["LEGACY_PASSWORD"]);
    expect(found(set, [wrap(Buffer.from(UMLAUT, "latin1"))])).toEqual(["LEGACY_PASSWORD"]);
    const utf16 = Buffer.concat([Buffer.from([0xff, 0xfe]), Buffer.from(`x=${UMLAUT}\r\n`, "utf16le")]);
    expect(found(set, [utf16.subarray(0, 1), utf16.subarray(1, 9), utf16.subarray(9)])).toEqual([
      "LEGACY_PASSWORD",
    ]);
  });

  it("names every secret in a file, once each", () => {
    const text = `${NPM}\n${NPM}\n${Buffer.from(DB_URL).toString("hex")}\n`;
    expect(found(set, [text]).sort()).toEqual(["DATABASE_URL", "NPM_TOKEN"]);
  });

  it("finds each needle of each secret and maps it to the right name", () => {
    for (const [name, value] of [
      ["NPM_TOKEN", NPM],
      ["DATABASE_URL", DB_URL],
      ["LEGACY_PASSWORD", UMLAUT],
    ] as const) {
      for (const n of deriveNeedles(value)) {
        expect(found(set, [`<<${n.text}>>`]), `${name} ${n.variant}`).toContain(name);
      }
    }
  });

  it("reports nothing for clean text and random binary data", () => {
    expect(found(set, [wrap("npm_Q7x9Lr2TzW4kY8pB3nV6cJ1mH5sD0fG_ almost")])).toEqual([]);
    expect(found(set, [randomBytes(1 << 20)])).toEqual([]);
    expect(found(set, [])).toEqual([]);
    expect(found(new SecretSet(), [wrap(NPM)])).toEqual([]);
  });
});

async function tarOf(
  entries: Array<{ name: string; content?: Buffer | string; type?: "file" | "symlink"; linkname?: string }>,
): Promise<Buffer> {
  const pack = tar.pack();
  for (const e of entries) {
    if (e.type === "symlink") pack.entry({ name: e.name, type: "symlink", linkname: e.linkname ?? "" });
    else pack.entry({ name: e.name }, Buffer.from(e.content ?? ""));
  }
  pack.finalize();
  const chunks: Buffer[] = [];
  for await (const c of pack as AsyncIterable<Buffer>) chunks.push(c);
  return Buffer.concat(chunks);
}

/** Delivers a buffer in small pieces so file contents straddle reads. */
const trickle = (buf: Buffer, size = 97): Readable =>
  Readable.from(
    (function* () {
      for (let i = 0; i < buf.length; i += size) yield buf.subarray(i, i + size);
    })(),
  );

describe("scanning an upload's tar stream", () => {
  it("reports file path and secret name, and nothing for clean files", async () => {
    const set = secrets();
    const archive = await tarOf([
      { name: "dist/index.js", content: "console.log('hello');\n" },
      { name: "dist/config.js", content: `export const token = "${NPM}";\n` },
      {
        name: "dist/blob.bin",
        content: Buffer.concat([randomBytes(20000), Buffer.from(DB_URL), randomBytes(10)]),
      },
      { name: "README.md", content: "# nothing to see\n" },
    ]);
    const result = await scanTarStream(set, trickle(archive));
    expect(result.files).toBe(4);
    expect(result.hits).toEqual([
      { path: "dist/config.js", secretName: "NPM_TOKEN" },
      { path: "dist/blob.bin", secretName: "DATABASE_URL" },
    ]);
  });

  it("checks names and symlink targets too, and never shows the value in the path", async () => {
    const set = secrets();
    const archive = await tarOf([
      { name: `leak/${NPM}.txt`, content: "x" },
      { name: "link", type: "symlink", linkname: `/tmp/${NPM}` },
    ]);
    const result = await scanTarStream(set, Readable.from([archive]));
    expect(result.hits).toEqual([
      { path: "leak/***.txt", secretName: "NPM_TOKEN" },
      { path: "link", secretName: "NPM_TOKEN" },
    ]);
    expect(JSON.stringify(result)).not.toContain(NPM);
  });

  it("stops at the ingest limits", async () => {
    const archive = await tarOf([
      { name: "a", content: "1" },
      { name: "b", content: "2" },
    ]);
    await expect(
      scanTarStream(secrets(), Readable.from([archive]), { maxFiles: 1, maxBytes: 100 }),
    ).rejects.toThrow(/exceeds its limit/);
  });

  it("scans a list of files too", async () => {
    const result = await scanFiles(secrets(), [
      { path: "ok.txt", stream: Readable.from([Buffer.from("fine")]) },
      { path: "bad.txt", stream: Readable.from([Buffer.from(NPM.slice(0, 10)), Buffer.from(NPM.slice(10))]) },
    ]);
    expect(result).toEqual({
      hits: [{ path: "bad.txt", secretName: "NPM_TOKEN" }],
      files: 2,
      bytes: 4 + NPM.length,
    });
  });
});

describe("blocking the upload", () => {
  let db: Db;
  beforeEach(async () => {
    db = await openSqlite(":memory:");
  });
  afterEach(async () => db.destroy());

  it("the error names the file and the secret, never the value", () => {
    const e = secretsFoundError([
      { path: "dist/config.js", secretName: "NPM_TOKEN" },
      { path: "dist/b.js", secretName: "DATABASE_URL" },
    ]);
    expect(e).toBeInstanceOf(AirlockError);
    expect(e.code).toBe("ARTIFACT_INVALID");
    expect(e.message).toBe("dist/config.js contains secret NPM_TOKEN (and 1 more); the upload is blocked");
  });

  it("audits the blocked upload with names only and throws", async () => {
    const set = secrets();
    const archive = await tarOf([
      { name: "dist/.npmrc", content: `//registry.npmjs.org/:_authToken=${NPM}\n` },
    ]);
    const result = await scanTarStream(set, Readable.from([archive]));
    let err: unknown;
    try {
      await assertNoSecrets(db, set, result, {
        artifact: "web-dist",
        actor: "runner",
        runId: "run_1",
        jobId: "job_1",
        runnerId: "rnr_1",
      });
    } catch (e) {
      err = e;
    }
    expect((err as AirlockError).message).toBe(
      "dist/.npmrc contains secret NPM_TOKEN; the upload is blocked",
    );
    const [event] = await listAudit(db, { type: "artifact.upload_blocked" });
    expect(event).toMatchObject({
      jobId: "job_1",
      runId: "run_1",
      runnerId: "rnr_1",
      data: { artifact: "web-dist", hits: [{ path: "dist/.npmrc", secretName: "NPM_TOKEN" }] },
    });
    const everything = JSON.stringify({
      event,
      m: (err as AirlockError).message,
      d: (err as AirlockError).details,
    });
    for (const n of deriveNeedles(NPM)) expect(everything).not.toContain(n.text);
  });

  it("lets a clean upload through without an audit record", async () => {
    await assertNoSecrets(db, secrets(), { hits: [], files: 3, bytes: 10 }, { artifact: "a", actor: "x" });
    expect(await listAudit(db, { type: "artifact.upload_blocked" })).toEqual([]);
  });
});

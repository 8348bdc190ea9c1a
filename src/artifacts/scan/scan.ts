/**
 * "No secrets in artifacts": every file of an upload is scanned for every value the job received
 * (and each needle the masker derives from it: base64 at each alignment, hex, URL and JSON forms,
 * lines of multi-line values) before anything is stored. Other CI systems redact logs and publish
 * artifacts untouched; here a hit blocks the upload with an error naming the file and the secret,
 * never the value.
 *
 * Bytes are read as latin1, one character per byte (see automaton-cursor.ts for why that is exact
 * and how secrets with non-ASCII characters are still found in UTF-8 files), so a secret inside
 * a binary file is found like one in a text file. Files that start with a UTF-16 byte-order mark
 * are also decoded as UTF-16. Compressed content (gzip, zip) is not opened: a job that wants to
 * hide a secret can always encrypt it, so the scan is a guard against accidents (a .env or .npmrc
 * swept into dist/, a token baked into a bundle), not against a determined job.
 */
import type { Readable } from "node:stream";
import { pipeline } from "node:stream/promises";
import { TextDecoder } from "node:util";
import tar from "tar-stream";
import { AirlockError } from "../../errors.js";
import { maskText } from "../../secrets/masker/masker.js";
import type { SecretSet } from "../../secrets/masker/secret-set.js";
import type { IngestLimits } from "../archive.js";
import { byteDictionary, SecretCursor, textDictionary } from "./automaton-cursor.js";

export interface SecretHit {
  /** The file's path in the artifact, itself masked should a secret be part of the name. */
  path: string;
  /** The name the secret was given to the job under; never its value. */
  secretName: string;
}

export interface ScanResult {
  hits: SecretHit[];
  files: number;
  bytes: number;
}

export interface ScanFile {
  path: string;
  stream: AsyncIterable<Uint8Array | string>;
}

/**
 * Scans one file's content. Feed bytes with `write`, then `end()` returns the names found (in
 * order of first match). One instance per file.
 */
export class FileScanner {
  private readonly bytesCursor: SecretCursor;
  private textCursor: SecretCursor | undefined;
  private utf16: TextDecoder | undefined;
  /** The first byte, held until the second says whether the file starts with a UTF-16 BOM. */
  private first: number | undefined;
  private started = false;
  bytes = 0;

  constructor(private readonly secrets: SecretSet) {
    this.bytesCursor = new SecretCursor(byteDictionary(secrets));
  }

  /** Bytes of the file; or text (a name) when given a string. */
  write(chunk: Uint8Array | string): void {
    if (typeof chunk === "string") {
      this.text().push(chunk);
      return;
    }
    if (chunk.length === 0) return;
    this.bytes += chunk.length;
    const buf = Buffer.from(chunk.buffer, chunk.byteOffset, chunk.length);
    this.bytesCursor.push(buf.toString("latin1"));
    if (!this.started) {
      if (this.first === undefined && buf.length === 1) {
        this.first = buf[0] as number;
        return;
      }
      this.started = true;
      const b0 = this.first ?? (buf[0] as number);
      const b1 = this.first === undefined ? (buf[1] as number) : (buf[0] as number);
      const enc =
        b0 === 0xff && b1 === 0xfe ? "utf-16le" : b0 === 0xfe && b1 === 0xff ? "utf-16be" : undefined;
      if (enc) {
        this.utf16 = new TextDecoder(enc);
        if (this.first !== undefined)
          this.text().push(this.utf16.decode(Uint8Array.of(this.first), { stream: true }));
      }
      this.first = undefined;
    }
    if (this.utf16) this.text().push(this.utf16.decode(buf, { stream: true }));
  }

  end(): string[] {
    if (this.utf16) this.text().push(this.utf16.decode());
    const names = new Set(this.bytesCursor.found);
    for (const n of this.textCursor?.found ?? []) names.add(n);
    return [...names];
  }

  private text(): SecretCursor {
    this.textCursor ??= new SecretCursor(textDictionary(this.secrets));
    return this.textCursor;
  }
}

/** Scans one file; names of the secrets it contains. */
export async function scanFile(
  secrets: SecretSet,
  stream: AsyncIterable<Uint8Array | string>,
): Promise<string[]> {
  const s = new FileScanner(secrets);
  for await (const chunk of stream) s.write(chunk);
  return s.end();
}

/**
 * Names inside a path or symlink target: a file called after a secret leaks it as surely as one
 * containing it.
 */
function scanName(secrets: SecretSet, text: string): string[] {
  const s = new FileScanner(secrets);
  s.write(text);
  return s.end();
}

function hitsFor(secrets: SecretSet, path: string, names: Iterable<string>, into: SecretHit[]): void {
  let shown: string | undefined;
  for (const secretName of names) {
    shown ??= maskText(secrets, path, { detectCredentials: false });
    if (!into.some((h) => h.path === shown && h.secretName === secretName))
      into.push({ path: shown, secretName });
  }
}

/** Scans files one after another; each file's content and path. */
export async function scanFiles(
  secrets: SecretSet,
  files: AsyncIterable<ScanFile> | Iterable<ScanFile>,
): Promise<ScanResult> {
  const hits: SecretHit[] = [];
  let count = 0;
  let bytes = 0;
  for await (const f of files) {
    const s = new FileScanner(secrets);
    for await (const chunk of f.stream) s.write(chunk);
    bytes += s.bytes;
    count++;
    hitsFor(secrets, f.path, [...scanName(secrets, f.path), ...s.end()], hits);
  }
  return { hits, files: count, bytes };
}

/**
 * Scans an upload's tar stream (what ingestTar would store) without storing anything: regular
 * files' content, every entry's path, symlink targets. With `limits`, stops with the same error
 * ingestTar gives once the tar holds more than it would accept.
 */
export async function scanTarStream(
  secrets: SecretSet,
  source: Readable | AsyncIterable<Uint8Array>,
  limits?: IngestLimits,
): Promise<ScanResult> {
  const hits: SecretHit[] = [];
  let files = 0;
  let bytes = 0;
  const extract = tar.extract();
  extract.on("entry", (header, stream, next) => {
    stream.on("error", () => undefined);
    const path = header.name;
    const names = scanName(secrets, path);
    if (header.type === "symlink" || header.type === "link") {
      names.push(...scanName(secrets, header.linkname ?? ""));
    }
    if (header.type !== "file" && header.type !== "contiguous-file") {
      hitsFor(secrets, path, names, hits);
      stream.resume();
      stream.on("end", () => next());
      return;
    }
    files++;
    bytes += header.size ?? 0;
    if (limits && (files > limits.maxFiles || bytes > limits.maxBytes)) {
      stream.resume();
      next(
        new AirlockError(
          "ARTIFACT_INVALID",
          `artifact exceeds its limit of ${limits.maxFiles} files or ${limits.maxBytes} bytes`,
        ),
      );
      return;
    }
    const s = new FileScanner(secrets);
    stream.on("data", (chunk: unknown) => s.write(chunk as Buffer));
    stream.on("end", () => {
      hitsFor(secrets, path, [...names, ...s.end()], hits);
      next();
    });
  });
  await pipeline(source, extract);
  return { hits, files, bytes };
}

/**
 * The error an upload with secrets in it fails with. Names the first file and secret (and how many
 * more hits there are); `details.hits` lists all. Never the value.
 */
export function secretsFoundError(hits: readonly SecretHit[]): AirlockError {
  const [first] = hits;
  if (!first) throw new Error("secretsFoundError needs at least one hit");
  const more = hits.length > 1 ? ` (and ${hits.length - 1} more)` : "";
  return new AirlockError(
    "ARTIFACT_INVALID",
    `${first.path} contains secret ${first.secretName}${more}; the upload is blocked`,
    {
      hint: "artifacts are scanned for every secret the job received, in its common encodings; remove the value from the files you upload (write it at deploy time instead)",
      details: { hits: hits.map((h) => ({ path: h.path, secretName: h.secretName })) },
    },
  );
}

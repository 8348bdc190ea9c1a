/**
 * A string's UTF-16 code units, copied into a typed array. The scanners' hot loops read these
 * instead of calling `charCodeAt`: V8 compiles `charCodeAt` for the string representations it has
 * seen at that call site (flat, cons, sliced, one- or two-byte…), and a controller that has masked
 * many kinds of log text leaves it polymorphic, which halved the masker's throughput at 1,000
 * secrets (docs/BENCHMARKS.md, "Masker after jobs"). One native copy per chunk buys a loop that
 * reads the same kind of typed array whatever the text was.
 */

const SHARED_BYTES = 128 * 1024;
// Shared: the scanners run synchronously and never re-enter, so one scratch serves them all.
const scratch = Buffer.allocUnsafeSlow(SHARED_BYTES);
const scratchUnits = new Uint16Array(scratch.buffer, scratch.byteOffset, SHARED_BYTES / 2);

/** The code units of `text.slice(start, end)` from index 0, valid until the next call. */
export function codeUnits(text: string, start: number, end: number): Uint16Array {
  const part = start === 0 && end === text.length ? text : text.slice(start, end);
  // utf16le writes each code unit as it is, lone surrogates included.
  if ((end - start) * 2 <= SHARED_BYTES) {
    scratch.write(part, 0, "utf16le");
    return scratchUnits;
  }
  // Larger than a log chunk: its own array, so the shared scratch stays small.
  const own = Buffer.from(part, "utf16le");
  return new Uint16Array(own.buffer, own.byteOffset, own.length / 2);
}

/**
 * The streaming half of the automaton: feeds log text through it chunk by chunk, keeps the state
 * across chunks, and holds back only what a match still in progress could cover.
 *
 * Hold-back is exact, not a fixed window: after a chunk, the automaton's depth d says the last d
 * symbols are the longest suffix that can still grow into a needle, so everything before them is
 * final and is released, with matched spans replaced by `***` (overlapping or touching spans
 * merge into one). A span that could still merge with a later match is held with it. Normal log
 * text therefore passes with a hold-back of a few characters; the worst case is the longest
 * needle, and a bound (MAX_HOLD) stops a pathological whitespace run inside a partial match from
 * holding output forever.
 *
 * When the secret set changes (a `::add-mask::`), the automaton is rebuilt and the held-back text
 * is scanned again from the root, so a new value that sits in it is still caught.
 */
import type { Automaton } from "./automaton.js";
import { SEP, sparseNext } from "./automaton.js";
import { codeUnits } from "./code-units.js";
import type { SecretSet } from "./secret-set.js";

export const MASK = "***";
/** Characters of output a single partial match may hold back before it is released anyway. */
export const MAX_HOLD = 128 * 1024;

export class NeedleStream {
  private auto: Automaton;
  private version: number;
  private buf = "";
  /** Absolute stream offset of buf[0]. */
  private off = 0;
  /** Index into buf of the first character not yet scanned. */
  private scanned = 0;
  private state = 0;
  /** Matched spans, absolute [start, end), sorted, disjoint and not touching. */
  private spanStart: number[] = [];
  private spanEnd: number[] = [];
  /** Absolute offsets of the last character of trigger literals not yet released, ascending. */
  private triggerEnds: number[] = [];
  /**
   * Whether the text returned by the last push/flush completed a trigger literal (one of the
   * strings every credential format starts with); without one the credential stage may skip it.
   */
  releasedTrigger = false;

  constructor(private readonly secrets: SecretSet) {
    this.auto = secrets.automaton();
    this.version = secrets.version;
  }

  push(text: string): string {
    this.sync();
    if (text.length > 0) this.buf += text;
    this.scan();
    return this.release(false);
  }

  flush(): string {
    this.sync();
    this.scan();
    const out = this.release(true);
    this.state = 0;
    return out;
  }

  private sync(): void {
    if (this.secrets.version === this.version) return;
    this.version = this.secrets.version;
    this.auto = this.secrets.automaton();
    // Rescan what is held back with the new needles; the spans found before will be found again.
    this.state = 0;
    this.scanned = 0;
    this.triggerEnds.length = 0;
    this.spanStart.length = 0;
    this.spanEnd.length = 0;
  }

  private scan(): void {
    const auto = this.auto;
    const { cls, K, D, dense, inCls, matchLen, trigger } = auto;
    const buf = this.buf;
    const n = buf.length;
    const off = this.off;
    let s = this.state;
    // r: the current state's row offset in the dense block, or -1 in a sparse state (then s).
    let r = s < D ? s * K : -1;
    const from = this.scanned;
    const units = codeUnits(buf, from, n);
    for (let i = from; i < n; i++) {
      const c = cls[units[i - from] as number] as number;
      if (r >= 0) {
        const v = dense[r + c] as number;
        if (v >= 0) {
          r = v;
          continue;
        }
        s = ~v;
      } else if (c === SEP && inCls[s] === SEP) {
        continue; // a separator run goes on: still one symbol
      } else if (c === 0) {
        s = 0;
        r = 0;
        continue;
      } else {
        s = sparseNext(auto, s, c);
      }
      const m = matchLen[s] as number;
      if (m !== 0) this.addSpan(this.symbolStart(off + i, m), off + i + 1);
      if (trigger[s] === 1) this.triggerEnds.push(off + i);
      r = s < D ? s * K : -1;
    }
    this.state = r >= 0 ? r / K : s;
    this.scanned = n;
  }

  /**
   * Absolute offset where the `symbols` symbols ending at absolute offset `last` begin, a run of
   * separators counting as one symbol. Called per match and once per chunk, never per character.
   */
  private symbolStart(last: number, symbols: number): number {
    const { cls } = this.auto;
    const buf = this.buf;
    let j = last - this.off;
    let count = 0;
    while (j >= 0) {
      if (cls[buf.charCodeAt(j)] === SEP) {
        while (j > 0 && cls[buf.charCodeAt(j - 1)] === SEP) j--;
      }
      if (++count === symbols) return this.off + j;
      j--;
    }
    return this.off;
  }

  private addSpan(start: number, end: number): void {
    const ss = this.spanStart;
    const se = this.spanEnd;
    // Matches arrive in order of their end, so only the tail can overlap or touch.
    while (ss.length > 0 && (se[se.length - 1] as number) >= start) {
      start = Math.min(start, ss.pop() as number);
      end = Math.max(end, se.pop() as number);
    }
    ss.push(start);
    se.push(end);
  }

  private release(all: boolean): string {
    const end = this.off + this.buf.length;
    let cut = end;
    if (!all) {
      const d = this.auto.depth[this.state] as number;
      if (d > 0) cut = this.symbolStart(end - 1, d);
      // A span that a later match may still overlap or touch is held with it.
      for (let k = this.spanStart.length - 1; k >= 0 && (this.spanEnd[k] as number) >= cut; k--) {
        cut = Math.min(cut, this.spanStart[k] as number);
      }
      if (end - cut > MAX_HOLD) cut = end;
    }
    // A trigger counts once it is wholly released (no trigger holds a separator, so its text
    // cannot be split between what the credential stage has and what is still held here).
    let k = 0;
    while (k < this.triggerEnds.length && (this.triggerEnds[k] as number) < cut) k++;
    this.releasedTrigger = k > 0;
    if (k > 0) this.triggerEnds.splice(0, k);
    if (cut === this.off) return "";
    let out = "";
    let p = this.off;
    let used = 0;
    const ss = this.spanStart;
    const se = this.spanEnd;
    while (used < ss.length && (ss[used] as number) < cut) {
      const s = ss[used] as number;
      const e = se[used] as number; // <= cut: a span that could still grow is held with it
      if (s > p) out += this.buf.slice(p - this.off, s - this.off);
      out += MASK;
      p = Math.max(p, e);
      used++;
    }
    if (used > 0) {
      ss.splice(0, used);
      se.splice(0, used);
    }
    if (cut > p) out += this.buf.slice(p - this.off, cut - this.off);
    this.buf = this.buf.slice(cut - this.off);
    this.scanned -= cut - this.off;
    this.off = cut;
    return out;
  }
}

/**
 * Runs a SecretSet's Aho-Corasick automaton over text and says WHICH secrets matched, not where:
 * the masker only needs spans to replace, the artifact scanner needs names to report. The state
 * carries across `push` calls, so a needle split between chunks is found like any other.
 *
 * The automaton stores no needle ids, only the length of the longest needle ending in a state.
 * A state s ends a needle of its own exactly when matchLen[s] === depth[s] (a needle inherited
 * through a failure link is always shorter than the state's depth), and the needles ending at s
 * are those of the states on its failure chain. A needle's text is its trie path, read back
 * through the parent of each state (children of a node are a consecutive id range, so the parent
 * is found by binary search) and the character of each edge's column. The text then maps to its
 * secret's name through SecretSet.nameOfNeedle. This runs only on a match, once per state.
 *
 * Two dictionaries. Text (paths, UTF-16 files) is JS strings and runs through the SecretSet's own
 * automaton. File bytes are read as latin1, one character per byte, which is ~25 times faster to
 * decode than UTF-8 over binary data and exact for ASCII needles: an ASCII needle only ever
 * matches ASCII bytes, and every other byte sends the automaton to its root either way. For a
 * needle with non-ASCII characters the byte dictionary adds its UTF-8 bytes read as latin1
 * ("Pässwort" → "PÃ¤sswort"), so one latin1 pass finds the value in UTF-8 and in latin1 files.
 */
import { type Automaton, buildAutomaton, SEP, sparseNext } from "../../secrets/masker/automaton.js";
import { codeUnits } from "../../secrets/masker/code-units.js";
import type { SecretSet } from "../../secrets/masker/secret-set.js";

/** An automaton and the way back from one of its needles to the secret's name. */
export interface Dictionary {
  readonly auto: Automaton;
  nameOf(needle: string): string | undefined;
}

/** For decoded text: the SecretSet's shared automaton as it is. */
export function textDictionary(secrets: SecretSet): Dictionary {
  return { auto: secrets.automaton(), nameOf: (n) => secrets.nameOfNeedle(n) };
}

const byteDictionaries = new WeakMap<SecretSet, { version: number; dict: Dictionary }>();

/** For bytes read as latin1 (see above); the SecretSet's automaton when every needle is ASCII. */
export function byteDictionary(secrets: SecretSet): Dictionary {
  const cached = byteDictionaries.get(secrets);
  if (cached?.version === secrets.version) return cached.dict;
  const needles = secrets.needleTexts();
  const extra = new Map<string, string>(); // UTF-8-as-latin1 form -> needle
  for (const n of needles) {
    if (!/[\u0080-\uffff]/.test(n)) continue;
    const bytes = Buffer.from(n, "utf8").toString("latin1");
    if (!extra.has(bytes)) extra.set(bytes, n);
  }
  const dict: Dictionary =
    extra.size === 0
      ? textDictionary(secrets)
      : {
          auto: buildAutomaton([...new Set([...needles, ...extra.keys()])]),
          nameOf: (n) => secrets.nameOfNeedle(n) ?? secrets.nameOfNeedle(extra.get(n) ?? ""),
        };
  byteDictionaries.set(secrets, { version: secrets.version, dict });
  return dict;
}

/** Column → the one character it stands for (SEP → " ", the normal form of a separator run). */
const columnChars = new WeakMap<Automaton, string[]>();

function charsOf(auto: Automaton): string[] {
  let chars = columnChars.get(auto);
  if (!chars) {
    chars = new Array<string>(auto.K).fill("");
    for (let code = 0; code < auto.cls.length; code++) {
      const col = auto.cls[code] as number;
      if (col > SEP && chars[col] === "") chars[col] = String.fromCharCode(code);
    }
    chars[SEP] = " ";
    columnChars.set(auto, chars);
  }
  return chars;
}

function parentOf(auto: Automaton, state: number): number {
  // The last node whose child range starts at or before `state` is its parent (see above).
  let lo = 0;
  let hi = auto.states - 1;
  while (lo < hi) {
    const mid = (lo + hi + 1) >> 1;
    if ((auto.childStart[mid] as number) <= state) lo = mid;
    else hi = mid - 1;
  }
  return lo;
}

/** The text of the trie path from the root to `state`. */
export function pathText(auto: Automaton, state: number): string {
  const chars = charsOf(auto);
  const out: string[] = [];
  for (let s = state; s !== 0; s = parentOf(auto, s)) out.push(chars[auto.inCls[s] as number] as string);
  return out.reverse().join("");
}

export class SecretCursor {
  private readonly auto: Automaton;
  private state = 0;
  /** Names found so far, in order of first match. */
  readonly found = new Set<string>();
  /** Names per matching state, so a repeated hit costs one map lookup. */
  private readonly namesAt = new Map<number, readonly string[]>();

  /** Snapshot: a scan runs against the set as it was when the dictionary was taken. */
  constructor(private readonly dict: Dictionary) {
    this.auto = dict.auto;
  }

  /** Feeds text; the state carries over to the next call. Same transitions as NeedleStream.scan. */
  push(text: string): void {
    const auto = this.auto;
    const { cls, K, D, dense, inCls, matchLen } = auto;
    const n = text.length;
    let s = this.state;
    let r = s < D ? s * K : -1;
    const units = codeUnits(text, 0, n);
    for (let i = 0; i < n; i++) {
      const c = cls[units[i] as number] as number;
      if (r >= 0) {
        const v = dense[r + c] as number;
        if (v >= 0) {
          r = v;
          continue;
        }
        s = ~v;
      } else if (c === SEP && inCls[s] === SEP) {
        continue;
      } else if (c === 0) {
        s = 0;
        r = 0;
        continue;
      } else {
        s = sparseNext(auto, s, c);
      }
      if ((matchLen[s] as number) !== 0) this.record(s);
      r = s < D ? s * K : -1;
    }
    this.state = r >= 0 ? r / K : s;
  }

  /** Forgets the partial match in progress (between files). */
  reset(): void {
    this.state = 0;
  }

  private record(state: number): void {
    let names = this.namesAt.get(state);
    if (!names) {
      const { matchLen, depth, fail } = this.auto;
      const list: string[] = [];
      for (let u = state; u !== 0; u = fail[u] as number) {
        const m = matchLen[u] as number;
        if (m === 0) break; // nothing on the rest of the chain ends a needle
        if (m !== depth[u]) continue;
        const name = this.dict.nameOf(pathText(this.auto, u));
        if (name !== undefined && !list.includes(name)) list.push(name);
      }
      names = list;
      this.namesAt.set(state, names);
    }
    for (const name of names) this.found.add(name);
  }
}

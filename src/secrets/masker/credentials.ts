/**
 * Credentials nobody registered, recognised by their format: PEM private key blocks, AWS access
 * key ids (and secret keys after their usual name), GitHub tokens, JWTs, Slack tokens. They are
 * masked like registered secrets and reported (kind only, never the value) so a leak in the
 * workflow can be fixed.
 *
 * This stage runs after the needle automaton, on its output, and works on lines: a credential
 * never spans a line, except a PEM block, which is tracked line by line as a small state machine
 * (inside a block every key-looking line is masked until the END line, so a block is never held
 * back whole). Text is released at line ends (LF or CR) and, within a line, up to its last space
 * or tab, since none of these formats contains one; a partial line holding a PEM marker or an
 * AWS secret key name is kept until it ends. A line longer than MAX_LINE is processed as if it
 * ended there. Because the automaton has already replaced registered values with `***`, a
 * registered token is not also reported as an unregistered one.
 *
 * Cost: the automaton also looks for TRIGGERS, the literals every format starts with, in the same
 * pass as the secrets, and tells this stage whether the text it released completed one. Most
 * chunks hold none and pass here with no regex at all; a partial line that holds one is scanned
 * again when it grows.
 */
import { MASK } from "./needle-stream.js";

export type CredentialKind =
  | "private-key"
  | "aws-access-key-id"
  | "aws-secret-access-key"
  | "github-token"
  | "jwt"
  | "slack-token";

/** What the masker reports; deliberately carries no part of the value. */
export interface Detection {
  kind: CredentialKind;
}

export const MAX_LINE = 64 * 1024;
/** A partial line is not released while it holds these: a PEM marker, a named AWS secret key. */
const unsplittable = /-----|ccess_?[Kk]ey|CCESS_KEY/;

/**
 * Every format starts with (or, for the AWS secret key, is named with) one of these literals. The
 * needle automaton scans for them in the same pass as the secrets and says whether a released
 * chunk holds one; only then does this stage run its regexes. Keep `formats` in step.
 */
export const TRIGGERS: readonly string[] = [
  "eyJ",
  "AKIA",
  "ASIA",
  ..."pousr".split("").map((c) => `gh${c}_`),
  "github_pat_",
  ..."abposr".split("").map((c) => `xox${c}-`),
  "ccess_key",
  "ccess_Key",
  "ccesskey",
  "ccessKey",
  "CCESS_KEY",
  "-----BEGIN",
];
const trigger = new RegExp(TRIGGERS.map((t) => t.replace(/[-]/g, "\\$&")).join("|"), "g");
const formats: { kind: CredentialKind; re: RegExp; before: RegExp }[] = [
  { kind: "jwt", re: /eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]*/y, before: /[A-Za-z0-9_-]/ },
  { kind: "aws-access-key-id", re: /(?:AKIA|ASIA)[A-Z0-9]{16}(?![A-Za-z0-9])/y, before: /[A-Za-z0-9]/ },
  {
    kind: "github-token",
    re: /(?:gh[pousr]_[A-Za-z0-9]{36,255}|github_pat_[A-Za-z0-9_]{36,255})(?![A-Za-z0-9_])/y,
    before: /[A-Za-z0-9_]/,
  },
  { kind: "slack-token", re: /xox[abposr]-[A-Za-z0-9-]{10,}/y, before: /[A-Za-z0-9]/ },
];
/**
 * The secret key only where it is named; the match is the name through the value. The trigger
 * hits inside the name ("ccess_key"), which starts 7 or 12 characters earlier.
 */
const awsSecret =
  /(?:aws_secret_access_key|AWS_SECRET_ACCESS_KEY|[Ss]ecretAccessKey)["']?\s*[:=]\s*["']?([A-Za-z0-9/+]{40})(?![A-Za-z0-9/+])/y;
const awsSecretNameOffsets = [12, 7];

const pemBegin = /-----BEGIN [A-Z0-9 ]*PRIVATE KEY(?: BLOCK)?-----/;
const pemBeginHere = /-----BEGIN [A-Z0-9 ]*PRIVATE KEY(?: BLOCK)?-----/y;
const pemEnd = /-----END [A-Z0-9 ]*PRIVATE KEY(?: BLOCK)?-----/;
/** A base64 body line or an RFC 1421 header ("Proc-Type: 4,ENCRYPTED"). */
const pemBody = /^[ \t]*(?:[A-Za-z0-9+/=]+|[A-Za-z][A-Za-z-]*: .*)[ \t]*$/;
const blank = /^[ \t]*$/;

export class CredentialStage {
  private pending = "";
  /** The last character already scanned: a token must not start in the middle of a word. */
  private last = "";
  private inKey = false;
  /** Whether the pending partial line holds a trigger literal. */
  private pendingTrigger = false;
  /** Set by tokens(…, true): where the line holding a PEM header starts, or -1. */
  private pemLine = -1;

  constructor(private readonly report: (d: Detection) => void) {}

  /**
   * `mayHoldCredential` false promises that `text` completes no trigger literal (see TRIGGERS);
   * then, unless a PEM block or a pending trigger is open, lines pass without any regex.
   */
  push(text: string, mayHoldCredential = true): string {
    let s = this.pending.length > 0 ? this.pending + text : text;
    const scan = mayHoldCredential || this.pendingTrigger || this.inKey;
    let out = "";
    let lastEol = s.length - 1;
    while (lastEol >= 0 && s.charCodeAt(lastEol) !== 0x0a && s.charCodeAt(lastEol) !== 0x0d) lastEol--;
    if (lastEol >= 0) {
      const block = s.slice(0, lastEol + 1);
      if (scan) out = this.lines(block);
      else {
        out = block;
        this.last = block[block.length - 1] as string;
      }
      s = s.slice(lastEol + 1);
    }
    if (!this.inKey && !unsplittable.test(s)) {
      const ws = Math.max(s.lastIndexOf(" "), s.lastIndexOf("\t"));
      if (ws >= 0) {
        const seg = s.slice(0, ws + 1);
        if (scan) out += this.tokens(seg);
        else {
          out += seg;
          this.last = seg[seg.length - 1] as string;
        }
        s = s.slice(ws + 1);
      }
    }
    if (s.length > MAX_LINE) {
      out += this.line(s);
      s = "";
    }
    this.pending = s;
    // What stays pending is scanned again next time only if a trigger is in it.
    if (scan) {
      trigger.lastIndex = 0;
      this.pendingTrigger = s.length > 0 && trigger.test(s);
    }
    return out;
  }

  flush(): string {
    const s = this.pending;
    this.pending = "";
    const out = s.length > 0 ? this.line(s) : "";
    this.inKey = false;
    this.pendingTrigger = false;
    this.last = "";
    return out;
  }

  /** Whole lines, each with its terminator. */
  private lines(block: string): string {
    let i = 0;
    let out = "";
    if (!this.inKey) {
      // One pass for the token formats; it stops at the line of a PEM header, if any.
      out = this.tokens(block, true);
      if (this.pemLine === -1) return out;
      i = this.pemLine;
    }
    while (i < block.length) {
      let j = i;
      while (j < block.length && block[j] !== "\n" && block[j] !== "\r") j++;
      out += this.line(block.slice(i, j));
      if (j < block.length) {
        out += block[j];
        this.last = block[j] as string;
      }
      i = j + 1;
    }
    return out;
  }

  /** One line without its terminator, through the PEM state machine. */
  private line(line: string): string {
    let rest = line;
    let out = "";
    if (this.inKey) {
      const end = pemEnd.exec(rest);
      if (end) {
        out += MASK;
        rest = rest.slice(end.index + end[0].length);
        this.inKey = false;
      } else if (blank.test(rest)) {
        return rest;
      } else if (pemBody.test(rest)) {
        return MASK;
      } else {
        this.inKey = false; // not key material after all: an unterminated block ends here
      }
    }
    for (;;) {
      const begin = pemBegin.exec(rest);
      if (!begin) return out + this.tokens(rest);
      out += this.tokens(rest.slice(0, begin.index));
      this.report({ kind: "private-key" });
      const after = rest.slice(begin.index + begin[0].length);
      const end = pemEnd.exec(after);
      out += MASK;
      if (!end) {
        this.inKey = true;
        return out;
      }
      rest = after.slice(end.index + end[0].length); // a one-line block, e.g. JSON with \n escapes
    }
  }

  /**
   * Masks single-token credentials in text that no token crosses the edges of. With `stopAtPem`,
   * stops at the start of the line holding a PEM private key header and leaves its index in
   * `pemLine` (-1 if there is none); the text before it is returned, masked.
   */
  private tokens(seg: string, stopAtPem = false): string {
    this.pemLine = -1;
    if (seg.length === 0) return seg;
    const before = this.last;
    this.last = seg[seg.length - 1] as string;
    trigger.lastIndex = 0;
    let m = trigger.exec(seg);
    if (m === null) return seg;
    let out = "";
    let p = 0;
    while (m !== null) {
      const at = m.index;
      if (m[0] === "-----BEGIN") {
        pemBeginHere.lastIndex = at;
        if (stopAtPem && pemBeginHere.test(seg)) {
          let ls = at;
          while (ls > p && seg[ls - 1] !== "\n" && seg[ls - 1] !== "\r") ls--;
          this.pemLine = ls;
          this.last = ls > 0 ? (seg[ls - 1] as string) : before;
          return out + seg.slice(p, ls);
        }
      } else {
        const hit = this.match(seg, at, at > 0 ? (seg[at - 1] as string) : before);
        if (hit !== undefined && hit.start >= p) {
          this.report({ kind: hit.kind });
          out += seg.slice(p, hit.start) + MASK;
          p = hit.end;
          trigger.lastIndex = hit.end;
        }
      }
      m = trigger.exec(seg);
    }
    return out + seg.slice(p);
  }

  private match(
    text: string,
    at: number,
    prev: string,
  ): { kind: CredentialKind; start: number; end: number } | undefined {
    for (const f of formats) {
      f.re.lastIndex = at;
      const m = f.re.exec(text);
      if (m !== null) {
        if (prev !== "" && f.before.test(prev)) return undefined;
        return { kind: f.kind, start: at, end: at + m[0].length };
      }
    }
    for (const back of awsSecretNameOffsets) {
      if (at < back) continue;
      awsSecret.lastIndex = at - back;
      const m = awsSecret.exec(text);
      if (m === null) continue;
      const end = at - back + m[0].length;
      return { kind: "aws-secret-access-key", start: end - 40, end };
    }
    return undefined;
  }
}

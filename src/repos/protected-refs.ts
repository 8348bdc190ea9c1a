import picomatch from "picomatch";
import type { RefType } from "./git-source.js";

export interface ProtectionRules {
  branches: string[];
  tags: string[];
}

/** A ref is protected when its short name matches one of the patterns for its kind (`*`, `**`, `v*`). */
export function isProtectedRef(rules: ProtectionRules, refType: RefType, name: string): boolean {
  const patterns = refType === "tag" ? rules.tags : rules.branches;
  return patterns.length > 0 && picomatch.isMatch(name, patterns, { dot: true });
}

/**
 * The fuzz oracle: the slowest obviously-correct masker. It sees the whole text at once, finds
 * every occurrence of every needle (overlapping ones too), merges overlapping or touching spans
 * and replaces each with `***`. A needle's single space stands for any run of separators, as in
 * the automaton. Used by tests only.
 */
import { MASK } from "./needle-stream.js";

const escapeRegExp = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");

export function referenceMask(needles: readonly string[], text: string): string {
  const spans: [number, number][] = [];
  for (const needle of needles) {
    const re = new RegExp(needle.split(" ").map(escapeRegExp).join("[ \\t\\r\\n]+"), "g");
    for (let m = re.exec(text); m !== null; m = re.exec(text)) {
      spans.push([m.index, m.index + m[0].length]);
      re.lastIndex = m.index + 1;
    }
  }
  spans.sort((a, b) => a[0] - b[0]);
  let out = "";
  let p = 0;
  let cur: [number, number] | undefined;
  for (const s of spans) {
    if (cur && s[0] <= cur[1]) {
      cur[1] = Math.max(cur[1], s[1]);
      continue;
    }
    if (cur) {
      out += text.slice(p, cur[0]) + MASK;
      p = cur[1];
    }
    cur = [s[0], s[1]];
  }
  if (cur) {
    out += text.slice(p, cur[0]) + MASK;
    p = cur[1];
  }
  return out + text.slice(p);
}

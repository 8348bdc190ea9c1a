/**
 * Guards on the parsed YAML document that make intake's cost linear in the file's size.
 *
 * Duplicate keys: the `yaml` package's `uniqueKeys` compares each key with every earlier key of
 * its mapping, so 40,000 keys take 15 s; they are found here with one set per mapping instead.
 *
 * Anchors and aliases, resolved once per document. The `yaml` package's own `Alias.resolve`
 * re-walks the whole document on every call, so a 1 MiB file of aliases costs minutes; and intake
 * walks an aliased subtree once per alias, so nested aliases (the "billion laughs") multiply the
 * work without multiplying the file. Both are settled here before anything else reads the tree.
 */
import { type Document, isAlias, isMap, isPair, isScalar, isSeq, type Node, visit } from "yaml";

/** How many nodes aliases may add to a workflow beyond those written out: generous for sharing env or steps, far below a bomb. */
export const maxAliasExpansion = 100_000;

/** Keys repeated within their mapping (the second and later of each), in document order. */
export function duplicateKeys(doc: Document.Parsed): Node[] {
  const out: Node[] = [];
  visit(doc, {
    Map: (_key, map) => {
      const seen = new Set<string>();
      for (const pair of map.items) {
        const key = pair.key;
        // Same rule as the yaml package: scalars with equal values (an alias key is never equal).
        if (!isScalar(key)) continue;
        const id = `${typeof key.value}:${String(key.value)}`;
        if (seen.has(id)) out.push(key);
        else seen.add(id);
      }
    },
  });
  return out;
}

export interface AliasIndex {
  /** Each alias → the node of the last anchor of that name before it (null: none). */
  targets: Map<Node, Node | null>;
  /** An alias whose expansion breaks the budget (or refers to its own ancestor), if any. */
  excessive?: Node;
  /** Nodes as written and as expanded through aliases. */
  written: number;
  expanded: number;
}

export function indexAliases(doc: Document.Parsed): AliasIndex {
  const targets = new Map<Node, Node | null>();
  const anchors = new Map<string, Node>();
  const aliases: Node[] = [];
  let written = 0;
  visit(doc, {
    Node: (_key, node) => {
      written++;
      if (isAlias(node)) {
        targets.set(node, anchors.get(node.source) ?? null);
        aliases.push(node);
      } else if (node.anchor) {
        anchors.set(node.anchor, node);
      }
    },
  });
  const index: AliasIndex = { targets, written, expanded: written };
  if (aliases.length === 0) return index;

  // Expanded size of every node, memoised so each subtree is counted once however often it is aliased.
  const sizes = new Map<Node, number>();
  const open = new Set<Node>();
  const size = (node: unknown): number => {
    if (isPair(node)) return size(node.key) + size(node.value);
    if (!node || typeof node !== "object") return 0;
    const n = node as Node;
    const known = sizes.get(n);
    if (known !== undefined) return known;
    if (open.has(n)) return Number.POSITIVE_INFINITY; // an alias inside its own anchor
    open.add(n);
    let total = 1;
    if (isAlias(n)) total = size(targets.get(n));
    else if (isMap(n) || isSeq(n)) for (const item of n.items) total += size(item);
    else if (!isScalar(n)) total = 1;
    open.delete(n);
    sizes.set(n, total);
    return total;
  };
  index.expanded = size(doc.contents);
  if (index.expanded - written > maxAliasExpansion) {
    // Name the alias that costs the most, so the reader knows where to look.
    let worst = aliases[0] as Node;
    for (const a of aliases) if (size(a) > size(worst)) worst = a;
    index.excessive = worst;
  }
  return index;
}

/**
 * Aho-Corasick over UTF-16 code units, built once per version of a secret set and shared by every
 * stream of the job. Cost per log character does not depend on how many needles there are.
 *
 * Alphabet. Each code unit maps to a column: 0 for characters that occur in no needle (they send
 * every state to the root), 1 for the separators (space, tab, CR, LF), then one column per
 * distinct needle character. A whole run of separators counts as ONE column-1 symbol, so a
 * needle's single space matches any whitespace run, e.g. the CRLF or indentation a terminal turns
 * a newline into. Needles are normalised the same way (needles.ts), so matching is exact on the
 * normalised text. The folding costs nothing per character: a state whose path ends in a
 * separator has a self-loop on column 1 (needles never hold two separators in a row, so it has no
 * other separator edge), and any other state's column-1 edge is the ordinary one. The scanner
 * finds where a match began by walking back and counting each run as one symbol; it does this
 * only on a match and once per chunk, never per character.
 *
 * Tables. States are numbered breadth-first. The shallow states, where a scan over ordinary text
 * spends nearly all its time, get a dense row of K columns holding the full DFA transition (goto
 * or inherited through the failure link), so one array read per character. Deeper states, which
 * hardly ever branch, keep only their children: in BFS order a node's children have consecutive
 * ids, so a child list is a range [childStart, childEnd) and the edge label sits in `inCls`. A
 * miss there follows the failure link, which always ends in a dense state. All tables are typed
 * arrays: a 1,000-secret set (≈ 250k states) takes a few MB, its dense block ~0.5 MB (capped at 4 MiB).
 */
export const SEP = 1;
const DENSE_DEPTH = 2;
const MAX_DENSE_CELLS = 1 << 20;

export interface Automaton {
  /** Column per UTF-16 code unit. */
  readonly cls: Uint16Array;
  readonly K: number;
  /** States [0, D) have a dense row. */
  readonly D: number;
  /** Row-major D × K: t * K for a plain dense target t, ~t for a matching or sparse one. */
  readonly dense: Int32Array;
  readonly childStart: Int32Array;
  readonly childEnd: Int32Array;
  readonly inCls: Uint16Array;
  readonly fail: Int32Array;
  /** Length in symbols of the longest needle ending in this state (own or via failure links). */
  readonly matchLen: Int32Array;
  /** 1 where a trigger literal ends (own or via failure links). */
  readonly trigger: Uint8Array;
  /** Length in symbols of the path from the root: how much text a partial match spans. */
  readonly depth: Int32Array;
  readonly states: number;
  /** Longest needle, in code units. */
  readonly maxNeedle: number;
}

/** `needles` must be in normal form (normalizeNeedle): no edge separators, single spaces inside. */
/**
 * `triggers` are literals that mask nothing: the scanner only notes where they end, so the
 * credential stage can skip text in which no credential can start (credentials.ts).
 */
export function buildAutomaton(needles: readonly string[], triggers: readonly string[] = []): Automaton {
  const classOf = new Uint16Array(65536);
  for (const c of [0x20, 0x09, 0x0a, 0x0d]) classOf[c] = SEP;
  let K = 2;
  let total = 1;
  let maxNeedle = 0;
  const all = [...needles, ...triggers];
  for (const n of all) {
    total += n.length;
    maxNeedle = Math.max(maxNeedle, n.length);
    for (let i = 0; i < n.length; i++) {
      const c = n.charCodeAt(i);
      if (classOf[c] === 0) classOf[c] = K++;
    }
  }

  // Trie with arbitrary ids; edges in a map keyed by parent * K + column.
  const edges = new Map<number, number>();
  const firstChild = new Int32Array(total).fill(-1);
  const nextSibling = new Int32Array(total).fill(-1);
  const edgeCls = new Uint16Array(total);
  const ownLen = new Int32Array(total);
  const ownTrigger = new Uint8Array(total);
  const tDepth = new Int32Array(total);
  let nodes = 1;
  for (let ni = 0; ni < all.length; ni++) {
    const n = all[ni] as string;
    let s = 0;
    for (let i = 0; i < n.length; i++) {
      const c = classOf[n.charCodeAt(i)] as number;
      const key = s * K + c;
      let t = edges.get(key);
      if (t === undefined) {
        t = nodes++;
        edges.set(key, t);
        edgeCls[t] = c;
        tDepth[t] = (tDepth[s] as number) + 1;
        nextSibling[t] = firstChild[s] as number;
        firstChild[s] = t;
      }
      s = t;
    }
    if (ni < needles.length) ownLen[s] = n.length;
    else ownTrigger[s] = 1;
  }

  // Breadth-first renumbering: old id -> new id, children of a node consecutive.
  const order = new Int32Array(nodes);
  const newId = new Int32Array(nodes);
  const childStart = new Int32Array(nodes);
  const childEnd = new Int32Array(nodes);
  let tail = 1;
  for (let head = 0; head < tail; head++) {
    const u = order[head] as number;
    childStart[head] = tail;
    for (let v = firstChild[u] as number; v !== -1; v = nextSibling[v] as number) {
      order[tail] = v;
      newId[v] = tail++;
    }
    childEnd[head] = tail;
  }
  const inCls = new Uint16Array(nodes);
  const depth = new Int32Array(nodes);
  const matchLen = new Int32Array(nodes);
  const trigger = new Uint8Array(nodes);
  for (let i = 0; i < nodes; i++) {
    const old = order[i] as number;
    inCls[i] = edgeCls[old] as number;
    depth[i] = tDepth[old] as number;
    matchLen[i] = ownLen[old] as number;
    trigger[i] = ownTrigger[old] as number;
  }
  const child = (s: number, c: number): number => {
    const end = childEnd[s] as number;
    for (let k = childStart[s] as number; k < end; k++) if (inCls[k] === c) return k;
    return -1;
  };

  let D = 0;
  while (D < nodes && (depth[D] as number) <= DENSE_DEPTH) D++;
  D = Math.max(1, Math.min(D, Math.floor(MAX_DENSE_CELLS / K)));
  const dense = new Int32Array(D * K);

  // Failure links in BFS order; a state's failure target is shallower, so already final.
  const fail = new Int32Array(nodes);
  const root = child.bind(null, 0);
  for (let s = 0; s < nodes; s++) {
    const end = childEnd[s] as number;
    for (let v = childStart[s] as number; v < end; v++) {
      const c = inCls[v] as number;
      if (s === 0) {
        fail[v] = 0;
      } else {
        let f = fail[s] as number;
        let t = child(f, c);
        while (t === -1 && f !== 0) {
          f = fail[f] as number;
          t = child(f, c);
        }
        fail[v] = t === -1 ? 0 : t;
      }
      const fm = matchLen[fail[v] as number] as number;
      if (fm > (matchLen[v] as number)) matchLen[v] = fm;
      if (trigger[fail[v] as number] === 1) trigger[v] = 1;
    }
    if (s < D) {
      const row = s * K;
      const frow = (fail[s] as number) * K;
      for (let c = 0; c < K; c++) {
        const t = s === 0 ? root(c) : child(s, c);
        dense[row + c] = t !== -1 ? t : s === 0 ? 0 : (dense[frow + c] as number);
      }
      if (s !== 0 && inCls[s] === SEP) dense[row + SEP] = s;
    }
  }
  // Encode the dense block for the scanner's fast path: an entry is the target's row offset
  // (t * K) when the target is dense and ends no needle or trigger, so one read and one sign test per
  // character; anything else (a match, or a sparse target) is ~t and takes the slow path. Only
  // now are the rows final: a state's matchLen is settled when its parent is processed.
  for (let i = 0; i < dense.length; i++) {
    const t = dense[i] as number;
    dense[i] = t < D && (matchLen[t] as number) === 0 && trigger[t] === 0 ? t * K : ~t;
  }
  // One element kind for every automaton, so the scanners' loads stay monomorphic in a controller
  // that masks jobs with few and with many secrets (see code-units.ts).
  const cls = classOf;
  return {
    cls,
    K,
    D,
    dense,
    childStart,
    childEnd,
    inCls,
    fail,
    matchLen,
    trigger,
    depth,
    states: nodes,
    maxNeedle,
  };
}

/**
 * The transition out of a deep (sparse) state: its own children first, then along failure links
 * until a state has a child for `c` or the walk reaches the dense top. The scanners keep the dense
 * fast path inline and call this only when they leave it.
 */
export function sparseNext(a: Automaton, state: number, c: number): number {
  const { D, K, dense, childStart, childEnd, inCls, fail } = a;
  let s = state;
  while (s >= D) {
    const end = childEnd[s] as number;
    for (let k = childStart[s] as number; k < end; k++) if (inCls[k] === c) return k;
    s = fail[s] as number;
  }
  const v = dense[s * K + c] as number;
  return v >= 0 ? v / K : ~v;
}

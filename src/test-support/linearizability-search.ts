/**
 * The search behind `checkOperations` (see `linearizability.ts`): Wing &
 * Gong's, with Lowe's memoization of (set of operations linearized, model
 * state), over one partition of a history.
 */
import type { Model, Operation } from './linearizability-model.js';

/**
 * Known outcomes first, then unknown ones, each by call time: the set of
 * operations placed is then mostly a run of full words from the start, which
 * `search` stores compactly.
 */
export function searchOrder<I, O>(ops: readonly Operation<I, O>[]): Operation<I, O>[] {
  const byCall = (a: Operation<I, O>, b: Operation<I, O>): number => a.call - b.call;
  return [
    ...ops.filter((o) => o.return !== Infinity).sort(byCall),
    ...ops.filter((o) => o.return === Infinity).sort(byCall),
  ];
}

/** The dead end that got furthest: latest return time, then most operations placed. */
export interface DeadEnd<S> {
  /** Return time of the operation that could not be placed. */
  readonly time: number;
  readonly depth: number;
  /** The operations placed, in order. */
  readonly prefix: readonly number[];
  readonly state: S;
  readonly blocked: number;
}

interface Frame {
  readonly op: number;
  /** Phase 0: the call node of `op`; phase 1: its index in the unknown operations. */
  readonly at: number;
  readonly phase: number;
  readonly frontier: number;
  readonly state: number;
  readonly nexts: Int32Array;
  readonly alt: number;
  readonly h1: number;
  readonly h2: number;
  /** Placed without loss of generality: if this fails, so does its parent. */
  readonly forced: boolean;
}

interface Seen {
  readonly h2: number;
  readonly state: number;
  readonly unknowns: number;
  readonly set: Snapshot;
}

/**
 * The WGL search over a doubly linked list of the call and return events of
 * the operations with known outcomes, in time order (node 0 is the head).
 * Linearizing an operation lifts its two events out of the list; reaching a
 * return event means its operation should already have been placed, so the
 * search tries the operations of unknown outcome called by then, then
 * backtracks. Beyond Porcupine:
 *
 * - States are numbered by hash and `step` is asked once per (operation,
 *   state).
 * - An operation that leaves the state as it is (a read, a failed CAS) is
 *   placed as soon as it is legal and never tried elsewhere: moving it earlier
 *   cannot break a linearization.
 * - Operations of unknown outcome are tried after the others, may be left out
 *   (they never took effect), and are not part of the memo's exact key: a
 *   configuration is skipped when one with the same known operations and
 *   state and a subset of its unknown ones was seen, as that one can do
 *   everything this one can.
 */
export function search<S, I, O>(
  model: Model<S, I, O>,
  ops: readonly Operation<I, O>[],
  deadline: number,
): 'ok' | 'timeout' | DeadEnd<S> {
  const n = ops.length;
  const firstUnknown = ops.findIndex((o) => o.return === Infinity);
  const known = firstUnknown < 0 ? n : firstUnknown; // see searchOrder
  const unknownOps = Array.from({ length: n - known }, (_, i) => known + i);
  const { next, opOf, isCall, lift, unlift } = eventList(ops, known);
  const set = new OpSet(n, known);
  // Zobrist hashes of the known operations placed, kept up to date in O(1).
  const random = mulberry32(0x5eed);
  const z1 = Int32Array.from(ops, (_, i) => (i < known ? random() : 0));
  const z2 = Int32Array.from(ops, (_, i) => (i < known ? random() : 0));

  const states: S[] = [];
  const stateIds = new Map<string, number>();
  const idOf = (s: S): number => {
    const hash = model.hash(s);
    let id = stateIds.get(hash);
    if (id === undefined) {
      id = states.push(s) - 1;
      stateIds.set(hash, id);
    }
    return id;
  };
  const transitions = new Map<number, Int32Array>();
  const step = (op: number, from: number): Int32Array => {
    const key = from * n + op;
    let to = transitions.get(key);
    if (!to) {
      const o = ops[op]!;
      to = Int32Array.from(new Set(model.step(states[from]!, o.input, o.output).map(idOf)));
      transitions.set(key, to);
    }
    return to;
  };

  const seen = new Map<number, Seen[]>();
  const stack: Frame[] = [];
  let state = idOf(model.init());
  let unknowns = 0; // how many unknown operations are placed
  let h1 = 0;
  let h2 = 0;
  let phase = 0; // 0: known operations, 1: unknown ones called before `frontier`
  let at = next[0]!; // phase 0: a node; phase 1: an index in unknownOps
  let frontier = -1; // the first return node of the list, in phase 1
  let resume: { nexts: Int32Array; alt: number } | undefined;
  let best: DeadEnd<S> | undefined;
  let iterations = 0;

  /** Undoes frames up to one with alternatives left; false when none is. */
  const backtrack = (): boolean => {
    for (;;) {
      const top = stack.pop();
      if (!top) return false;
      ({ at, phase, frontier, state, h1, h2 } = top);
      set.delete(top.op);
      if (phase === 0) unlift(at);
      else unknowns--;
      if (!top.forced) {
        resume = { nexts: top.nexts, alt: top.alt + 1 };
        return true;
      }
    }
  };

  while (next[0] !== -1) {
    if ((++iterations & 1023) === 0 && performance.now() > deadline) return 'timeout';
    let op: number;
    if (phase === 0) {
      if (!isCall[at]) {
        phase = 1;
        frontier = at;
        at = 0;
        continue;
      }
      op = opOf[at]!;
    } else {
      const blocked = opOf[frontier]!;
      const time = ops[blocked]!.return;
      op = unknownOps[at] ?? -1;
      if (op < 0 || ops[op]!.call > time) {
        const depth = stack.length;
        if (!best || time > best.time || (time === best.time && depth > best.depth)) {
          // Rare enough (hundreds of times for thousands of operations) to copy the prefix.
          best = { time, depth, prefix: stack.map((f) => f.op), state: states[state]!, blocked };
        }
        if (!backtrack()) return best;
        continue;
      }
      if (set.has(op)) {
        at++;
        continue;
      }
    }
    const nexts = resume?.nexts ?? step(op, state);
    const from = resume?.alt ?? 0;
    resume = undefined;
    set.add(op);
    const placedUnknowns = unknowns + phase;
    let placed = false;
    let dead = false;
    for (let alt = from; alt < nexts.length && !placed && !dead; alt++) {
      const to = nexts[alt]!;
      if (phase === 1 && to === state) continue; // no different from leaving it out
      const forced = phase === 0 && nexts.length === 1 && to === state;
      const k2 = h2 ^ z2[op]!;
      const key = (h1 ^ z1[op]! ^ Math.imul(to, 0x9e3779b1)) | 0;
      const bucket = seen.get(key);
      const subsumed = bucket?.some(
        (c) => c.h2 === k2 && c.state === to && c.unknowns <= placedUnknowns && set.covers(c.set),
      );
      if (subsumed) {
        dead = forced; // an equal or stronger configuration already failed
        continue;
      }
      const entry = { h2: k2, state: to, unknowns: placedUnknowns, set: set.snapshot() };
      if (bucket) bucket.push(entry);
      else seen.set(key, [entry]);
      stack.push({ op, at, phase, frontier, state, nexts, alt, h1, h2, forced });
      if (phase === 0) lift(at);
      state = to;
      unknowns = placedUnknowns;
      h1 ^= z1[op]!;
      h2 ^= z2[op]!;
      placed = true;
    }
    if (placed) {
      phase = 0;
      at = next[0]!;
      continue;
    }
    set.delete(op);
    if (!dead) at = phase === 0 ? next[at]! : at + 1;
    else if (!backtrack()) return best!; // what subsumed it failed at a recorded dead end
  }
  return 'ok'; // every known operation is placed; unknown ones left never took effect
}

interface EventList {
  readonly next: Int32Array;
  readonly opOf: Int32Array;
  readonly isCall: Uint8Array;
  readonly lift: (node: number) => void;
  readonly unlift: (node: number) => void;
}

/** Calls and returns in time order, calls first on ties (ties count as concurrent). */
function eventList<I, O>(ops: readonly Operation<I, O>[], count: number): EventList {
  const events: number[] = [];
  for (let i = 0; i < count; i++) events.push(i, ~i); // ~i: the return of op i
  const time = (e: number): number => (e >= 0 ? ops[e]!.call : ops[~e]!.return);
  events.sort((a, b) => {
    const ta = time(a);
    const tb = time(b);
    if (ta !== tb) return ta < tb ? -1 : 1;
    if (a >= 0 !== b >= 0) return a >= 0 ? -1 : 1;
    return a - b;
  });
  const size = events.length + 1;
  const next = new Int32Array(size);
  const prev = new Int32Array(size);
  const opOf = new Int32Array(size);
  const isCall = new Uint8Array(size);
  const match = new Int32Array(size);
  const callNode = new Int32Array(count);
  for (let k = 0; k < size; k++) {
    prev[k] = k - 1;
    next[k] = k + 1 < size ? k + 1 : -1;
  }
  events.forEach((e, k) => {
    const node = k + 1;
    opOf[node] = e >= 0 ? e : ~e;
    if (e >= 0) {
      isCall[node] = 1;
      callNode[e] = node;
    } else {
      match[callNode[~e]!] = node;
    }
  });
  return {
    next,
    opOf,
    isCall,
    lift: (node) => {
      next[prev[node]!] = next[node]!;
      prev[next[node]!] = prev[node]!; // a call is never last
      const m = match[node]!;
      next[prev[m]!] = next[m]!;
      if (next[m] !== -1) prev[next[m]!] = prev[m]!;
    },
    unlift: (node) => {
      const m = match[node]!;
      next[prev[m]!] = m;
      if (next[m] !== -1) prev[next[m]!] = m;
      next[prev[node]!] = node;
      prev[next[node]!] = node;
    },
  };
}

/** A copy of an {@link OpSet}. */
interface Snapshot {
  /** Known operations: words from `low` on (those before are full). */
  readonly low: number;
  readonly known: Uint32Array;
  /** Unknown ones, when any. */
  readonly unknown: Uint32Array | undefined;
}

const FULL = 0xffffffff;

/**
 * The operations placed: known ones are [0, known), unknown ones [known, n).
 * Below word `low` of the known ones, all are placed, so snapshots leave out
 * the run of operations placed long ago.
 */
class OpSet {
  readonly #known: Uint32Array;
  readonly #unknown: Uint32Array;
  readonly #split: number;
  #low = 0;
  #high = 0; // known words from here on are zero
  #unknowns = 0;

  constructor(n: number, known: number) {
    this.#split = known;
    this.#known = new Uint32Array(Math.ceil(known / 32));
    this.#unknown = new Uint32Array(Math.ceil((n - known) / 32));
  }

  has(i: number): boolean {
    const [bits, j] = this.#locate(i);
    return (bits[j >>> 5]! & (1 << (j & 31))) !== 0;
  }

  add(i: number): void {
    const [bits, j] = this.#locate(i);
    bits[j >>> 5]! |= 1 << (j & 31);
    if (bits === this.#unknown) this.#unknowns++;
    else this.#high = Math.max(this.#high, (j >>> 5) + 1);
  }

  delete(i: number): void {
    const [bits, j] = this.#locate(i);
    bits[j >>> 5]! &= ~(1 << (j & 31));
    if (bits === this.#unknown) this.#unknowns--;
    else this.#low = Math.min(this.#low, j >>> 5);
  }

  snapshot(): Snapshot {
    this.#trim();
    return {
      low: this.#low,
      known: this.#known.slice(this.#low, this.#high),
      unknown: this.#unknowns > 0 ? this.#unknown.slice() : undefined,
    };
  }

  /** Whether `seen` holds the same known operations and some of the unknown ones. */
  covers(seen: Snapshot): boolean {
    this.#trim();
    const bits = this.#known;
    const end = Math.max(seen.low + seen.known.length, this.#high);
    for (let i = Math.min(seen.low, this.#low); i < end; i++) {
      const a = i < seen.low ? FULL : (seen.known[i - seen.low] ?? 0);
      if (a !== bits[i]) return false;
    }
    if (!seen.unknown) return true;
    for (let i = 0; i < seen.unknown.length; i++) {
      if ((seen.unknown[i]! & ~this.#unknown[i]!) !== 0) return false;
    }
    return true;
  }

  #locate(i: number): [Uint32Array, number] {
    return i < this.#split ? [this.#known, i] : [this.#unknown, i - this.#split];
  }

  #trim(): void {
    while (this.#low < this.#high && this.#known[this.#low] === FULL) this.#low++;
    while (this.#high > this.#low && this.#known[this.#high - 1] === 0) this.#high--;
  }
}

/** A small seeded PRNG (32-bit outputs as signed integers). */
function mulberry32(seed: number): () => number {
  let a = seed;
  return () => {
    a = (a + 0x6d2b79f5) | 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return t ^ (t >>> 14);
  };
}

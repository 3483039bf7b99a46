import { describe, expect, it } from 'vitest';
import {
  casRegisterModel,
  checkOperations,
  History,
  UNKNOWN,
  type CasInput,
  type CasOutput,
  type CasResult,
  type Model,
  type Operation,
} from './linearizability.js';

type Op = Operation<CasInput, CasOutput>;

let nextClient = 0;
const read = (key: string, value: string | undefined, call: number, ret: number): Op => ({
  client: nextClient++,
  input: { kind: 'read', key },
  output: { value },
  call,
  return: ret,
});
const write = (key: string, value: string, call: number, ret: number): Op => ({
  client: nextClient++,
  input: { kind: 'write', key, value },
  output: ret === Infinity ? UNKNOWN : { ok: true },
  call,
  return: ret,
});
const cas = (
  key: string,
  expected: string | undefined,
  next: string,
  ok: boolean,
  call: number,
  ret: number,
): Op => ({
  client: nextClient++,
  input: { kind: 'cas', key, expected, next },
  output: ret === Infinity ? UNKNOWN : { ok },
  call,
  return: ret,
});

// Generous: the machine may be busy; a time-out fails the test as 'unknown'.
const check = (ops: readonly Op[]) => checkOperations(casRegisterModel, ops, { timeoutMs: 30_000 });

describe('checkOperations with casRegisterModel', () => {
  it('accepts a sequential history', () => {
    const r = check([
      read('k', undefined, 0, 1),
      write('k', 'a', 2, 3),
      read('k', 'a', 4, 5),
      cas('k', 'a', 'b', true, 6, 7),
      cas('k', 'a', 'c', false, 8, 9),
      read('k', 'b', 10, 11),
    ]);
    expect(r.ok).toBe(true);
  });

  it('accepts a read that sees either of two overlapping writes', () => {
    for (const seen of ['a', 'b']) {
      const r = check([
        write('k', 'a', 0, 10),
        write('k', 'b', 1, 11),
        read('k', seen, 12, 13),
        read('k', seen, 14, 15),
      ]);
      expect(r.ok, seen).toBe(true);
    }
    // A read concurrent with both may even see the value before them.
    expect(check([write('k', 'a', 0, 10), read('k', undefined, 5, 6)]).ok).toBe(true);
  });

  it('accepts a write of unknown outcome that was applied, late or never', () => {
    const before = [write('k', 'a', 0, 1), write('k', 'b', 2, Infinity)];
    expect(check([...before, read('k', 'b', 3, 4)]).ok).toBe(true);
    expect(check([...before, read('k', 'a', 3, 4)]).ok).toBe(true);
    expect(check([...before, read('k', 'a', 3, 4), read('k', 'b', 5, 6)]).ok).toBe(true);
    const unknownCas = [write('k', 'a', 0, 1), cas('k', 'a', 'c', false, 2, Infinity)];
    expect(check([...unknownCas, read('k', 'c', 3, 4)]).ok).toBe(true);
    expect(check([...unknownCas, read('k', 'a', 3, 4)]).ok).toBe(true);
  });

  it('rejects a write of unknown outcome that was seen and then undone', () => {
    const r = check([
      write('k', 'a', 0, 1),
      write('k', 'b', 2, Infinity),
      read('k', 'b', 3, 4),
      read('k', 'a', 5, 6),
    ]);
    expect(r.ok).toBe(false);
    // Once at most: seen, overwritten, seen again.
    expect(
      check([
        write('k', 'b', 0, Infinity),
        read('k', 'b', 1, 2),
        write('k', 'a', 3, 4),
        read('k', 'b', 5, 6),
      ]).ok,
    ).toBe(false);
    // A CAS whose expectation never held cannot have taken effect.
    expect(
      check([write('k', 'a', 0, 1), cas('k', 'x', 'c', false, 2, Infinity), read('k', 'c', 3, 4)])
        .ok,
    ).toBe(false);
  });

  it('rejects a stale read after a completed write and explains it', () => {
    const stale = read('k', undefined, 4, 5);
    const w = write('k', 'a', 2, 3);
    const r = check([read('k', undefined, 0, 1), w, stale]);
    expect(r.ok).toBe(false);
    if (r.ok !== false) return;
    expect(r.failure.op).toBe(stale);
    expect(r.failure.linearized.at(-1)).toBe(w);
    expect(r.failure.message).toContain('cannot place client');
    expect(r.failure.message).toContain('read(k) -> undefined');
    expect(r.failure.message).toContain('state then: {"k":"a"}');
  });

  it('rejects two CAS from the same expected value both succeeding', () => {
    const r = check([
      write('k', 'a', 0, 1),
      cas('k', 'a', 'b', true, 2, 5),
      cas('k', 'a', 'c', true, 3, 6),
    ]);
    expect(r.ok).toBe(false);
  });

  it('rejects a value read again after it was overwritten', () => {
    const old = read('k', 'a', 8, 9);
    const r = check([
      write('k', 'a', 0, 1),
      read('k', 'a', 2, 3),
      write('k', 'b', 4, 5),
      read('k', 'b', 6, 7),
      old,
    ]);
    expect(r.ok).toBe(false);
    if (r.ok === false) expect(r.failure.op).toBe(old);
  });

  it('checks each key on its own and names the failing partition', () => {
    const ops = [
      write('a', '1', 0, 1),
      write('b', '1', 0, 1),
      write('c', '1', 0, 1),
      read('a', '1', 2, 3),
      read('c', '1', 2, 3),
      read('b', undefined, 4, 5),
    ];
    const r = check(ops);
    expect(r.partitions).toBe(3);
    expect(r.ok).toBe(false);
    if (r.ok === false) {
      expect(r.failure.partition).toBe(1);
      expect(r.failure.op).toBe(ops[5]);
    }
    expect(check(ops.slice(0, 5)).ok).toBe(true);
  });

  it('accepts a simulated linearizable register and names a corrupted read', () => {
    const ops = simulate({ ops: 5_000, clients: 10, keys: 1, unknownRate: 0.01, seed: 7 });
    const good = check(ops);
    expect(good.ok).toBe(true);

    const reads = ops.filter((o) => o.input.kind === 'read' && o.return !== Infinity);
    const victim = reads[Math.floor(reads.length * 0.6)]!;
    const corrupted = ops.map((o) => (o === victim ? { ...o, output: { value: 'never' } } : o));
    const bad = check(corrupted);
    expect(bad.ok).toBe(false);
    if (bad.ok === false) {
      expect(bad.failure.op).toBe(corrupted[ops.indexOf(victim)]);
      expect(bad.failure.message).toContain('-> "never"');
    }
  });

  it('checks 20,000 operations over 100 keys in well under 10 s', () => {
    const ops = simulate({ ops: 20_000, clients: 20, keys: 100, unknownRate: 0.01, seed: 11 });
    const r = check(ops);
    console.log(`checked ${ops.length} operations in ${r.elapsedMs.toFixed(0)} ms`);
    expect(r.ok).toBe(true);
    expect(r.partitions).toBe(100);
    expect(r.elapsedMs).toBeLessThan(5_000);
  });
});

describe('checkOperations', () => {
  // A counter whose increments may be lost by a replica: step gives two states.
  type CounterInput = { readonly kind: 'add' } | { readonly kind: 'get' };
  type CounterOutput = { readonly value?: number };
  const lossyCounter: Model<number, CounterInput, CounterOutput> = {
    init: () => 0,
    step: (state, input, output) =>
      input.kind === 'add' ? [state, state + 1] : output.value === state ? [state] : [],
    hash: (state) => String(state),
  };
  const op = (
    input: CounterInput,
    call: number,
    ret: number,
    value?: number,
  ): Operation<CounterInput, CounterOutput> => ({
    client: 0,
    input,
    call,
    return: ret,
    output: value === undefined ? {} : { value },
  });

  it('follows every next state a model gives, without partitions', () => {
    const add = { kind: 'add' } as const;
    const get = { kind: 'get' } as const;
    const ops = [op(add, 0, 1), op(add, 2, 3), op(get, 4, 5, 1), op(add, 6, 7), op(get, 8, 9, 2)];
    expect(checkOperations(lossyCounter, ops)).toMatchObject({ ok: true, partitions: 1 });
    const bad = checkOperations(lossyCounter, [...ops, op(get, 10, 11, 1)]);
    expect(bad.ok).toBe(false);
    if (bad.ok === false) {
      expect(bad.failure.linearized).toHaveLength(5);
      expect(bad.failure.state).toBe(2);
      expect(bad.failure.message).toContain('{"kind":"get"} -> {"value":1}');
    }
  });

  it('gives up with unknown after its time limit', () => {
    const ops = simulate({ ops: 2_000, clients: 10, keys: 1, unknownRate: 0, seed: 3 });
    expect(checkOperations(casRegisterModel, ops, { timeoutMs: 0 }).ok).toBe('unknown');
  });

  it('refuses an operation that returns before its call', () => {
    expect(() => check([read('k', undefined, 2, 1)])).toThrow(RangeError);
  });
});

describe('History', () => {
  it('records times in order and pending operations as unknown', () => {
    const h = new History<CasInput, CasResult>();
    const w = h.invoke(1, { kind: 'write', key: 'k', value: 'a' });
    const r = h.invoke(2, { kind: 'read', key: 'k' });
    h.complete(w, { ok: true });
    h.complete(r, { value: 'a' });
    const lost = h.invoke(3, { kind: 'write', key: 'k', value: 'b' });
    h.unknown(lost);
    h.invoke(4, { kind: 'read', key: 'k' });
    expect(() => h.complete(w, { ok: true })).toThrow(/already ended/);

    const ops = h.operations();
    expect(ops.map((o) => [o.client, o.call, o.return])).toEqual([
      [1, 1, 3],
      [2, 2, 4],
      [3, 5, Infinity],
      [4, 6, Infinity],
    ]);
    expect(ops[2]!.output).toEqual({ unknown: true });
    expect(checkOperations(casRegisterModel, ops).ok).toBe(true);
  });
});

interface Simulation {
  readonly ops: number;
  readonly clients: number;
  readonly keys: number;
  /** Share of writes and CAS whose client never learns the outcome. */
  readonly unknownRate: number;
  readonly seed: number;
}

/**
 * A real linearizable register: each client issues operations one after
 * another, each takes effect at a random instant between its call and return,
 * and outputs are what the register answered at that instant.
 */
function simulate(sim: Simulation): Op[] {
  const rand = seeded(sim.seed);
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rand() * xs.length)]!;
  const free = Array.from({ length: sim.clients }, () => rand());
  const recent = new Map<string, string[]>();
  const planned: { client: number; input: CasInput; call: number; at: number; ret: number }[] = [];
  for (let i = 0; i < sim.ops; i++) {
    const client = free.indexOf(Math.min(...free));
    const key = `k${Math.floor(rand() * sim.keys)}`;
    const values = recent.get(key) ?? [];
    const r = rand();
    const value = `v${i}`;
    const input: CasInput =
      r < 0.5
        ? { kind: 'read', key }
        : r < 0.75
          ? { kind: 'write', key, value }
          : { kind: 'cas', key, expected: values.length ? pick(values) : undefined, next: value };
    if (input.kind !== 'read') recent.set(key, [...values.slice(-3), value]);
    const call = free[client]! + rand() * 2;
    const ret = call + 0.1 + rand() * 10;
    planned.push({ client, input, call, at: call + rand() * (ret - call), ret });
    free[client] = ret;
  }
  const register = new Map<string, string | undefined>();
  const outputs = new Map<object, CasOutput>();
  for (const p of [...planned].sort((a, b) => a.at - b.at)) {
    const current = register.get(p.input.key);
    if (p.input.kind === 'read') outputs.set(p, { value: current });
    else if (p.input.kind === 'write') {
      register.set(p.input.key, p.input.value);
      outputs.set(p, { ok: true });
    } else {
      const ok = current === p.input.expected;
      if (ok) register.set(p.input.key, p.input.next);
      outputs.set(p, { ok });
    }
  }
  return planned.map((p) => {
    const lost = p.input.kind !== 'read' && rand() < sim.unknownRate;
    return {
      client: p.client,
      input: p.input,
      call: p.call,
      return: lost ? Infinity : p.ret,
      output: lost ? UNKNOWN : outputs.get(p)!,
    };
  });
}

function seeded(seed: number): () => number {
  let a = seed;
  return () => {
    a = (a + 0x6d2b79f5) | 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/**
 * A linearizability checker in the manner of Porcupine (Athalye, 2017): the
 * Wing & Gong search with Lowe's memoization of (set of operations linearized,
 * model state), run separately on each partition a model declares
 * (P-compositionality: a map of registers is linearizable iff each key is).
 *
 * A history is a list of operations with the times the client called and got
 * the answer. An operation whose outcome the client never learned (timed out,
 * connection cut) has `return: Infinity`: it may take effect at any instant
 * after its call, or never. The checker offers "never" itself (such an
 * operation may be left out of the linearization); the model's `step` gives
 * the states it may lead to when it did take effect.
 *
 * Times may be any numbers that respect real time (a shared counter, as
 * {@link History} uses, or `performance.now()`); an operation whose call equals
 * another's return counts as concurrent with it.
 */
import {
  UNKNOWN,
  type Model,
  type Operation,
  type UnknownOutput,
} from './linearizability-model.js';
import { search, searchOrder, type DeadEnd } from './linearizability-search.js';

export { UNKNOWN, isUnknown } from './linearizability-model.js';
export type { Model, Operation, UnknownOutput } from './linearizability-model.js';
export { casRegisterModel } from './cas-register-model.js';
export type { CasInput, CasOutput, CasResult, CasState } from './cas-register-model.js';

export interface CheckOptions {
  /** Give up with `ok: 'unknown'` after this long (30 s by default). */
  readonly timeoutMs?: number;
}

/** Why a history is not linearizable, from the search that got furthest. */
export interface NonLinearizable<S, I, O> {
  /** Index of the failing partition (0 without `partition`). */
  readonly partition: number;
  /** The linearizable prefix that got furthest in time, in linearization order. */
  readonly linearized: readonly Operation<I, O>[];
  /** The model state after `linearized`. */
  readonly state: S;
  /** The first operation that could not be placed after `linearized`. */
  readonly op: Operation<I, O>;
  readonly message: string;
}

interface CheckStats {
  readonly partitions: number;
  readonly elapsedMs: number;
}

export type CheckResult<S, I, O> =
  | (CheckStats & { readonly ok: true })
  | (CheckStats & { readonly ok: 'unknown' })
  | (CheckStats & { readonly ok: false; readonly failure: NonLinearizable<S, I, O> });

const DEFAULT_TIMEOUT_MS = 30_000;

export function checkOperations<S, I, O>(
  model: Model<S, I, O>,
  ops: readonly Operation<I, O>[],
  options: CheckOptions = {},
): CheckResult<S, I, O> {
  const started = performance.now();
  const deadline = started + (options.timeoutMs ?? DEFAULT_TIMEOUT_MS);
  for (const op of ops) {
    if (!Number.isFinite(op.call) || !(op.return >= op.call)) {
      throw new RangeError(`operation of client ${op.client} returns before it is called`);
    }
  }
  const parts = model.partition ? model.partition(ops) : [ops];
  const stats = (): CheckStats => ({
    partitions: parts.length,
    elapsedMs: performance.now() - started,
  });
  for (const [index, unordered] of parts.entries()) {
    const part = searchOrder(unordered);
    const outcome = search(model, part, deadline);
    if (outcome === 'timeout') return { ok: 'unknown', ...stats() };
    if (outcome !== 'ok') {
      return { ok: false, failure: explain(model, part, index, outcome), ...stats() };
    }
  }
  return { ok: true, ...stats() };
}

function explain<S, I, O>(
  model: Model<S, I, O>,
  ops: readonly Operation<I, O>[],
  partition: number,
  end: DeadEnd<S>,
): NonLinearizable<S, I, O> {
  const show = (o: Operation<I, O>): string =>
    `client ${o.client}: ${
      model.describeOperation?.(o.input, o.output) ??
      `${JSON.stringify(o.input)} -> ${JSON.stringify(o.output)}`
    } [call ${o.call}, return ${o.return}]`;
  const linearized = end.prefix.map((i) => ops[i]!);
  const op = ops[end.blocked]!;
  const tail = linearized.slice(-5);
  const message = [
    `not linearizable: partition ${partition} (${ops.length} operations)`,
    `  cannot place ${show(op)}`,
    `  after linearizing ${linearized.length} operations${tail.length ? ', the last:' : ''}`,
    ...tail.map((o) => `    ${show(o)}`),
    `  state then: ${model.describeState?.(end.state) ?? JSON.stringify(end.state)}`,
  ].join('\n');
  return { partition, linearized, state: end.state, op, message };
}

/** An operation that has been called; pass it back to `complete` or `unknown`. */
export interface PendingOperation<I> {
  readonly id: number;
  readonly client: number;
  readonly input: I;
  readonly call: number;
}

interface Recorded<I, O> {
  readonly pending: PendingOperation<I>;
  end?: { readonly at: number; readonly output: O | UnknownOutput };
}

/**
 * Records a history as a test runs. Times come from a counter shared by all
 * operations of this history (events in one process are totally ordered), or
 * from `clock` when given.
 */
export class History<I, O> {
  readonly #clock: () => number;
  readonly #ops: Recorded<I, O>[] = [];

  constructor(options: { readonly clock?: () => number } = {}) {
    let tick = 0;
    this.#clock = options.clock ?? (() => ++tick);
  }

  invoke(client: number, input: I): PendingOperation<I> {
    const pending = Object.freeze({ id: this.#ops.length, client, input, call: this.#clock() });
    this.#ops.push({ pending });
    return pending;
  }

  complete(op: PendingOperation<I>, output: O): void {
    this.#end(op, this.#clock(), output);
  }

  /** The client never learned the outcome (timeout, connection cut). */
  unknown(op: PendingOperation<I>): void {
    this.#end(op, Infinity, UNKNOWN);
  }

  /** Every operation so far; those still pending count as unknown outcomes. */
  operations(): Operation<I, O | UnknownOutput>[] {
    return this.#ops.map(({ pending, end }) => ({
      client: pending.client,
      input: pending.input,
      call: pending.call,
      return: end ? end.at : Infinity,
      output: end ? end.output : UNKNOWN,
    }));
  }

  #end(op: PendingOperation<I>, at: number, output: O | UnknownOutput): void {
    const recorded = this.#ops[op.id];
    if (recorded?.pending !== op) throw new Error('operation of another history');
    if (recorded.end) throw new Error(`operation ${op.id} already ended`);
    recorded.end = { at, output };
  }
}

/**
 * What the linearizability checker works on: operations with their call and
 * return times, and the sequential model they are checked against (see
 * `linearizability.ts`).
 */

export interface Operation<I, O> {
  readonly client: number;
  readonly input: I;
  /** When the request was sent. */
  readonly call: number;
  /** When the answer arrived; `Infinity` when the outcome is unknown. */
  readonly return: number;
  readonly output: O;
}

/** The output of an operation whose outcome is unknown. */
export interface UnknownOutput {
  readonly unknown: true;
}

export const UNKNOWN: UnknownOutput = Object.freeze({ unknown: true });

export function isUnknown(output: unknown): output is UnknownOutput {
  return typeof output === 'object' && output !== null && 'unknown' in output;
}

export interface Model<S, I, O> {
  init(): S;
  /**
   * Every state the system may be in after `input` answered `output` in
   * `state`; empty when that answer is impossible there. For an unknown
   * outcome, the states if it took effect (that it did not is implied). Pure:
   * asked once per operation and state.
   */
  step(state: S, input: I, output: O): readonly S[];
  /** Equal states, and only those, have equal hashes (the memo key). */
  hash(state: S): string;
  /**
   * Independent sub-histories (by key), each checked on its own from `init()`;
   * made of the operations given (a failure names them by identity).
   */
  partition?(ops: readonly Operation<I, O>[]): Operation<I, O>[][];
  describeOperation?(input: I, output: O): string;
  describeState?(state: S): string;
}

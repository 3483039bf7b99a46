import {
  isUnknown,
  type Model,
  type Operation,
  type UnknownOutput,
} from './linearizability-model.js';

export type CasInput =
  | { readonly kind: 'read'; readonly key: string }
  | { readonly kind: 'write'; readonly key: string; readonly value: string | undefined }
  | {
      readonly kind: 'cas';
      readonly key: string;
      readonly expected: string | undefined;
      readonly next: string | undefined;
    };

/** `{value}` answers a read, `{ok}` a write or a CAS; `ok: false` means not applied. */
export type CasResult = { readonly value: string | undefined } | { readonly ok: boolean };
export type CasOutput = CasResult | UnknownOutput;
/** Key → value; an absent key reads as `undefined`. */
export type CasState = ReadonlyMap<string, string>;

function withValue(state: CasState, key: string, value: string | undefined): CasState {
  if (state.get(key) === value) return state;
  const next = new Map(state);
  if (value === undefined) next.delete(key);
  else next.set(key, value);
  return next;
}

/**
 * A map of registers with read, write and compare-and-set. Partitions by key;
 * reads with unknown outcomes are left out, as they constrain nothing.
 */
export const casRegisterModel: Model<CasState, CasInput, CasOutput> = {
  init: () => new Map(),
  step(state, input, output) {
    const current = state.get(input.key);
    const applied =
      input.kind === 'read'
        ? state
        : withValue(state, input.key, input.kind === 'write' ? input.value : input.next);
    if (isUnknown(output)) {
      return input.kind === 'cas' && current !== input.expected ? [] : [applied];
    }
    if (input.kind === 'read') {
      if (!('value' in output)) throw new TypeError('a read answers {value}');
      return output.value === current ? [state] : [];
    }
    if (!('ok' in output)) throw new TypeError(`a ${input.kind} answers {ok}`);
    if (input.kind === 'write') return output.ok ? [applied] : [state];
    return (current === input.expected) === output.ok ? [output.ok ? applied : state] : [];
  },
  hash: (state) =>
    JSON.stringify(state.size < 2 ? [...state] : [...state].sort(([a], [b]) => (a < b ? -1 : 1))),
  partition(ops) {
    const byKey = new Map<string, Operation<CasInput, CasOutput>[]>();
    for (const op of ops) {
      if (op.input.kind === 'read' && isUnknown(op.output)) continue;
      const list = byKey.get(op.input.key);
      if (list) list.push(op);
      else byKey.set(op.input.key, [op]);
    }
    return [...byKey.values()];
  },
  describeOperation(input, output) {
    const q = (v: string | undefined): string => (v === undefined ? 'undefined' : `"${v}"`);
    const call =
      input.kind === 'read'
        ? `read(${input.key})`
        : input.kind === 'write'
          ? `write(${input.key}, ${q(input.value)})`
          : `cas(${input.key}, ${q(input.expected)} -> ${q(input.next)})`;
    const answer = isUnknown(output)
      ? '?'
      : 'value' in output
        ? q(output.value)
        : output.ok
          ? 'ok'
          : 'failed';
    return `${call} -> ${answer}`;
  },
  describeState: (state) => JSON.stringify(Object.fromEntries(state)),
};

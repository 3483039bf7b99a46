/**
 * The saved state, written in batches: what a run recorded is what the
 * next run reads, across batch boundaries and in the order it was recorded.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { hashBytes } from '../core/hash.js';
import { SyncState, type StateRow } from './sync-state.js';

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'tongbu-state-'));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

const T = Date.UTC(2025, 4, 6) + 0.123;

function row(i: number, over: Partial<StateRow> = {}): StateRow {
  return {
    key: `d${i % 7}/f${i}`,
    kind: 'file',
    size: i * 1000 + 1,
    mode: 0o644,
    hash: hashBytes(Buffer.from(String(i)), 'blake3'),
    target: null,
    srcMtimeMs: T + i,
    dstMtimeMs: T + i + 0.5,
    ...over,
  };
}

describe('SyncState', () => {
  it('reads back every row and forget, over more than one batch, in the order recorded', () => {
    const file = join(dir, 'state.db');
    const state = SyncState.open(file, '/src', '/dst');
    const expected = new Map<string, StateRow>();
    for (let i = 0; i < 10_000; i++) {
      const r = row(i);
      state.put(r);
      expected.set(r.key, r);
    }
    // Forgotten, put back, changed: the last word counts, within a batch and across.
    for (let i = 0; i < 10_000; i += 3) {
      state.forget(row(i).key);
      expected.delete(row(i).key);
    }
    for (let i = 0; i < 10_000; i += 9) {
      const r = row(i, { kind: 'symlink', size: 0, mode: 0, hash: null, target: `../t${i}` });
      state.put(r);
      expected.set(r.key, r);
    }
    const big = row(1, { size: 2 ** 40 + 3, mode: 0o4755 });
    state.put(big);
    expected.set(big.key, big);
    state.finishRun();
    state.close();

    const reopened = SyncState.open(file, '/src', '/dst', { readOnly: true });
    try {
      expect(reopened.load()).toEqual(expected);
      expect(reopened.get(big.key)).toEqual(big);
      expect(reopened.get(row(3).key)).toBeUndefined();
    } finally {
      reopened.close();
    }
  });
});

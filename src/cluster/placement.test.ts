import { describe, expect, it } from 'vitest';
import { storeAddress } from '../core/hash.js';
import { placeReplicas, placementNode, requiredAcks } from './placement.js';

const chunks = Array.from({ length: 30_000 }, (_, i) => storeAddress(Buffer.from(`chunk ${i}`)));
const ids = (nodes: { id: string }[]): string[] => nodes.map((n) => n.id);

describe('placement', () => {
  const five = ['n1', 'n2', 'n3', 'n4', 'n5'].map(placementNode);

  it('gives every chunk R distinct nodes, the same whatever the member order', () => {
    const shuffled = [five[3]!, five[0]!, five[4]!, five[2]!, five[1]!];
    for (const c of chunks.slice(0, 2000)) {
      const a = ids(placeReplicas(c, five, 3));
      expect(new Set(a).size).toBe(3);
      expect(ids(placeReplicas(c, shuffled, 3))).toEqual(a);
    }
  });

  it('spreads chunks evenly: each of 5 nodes holds 3/5 of them within 3 %', () => {
    const held = new Map<string, number>();
    for (const c of chunks)
      for (const n of placeReplicas(c, five, 3)) held.set(n.id, (held.get(n.id) ?? 0) + 1);
    for (const n of five)
      expect(Math.abs(held.get(n.id)! / chunks.length - 0.6)).toBeLessThan(0.03);
  });

  it('moves only the chunks of a node that leaves, each to one new node', () => {
    const four = five.filter((n) => n.id !== 'n5');
    let moved = 0;
    for (const c of chunks) {
      const before = ids(placeReplicas(c, five, 3));
      const after = ids(placeReplicas(c, four, 3));
      if (!before.includes('n5')) {
        expect(after).toEqual(before);
        continue;
      }
      moved++;
      const kept = before.filter((id) => id !== 'n5');
      expect(after.filter((id) => kept.includes(id)).sort()).toEqual(kept.sort());
    }
    expect(moved / chunks.length).toBeGreaterThan(0.55);
  });

  it('needs all, a majority or one acknowledgment', () => {
    expect([requiredAcks('sync', 3), requiredAcks('quorum', 3), requiredAcks('async', 3)]).toEqual([
      3, 2, 1,
    ]);
    expect(requiredAcks('quorum', 5)).toBe(3);
    expect(requiredAcks('quorum', 2)).toBe(2);
  });
});

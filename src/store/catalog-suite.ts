/**
 * The conformance suite every ClusterCatalog passes:
 * `runClusterCatalogSuite(name, factory)` inside a test file. Each test gets
 * a store of its own (a file, a key prefix) and opens as many handles on it
 * as it needs, as the node processes of a cluster do; one test kills a real
 * child process with SIGKILL to show that a dead member goes down.
 */
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { isTongbuError } from '../core/errors.js';
import type { ContentHash } from '../core/hash.js';
import { writeTsChildScript } from '../test-support/ts-child.js';
import type { ClusterCatalog, MemberRecord, RefEvent, TokenRecord } from './catalog.js';

export interface ClusterCatalogFactory<C extends ClusterCatalog> {
  /** A new, empty store; where it lives (a file, a key prefix). */
  create(): string;
  /** Another handle on the store at `where`. */
  open(where: string): Promise<C>;
  /** How a child process opens it: `(await import(module))[className].open(...args)`. */
  child(where: string): { module: string; className: string; args: unknown[] };
  /** Drops the kept history of ref moves up to now (etcd compaction, the SQLite log trimmed). */
  compact(catalog: C): Promise<void>;
  /** Removes the store. */
  destroy(where: string): Promise<void>;
}

const h = (n: number): ContentHash => `blake3:${n.toString(16).padStart(64, '0')}`;
const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/** Waits until `check` holds, polling; fails after `ms`. */
async function until(what: string, ms: number, check: () => Promise<boolean> | boolean) {
  const deadline = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`not within ${ms} ms: ${what}`);
    await sleep(50);
  }
}

const member = (id: string, url = `http://127.0.0.1:7${id.length}01`): MemberRecord => ({
  id,
  url,
  joinedMs: 1_700_000_000_000,
  capacityBytes: 1000,
  usedBytes: 10,
});

export function runClusterCatalogSuite<C extends ClusterCatalog>(
  name: string,
  factory: ClusterCatalogFactory<C>,
): void {
  describe(`ClusterCatalog conformance: ${name}`, () => {
    let where: string;
    let opened: C[];

    beforeEach(() => {
      where = factory.create();
      opened = [];
    });

    afterEach(async () => {
      for (const c of opened) await c.close();
      await factory.destroy(where);
    });

    const open = async (): Promise<C> => {
      const catalog = await factory.open(where);
      opened.push(catalog);
      return catalog;
    };

    it('moves a ref only from the expected commit, counting versions', async () => {
      const catalog = await open();
      expect(await catalog.compareAndSwapRef('ns', 'heads/main', undefined, h(1))).toBe(true);
      expect(await catalog.compareAndSwapRef('ns', 'heads/main', undefined, h(2))).toBe(false);
      expect(await catalog.compareAndSwapRef('ns', 'heads/main', h(3), h(2))).toBe(false);
      expect(await catalog.compareAndSwapRef('ns', 'heads/main', h(1), h(2))).toBe(true);
      const moved = { namespace: 'ns', name: 'heads/main', commit: h(2), version: 2 };
      expect(await catalog.getRef('ns', 'heads/main')).toEqual(moved);
      expect(await catalog.getRef('ns', 'heads/main', { consistency: 'stale' })).toEqual(moved);
      expect(await catalog.compareAndSwapRef('ns', 'heads/main', h(1), undefined)).toBe(false);
      expect(await catalog.compareAndSwapRef('ns', 'heads/main', h(2), undefined)).toBe(true);
      expect(await catalog.getRef('ns', 'heads/main')).toBeUndefined();
      expect(await catalog.compareAndSwapRef('ns', 'heads/main', undefined, h(3))).toBe(true);
      expect(await catalog.getRef('ns', 'heads/main')).toMatchObject({ commit: h(3), version: 1 });
    });

    it('exactly one of the swaps racing from one commit wins, across handles', async () => {
      const [a, b] = [await open(), await open()];
      await a.compareAndSwapRef('ns', 'heads/main', undefined, h(0));
      let base = h(0);
      for (let round = 1; round <= 20; round++) {
        const contenders = [0, 1, 2, 3, 4, 5].map((i) => h(round * 100 + i));
        const won = await Promise.all(
          contenders.map((next, i) =>
            (i % 2 ? a : b).compareAndSwapRef('ns', 'heads/main', base, next),
          ),
        );
        expect(won.filter(Boolean)).toHaveLength(1);
        const winner = contenders[won.indexOf(true)]!;
        expect((await b.getRef('ns', 'heads/main'))?.commit).toBe(winner);
        base = winner;
      }
      expect(await a.getRef('ns', 'heads/main')).toMatchObject({ commit: base, version: 21 });
    });

    it("lists refs by prefix in name order, and namespaces with refs, '/' in both", async () => {
      const catalog = await open();
      const refs: [string, string][] = [
        ['b', 'heads/main'],
        ['a/b', 'heads/main'],
        ['a-b', 'tags/v1'],
        ['a', 'tags/v2'],
        ['a', 'tags/v1'],
        ['a', 'heads/team/x'],
        ['a', 'heads/main'],
      ];
      for (const [i, [ns, ref]] of refs.entries()) {
        expect(await catalog.compareAndSwapRef(ns, ref, undefined, h(i))).toBe(true);
      }
      expect((await catalog.listRefs('a')).map((r) => r.name)).toEqual([
        'heads/main',
        'heads/team/x',
        'tags/v1',
        'tags/v2',
      ]);
      expect(await catalog.listRefs('a', 'tags/')).toEqual([
        { namespace: 'a', name: 'tags/v1', commit: h(4), version: 1 },
        { namespace: 'a', name: 'tags/v2', commit: h(3), version: 1 },
      ]);
      expect((await catalog.listRefs('a/b')).map((r) => r.name)).toEqual(['heads/main']);
      expect(await catalog.listRefs('c')).toEqual([]);
      expect(await catalog.listNamespaces()).toEqual(['a', 'a-b', 'a/b', 'b']);
      await catalog.compareAndSwapRef('a/b', 'heads/main', h(1), undefined);
      expect(await catalog.listNamespaces()).toEqual(['a', 'a-b', 'b']);
    });

    it('keeps tokens by secret hash, one per id and secret, and removes them', async () => {
      const [a, b] = [await open(), await open()];
      const token = (id: string, secret: string, createdMs: number): TokenRecord => ({
        id,
        secretHash: secret.repeat(64),
        scopes: ['llama/*:write', 'datasets/*:read'],
        label: `token ${id}`,
        createdMs,
      });
      await a.putToken(token('t2', 'e', 2));
      await a.putToken(token('t1', 'f', 1));
      expect(await b.findToken('f'.repeat(64))).toEqual(token('t1', 'f', 1));
      expect(await b.findToken('0'.repeat(64))).toBeUndefined();
      expect(await b.listTokens()).toEqual([token('t1', 'f', 1), token('t2', 'e', 2)]);
      for (const dup of [token('t1', 'd', 3), token('t3', 'e', 3)]) {
        const err: unknown = await b.putToken(dup).catch((e: unknown) => e);
        expect(isTongbuError(err, 'CONFLICT')).toBe(true);
      }
      expect(await b.removeToken('t1')).toBe(true);
      expect(await a.removeToken('t1')).toBe(false);
      expect(await a.findToken('f'.repeat(64))).toBeUndefined();
      expect(await a.listTokens()).toEqual([token('t2', 'e', 2)]);
      await a.putToken(token('t4', 'f', 4));
      expect((await b.findToken('f'.repeat(64)))?.id).toBe('t4');
    });

    it('keeps members through leave; join makes one live, leave and close take it down', async () => {
      const [a, b] = [await open(), await open()];
      await a.join(member('n1'), 10_000);
      await b.join(member('n2'), 10_000);
      expect(await b.members()).toEqual([
        { member: member('n1'), live: true },
        { member: member('n2'), live: true },
      ]);
      await a.leave('n1');
      expect(await b.members()).toEqual([
        { member: member('n1'), live: false },
        { member: member('n2'), live: true },
      ]);
      // Joining again replaces the record and comes back live.
      await a.join(member('n1', 'http://10.0.0.1:7701'), 10_000);
      expect((await b.members())[0]).toEqual({
        member: member('n1', 'http://10.0.0.1:7701'),
        live: true,
      });
      await a.close();
      expect((await b.members()).map((m) => [m.member.id, m.live])).toEqual([
        ['n1', false],
        ['n2', true],
      ]);
      expect(await b.removeMember('n1')).toBe(true);
      expect(await b.removeMember('n1')).toBe(false);
      expect(await b.removeMember('n2')).toBe(true);
      expect(await b.members()).toEqual([]);
    });

    it('a member whose process is killed with SIGKILL goes down when its lease expires', async () => {
      const catalog = await open();
      const child = spawnMember(factory.child(where), member('n9'), 1000);
      try {
        await child.joined;
        expect(await catalog.members()).toEqual([{ member: member('n9'), live: true }]);
        // Alive, it stays live past its ttl.
        await sleep(1200);
        expect((await catalog.members())[0]?.live).toBe(true);
        child.kill();
        const killed = Date.now();
        await until('the killed member is down', 8000, async () => {
          return (await catalog.members())[0]?.live === false;
        });
        expect(Date.now() - killed).toBeLessThan(5000);
        expect((await catalog.members()).map((m) => m.member.id)).toEqual(['n9']);
      } finally {
        child.kill();
        await child.exited;
      }
    });

    it('elects one leader per role; when it resigns or closes another takes over', async () => {
      const [a, b] = [await open(), await open()];
      const seen: Record<string, boolean[]> = { a: [], b: [] };
      const resignA = await a.campaign('detector', 'a', 1000, (l) => seen['a']!.push(l));
      const resignB = await b.campaign('detector', 'b', 1000, (l) => seen['b']!.push(l));
      await until('a leads', 3000, () => seen['a']!.length === 1);
      expect(seen).toEqual({ a: [true], b: [] });
      expect(await b.leader('detector')).toBe('a');
      expect(await a.leader('other-role')).toBeUndefined();
      // Leadership holds past the ttl.
      await sleep(1200);
      expect(seen).toEqual({ a: [true], b: [] });

      await resignA();
      expect(seen['a']).toEqual([true, false]);
      await until('b leads', 3000, () => seen['b']!.length === 1);
      expect(await a.leader('detector')).toBe('b');

      const again = await a.campaign('detector', 'a', 1000, (l) => seen['a']!.push(l));
      expect(seen['a']).toEqual([true, false]);
      await b.close();
      expect(seen['b']).toEqual([true, false]);
      await until('a leads again', 3000, () => seen['a']!.length === 3);
      expect(seen['a']).toEqual([true, false, true]);
      expect(await a.leader('detector')).toBe('a');
      await again();
      expect(await a.leader('detector')).toBeUndefined();
      await resignB();
    });

    it('feeds ref moves in order with revisions, and resumes after a given revision', async () => {
      const [a, b] = [await open(), await open()];
      const before = await a.revision();
      const events: RefEvent[] = [];
      const feed = await b.watchRefs(
        undefined,
        (e) => events.push(e),
        () => {
          throw new Error('unexpected reset');
        },
      );
      await a.compareAndSwapRef('x/y', 'heads/main', undefined, h(1));
      await a.compareAndSwapRef('x', 'heads/team/z', undefined, h(2));
      await a.compareAndSwapRef('x/y', 'heads/main', h(1), h(3));
      await a.compareAndSwapRef('x/y', 'heads/main', h(3), undefined);
      await until('four events', 3000, () => events.length === 4);
      expect(events.map(({ namespace, name, commit }) => [namespace, name, commit])).toEqual([
        ['x/y', 'heads/main', h(1)],
        ['x', 'heads/team/z', h(2)],
        ['x/y', 'heads/main', h(3)],
        ['x/y', 'heads/main', undefined],
      ]);
      const revisions = events.map((e) => e.revision);
      expect(revisions[0]).toBeGreaterThan(before);
      expect([...revisions].sort((x, y) => x - y)).toEqual(revisions);
      expect(new Set(revisions).size).toBe(4);
      expect(await b.revision()).toBeGreaterThanOrEqual(revisions[3]!);
      await feed.stop();
      await a.compareAndSwapRef('x', 'heads/team/z', h(2), h(4));

      const resumed: RefEvent[] = [];
      const again = await a.watchRefs(
        revisions[1],
        (e) => resumed.push(e),
        () => {
          throw new Error('unexpected reset');
        },
      );
      await until('three events', 3000, () => resumed.length === 3);
      expect(resumed.slice(0, 2)).toEqual(events.slice(2));
      expect(resumed[2]).toMatchObject({ namespace: 'x', name: 'heads/team/z', commit: h(4) });
      await again.stop();
      await sleep(300);
      expect(events).toHaveLength(4);
      expect(resumed).toHaveLength(3);
    });

    it('resets a feed asked to resume from history no longer kept', async () => {
      const catalog = await open();
      const from = await catalog.revision();
      for (let i = 1; i <= 3; i++) {
        await catalog.compareAndSwapRef('ns', `tags/v${i}`, undefined, h(i));
      }
      const last = await catalog.revision();
      await factory.compact(catalog);
      const events: RefEvent[] = [];
      const resets: number[] = [];
      const feed = await catalog.watchRefs(
        from,
        (e) => events.push(e),
        (r) => resets.push(r),
      );
      await until('a reset', 3000, () => resets.length === 1);
      expect(resets[0]).toBeGreaterThanOrEqual(last);
      expect(events).toEqual([]);
      // The feed goes on after the revision of the reset.
      await catalog.compareAndSwapRef('ns', 'tags/v4', undefined, h(4));
      await until('the next move', 3000, () => events.length === 1);
      expect(events[0]).toMatchObject({ namespace: 'ns', name: 'tags/v4', commit: h(4) });
      expect(events[0]!.revision).toBeGreaterThan(resets[0]!);
      await feed.stop();
    });

    it('keeps settings across handles', async () => {
      const [a, b] = [await open(), await open()];
      expect(await a.getSetting('replication/llama')).toBeUndefined();
      await a.putSetting('replication/llama', '{"copies":3}');
      await a.putSetting('replication/llama/v2', '{"copies":2}');
      expect(await b.getSetting('replication/llama')).toBe('{"copies":3}');
      await b.putSetting('replication/llama', '{"copies":1}');
      expect(await a.getSetting('replication/llama')).toBe('{"copies":1}');
      await b.putSetting('replication/llama', undefined);
      expect(await a.getSetting('replication/llama')).toBeUndefined();
      expect(await a.getSetting('replication/llama/v2')).toBe('{"copies":2}');
    });
  });
}

/**
 * A child `node` that opens the store, joins as `m` with `ttlMs` and stays
 * until killed. It runs the TypeScript source through a module hook that
 * transpiles it with the project's typescript.
 */
function spawnMember(
  opener: { module: string; className: string; args: unknown[] },
  m: MemberRecord,
  ttlMs: number,
): { joined: Promise<void>; exited: Promise<unknown>; kill(): void } {
  const dir = mkdtempSync(join(tmpdir(), 'tongbu-member-'));
  const script = writeTsChildScript(
    dir,
    'member.mjs',
    `const mod = await import(${JSON.stringify(opener.module)});
const catalog = await mod[${JSON.stringify(opener.className)}].open(...${JSON.stringify(opener.args)});
await catalog.join(${JSON.stringify(m)}, ${ttlMs});
process.stdout.write('joined\\n');
setInterval(() => {}, 1000);
`,
  );
  const child = spawn(process.execPath, [script], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stderr = '';
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  const exited = once(child, 'close').finally(() => rmSync(dir, { recursive: true, force: true }));
  const joined = new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('the member did not join in 20 s')), 20_000);
    child.stdout.on('data', (d: Buffer) => {
      if (d.toString().includes('joined')) {
        clearTimeout(timer);
        resolve();
      }
    });
    void exited.then(() => {
      clearTimeout(timer);
      reject(new Error(`the member exited before joining: ${stderr}`));
    });
  });
  return {
    joined,
    exited,
    kill: () => {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    },
  };
}

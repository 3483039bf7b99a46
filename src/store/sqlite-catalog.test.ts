import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import type { ContentHash } from '../core/hash.js';
import { runClusterCatalogSuite } from './catalog-suite.js';
import type { RefEvent } from './catalog.js';
import { SqliteCatalog } from './sqlite-catalog.js';

runClusterCatalogSuite('SqliteCatalog', {
  create: () => join(mkdtempSync(join(tmpdir(), 'tongbu-catalog-')), 'catalog.db'),
  open: (file) => Promise.resolve(SqliteCatalog.open(file)),
  child: (file) => ({
    module: new URL('./sqlite-catalog.ts', import.meta.url).href,
    className: 'SqliteCatalog',
    args: [file],
  }),
  compact: (catalog) => Promise.resolve(catalog.trimRefLog(0)),
  destroy: (file) => Promise.resolve(rmSync(dirname(file), { recursive: true, force: true })),
});

const h = (n: number): ContentHash => `blake3:${n.toString(16).padStart(64, '0')}`;

describe('SqliteCatalog', () => {
  const dirs: string[] = [];
  const open = (dir?: string): { catalog: SqliteCatalog; dir: string } => {
    const d = dir ?? mkdtempSync(join(tmpdir(), 'tongbu-catalog-'));
    if (!dir) dirs.push(d);
    return { catalog: SqliteCatalog.open(join(d, 'catalog.db')), dir: d };
  };
  afterEach(() => {
    for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
  });

  it('moves a ref only from the expected commit, counting versions', async () => {
    const { catalog } = open();
    expect(await catalog.compareAndSwapRef('ns', 'heads/main', undefined, h(1))).toBe(true);
    expect(await catalog.compareAndSwapRef('ns', 'heads/main', undefined, h(2))).toBe(false);
    expect(await catalog.compareAndSwapRef('ns', 'heads/main', h(3), h(2))).toBe(false);
    expect(await catalog.compareAndSwapRef('ns', 'heads/main', h(1), h(2))).toBe(true);
    expect(await catalog.getRef('ns', 'heads/main')).toEqual({
      namespace: 'ns',
      name: 'heads/main',
      commit: h(2),
      version: 2,
    });
    expect(await catalog.compareAndSwapRef('ns', 'heads/main', h(2), undefined)).toBe(true);
    expect(await catalog.getRef('ns', 'heads/main')).toBeUndefined();
    await catalog.close();
  });

  it('lists refs by prefix and namespaces with refs', async () => {
    const { catalog } = open();
    await catalog.compareAndSwapRef('b', 'heads/main', undefined, h(1));
    await catalog.compareAndSwapRef('a', 'tags/v2', undefined, h(2));
    await catalog.compareAndSwapRef('a', 'tags/v1', undefined, h(3));
    await catalog.compareAndSwapRef('a', 'heads/main', undefined, h(4));
    expect((await catalog.listRefs('a', 'tags/')).map((r) => r.name)).toEqual([
      'tags/v1',
      'tags/v2',
    ]);
    expect(await catalog.listNamespaces()).toEqual(['a', 'b']);
    await catalog.close();
  });

  it('two connections to one file: exactly one of two racing swaps wins', async () => {
    const first = open();
    const second = open(first.dir);
    await first.catalog.compareAndSwapRef('ns', 'heads/main', undefined, h(1));
    for (let i = 0; i < 50; i++) {
      const base = (await first.catalog.getRef('ns', 'heads/main'))!.commit;
      const results = await Promise.all([
        first.catalog.compareAndSwapRef('ns', 'heads/main', base, h(1000 + i)),
        second.catalog.compareAndSwapRef('ns', 'heads/main', base, h(2000 + i)),
      ]);
      expect(results.filter(Boolean)).toHaveLength(1);
    }
    expect((await second.catalog.getRef('ns', 'heads/main'))!.version).toBe(51);
    await first.catalog.close();
    await second.catalog.close();
  });

  it('counts revisions from 0 and keeps only the newest moves in the log', async () => {
    const { catalog } = open();
    expect(await catalog.revision()).toBe(0);
    for (let i = 1; i <= 5; i++)
      await catalog.compareAndSwapRef('ns', `tags/v${i}`, undefined, h(i));
    expect(await catalog.revision()).toBe(5);
    catalog.trimRefLog(2);
    const events: RefEvent[] = [];
    const resets: number[] = [];
    const kept = await catalog.watchRefs(
      3,
      (e) => events.push(e),
      (r) => resets.push(r),
    );
    const lost = await catalog.watchRefs(
      2,
      () => undefined,
      (r) => resets.push(r),
    );
    await new Promise((resolve) => setTimeout(resolve, 300));
    expect(events.map((e) => [e.revision, e.name])).toEqual([
      [4, 'tags/v4'],
      [5, 'tags/v5'],
    ]);
    expect(resets).toEqual([5]);
    await kept.stop();
    await lost.stop();
    await catalog.close();
  });

  it('keeps tokens by secret hash and removes them', async () => {
    const { catalog } = open();
    const token = {
      id: 'abc',
      secretHash: 'f'.repeat(64),
      scopes: ['llama/*:write'],
      label: 'ci',
      createdMs: 1,
    };
    await catalog.putToken(token);
    expect(await catalog.findToken('f'.repeat(64))).toEqual(token);
    expect(await catalog.findToken('0'.repeat(64))).toBeUndefined();
    expect(await catalog.removeToken('abc')).toBe(true);
    expect(await catalog.listTokens()).toEqual([]);
    await catalog.close();
  });
});

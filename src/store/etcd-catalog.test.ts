import { createServer, type AddressInfo, type Socket } from 'node:net';
import { Etcd3 } from 'etcd3';
import { describe, expect, it } from 'vitest';
import { isTongbuError } from '../core/errors.js';
import { ETCD_URL, etcdAvailable, uniqueEtcdPrefix } from '../test-support/etcd.js';
import { runClusterCatalogSuite } from './catalog-suite.js';
import { EtcdCatalog } from './etcd-catalog.js';

const ok = await etcdAvailable();
const hosts = ETCD_URL.replace(/^[a-z]+:\/\//i, '').split(',');

describe.skipIf(!ok)('EtcdCatalog', () => {
  runClusterCatalogSuite('EtcdCatalog', {
    create: uniqueEtcdPrefix,
    open: (prefix) => EtcdCatalog.open(ETCD_URL, { prefix }),
    child: (prefix) => ({
      module: new URL('./etcd-catalog.ts', import.meta.url).href,
      className: 'EtcdCatalog',
      args: [ETCD_URL, { prefix }],
    }),
    compact: async (catalog) => {
      await catalog.compactHistory();
    },
    destroy: async (prefix) => {
      const client = new Etcd3({ hosts });
      try {
        await client.delete().prefix(prefix);
      } finally {
        client.close();
      }
    },
  });

  it('fails fast with CONNECTION_FAILED naming the address when nothing listens', async () => {
    const server = createServer().listen(0, '127.0.0.1');
    await new Promise((resolve) => server.once('listening', resolve));
    const { port } = server.address() as AddressInfo;
    await new Promise((resolve) => server.close(resolve));
    const started = Date.now();
    const err: unknown = await EtcdCatalog.open(`etcd://127.0.0.1:${port}`).catch(
      (e: unknown) => e,
    );
    expect(isTongbuError(err, 'CONNECTION_FAILED')).toBe(true);
    expect((err as Error).message).toContain(`127.0.0.1:${port}`);
    expect(Date.now() - started).toBeLessThan(2000);
  });

  it('gives up within seconds on a server that never answers', async () => {
    const sockets: Socket[] = [];
    const silent = createServer((socket) => void sockets.push(socket)).listen(0, '127.0.0.1');
    await new Promise((resolve) => silent.once('listening', resolve));
    const { port } = silent.address() as AddressInfo;
    try {
      const started = Date.now();
      const err: unknown = await EtcdCatalog.open(`etcd://127.0.0.1:${port}`).catch(
        (e: unknown) => e,
      );
      expect(isTongbuError(err, 'CONNECTION_FAILED')).toBe(true);
      expect((err as Error).message).toContain(`etcd at 127.0.0.1:${port}`);
      expect(Date.now() - started).toBeLessThan(6000);
    } finally {
      for (const socket of sockets) socket.destroy();
      silent.close();
    }
  });

  it('rejects a URL that is not etcd:// or http://', async () => {
    const err: unknown = await EtcdCatalog.open('https://127.0.0.1:2379').catch((e: unknown) => e);
    expect(isTongbuError(err, 'BAD_URL')).toBe(true);
  });
});

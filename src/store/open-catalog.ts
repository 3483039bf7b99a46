/**
 * Opens the catalog a `--catalog` URL names: `etcd://HOST:PORT[,HOST:PORT…][/PREFIX]`
 * (a cluster across machines; etcd is loaded only then; keys live under
 * `/PREFIX/`, `/tongbu/` by default, so several stores can share one etcd) or
 * `sqlite:PATH` (nodes of one machine sharing one file).
 */
import { resolve } from 'node:path';
import { TongbuError } from '../core/errors.js';
import type { ClusterCatalog } from './catalog.js';
import { SqliteCatalog } from './sqlite-catalog.js';

export function isEtcdUrl(url: string): boolean {
  return /^etcd:\/\//i.test(url);
}

export async function openClusterCatalog(url: string): Promise<ClusterCatalog> {
  if (isEtcdUrl(url)) {
    const { EtcdCatalog } = await import('./etcd-catalog.js');
    const m = /^(etcd:\/\/[^/]+)(\/.*)?$/i.exec(url)!;
    const prefix = (m[2] ?? '').replace(/^\/+|\/+$/g, '');
    return EtcdCatalog.open(m[1]!, prefix ? { prefix: `/${prefix}/` } : {});
  }
  const m = /^sqlite:(.+)$/i.exec(url);
  if (m) return SqliteCatalog.open(resolve(m[1]!));
  throw new TongbuError(
    'BAD_URL',
    `--catalog: expected etcd://HOST:PORT[,HOST:PORT…] or sqlite:PATH, got ${JSON.stringify(url)}`,
    { data: { url } },
  );
}

/** The URL with any password shown as `***`. */
export function redactCatalogUrl(url: string): string {
  return url.replace(/\/\/([^:@/]+):[^@/]*@/, '//$1:***@');
}

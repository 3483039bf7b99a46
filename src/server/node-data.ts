/**
 * A node's data directory: `packs/` (the chunk store: pack files and their index), `catalog.db` (the
 * SQLite catalog) and `admin.token` (written once, mode 0600, on first start).
 */
import { existsSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { PackChunkStore } from '../store/pack-chunk-store.js';
import { SqliteCatalog } from '../store/sqlite-catalog.js';
import { Store } from '../store/store.js';
import { createToken } from './auth.js';

export interface NodeData {
  readonly dir: string;
  readonly store: Store;
  /** Set when this open created the admin token file. */
  readonly adminTokenFile?: string;
}

export function catalogPath(dir: string): string {
  return join(resolve(dir), 'catalog.db');
}

export async function openNodeData(
  dir: string,
  options: { bootstrap: boolean },
): Promise<NodeData> {
  const root = resolve(dir);
  const chunks = PackChunkStore.open(root);
  const catalog = SqliteCatalog.open(catalogPath(root));
  const store = new Store(chunks, catalog);
  const tokenFile = join(root, 'admin.token');
  if (!options.bootstrap || existsSync(tokenFile)) return { dir: root, store };
  const { token } = await createToken(catalog, ['*:admin'], 'admin (bootstrap)');
  writeFileSync(tokenFile, `${token}\n`, { mode: 0o600, flag: 'wx' });
  return { dir: root, store, adminTokenFile: tokenFile };
}

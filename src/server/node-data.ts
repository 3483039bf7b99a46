/**
 * A node's data directory: `packs/` (the chunk store: pack files and their index), `catalog.db` (the
 * SQLite catalog of a single node), `node.id` (a cluster node's id), `hints.db` (a cluster node's
 * hint queue), `admin.token` (written once, mode 0600, on first start) and `format` (the store's
 * format and address algorithm, checked at every open).
 */
import { existsSync, mkdirSync, readFileSync, statfsSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { ClusterNode, newNodeId } from '../cluster/cluster-node.js';
import type { ReplicationMode } from '../cluster/placement.js';
import { TongbuError } from '../core/errors.js';
import { STORE_HASH } from '../core/hash.js';
import type { Catalog, ClusterCatalog } from '../store/catalog.js';
import { PackChunkStore } from '../store/pack-chunk-store.js';
import { SqliteCatalog } from '../store/sqlite-catalog.js';
import { Store } from '../store/store.js';
import { createToken } from './auth.js';

export interface NodeData {
  readonly dir: string;
  readonly store: Store;
  /** Set when this open created the admin token file. */
  readonly adminTokenFile?: string;
  /** Set on a node of a replicated store. */
  readonly cluster?: ClusterNode;
}

export interface ClusterSettings {
  readonly catalog: ClusterCatalog;
  /** How peers reach this node. */
  readonly url: string;
  /** This node's id; kept in DIR/node.id (a new one is made on first start). */
  readonly nodeId?: string;
  readonly replicas: number;
  readonly defaultMode: ReplicationMode;
  readonly heartbeatTtlMs?: number;
  readonly downGraceMs?: number;
  readonly repairIntervalMs?: number;
  readonly scrubIntervalMs?: number;
  readonly repairBytesPerSec?: number;
  readonly scrubBytesPerSec?: number;
}

/** What DIR/format holds: the store format and its address algorithm. */
const FORMAT = `tongbu-store 2 ${STORE_HASH}`;

/**
 * Refuses a data directory of another format (a node from before blake3
 * addresses left `packs/` and no `format`); marks a new one.
 */
function checkFormat(root: string): void {
  const file = join(root, 'format');
  const kept = existsSync(file) ? readFileSync(file, 'utf8').trim() : undefined;
  if (kept === FORMAT) return;
  if (kept !== undefined || existsSync(join(root, 'packs'))) {
    throw new TongbuError(
      'SCHEMA_MISMATCH',
      `${root} holds a store of format "${kept ?? 'tongbu-store 1 sha256'}", this tongbu reads "${FORMAT}": serve it with the tongbu that wrote it, sync its namespaces out, and into a new data directory`,
      { data: { dir: root, format: kept ?? null } },
    );
  }
  writeFileSync(file, `${FORMAT}\n`);
}

export function catalogPath(dir: string): string {
  return join(resolve(dir), 'catalog.db');
}

/** The node id kept in the data directory; `wanted` must match it when both exist. */
export function nodeId(dir: string, wanted?: string): string {
  const file = join(dir, 'node.id');
  const kept = existsSync(file) ? readFileSync(file, 'utf8').trim() : undefined;
  if (kept && wanted && kept !== wanted) {
    throw new TongbuError('BAD_ARGUMENT', `--node-id ${wanted}: ${dir} belongs to node ${kept}`, {
      data: { kept, wanted },
    });
  }
  if (wanted !== undefined && !/^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/.test(wanted))
    throw new TongbuError('BAD_ARGUMENT', `--node-id: invalid id ${JSON.stringify(wanted)}`);
  const id = kept ?? wanted ?? newNodeId();
  if (!kept) writeFileSync(file, `${id}\n`);
  return id;
}

export async function openNodeData(
  dir: string,
  options: { bootstrap: boolean; cluster?: ClusterSettings },
): Promise<NodeData> {
  const root = resolve(dir);
  mkdirSync(root, { recursive: true });
  checkFormat(root);
  const local = PackChunkStore.open(root);
  const settings = options.cluster;
  let store: Store;
  let cluster: ClusterNode | undefined;
  let catalog: Catalog;
  if (settings) {
    catalog = settings.catalog;
    cluster = new ClusterNode({
      ...settings,
      catalog: settings.catalog,
      local,
      dataDir: root,
      id: nodeId(root, settings.nodeId),
      createNodeToken: async () =>
        (await createToken(settings.catalog, ['*:admin'], 'cluster nodes')).token,
      capacity: () => {
        const fs = statfsSync(root);
        return {
          capacityBytes: fs.blocks * fs.bsize,
          usedBytes: (fs.blocks - fs.bfree) * fs.bsize,
        };
      },
    });
    store = new Store(cluster.chunks, catalog);
  } else {
    catalog = SqliteCatalog.open(catalogPath(root));
    store = new Store(local, catalog);
  }
  const base = { dir: root, store, ...(cluster ? { cluster } : {}) };
  const tokenFile = join(root, 'admin.token');
  if (!options.bootstrap || existsSync(tokenFile)) return base;
  const { token } = await createToken(catalog, ['*:admin'], 'admin (bootstrap)');
  writeFileSync(tokenFile, `${token}\n`, { mode: 0o600, flag: 'wx' });
  return { ...base, adminTokenFile: tokenFile };
}

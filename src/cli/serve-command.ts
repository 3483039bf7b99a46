/**
 * `tongbu serve --data DIR --listen HOST:PORT`: runs a store node until
 * SIGINT/SIGTERM. Binding anything but loopback without TLS needs
 * --insecure; the first start writes an admin token to DIR/admin.token.
 */
import { isIP } from 'node:net';
import { z } from 'zod/v3';
import { TongbuError } from '../core/errors.js';
import { DEFAULT_REPLICAS, isReplicationMode } from '../cluster/placement.js';
import { openClusterCatalog, redactCatalogUrl } from '../store/open-catalog.js';
import { openNodeData, type ClusterSettings } from '../server/node-data.js';
import { readTls, StoreServer } from '../server/store-server.js';
import { flagsOf, helpFor, parseCommandLine } from './args.js';
import { parseOptions } from './parse-options.js';
import { parseSize } from '../sync/sync-options.js';

export const serveOptionsSchema = z.object({
  data: z.string().describe('data directory of the node (created when absent)'),
  listen: z.string().default('127.0.0.1:7700').describe('HOST:PORT to listen on'),
  tlsCert: z.string().optional().describe('TLS certificate (PEM); serve HTTPS'),
  tlsKey: z.string().optional().describe('TLS private key (PEM)'),
  insecure: z.boolean().default(false).describe('allow plain HTTP on a non-loopback address'),
  catalog: z
    .string()
    .optional()
    .describe('join a replicated store: etcd://HOST:PORT[,…] or sqlite:PATH (shared file)'),
  nodeId: z.string().optional().describe('id of this node in the cluster (kept in DIR/node.id)'),
  advertise: z.string().optional().describe('URL peers use to reach this node (default: --listen)'),
  replicas: z.coerce
    .number()
    .int()
    .min(1)
    .max(16)
    .default(DEFAULT_REPLICAS)
    .describe('copies of each chunk (R)'),
  replication: z
    .string()
    .default('quorum')
    .describe('default replication mode: sync, quorum or async'),
  heartbeat: z
    .string()
    .default('5s')
    .describe('heartbeat lease: a stopped node is down after this'),
  downGrace: z
    .string()
    .default('5m')
    .describe('a node down this long is dead: its chunks are re-replicated'),
  repairEvery: z.string().default('1m').describe('anti-entropy interval (0: only when asked)'),
  scrubEvery: z.string().default('1h').describe('scrub interval (0: only when asked)'),
  repairRate: z.string().default('200M').describe('repair throttle, bytes per second'),
  scrubRate: z.string().default('100M').describe('scrub throttle, bytes per second'),
});

export const SERVE_USAGE = `usage: tongbu serve --data DIR [--listen HOST:PORT] [options]

${helpFor(flagsOf(serveOptionsSchema))}
`;

export function splitHostPort(text: string): { host: string; port: number } {
  const m = /^(\[[0-9a-fA-F:.]+\]|[^:]+):(\d{1,5})$/.exec(text);
  const port = Number(m?.[2]);
  if (!m || port > 65535) {
    throw new TongbuError(
      'BAD_ARGUMENT',
      `--listen: expected HOST:PORT, got ${JSON.stringify(text)}`,
    );
  }
  return { host: m[1]!.replace(/^\[|\]$/g, ''), port };
}

/** `500ms`, `5s`, `2m`, `1h`, or plain milliseconds. */
export function parseDuration(text: string, what: string): number {
  const m = /^(\d+(?:\.\d+)?)(ms|s|m|h)?$/.exec(text.trim());
  if (!m)
    throw new TongbuError(
      'BAD_ARGUMENT',
      `${what}: expected a duration like 5s or 2m, got ${JSON.stringify(text)}`,
    );
  const unit = { ms: 1, s: 1_000, m: 60_000, h: 3_600_000 }[m[2] ?? 'ms']!;
  return Math.round(Number(m[1]) * unit);
}

function isLoopback(host: string): boolean {
  if (host === 'localhost' || host === '::1') return true;
  return isIP(host) === 4 && host.startsWith('127.');
}

export async function serveCommand(argv: readonly string[], version: string): Promise<number> {
  const line = parseCommandLine(argv, flagsOf(serveOptionsSchema), {
    help: { type: 'boolean', short: 'h' },
  });
  if (line.cli['help'] === true) {
    process.stdout.write(SERVE_USAGE);
    return 0;
  }
  const options = parseOptions(serveOptionsSchema, line.options);
  const { host, port } = splitHostPort(options.listen);
  if ((options.tlsCert === undefined) !== (options.tlsKey === undefined)) {
    throw new TongbuError('BAD_ARGUMENT', 'TLS needs both --tls-cert and --tls-key');
  }
  const tls =
    options.tlsCert && options.tlsKey ? readTls(options.tlsCert, options.tlsKey) : undefined;
  if (!tls && !isLoopback(host) && !options.insecure) {
    throw new TongbuError(
      'BAD_ARGUMENT',
      `refusing plain HTTP on ${host}: give --tls-cert and --tls-key, or --insecure`,
    );
  }
  let cluster: ClusterSettings | undefined;
  if (options.catalog !== undefined) {
    if (!isReplicationMode(options.replication)) {
      throw new TongbuError(
        'BAD_ARGUMENT',
        `--replication: expected sync, quorum or async, got ${JSON.stringify(options.replication)}`,
      );
    }
    const scheme = tls ? 'https' : 'http';
    const shownHost = host.includes(':') ? `[${host}]` : host;
    cluster = {
      catalog: await openClusterCatalog(options.catalog),
      url: options.advertise ?? `${scheme}://${shownHost}:${port}`,
      ...(options.nodeId !== undefined ? { nodeId: options.nodeId } : {}),
      replicas: options.replicas,
      defaultMode: options.replication,
      heartbeatTtlMs: parseDuration(options.heartbeat, '--heartbeat'),
      downGraceMs: parseDuration(options.downGrace, '--down-grace'),
      repairIntervalMs: parseDuration(options.repairEvery, '--repair-every'),
      scrubIntervalMs: parseDuration(options.scrubEvery, '--scrub-every'),
      repairBytesPerSec: parseSize(options.repairRate, '--repair-rate'),
      scrubBytesPerSec: parseSize(options.scrubRate, '--scrub-rate'),
    };
    if (port === 0)
      throw new TongbuError('BAD_ARGUMENT', 'a cluster node needs a fixed --listen port');
  }
  const data = await openNodeData(options.data, {
    bootstrap: true,
    ...(cluster ? { cluster } : {}),
  });
  if (data.adminTokenFile) {
    process.stderr.write(`tongbu: admin token written to ${data.adminTokenFile} (mode 0600)\n`);
  }
  const server = new StoreServer({
    store: data.store,
    dataDir: data.dir,
    host,
    port,
    version,
    ...(tls ? { tls } : {}),
    ...(data.cluster ? { cluster: data.cluster } : {}),
  });
  const address = await server.start();
  const shown = address.family === 'IPv6' ? `[${address.address}]` : address.address;
  process.stderr.write(
    `tongbu: listening on ${tls ? 'https' : 'http'}://${shown}:${address.port} (data ${data.dir})\n`,
  );
  if (data.cluster && options.catalog !== undefined) {
    const c = data.cluster.options;
    process.stderr.write(
      `tongbu: node ${c.id} joined ${redactCatalogUrl(options.catalog)}: ${data.cluster.view.members().length} member(s), R=${c.replicas}, ${c.defaultMode} by default\n`,
    );
  }
  await new Promise<void>((resolve) => {
    process.once('SIGINT', resolve);
    process.once('SIGTERM', resolve);
  });
  await server.stop();
  return 0;
}

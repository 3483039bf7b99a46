/**
 * Turns what the user typed into an endpoint. A plain path is a local
 * directory; URL schemes name the other kinds as they are added
 * (tongbu://, sqlite:, postgres://, mysql://). The other kinds load only
 * when a URL names them, so a directory sync never pays for them.
 */
import { TongbuError } from '../core/errors.js';
import type { Endpoint } from './endpoint.js';
import { FsEndpoint } from './fs/fs-endpoint.js';
import { isTongbuUrl } from './tongbu/tongbu-url.js';
import { isTableUrl } from './table/table-url.js';

export interface OpenEndpointOptions {
  readonly transfers?: number;
  /** Bearer token for tongbu:// endpoints. */
  readonly token?: string;
  /** Tag for the commit a sync into a tongbu:// endpoint makes. */
  readonly tag?: string;
  /** tongbu:// on a cluster: replication mode of writes, consistency of ref reads. */
  readonly replication?: string;
  readonly consistency?: 'linearizable' | 'stale';
  /** tongbu:// destination: lacked chunks go whole, never as deltas. */
  readonly wholeFile?: boolean;
  /** tongbu:// destination: a directory keeping the manifests uploaded. */
  readonly manifestCache?: string;
}

export async function openEndpoint(
  spec: string,
  options: OpenEndpointOptions = {},
): Promise<Endpoint> {
  if (spec === '') throw new TongbuError('BAD_URL', 'empty endpoint: give a directory path or URL');
  const scheme = /^([a-z][a-z0-9+.-]*):/i.exec(spec)?.[1]?.toLowerCase();
  if (isTongbuUrl(spec)) {
    const { TongbuEndpoint } = await import('./tongbu/tongbu-endpoint.js');
    return new TongbuEndpoint(spec, {
      ...(options.token !== undefined ? { token: options.token } : {}),
      ...(options.transfers !== undefined ? { transfers: options.transfers } : {}),
      ...(options.tag !== undefined ? { tag: options.tag } : {}),
      ...(options.replication !== undefined ? { replication: options.replication } : {}),
      ...(options.consistency !== undefined ? { consistency: options.consistency } : {}),
      ...(options.wholeFile ? { wholeFile: true } : {}),
      ...(options.manifestCache !== undefined ? { manifestCache: options.manifestCache } : {}),
    });
  }
  // A table beside a directory or a tongbu:// store: its rows as files.
  if (isTableUrl(spec)) {
    const { TableSnapshotEndpoint } = await import('./table/table-snapshot-endpoint.js');
    return new TableSnapshotEndpoint(spec);
  }
  if (scheme === 'file') return new FsEndpoint(new URL(spec).pathname, fsOptions(options));
  if (scheme !== undefined && scheme.length > 1) {
    throw new TongbuError('BAD_URL', `${spec}: endpoint scheme "${scheme}:" is not supported yet`, {
      data: { url: spec },
    });
  }
  return new FsEndpoint(spec, fsOptions(options));
}

function fsOptions(options: OpenEndpointOptions): { workers?: number } {
  return options.transfers === undefined ? {} : { workers: options.transfers };
}

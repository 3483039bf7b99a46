/** Listing both sides, and refusing pairs that overlap. */
import { realpath } from 'node:fs/promises';
import * as path from 'node:path';
import { TongbuError } from '../core/errors.js';
import type { Key } from '../core/key.js';
import type { ProgressMeter } from '../core/progress.js';
import type { Endpoint, Entry } from '../endpoints/endpoint.js';

export async function listAll(
  endpoint: Endpoint,
  meter: ProgressMeter,
  signal: AbortSignal | undefined,
  onProblem: (error: TongbuError) => void,
): Promise<Map<Key, Entry>> {
  const entries = new Map<Key, Entry>();
  for await (const batch of endpoint.list({ ...(signal ? { signal } : {}), onProblem })) {
    for (const entry of batch) entries.set(entry.key, entry);
    meter.add(batch.length, 0);
  }
  return entries;
}

/**
 * Refuses a destination equal to or inside the source (it would copy into
 * itself) and a source inside the destination (a mirror would delete it).
 */
export async function checkDisjoint(source: Endpoint, destination: Endpoint): Promise<void> {
  if (source.localPath === undefined || destination.localPath === undefined) return;
  const src = await realpath(source.localPath);
  const dst = await resolveExisting(destination.localPath);
  const inside = (child: string, parent: string): boolean =>
    child === parent || child.startsWith(parent.endsWith(path.sep) ? parent : parent + path.sep);
  if (inside(dst, src)) {
    throw new TongbuError(
      'DEST_INSIDE_SOURCE',
      `destination ${destination.url} is ${dst === src ? 'the same directory as' : 'inside'} source ${source.url}`,
      { data: { source: src, destination: dst } },
    );
  }
  if (inside(src, dst)) {
    throw new TongbuError(
      'SOURCE_INSIDE_DEST',
      `source ${source.url} is inside destination ${destination.url}: a mirror would delete it`,
      { data: { source: src, destination: dst } },
    );
  }
}

/** The real path of `p`, resolving its longest existing prefix. */
async function resolveExisting(p: string): Promise<string> {
  const rest: string[] = [];
  let cur = path.resolve(p);
  for (;;) {
    try {
      return path.join(await realpath(cur), ...rest.reverse());
    } catch {
      const parent = path.dirname(cur);
      if (parent === cur) return path.resolve(p);
      rest.push(path.basename(cur));
      cur = parent;
    }
  }
}

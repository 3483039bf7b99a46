/**
 * The mass-delete guard: a mirror refuses to delete more than --max-delete
 * (a count or a percentage of the destination; by default half of it)
 * unless --force is given. It runs before anything is written.
 */
import { TongbuError } from '../core/errors.js';
import { parseDeleteLimit, type SyncOptions } from './sync-options.js';

export function checkDeleteLimit(
  deletes: number,
  destinationCount: number,
  options: Pick<SyncOptions, 'maxDelete' | 'force'>,
  destination: string,
): void {
  if (deletes === 0 || options.force) return;
  const limit = parseDeleteLimit(options.maxDelete ?? '50%');
  const allowed =
    limit.count !== undefined
      ? limit.count
      : Math.floor((destinationCount * (limit.percent ?? 50)) / 100);
  if (deletes <= allowed) return;
  const share = destinationCount > 0 ? Math.round((deletes / destinationCount) * 100) : 100;
  throw new TongbuError(
    'MASS_DELETE',
    `refusing to delete ${deletes} of ${destinationCount} entries (${share}%) in ${destination}: ` +
      `the limit is ${options.maxDelete ?? '50%'}; check the source, or pass --max-delete or --force`,
    { data: { deletes, destinationCount, limit: options.maxDelete ?? '50%' } },
  );
}

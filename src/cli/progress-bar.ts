/**
 * The live progress line on a terminal: files, bytes, rate and ETA,
 * redrawn in place on stderr. Off a terminal nothing is drawn.
 */
import type { ProgressEvent } from '../core/progress.js';
import { formatBytes, formatDuration } from './format.js';

export function createProgressBar(stream: NodeJS.WriteStream): {
  update: (event: ProgressEvent) => void;
  clear: () => void;
} {
  let drawn = false;
  return {
    update(event) {
      if (event.unit === 'rows') {
        const rows =
          event.totalFiles === undefined ? `${event.files}` : `${event.files}/${event.totalFiles}`;
        const left =
          event.totalFiles !== undefined && event.rate > 0
            ? ` ETA ${formatDuration(((event.totalFiles - event.files) / event.rate) * 1000)}`
            : '';
        const perSecond = event.rate > 0 ? ` ${Math.round(event.rate)} rows/s` : '';
        stream.write(
          `\r\x1b[2K${`${event.phase.padEnd(8)} ${rows} rows${perSecond}${left}`.slice(0, (stream.columns || 100) - 1)}`,
        );
        drawn = true;
        return;
      }
      const files =
        event.totalFiles === undefined ? `${event.files}` : `${event.files}/${event.totalFiles}`;
      const bytes =
        event.totalBytes === undefined
          ? formatBytes(event.bytes)
          : `${formatBytes(event.bytes)}/${formatBytes(event.totalBytes)}`;
      const eta =
        event.totalBytes !== undefined && event.rate > 0
          ? ` ETA ${formatDuration(((event.totalBytes - event.bytes) / event.rate) * 1000)}`
          : '';
      const rate = event.rate > 0 ? ` ${formatBytes(event.rate)}/s` : '';
      const line = `${event.phase.padEnd(8)} ${files} files ${bytes}${rate}${eta}`;
      stream.write(`\r\x1b[2K${line.slice(0, (stream.columns || 100) - 1)}`);
      drawn = true;
    },
    clear() {
      if (drawn) stream.write('\r\x1b[2K');
      drawn = false;
    },
  };
}

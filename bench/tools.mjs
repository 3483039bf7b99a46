// Tools under test, their exact command lines, and the benchmark cases.
import { spawnSync } from 'node:child_process';
import { basename } from 'node:path';

/**
 * Cases. kind: 'full' = sync into an empty directory; 'noop' = re-sync of a destination the same
 * tool synced before (prepared once, untimed); 'update' = destination holds the tool's own copy
 * of `base` (made untimed before every run), time syncing `src` into it.
 */
export const CASES = {
  'w1-full': { kind: 'full', src: 'w1' },
  'w2-full': { kind: 'full', src: 'w2' },
  'w4-full': { kind: 'full', src: 'w4' },
  'w1-noop': { kind: 'noop', src: 'w1' },
  'w4-noop': { kind: 'noop', src: 'w4' },
  'w2-w3': { kind: 'update', base: 'w2', src: 'w3' },
  // W2 then W3 uploaded into a store over loopback (bench/store-case.mjs).
  'store-w2-w3': { kind: 'store', base: 'w2', src: 'w3' },
};

/** All tool names, in the order they are run (rotated per run). */
export const ALL_TOOLS = [
  'tongbu',
  'rsync',
  'rsync-delta',
  'rclone',
  'cp',
  'rsync-daemon',
  'restic',
];
/** Tools of the store case; there `rsync` selects the rsync daemon. */
export const STORE_TOOLS = ['tongbu', 'rsync-daemon', 'restic'];
/** Tools that count as "best of the established tools" in ratios. */
export const BASELINES = ['rsync', 'rsync-delta', 'rclone'];

/** Which tools run in a case, given the --tools selection (rsync also selects rsync-delta). */
export function toolsForCase(caseName, selected) {
  const kind = CASES[caseName].kind;
  if (kind === 'store') {
    return STORE_TOOLS.filter(
      (t) => selected.includes(t) || (t === 'rsync-daemon' && selected.includes('rsync')),
    );
  }
  return ALL_TOOLS.filter((t) => {
    if (STORE_TOOLS.includes(t) && t !== 'tongbu') return false; // store case only
    if (t === 'cp' && kind !== 'full') return false; // cp is a reference line for full copies
    if (t === 'rsync-delta') {
      return caseName === 'w2-w3' && (selected.includes('rsync') || selected.includes(t));
    }
    return selected.includes(t);
  });
}

/** Splits a command string into words, honouring '...' and "..." quotes. */
export function splitWords(s) {
  const words = [];
  const re = /"([^"]*)"|'([^']*)'|(\S+)/g;
  let m;
  while ((m = re.exec(s))) words.push(m[1] ?? m[2] ?? m[3]);
  return words;
}

export const DEFAULT_TONGBU = 'node bin/tongbu.js sync {src} {dst} --state {state}';

/**
 * The tongbu command template as words with {src} {dst} {state} placeholders. An override
 * without placeholders gets SRC DST appended (SRC/ DST/ when it is an rsync command, so that
 * `--tongbu-cmd "rsync -a"` copies contents like the rsync line does).
 */
export function tongbuTemplate(cmd) {
  const words = splitWords(cmd ?? DEFAULT_TONGBU);
  if (words.some((w) => w.includes('{src}'))) return words;
  return basename(words[0]) === 'rsync'
    ? [...words, '{src}/', '{dst}/']
    : [...words, '{src}', '{dst}'];
}

/** argv for one tool invocation syncing src into dst. */
export function toolArgv(tool, { src, dst, state, template }) {
  switch (tool) {
    case 'tongbu':
      return template.map((w) =>
        w.replaceAll('{src}', src).replaceAll('{dst}', dst).replaceAll('{state}', state),
      );
    case 'rsync':
      return ['rsync', '-a', `${src}/`, `${dst}/`];
    case 'rsync-delta':
      return ['rsync', '-a', '--no-whole-file', `${src}/`, `${dst}/`];
    case 'rclone':
      return ['rclone', 'sync', src, dst, '--config', '/dev/null'];
    case 'cp':
      return ['cp', '-a', `${src}/.`, dst];
    default:
      throw new Error(`unknown tool ${tool}`);
  }
}

function firstLine(cmd, args, cwd) {
  const r = spawnSync(cmd, args, { encoding: 'utf8', cwd });
  if (r.error || r.status !== 0) return null;
  return (r.stdout || r.stderr).split('\n')[0].trim();
}

/** Versions of the tools and the machine facts recorded with results. */
export function toolVersions(repoRoot) {
  return {
    node: process.version,
    rsync: firstLine('rsync', ['--version']),
    rclone: firstLine('rclone', ['version']),
    restic: firstLine('restic', ['version']),
    cp: firstLine('cp', ['--version']),
    time: firstLine('/usr/bin/time', ['--version']),
    tongbuGitHead: firstLine('git', ['rev-parse', 'HEAD'], repoRoot),
  };
}

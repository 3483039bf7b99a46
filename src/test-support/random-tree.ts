/**
 * Random file trees for property tests: a fast-check arbitrary for trees
 * with odd names (NFC and NFD siblings, tabs, backslashes, emoji, 200-byte
 * names), empty files and directories, deep nesting, symlinks (inside the
 * tree, dangling, pointing outside), random modes and mtimes, and a writer
 * that puts one on disk exactly as described.
 */
import * as fsp from 'node:fs/promises';
import * as path from 'node:path';
import fc from 'fast-check';

export interface FileNode {
  readonly kind: 'file';
  readonly size: number;
  /** Content is `contentBytes(size, seed)`. */
  readonly seed: number;
  readonly mode: number;
  readonly mtimeMs: number;
}

export interface LinkNode {
  readonly kind: 'symlink';
  readonly target: string;
  readonly mtimeMs: number;
}

export interface DirNode {
  readonly kind: 'dir';
  readonly mode: number;
  readonly mtimeMs: number;
  readonly children: Tree;
}

export type TreeNode = FileNode | LinkNode | DirNode;

/** The entries of one directory, by name. */
export type Tree = ReadonlyMap<string, TreeNode>;

/** Temp files of the fs endpoint start with this; a random name never does. */
const TEMP_PREFIX = '.tongbu-tmp-';

export const MiB = 1 << 20;

/** Deterministic content: xorshift32 from `seed`, so a tree is small to print. */
export function contentBytes(size: number, seed: number): Buffer {
  const out = Buffer.allocUnsafe(size);
  let x = (seed >>> 0) ^ 0x9e3779b9 || 1;
  let i = 0;
  for (; i + 4 <= size; i += 4) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    out.writeInt32LE(x | 0, i);
  }
  for (; i < size; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    out[i] = x & 0xff;
  }
  return out;
}

/** A name one directory may hold on Linux, and that no test mistakes for a temp file. */
export function isValidName(name: string): boolean {
  return (
    name.length > 0 &&
    name !== '.' &&
    name !== '..' &&
    !name.includes('/') &&
    !name.includes('\0') &&
    !name.startsWith(TEMP_PREFIX) &&
    Buffer.byteLength(name) <= 200 &&
    (name as string & { isWellFormed(): boolean }).isWellFormed()
  );
}

/** Words whose NFC and NFD forms differ; both forms appear as siblings. */
export const NORMALIZATION_WORDS = ['café', 'Ångström', 'naïve', '한글', 'ḱṷṓn', 'résumé'];

const ODD_NAMES = [
  ' ',
  'a b',
  ' leading space',
  'trailing space ',
  'tab\there',
  'back\\slash',
  '\\',
  '"double quoted"',
  "it's",
  '`tick`',
  '.hidden',
  '..two dots',
  '...',
  '-dash',
  '--double-dash',
  '#hash',
  '%41%2F',
  '$HOME',
  '*?[x]{y}',
  'new\nline',
  'carriage\rreturn',
  '\u001b[31mred',
  'emoji 😀',
  '👨‍👩‍👧‍👦',
  '🏳️‍🌈',
  '中文名字',
  '日本語のファイル',
  '한국어',
  'Ω≈ç√',
  'ﬁ ligature',
  'İstanbul',
  'straße',
  'zero\u200bwidth',
  'rtl \u202eabc',
  'replacement \ufffd char',
  'CON',
  'aux.txt',
  'x:y',
  '~tilde',
  'a=b&c',
  '@at',
  'ｆｕｌｌｗｉｄｔｈ',
  'UPPER',
  'upper',
  ...NORMALIZATION_WORDS.map((w) => w.normalize('NFC')),
  ...NORMALIZATION_WORDS.map((w) => w.normalize('NFD')),
];

/** A long name of at most 200 bytes made of one repeated character. */
const longName = fc
  .tuple(fc.constantFrom('a', 'é', '中', '😀', 'x y'), fc.integer({ min: 100, max: 200 }))
  .map(([unit, bytes]) => unit.repeat(Math.max(1, Math.floor(bytes / Buffer.byteLength(unit)))));

export const nameArb: fc.Arbitrary<string> = fc
  .oneof(
    { weight: 5, arbitrary: fc.stringMatching(/^[a-z0-9_.-]{1,10}$/) },
    { weight: 4, arbitrary: fc.constantFrom(...ODD_NAMES) },
    { weight: 2, arbitrary: fc.string({ unit: 'binary', minLength: 1, maxLength: 10 }) },
    { weight: 1, arbitrary: fc.string({ unit: 'grapheme', minLength: 1, maxLength: 6 }) },
    { weight: 1, arbitrary: longName },
  )
  .filter(isValidName);

export const FILE_MODES = [0o600, 0o644, 0o755, 0o400, 0o444, 0o640, 0o700, 0o664];
/** Directory modes keep the owner's rwx: a test must be able to write and remove them. */
export const DIR_MODES = [0o755, 0o700, 0o750, 0o775, 0o711];

export const fileModeArb = fc.constantFrom(...FILE_MODES);
export const dirModeArb = fc.constantFrom(...DIR_MODES);

/** Whole milliseconds between 1970 and a day ago. */
const DAY_MS = 86_400_000;
export const mtimeArb: fc.Arbitrary<number> = fc.oneof(
  fc.integer({ min: 1_000_000_000_000, max: 1_700_000_000_000 }),
  fc.integer({ min: 1, max: Date.now() - DAY_MS }),
);

/** Mostly small files, some empty, a few of several MiB, rarely one of 8 MiB or more. */
export const sizeArb: fc.Arbitrary<number> = fc.oneof(
  { weight: 20, arbitrary: fc.constant(0) },
  { weight: 55, arbitrary: fc.integer({ min: 1, max: 4096 }) },
  { weight: 15, arbitrary: fc.integer({ min: 4097, max: 256 << 10 }) },
  { weight: 5, arbitrary: fc.integer({ min: 256 << 10, max: 3 * MiB }) },
  // The worker's 4 MiB block and the 8 MiB threshold of the large-file path.
  { weight: 2, arbitrary: fc.constantFrom(4 * MiB, 4 * MiB + 1, 8 * MiB - 1, 8 * MiB) },
  { weight: 1, arbitrary: fc.integer({ min: 8 * MiB, max: 9 * MiB }) },
);

/** Link targets that do not depend on the tree: dangling, outside, absolute, odd. */
const fixedTargetArb = fc.oneof(
  fc.constantFrom(
    '../../etc/passwd',
    '../../../../../../../../etc/shadow',
    '/etc/passwd',
    '/nonexistent/dir/',
    'missing',
    'does/not/exist',
    '.',
    '..',
    './self',
    'a b\\c\t"d"',
    '😀/中文',
    'café'.normalize('NFD'),
    '//double//slashes//',
  ),
  fc.string({ unit: 'binary', minLength: 1, maxLength: 20 }).filter((s) => !s.includes('\0')),
);

export const linkTargetArb: fc.Arbitrary<string> = fixedTargetArb;

export const fileArb: fc.Arbitrary<FileNode> = fc.record({
  kind: fc.constant('file' as const),
  size: sizeArb,
  seed: fc.nat(),
  mode: fileModeArb,
  mtimeMs: mtimeArb,
});

/** A link as generated: `inside` picks a target inside the tree once the tree is known. */
interface RawLink {
  readonly kind: 'symlink';
  readonly inside: number | undefined;
  readonly target: string;
  readonly mtimeMs: number;
}

interface RawDir {
  readonly kind: 'dir';
  readonly mode: number;
  readonly mtimeMs: number;
  readonly children: readonly (readonly [string, RawNode])[];
  /** Add the NFC and NFD forms of this word as siblings. */
  readonly pair: number | undefined;
  /** Add this many tiny files (many small files in one directory). */
  readonly bulk: number;
  /** Wrap the directory in this many single-child directories (deep nesting). */
  readonly spine: readonly (readonly [string, number, number])[];
}

type RawNode = FileNode | RawLink | RawDir;

const rawLinkArb: fc.Arbitrary<RawLink> = fc.record({
  kind: fc.constant('symlink' as const),
  inside: fc.option(fc.nat(), { nil: undefined, freq: 2 }),
  target: fixedTargetArb,
  mtimeMs: mtimeArb,
});

export interface TreeConstraints {
  /** Children of one directory. */
  readonly maxChildren?: number;
  /** Levels of the recursive generator (spines add up to 11 more). */
  readonly maxDepth?: number;
  /** Total file bytes; files beyond it are shrunk below 4 KiB. */
  readonly maxTotalBytes?: number;
}

/** An arbitrary file tree (the entries of its root). */
export function treeArb(constraints: TreeConstraints = {}): fc.Arbitrary<Tree> {
  const maxChildren = constraints.maxChildren ?? 8;
  const maxDepth = constraints.maxDepth ?? 4;
  const maxTotalBytes = constraints.maxTotalBytes ?? 24 * MiB;
  const { dir } = fc.letrec<{ node: RawNode; dir: RawDir }>((tie) => ({
    node: fc.oneof(
      { maxDepth, depthIdentifier: 'tree' },
      { weight: 6, arbitrary: fileArb },
      { weight: 2, arbitrary: rawLinkArb },
      { weight: 3, arbitrary: tie('dir') },
    ),
    dir: fc.record({
      kind: fc.constant('dir' as const),
      mode: dirModeArb,
      mtimeMs: mtimeArb,
      children: fc.uniqueArray(fc.tuple(nameArb, tie('node')), {
        maxLength: maxChildren,
        selector: ([name]) => name,
        depthIdentifier: 'tree',
      }),
      pair: fc.option(fc.nat({ max: NORMALIZATION_WORDS.length - 1 }), {
        nil: undefined,
        freq: 4,
      }),
      bulk: fc.oneof(
        { weight: 10, arbitrary: fc.constant(0) },
        { weight: 1, arbitrary: fc.integer({ min: 30, max: 150 }) },
      ),
      spine: fc.oneof(
        { weight: 12, arbitrary: fc.constant([]) },
        {
          weight: 1,
          arbitrary: fc.array(fc.tuple(nameArb, dirModeArb, mtimeArb), {
            minLength: 6,
            maxLength: 11,
          }),
        },
      ),
    }),
  }));
  return dir.map((raw) => {
    const pending = new Map<string, number>();
    const tree = cook(raw, '', pending).children;
    resolveLinks(tree, pending);
    capSizes(tree, maxTotalBytes);
    return tree;
  });
}

type MutableDir = DirNode & { children: Map<string, TreeNode> };

/**
 * Raw nodes to tree nodes: NFC/NFD pairs added, spines expanded. Links to be
 * pointed inside the tree are noted in `pending` by key.
 */
function cook(raw: RawDir, key: string, pending: Map<string, number>): MutableDir {
  const children = new Map<string, TreeNode>();
  const join = (name: string): string => (key === '' ? name : `${key}/${name}`);
  for (const [name, node] of raw.children) {
    if (node.kind === 'dir') children.set(name, spine(node, join(name), pending));
    else if (node.kind === 'file') children.set(name, node);
    else {
      children.set(name, { kind: 'symlink', target: node.target, mtimeMs: node.mtimeMs });
      if (node.inside !== undefined) pending.set(join(name), node.inside);
    }
  }
  if (raw.pair !== undefined) {
    const word = NORMALIZATION_WORDS[raw.pair]!;
    const nfc = word.normalize('NFC');
    const nfd = word.normalize('NFD');
    if (!children.has(nfc) && !children.has(nfd)) {
      children.set(nfc, {
        kind: 'file',
        size: 3,
        seed: 1,
        mode: 0o644,
        mtimeMs: 1_600_000_000_001,
      });
      children.set(nfd, {
        kind: 'file',
        size: 5,
        seed: 2,
        mode: 0o600,
        mtimeMs: 1_600_000_000_002,
      });
    }
  }
  for (let i = 0; i < raw.bulk; i++) {
    const name = `bulk-${i}`;
    if (!children.has(name)) {
      children.set(name, {
        kind: 'file',
        size: i % 97,
        seed: i,
        mode: 0o644,
        mtimeMs: 1_500_000_000_000 + i,
      });
    }
  }
  return { kind: 'dir', mode: raw.mode, mtimeMs: raw.mtimeMs, children };
}

/** A directory wrapped in its spine of single-child directories; `key` is the outermost. */
function spine(raw: RawDir, key: string, pending: Map<string, number>): DirNode {
  const names = raw.spine.map(([name]) => name);
  // spine[0] wraps the directory itself and the outermost takes its place:
  // its content lands at key/spine[n-1]/.../spine[0].
  let node: DirNode = cook(raw, [key, ...[...names].reverse()].join('/'), pending);
  for (let i = 0; i < raw.spine.length; i++) {
    const [, mode, mtimeMs] = raw.spine[i]!;
    node = { kind: 'dir', mode, mtimeMs, children: new Map([[names[i]!, node]]) };
  }
  return node;
}
/** Links noted in `pending` get a relative target naming another entry of the tree. */
function resolveLinks(root: Map<string, TreeNode>, pending: ReadonlyMap<string, number>): void {
  if (pending.size === 0) return;
  const keys = [...flattenTree(root).keys()];
  const visit = (dir: Map<string, TreeNode>, dirKey: string): void => {
    for (const [name, node] of dir) {
      const key = dirKey === '' ? name : `${dirKey}/${name}`;
      if (node.kind === 'dir') visit(node.children as Map<string, TreeNode>, key);
      const pick = pending.get(key);
      if (node.kind !== 'symlink' || pick === undefined) continue;
      const target = path.posix.relative(dirKey === '' ? '.' : dirKey, keys[pick % keys.length]!);
      dir.set(name, { ...node, target: target === '' ? '.' : target });
    }
  };
  visit(root, '');
}

/** Keeps the total of file sizes under the budget: later files shrink below 4 KiB. */
function capSizes(root: Map<string, TreeNode>, budget: number): void {
  let total = 0;
  const visit = (dir: Map<string, TreeNode>): void => {
    for (const [name, node] of dir) {
      if (node.kind === 'dir') visit(node.children as Map<string, TreeNode>);
      else if (node.kind === 'file') {
        if (total + node.size > budget) dir.set(name, { ...node, size: node.size % 4096 });
        total += (dir.get(name) as FileNode).size;
      }
    }
  };
  visit(root);
}

/** Every node of a tree by relative POSIX path, parents before children. */
export function flattenTree(tree: Tree, prefix = ''): Map<string, TreeNode> {
  const out = new Map<string, TreeNode>();
  for (const [name, node] of tree) {
    const key = prefix === '' ? name : `${prefix}/${name}`;
    out.set(key, node);
    if (node.kind === 'dir') for (const [k, v] of flattenTree(node.children, key)) out.set(k, v);
  }
  return out;
}

/** Counts of a tree's entries by kind, and its file bytes. */
export function treeStats(tree: Tree): {
  files: number;
  dirs: number;
  links: number;
  bytes: number;
} {
  const stats = { files: 0, dirs: 0, links: 0, bytes: 0 };
  for (const node of flattenTree(tree).values()) {
    if (node.kind === 'file') {
      stats.files++;
      stats.bytes += node.size;
    } else if (node.kind === 'dir') stats.dirs++;
    else stats.links++;
  }
  return stats;
}

/**
 * Writes `tree` into the existing directory `root`: content, modes and
 * mtimes (directories last, so their times stick; links with lutimes).
 * Times are passed as Dates: Node reads a negative number of seconds as "now".
 */
export async function writeTree(root: string, tree: Tree): Promise<void> {
  for (const [name, node] of tree) {
    const p = path.join(root, name);
    switch (node.kind) {
      case 'file':
        await writeFileNode(p, node);
        break;
      case 'symlink':
        await fsp.symlink(node.target, p);
        await fsp.lutimes(p, new Date(node.mtimeMs), new Date(node.mtimeMs));
        break;
      case 'dir':
        await fsp.mkdir(p, { mode: 0o700 });
        await writeTree(p, node.children);
        await fsp.chmod(p, node.mode);
        await fsp.utimes(p, new Date(node.mtimeMs), new Date(node.mtimeMs));
        break;
    }
  }
}

/** Writes one file with its content, mode and mtime. */
export async function writeFileNode(p: string, node: FileNode): Promise<void> {
  await fsp.writeFile(p, contentBytes(node.size, node.seed), { mode: 0o600, flag: 'wx' });
  await fsp.chmod(p, node.mode);
  await fsp.utimes(p, new Date(node.mtimeMs), new Date(node.mtimeMs));
}

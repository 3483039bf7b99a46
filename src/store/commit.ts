/**
 * Commit objects and ref names. A commit names the root of a namespace tree,
 * its parents, a time and a message; it is stored as canonical JSON in the
 * chunk store, so its hash covers everything it says.
 */
import { TongbuError } from '../core/errors.js';
import { isContentHash, type ContentHash } from '../core/hash.js';

export interface Commit {
  readonly root: ContentHash;
  readonly parents: readonly ContentHash[];
  readonly timeMs: number;
  readonly message: string;
  /** Number of entries in the tree. */
  readonly entries: number;
}

export function encodeCommit(c: Commit): Buffer {
  return Buffer.from(
    JSON.stringify({
      t: 'commit',
      root: c.root,
      parents: c.parents,
      timeMs: c.timeMs,
      message: c.message,
      entries: c.entries,
    }),
  );
}

export function decodeCommit(bytes: Uint8Array, hash: string): Commit {
  let v: Record<string, unknown>;
  try {
    v = JSON.parse(Buffer.from(bytes).toString('utf8')) as Record<string, unknown>;
  } catch {
    v = {};
  }
  const root = v['root'];
  const parents = v['parents'];
  if (
    v['t'] !== 'commit' ||
    typeof root !== 'string' ||
    !isContentHash(root) ||
    !Array.isArray(parents) ||
    !parents.every((p) => typeof p === 'string' && isContentHash(p))
  ) {
    throw new TongbuError('NOT_FOUND', `${hash} is not a commit`, { data: { hash } });
  }
  return {
    root,
    parents,
    timeMs: Number(v['timeMs']),
    message: typeof v['message'] === 'string' ? v['message'] : '',
    entries: Number(v['entries']),
  };
}

const NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/;

/** A namespace name: 1–128 of [A-Za-z0-9._-], starting with a letter or digit. */
export function validateNamespace(name: string): string {
  if (!NAME.test(name)) {
    throw new TongbuError(
      'BAD_ARGUMENT',
      `invalid namespace ${JSON.stringify(name)}: use 1-128 letters, digits, '.', '_' or '-'`,
      { data: { namespace: name } },
    );
  }
  return name;
}

/** A tag or branch name, same alphabet as namespaces. */
export function validateRefName(name: string): string {
  if (!NAME.test(name)) {
    throw new TongbuError(
      'BAD_ARGUMENT',
      `invalid ref name ${JSON.stringify(name)}: use 1-128 letters, digits, '.', '_' or '-'`,
      { data: { ref: name } },
    );
  }
  return name;
}

export const MAIN_REF = 'heads/main';

/** `heads/x` and `tags/x` as given; a bare name is tried as a tag, then a branch. */
export function refCandidates(spec: string): string[] {
  if (spec.startsWith('heads/') || spec.startsWith('tags/')) {
    validateRefName(spec.slice(spec.indexOf('/') + 1));
    return [spec];
  }
  validateRefName(spec);
  return [`tags/${spec}`, `heads/${spec}`];
}

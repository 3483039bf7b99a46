/**
 * Keys name entries: relative POSIX paths, kept exactly as the endpoint gave
 * them. An NFD name stays NFD; a tab or a backslash is just a character.
 * Validation refuses what could escape a root or is ambiguous.
 */
import { TongbuError } from './errors.js';

export type Key = string;

/** Why `key` is not a valid key, or undefined when it is. */
export function keyProblem(key: string): string | undefined {
  if (key.length === 0) return 'empty key';
  if (key.includes('\0')) return 'contains a NUL character';
  if (key.startsWith('/')) return 'is an absolute path';
  for (const segment of key.split('/')) {
    if (segment === '') return 'has an empty path segment';
    if (segment === '.' || segment === '..') return `has a '${segment}' segment`;
  }
  if (!isWellFormed(key)) return 'contains an unpaired surrogate';
  return undefined;
}

function isWellFormed(s: string): boolean {
  // String.prototype.isWellFormed is in Node 20.
  return (s as string & { isWellFormed(): boolean }).isWellFormed();
}

/** Throws BAD_KEY naming the key unless it is valid. */
export function validateKey(key: string): Key {
  const problem = keyProblem(key);
  if (problem !== undefined) {
    throw new TongbuError('BAD_KEY', `invalid key ${quoteKey(key)}: ${problem}`, {
      data: { key },
    });
  }
  return key;
}

/** Joins a parent key and a child name ('' is the root). */
export function joinKey(parent: Key, name: string): Key {
  return parent === '' ? name : `${parent}/${name}`;
}

export function parentKey(key: Key): Key {
  const i = key.lastIndexOf('/');
  return i < 0 ? '' : key.slice(0, i);
}

export function baseName(key: Key): string {
  return key.slice(key.lastIndexOf('/') + 1);
}

/** A key quoted for messages: control characters and invalid bytes escaped. */
export function quoteKey(key: string): string {
  return JSON.stringify(key);
}

/** A raw file name quoted for messages, invalid UTF-8 bytes as \xNN. */
export function quoteBytes(name: Uint8Array): string {
  let out = '';
  const decoder = new TextDecoder('utf-8', { fatal: true });
  let i = 0;
  while (i < name.length) {
    let end = i + 1;
    let decoded: string | undefined;
    for (; end <= Math.min(name.length, i + 4); end++) {
      try {
        decoded = decoder.decode(name.subarray(i, end));
        break;
      } catch {
        decoded = undefined;
      }
    }
    if (decoded === undefined) {
      out += `\\x${name[i]!.toString(16).padStart(2, '0')}`;
      i += 1;
    } else {
      out += decoded;
      i = end;
    }
  }
  return JSON.stringify(out).replaceAll('\\\\x', '\\x');
}

/** Strict UTF-8 decoding of a raw name, or undefined when it is not UTF-8. */
export function decodeName(name: Uint8Array): string | undefined {
  try {
    return new TextDecoder('utf-8', { fatal: true }).decode(name);
  } catch {
    return undefined;
  }
}

export type NameFolding = 'none' | 'nfc' | 'nfd' | 'nfc-casefold';

function fold(key: Key, folding: NameFolding): string {
  switch (folding) {
    case 'none':
      return key;
    case 'nfc':
      return key.normalize('NFC');
    case 'nfd':
      return key.normalize('NFD');
    case 'nfc-casefold':
      return key.normalize('NFC').toLowerCase();
  }
}

/**
 * Groups of distinct keys that one destination would store under the same
 * name (a normalizing or case-insensitive filesystem). Each group has two or
 * more keys.
 */
export function findCollisions(keys: Iterable<Key>, folding: NameFolding): Key[][] {
  if (folding === 'none') return [];
  const seen = new Map<string, Key[]>();
  for (const key of keys) {
    const folded = fold(key, folding);
    const group = seen.get(folded);
    if (group) group.push(key);
    else seen.set(folded, [key]);
  }
  return [...seen.values()].filter((g) => g.length > 1);
}

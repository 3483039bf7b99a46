import * as fs from 'node:fs';
import * as path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { TongbuError } from '../core/errors.js';
import { storeAddress } from '../core/hash.js';
import { makeTempDir, removeTempDirs } from '../test-support/cli.js';
import { openNodeData } from './node-data.js';

afterAll(removeTempDirs);

describe('a node data directory', () => {
  it('is marked with its format and reopens; a chunk put is read back by its blake3 address', async () => {
    const dir = await makeTempDir();
    const data = await openNodeData(dir, { bootstrap: false });
    const bytes = Buffer.from('a chunk');
    const hash = await data.store.chunks.put(bytes);
    expect(hash).toBe(storeAddress(bytes));
    expect(hash.startsWith('blake3:')).toBe(true);
    data.store.chunks.close();
    await data.store.catalog.close();
    expect(fs.readFileSync(path.join(dir, 'format'), 'utf8')).toBe('tongbu-store 2 blake3\n');
    const again = await openNodeData(dir, { bootstrap: false });
    expect(Buffer.from(await again.store.chunks.get(hash)).equals(bytes)).toBe(true);
    again.store.chunks.close();
    await again.store.catalog.close();
  });

  it('refuses a directory an older tongbu wrote (packs/, no format) and changes nothing in it', async () => {
    const dir = await makeTempDir();
    fs.mkdirSync(path.join(dir, 'packs'));
    const error = await openNodeData(dir, { bootstrap: true }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(TongbuError);
    expect((error as TongbuError).code).toBe('SCHEMA_MISMATCH');
    expect((error as TongbuError).message).toContain('tongbu-store 1 sha256');
    expect(fs.readdirSync(dir)).toEqual(['packs']);
  });
});

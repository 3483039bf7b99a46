/**
 * A table seen as a tree of files, so the file sync engine can snapshot it
 * into a tongbu store (or a directory): `schema.json` holds the schema, and
 * each row is `rows/<key>.json`, its canonical values as JSON. Rows carry
 * their content hash, so an unchanged row is never sent again and a
 * snapshot commit costs what changed. Read-only: restoring a snapshot into a
 * table is not built yet.
 */
import { TongbuError } from '../../core/errors.js';
import { hashBytes, type ContentHash } from '../../core/hash.js';
import type { Key } from '../../core/key.js';
import type {
  Endpoint,
  EndpointCapabilities,
  Entry,
  HashOptions,
  ListOptions,
} from '../endpoint.js';
import { keyText, rowKey, valueText, type Row } from './canonical.js';
import { openTable } from './open-table.js';
import type { TableEndpoint } from './table-endpoint.js';
import { keyIndexes, type TableSchema } from './table-schema.js';

const CAPABILITIES: EndpointCapabilities = Object.freeze({
  listedHashes: ['sha256'] as const,
  mtimePrecisionMs: 0,
  symlinks: false,
  emptyDirs: false,
  modes: false,
  nameFolding: 'none',
  localPath: false,
  localCopy: false,
  atomicCommit: false,
  dedupWrites: false,
});

/** A row as JSON: column name → canonical text (or null), in column order. */
export function rowJson(schema: TableSchema, row: Row): string {
  const obj: Record<string, string | null> = {};
  schema.columns.forEach((c, i) => {
    const v = row[i]!;
    obj[c.name] = v === null ? null : valueText(c.type, v);
  });
  return `${JSON.stringify(obj)}\n`;
}

/** The file name of a row: its key text, escaped so it is one path segment. */
export function rowFileName(schema: TableSchema, row: Row): string {
  const text = keyText(schema, rowKey(row, keyIndexes(schema)));
  return `rows/${encodeURIComponent(text).replace(/\./g, '%2E')}.json`;
}

export class TableSnapshotEndpoint implements Endpoint {
  readonly capabilities = CAPABILITIES;
  private table: TableEndpoint | undefined;
  private files = new Map<Key, { entry: Entry; bytes: Buffer }>();

  constructor(readonly url: string) {}

  async open(options: { readonly create: boolean }): Promise<void> {
    if (options.create) {
      throw new TongbuError(
        'BAD_ARGUMENT',
        `${this.url}: a table can be snapshotted from, not written to as files`,
      );
    }
    this.table = await openTable(this.url);
    await this.table.open();
    if (this.table.schema === undefined) {
      throw new TongbuError(
        'SOURCE_NOT_FOUND',
        `${this.table.url}: table "${this.table.table}" does not exist`,
      );
    }
  }

  async *list(options: ListOptions = {}): AsyncIterable<readonly Entry[]> {
    const table = this.table!;
    const schema = table.schema!;
    this.files.clear();
    this.add('schema.json', Buffer.from(`${JSON.stringify(schema, null, 2)}\n`));
    yield [
      { key: 'rows', kind: 'dir', size: 0, mtimeMs: 0, mode: 0 },
      this.files.get('schema.json')!.entry,
    ];
    for await (const batch of table.scan({
      batchRows: 5000,
      ...(options.signal ? { signal: options.signal } : {}),
    })) {
      yield batch.map((row) =>
        this.add(rowFileName(schema, row), Buffer.from(rowJson(schema, row))),
      );
    }
  }

  private add(key: Key, bytes: Buffer): Entry {
    const entry: Entry = {
      key,
      kind: 'file',
      size: bytes.length,
      mtimeMs: 0,
      mode: 0,
      hash: hashBytes(bytes),
    };
    this.files.set(key, { entry, bytes });
    return entry;
  }

  async stat(key: Key): Promise<Entry | undefined> {
    return Promise.resolve(this.files.get(key)?.entry);
  }

  async *read(key: Key): AsyncIterable<Uint8Array> {
    const f = this.files.get(key);
    if (f === undefined) throw new TongbuError('NOT_FOUND', `${this.url}: no row file ${key}`);
    yield await Promise.resolve(f.bytes);
  }

  async hash(keys: readonly Key[], options: HashOptions = {}): Promise<ContentHash[]> {
    return Promise.resolve(
      keys.map((k) => {
        const f = this.files.get(k);
        if (f === undefined) throw new TongbuError('NOT_FOUND', `${this.url}: no row file ${k}`);
        const algorithm = options.algorithm ?? 'sha256';
        return algorithm === 'sha256' ? f.entry.hash! : hashBytes(f.bytes, algorithm);
      }),
    );
  }

  private readOnly(): never {
    throw new TongbuError('BAD_ARGUMENT', `${this.url}: a table snapshot source is read-only`);
  }

  write(): never {
    return this.readOnly();
  }
  mkdir(): never {
    return this.readOnly();
  }
  symlink(): never {
    return this.readOnly();
  }
  setMeta(): never {
    return this.readOnly();
  }
  remove(): never {
    return this.readOnly();
  }
  async cleanup(): Promise<number> {
    return Promise.resolve(0);
  }
  async flush(): Promise<void> {
    return Promise.resolve();
  }
  async close(): Promise<void> {
    await this.table?.close();
  }
}

/**
 * The engine-independent shape of a table: columns with canonical types and
 * the key. Each SQL endpoint maps its native types to these and back (the
 * mapping is documented in docs/TABLES.md); the sync engine only ever sees
 * canonical types.
 */
import { TongbuError } from '../../core/errors.js';

/**
 * Canonical column types. Each has one JS value form (see canonical.ts):
 * int → number (32-bit range), bigint → bigint, numeric → decimal string,
 * float → number (double), text → string, blob → Uint8Array, bool → boolean,
 * timestamp/timestamptz/date → ISO-like strings, json → canonical JSON
 * string, uuid → lowercase string.
 */
export const COLUMN_TYPES = [
  'int',
  'bigint',
  'numeric',
  'float',
  'text',
  'blob',
  'bool',
  'timestamp',
  'timestamptz',
  'date',
  'json',
  'uuid',
] as const;

export type ColumnType = (typeof COLUMN_TYPES)[number];

export interface Column {
  readonly name: string;
  readonly type: ColumnType;
  readonly nullable: boolean;
  /** numeric: total digits; text: maximum length in characters (varchar). */
  readonly precision?: number;
  /** numeric: digits after the point. */
  readonly scale?: number;
  /** The engine's own type name as read, for messages (`character varying(32)`). */
  readonly nativeType?: string;
}

export interface TableSchema {
  /** Columns in table order. */
  readonly columns: readonly Column[];
  /** Names of the key columns, in key order (the primary key, or `key=`). */
  readonly key: readonly string[];
}

/** Types a value of `from` can be written into without loss. */
const WIDENS_TO: Record<ColumnType, readonly ColumnType[]> = {
  int: ['int', 'bigint', 'numeric', 'float'],
  bigint: ['bigint', 'numeric'],
  numeric: ['numeric'],
  float: ['float'],
  text: ['text', 'json'],
  blob: ['blob'],
  bool: ['bool', 'int', 'bigint'],
  timestamp: ['timestamp'],
  timestamptz: ['timestamptz', 'timestamp'],
  date: ['date', 'timestamp'],
  json: ['json', 'text'],
  uuid: ['uuid', 'text'],
};

export function columnIndex(schema: TableSchema, name: string): number {
  return schema.columns.findIndex((c) => c.name === name);
}

/** Positions of the key columns in `schema.columns`. */
export function keyIndexes(schema: TableSchema): number[] {
  return schema.key.map((name) => {
    const i = columnIndex(schema, name);
    if (i < 0)
      throw new TongbuError('BAD_ARGUMENT', `key column "${name}" is not a column of the table`);
    return i;
  });
}

/**
 * Checks that rows of `source` can be written into `dest`: every source
 * column exists in the destination with a type it widens to, the keys are
 * the same columns, and destination-only columns accept NULL. Throws
 * SCHEMA_MISMATCH naming every problem.
 */
export function checkWritable(
  source: TableSchema,
  dest: TableSchema,
  what: { source: string; dest: string },
): void {
  const problems: string[] = [];
  for (const col of source.columns) {
    const other = dest.columns.find((c) => c.name === col.name);
    if (other === undefined) {
      problems.push(`column "${col.name}" is missing in the destination`);
    } else if (!WIDENS_TO[col.type].includes(other.type)) {
      problems.push(
        `column "${col.name}" is ${describe(col)} in the source but ${describe(other)} in the destination`,
      );
    }
  }
  for (const col of dest.columns) {
    if (!col.nullable && !source.columns.some((c) => c.name === col.name)) {
      problems.push(
        `destination column "${col.name}" is NOT NULL and the source has no such column`,
      );
    }
  }
  if (source.key.join('\u0000') !== dest.key.join('\u0000')) {
    problems.push(
      `keys differ: (${source.key.join(', ')}) in the source, (${dest.key.join(', ')}) in the destination`,
    );
  }
  if (problems.length > 0) {
    throw new TongbuError(
      'SCHEMA_MISMATCH',
      `${what.source} → ${what.dest}: ${problems.join('; ')}`,
      {
        data: { problems },
      },
    );
  }
}

/**
 * The schema two tables are compared on: the source's columns that the
 * other side has too, in source order, with the source key.
 */
export function commonSchema(a: TableSchema, b: TableSchema): TableSchema {
  return { columns: a.columns.filter((c) => b.columns.some((o) => o.name === c.name)), key: a.key };
}

/** The same columns, in the order of `names`. */
export function projectSchema(schema: TableSchema, names: readonly string[]): TableSchema {
  const columns = names.map((n) => {
    const c = schema.columns.find((col) => col.name === n);
    if (c === undefined) throw new TongbuError('SCHEMA_MISMATCH', `no column "${n}"`);
    return c;
  });
  return { columns, key: schema.key };
}

function describe(col: Column): string {
  return col.nativeType === undefined ? col.type : `${col.type} (${col.nativeType})`;
}

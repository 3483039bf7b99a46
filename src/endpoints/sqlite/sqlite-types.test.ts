import Database from 'better-sqlite3';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { floatText } from '../table/canonical.js';
import { COLUMN_TYPES, type Column } from '../table/table-schema.js';
import { canonicalType, createTableSql, declaredType } from './sqlite-types.js';
import { fastFloatText } from './sqlite-values.js';

describe('SQLite declared types', () => {
  it.each([
    ['INTEGER', { type: 'bigint' }],
    ['bigint', { type: 'bigint' }],
    ['INT8', { type: 'bigint' }],
    ['UNSIGNED BIG INT', { type: 'bigint' }],
    ['int', { type: 'int' }],
    ['SMALLINT', { type: 'int' }],
    ['MEDIUMINT', { type: 'int' }],
    ['TINYINT(1)', { type: 'int' }],
    ['INT2', { type: 'int' }],
    ['INT4', { type: 'int' }],
    ['NUMERIC', { type: 'numeric' }],
    ['numeric(10, 2)', { type: 'numeric', precision: 10, scale: 2 }],
    ['DECIMAL(12)', { type: 'numeric', precision: 12, scale: 0 }],
    ['DECIMAL_TEXT(18,4)', { type: 'numeric', precision: 18, scale: 4 }],
    ['REAL', { type: 'float' }],
    ['DOUBLE', { type: 'float' }],
    ['double  precision', { type: 'float' }],
    ['FLOAT', { type: 'float' }],
    ['TEXT', { type: 'text' }],
    ['VARCHAR(255)', { type: 'text', precision: 255 }],
    ['CHAR(3)', { type: 'text', precision: 3 }],
    ['NVARCHAR(10)', { type: 'text', precision: 10 }],
    ['CLOB', { type: 'text' }],
    ['', { type: 'text' }],
    ['STRING', { type: 'text' }],
    ['BLOB', { type: 'blob' }],
    ['BOOLEAN', { type: 'bool' }],
    ['bool', { type: 'bool' }],
    ['DATETIME', { type: 'timestamp' }],
    ['TIMESTAMP', { type: 'timestamp' }],
    ['TIMESTAMPTZ', { type: 'timestamptz' }],
    ['timestamp with time zone', { type: 'timestamptz' }],
    ['DATE', { type: 'date' }],
    ['JSON', { type: 'json' }],
    ['JSONB', { type: 'json' }],
    ['UUID', { type: 'uuid' }],
  ])('%s reads as %o', (declared, expected) => {
    expect(canonicalType(declared)).toEqual(expected);
  });

  it('every canonical type maps to a declared type that reads back the same', () => {
    for (const type of COLUMN_TYPES) {
      const col: Column = {
        name: 'c',
        type,
        nullable: true,
        ...(type === 'numeric'
          ? { precision: 20, scale: 6 }
          : type === 'text'
            ? { precision: 40 }
            : {}),
      };
      const back = canonicalType(declaredType(col));
      expect(back).toEqual({
        type,
        ...(col.precision === undefined ? {} : { precision: col.precision }),
        ...(col.scale === undefined ? {} : { scale: col.scale }),
      });
    }
  });

  it('declares numeric with TEXT affinity, so decimals stay exact text', () => {
    const db = new Database(':memory:');
    db.exec(
      createTableSql('t', {
        key: ['id'],
        columns: [
          { name: 'id', type: 'bigint', nullable: false },
          { name: 'd', type: 'numeric', nullable: true, precision: 30, scale: 10 },
        ],
      }),
    );
    db.prepare('INSERT INTO t VALUES (?, ?)').run(1, '12345678901234567890.1234567891');
    expect(db.prepare('SELECT d, typeof(d) AS t FROM t').get()).toEqual({
      d: '12345678901234567890.1234567891',
      t: 'text',
    });
    db.close();
  });
});

describe('fastFloatText', () => {
  it('equals floatText for any double', () => {
    fc.assert(
      fc.property(fc.double(), (x) => {
        expect(fastFloatText(x)).toBe(floatText(x));
      }),
      { numRuns: 20_000 },
    );
    for (const x of [
      1e-4,
      9.9999e-5,
      1e15,
      999999999999999.9,
      -1e15,
      1e-4 - 1e-20,
      0.1,
      -0,
      5e-324,
      1e21,
      123456789012345.6,
    ]) {
      expect(fastFloatText(x)).toBe(floatText(x));
    }
  });
});

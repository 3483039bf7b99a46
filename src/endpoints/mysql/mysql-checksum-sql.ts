/**
 * SQL for checksums. `rowHashSql` builds, per row, the exact string of
 * canonical.ts `rowHashText` (per column `<utf8 length>:<canonical text>`
 * or `~` for NULL) and hashes it like `rowHash`: the first 15 hex digits of
 * MD5 as an unsigned integer. Summing those in SQL gives an exact DECIMAL.
 *
 * Canonical text per type, in MariaDB terms:
 * - int, bigint, numeric scale 0: the number as MariaDB prints it.
 * - numeric scale > 0: trailing fraction zeros and a bare point trimmed
 *   (MariaDB never stores a negative zero DECIMAL).
 * - float: MariaDB prints doubles with the shortest round-trip digits,
 *   like PostgreSQL, and in the same fixed layout for 1e-4 <= |x| < 1e15;
 *   outside that range the digits are re-laid out as `d.ddde+XX`.
 *   FLOAT columns are widened to DOUBLE first (exact).
 * - text: utf8mb4 bytes (other charsets converted); blob: lower-case hex;
 *   bool: `t`/`f`; datetime/timestamp: fraction zeros trimmed (+ `+00`);
 *   date and uuid: as printed.
 * - json has no SQL form equal to canonicalJson: `canonicalPiece` returns
 *   undefined and the caller hashes those rows in JS.
 */
import type { Column } from '../table/table-schema.js';
import { quoteId, type Flavor, type NativeColumn } from './mysql-types.js';

/** `<length>:<text>` of a non-null text expression, `~` when it is NULL. */
function lengthPrefixed(t: string): string {
  return `COALESCE(CONCAT(OCTET_LENGTH(${t}),':',${t}),'~')`;
}

function trimFraction(t: string): string {
  return `TRIM(TRAILING '.' FROM TRIM(TRAILING '0' FROM ${t}))`;
}

const UTF8_CHARSETS = new Set(['utf8mb4', 'utf8mb3', 'utf8', 'ascii']);

/** The row-hash-text piece of one column, or undefined when SQL cannot make it. */
export function canonicalPiece(col: Column, n: NativeColumn): string | undefined {
  const id = quoteId(n.name);
  switch (col.type) {
    case 'int':
    case 'bigint':
      return lengthPrefixed(id);
    case 'numeric':
      return (col.scale ?? 0) > 0 ? lengthPrefixed(trimFraction(id)) : lengthPrefixed(id);
    case 'float':
      return floatPiece(n.dataType === 'float' ? `CAST(${id} AS DOUBLE)` : id);
    case 'bool':
      return `CASE WHEN ${id} IS NULL THEN '~' WHEN ${id} <> 0 THEN '1:t' ELSE '1:f' END`;
    case 'blob':
      return `COALESCE(CONCAT(OCTET_LENGTH(${id})*2,':',LOWER(HEX(${id}))),'~')`;
    case 'date':
      return `COALESCE(CONCAT('10:',${id}),'~')`;
    case 'uuid':
      return `COALESCE(CONCAT('36:',LOWER(${id})),'~')`;
    case 'timestamp':
    case 'timestamptz': {
      const tz = col.type === 'timestamptz' ? "'+00'" : "''";
      const extra = col.type === 'timestamptz' ? 3 : 0;
      const fsp = /\((\d)\)/.exec(n.columnType)?.[1] ?? '0';
      if (fsp === '0') return `COALESCE(CONCAT('${19 + extra}:',${id},${tz}),'~')`;
      const t = trimFraction(id);
      return `COALESCE(CONCAT(OCTET_LENGTH(${t})+${extra},':',${t},${tz}),'~')`;
    }
    case 'text': {
      if (n.dataType === 'inet4' || n.dataType === 'inet6')
        return lengthPrefixed(`CAST(${id} AS CHAR)`);
      if (n.charset !== null && UTF8_CHARSETS.has(n.charset)) return lengthPrefixed(id);
      return lengthPrefixed(`CONVERT(${id} USING utf8mb4)`);
    }
    case 'json':
      return undefined;
  }
}

/**
 * floatText of a DOUBLE expression `d`, as `<length>:<text>` or `~`.
 * The common range costs one comparison and two prints; the rest builds
 * the exponent form from the printed digits.
 */
function floatPiece(d: string): string {
  const s = `CAST(${d} AS CHAR)`;
  const neg = `LEFT(${s},1)='-'`;
  const a = `IF(${neg},SUBSTRING(${s},2),${s})`;
  const sign = `IF(${neg},'-','')`;
  const expText = (e: string) => `'e',IF(${e}<0,'-','+'),IF(ABS(${e})<10,'0',''),ABS(${e})`;
  // MariaDB's own exponent form: mantissa `d[.ddd]`, exponent without sign or padding.
  const n = `CAST(SUBSTRING_INDEX(${a},'e',-1) AS SIGNED)`;
  const fromE = `CONCAT(${sign},SUBSTRING_INDEX(${a},'e',1),${expText(n)})`;
  // Fixed form of a small value (0.0000ddd): digits after the zeros.
  const f = `SUBSTRING(${a},3)`;
  const dSmall = `TRIM(LEADING '0' FROM ${f})`;
  const eSmall = `(OCTET_LENGTH(${dSmall})-OCTET_LENGTH(${f})-1)`;
  // Fixed form of a large value (ddddddddddddddd[.dd]).
  const dLarge = `TRIM(TRAILING '0' FROM REPLACE(${a},'.',''))`;
  const eLarge = `(OCTET_LENGTH(SUBSTRING_INDEX(${a},'.',1))-1)`;
  const sci = (digits: string, e: string) =>
    `CONCAT(${sign},LEFT(${digits},1),IF(OCTET_LENGTH(${digits})>1,CONCAT('.',SUBSTRING(${digits},2)),''),${expText(e)})`;
  const slow = `CASE WHEN LOCATE('e',${s})>0 THEN ${fromE} WHEN ${a} LIKE '0.%' THEN ${sci(dSmall, eSmall)} ELSE ${sci(dLarge, eLarge)} END`;
  return (
    `CASE WHEN ${d} IS NULL THEN '~' ` +
    `WHEN ${d} = 0 OR (ABS(${d}) >= 1e-4 AND ABS(${d}) < 1e15) THEN CONCAT(OCTET_LENGTH(${s}),':',${s}) ` +
    `ELSE CONCAT(OCTET_LENGTH(${slow}),':',${slow}) END`
  );
}

/** `SUM(rowHash)` over the selected rows, or undefined when a column needs JS. */
export function rowHashSumSql(
  columns: readonly Column[],
  natives: readonly NativeColumn[],
): string | undefined {
  const pieces: string[] = [];
  for (let i = 0; i < columns.length; i++) {
    const p = canonicalPiece(columns[i]!, natives[i]!);
    if (p === undefined) return undefined;
    pieces.push(p);
  }
  const text =
    pieces.length === 0 ? "''" : pieces.length === 1 ? pieces[0]! : `CONCAT(${pieces.join(',')})`;
  return `SUM(CAST(CONV(LEFT(MD5(${text}),15),16,10) AS UNSIGNED))`;
}

/**
 * The native checksum: SUM(CRC32) of the native values joined by a
 * separator, led by a per-column NULL flag (or byte length, for
 * variable-length columns) so NULLs, empty strings and separators inside
 * values cannot trade places.
 */
export function nativeSumSql(
  columns: readonly Column[],
  natives: readonly NativeColumn[],
  flavor: Flavor,
  version: number,
): string {
  const meta: string[] = [];
  const values: string[] = [];
  for (let i = 0; i < columns.length; i++) {
    const col = columns[i]!;
    const id = quoteId(natives[i]!.name);
    // JSON compares by value: normalized where the server can (MariaDB 10.7+).
    const json = col.type === 'json' && flavor === 'mariadb' && version >= 100700;
    const value =
      col.type === 'float' ? `CAST(${id} AS DOUBLE)` : json ? `JSON_NORMALIZE(${id})` : id;
    const variable = col.type === 'text' || col.type === 'blob' || col.type === 'json';
    meta.push(variable ? `IFNULL(OCTET_LENGTH(${value}),-1)` : `ISNULL(${id})`);
    values.push(value);
  }
  if (columns.length === 0) return 'SUM(0)';
  return `SUM(CRC32(CONCAT_WS('|',CONCAT_WS(',',${meta.join(',')}),${values.join(',')})))`;
}

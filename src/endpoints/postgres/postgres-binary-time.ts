/**
 * Canonical date and time text to PostgreSQL's binary form: seconds since
 * 2000-01-01 and microseconds, parsed by hand (no regex, no Date per value)
 * for the binary COPY encoder.
 */

/** Days from 1970-01-01 to 2000-01-01 (PostgreSQL's epoch). */
const PG_EPOCH_DAYS = 10_957;

/** The microseconds `parseTimestamp` found. */
export const parsed = new Float64Array(1);

/**
 * Parses `YYYY-MM-DD[( |T)HH:MM:SS[.f…]][offset]` (years 0001–9999, the
 * proleptic Gregorian calendar; offset `±HH[:MM[:SS]]` or `Z`) to seconds
 * since 2000-01-01 00:00:00 (UTC when `zoned`, the offset ignored
 * otherwise) and the microseconds in `parsed[0]`; NaN when the text is not
 * such a value. Hours may be 24 (at 24:00:00) and seconds 60, which roll
 * over as timestamp_in rolls them. More than six fraction digits round
 * half up. `dateOnly` takes just `YYYY-MM-DD`.
 */
export function parseTimestamp(s: string, dateOnly: boolean, zoned: boolean): number {
  const n = s.length;
  if (n < 10 || s.charCodeAt(4) !== 45 || s.charCodeAt(7) !== 45) return NaN;
  const y = num2(s, 0) * 100 + num2(s, 2);
  const m = num2(s, 5);
  const d = num2(s, 8);
  if (y < 1 || m < 1 || m > 12 || d < 1 || d > daysInMonth(y, m)) return NaN;
  const days = daysFromCivil(y, m, d) - PG_EPOCH_DAYS;
  parsed[0] = 0;
  if (n === 10) return days * 86_400;
  if (dateOnly) return NaN;
  const sep = s.charCodeAt(10);
  if ((sep !== 32 && sep !== 84) || n < 19 || s.charCodeAt(13) !== 58 || s.charCodeAt(16) !== 58) {
    return NaN;
  }
  const hh = num2(s, 11);
  const mi = num2(s, 14);
  const ss = num2(s, 17);
  let i = 19;
  let micros = 0;
  if (i < n && s.charCodeAt(i) === 46) {
    i++;
    let digits = 0;
    let roundUp = false;
    for (; i < n; i++) {
      const dg = s.charCodeAt(i) - 48;
      if (dg < 0 || dg > 9) break;
      if (digits < 6) micros = micros * 10 + dg;
      else if (digits === 6) roundUp = dg >= 5;
      digits++;
    }
    if (digits === 0) return NaN;
    for (let k = digits; k < 6; k++) micros *= 10;
    if (roundUp) micros++;
  }
  if (hh < 0 || mi < 0 || ss < 0 || mi > 59 || ss > 60) return NaN;
  if (hh > 24 || (hh === 24 && (mi > 0 || ss > 0 || micros > 0))) return NaN;
  let secs = days * 86_400 + hh * 3600 + mi * 60 + ss;
  if (micros >= 1_000_000) {
    secs++;
    micros -= 1_000_000;
  }
  parsed[0] = micros;
  if (i === n) return secs;
  const offset = parseOffset(s, i);
  if (Number.isNaN(offset)) return NaN;
  return zoned ? secs - offset : secs;
}

/** The UTC offset in seconds at `s[i]` to the end: `Z`, `±HH[[:]MM[[:]SS]]`; NaN if not one. */
function parseOffset(s: string, i: number): number {
  const n = s.length;
  const sign = s.charCodeAt(i);
  if (sign === 90) return i + 1 === n ? 0 : NaN; // Z
  if ((sign !== 43 && sign !== 45) || i + 3 > n) return NaN;
  const h = num2(s, i + 1);
  let mi = 0;
  let ss = 0;
  let j = i + 3;
  if (j < n) {
    if (s.charCodeAt(j) === 58) j++;
    mi = num2(s, j);
    j += 2;
    if (j < n) {
      if (s.charCodeAt(j) === 58) j++;
      ss = num2(s, j);
      j += 2;
    }
  }
  if (j !== n || h < 0 || h > 15 || mi < 0 || mi > 59 || ss < 0 || ss > 59) return NaN;
  const off = h * 3600 + mi * 60 + ss;
  return sign === 45 ? -off : off;
}

/** Two decimal digits at `i`, or a negative number. */
function num2(s: string, i: number): number {
  const a = s.charCodeAt(i) - 48;
  const b = s.charCodeAt(i + 1) - 48;
  return a >= 0 && a <= 9 && b >= 0 && b <= 9 ? a * 10 + b : -10_000;
}

function daysInMonth(y: number, m: number): number {
  if (m === 2) return y % 4 === 0 && (y % 100 !== 0 || y % 400 === 0) ? 29 : 28;
  return m === 4 || m === 6 || m === 9 || m === 11 ? 30 : 31;
}

/** Days since 1970-01-01 of a proleptic Gregorian date, year >= 1 (H. Hinnant's days_from_civil). */
function daysFromCivil(y0: number, m: number, d: number): number {
  const y = m <= 2 ? y0 - 1 : y0;
  const era = Math.floor(y / 400);
  const yoe = y - era * 400;
  const doy = Math.floor((153 * (m > 2 ? m - 3 : m + 9) + 2) / 5) + d - 1;
  const doe = yoe * 365 + Math.floor(yoe / 4) - Math.floor(yoe / 100) + doy;
  return era * 146_097 + doe - 719_468;
}

// ---------------------------------------------------------------- other types

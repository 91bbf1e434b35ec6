// date-time per RFC 3339 section 5.6: full-date "T" full-time, with a mandatory offset.
// "T" and "Z" may be lower case (section 5.6, note); a space separator is not accepted.
// The year has exactly four digits, so every field but the fraction sits at a fixed index, and
// the offset (when not "Z") is the last six characters.
const RFC3339 = /^\d{4}-\d{2}-\d{2}[Tt]\d{2}:\d{2}:\d{2}(?:\.\d+)?(?:[Zz]|[+-]\d{2}:\d{2})$/;

const DAYS_IN_MONTH = [31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31];
const SECONDS_PER_DAY = 86_400;

function isLeapYear(year: number): boolean {
  return (year % 4 === 0 && year % 100 !== 0) || year % 400 === 0;
}

/** The two ASCII digits at `index` as a number. */
function twoDigits(text: string, index: number): number {
  return (text.charCodeAt(index) - 48) * 10 + (text.charCodeAt(index + 1) - 48);
}

/** Days from 1970-01-01 to a proleptic Gregorian date (H. Hinnant's days_from_civil). */
function daysFromCivil(year: number, month: number, day: number): number {
  const y = month <= 2 ? year - 1 : year;
  const era = Math.floor(y / 400);
  const yearOfEra = y - era * 400;
  const dayOfYear = Math.floor((153 * (month > 2 ? month - 3 : month + 9) + 2) / 5) + day - 1;
  const dayOfEra = yearOfEra * 365 + Math.floor(yearOfEra / 4) - Math.floor(yearOfEra / 100) + dayOfYear;
  return era * 146_097 + dayOfEra - 719_468;
}

/**
 * The whole Unix seconds of an RFC 3339 date-time (fractional seconds dropped, so the result is
 * the floor also before 1970), or null when the text is not a valid date-time with a time zone.
 */
export function parseRfc3339Seconds(text: string): number | null {
  if (!RFC3339.test(text)) return null;
  const year = twoDigits(text, 0) * 100 + twoDigits(text, 2);
  const month = twoDigits(text, 5);
  const day = twoDigits(text, 8);
  const hour = twoDigits(text, 11);
  const minute = twoDigits(text, 14);
  const second = twoDigits(text, 17);
  if (month < 1 || month > 12) return null;
  const monthDays = month === 2 && isLeapYear(year) ? 29 : DAYS_IN_MONTH[month - 1];
  if (day < 1 || day > monthDays) return null;
  if (hour > 23 || minute > 59 || second > 59) return null;

  let offsetMinutes = 0;
  const end = text.length;
  const zone = text.charCodeAt(end - 1);
  if (zone !== 0x5a && zone !== 0x7a) {
    const offsetHours = twoDigits(text, end - 5);
    const offsetMins = twoDigits(text, end - 2);
    if (offsetHours > 23 || offsetMins > 59) return null;
    offsetMinutes = (text.charCodeAt(end - 6) === 0x2d ? -1 : 1) * (offsetHours * 60 + offsetMins);
  }
  return daysFromCivil(year, month, day) * SECONDS_PER_DAY + hour * 3600 + minute * 60 + second - offsetMinutes * 60;
}

export function isRfc3339DateTime(text: unknown): text is string {
  return typeof text === 'string' && parseRfc3339Seconds(text) !== null;
}

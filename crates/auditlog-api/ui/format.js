// Text the page shows: counts as Coder shows them, times, and filter values.

const NUMBER = new Intl.NumberFormat('en-US');

/** "2,000+" when the capped count says there are more than the cap, else the number. */
export function formatCount(count, countCap) {
  if (countCap > 0 && count > countCap) return `${NUMBER.format(countCap)}+`;
  return NUMBER.format(count);
}

/** "1–25 of 2,000+", or "No events" for an empty result. */
export function formatRange(firstIndex, rowsShown, count, countCap) {
  if (rowsShown === 0) return firstIndex > 1 ? `No more events (of ${formatCount(count, countCap)})` : 'No events';
  return `${NUMBER.format(firstIndex)}–${NUMBER.format(firstIndex + rowsShown - 1)} of ${formatCount(count, countCap)}`;
}

export function formatNumber(value) {
  return NUMBER.format(value);
}

const pad = (value, width = 2) => String(value).padStart(width, '0');

/** `2026-03-01 14:05:09 UTC`, from an RFC 3339 time. */
export function utcText(iso) {
  const date = new Date(iso);
  return `${date.getUTCFullYear()}-${pad(date.getUTCMonth() + 1)}-${pad(date.getUTCDate())} ` +
    `${pad(date.getUTCHours())}:${pad(date.getUTCMinutes())}:${pad(date.getUTCSeconds())} UTC`;
}

/** The time in the browser's zone, `2026-03-01 15:05:09`. */
export function localText(iso) {
  const date = new Date(iso);
  return `${date.getFullYear()}-${pad(date.getMonth() + 1)}-${pad(date.getDate())} ` +
    `${pad(date.getHours())}:${pad(date.getMinutes())}:${pad(date.getSeconds())}`;
}

/** The UTC calendar day of a moment in ms, `YYYY-MM-DD` (the filter's dates are UTC days). */
export function utcDay(milliseconds) {
  const date = new Date(milliseconds);
  return `${date.getUTCFullYear()}-${pad(date.getUTCMonth() + 1)}-${pad(date.getUTCDate())}`;
}

/** A bucket width in words: "3 hours", "1 day". */
export function durationText(seconds) {
  const units = [[365 * 86400, 'year'], [7 * 86400, 'week'], [86400, 'day'], [3600, 'hour'], [60, 'minute'], [1, 'second']];
  for (const [size, name] of units) {
    if (seconds % size === 0) {
      const amount = seconds / size;
      return `${amount} ${name}${amount === 1 ? '' : 's'}`;
    }
  }
  return `${seconds} seconds`;
}

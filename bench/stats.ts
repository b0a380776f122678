/** Small statistics and table helpers for the benchmark report. */

/**
 * Median of `values`, or NaN for none. Medians, not means: on a shared, noisy machine one
 * disturbed run should not move the summary.
 */
export function median(values: readonly number[]): number {
  if (values.length === 0) return Number.NaN
  const sorted = [...values].sort((a, b) => a - b)
  const mid = Math.floor(sorted.length / 2)
  return sorted.length % 2 === 1 ? (sorted[mid] as number) : ((sorted[mid - 1] as number) + (sorted[mid] as number)) / 2
}

/**
 * Renders rows as a plain-text table with right-aligned numeric columns; also valid
 * Markdown when `markdown` is true, so the same code feeds the terminal and the docs.
 */
export function formatTable(headers: readonly string[], rows: readonly (readonly string[])[], markdown = false): string {
  const widths = headers.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)))
  const numeric = headers.map((_, i) => rows.length > 0 && rows.every((r) => /^<?[-+]?[\d.,]+(\s?%|x| ms)?$|^n\/a$|^\d+\/\d+/.test(r[i] ?? '')))
  const cell = (text: string, i: number): string => (numeric[i] === true ? text.padStart(widths[i] ?? 0) : text.padEnd(widths[i] ?? 0))
  const line = (cells: readonly string[]): string => (markdown ? `| ${cells.map(cell).join(' | ')} |` : cells.map(cell).join('  '))
  const rule = markdown
    ? `|${widths.map((w, i) => (numeric[i] === true ? `${'-'.repeat(w + 1)}:` : '-'.repeat(w + 2))).join('|')}|`
    : widths.map((w) => '-'.repeat(w)).join('  ')
  return [line(headers), rule, ...rows.map(line)].join('\n')
}

/** `12345.6` → `12,346`; NaN → `n/a`. */
export function formatInt(value: number): string {
  return Number.isFinite(value) ? Math.round(value).toLocaleString('en-US') : 'n/a'
}

/** `0.8734` → `87.3 %`; NaN → `n/a`. */
export function formatPercent(ratio: number): string {
  return Number.isFinite(ratio) ? `${(ratio * 100).toFixed(1)} %` : 'n/a'
}

/** Rotates `items` left by `by`, so each variant takes every position across rounds. */
export function rotate<T>(items: readonly T[], by: number): T[] {
  const n = items.length
  return items.map((_, i) => items[(i + by) % n] as T)
}

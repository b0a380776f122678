/**
 * The two text formats a scraper may ask for. Written here rather than through
 * prom-client's `Registry.metrics()`, which switches format per registry (not per scrape)
 * and renames counters in place when it writes OpenMetrics.
 */

export type MetricKind = 'counter' | 'gauge' | 'histogram' | 'summary' | 'untyped'

/** One series value; `metricName` is set for the `_bucket`/`_sum`/`_count` parts of a histogram. */
export interface ExposedValue {
  readonly value: number
  readonly labels: Readonly<Record<string, string | number | undefined>>
  readonly metricName?: string | undefined
  readonly exemplar?: { readonly labelSet: Readonly<Record<string, string | number>>; readonly value: number | null; readonly timestamp?: number } | null | undefined
}

/** One metric family as prom-client's `get()` returns it (counter names end in `_total`). */
export interface ExposedFamily {
  readonly name: string
  readonly help: string
  readonly type: MetricKind
  readonly values: readonly ExposedValue[]
}

export const PROMETHEUS_CONTENT_TYPE = 'text/plain; version=0.0.4; charset=utf-8'
export const OPENMETRICS_CONTENT_TYPE = 'application/openmetrics-text; version=1.0.0; charset=utf-8'

export type ExpositionFormat = 'prometheus' | 'openmetrics'

/** `openmetrics` when the Accept header lists `application/openmetrics-text` with a non-zero q; else Prometheus text 0.0.4. */
export function negotiateFormat(accept: string | undefined): ExpositionFormat {
  if (accept === undefined || !accept.includes('application/openmetrics-text')) return 'prometheus'
  for (const part of accept.split(',')) {
    const [type = '', ...params] = part.split(';').map((s) => s.trim())
    if (type.toLowerCase() !== 'application/openmetrics-text') continue
    const q = params.find((p) => p.toLowerCase().startsWith('q='))
    if (q === undefined || Number(q.slice(2)) > 0) return 'openmetrics'
  }
  return 'prometheus'
}

function formatNumber(value: number): string {
  if (Number.isNaN(value)) return 'NaN'
  if (value === Infinity) return '+Inf'
  if (value === -Infinity) return '-Inf'
  return String(value)
}

function escapeLabel(value: string): string {
  return value.replace(/\\/g, '\\\\').replace(/\n/g, '\\n').replace(/"/g, '\\"')
}

function escapeHelp(value: string, openMetrics: boolean): string {
  const escaped = value.replace(/\\/g, '\\\\').replace(/\n/g, '\\n')
  return openMetrics ? escaped.replace(/"/g, '\\"') : escaped
}

function formatLabels(labels: Readonly<Record<string, string | number | undefined>>): string {
  let out = ''
  for (const key of Object.keys(labels)) {
    const value = labels[key]
    if (value === undefined) continue
    out += `${out === '' ? '' : ','}${key}="${escapeLabel(typeof value === 'number' ? formatNumber(value) : value)}"`
  }
  return out === '' ? '' : `{${out}}`
}

/** Writes `families` in the given format (OpenMetrics ends with `# EOF` and carries exemplars). */
export function formatExposition(families: readonly ExposedFamily[], format: ExpositionFormat): string {
  const openMetrics = format === 'openmetrics'
  const lines: string[] = []
  for (const family of families) {
    const counter = family.type === 'counter'
    const base = counter ? family.name.replace(/_total$/, '') : family.name
    // Prometheus text names a counter family by its sample name; OpenMetrics by the name without `_total`.
    const familyName = openMetrics ? base : family.name
    const type = openMetrics && family.type === 'untyped' ? 'unknown' : family.type
    lines.push(`# HELP ${familyName} ${escapeHelp(family.help, openMetrics)}`, `# TYPE ${familyName} ${type}`)
    for (const v of family.values) {
      const name = counter ? `${base}_total` : (v.metricName ?? family.name)
      let line = `${name}${formatLabels(v.labels)} ${formatNumber(v.value)}`
      const exemplar = v.exemplar
      if (openMetrics && exemplar?.value != null && Object.keys(exemplar.labelSet).length > 0) {
        line += ` # ${formatLabels(exemplar.labelSet)} ${formatNumber(exemplar.value)}`
        if (exemplar.timestamp !== undefined) line += ` ${exemplar.timestamp.toFixed(3)}`
      }
      lines.push(line)
    }
  }
  if (openMetrics) lines.push('# EOF')
  return `${lines.join('\n')}\n`
}

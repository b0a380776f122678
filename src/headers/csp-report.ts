/** One CSP violation, normalised from either report format and bounded in size. */
export interface CspViolation {
  documentUrl: string
  blockedUrl: string
  directive: string
  disposition: string
  sourceFile?: string
  line?: number
  column?: number
  sample?: string
}

const MAX_FIELD = 512
const MAX_REPORTS = 20

const text = (value: unknown): string | undefined => (typeof value === 'string' ? value.slice(0, MAX_FIELD) : undefined)
const int = (value: unknown): number | undefined => (typeof value === 'number' && Number.isSafeInteger(value) && value >= 0 ? value : undefined)
const isObject = (value: unknown): value is Record<string, unknown> => typeof value === 'object' && value !== null && !Array.isArray(value)

/**
 * Reads the violations out of a report body: the legacy `report-uri` format
 * (`application/csp-report`: `{"csp-report": {...}}`) or the Reporting API
 * (`application/reports+json`: `[{"type": "csp-violation", "body": {...}}]`). Reports of
 * other types are ignored; returns undefined when the body is neither format.
 */
export function parseCspReport(body: unknown): CspViolation[] | undefined {
  if (isObject(body) && isObject(body['csp-report'])) {
    const r = body['csp-report']
    const violation = build(text(r['document-uri']), text(r['blocked-uri']), text(r['effective-directive']) ?? text(r['violated-directive']), text(r.disposition), r['source-file'], r['line-number'], r['column-number'], r['script-sample'])
    return violation === undefined ? undefined : [violation]
  }
  if (Array.isArray(body)) {
    const out: CspViolation[] = []
    for (const report of body.slice(0, MAX_REPORTS)) {
      if (!isObject(report) || report.type !== 'csp-violation') continue
      const b = report.body
      if (!isObject(b)) return undefined
      const violation = build(text(b.documentURL) ?? text(report.url), text(b.blockedURL), text(b.effectiveDirective), text(b.disposition), b.sourceFile, b.lineNumber, b.columnNumber, b.sample)
      if (violation === undefined) return undefined
      out.push(violation)
    }
    return out
  }
  return undefined
}

function build(documentUrl: string | undefined, blockedUrl: string | undefined, directive: string | undefined, disposition: string | undefined, sourceFile: unknown, line: unknown, column: unknown, sample: unknown): CspViolation | undefined {
  if (documentUrl === undefined || directive === undefined) return undefined
  const violation: CspViolation = { documentUrl, blockedUrl: blockedUrl ?? '', directive, disposition: disposition ?? 'enforce' }
  const file = text(sourceFile)
  if (file !== undefined) violation.sourceFile = file
  const l = int(line)
  if (l !== undefined) violation.line = l
  const c = int(column)
  if (c !== undefined) violation.column = c
  // Samples are the first 40 characters of the offending script by spec; keep them short.
  const s = text(sample)
  if (s !== undefined) violation.sample = s.slice(0, 80)
  return violation
}

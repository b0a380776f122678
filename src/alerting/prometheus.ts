import type { AlertRule, Comparator } from './rules.ts'

/** A YAML double-quoted scalar (JSON string escapes are valid YAML). */
function quote(value: string): string {
  return JSON.stringify(value)
}

function duration(seconds: number): string {
  return `${String(Math.round(seconds))}s`
}

const PROM_COMPARATORS: Record<Comparator, string> = { '>': '>', '>=': '>=', '<': '<', '<=': '<=', '==': '==', '!=': '!=' }

/**
 * Prometheus alerting-rules YAML for `rules` (one group); rules without `promql` are left out.
 * Written by hand: every string is double-quoted, so no value can break the document.
 */
export function toPrometheusRules(rules: readonly AlertRule[], groupName = 'backbeat'): string {
  const lines = ['groups:', `  - name: ${quote(groupName)}`, '    rules:']
  const exported = rules.filter((r) => r.promql !== undefined)
  if (exported.length === 0) return 'groups: []\n'
  for (const rule of exported) {
    lines.push(`      - alert: ${quote(rule.name)}`)
    lines.push(`        expr: ${quote(rule.promql ?? '')}`)
    lines.push(`        for: ${duration(rule.forS)}`)
    lines.push('        labels:')
    lines.push(`          severity: ${quote(rule.severity)}`)
    for (const [k, v] of Object.entries(rule.labels)) if (k !== 'severity') lines.push(`          ${k}: ${quote(v)}`)
    lines.push('        annotations:')
    lines.push(`          summary: ${quote(rule.summary ?? `${rule.name} ${PROM_COMPARATORS[rule.comparator]} ${String(rule.threshold)}`)}`)
  }
  return `${lines.join('\n')}\n`
}

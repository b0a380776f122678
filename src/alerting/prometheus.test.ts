import assert from 'node:assert/strict'
import { execFile } from 'node:child_process'
import { existsSync } from 'node:fs'
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { describe, it } from 'node:test'
import { toPrometheusRules } from './prometheus.ts'
import { cacheMissRateRule, cpuRule, customRule, errorRateRule, inFlightRule, memoryRule, p95LatencyRule, securityThreatRule } from './rules.ts'

const PROMTOOL = '/usr/bin/promtool'

const rules = [
  p95LatencyRule(0.5),
  errorRateRule(),
  memoryRule(),
  cpuRule(),
  inFlightRule(500, { labels: { team: 'api "core"' } }),
  cacheMissRateRule(),
  securityThreatRule(),
  customRule({ name: 'QueueBacklog', expression: (s) => s.custom?.backlog, comparator: '>=', threshold: 1000, forS: 90, promql: 'sum(queue_backlog) >= 1000' }),
  customRule({ name: 'CodeOnly', expression: () => 1, comparator: '>', threshold: 0 }),
]

describe('toPrometheusRules', () => {
  it('writes one alerting rule per rule that has PromQL, over the Backbeat metric names', () => {
    const yaml = toPrometheusRules(rules)
    assert.ok(yaml.startsWith('groups:\n  - name: "backbeat"\n    rules:\n'))
    assert.equal(yaml.match(/- alert: /g)?.length, 8, 'the rule without promql is left out')
    assert.ok(!yaml.includes('CodeOnly'))
    assert.ok(yaml.includes('expr: "histogram_quantile(0.95, sum by (le) (rate(http_request_duration_seconds_bucket[5m]))) > 0.5"'))
    assert.ok(yaml.includes('expr: "sum(rate(http_requests_total{status_class=\\"5xx\\"}[5m])) / sum(rate(http_requests_total[5m])) > 0.01"'))
    for (const name of ['memory_usage_bytes', 'cpu_usage_percent', 'http_requests_in_flight', 'cache_hits_total', 'cache_misses_total']) assert.ok(yaml.includes(name), name)
    assert.ok(yaml.includes('      - alert: "QueueBacklog"\n        expr: "sum(queue_backlog) >= 1000"\n        for: 90s\n        labels:\n          severity: "warning"\n'))
    assert.ok(yaml.includes('team: "api \\"core\\""'))
    assert.equal(toPrometheusRules([]), 'groups: []\n')
  })

  it('passes promtool check rules', async (t) => {
    if (!existsSync(PROMTOOL)) assert.fail(`${PROMTOOL} is missing: install Prometheus's promtool (e.g. apt-get install prometheus) to check the exported rules`)
    const dir = await mkdtemp(join(tmpdir(), 'bb-alert-'))
    t.after(() => rm(dir, { recursive: true, force: true }))
    const file = join(dir, 'rules.yml')
    await writeFile(file, toPrometheusRules(rules))
    const result = await new Promise<{ code: number; output: string }>((resolve) => {
      execFile(PROMTOOL, ['check', 'rules', file], (error, stdout, stderr) => {
        resolve({ code: error === null ? 0 : typeof error.code === 'number' ? error.code : 1, output: stdout + stderr })
      })
    })
    assert.equal(result.code, 0, result.output)
    assert.match(result.output, /SUCCESS: 8 rules found/)
  })
})

/** Metric values the engine evaluates rules against; the caller fills it from the metrics registry. */
export interface MetricsSnapshot {
  readonly p95LatencyS?: number
  /** Fraction of requests answered 5xx (0..1). */
  readonly errorRate?: number
  /** Heap used over heap total, 0..100. */
  readonly memoryPercent?: number
  readonly cpuPercent?: number
  readonly inFlight?: number
  /** misses / (hits + misses), 0..1. */
  readonly cacheMissRate?: number
  /** Security threats detected since the last snapshot. */
  readonly securityThreats?: number
  readonly custom?: Readonly<Record<string, number>>
}

export type AlertSeverity = 'info' | 'warning' | 'critical'
export type Comparator = '>' | '>=' | '<' | '<=' | '==' | '!='

export interface AlertRule {
  /** Unique, `[a-zA-Z_][a-zA-Z0-9_]*` (it becomes the Prometheus `alert` name). */
  readonly name: string
  /** The value compared with `threshold`; `undefined` (metric unknown) never matches. */
  readonly expression: (snapshot: MetricsSnapshot) => number | undefined
  readonly comparator: Comparator
  readonly threshold: number
  /** Seconds the condition must hold before the alert fires (pending until then). */
  readonly forS: number
  readonly severity: AlertSeverity
  readonly labels: Readonly<Record<string, string>>
  /** No new firing notification for this rule+labels within this many seconds of the last one. */
  readonly cooldownS: number
  /** Re-notify a still-firing alert with a raised severity after this many seconds (each time, up to critical). */
  readonly escalateAfterS?: number
  /** Notifications with the same group key are batched (default: the rule name). */
  readonly group?: string
  readonly summary?: string
  /** PromQL for `toPrometheusRules`; rules without it are left out of the export. */
  readonly promql?: string
}

export interface RuleOptions {
  readonly forS?: number
  readonly severity?: AlertSeverity
  readonly labels?: Readonly<Record<string, string>>
  readonly cooldownS?: number
  readonly escalateAfterS?: number
  readonly group?: string
  readonly name?: string
}

export interface CustomRuleDefinition extends RuleOptions {
  readonly name: string
  readonly expression: (snapshot: MetricsSnapshot) => number | undefined
  readonly comparator: Comparator
  readonly threshold: number
  readonly summary?: string
  readonly promql?: string
}

const RULE_NAME = /^[a-zA-Z_][a-zA-Z0-9_]*$/
const LABEL_NAME = /^[a-zA-Z_][a-zA-Z0-9_]*$/

export function compare(value: number, comparator: Comparator, threshold: number): boolean {
  switch (comparator) {
    case '>': return value > threshold
    case '>=': return value >= threshold
    case '<': return value < threshold
    case '<=': return value <= threshold
    case '==': return value === threshold
    case '!=': return value !== threshold
  }
}

/** Builds a custom rule, checking its name, labels and durations. */
export function customRule(definition: CustomRuleDefinition): AlertRule {
  if (!RULE_NAME.test(definition.name)) throw new TypeError(`alert rule name ${JSON.stringify(definition.name)} must match ${RULE_NAME.source}`)
  for (const key of Object.keys(definition.labels ?? {})) {
    if (!LABEL_NAME.test(key) || key.startsWith('__')) throw new TypeError(`label name ${JSON.stringify(key)} of rule ${definition.name} is not a valid Prometheus label name`)
  }
  for (const [field, value] of [['forS', definition.forS], ['cooldownS', definition.cooldownS], ['escalateAfterS', definition.escalateAfterS]] as const) {
    if (value !== undefined && (!Number.isFinite(value) || value < 0)) throw new TypeError(`${field} of rule ${definition.name} must be a non-negative number`)
  }
  if (!Number.isFinite(definition.threshold)) throw new TypeError(`threshold of rule ${definition.name} must be a finite number`)
  const rule: AlertRule = {
    name: definition.name,
    expression: definition.expression,
    comparator: definition.comparator,
    threshold: definition.threshold,
    forS: definition.forS ?? 0,
    severity: definition.severity ?? 'warning',
    labels: Object.freeze({ ...definition.labels }),
    cooldownS: definition.cooldownS ?? 300,
    ...(definition.escalateAfterS === undefined ? {} : { escalateAfterS: definition.escalateAfterS }),
    ...(definition.group === undefined ? {} : { group: definition.group }),
    ...(definition.summary === undefined ? {} : { summary: definition.summary }),
    ...(definition.promql === undefined ? {} : { promql: definition.promql }),
  }
  return Object.freeze(rule)
}

function builtIn(defaults: Omit<CustomRuleDefinition, keyof RuleOptions> & { name: string; forS: number; severity: AlertSeverity }, options: RuleOptions): AlertRule {
  const { name, ...rest } = options
  return customRule({ ...defaults, ...rest, name: name ?? defaults.name })
}

const RATE_WINDOW = '5m'

/** p95 request latency above `thresholdS` seconds. */
export function p95LatencyRule(thresholdS: number, options: RuleOptions = {}): AlertRule {
  return builtIn({
    name: 'HighP95Latency', forS: 300, severity: 'warning', comparator: '>', threshold: thresholdS,
    expression: (s) => s.p95LatencyS,
    summary: `p95 request latency above ${String(thresholdS)} s`,
    promql: `histogram_quantile(0.95, sum by (le) (rate(http_request_duration_seconds_bucket[${RATE_WINDOW}]))) > ${String(thresholdS)}`,
  }, options)
}

/** Share of 5xx answers above `threshold` (default 1 %). */
export function errorRateRule(threshold = 0.01, options: RuleOptions = {}): AlertRule {
  return builtIn({
    name: 'HighErrorRate', forS: 300, severity: 'critical', comparator: '>', threshold,
    expression: (s) => s.errorRate,
    summary: `error rate above ${String(threshold * 100)} %`,
    promql: `sum(rate(http_requests_total{status_class="5xx"}[${RATE_WINDOW}])) / sum(rate(http_requests_total[${RATE_WINDOW}])) > ${String(threshold)}`,
  }, options)
}

/** Heap used above `thresholdPercent` of heap total (default 80). */
export function memoryRule(thresholdPercent = 80, options: RuleOptions = {}): AlertRule {
  return builtIn({
    name: 'HighMemoryUsage', forS: 600, severity: 'warning', comparator: '>', threshold: thresholdPercent,
    expression: (s) => s.memoryPercent,
    summary: `heap usage above ${String(thresholdPercent)} %`,
    promql: `100 * sum(memory_usage_bytes{type="heap_used"}) / sum(memory_usage_bytes{type="heap_total"}) > ${String(thresholdPercent)}`,
  }, options)
}

/** CPU above `thresholdPercent` (default 80). */
export function cpuRule(thresholdPercent = 80, options: RuleOptions = {}): AlertRule {
  return builtIn({
    name: 'HighCpuUsage', forS: 600, severity: 'warning', comparator: '>', threshold: thresholdPercent,
    expression: (s) => s.cpuPercent,
    summary: `CPU usage above ${String(thresholdPercent)} %`,
    promql: `max(cpu_usage_percent) > ${String(thresholdPercent)}`,
  }, options)
}

/** More than `max` requests in flight. */
export function inFlightRule(max: number, options: RuleOptions = {}): AlertRule {
  return builtIn({
    name: 'TooManyInFlightRequests', forS: 120, severity: 'warning', comparator: '>', threshold: max,
    expression: (s) => s.inFlight,
    summary: `more than ${String(max)} requests in flight`,
    promql: `sum(http_requests_in_flight) > ${String(max)}`,
  }, options)
}

/** Cache miss rate above `threshold` (default 20 %). */
export function cacheMissRateRule(threshold = 0.2, options: RuleOptions = {}): AlertRule {
  return builtIn({
    name: 'HighCacheMissRate', forS: 600, severity: 'info', comparator: '>', threshold,
    expression: (s) => s.cacheMissRate,
    summary: `cache miss rate above ${String(threshold * 100)} %`,
    promql: `sum(rate(cache_misses_total[${RATE_WINDOW}])) / (sum(rate(cache_hits_total[${RATE_WINDOW}])) + sum(rate(cache_misses_total[${RATE_WINDOW}]))) > ${String(threshold)}`,
  }, options)
}

/** Any security threat detected (fires at once by default). */
export function securityThreatRule(options: RuleOptions = {}): AlertRule {
  return builtIn({
    name: 'SecurityThreatDetected', forS: 0, severity: 'critical', comparator: '>', threshold: 0,
    expression: (s) => s.securityThreats,
    summary: 'security threat detected',
    promql: `sum(increase(security_threats_total[${RATE_WINDOW}])) > 0`,
  }, options)
}

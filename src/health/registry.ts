import { ConfigError, systemClock, type Clock, type HealthCheck } from '../core/index.ts'

export type HealthStatus = 'pass' | 'warn' | 'fail'

export interface CheckReport {
  status: HealthStatus
  /** The health-check draft's componentType: `datastore`, `component`, `system`, ... */
  componentType: string
  /** Whether a failure makes the service unready (non-critical failures only warn). */
  critical: boolean
  latencyMs: number
  message?: string
}

export interface HealthReport {
  status: HealthStatus
  checks: Record<string, CheckReport>
  /** ISO time the checks ran (results are cached for `cacheMs`). */
  checkedAt: string
}

export interface HealthRegistryOptions {
  checkTimeoutMs: number
  cacheMs: number
  now?: Clock
}

export interface RegisterCheckOptions {
  /** Default true: failing makes readiness 503. False: failing only degrades to `warn`. */
  critical?: boolean
  /** Overrides the registry's timeout for this check. */
  timeoutMs?: number
  /** Reported as the draft's `componentType` (default `component`; stores use `datastore`). */
  componentType?: string
}

interface Entry {
  check: HealthCheck
  critical: boolean
  timeoutMs: number
  componentType: string
}

/**
 * Runs the registered dependency checks, each under its own timeout, all in parallel;
 * caches the result briefly and shares one run among concurrent callers so a burst of
 * probes costs the dependencies one round of checks.
 *
 * @example
 * const health = new HealthRegistry({ checkTimeoutMs: 2000, cacheMs: 1000 })
 * health.register('redis', redis.healthCheck)
 * const report = await health.check()
 */
export class HealthRegistry {
  readonly #entries = new Map<string, Entry>()
  readonly #timeoutMs: number
  readonly #cacheMs: number
  readonly #now: Clock
  #cached: { at: number; report: HealthReport } | undefined
  #running: Promise<HealthReport> | undefined
  #shuttingDown = false

  constructor(options: HealthRegistryOptions) {
    this.#timeoutMs = options.checkTimeoutMs
    this.#cacheMs = options.cacheMs
    this.#now = options.now ?? systemClock
  }

  /** Adds a dependency check. Names are unique; registering one twice is a configuration error. */
  register(name: string, check: HealthCheck, options: RegisterCheckOptions = {}): void {
    if (this.#entries.has(name)) throw new ConfigError([{ path: `health.checks.${name}`, message: 'is already registered' }])
    this.#entries.set(name, {
      check,
      critical: options.critical ?? true,
      timeoutMs: options.timeoutMs ?? this.#timeoutMs,
      componentType: options.componentType ?? 'component',
    })
    this.#cached = undefined
  }

  /** Names of the registered checks. */
  get names(): string[] {
    return [...this.#entries.keys()]
  }

  /** From now on readiness fails, so load balancers stop sending traffic. */
  markShuttingDown(): void {
    this.#shuttingDown = true
  }

  get shuttingDown(): boolean {
    return this.#shuttingDown
  }

  /** Runs every check (or returns the cached report from the last `cacheMs`). */
  async check(): Promise<HealthReport> {
    const cached = this.#cached
    if (cached !== undefined && this.#now() - cached.at < this.#cacheMs) return cached.report
    this.#running ??= this.#runAll().finally(() => {
      this.#running = undefined
    })
    return this.#running
  }

  async #runAll(): Promise<HealthReport> {
    const startedAt = this.#now()
    const names = [...this.#entries.keys()]
    const results = await Promise.all([...this.#entries.values()].map((entry) => runOne(entry)))
    const checks: Record<string, CheckReport> = {}
    let status: HealthStatus = 'pass'
    names.forEach((name, i) => {
      const result = results[i] as CheckReport
      checks[name] = result
      if (result.status === 'fail' && result.critical) status = 'fail'
      else if (result.status !== 'pass' && status === 'pass') status = 'warn'
    })
    const report: HealthReport = { status, checks, checkedAt: new Date(startedAt).toISOString() }
    this.#cached = { at: this.#now(), report }
    return report
  }
}

async function runOne(entry: Entry): Promise<CheckReport> {
  const started = performance.now()
  const controller = new AbortController()
  let timer: NodeJS.Timeout | undefined
  const timeout = new Promise<never>((_resolve, reject) => {
    timer = setTimeout(() => {
      const error = new Error(`timed out after ${entry.timeoutMs}ms`)
      controller.abort(error)
      reject(error)
    }, entry.timeoutMs)
  })
  try {
    // Raced as well as signalled: a check that ignores its signal still cannot hang a probe.
    const result = await Promise.race([entry.check(controller.signal), timeout])
    const report: CheckReport = { status: result?.status ?? 'pass', componentType: entry.componentType, critical: entry.critical, latencyMs: elapsed(started) }
    if (result?.message !== undefined) report.message = result.message
    return report
  } catch (error) {
    return { status: 'fail', componentType: entry.componentType, critical: entry.critical, latencyMs: elapsed(started), message: describe(error) }
  } finally {
    clearTimeout(timer)
  }
}

function elapsed(started: number): number {
  return Math.round((performance.now() - started) * 10) / 10
}

function describe(error: unknown): string {
  if (error instanceof Error) {
    const cause = error.cause instanceof Error ? `: ${error.cause.message}` : ''
    return `${error.message}${cause}`.slice(0, 300)
  }
  return String(error).slice(0, 300)
}

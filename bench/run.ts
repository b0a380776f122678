/**
 * `npm run bench`: side-by-side throughput of the Backbeat presets.
 *
 * Starts one server process per (scenario, variant), then runs interleaved, rotated rounds
 * of autocannon against each, so slow drift on a shared machine (other tenants, thermal
 * state) hits every variant alike. Prints medians per scenario, the ratio to `bare`, and
 * PASS/FAIL for the target "production keeps >= 85 % of bare's throughput on a simple read
 * route"; writes every raw run to bench/results/<timestamp>.json. See docs/benchmarks.md.
 *
 *   npm run bench                       # full: 5 rounds x 5 s, 50 connections
 *   npm run bench -- --quick            # smoke run: 1 round x 2 s
 *   npm run bench -- --ablate --scenario hello   # production with one capability off at a time
 *   npm run bench -- --scenario edge             # edge protection against the foundation stack
 *
 * Every server reads a `backbeat.config.json` (written to its temp dir) that raises the
 * default rate-limit policy far above what a run sends: the limiter still decides every
 * request, but a benchmark is not a client to refuse.
 */
import { mkdirSync, writeFileSync } from 'node:fs'
import { cpus, loadavg, totalmem, release } from 'node:os'
import { parseArgs } from 'node:util'
import type { BackbeatConfigInput, PresetName } from 'backbeat'
import { measure, type RunMeasurement } from './load.ts'
import { removeServerDir, repoPath, spawnServer, waitUntilAnswering, type ServerHandle } from './servers.ts'
import { formatInt, formatPercent, formatTable, median, rotate } from './stats.ts'
import { benchToken, BENCH_CONFIG, BENCH_ORIGIN, EDGE_ALL, EDGE_OFF, EDGE_ON, mergeConfig } from './variants.ts'

/** The issue's target: production keeps at least this share of bare's req/s in scenario (a). */
const TARGET_RATIO = 0.85
/** Edge protection's target: headers + CORS + rate limit keep this share of the foundation stack. */
const EDGE_TARGET_RATIO = 0.9
/** Identity's target: a route with a hot bearer token keeps this share of the same route public. */
const AUTH_TARGET_RATIO = 0.9
/** Caching's target: a response served from the response cache keeps this share of the same route's constant body on `bare`. */
const CACHE_TARGET_RATIO = 0.9
/** Observability's target: metrics + tracing (10 % sampled) + error monitoring keep this share of the same stack without them. */
const OBSERVABILITY_TARGET_RATIO = 0.9

interface Settings {
  rounds: number
  durationS: number
  /** Unrecorded load just before each measured run (re-warms after the server sat idle). */
  runWarmupS: number
  /** Unrecorded load per server once after start-up (JIT, PGlite buffer cache). */
  startWarmupS: number
  connections: number
  startTimeoutS: number
  scenarios: ScenarioKey[]
  ablate: boolean
  strict: boolean
  markdown: boolean
  keepTemp: boolean
  quick: boolean
}

type ScenarioKey = 'hello' | 'api' | 'edge' | 'edge-api' | 'auth' | 'cache' | 'observability'

interface Variant {
  /** `bare`, `production`, ... or `production-no-timing` for ablations. */
  readonly key: string
  readonly preset: PresetName
  /** What the variant turns off, for the report. */
  readonly note: string
  readonly overrides?: BackbeatConfigInput
  /** Merged into the server's backbeat.config.json (works for every server script). */
  readonly config?: BackbeatConfigInput
  /** Extra environment for the server (e.g. BENCH_AUTH_SECRET). */
  readonly env?: Readonly<Record<string, string>>
  /** Extra request headers for this variant, on top of the scenario's. */
  readonly headers?: Readonly<Record<string, string>>
  readonly logToFile: boolean
}

interface Scenario {
  readonly key: ScenarioKey
  readonly title: string
  readonly script: string
  /** Polled until 200 at start-up; its body may tell us the target path. */
  readonly readyPath: string
  readonly targetPath: (readyBody: string) => string
  readonly variants: readonly Variant[]
  /** The variant the others are compared with (`bare`, or `foundation` for edge). */
  readonly baseline: string
  /** Extra request headers sent with every request (the edge scenario sends an Origin). */
  readonly headers?: Readonly<Record<string, string>>
}

interface Target {
  scenario: Scenario
  variant: Variant
  server: ServerHandle | undefined
  path: string
  startError?: string
}

interface RunRecord extends Partial<RunMeasurement> {
  round: number
  scenario: ScenarioKey
  variant: string
  ok: boolean
  /** Server CPU time (user + system) during the measured run, ms. */
  serverCpuMs?: number
  /** Server CPU per completed request, µs: robust to other tenants, unlike req/s. */
  cpuUsPerRequest?: number
  /** Why a run is flagged (errors, non-2xx, server gone). */
  flag?: string
}

interface SummaryRow {
  scenario: ScenarioKey
  variant: string
  runs: number
  okRuns: number
  medianReqPerSec: number
  medianP50Ms: number
  medianP99Ms: number
  medianMeanLatencyMs: number
  /** Median req/s divided by the baseline's median req/s in the same scenario. */
  ratioToBare: number
  /** Median over rounds of (this round's req/s / the baseline's req/s in the same round). */
  pairedRatioToBare: number
  medianCpuUsPerRequest: number
  /**
   * the baseline's median CPU µs/request divided by this variant's: the throughput ratio a CPU-bound
   * server would show with a core to itself. A cross-check that noise barely moves.
   */
  cpuRatioToBare: number
}

const PRESET_VARIANTS: readonly Variant[] = [
  { key: 'bare', preset: 'bare', note: 'routing only', logToFile: false },
  { key: 'production', preset: 'production', note: 'everything, JSON logs to a file', logToFile: true },
  { key: 'development', preset: 'development', note: 'everything, pretty logs to a file', logToFile: true },
]

/**
 * Production with one capability switched off at a time: the difference to `production` is
 * what that capability costs per request. Overrides go through BENCH_OVERRIDES because not
 * every option has an environment variable.
 */
const ABLATION_VARIANTS: readonly Variant[] = [
  { key: 'prod-no-timing', preset: 'production', note: 'http.responseTimeHeader=false', overrides: { http: { responseTimeHeader: false } }, logToFile: true },
  { key: 'prod-no-completion-log', preset: 'production', note: 'logging.requestCompletion=false', overrides: { logging: { requestCompletion: false } }, logToFile: true },
  { key: 'prod-no-logging', preset: 'production', note: 'logging.enabled=false, no log file', overrides: { logging: { enabled: false } }, logToFile: false },
  { key: 'prod-no-http', preset: 'production', note: 'http.enabled=false (no request ID, context, timing, problem+json)', overrides: { http: { enabled: false } }, logToFile: true },
  { key: 'prod-no-health-openapi', preset: 'production', note: 'health.enabled=false, openapi.enabled=false', overrides: { health: { enabled: false }, openapi: { enabled: false } }, logToFile: true },
]

/**
 * Edge protection against the stack it sits on. `foundation` is production with the four
 * edge capabilities switched off (what the foundation issue shipped); `edge` turns on
 * security headers, CORS (the request's Origin is allowed) and rate limiting with the memory
 * store, the combination the edge issue's target names; `edge-all` adds request limits
 * (production's defaults, everything on).
 */
const EDGE_VARIANTS: readonly Variant[] = [
  { key: 'foundation', preset: 'production', note: 'production without headers, CORS, limits, rate limit', config: EDGE_OFF, logToFile: true },
  {
    key: 'edge',
    preset: 'production',
    note: '+ security headers, CORS (allowed Origin), rate limit (memory)',
    config: EDGE_ON,
    logToFile: true,
  },
  { key: 'edge-all', preset: 'production', note: '+ request limits (production as shipped)', config: EDGE_ALL, logToFile: true },
]

/** The reference API's read route for the first track `GET /v1/tracks?limit=1` returned. */
function trackPath(body: string): string {
  const page = JSON.parse(body) as { items?: { id?: unknown }[] }
  const id = page.items?.[0]?.id
  if (typeof id !== 'string') throw new Error(`GET /v1/tracks?limit=1 returned no track id: ${body.slice(0, 200)}`)
  return `/v1/tracks/${encodeURIComponent(id)}`
}

/**
 * The verified-token cache's target: the same route with a bearer token (the same token on
 * every request, as a hot client sends it) against it without authentication, both on
 * production as shipped.
 */
const benchBearer = `Bearer ${await benchToken()}`
const AUTH_VARIANTS: readonly Variant[] = [
  { key: 'anonymous', preset: 'production', note: 'public route, no Authorization', logToFile: true },
  // Diagnostic: what carrying the header costs (bytes to read and parse) with no auth work.
  { key: 'header-only', preset: 'production', note: 'public route (auth: false) sent the same Authorization header, never read', headers: { authorization: benchBearer }, logToFile: true },
  {
    key: 'bearer',
    preset: 'production',
    note: 'route requires a bearer token; the same token every request (verified-token cache)',
    env: { BENCH_AUTH_REQUIRED: '1' },
    headers: { authorization: benchBearer },
    logToFile: true,
  },
]

/**
 * The response cache's target: the hello route served from the response cache (the route
 * says `Cache-Control: public, max-age=3600`; every request after the first is a hit) against
 * the same route computing its constant body, both on `bare`. `production-cached` shows the
 * same hit with the whole stack in front of it.
 */
const CACHE_VARIANTS: readonly Variant[] = [
  { key: 'bare', preset: 'bare', note: 'constant body, no response cache', logToFile: false },
  { key: 'bare-cached', preset: 'bare', note: 'the same route served from the response cache (L1 hit)', config: { cache: { http: { enabled: true } } }, env: { BENCH_CACHEABLE: '1' }, logToFile: false },
  { key: 'production-cached', preset: 'production', note: 'production as shipped, served from the response cache', env: { BENCH_CACHEABLE: '1' }, logToFile: true },
]

/**
 * Observability's target on the reference API's read route: production with metrics, tracing
 * (10 % of new traces sampled, no exporter) and error monitoring switched on, against the
 * same stack with the three off (the presets' default while their cost is above target).
 */
const OBSERVABILITY_VARIANTS: readonly Variant[] = [
  { key: 'observability-off', preset: 'production', note: 'production without metrics, tracing, error monitoring', config: { metrics: { enabled: false }, tracing: { enabled: false }, errorMonitor: { enabled: false } }, logToFile: true },
  { key: 'observability-on', preset: 'production', note: '+ metrics, tracing (10 % sampled, no exporter), error monitoring', config: { metrics: { enabled: true }, tracing: { enabled: true, sampleRatio: 0.1 }, errorMonitor: { enabled: true } }, logToFile: true },
]

function scenariosFor(settings: Settings): Scenario[] {
  const all: Scenario[] = [
    {
      key: 'hello',
      title: '(a) middleware overhead: GET /bench/hello (static JSON, response schema)',
      script: repoPath('bench', 'hello-server.ts'),
      readyPath: '/bench/hello',
      targetPath: () => '/bench/hello',
      variants: settings.ablate ? [...PRESET_VARIANTS, ...ABLATION_VARIANTS] : PRESET_VARIANTS,
      baseline: 'bare',
    },
    {
      key: 'api',
      title: '(b) reference API: GET /v1/tracks/<id> (embedded PGlite)',
      script: repoPath('app', 'server.ts'),
      readyPath: '/v1/tracks?limit=1',
      targetPath: trackPath,
      variants: PRESET_VARIANTS,
      baseline: 'bare',
    },
    {
      key: 'edge',
      title: '(c) edge protection: GET /bench/hello with an allowed Origin, against the foundation stack',
      script: repoPath('bench', 'hello-server.ts'),
      readyPath: '/bench/hello',
      targetPath: () => '/bench/hello',
      variants: EDGE_VARIANTS,
      baseline: 'foundation',
      headers: { origin: BENCH_ORIGIN },
    },
    {
      key: 'auth',
      title: '(e) authentication: GET /bench/hello with a hot bearer token, against the same route public',
      script: repoPath('bench', 'hello-server.ts'),
      readyPath: '/bench/hello',
      targetPath: () => '/bench/hello',
      variants: AUTH_VARIANTS,
      baseline: 'anonymous',
    },
    {
      key: 'cache',
      title: '(f) response cache: GET /bench/hello served from the cache, against the same route computing it (bare)',
      script: repoPath('bench', 'hello-server.ts'),
      readyPath: '/bench/hello',
      targetPath: () => '/bench/hello',
      variants: CACHE_VARIANTS,
      baseline: 'bare',
    },
    {
      key: 'observability',
      title: '(g) observability on the reference API read route: GET /v1/tracks/<id>, metrics + tracing + error monitoring against none',
      script: repoPath('app', 'server.ts'),
      readyPath: '/v1/tracks?limit=1',
      targetPath: trackPath,
      variants: OBSERVABILITY_VARIANTS,
      baseline: 'observability-off',
    },
    {
      key: 'edge-api',
      title: '(d) edge protection on the reference API read route: GET /v1/tracks/<id> with an allowed Origin, against the foundation stack',
      script: repoPath('app', 'server.ts'),
      readyPath: '/v1/tracks?limit=1',
      targetPath: trackPath,
      variants: EDGE_VARIANTS,
      baseline: 'foundation',
      headers: { origin: BENCH_ORIGIN },
    },
  ]
  return all.filter((s) => settings.scenarios.includes(s.key))
}

function readSettings(argv: string[]): Settings {
  const { values } = parseArgs({
    args: argv,
    options: {
      quick: { type: 'boolean', default: false },
      rounds: { type: 'string' },
      duration: { type: 'string' },
      warmup: { type: 'string' },
      connections: { type: 'string' },
      scenario: { type: 'string', default: 'all' },
      ablate: { type: 'boolean', default: false },
      strict: { type: 'boolean', default: false },
      markdown: { type: 'boolean', default: false },
      'keep-temp': { type: 'boolean', default: false },
      help: { type: 'boolean', short: 'h', default: false },
    },
  })
  if (values.help) {
    process.stdout.write(
      [
        'npm run bench -- [options]      (flags win over the BENCH_* environment variables)',
        '  --quick               smoke run: 1 round, 2 s runs, short warm-ups',
        '  --rounds N            interleaved rounds (BENCH_ROUNDS, default 5)',
        '  --duration S          seconds per measured run (BENCH_DURATION_S, default 5)',
        '  --warmup S            unrecorded seconds before each run (BENCH_WARMUP_S, default 1)',
        '  --connections N       concurrent connections (BENCH_CONNECTIONS, default 50)',
        '  --scenario hello|api|edge|edge-api|auth|cache|observability|all',
        '  --ablate              add production variants with one capability off (scenario a)',
        '  --strict              also exit 1 when the 85 % target is missed',
        '  --markdown            print the tables as Markdown',
        '  --keep-temp           keep the servers\' temp dirs (log files, PGlite data)',
        '',
      ].join('\n'),
    )
    process.exit(0)
  }
  const env = process.env
  const quick = values.quick
  const num = (flag: string | undefined, envName: string, fallback: number, min: number): number => {
    const raw = flag ?? env[envName]
    if (raw === undefined || raw === '') return fallback
    const n = Number(raw)
    if (!Number.isFinite(n) || n < min) throw new Error(`${flag === undefined ? envName : 'flag'} must be a number >= ${min}, got "${raw}"`)
    return n
  }
  const scenario = values.scenario
  if (scenario !== 'all' && scenario !== 'hello' && scenario !== 'api' && scenario !== 'edge' && scenario !== 'edge-api' && scenario !== 'auth' && scenario !== 'cache' && scenario !== 'observability') throw new Error(`--scenario must be hello, api, edge, edge-api, auth, cache, observability or all, got "${scenario}"`)
  return {
    rounds: Math.round(num(values.rounds, 'BENCH_ROUNDS', quick ? 1 : 5, 1)),
    durationS: num(values.duration, 'BENCH_DURATION_S', quick ? 2 : 5, 1),
    runWarmupS: num(values.warmup, 'BENCH_WARMUP_S', quick ? 0.5 : 1, 0),
    startWarmupS: quick ? 1 : 3,
    connections: Math.round(num(values.connections, 'BENCH_CONNECTIONS', 50, 1)),
    startTimeoutS: num(undefined, 'BENCH_START_TIMEOUT_S', 120, 5),
    scenarios: scenario === 'all' ? ['hello', 'api', 'edge', 'edge-api', 'auth', 'cache', 'observability'] : [scenario],
    ablate: values.ablate,
    strict: values.strict,
    markdown: values.markdown,
    keepTemp: values['keep-temp'],
    quick,
  }
}

// ---------------------------------------------------------------------------------------
// Child-process hygiene: every server is killed however this process ends.

const servers: ServerHandle[] = []
let shuttingDown: Promise<never> | undefined

async function stopAll(keepTemp: boolean): Promise<void> {
  await Promise.all(servers.map((s) => s.stop(3000)))
  if (!keepTemp) for (const s of servers) removeServerDir(s)
}

function abort(code: number, reason: string, keepTemp = false): Promise<never> {
  shuttingDown ??= (async () => {
    process.stderr.write(`\nbench: ${reason}; stopping ${servers.length} server(s)\n`)
    await stopAll(keepTemp).catch(() => undefined)
    process.exit(code)
  })()
  return shuttingDown
}

function installCleanup(): void {
  // Last resort: 'exit' handlers must be synchronous, so SIGKILL whatever still runs.
  process.on('exit', () => {
    for (const s of servers) s.killNow()
  })
  for (const [signal, code] of [['SIGINT', 130], ['SIGTERM', 143], ['SIGHUP', 129]] as const) {
    process.once(signal, () => void abort(code, `received ${signal}`))
  }
  process.on('uncaughtException', (err) => void abort(1, `crashed: ${err.stack ?? err.message}`))
  process.on('unhandledRejection', (err) => void abort(1, `crashed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`))
}

// ---------------------------------------------------------------------------------------

async function startTargets(scenarios: Scenario[], settings: Settings): Promise<Target[]> {
  const targets: Target[] = []
  for (const scenario of scenarios) {
    for (const variant of scenario.variants) {
      const server = await spawnServer({
        name: `${scenario.key}/${variant.key}`,
        script: scenario.script,
        preset: variant.preset,
        logToFile: variant.logToFile,
        config: mergeConfig(BENCH_CONFIG, variant.config),
        env: { ...variant.env, ...(variant.overrides === undefined ? {} : { BENCH_OVERRIDES: JSON.stringify(variant.overrides) }) },
      })
      servers.push(server)
      targets.push({ scenario, variant, server, path: '' })
    }
  }
  // All start at once: PGlite initialisation dominates and overlaps well.
  await Promise.all(
    targets.map(async (t) => {
      const server = t.server as ServerHandle
      try {
        const headers = { ...t.scenario.headers, ...t.variant.headers }
        const body = await waitUntilAnswering(server, t.scenario.readyPath, settings.startTimeoutS * 1000, headers)
        t.path = t.scenario.targetPath(body)
        // The target itself must answer 200 before it is worth loading.
        await waitUntilAnswering(server, t.path, 10_000, headers)
      } catch (err) {
        t.startError = err instanceof Error ? err.message : String(err)
        process.stderr.write(`bench: ${server.spec.name} FAILED to start: ${t.startError}\n`)
        await server.stop(1000)
        t.server = undefined
      }
    }),
  )
  return targets
}

function describeRun(m: RunMeasurement): string {
  const problems = [m.errors > 0 ? `${m.errors} errors` : '', m.timeouts > 0 ? `${m.timeouts} timeouts` : '', m.non2xx > 0 ? `${m.non2xx} non-2xx ${JSON.stringify(m.statusCodes)}` : '', m.requests === 0 ? 'no responses' : '']
  return problems.filter((p) => p !== '').join(', ')
}

async function runRounds(targets: Target[], scenarios: Scenario[], settings: Settings): Promise<RunRecord[]> {
  const runs: RunRecord[] = []
  const live = targets.filter((t) => t.server !== undefined)
  if (settings.startWarmupS > 0) {
    process.stdout.write(`warming up ${live.length} server(s), ${settings.startWarmupS} s each\n`)
    for (const t of live) await measure({ url: (t.server as ServerHandle).url + t.path, connections: settings.connections, durationS: settings.startWarmupS, headers: { ...t.scenario.headers, ...t.variant.headers } })
  }
  for (let round = 1; round <= settings.rounds; round++) {
    for (const scenario of scenarios) {
      const order = rotate(
        targets.filter((t) => t.scenario === scenario),
        round - 1,
      )
      for (const t of order) {
        const base = { round, scenario: scenario.key, variant: t.variant.key }
        const server = t.server
        if (server === undefined || server.failed()) {
          runs.push({ ...base, ok: false, flag: server === undefined ? 'server failed to start' : `server exited (code ${String(server.exit?.code)})` })
          continue
        }
        const url = server.url + t.path
        if (settings.runWarmupS > 0) await measure({ url, connections: settings.connections, durationS: settings.runWarmupS, headers: { ...scenario.headers, ...t.variant.headers } })
        const cpuBefore = server.cpuTimeMs()
        const m = await measure({ url, connections: settings.connections, durationS: settings.durationS, headers: { ...scenario.headers, ...t.variant.headers } })
        const cpuAfter = server.cpuTimeMs()
        const cpu = cpuBefore === undefined || cpuAfter === undefined ? {} : { serverCpuMs: cpuAfter - cpuBefore, cpuUsPerRequest: m.requests > 0 ? ((cpuAfter - cpuBefore) * 1000) / m.requests : Number.NaN }
        const flag = server.failed() ? `server exited during the run: ${server.output().split('\n').slice(-3).join(' | ')}` : m.ok ? undefined : describeRun(m)
        runs.push({ ...base, ...m, ...cpu, ok: flag === undefined, ...(flag === undefined ? {} : { flag }) })
        process.stdout.write(
          `[round ${round}/${settings.rounds}] ${`${scenario.key}/${t.variant.key}`.padEnd(30)} ${formatInt(m.reqPerSec).padStart(7)} req/s  p50 ${formatMs(m.latencyP50Ms)}  p99 ${formatMs(m.latencyP99Ms)}  mean ${m.latencyMeanMs.toFixed(2)} ms  server CPU ${cpu.cpuUsPerRequest === undefined ? 'n/a' : `${cpu.cpuUsPerRequest.toFixed(1)} µs/req`}${flag === undefined ? '' : `  FLAGGED: ${flag}`}\n`,
        )
      }
    }
  }
  return runs
}

function summarise(runs: RunRecord[], scenarios: Scenario[]): SummaryRow[] {
  const rows: SummaryRow[] = []
  for (const scenario of scenarios) {
    const ofVariant = (key: string): RunRecord[] => runs.filter((r) => r.scenario === scenario.key && r.variant === key)
    // Flagged runs are excluded from every median (and counted in `runs - okRuns`).
    const okRps = (key: string): number[] => ofVariant(key).filter((r) => r.ok).map((r) => r.reqPerSec ?? Number.NaN)
    const bareMedian = median(okRps(scenario.baseline))
    const bareCpu = median(
      ofVariant(scenario.baseline)
        .filter((r) => r.ok && r.cpuUsPerRequest !== undefined)
        .map((r) => r.cpuUsPerRequest as number),
    )
    for (const variant of scenario.variants) {
      const all = ofVariant(variant.key)
      const ok = all.filter((r) => r.ok)
      const paired: number[] = []
      for (const r of ok) {
        const bare = ofVariant(scenario.baseline).find((b) => b.round === r.round && b.ok)
        if (bare?.reqPerSec !== undefined && r.reqPerSec !== undefined && bare.reqPerSec > 0) paired.push(r.reqPerSec / bare.reqPerSec)
      }
      const medianRps = median(ok.map((r) => r.reqPerSec ?? Number.NaN))
      const medianCpu = median(ok.filter((r) => r.cpuUsPerRequest !== undefined).map((r) => r.cpuUsPerRequest as number))
      rows.push({
        scenario: scenario.key,
        variant: variant.key,
        runs: all.length,
        okRuns: ok.length,
        medianReqPerSec: medianRps,
        medianP50Ms: median(ok.map((r) => r.latencyP50Ms ?? Number.NaN)),
        medianP99Ms: median(ok.map((r) => r.latencyP99Ms ?? Number.NaN)),
        medianMeanLatencyMs: median(ok.map((r) => r.latencyMeanMs ?? Number.NaN)),
        ratioToBare: medianRps / bareMedian,
        pairedRatioToBare: median(paired),
        medianCpuUsPerRequest: medianCpu,
        cpuRatioToBare: bareCpu / medianCpu,
      })
    }
  }
  return rows
}

/** A target's verdict: the variant's median req/s against its baseline's, or NOT RUN. */
function judge(row: SummaryRow | undefined, target: number): 'PASS' | 'FAIL' | 'NOT RUN' {
  if (row === undefined) return 'NOT RUN'
  return Number.isFinite(row.ratioToBare) && row.ratioToBare >= target ? 'PASS' : 'FAIL'
}

/** autocannon records whole milliseconds, so a 0 is a sub-millisecond latency. */
function formatMs(ms: number): string {
  if (!Number.isFinite(ms)) return 'n/a'
  return ms < 1 ? '<1 ms' : `${ms} ms`
}

function printTables(summary: SummaryRow[], scenarios: Scenario[], settings: Settings): void {
  for (const scenario of scenarios) {
    const rows = summary
      .filter((s) => s.scenario === scenario.key)
      .map((s) => {
        const note = scenario.variants.find((v) => v.key === s.variant)?.note ?? ''
        return [
          s.variant,
          `${s.okRuns}/${s.runs}`,
          formatInt(s.medianReqPerSec),
          formatMs(s.medianP50Ms),
          formatMs(s.medianP99Ms),
          Number.isFinite(s.medianMeanLatencyMs) ? `${s.medianMeanLatencyMs.toFixed(2)} ms` : 'n/a',
          formatPercent(s.ratioToBare),
          formatPercent(s.pairedRatioToBare),
          Number.isFinite(s.medianCpuUsPerRequest) ? s.medianCpuUsPerRequest.toFixed(1) : 'n/a',
          formatPercent(s.cpuRatioToBare),
          note,
        ]
      })
    const b = scenario.baseline
    const table = formatTable(['variant', 'ok runs', 'median req/s', 'median p50', 'median p99', 'mean latency', `vs ${b}`, `paired vs ${b}`, 'server CPU µs/req', `CPU-based vs ${b}`, 'what'], rows, settings.markdown)
    process.stdout.write(`\n${scenario.title}\n${table}\n`)
  }
}

async function main(): Promise<void> {
  const settings = readSettings(process.argv.slice(2))
  installCleanup()
  const scenarios = scenariosFor(settings)
  const variantCount = scenarios.reduce((n, s) => n + s.variants.length, 0)
  const expectedS = variantCount * (settings.startWarmupS + settings.rounds * (settings.runWarmupS + settings.durationS))
  // The whole run is bounded: start-up, the expected load time, and generous slack.
  const budgetS = settings.startTimeoutS + expectedS * 1.5 + 120
  setTimeout(() => void abort(1, `exceeded the time budget of ${Math.round(budgetS)} s`), budgetS * 1000).unref()

  const startedAt = new Date()
  const loadBefore = loadavg()
  process.stdout.write(
    `Backbeat bench${settings.quick ? ' (quick)' : ''}: ${settings.rounds} round(s) x ${variantCount} server(s), ${settings.durationS} s runs after ${settings.runWarmupS} s warm-up, ${settings.connections} connections; about ${Math.ceil(expectedS / 60)} min of load\n` +
      `node ${process.version}, ${cpus().length} CPU(s) ${cpus()[0]?.model ?? ''}, load average ${loadBefore.map((l) => l.toFixed(2)).join(' ')}\n`,
  )

  const targets = await startTargets(scenarios, settings)
  const runs = await runRounds(targets, scenarios, settings)
  const summary = summarise(runs, scenarios)
  const loadAfter = loadavg()
  printTables(summary, scenarios, settings)

  // The issue's target is judged on the reference server's read route (scenario b, what
  // `npm run bench` is defined to load); the empty handler (scenario a) is reported beside
  // it as the stricter measure of the stack's own cost.
  const prod = summary.find((s) => s.scenario === 'api' && s.variant === 'production')
  const overhead = summary.find((s) => s.scenario === 'hello' && s.variant === 'production')
  const verdict = judge(prod, TARGET_RATIO)
  if (prod !== undefined) {
    process.stdout.write(
      `\nTarget: production keeps >= ${formatPercent(TARGET_RATIO)} of bare's req/s on the reference server's read route (scenario b): ${verdict} (${formatPercent(prod.ratioToBare)} of bare; paired per round ${formatPercent(prod.pairedRatioToBare)})\n`,
    )
  }
  if (overhead !== undefined) {
    process.stdout.write(
      `Stack overhead on an empty handler (scenario a, stricter than the target): production at ${formatPercent(overhead.ratioToBare)} of bare (paired ${formatPercent(overhead.pairedRatioToBare)})\n`,
    )
  }

  // Judged like the foundation target: on the reference server's read route (d); the empty
  // handler (c) is printed beside it as the stricter measure.
  const edge = summary.find((s) => s.scenario === 'edge-api' && s.variant === 'edge')
  const edgeHello = summary.find((s) => s.scenario === 'edge' && s.variant === 'edge')
  const edgeVerdict = judge(edge, EDGE_TARGET_RATIO)
  if (edge !== undefined) {
    process.stdout.write(
      `Target: security headers + CORS + rate limit (memory) keep >= ${formatPercent(EDGE_TARGET_RATIO)} of the foundation stack's req/s on the read route (scenario d): ${edgeVerdict} (${formatPercent(edge.ratioToBare)}; paired per round ${formatPercent(edge.pairedRatioToBare)}; CPU-based ${formatPercent(edge.cpuRatioToBare)})\n`,
    )
  }
  if (edgeHello !== undefined) {
    process.stdout.write(
      `Edge cost on an empty handler (scenario c, stricter than the target): ${formatPercent(edgeHello.ratioToBare)} of foundation (paired ${formatPercent(edgeHello.pairedRatioToBare)}; CPU-based ${formatPercent(edgeHello.cpuRatioToBare)})\n`,
    )
  }

  const auth = summary.find((s) => s.scenario === 'auth' && s.variant === 'bearer')
  if (auth !== undefined) {
    process.stdout.write(
      `Target: a hot bearer token keeps >= ${formatPercent(AUTH_TARGET_RATIO)} of the public route's req/s (scenario e): ${judge(auth, AUTH_TARGET_RATIO)} (${formatPercent(auth.ratioToBare)}; paired per round ${formatPercent(auth.pairedRatioToBare)}; CPU-based ${formatPercent(auth.cpuRatioToBare)})\n`,
    )
  }

  const cached = summary.find((s) => s.scenario === 'cache' && s.variant === 'bare-cached')
  if (cached !== undefined) {
    process.stdout.write(
      `Target: a cached response keeps >= ${formatPercent(CACHE_TARGET_RATIO)} of the same route's constant body on bare (scenario f): ${judge(cached, CACHE_TARGET_RATIO)} (${formatPercent(cached.ratioToBare)}; paired per round ${formatPercent(cached.pairedRatioToBare)}; CPU-based ${formatPercent(cached.cpuRatioToBare)})\n`,
    )
  }

  const observed = summary.find((s) => s.scenario === 'observability' && s.variant === 'observability-on')
  if (observed !== undefined) {
    process.stdout.write(
      `Target: metrics + tracing (10 %) + error monitoring keep >= ${formatPercent(OBSERVABILITY_TARGET_RATIO)} of the read route's req/s without them (scenario g): ${judge(observed, OBSERVABILITY_TARGET_RATIO)} (${formatPercent(observed.ratioToBare)}; paired per round ${formatPercent(observed.pairedRatioToBare)}; CPU-based ${formatPercent(observed.cpuRatioToBare)})\n`,
    )
  }

  const serverReport = targets.map((t) => ({
    name: `${t.scenario.key}/${t.variant.key}`,
    preset: t.variant.preset,
    overrides: t.variant.overrides ?? null,
    path: t.path,
    startError: t.startError ?? null,
    failed: t.server === undefined || t.server.failed(),
    logBytes: t.server?.logBytes() ?? 0,
  }))
  const flagged = runs.filter((r) => !r.ok)
  const failedServers = serverReport.filter((s) => s.failed)

  mkdirSync(repoPath('bench', 'results'), { recursive: true })
  const file = repoPath('bench', 'results', `${startedAt.toISOString().replace(/[:.]/g, '-')}.json`)
  const report = {
    startedAt: startedAt.toISOString(),
    finishedAt: new Date().toISOString(),
    machine: { node: process.version, cpus: cpus().length, cpuModel: cpus()[0]?.model ?? null, memoryBytes: totalmem(), kernel: release(), loadAverageBefore: loadBefore, loadAverageAfter: loadAfter },
    settings,
    target: { ratio: TARGET_RATIO, scenario: 'api', variant: 'production', verdict, measured: prod?.ratioToBare ?? null, paired: prod?.pairedRatioToBare ?? null },
    overhead: { scenario: 'hello', variant: 'production', measured: overhead?.ratioToBare ?? null, paired: overhead?.pairedRatioToBare ?? null },
    edgeHello: { scenario: 'edge', variant: 'edge', measured: edgeHello?.ratioToBare ?? null, paired: edgeHello?.pairedRatioToBare ?? null, cpuBased: edgeHello?.cpuRatioToBare ?? null },
    edgeTarget: { ratio: EDGE_TARGET_RATIO, scenario: 'edge-api', variant: 'edge', verdict: edgeVerdict, measured: edge?.ratioToBare ?? null, paired: edge?.pairedRatioToBare ?? null, cpuBased: edge?.cpuRatioToBare ?? null },
    summary,
    servers: serverReport,
    runs,
  }
  writeFileSync(file, `${JSON.stringify(report, null, 2)}\n`)
  process.stdout.write(`raw results: ${file}\n`)

  await stopAll(settings.keepTemp)
  if (settings.keepTemp) for (const s of servers) process.stdout.write(`kept ${s.spec.name}: ${s.dir}\n`)

  let code = 0
  if (failedServers.length > 0) {
    process.stderr.write(`bench: ${failedServers.length} server(s) failed: ${failedServers.map((s) => s.name).join(', ')}\n`)
    code = 1
  }
  if (flagged.length > 0) {
    process.stderr.write(`bench: ${flagged.length} run(s) flagged and left out of the medians:\n${flagged.map((r) => `  round ${r.round} ${r.scenario}/${r.variant}: ${r.flag ?? ''}`).join('\n')}\n`)
    code = 1
  }
  if (settings.strict && (verdict === 'FAIL' || edgeVerdict === 'FAIL')) code = 1
  process.exit(code)
}

await main().catch((err: unknown) => abort(1, err instanceof Error ? (err.stack ?? err.message) : String(err)))

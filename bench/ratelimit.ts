/**
 * `npm run bench:ratelimit`: Backbeat's rate limiter side by side with @fastify/rate-limit and
 * rate-limiter-flexible, each alone in front of the same Fastify route, with the memory store
 * and with Redis (REDIS_URL), plus the same server with no limiter as the ceiling.
 *
 * One server process per variant; interleaved, rotated rounds of autocannon; medians of
 * req/s and of server CPU per request; ratios to Backbeat on the same store. Also prints the
 * rate-limit fields each variant sends, since being fast with wrong headers is no win.
 *
 *   REDIS_URL=redis://127.0.0.1:6379 npm run bench:ratelimit
 *   npm run bench:ratelimit -- --rounds 3 --duration 3 --store memory
 */
import { parseArgs } from 'node:util'
import { cpus, loadavg } from 'node:os'
import { measure } from './load.ts'
import { removeServerDir, repoPath, spawnServer, waitUntilAnswering, type ServerHandle } from './servers.ts'
import { formatInt, formatPercent, formatTable, median, rotate } from './stats.ts'

const IMPLS = ['none', 'backbeat', 'fastify-rate-limit', 'flexible'] as const
const IMPL_NOTES: Record<(typeof IMPLS)[number], string> = {
  none: 'no limiter (ceiling)',
  backbeat: 'backbeat/ratelimit: GCRA, RateLimit-Policy + RateLimit (draft-10)',
  'fastify-rate-limit': '@fastify/rate-limit 11: fixed window, x-ratelimit-*',
  flexible: 'rate-limiter-flexible 11 in an onRequest hook, X-RateLimit-*',
}

const { values } = parseArgs({
  options: {
    rounds: { type: 'string', default: '5' },
    duration: { type: 'string', default: '5' },
    warmup: { type: 'string', default: '1' },
    connections: { type: 'string', default: '50' },
    store: { type: 'string', default: 'all' },
    markdown: { type: 'boolean', default: false },
  },
})
const rounds = Number(values.rounds)
const durationS = Number(values.duration)
const warmupS = Number(values.warmup)
const connections = Number(values.connections)
for (const [name, n] of [['rounds', rounds], ['duration', durationS], ['connections', connections]] as const) {
  if (!Number.isFinite(n) || n <= 0) throw new Error(`--${name} must be a positive number`)
}
const redisUrl = process.env.REDIS_URL ?? ''
const stores = values.store === 'all' ? (redisUrl === '' ? ['memory'] : ['memory', 'redis']) : [values.store]
if (stores.some((s) => s !== 'memory' && s !== 'redis')) throw new Error('--store must be memory, redis or all')
if (stores.includes('redis') && redisUrl === '') throw new Error('the redis variants need REDIS_URL (e.g. redis://127.0.0.1:6379; `.ci/run` starts one)')
if (values.store === 'all' && redisUrl === '') process.stderr.write('REDIS_URL is not set: measuring the memory store only\n')

interface Target {
  key: string
  impl: (typeof IMPLS)[number]
  store: string
  server: ServerHandle
}

const targets: Target[] = []
process.on('exit', () => {
  for (const t of targets) t.server.killNow()
})
for (const store of stores) {
  for (const impl of IMPLS) {
    if (impl === 'none' && store === 'redis') continue
    const key = impl === 'none' ? 'none' : `${impl}/${store}`
    const server = await spawnServer({
      name: `ratelimit-${key}`,
      script: repoPath('bench', 'ratelimit-server.ts'),
      preset: 'bare',
      logToFile: false,
      env: { RL_IMPL: impl, RL_STORE: store, ...(redisUrl === '' ? {} : { REDIS_URL: redisUrl }) },
    })
    targets.push({ key, impl, store, server })
  }
}
await Promise.all(targets.map((t) => waitUntilAnswering(t.server, '/bench/hello', 30_000)))

process.stdout.write(`rate-limit side by side: ${targets.length} servers, ${rounds} rounds x ${durationS} s, ${connections} connections; node ${process.version}, ${cpus().length} CPU(s), load ${loadavg()[0]?.toFixed(2) ?? ''}\n\n`)

// What each variant says about the limit on an allowed request.
const headerRows: string[][] = []
for (const t of targets) {
  const response = await fetch(`${t.server.url}/bench/hello`)
  const fields = [...response.headers].filter(([name]) => /ratelimit|retry-after/i.test(name)).map(([name, value]) => `${name}: ${value}`)
  headerRows.push([t.key, fields.join('; ') || '(none)'])
}
process.stdout.write(`${formatTable(['variant', 'rate-limit fields on an allowed response'], headerRows, values.markdown)}\n\n`)

const url = (t: Target): string => `${t.server.url}/bench/hello`
for (const t of targets) await measure({ url: url(t), connections, durationS: 2 })

interface Sample {
  reqPerSec: number
  cpuUsPerRequest: number
  ok: boolean
}
const samples = new Map<string, Sample[]>(targets.map((t) => [t.key, []]))
for (let round = 0; round < rounds; round++) {
  for (const t of rotate(targets, round)) {
    if (warmupS > 0) await measure({ url: url(t), connections, durationS: warmupS })
    const before = t.server.cpuTimeMs() ?? Number.NaN
    const m = await measure({ url: url(t), connections, durationS })
    const cpuUs = (((t.server.cpuTimeMs() ?? Number.NaN) - before) * 1000) / m.requests
    samples.get(t.key)?.push({ reqPerSec: m.reqPerSec, cpuUsPerRequest: cpuUs, ok: m.ok })
    process.stdout.write(`[round ${round + 1}/${rounds}] ${t.key.padEnd(28)} ${formatInt(m.reqPerSec).padStart(7)} req/s  ${cpuUs.toFixed(1)} µs CPU/req${m.ok ? '' : `  FLAGGED: ${m.errors} errors, ${m.non2xx} non-2xx`}\n`)
  }
}

const rows: string[][] = []
let verdict = true
for (const store of stores) {
  const ours = targets.find((t) => t.impl === 'backbeat' && t.store === store)
  const stat = (t: Target | undefined, field: 'reqPerSec' | 'cpuUsPerRequest'): number => median((samples.get(t?.key ?? '') ?? []).filter((s) => s.ok).map((s) => s[field]))
  const oursRps = stat(ours, 'reqPerSec')
  const oursCpu = stat(ours, 'cpuUsPerRequest')
  for (const t of targets.filter((x) => x.store === store || (x.impl === 'none' && store === 'memory'))) {
    const rps = stat(t, 'reqPerSec')
    const cpu = stat(t, 'cpuUsPerRequest')
    const okRuns = (samples.get(t.key) ?? []).filter((s) => s.ok).length
    rows.push([t.key, `${okRuns}/${rounds}`, formatInt(rps), Number.isFinite(cpu) ? cpu.toFixed(1) : 'n/a', formatPercent(oursRps / rps), formatPercent(cpu / oursCpu), IMPL_NOTES[t.impl]])
    if (t.impl !== 'backbeat' && t.impl !== 'none' && !(oursRps >= rps * 0.97)) verdict = false
  }
}
process.stdout.write(
  `\n${formatTable(['variant', 'ok runs', 'median req/s', 'server CPU µs/req', 'backbeat req/s as share of this', 'this CPU/req as share of backbeat', 'what'], rows, values.markdown)}\n`,
)
process.stdout.write(`\nTarget: backbeat at least as fast as @fastify/rate-limit and rate-limiter-flexible on the same store (within 3 % noise): ${verdict ? 'PASS' : 'FAIL'}\n`)

await Promise.all(targets.map((t) => t.server.stop(3000)))
for (const t of targets) removeServerDir(t.server)
process.exit(verdict ? 0 : 1)

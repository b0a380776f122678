/**
 * Rate-limit engine microbenchmarks, in this process (no HTTP):
 *
 *  1. memory: decisions per second of `MemoryRateLimitStore.consume` (GCRA, sliding and fixed
 *     window) and of the whole `RateLimiter.check` engine, over 10,000 rotating client keys.
 *     Target: >= 2,000,000 decisions/s for the store.
 *  2. redis: decisions per second of `RedisRateLimitStore.consume` (one EVALSHA of our script)
 *     side by side with a raw `EVALSHA` of a trivial script (`return 1`) and with
 *     rate-limiter-flexible's `RateLimiterRedis.consume`, on the same ioredis client, with the
 *     same number of requests in flight, in interleaved rotated rounds. Also counts the
 *     commands Redis executed per decision (INFO commandstats) to prove one round trip.
 *     Target: ours within 1.2x of the raw EVALSHA.
 *
 *   npm run bench:ratelimit -- --micro            # both (needs REDIS_URL for part 2)
 *   node --conditions=backbeat-source bench/ratelimit-micro.ts --rounds 7 --duration 2
 */
import { parseArgs } from 'node:util'
import { MemoryRateLimitStore, RateLimiter, RedisRateLimitStore, type RateLimitPolicy, type RateLimitRule } from 'backbeat/ratelimit'
import { RedisConnection } from 'backbeat/stores'
import { RateLimiterRedis } from 'rate-limiter-flexible'
import { formatInt, formatTable, median, rotate } from './stats.ts'

const MEMORY_TARGET = 2_000_000
const REDIS_TARGET_RATIO = 1.2
const KEYS = 10_000

interface Settings {
  rounds: number
  durationS: number
  inFlight: number
  memory: boolean
  redis: boolean
  markdown: boolean
}

function readSettings(): Settings {
  const { values } = parseArgs({
    options: {
      rounds: { type: 'string', default: '5' },
      duration: { type: 'string', default: '2' },
      'in-flight': { type: 'string', default: '64' },
      only: { type: 'string', default: 'all' },
      markdown: { type: 'boolean', default: false },
    },
  })
  const positive = (raw: string, name: string): number => {
    const n = Number(raw)
    if (!Number.isFinite(n) || n <= 0) throw new Error(`--${name} must be a positive number, got "${raw}"`)
    return n
  }
  if (!['all', 'memory', 'redis'].includes(values.only)) throw new Error(`--only must be memory, redis or all`)
  return {
    rounds: Math.round(positive(values.rounds, 'rounds')),
    durationS: positive(values.duration, 'duration'),
    inFlight: Math.round(positive(values['in-flight'], 'in-flight')),
    memory: values.only !== 'redis',
    redis: values.only !== 'memory',
    markdown: values.markdown,
  }
}

const clientKeys = Array.from({ length: KEYS }, (_, i) => `ip:10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}`)

function rule(algorithm: RateLimitRule['algorithm'], limit: number): RateLimitPolicy {
  return { name: `bench-${algorithm}`, algorithm, limit, windowMs: 60_000, burst: limit, onStoreError: 'memory', penalize: false }
}

// ---------------------------------------------------------------------------------------
// 1. Memory store

interface MemoryCase {
  name: string
  /** Runs `n` decisions; returns how many were allowed (kept so the work is not dead code). */
  run: (n: number) => number
}

function memoryCases(): MemoryCase[] {
  const cases: MemoryCase[] = []
  // Limits chosen so that some clients get refused within a run: both paths are measured.
  for (const algorithm of ['gcra', 'sliding-window', 'fixed-window'] as const) {
    const store = new MemoryRateLimitStore({ sweepIntervalMs: 0 })
    const r = rule(algorithm, 1_000)
    cases.push({
      name: `store.consume ${algorithm}`,
      run: (n) => {
        let allowed = 0
        const now = Date.now()
        for (let i = 0; i < n; i++) if (store.consume(clientKeys[i % KEYS] as string, r, 1, now).allowed) allowed++
        return allowed
      },
    })
  }
  const limiter = new RateLimiter({ store: new MemoryRateLimitStore({ sweepIntervalMs: 0 }), penalty: { rejections: 50, windowMs: 60_000, blockMs: 300_000, maxBlockMs: 3_600_000 } })
  const burst = { ...rule('gcra', 1_000), penalize: true }
  const daily = { ...rule('fixed-window', 100_000), name: 'daily', windowMs: 86_400_000 }
  const one = clientKeys.map((key) => [{ policy: burst, key }])
  const two = clientKeys.map((key) => [
    { policy: burst, key },
    { policy: daily, key },
  ])
  for (const [name, checks] of [
    ['RateLimiter.check 1 policy + penalty', one],
    ['RateLimiter.check 2 policies + penalty', two],
  ] as const) {
    cases.push({
      name,
      run: (n) => {
        let allowed = 0
        for (let i = 0; i < n; i++) {
          const result = limiter.check(checks[i % KEYS] as (typeof checks)[number], 1)
          if (!(result instanceof Promise) && result.allowed) allowed++
        }
        return allowed
      },
    })
  }
  return cases
}

/** Decisions per second of one case over about `durationS`, in batches of 100,000. */
function timeMemoryCase(c: MemoryCase, durationS: number): number {
  const batch = 100_000
  let decisions = 0
  const start = process.hrtime.bigint()
  const budget = BigInt(Math.round(durationS * 1e9))
  let elapsed = 0n
  while (elapsed < budget) {
    c.run(batch)
    decisions += batch
    elapsed = process.hrtime.bigint() - start
  }
  return decisions / (Number(elapsed) / 1e9)
}

function runMemory(settings: Settings): boolean {
  const cases = memoryCases()
  for (const c of cases) timeMemoryCase(c, 0.5) // JIT warm-up
  const samples = new Map<string, number[]>(cases.map((c) => [c.name, []]))
  for (let round = 0; round < settings.rounds; round++) {
    for (const c of rotate(cases, round)) samples.get(c.name)?.push(timeMemoryCase(c, settings.durationS))
  }
  const rows = cases.map((c) => {
    const s = samples.get(c.name) ?? []
    return [c.name, formatInt(median(s)), formatInt(Math.min(...s)), formatInt(Math.max(...s)), `${(1e9 / median(s)).toFixed(0)} ns`]
  })
  process.stdout.write(`\nMemory store, ${KEYS} client keys, ${settings.rounds} rounds x ${settings.durationS} s (median of rounds)\n`)
  process.stdout.write(`${formatTable(['case', 'decisions/s', 'min', 'max', 'per decision'], rows, settings.markdown)}\n`)
  const gcra = median(samples.get('store.consume gcra') ?? [])
  const pass = gcra >= MEMORY_TARGET
  process.stdout.write(`Target: memory store (GCRA) >= ${formatInt(MEMORY_TARGET)} decisions/s: ${pass ? 'PASS' : 'FAIL'} (${formatInt(gcra)})\n`)
  return pass
}

// ---------------------------------------------------------------------------------------
// 2. Redis store against a raw EVALSHA and rate-limiter-flexible

interface RedisCase {
  name: string
  one: (i: number) => Promise<unknown>
}

interface RedisSample {
  perSecond: number
  /** CPU this process spent per call, µs (ioredis encoding, socket writes, reply parsing). */
  clientUs: number
  /** CPU the Redis server spent per call, µs (INFO cpu: parsing, the script, replies). */
  serverUs: number
}

async function redisCpuS(connection: RedisConnection): Promise<number> {
  const info = await connection.client.info('cpu')
  const field = (name: string): number => Number(new RegExp(`^${name}:([\\d.]+)`, 'm').exec(info)?.[1] ?? Number.NaN)
  return field('used_cpu_user') + field('used_cpu_sys')
}

/** Keeps `inFlight` calls outstanding for `durationS`; returns completed calls per second and CPU per call. */
async function timeRedisCase(c: RedisCase, durationS: number, inFlight: number, connection: RedisConnection): Promise<RedisSample> {
  let done = 0
  let next = 0
  const serverBefore = await redisCpuS(connection)
  const clientBefore = process.cpuUsage()
  const start = performance.now()
  const deadline = start + durationS * 1000
  const worker = async (): Promise<void> => {
    while (performance.now() < deadline) {
      await c.one(next++)
      done++
    }
  }
  await Promise.all(Array.from({ length: inFlight }, worker))
  const elapsedS = (performance.now() - start) / 1000
  const client = process.cpuUsage(clientBefore)
  const serverAfter = await redisCpuS(connection)
  return { perSecond: done / elapsedS, clientUs: (client.user + client.system) / done, serverUs: ((serverAfter - serverBefore) * 1e6) / done }
}

async function commandCalls(connection: RedisConnection): Promise<Map<string, number>> {
  const info = await connection.client.info('commandstats')
  const calls = new Map<string, number>()
  for (const match of info.matchAll(/^cmdstat_([^:]+):calls=(\d+)/gm)) calls.set(match[1] as string, Number(match[2]))
  return calls
}

async function runRedis(settings: Settings): Promise<boolean> {
  const url = process.env.REDIS_URL
  if (url === undefined || url === '') {
    process.stderr.write('\nRedis part skipped: set REDIS_URL (e.g. redis://127.0.0.1:6379; `.ci/run` starts one)\n')
    return false
  }
  const connection = new RedisConnection({ url, name: 'bench-ratelimit' })
  await connection.connect()
  const client = connection.client
  const store = new RedisRateLimitStore(connection, { prefix: 'bench:rl:' })
  // A day's window: GCRA resolves at most 100,000 units per second per client.
  const r = { ...rule('gcra', 1_000_000_000), windowMs: 86_400_000 }
  const trivialSha = (await client.script('LOAD', 'return 1')) as string
  const flexible = new RateLimiterRedis({ storeClient: client, keyPrefix: 'bench:rlf', points: 1_000_000_000, duration: 60 })
  // The same arguments and reply shape as our script, doing nothing: the floor for any
  // script that takes a rule and answers a decision.
  const shapedSha = (await client.script('LOAD', 'return {1, 2, 3}')) as string
  const cases: RedisCase[] = [
    { name: 'raw EVALSHA `return 1`', one: (i) => client.evalsha(trivialSha, 1, `bench:raw:${clientKeys[i % KEYS] as string}`) },
    {
      name: 'raw EVALSHA, our arguments and reply shape',
      one: (i) => client.evalsha(shapedSha, 2, `bench:raw:{${clientKeys[i % KEYS] as string}}:b`, `bench:raw:{${clientKeys[i % KEYS] as string}}:!penalty`, 'c', '', 'g 1000000000 86400000 1000000000', '1', '0'),
    },
    { name: 'backbeat RedisRateLimitStore.consume (GCRA)', one: (i) => store.consume(clientKeys[i % KEYS] as string, r, 1, 0) },
    { name: 'rate-limiter-flexible RateLimiterRedis.consume', one: (i) => flexible.consume(clientKeys[i % KEYS] as string, 1) },
  ]
  // Round trips per decision: what Redis executed for 1,000 decisions of our store.
  await store.consume('warm-up', r, 1, 0) // loads the script (NOSCRIPT, then EVAL) once
  const before = await commandCalls(connection)
  for (let i = 0; i < 1000; i++) await store.consume(clientKeys[i % KEYS] as string, r, 1, 0)
  const after = await commandCalls(connection)
  const executed = [...after].map(([cmd, n]) => [cmd, n - (before.get(cmd) ?? 0)] as const).filter(([cmd, n]) => n > 0 && cmd !== 'info')
  process.stdout.write(`\nRedis commands executed for 1,000 decisions of our store (EVALSHA is the round trip; the others run inside the script): ${executed.map(([cmd, n]) => `${cmd} x${n}`).join(', ')}\n`)

  for (const c of cases) await timeRedisCase(c, 0.5, settings.inFlight, connection) // warm-up
  const samples = new Map<string, RedisSample[]>(cases.map((c) => [c.name, []]))
  for (let round = 0; round < settings.rounds; round++) {
    for (const c of rotate(cases, round)) samples.get(c.name)?.push(await timeRedisCase(c, settings.durationS, settings.inFlight, connection))
  }
  const rate = (name: string | undefined): number => median((samples.get(name ?? '') ?? []).map((s) => s.perSecond))
  const raw = rate(cases[0]?.name)
  const rows = cases.map((c) => {
    const s = samples.get(c.name) ?? []
    const perSecond = s.map((x) => x.perSecond)
    return [
      c.name,
      formatInt(median(perSecond)),
      formatInt(Math.min(...perSecond)),
      formatInt(Math.max(...perSecond)),
      `${(raw / median(perSecond)).toFixed(2)}x`,
      median(s.map((x) => x.clientUs)).toFixed(1),
      median(s.map((x) => x.serverUs)).toFixed(1),
    ]
  })
  process.stdout.write(`\nRedis (${url.replace(/\/\/[^@]*@/, '//')}), ${settings.inFlight} calls in flight, ${settings.rounds} rounds x ${settings.durationS} s (median of rounds)\n`)
  process.stdout.write(`${formatTable(['case', 'decisions/s', 'min', 'max', 'time vs raw EVALSHA', 'client CPU µs/call', 'Redis CPU µs/call'], rows, settings.markdown)}\n`)
  const ours = rate(cases[2]?.name)
  const ratio = raw / ours
  const roundTrips = (after.get('evalsha') ?? 0) + (after.get('eval') ?? 0) - (before.get('evalsha') ?? 0) - (before.get('eval') ?? 0)
  const pass = ratio <= REDIS_TARGET_RATIO && roundTrips === 1000
  process.stdout.write(`Target: one round trip per decision and within ${REDIS_TARGET_RATIO}x of a raw EVALSHA: ${pass ? 'PASS' : 'FAIL'} (${String(roundTrips / 1000)} round trip(s) per decision after the first, ${ratio.toFixed(2)}x)\n`)
  // Leave the Redis as we found it (SCAN, not KEYS: the server may be shared).
  let cursor = '0'
  do {
    const [nextCursor, keys] = await client.scan(cursor, 'MATCH', 'bench:*', 'COUNT', 1000)
    cursor = nextCursor
    if (keys.length > 0) await client.unlink(...keys)
  } while (cursor !== '0')
  await connection.close()
  return pass
}

const settings = readSettings()
process.stdout.write(`rate-limit microbenchmarks: node ${process.version}\n`)
let ok = true
if (settings.memory) ok = runMemory(settings) && ok
if (settings.redis) ok = (await runRedis(settings)) && ok
process.exit(ok ? 0 : 1)

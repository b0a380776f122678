/**
 * Tiered cache engine microbenchmarks, in this process (no HTTP), side by side with the floor
 * each tier is built on and with bentocache doing the same work (`npm run bench:cache-engine`):
 *
 *  A. L1 hit: a bare `lru-cache` get against `TieredCache.peek` (sync), `TieredCache.get` /
 *     `getOrSet` served from L1 and bentocache's `getOrSet` memory-tier hit, over a 1,000-key
 *     working set and over one hot key. The value is the same small object (a track) everywhere.
 *     Targets: `peek` within 1.5x of the bare (sync) get; the promise-returning `get`/`getOrSet`
 *     within 1.5x of the same bare get wrapped in one awaited async function (no promise API can
 *     be faster than that wrapper, itself ~3x the sync get).
 *  B. L2 hit: a raw ioredis `getBuffer` of the same bytes as our stored entry against
 *     `TieredCache.get` with `l1: false` over a `RedisCacheStore` and against bentocache with only
 *     its Redis L2 driver, one call at a time (latency) and with `--in-flight` calls outstanding
 *     (throughput), on one shared ioredis client. Target: TieredCache within 1.2x of the raw GET.
 *
 * Interleaved rounds, each rotating the order of the variants; medians of rounds. Exits 1 when
 * a target is missed (like the other micro benchmarks), so CI can read it.
 *
 *   node --conditions=backbeat-source bench/cache-engine.ts [--rounds 7] [--duration 0.5] [--only l1|l2]
 *        [--in-flight 32] [--markdown] [--json]
 *
 * `--json` prints a JSON summary on stdout and moves the tables to stderr. Part B needs Redis
 * (REDIS_URL, default redis://127.0.0.1:6379); its keys live under a unique prefix and are
 * removed at the end.
 */
import { parseArgs } from 'node:util'
import { BentoCache, bentostore } from 'bentocache'
import { memoryDriver } from 'bentocache/drivers/memory'
import { redisDriver } from 'bentocache/drivers/redis'
import { LRUCache } from 'lru-cache'
import { RedisCacheStore, TieredCache } from 'backbeat/cache'
import { RedisConnection } from 'backbeat/stores'
import { formatInt, formatTable, median, rotate } from './stats.ts'

const L1_TARGET = 1.5
/** `get`/`getOrSet` against the awaited async wrapper of the bare get. */
const L1_ASYNC_TARGET = 1.5
const L2_TARGET = 1.2
const KEYS = 1_000
const TTL_S = 3_600

interface Settings {
  rounds: number
  durationS: number
  inFlight: number
  l1: boolean
  l2: boolean
  markdown: boolean
  json: boolean
  redisUrl: string
}

function readSettings(): Settings {
  const { values } = parseArgs({
    options: {
      rounds: { type: 'string', default: '7' },
      duration: { type: 'string', default: '0.5' },
      'in-flight': { type: 'string', default: '32' },
      only: { type: 'string', default: 'all' },
      markdown: { type: 'boolean', default: false },
      json: { type: 'boolean', default: false },
    },
  })
  const positive = (raw: string, name: string): number => {
    const n = Number(raw)
    if (!Number.isFinite(n) || n <= 0) throw new Error(`--${name} must be a positive number, got "${raw}"`)
    return n
  }
  if (!['all', 'l1', 'l2'].includes(values.only)) throw new Error('--only must be l1, l2 or all')
  return {
    rounds: Math.round(positive(values.rounds, 'rounds')),
    durationS: positive(values.duration, 'duration'),
    inFlight: Math.round(positive(values['in-flight'], 'in-flight')),
    l1: values.only !== 'l2',
    l2: values.only !== 'l1',
    markdown: values.markdown,
    json: values.json,
    redisUrl: process.env.REDIS_URL ?? 'redis://127.0.0.1:6379',
  }
}

const settings = readSettings()
/** Tables go to stdout, or to stderr when stdout carries the JSON summary. */
const out = (text: string): void => {
  ;(settings.json ? process.stderr : process.stdout).write(text)
}

/** What a music API caches most: one track, a few hundred bytes as JSON. */
function track(i: number): Record<string, unknown> {
  return {
    id: `t${i}`,
    title: `Blue in Green (take ${i})`,
    durationMs: 337_000 + i,
    explicit: false,
    isrc: `USSM1590${String(i).padStart(4, '0')}`,
    popularity: i % 100,
    artist: { id: 'r9', name: 'Miles Davis' },
    album: { id: 'a1', title: 'Kind of Blue', year: 1959, label: 'Columbia' },
    genres: ['jazz', 'modal jazz', 'cool jazz'],
    previewUrl: `https://cdn.backbeat.test/previews/t${i}.mp3`,
  }
}

const userKeys = Array.from({ length: KEYS }, (_, i) => `track:t${i}`)
const values = userKeys.map((_, i) => track(i))
const HOT = userKeys[0] as string
/** getOrSet never answers undefined (a miss runs the loader, which throws here): check the value's shape instead. */
const isTrack = (value: unknown): boolean => typeof value === 'object' && value !== null && 'id' in value

/** One result row of the JSON summary. */
interface CaseSummary {
  name: string
  nsPerOp: number
  minNsPerOp: number
  maxNsPerOp: number
  opsPerSecond: number
  ratio: number
  /** L1 only: time vs the awaited async wrapper of the bare get. */
  asyncRatio?: number
  clientCpuUsPerOp?: number
}

// ---------------------------------------------------------------------------------------
// A. L1 hits

interface L1Case {
  name: string
  group: 'working set' | 'hot key'
  baseline?: true
  asyncBaseline?: true
  /** Which target the case is held to: the sync get (peek) or the awaited async wrapper (get, getOrSet). */
  target?: 'sync' | 'async'
  /** Runs `n` lookups starting at key index `from`; resolves how many hit (kept so the work is not dead code). */
  run: (from: number, n: number) => number | Promise<number>
}

async function l1Cases(): Promise<{ cases: L1Case[]; close: () => Promise<void> }> {
  const lru = new LRUCache<string, object>({ max: 10_000 })
  const tiered = new TieredCache({ namespace: 'bench', l1: { maxEntries: 10_000 }, defaultTtlS: TTL_S })
  const bento = new BentoCache({ default: 'memory', stores: { memory: bentostore().useL1Layer(memoryDriver({ maxItems: 10_000, serialize: false })) } })
  // bentocache's default: the memory tier holds JSON text and parses it on every hit.
  const bentoSerialized = new BentoCache({ default: 'memory', stores: { memory: bentostore().useL1Layer(memoryDriver({ maxItems: 10_000 })) } })
  let loads = 0
  const never = (): object => {
    loads++
    throw new Error('a hit was expected: the loader ran')
  }
  // The floor of any promise-returning API over the same LRU: an async call and its await.
  const lruAsync = async (key: string): Promise<object | undefined> => lru.get(key)
  for (const [i, key] of userKeys.entries()) {
    const value = values[i] as object
    lru.set(key, value)
    await tiered.set(key, value, { ttlS: TTL_S })
    await bento.set({ key, value, ttl: '1h' })
    await bentoSerialized.set({ key, value, ttl: '1h' })
  }

  const cases: L1Case[] = []
  for (const group of ['working set', 'hot key'] as const) {
    const keyAt = group === 'hot key' ? (): string => HOT : (i: number): string => userKeys[i % KEYS] as string
    cases.push(
      {
        name: 'lru-cache get (sync)',
        group,
        baseline: true,
        run: (from, n) => {
          let hits = 0
          for (let i = from; i < from + n; i++) if (lru.get(keyAt(i)) !== undefined) hits++
          return hits
        },
      },
      {
        name: 'lru-cache get in an async fn, awaited',
        group,
        asyncBaseline: true,
        run: async (from, n) => {
          let hits = 0
          for (let i = from; i < from + n; i++) if ((await lruAsync(keyAt(i))) !== undefined) hits++
          return hits
        },
      },
      {
        name: 'TieredCache.peek (L1 hit, sync)',
        group,
        target: 'sync',
        run: (from, n) => {
          let hits = 0
          for (let i = from; i < from + n; i++) if (tiered.peek(keyAt(i)) !== undefined) hits++
          return hits
        },
      },
      {
        name: 'TieredCache.get (L1 hit)',
        group,
        target: 'async',
        run: async (from, n) => {
          let hits = 0
          for (let i = from; i < from + n; i++) if ((await tiered.get(keyAt(i))) !== undefined) hits++
          return hits
        },
      },
      {
        name: 'TieredCache.getOrSet (L1 hit)',
        group,
        target: 'async',
        run: async (from, n) => {
          let hits = 0
          for (let i = from; i < from + n; i++) if (isTrack(await tiered.getOrSet(keyAt(i), never, { ttlS: TTL_S }))) hits++
          return hits
        },
      },
      {
        name: 'bentocache getOrSet (memory, serialize: false)',
        group,
        run: async (from, n) => {
          let hits = 0
          for (let i = from; i < from + n; i++) if (isTrack(await bento.getOrSet({ key: keyAt(i), factory: never, ttl: '1h' }))) hits++
          return hits
        },
      },
      {
        name: 'bentocache getOrSet (memory, default: JSON)',
        group,
        run: async (from, n) => {
          let hits = 0
          for (let i = from; i < from + n; i++) if (isTrack(await bentoSerialized.getOrSet({ key: keyAt(i), factory: never, ttl: '1h' }))) hits++
          return hits
        },
      },
    )
  }
  return {
    cases,
    close: async () => {
      if (loads > 0) throw new Error(`${String(loads)} loader calls: some lookups missed`)
      await tiered.close()
      await bento.disconnectAll()
      await bentoSerialized.disconnectAll()
    },
  }
}

/** ns per lookup of one L1 case over about `durationS`, in batches of 10,000. */
async function timeL1Case(c: L1Case, durationS: number): Promise<number> {
  const batch = 10_000
  let ops = 0
  const start = process.hrtime.bigint()
  const budget = BigInt(Math.round(durationS * 1e9))
  let elapsed = 0n
  while (elapsed < budget) {
    const hits = await c.run(ops, batch)
    if (hits !== batch) throw new Error(`${c.name}: ${String(batch - hits)} of ${String(batch)} lookups missed`)
    ops += batch
    elapsed = process.hrtime.bigint() - start
  }
  return Number(elapsed) / ops
}

async function runL1(): Promise<{ cases: CaseSummary[]; ratio: number; asyncRatio: number; pass: boolean; groups: Record<string, number> }> {
  const { cases, close } = await l1Cases()
  for (const c of cases) await timeL1Case(c, 0.3) // JIT warm-up
  const samples = new Map<L1Case, number[]>(cases.map((c) => [c, []]))
  for (let round = 0; round < settings.rounds; round++) {
    for (const c of rotate(cases, round)) samples.get(c)?.push(await timeL1Case(c, settings.durationS))
  }
  await close()
  const summaries: CaseSummary[] = []
  const groups: Record<string, number> = {}
  let worst = 0
  let worstAsync = 0
  let worstPromiseVsSync = 0
  for (const group of ['working set', 'hot key'] as const) {
    const inGroup = cases.filter((c) => c.group === group)
    const base = median(samples.get(inGroup.find((c) => c.baseline === true) as L1Case) ?? [])
    const asyncBase = median(samples.get(inGroup.find((c) => c.asyncBaseline === true) as L1Case) ?? [])
    const rows = inGroup.map((c) => {
      const s = samples.get(c) ?? []
      const ns = median(s)
      const ratio = ns / base
      const asyncRatio = ns / asyncBase
      summaries.push({ name: `${c.name} [${group}]`, nsPerOp: ns, minNsPerOp: Math.min(...s), maxNsPerOp: Math.max(...s), opsPerSecond: 1e9 / ns, ratio, asyncRatio })
      if (c.target === 'sync') {
        worst = Math.max(worst, ratio)
        groups[`${group}: ${c.name} vs lru-cache get`] = ratio
      } else if (c.target === 'async') {
        worstAsync = Math.max(worstAsync, asyncRatio)
        worstPromiseVsSync = Math.max(worstPromiseVsSync, ratio)
        groups[`${group}: ${c.name} vs awaited async lru-cache get`] = asyncRatio
        groups[`${group}: ${c.name} vs lru-cache get`] = ratio
      }
      return [c.name, ns.toFixed(1), Math.min(...s).toFixed(1), Math.max(...s).toFixed(1), formatInt(1e9 / ns), `${ratio.toFixed(2)}x`, `${asyncRatio.toFixed(2)}x`]
    })
    const what = group === 'hot key' ? 'one hot key' : `${String(KEYS)} keys cycling`
    out(`\nA. L1 hit, ${what}, ${String(settings.rounds)} rounds x ${String(settings.durationS)} s (median of rounds)\n`)
    out(`${formatTable(['case', 'ns/op', 'min', 'max', 'ops/s', 'time vs lru-cache get', 'vs awaited async get'], rows, settings.markdown)}\n`)
  }
  const syncPass = worst <= L1_TARGET
  const asyncPass = worstAsync <= L1_ASYNC_TARGET
  out(`Target: TieredCache.peek within ${String(L1_TARGET)}x of a bare lru-cache get: ${syncPass ? 'PASS' : 'FAIL'} (worst ${worst.toFixed(2)}x)\n`)
  out(`Target: await TieredCache.get/getOrSet within ${String(L1_ASYNC_TARGET)}x of an awaited async lru-cache get: ${asyncPass ? 'PASS' : 'FAIL'} (worst ${worstAsync.toFixed(2)}x)\n`)
  out(`(await get/getOrSet vs the bare sync get: worst ${worstPromiseVsSync.toFixed(2)}x; a promise alone costs the wrapper's ratio)\n`)
  return { cases: summaries, ratio: worst, asyncRatio: worstAsync, pass: syncPass && asyncPass, groups }
}

// ---------------------------------------------------------------------------------------
// B. L2 hits

interface L2Case {
  name: string
  baseline?: true
  one: (i: number) => Promise<unknown>
}

interface L2Sample {
  perSecond: number
  /** CPU this process spent per call, µs (client encoding, reply parsing, the engine). */
  clientUs: number
}

/** Keeps `inFlight` calls outstanding for `durationS`; every call must hit. */
async function timeL2Case(c: L2Case, durationS: number, inFlight: number): Promise<L2Sample> {
  let done = 0
  let next = 0
  let misses = 0
  const cpuBefore = process.cpuUsage()
  const start = performance.now()
  const deadline = start + durationS * 1000
  const worker = async (): Promise<void> => {
    while (performance.now() < deadline) {
      const value = await c.one(next++)
      if (value === undefined || value === null) misses++
      done++
    }
  }
  await Promise.all(Array.from({ length: inFlight }, worker))
  const elapsedS = (performance.now() - start) / 1000
  if (misses > 0) throw new Error(`${c.name}: ${String(misses)} of ${String(done)} reads missed`)
  const cpu = process.cpuUsage(cpuBefore)
  return { perSecond: done / elapsedS, clientUs: (cpu.user + cpu.system) / done }
}

/** Every key starting with `prefix`, batch by batch (SCAN, never KEYS: the server may be shared). */
async function scanPrefix(connection: RedisConnection, prefix: string, each: (keys: string[]) => Promise<void>): Promise<void> {
  let cursor = '0'
  do {
    const [nextCursor, keys] = await connection.client.scan(cursor, 'MATCH', `${prefix}*`, 'COUNT', 1000)
    cursor = nextCursor
    if (keys.length > 0) await each(keys)
  } while (cursor !== '0')
}

async function runL2(): Promise<{ cases: CaseSummary[]; entryBytes: number; bentoBytes: number; sequential: number; concurrent: number; pass: boolean }> {
  const prefix = `bench:cache-engine:${String(process.pid)}:${Date.now().toString(36)}:`
  const connection = new RedisConnection({ url: settings.redisUrl, name: 'bench-cache-engine' })
  await connection.connect()
  const client = connection.client
  try {
    const tiered = new TieredCache({ namespace: 'bench', l1: false, tiers: [new RedisCacheStore(connection, { prefix: `${prefix}tc:` })], defaultTtlS: TTL_S })
    const bento = new BentoCache({ default: 'redis', stores: { redis: bentostore({ prefix: `${prefix}bento` }).useL2Layer(redisDriver({ connection: client })) } })
    const rawKeys = userKeys.map((key) => `${prefix}raw:${key}`)
    let entryBytes = 0
    let bentoBytes = 0
    for (const [i, key] of userKeys.entries()) {
      const value = values[i] as object
      await tiered.set(key, value, { ttlS: TTL_S })
      await bento.set({ key, value, ttl: '1h' })
      // The raw GET reads exactly the bytes our tier stored, under its own key.
      const stored = await client.getBuffer(`${prefix}tc:bench:${key}`)
      if (stored === null) throw new Error(`TieredCache did not write ${key} to Redis`)
      await client.set(rawKeys[i] as string, stored, 'EX', TTL_S)
      entryBytes += stored.byteLength
    }
    await scanPrefix(connection, `${prefix}bento`, async (keys) => {
      for (const key of keys) bentoBytes += await client.strlen(key)
    })
    entryBytes /= KEYS
    bentoBytes /= KEYS
    let loads = 0
    const never = (): object => {
      loads++
      throw new Error('a hit was expected: the loader ran')
    }
    const base: L2Case[] = [
      { name: 'raw ioredis getBuffer', baseline: true, one: (i) => client.getBuffer(rawKeys[i % KEYS] as string) },
      { name: 'TieredCache.get (l1: false, Redis tier)', one: (i) => tiered.get(userKeys[i % KEYS] as string) },
      { name: 'TieredCache.getOrSet (l1: false, Redis tier)', one: (i) => tiered.getOrSet(userKeys[i % KEYS] as string, never, { ttlS: TTL_S }) },
      { name: 'bentocache getOrSet (Redis L2 only)', one: (i) => bento.getOrSet({ key: userKeys[i % KEYS] as string, factory: never, ttl: '1h' }) },
    ]
    const concurrencies = [1, settings.inFlight]
    const cases = concurrencies.flatMap((inFlight) => base.map((c) => ({ ...c, inFlight })))
    for (const c of cases) await timeL2Case(c, 0.3, c.inFlight) // warm-up
    const samples = new Map(cases.map((c) => [c, [] as L2Sample[]]))
    for (let round = 0; round < settings.rounds; round++) {
      for (const c of rotate(cases, round)) samples.get(c)?.push(await timeL2Case(c, settings.durationS * 2, c.inFlight))
    }
    if (loads > 0) throw new Error(`${String(loads)} loader calls: some reads missed`)

    const summaries: CaseSummary[] = []
    const ratios = new Map<number, number>()
    for (const inFlight of concurrencies) {
      const inGroup = cases.filter((c) => c.inFlight === inFlight)
      const rate = (c: (typeof cases)[number]): number => median((samples.get(c) ?? []).map((s) => s.perSecond))
      const raw = rate(inGroup.find((c) => c.baseline === true) as (typeof cases)[number])
      const rows = inGroup.map((c) => {
        const s = samples.get(c) ?? []
        const perSecond = rate(c)
        const ratio = raw / perSecond
        const cpu = median(s.map((x) => x.clientUs))
        const ns = 1e9 / perSecond
        const rates = s.map((x) => x.perSecond)
        summaries.push({ name: `${c.name} [${String(inFlight)} in flight]`, nsPerOp: ns, minNsPerOp: 1e9 / Math.max(...rates), maxNsPerOp: 1e9 / Math.min(...rates), opsPerSecond: perSecond, ratio, clientCpuUsPerOp: cpu })
        if (c.name === 'TieredCache.get (l1: false, Redis tier)') ratios.set(inFlight, ratio)
        return [c.name, formatInt(perSecond), formatInt(Math.min(...rates)), formatInt(Math.max(...rates)), (ns / 1000).toFixed(1), `${ratio.toFixed(2)}x`, cpu.toFixed(1)]
      })
      const what = inFlight === 1 ? 'one call at a time (µs/op is the latency)' : `${String(inFlight)} calls in flight (µs/op is 1 / throughput)`
      out(`\nB. L2 hit (${settings.redisUrl.replace(/\/\/[^@]*@/, '//')}), ${what}, ${String(settings.rounds)} rounds x ${String(settings.durationS * 2)} s (median of rounds)\n`)
      out(`${formatTable(['case', 'ops/s', 'min', 'max', 'µs/op', 'time vs raw GET', 'client CPU µs/op'], rows, settings.markdown)}\n`)
    }
    out(`Stored entry: ${entryBytes.toFixed(0)} bytes (ours, raw GET reads the same bytes), ${bentoBytes.toFixed(0)} bytes (bentocache JSON)\n`)
    const sequential = ratios.get(1) ?? Number.NaN
    const concurrent = ratios.get(settings.inFlight) ?? Number.NaN
    const pass = sequential <= L2_TARGET && concurrent <= L2_TARGET
    out(`Target: TieredCache L2 hit within ${String(L2_TARGET)}x of a raw Redis GET: ${pass ? 'PASS' : 'FAIL'} (sequential ${sequential.toFixed(2)}x, ${String(settings.inFlight)} in flight ${concurrent.toFixed(2)}x)\n`)
    await tiered.close()
    return { cases: summaries, entryBytes, bentoBytes, sequential, concurrent, pass }
  } finally {
    // Leave the Redis as we found it (SCAN under our own prefix, never KEYS * or FLUSHALL).
    await scanPrefix(connection, prefix, async (keys) => {
      await client.unlink(...keys)
    })
    await connection.close()
  }
}

out(`cache engine microbenchmarks: node ${process.version}\n`)
const summary: Record<string, unknown> = { node: process.version, rounds: settings.rounds, durationS: settings.durationS }
let ok = true
if (settings.l1) {
  const l1 = await runL1()
  summary.l1 = { target: L1_TARGET, asyncTarget: L1_ASYNC_TARGET, worstRatio: l1.ratio, worstAsyncRatio: l1.asyncRatio, ratios: l1.groups, pass: l1.pass, cases: l1.cases }
  ok = l1.pass && ok
}
if (settings.l2) {
  const l2 = await runL2()
  summary.l2 = {
    target: L2_TARGET,
    inFlight: settings.inFlight,
    sequentialRatio: l2.sequential,
    concurrentRatio: l2.concurrent,
    entryBytes: l2.entryBytes,
    bentoEntryBytes: l2.bentoBytes,
    pass: l2.pass,
    cases: l2.cases,
  }
  ok = l2.pass && ok
}
summary.pass = ok
if (settings.json) process.stdout.write(`${JSON.stringify(summary, null, 2)}\n`)
process.exit(ok ? 0 : 1)

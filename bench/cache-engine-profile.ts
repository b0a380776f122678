/**
 * Where a TieredCache hit spends its time (companion of bench/cache-engine.ts):
 *
 *  1. a breakdown: the pieces of the L1 hit path timed alone (key validation, the L1 LRU as
 *     TieredCache configures it, the async frames), next to the whole `get`;
 *  2. a CPU profile (node:inspector, sampling every 50 µs) of one variant running alone,
 *     summarised as self and inclusive ns per operation by function.
 *
 *  3. `--case l2-breakdown`: the L2 hit rebuilt layer by layer over one ioredis client (raw GET,
 *     + envelope and value decoding, the store, + breaker and timeout, the whole engine), with
 *     `--in-flight` calls outstanding, interleaved rounds: client CPU per op says what each adds.
 *
 *   node --conditions=backbeat-source bench/cache-engine-profile.ts [--case l1-peek|l1-get|l1-getorset|l2-get|l2-breakdown] [--duration 3] [--in-flight 32]
 */
import { Session } from 'node:inspector/promises'
import { parseArgs } from 'node:util'
import { LRUCache } from 'lru-cache'
import { circuitBreaker, ConsecutiveBreaker, handleAll } from 'cockatiel'
import { cacheKey, decodeCacheEntry, RedisCacheStore, TieredCache, ValueCodec } from 'backbeat/cache'
import { RedisConnection, withTimeout } from 'backbeat/stores'
import { formatInt, formatTable, median, rotate } from './stats.ts'

const { values: args } = parseArgs({
  options: {
    case: { type: 'string', default: 'l1-get' },
    duration: { type: 'string', default: '3' },
    'in-flight': { type: 'string', default: '32' },
    top: { type: 'string', default: '25' },
  },
})
const durationMs = Number(args.duration) * 1000
const inFlight = Number(args['in-flight'])
const KEYS = 1_000
const userKeys = Array.from({ length: KEYS }, (_, i) => `track:t${i}`)
const value = { id: 't1', title: 'Blue in Green', durationMs: 337_000, artist: { id: 'r9', name: 'Miles Davis' }, album: { id: 'a1', title: 'Kind of Blue', year: 1959 }, genres: ['jazz', 'modal jazz'] }

interface ProfileNode {
  id: number
  callFrame: { functionName: string; url: string; lineNumber: number }
  children?: number[]
}
interface Profile {
  nodes: ProfileNode[]
  samples: number[]
  timeDeltas: number[]
}

/** ns per op of one piece: `batch` runs `n` operations in its own loop (one call site per piece, so none is megamorphic). */
async function nsPerOp(batch: (n: number) => unknown): Promise<number> {
  const runs: number[] = []
  for (let r = 0; r < 8; r++) {
    const start = process.hrtime.bigint()
    const result = batch(200_000)
    if (result instanceof Promise) await result
    if (r > 2) runs.push(Number(process.hrtime.bigint() - start) / 200_000)
  }
  return median(runs)
}

async function breakdown(): Promise<void> {
  const bare = new LRUCache<string, object>({ max: 10_000 })
  // What TieredCache builds for its L1 (see its constructor): size accounting, a TTL per entry, a clock read per get.
  const likeL1 = new LRUCache<string, { value: object; staleUntil: number }>({
    max: 10_000,
    maxSize: 64 * 1024 * 1024,
    sizeCalculation: () => 512,
    ttlResolution: 0,
    perf: { now: () => Date.now() },
  })
  const tiered = new TieredCache({ namespace: 'bench', l1: { maxEntries: 10_000 }, defaultTtlS: 3_600 })
  for (const key of userKeys) {
    bare.set(key, value)
    bare.set(`bench:${key}`, value)
    likeL1.set(`bench:${key}`, { value, staleUntil: Date.now() + 3_600_000 }, { ttl: 3_600_000 })
    await tiered.set(key, value)
  }
  const fullKeys = userKeys.map((k) => `bench:${k}`)
  const at = (i: number): string => userKeys[i % KEYS] as string
  const inner = async (): Promise<boolean> => true
  const lookup = async (k: string): Promise<{ v: object | undefined }> => ((await inner()) ? { v: bare.get(k) } : { v: undefined })
  const async3 = async (k: string): Promise<object | undefined> => (await lookup(k)).v
  const async2 = async (k: string): Promise<object | undefined> => (await (async () => ({ v: bare.get(k) }))()).v
  const async1 = async (k: string): Promise<object | undefined> => bare.get(k)
  // The proposed hit path (see the report): L1 keyed by the caller's key (every key in it was
  // validated on the way in, so a hit needs no validation, and no `${namespace}:` string is built
  // and hashed), expiry checked against one clock read instead of lru-cache's own TTL, and one
  // async frame. Anything else (absent, stale, tagged) takes the full path.
  const proposedL1 = new LRUCache<string, { value: object; freshUntil: number; staleUntil: number; tags: readonly string[] }>({ max: 10_000, maxSize: 64 * 1024 * 1024, sizeCalculation: () => 512 })
  for (const key of userKeys) proposedL1.set(key, { value, freshUntil: Date.now() + 3_600_000, staleUntil: Date.now() + 3_600_000, tags: [] })
  const proposedGet = async (key: string): Promise<object | undefined> => {
    const local = proposedL1.get(key)
    if (local !== undefined && local.tags.length === 0) {
      const now = Date.now()
      if (local.freshUntil > now) return local.value
    }
    return tiered.get(key)
  }
  let sink = 0
  const rows: [string, number][] = [
    ['lru-cache get, bare (sync)', await nsPerOp((n) => { for (let i = 0; i < n; i++) if (bare.get(at(i)) !== undefined) sink++ })],
    ['Date.now() (what systemClock calls)', await nsPerOp((n) => { for (let i = 0; i < n; i++) sink += Date.now() & 1 })],
    ['lru-cache get, configured like TieredCache L1 (TTL, perf.now, size)', await nsPerOp((n) => { for (let i = 0; i < n; i++) if (likeL1.get(fullKeys[i % KEYS] as string) !== undefined) sink++ })],
    ['cacheKey(namespace, key)', await nsPerOp((n) => { for (let i = 0; i < n; i++) sink += cacheKey('bench', at(i)).length })],
    ['  of which key.normalize("NFC")', await nsPerOp((n) => { for (let i = 0; i < n; i++) sink += at(i).normalize('NFC').length })],
    ['  of which Buffer.byteLength(key)', await nsPerOp((n) => { for (let i = 0; i < n; i++) sink += Buffer.byteLength(at(i), 'utf8') })],
    ['lru-cache get of a freshly built `${ns}:${key}` (hash not cached)', await nsPerOp((n) => { for (let i = 0; i < n; i++) if (bare.get(`bench:${at(i)}`) !== undefined) sink++ })],
    ['one async fn + await around a bare get', await nsPerOp(async (n) => { for (let i = 0; i < n; i++) if ((await async1(at(i))) !== undefined) sink++ })],
    ['two nested async fns + bare get', await nsPerOp(async (n) => { for (let i = 0; i < n; i++) if ((await async2(at(i))) !== undefined) sink++ })],
    ['three nested async fns + bare get', await nsPerOp(async (n) => { for (let i = 0; i < n; i++) if ((await async3(at(i))) !== undefined) sink++ })],
    ['proposed hit path (prototype, see comment)', await nsPerOp(async (n) => { for (let i = 0; i < n; i++) if ((await proposedGet(at(i))) !== undefined) sink++ })],
    ['TieredCache.get (L1 hit), whole', await nsPerOp(async (n) => { for (let i = 0; i < n; i++) if ((await tiered.get(at(i))) !== undefined) sink++ })],
  ]
  process.stdout.write(`\nL1 hit path, pieces timed alone (${String(KEYS)} keys cycling, median of 5 x 200,000 calls; checksum ${String(sink % 10)})\n`)
  process.stdout.write(`${formatTable(['piece', 'ns/op'], rows.map(([name, ns]) => [name, ns.toFixed(1)]))}\n`)
  await tiered.close()
}

async function profiled(name: string, workload: (until: number) => Promise<number>): Promise<void> {
  await workload(performance.now() + 500) // warm-up
  const session = new Session()
  session.connect()
  await session.post('Profiler.enable')
  await session.post('Profiler.setSamplingInterval', { interval: 50 })
  await session.post('Profiler.start')
  const ops = await workload(performance.now() + durationMs)
  const { profile } = (await session.post('Profiler.stop')) as { profile: Profile }
  session.disconnect()
  const byId = new Map(profile.nodes.map((n) => [n.id, n]))
  const parent = new Map<number, number>()
  for (const n of profile.nodes) for (const c of n.children ?? []) parent.set(c, n.id)
  const label = (n: ProfileNode): string => {
    const url = n.callFrame.url.replace(/^file:\/\/.*?\/(node_modules|src|bench)\//, '$1/')
    return `${n.callFrame.functionName || '(anonymous)'} ${url === '' ? '' : `${url}:${String(n.callFrame.lineNumber + 1)}`}`.trim()
  }
  const self = new Map<string, number>()
  const inclusive = new Map<string, number>()
  let total = 0
  profile.samples.forEach((id, i) => {
    const us = profile.timeDeltas[i] ?? 0
    total += us
    const node = byId.get(id)
    if (node === undefined) return
    self.set(label(node), (self.get(label(node)) ?? 0) + us)
    const seen = new Set<string>()
    for (let cur: number | undefined = id; cur !== undefined; cur = parent.get(cur)) {
      const n = byId.get(cur)
      if (n === undefined) break
      const l = label(n)
      if (seen.has(l)) continue
      seen.add(l)
      inclusive.set(l, (inclusive.get(l) ?? 0) + us)
    }
  })
  const top = Number(args.top)
  const table = (m: Map<string, number>): string[][] =>
    [...m]
      .sort((a, b) => b[1] - a[1])
      .slice(0, top)
      .map(([l, us]) => [l, ((us * 1000) / ops).toFixed(1), `${((us / total) * 100).toFixed(1)} %`])
  process.stdout.write(`\nCPU profile of ${name}: ${ops.toLocaleString('en-US')} ops, ${((total * 1000) / ops).toFixed(0)} ns sampled per op\n`)
  process.stdout.write(`Self time\n${formatTable(['function', 'ns/op', 'share'], table(self))}\n`)
  process.stdout.write(`Inclusive time\n${formatTable(['function', 'ns/op', 'share'], table(inclusive))}\n`)
}

if (args.case === 'l1-peek') {
  const tiered = new TieredCache({ namespace: 'bench', l1: { maxEntries: 10_000 }, defaultTtlS: 3_600 })
  for (const key of userKeys) await tiered.set(key, value)
  await profiled(args.case, (until) => {
    let ops = 0
    while (performance.now() < until) {
      for (let i = 0; i < 10_000; i++) if (tiered.peek(userKeys[i % KEYS] as string) === undefined) throw new Error('miss')
      ops += 10_000
    }
    return Promise.resolve(ops)
  })
  await tiered.close()
} else if (args.case === 'l1-get' || args.case === 'l1-getorset') {
  await breakdown()
  const tiered = new TieredCache({ namespace: 'bench', l1: { maxEntries: 10_000 }, defaultTtlS: 3_600 })
  for (const key of userKeys) await tiered.set(key, value)
  const loader = (): never => {
    throw new Error('miss')
  }
  await profiled(args.case, async (until) => {
    let ops = 0
    while (performance.now() < until) {
      for (let i = 0; i < 10_000; i++) await (args.case === 'l1-get' ? tiered.get(userKeys[i % KEYS] as string) : tiered.getOrSet(userKeys[i % KEYS] as string, loader))
      ops += 10_000
    }
    return ops
  })
  await tiered.close()
} else if (args.case === 'l2-get') {
  const prefix = `bench:cache-engine-profile:${String(process.pid)}:`
  const connection = new RedisConnection({ url: process.env.REDIS_URL ?? 'redis://127.0.0.1:6379', name: 'bench-cache-engine-profile' })
  await connection.connect()
  try {
    const tiered = new TieredCache({ namespace: 'bench', l1: false, tiers: [new RedisCacheStore(connection, { prefix })], defaultTtlS: 3_600 })
    for (const key of userKeys) await tiered.set(key, value)
    await profiled(`l2-get, ${String(inFlight)} in flight`, async (until) => {
      let ops = 0
      let next = 0
      const worker = async (): Promise<void> => {
        while (performance.now() < until) {
          if ((await tiered.get(userKeys[next++ % KEYS] as string)) === undefined) throw new Error('miss')
          ops++
        }
      }
      await Promise.all(Array.from({ length: inFlight }, worker))
      return ops
    })
    await tiered.close()
  } finally {
    let cursor = '0'
    do {
      const [nextCursor, keys] = await connection.client.scan(cursor, 'MATCH', `${prefix}*`, 'COUNT', 1000)
      cursor = nextCursor
      if (keys.length > 0) await connection.client.unlink(...keys)
    } while (cursor !== '0')
    await connection.close()
  }
} else if (args.case === 'l2-breakdown') {
  const prefix = `bench:cache-engine-profile:${String(process.pid)}:`
  const connection = new RedisConnection({ url: process.env.REDIS_URL ?? 'redis://127.0.0.1:6379', name: 'bench-cache-engine-profile' })
  await connection.connect()
  const client = connection.client
  try {
    const store = new RedisCacheStore(connection, { prefix })
    const tiered = new TieredCache({ namespace: 'bench', l1: false, tiers: [store], defaultTtlS: 3_600 })
    for (const key of userKeys) await tiered.set(key, value)
    const codec = new ValueCodec()
    const breaker = circuitBreaker(handleAll, { halfOpenAfter: 5_000, breaker: new ConsecutiveBreaker(5) })
    const fullKeys = userKeys.map((k) => cacheKey('bench', k))
    const full = (i: number): string => fullKeys[i % KEYS] as string
    const decodeEntry = (raw: Buffer | null, key: string): unknown => {
      const entry = decodeCacheEntry(raw)
      if (entry === undefined) return undefined
      const decoded = codec.decode(entry.value, key)
      return decoded.ok ? decoded.value : undefined
    }
    const storeAndDecode = async (key: string): Promise<unknown> => {
      const entry = await store.get(key)
      if (entry === undefined) return undefined
      const decoded = codec.decode(entry.value, key)
      return decoded.ok ? decoded.value : undefined
    }
    const layers: { name: string; one: (i: number) => Promise<unknown> }[] = [
      { name: '1 raw ioredis getBuffer', one: (i) => client.getBuffer(prefix + full(i)) },
      { name: '2 = 1 + decodeCacheEntry + ValueCodec.decode (msgpack)', one: async (i) => decodeEntry(await client.getBuffer(prefix + full(i)), full(i)) },
      { name: '3 RedisCacheStore.get + ValueCodec.decode', one: (i) => storeAndDecode(full(i)) },
      { name: '4 = 3 inside cockatiel breaker.execute + withTimeout', one: (i) => breaker.execute(() => withTimeout(storeAndDecode(full(i)), 250, () => new Error('timeout'))) },
      { name: '5 TieredCache.get (l1: false)', one: (i) => tiered.get(userKeys[i % KEYS] as string) },
    ]
    const sample = async (one: (i: number) => Promise<unknown>, ms: number): Promise<{ perSecond: number; cpuUs: number }> => {
      let done = 0
      let next = 0
      const cpu = process.cpuUsage()
      const start = performance.now()
      const worker = async (): Promise<void> => {
        while (performance.now() < start + ms) {
          if ((await one(next++)) == null) throw new Error('miss')
          done++
        }
      }
      await Promise.all(Array.from({ length: inFlight }, worker))
      const used = process.cpuUsage(cpu)
      return { perSecond: done / ((performance.now() - start) / 1000), cpuUs: (used.user + used.system) / done }
    }
    for (const layer of layers) await sample(layer.one, 300)
    const results = new Map(layers.map((l) => [l, [] as { perSecond: number; cpuUs: number }[]]))
    const rounds = 7
    for (let r = 0; r < rounds; r++) for (const layer of rotate(layers, r)) results.get(layer)?.push(await sample(layer.one, durationMs / 3))
    const base = median((results.get(layers[0] as (typeof layers)[number]) ?? []).map((x) => x.cpuUs))
    const baseRate = median((results.get(layers[0] as (typeof layers)[number]) ?? []).map((x) => x.perSecond))
    const rows = layers.map((l) => {
      const rs = results.get(l) ?? []
      const cpu = median(rs.map((x) => x.cpuUs))
      const rate = median(rs.map((x) => x.perSecond))
      return [l.name, formatInt(rate), `${(baseRate / rate).toFixed(2)}x`, cpu.toFixed(2), `+${(cpu - base).toFixed(2)}`]
    })
    process.stdout.write(`\nL2 hit rebuilt layer by layer, ${String(inFlight)} in flight, ${String(rounds)} rounds x ${(durationMs / 3000).toFixed(1)} s (median of rounds)\n`)
    process.stdout.write(`${formatTable(['layer', 'ops/s', 'time vs raw', 'client CPU µs/op', 'over raw'], rows)}\n`)
    await tiered.close()
  } finally {
    let cursor = '0'
    do {
      const [nextCursor, keys] = await client.scan(cursor, 'MATCH', `${prefix}*`, 'COUNT', 1000)
      cursor = nextCursor
      if (keys.length > 0) await client.unlink(...keys)
    } while (cursor !== '0')
    await connection.close()
  }
} else {
  throw new Error('--case must be l1-peek, l1-get, l1-getorset, l2-get or l2-breakdown')
}

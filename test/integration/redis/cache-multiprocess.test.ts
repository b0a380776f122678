import assert from 'node:assert/strict'
import { fork, type ChildProcess } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { after, afterEach, before, describe, it } from 'node:test'
import { fileURLToPath } from 'node:url'
import type { InvalidationNotice } from 'backbeat/cache'
import type { PeerCallResult, PeerConfig, PeerEvent, PeerMessage, PeerRequest, PeerStats } from '../fixtures/cache-peer.ts'
import { redisTestScope } from '../services.ts'
import { TcpProxy } from '../tcp-proxy.ts'

const RUN = randomBytes(4).toString('hex')
const PREFIX = `bbtest:cache-mp:${RUN}:`
const NAMESPACE = 'mp'
const PEER_SCRIPT = fileURLToPath(new URL('../fixtures/cache-peer.ts', import.meta.url))
const redis = redisTestScope(PREFIX)

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms))
/** A deadline that does not keep the test process alive once everything else is done. */
const grace = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms).unref())

/** Polls `probe` until `done` accepts its answer; fails naming `what` after `timeoutMs`. */
async function until<T>(what: string, probe: () => Promise<T>, done: (value: T) => boolean, timeoutMs = 5_000): Promise<T> {
  const deadline = Date.now() + timeoutMs
  for (;;) {
    const value = await probe()
    if (done(value)) return value
    if (Date.now() > deadline) assert.fail(`timed out waiting for ${what}; last answer: ${JSON.stringify(value)}`)
    await sleep(20)
  }
}

type Op = PeerRequest extends infer R ? (R extends { op: infer O } ? O : never) : never
type Args<O extends Op> = Omit<Extract<PeerRequest, { op: O }>, 'id' | 'op'>

/** The test's handle on one child process running test/integration/fixtures/cache-peer.ts. */
class Peer {
  readonly name: string
  readonly #child: ChildProcess
  readonly #pending = new Map<number, { resolve: (result: unknown) => void; reject: (err: Error) => void }>()
  readonly #stderr: string[] = []
  #seq = 0
  #exited = false

  private constructor(name: string, child: ChildProcess) {
    this.name = name
    this.#child = child
  }

  static start(config: PeerConfig): Promise<Peer> {
    const child = fork(PEER_SCRIPT, [JSON.stringify(config)], {
      execPath: process.execPath,
      execArgv: ['--conditions=backbeat-source'],
      stdio: ['ignore', 'inherit', 'pipe', 'ipc'],
    })
    const peer = new Peer(config.origin, child)
    child.stderr?.on('data', (chunk: Buffer) => peer.#stderr.push(chunk.toString('utf8')))
    return new Promise<Peer>((resolve, reject) => {
      const timer = setTimeout(() => {
        peer.kill()
        reject(new Error(`peer ${peer.name} not ready within 8 s: ${peer.#stderr.join('')}`))
      }, 8_000)
      child.on('message', (message: PeerMessage) => {
        if ('ready' in message) {
          clearTimeout(timer)
          resolve(peer)
        } else if ('failed' in message) {
          clearTimeout(timer)
          reject(new Error(`peer ${peer.name} failed to start: ${message.failed}`))
        } else {
          const waiter = peer.#pending.get(message.id)
          peer.#pending.delete(message.id)
          if (message.ok) waiter?.resolve(message.result)
          else waiter?.reject(new Error(`peer ${peer.name}: ${message.error}`))
        }
      })
      child.on('exit', (code, signal) => {
        peer.#exited = true
        clearTimeout(timer)
        const gone = new Error(`peer ${peer.name} exited (code ${String(code)}, signal ${String(signal)}): ${peer.#stderr.join('')}`)
        for (const waiter of peer.#pending.values()) waiter.reject(gone)
        peer.#pending.clear()
        reject(gone)
      })
    })
  }

  call(op: 'stats'): Promise<PeerStats>
  call<O extends Exclude<Op, 'stats' | 'close'>>(op: O, args: Args<O>): Promise<PeerCallResult>
  call(op: Op, args: object = {}): Promise<unknown> {
    if (this.#exited) return Promise.reject(new Error(`peer ${this.name} has exited`))
    const id = ++this.#seq
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#pending.delete(id)
        reject(new Error(`peer ${this.name}: no answer to ${op} within 8 s`))
      }, 8_000)
      this.#pending.set(id, {
        resolve: (result) => {
          clearTimeout(timer)
          resolve(result)
        },
        reject: (err) => {
          clearTimeout(timer)
          reject(err)
        },
      })
      this.#child.send({ id, op, ...args })
    })
  }

  /** Closes the cache and its connections, then lets the child exit; kills it if that takes over 3 s. */
  async stop(): Promise<void> {
    if (this.#exited) return
    const exited = new Promise<void>((resolve) => this.#child.once('exit', () => resolve()))
    try {
      const id = ++this.#seq
      await Promise.race([
        new Promise<void>((resolve, reject) => {
          this.#pending.set(id, { resolve: () => resolve(), reject })
          this.#child.send({ id, op: 'close' })
        }),
        grace(3_000),
      ])
      this.#child.disconnect()
    } catch {
      // Already gone or unresponsive: killed below.
    }
    await Promise.race([exited, grace(3_000)])
    this.kill()
  }

  kill(): void {
    if (!this.#exited) this.#child.kill('SIGKILL')
  }
}

/** tier:kind pairs of a call, in order, without `l1 set` (bookkeeping, not a read). */
const reads = (result: PeerCallResult): string[] => result.events.filter((e) => e.kind !== 'set' && e.kind !== 'evict').map((e: PeerEvent) => `${e.tier}:${e.kind}`)

/**
 * Two real processes, each with its own TieredCache (L1 + Redis L2 + Redis tag store + Redis
 * bus + Redis lease) on one Redis, driven over IPC. B's bus connection runs through a relay,
 * so the test can deafen B alone. Every test uses its own keys.
 */
describe('TieredCache coherence across two processes on real Redis', () => {
  let proxy: TcpProxy
  let a: Peer
  let b: Peer
  const peers: Peer[] = []
  let seq = 0
  const key = (name: string): string => `${name}-${String(++seq)}`

  before(async () => {
    const url = new URL(redis.url)
    proxy = await TcpProxy.start(`${url.hostname}:${url.port === '' ? '6379' : url.port}`)
    const relayed = new URL(redis.url)
    relayed.host = proxy.address
    const common = { namespace: NAMESPACE, redisUrl: redis.url, keyPrefix: PREFIX, channel: `bb:test:cache-mp:${RUN}` }
    const started = await Promise.allSettled([Peer.start({ ...common, origin: 'a', busUrl: redis.url }), Peer.start({ ...common, origin: 'b', busUrl: relayed.toString() })])
    for (const result of started) if (result.status === 'fulfilled') peers.push(result.value)
    for (const result of started) if (result.status === 'rejected') throw result.reason
    ;[a, b] = peers as [Peer, Peer]
  })

  afterEach(() => {
    proxy.resume()
  })

  after(async () => {
    // Whatever happened in the tests (or in before), no child outlives the file.
    await Promise.all(peers.map((peer) => peer.stop()))
    await proxy.stop()
  })

  /**
   * Runs `change`, then waits until `to` has received a bus message naming each of `names`
   * (keys or tags). Waiting for these very names, not a count, keeps a late message from an
   * earlier step from passing for this one.
   */
  async function heard<T>(to: Peer, names: readonly string[], change: () => Promise<T>): Promise<T> {
    const from = (await to.call('stats')).notices.length
    const result = await change()
    const named = (notice: InvalidationNotice): readonly string[] => ('resync' in notice ? [] : [...(notice.keys ?? []), ...(notice.tags ?? [])])
    await until(
      `${to.name} to hear of ${names.join(', ')}`,
      () => to.call('stats'),
      (stats) => names.every((name) => stats.notices.slice(from).some((notice) => named(notice).includes(name))),
    )
    return result
  }

  it('serves a value cached by one process to the other from L2, then from its L1, and drops that copy when the first process changes it', async () => {
    const k = key('album')
    await heard(b, [k], () => a.call('set', { key: k, value: { title: 'v1' } }))
    const first = await b.call('get', { key: k })
    assert.deepEqual(first.value, { title: 'v1' })
    assert.deepEqual(reads(first), ['l1:miss', 'l2:hit'], 'read from Redis')
    const second = await b.call('get', { key: k })
    assert.deepEqual(second.value, { title: 'v1' })
    assert.deepEqual(reads(second), ['l1:hit'], 'then held in its own L1')

    await heard(b, [k], () => a.call('set', { key: k, value: { title: 'v2' } }))
    const after = await b.call('get', { key: k })
    assert.deepEqual(after.value, { title: 'v2' })
    assert.deepEqual(reads(after), ['l1:miss', 'l2:hit'], 'the L1 copy was dropped by the bus message, the new value read from Redis')
  })

  it('drops the other process\'s L1 copy when one process deletes the key', async () => {
    const k = key('track')
    await heard(b, [k], () => a.call('set', { key: k, value: 'kept' }))
    assert.deepEqual(reads(await a.call('get', { key: k })), ['l1:hit'], 'the writer holds it in L1')
    await b.call('get', { key: k })
    await heard(a, [k], () => b.call('delete', { key: k }))
    const gone = await a.call('get', { key: k })
    assert.equal(gone.value, undefined)
    assert.deepEqual(reads(gone), ['l1:miss', 'l2:miss'])
    assert.equal(await redis.admin.exists(`${PREFIX}entry:${NAMESPACE}:${k}`), 0, 'deleted from Redis too')
    assert.equal((await b.call('get', { key: k })).value, undefined)
  })

  it('voids the other process\'s L1 entries and the Redis entries carrying an invalidated tag, and only those', async () => {
    const tag = `album:${RUN}-${String(++seq)}`
    const [k1, k2, k3] = [key('tagged'), key('tagged'), key('untagged')]
    await heard(b, [k1, k2, k3], async () => {
      await a.call('set', { key: k1, value: 'one', tags: [tag] })
      await a.call('set', { key: k2, value: 'two', tags: [tag, 'other'] })
      await a.call('set', { key: k3, value: 'three', tags: ['other'] })
    })
    for (const k of [k1, k2, k3]) await b.call('get', { key: k })
    for (const k of [k1, k2, k3]) assert.deepEqual(reads(await b.call('get', { key: k })), ['l1:hit'], `${k} in B's L1`)

    await heard(b, [tag], () => a.call('invalidateTags', { tags: [tag] }))
    for (const k of [k1, k2]) {
      const read = await b.call('get', { key: k })
      assert.equal(read.value, undefined, `${k} is void on B`)
      assert.deepEqual(reads(read), ['l1:miss', 'l2:miss'], 'dropped from L1; the Redis copy is older than the tag\'s invalidation')
      assert.equal(await redis.admin.exists(`${PREFIX}entry:${NAMESPACE}:${k}`), 1, 'the bytes are still in Redis, but void')
      assert.equal((await a.call('get', { key: k })).value, undefined, `${k} is void on A`)
    }
    const untouched = await b.call('get', { key: k3 })
    assert.equal(untouched.value, 'three')
    assert.deepEqual(reads(untouched), ['l1:hit'])

    // The invalidation time lives in Redis for every instance; a value written after it is valid.
    const at = Number(await redis.admin.get(`${PREFIX}tag:${tag}`))
    assert.ok(Number.isFinite(at) && at > 0, 'the tag time is recorded in Redis')
    await until('the clock to pass the invalidation time', () => Promise.resolve(Date.now()), (now) => now > at)
    const reloaded = await heard(a, [k1], () => b.call('getOrSet', { key: k1, value: 'one-again', loaderMs: 0, tags: [tag] }))
    assert.equal(reloaded.value, 'one-again')
    const seenByA = await a.call('get', { key: k1 })
    assert.equal(seenByA.value, 'one-again')
    assert.deepEqual(reads(seenByA), ['l1:miss', 'l2:hit'])
  })

  it('runs the loader once in total when both processes miss the same key at once', async () => {
    const k = key('stampede')
    const before = { a: (await a.call('stats')).loaderCalls, b: (await b.call('stats')).loaderCalls }
    // Three concurrent calls per process: single flight inside it, the lease across them.
    const burst = (peer: Peer): Promise<PeerCallResult[]> =>
      Promise.all(Array.from({ length: 3 }, () => peer.call('getOrSet', { key: k, value: `loaded-by-${peer.name}`, loaderMs: 800 })))
    const [onA, onB] = await Promise.all([burst(a), burst(b)])
    const peerOf = { a, b }
    const results = { a: onA, b: onB }
    const loaded = { a: (await a.call('stats')).loaderCalls - before.a, b: (await b.call('stats')).loaderCalls - before.b }
    assert.equal(loaded.a + loaded.b, 1, `loader calls: A ${String(loaded.a)}, B ${String(loaded.b)}`)
    const winner = loaded.a === 1 ? 'a' : 'b'
    const loser = winner === 'a' ? 'b' : 'a'
    for (const result of [...results.a, ...results.b]) assert.equal(result.value, `loaded-by-${winner}`)
    const loadedAt = results[winner].find((r) => r.loadedAt !== undefined)?.loadedAt
    assert.ok(loadedAt !== undefined)
    for (const result of results[loser]) {
      assert.ok(result.startedAt < loadedAt, 'the loser asked while the winner was still loading')
      assert.ok(result.events.some((e) => e.tier === 'l2' && e.kind === 'miss'), 'the loser missed in Redis first')
    }
    assert.ok(
      results[loser].some((r) => r.events.some((e) => e.tier === 'l2' && e.kind === 'hit')),
      'the loser took the winner\'s value from Redis',
    )
    assert.equal(await redis.admin.exists(`${PREFIX}lease:${NAMESPACE}:${k}`), 0, 'the lease was released')
    // The winner published its load: the loser hears of it (and no later test hears it late).
    await until(
      `${loser} to hear of the winner's load`,
      () => peerOf[loser].call('stats'),
      (stats) => stats.notices.some((notice) => !('resync' in notice) && (notice.keys ?? []).includes(k)),
    )
  })

  it('resyncs a process whose bus connection was cut: its stale L1 is dropped once the bus is back, and its own changes reach the other', async () => {
    const [k, mine] = [key('outage'), key('outage-b')]
    await heard(b, [k], () => a.call('set', { key: k, value: 'before' }))
    await heard(a, [mine], () => b.call('set', { key: mine, value: 'b-before' }))
    await b.call('get', { key: k })
    await a.call('get', { key: mine })
    assert.deepEqual(reads(await b.call('get', { key: k })), ['l1:hit'])
    assert.deepEqual(reads(await a.call('get', { key: mine })), ['l1:hit'])
    const statsBefore = await b.call('stats')

    proxy.pause()
    proxy.dropConnections()
    await a.call('set', { key: k, value: 'during' })
    // B's cache tier is direct, so its write reaches Redis; its bus message waits in the retry queue.
    await b.call('set', { key: mine, value: 'b-during' })
    const deaf = await b.call('get', { key: k })
    assert.equal(deaf.value, 'before', 'pub/sub has no replay: while deaf, B still serves its L1 copy')
    assert.deepEqual(reads(deaf), ['l1:hit'])
    const cut = await b.call('stats')
    assert.ok(cut.queued >= 1, 'B queued its own message')
    assert.equal(cut.received, statsBefore.received, 'A\'s message never reached B')
    assert.equal((await a.call('get', { key: mine })).value, 'b-before', 'A has not heard of B\'s change yet')

    proxy.resume()
    const back = await until('B to resync', () => b.call('stats'), (stats) => stats.resyncs > statsBefore.resyncs && stats.queued === 0)
    assert.equal(back.received, statsBefore.received, 'the missed message was not replayed')
    assert.deepEqual(back.notices.at(-1), { resync: true, reason: 'reconnected' })
    const fresh = await b.call('get', { key: k })
    assert.equal(fresh.value, 'during')
    assert.deepEqual(reads(fresh), ['l1:miss', 'l2:hit'], 'the resync dropped B\'s whole L1')
    const onA = await until('A to hear B\'s queued change', () => a.call('get', { key: mine }), (r) => r.value === 'b-during')
    assert.deepEqual(reads(onA), ['l1:miss', 'l2:hit'])
  })
})

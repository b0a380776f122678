import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { createServer, Socket, type AddressInfo, type Server } from 'node:net'
import { afterEach, describe, it } from 'node:test'
import { encodeCacheEntry, RedisCacheStore, TieredCache, type CacheEvent } from 'backbeat/cache'
import { RedisConnection } from 'backbeat/stores'
import { ObservedStore } from '../fixtures/observed-store.ts'
import { redisTestScope } from '../services.ts'
import { TcpProxy } from '../tcp-proxy.ts'

const RUN = randomBytes(4).toString('hex')
const PREFIX = `bbtest:cache-outage:${RUN}:`
const NAMESPACE = 'outage'
const redis = redisTestScope(PREFIX)

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms))

/** A promise with its resolve function (Promise.withResolvers is past the ES2023 lib). */
function deferred<T>(): { promise: Promise<T>; resolve: (value: T) => void } {
  let resolve: (value: T) => void = () => undefined
  const promise = new Promise<T>((done) => {
    resolve = done
  })
  return { promise, resolve }
}

async function waitFor(what: string, condition: () => boolean, timeoutMs = 5_000): Promise<void> {
  const deadline = Date.now() + timeoutMs
  while (!condition()) {
    if (Date.now() > deadline) assert.fail(`timed out waiting for ${what}`)
    await sleep(10)
  }
}

/**
 * A relay that can hang: after `hang()` it keeps every connection open but forwards nothing
 * either way, as a Redis stuck in a long command or a network black hole would.
 */
class HangingRelay {
  readonly #server: Server
  readonly #sockets: Set<Socket>
  readonly #state: { hung: boolean }

  private constructor(server: Server, sockets: Set<Socket>, state: { hung: boolean }) {
    this.#server = server
    this.#sockets = sockets
    this.#state = state
  }

  static async start(host: string, port: number): Promise<HangingRelay> {
    const sockets = new Set<Socket>()
    const state = { hung: false }
    const server = createServer((client) => {
      const upstream = new Socket()
      sockets.add(client).add(upstream)
      const forget = (): void => {
        sockets.delete(client)
        sockets.delete(upstream)
        client.destroy()
        upstream.destroy()
      }
      client.on('error', forget).on('close', forget)
      upstream.on('error', forget).on('close', forget)
      // No pipe(): each chunk is checked, so hanging takes effect on open connections too.
      client.on('data', (chunk: Buffer) => {
        if (!state.hung) upstream.write(chunk)
      })
      upstream.on('data', (chunk: Buffer) => {
        if (!state.hung) client.write(chunk)
      })
      upstream.connect(port, host)
    })
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
    return new HangingRelay(server, sockets, state)
  }

  get address(): string {
    return `127.0.0.1:${String((this.#server.address() as AddressInfo).port)}`
  }

  /** From now on nothing is forwarded; connections stay open. */
  hang(): void {
    this.#state.hung = true
  }

  /** Drops the hung connections (their protocol state is lost) and forwards again for new ones. */
  heal(): void {
    for (const socket of this.#sockets) socket.destroy()
    this.#sockets.clear()
    this.#state.hung = false
  }

  async stop(): Promise<void> {
    for (const socket of this.#sockets) socket.destroy()
    await new Promise<void>((resolve) => this.#server.close(() => resolve()))
  }
}

const redisTarget = (): { host: string; port: number } => {
  const url = new URL(redis.url)
  return { host: url.hostname, port: url.port === '' ? 6379 : Number(url.port) }
}

const withHost = (host: string): string => {
  const url = new URL(redis.url)
  url.host = host
  return url.toString()
}

/**
 * TieredCache with one Redis tier (and no L1, so every call goes to Redis) through a relay the
 * test cuts: failure isolation means a dead, hung or corrupt Redis costs latency, never a
 * failed call.
 */
describe('TieredCache when its Redis tier fails (real Redis through a relay)', () => {
  const cleanups: Array<() => Promise<void>> = []

  afterEach(async () => {
    for (const cleanup of cleanups.splice(0).reverse()) await cleanup()
  })

  function newCache(connection: RedisConnection, options: { failureThreshold: number; halfOpenAfterMs: number; tierTimeoutMs: number; onCorrupt?: (key: string) => void }) {
    const events: CacheEvent[] = []
    const store = new ObservedStore(new RedisCacheStore(connection, { prefix: 'entry:', ...(options.onCorrupt === undefined ? {} : { onCorrupt: options.onCorrupt }) }))
    const cache = new TieredCache({
      namespace: NAMESPACE,
      l1: false,
      tiers: [store],
      breaker: { failureThreshold: options.failureThreshold, halfOpenAfterMs: options.halfOpenAfterMs },
      tierTimeoutMs: options.tierTimeoutMs,
      onEvent: (event) => events.push(event),
    })
    store.breakerState = () => cache.breakerStates.l2
    cleanups.push(() => cache.close())
    const l2Errors = (): CacheEvent[] => events.filter((e) => e.tier === 'l2' && e.kind === 'error')
    return { cache, store, events, l2Errors }
  }

  async function viaProxy(): Promise<{ proxy: TcpProxy; connection: RedisConnection }> {
    const { host, port } = redisTarget()
    const proxy = await TcpProxy.start(`${host}:${String(port)}`)
    const connection = new RedisConnection({ url: withHost(proxy.address), keyPrefix: PREFIX, name: 'cache-outage', commandTimeoutMs: 400, connectTimeoutMs: 400, reconnectMaxMs: 100 })
    await connection.connect()
    cleanups.push(async () => {
      proxy.resume()
      await connection.close()
      await proxy.stop()
    })
    return { proxy, connection }
  }

  it('answers with the loader\'s value when Redis dies mid-load, keeps answering from the loader with the breaker open, and reads Redis again once it is back', async () => {
    const { proxy, connection } = await viaProxy()
    const halfOpenAfterMs = 400
    const { cache, store, l2Errors } = newCache(connection, { failureThreshold: 3, halfOpenAfterMs, tierTimeoutMs: 300 })
    await cache.set('warm', 'from-redis')
    assert.equal(await redis.admin.exists(`${PREFIX}entry:${NAMESPACE}:warm`), 1)

    // Kill the connection while the loader runs: the lookup worked, the write cannot.
    const started = deferred<undefined>()
    const gate = deferred<string>()
    const inFlight = cache.getOrSet('mid-load', () => {
      started.resolve(undefined)
      return gate.promise
    })
    await started.promise
    proxy.pause()
    proxy.dropConnections()
    await waitFor('the client to notice the outage', () => connection.client.status !== 'ready')
    gate.resolve('loaded')
    assert.equal(await inFlight, 'loaded')
    assert.equal(l2Errors().length, 1, 'the failed write is reported')
    assert.equal(cache.breakerStates.l2, 'closed', 'one failure does not open the breaker')

    // Redis still down: reads fall through to the loader; failures open the breaker.
    let loads = 0
    const loader = (): string => `loaded-${String(++loads)}`
    assert.equal(await cache.getOrSet('warm', loader), 'loaded-1', 'the value in Redis is out of reach, the loader answers')
    assert.equal(cache.breakerStates.l2, 'open', 'a failed read and a failed write after the first failure: 3 in a row')
    const openedBy = Date.now()
    assert.equal(l2Errors().length, 3)
    const callsWhenOpened = store.calls
    assert.equal(await cache.getOrSet('down', loader), 'loaded-2')
    assert.equal(await cache.get('warm'), undefined, 'a plain read is a miss, not an error')
    assert.equal(store.calls, callsWhenOpened, 'with the breaker open, Redis is not even asked')
    assert.ok(l2Errors().length >= 5, 'each skipped tier call is still reported')

    proxy.resume()
    await waitFor('the client to reconnect', () => connection.client.status === 'ready')
    await waitFor('the breaker to allow a trial call', () => Date.now() - openedBy > halfOpenAfterMs + 50)
    const errorsBefore = l2Errors().length
    const statesBefore = store.states.length
    assert.equal(
      await cache.getOrSet('warm', () => assert.fail('the value is in Redis again')),
      'from-redis',
    )
    assert.deepEqual(store.states.slice(statesBefore), ['half-open'], 'the first read after the pause is the breaker\'s trial')
    assert.equal(cache.breakerStates.l2, 'closed')
    assert.equal(l2Errors().length, errorsBefore)
    assert.equal(await cache.getOrSet('back', () => 'loaded-after'), 'loaded-after')
    assert.equal(await redis.admin.exists(`${PREFIX}entry:${NAMESPACE}:back`), 1, 'writes reach Redis again')
  })

  it('treats bytes that are not a cache entry as a miss: the store reports them, the loader answers and its value replaces them', async () => {
    const { connection } = await viaProxy()
    const corrupt: string[] = []
    const { cache, events } = newCache(connection, { failureThreshold: 3, halfOpenAfterMs: 1_000, tierTimeoutMs: 300, onCorrupt: (key) => corrupt.push(key) })
    const raw = `${PREFIX}entry:${NAMESPACE}:garbage`
    await redis.admin.set(raw, Buffer.from('{"not":"an entry"}'))
    let loads = 0
    assert.equal(await cache.getOrSet('garbage', () => `loaded-${String(++loads)}`), 'loaded-1')
    assert.deepEqual(corrupt, [`${NAMESPACE}:garbage`])
    assert.ok(events.some((e) => e.tier === 'l2' && e.kind === 'miss'))
    assert.equal(cache.breakerStates.l2, 'closed', 'bad data is not an outage')
    assert.equal(await cache.getOrSet('garbage', () => `loaded-${String(++loads)}`), 'loaded-1', 'the loader\'s value replaced the bytes')
    assert.equal(loads, 1)
  })

  it('treats an entry whose value does not decode as a miss reported through onEvent, and calls the loader', async () => {
    const { connection } = await viaProxy()
    const { cache, events } = newCache(connection, { failureThreshold: 3, halfOpenAfterMs: 1_000, tierTimeoutMs: 300 })
    const now = Date.now()
    // A well-formed envelope around a value the codec cannot read (unknown layout version).
    const envelope = encodeCacheEntry({ value: Uint8Array.from([0xff, 0xff, 0xff, 0xff]), createdAt: now, freshUntil: now + 60_000, staleUntil: now + 60_000, tags: [] })
    await redis.admin.set(`${PREFIX}entry:${NAMESPACE}:mangled`, envelope)
    let loads = 0
    assert.equal(await cache.getOrSet('mangled', () => `loaded-${String(++loads)}`), 'loaded-1')
    const errors = events.filter((e) => e.tier === 'l2' && e.kind === 'error')
    assert.equal(errors.length, 1)
    assert.ok(errors[0]?.reason !== undefined && errors[0].reason.length > 0, 'the reason is given')
    assert.ok(events.some((e) => e.tier === 'l2' && e.kind === 'miss'))
    assert.equal(await cache.get('mangled'), 'loaded-1', 'the loader\'s value replaced it in Redis')
    assert.equal(loads, 1)
  })

  it('bounds every call by tierTimeoutMs while Redis hangs, then skips the hung tier once the breaker opens', async () => {
    const { host, port } = redisTarget()
    const relay = await HangingRelay.start(host, port)
    // A command timeout far above tierTimeoutMs: only the engine's bound can keep calls short.
    const connection = new RedisConnection({ url: withHost(relay.address), keyPrefix: PREFIX, name: 'cache-hung', commandTimeoutMs: 5_000, connectTimeoutMs: 1_000, reconnectMaxMs: 100 })
    await connection.connect()
    cleanups.push(async () => {
      // Reconnected through a healed relay first: a QUIT into the hung one would wait out the
      // command timeout, and a client left reconnecting to a dead port closes only after 2 s.
      relay.heal()
      await waitFor('the client to reconnect', () => connection.client.status === 'ready')
      await connection.close()
      await relay.stop()
    })
    const { cache, store, l2Errors } = newCache(connection, { failureThreshold: 2, halfOpenAfterMs: 60_000, tierTimeoutMs: 150 })
    assert.equal(await cache.getOrSet('before', () => 'loaded'), 'loaded')
    assert.equal(l2Errors().length, 0)

    relay.hang()
    const started = performance.now()
    assert.equal(await cache.getOrSet('hung', () => 'loaded-while-hung'), 'loaded-while-hung')
    const elapsed = performance.now() - started
    assert.ok(elapsed >= 2 * 140 && elapsed < 2_000, `a read and a write, each cut at 150 ms: took ${String(Math.round(elapsed))} ms`)
    assert.equal(l2Errors().length, 2)
    assert.ok(l2Errors().every((e) => /150/.test(e.reason ?? '')), 'the reason names the timeout')
    assert.equal(cache.breakerStates.l2, 'open')

    const calls = store.calls
    assert.equal(await cache.getOrSet('skipped', () => 'loaded-skipping'), 'loaded-skipping')
    assert.equal(store.calls, calls, 'the hung tier is no longer asked')
  })
})

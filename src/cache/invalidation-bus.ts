import { randomUUID } from 'node:crypto'
import type { Redis } from 'ioredis'
import { z } from 'zod'
import { BackbeatError, parseOptions } from '../core/index.ts'
import { backoffDelayMs, withTimeout, type RedisConnection } from '../stores/index.ts'
import { MAX_KEY_CHARS } from './keys.ts'

/** Longest namespace a message may name. */
const MAX_NAMESPACE_CHARS = 256
/** Longest origin id (a UUID by default). */
const MAX_ORIGIN_CHARS = 128
/** Most keys, and most tags, one wire message carries; `publish` splits longer lists. */
const MAX_ITEMS_PER_MESSAGE = 500
/** JSON overhead allowed on top of the items when splitting (field names, quotes, commas). */
const ENVELOPE_SLACK_BYTES = 1_024

/**
 * One invalidation, as published by one instance and delivered to every other: drop `keys`,
 * every entry carrying one of `tags`, or (with `clear`) the whole `namespace`, from L1.
 */
export interface InvalidationMessage {
  readonly namespace: string
  readonly keys?: readonly string[]
  readonly tags?: readonly string[]
  readonly clear?: true
  /** The publishing instance: a bus never hands an instance its own messages. */
  readonly origin: string
}

/**
 * Delivered instead of a message when invalidations may have been missed: after the
 * subscriber reconnected (`reconnected`: it was deaf meanwhile), or when a peer's retry queue
 * overflowed and dropped messages (`peer-dropped`). The only safe answer is to drop all of L1.
 */
export interface ResyncNotice {
  readonly resync: true
  readonly reason: 'reconnected' | 'peer-dropped'
}

export type InvalidationNotice = InvalidationMessage | ResyncNotice

/** Called synchronously for every notice; a throw is counted in `stats.handlerErrors`, never propagated. */
export type InvalidationHandler = (notice: InvalidationNotice) => void

/** What `publish` takes: `origin` defaults to the bus's own. */
export type InvalidationInput = Omit<InvalidationMessage, 'origin'> & { readonly origin?: string }

/** Counters of a bus, for metrics and tests. */
export interface InvalidationBusStats {
  /** Wire messages handed to the transport. */
  published: number
  /** Wire messages received from peers (own ones excluded). */
  received: number
  /** Incoming payloads that were not valid messages (bad JSON, shape, sizes): ignored. */
  invalid: number
  /** Handlers that threw. */
  handlerErrors: number
  /** Messages waiting in the retry queue right now. */
  queued: number
  /** Messages dropped from a full retry queue (oldest first). */
  dropped: number
  /** Failed publish attempts (each one schedules a retry). */
  publishErrors: number
  /** Resync notices handed to the handlers. */
  resyncs: number
}

/**
 * Cross-instance L1 coherence: an instance that changes or invalidates entries publishes a
 * message; every other instance drops them from its L1. Delivery is best effort (pub/sub has
 * no replay), so a subscriber that may have missed messages is told to resync instead.
 *
 * @example
 * const off = bus.subscribe((notice) => 'resync' in notice ? l1.clear() : dropFromL1(notice))
 * await bus.publish({ namespace: 'catalog', tags: ['album:1'] })
 */
export interface InvalidationBus {
  /** This instance's id; messages carrying it are not delivered back to it. */
  readonly origin: string
  readonly stats: Readonly<InvalidationBusStats>
  /**
   * Validates and sends `message` (split into several wire messages when its lists are long).
   * Resolves once sent or queued for retry; rejects only on invalid input or a closed bus.
   */
  publish(message: InvalidationInput): Promise<void>
  /** Adds a handler; returns the function that removes it. */
  subscribe(handler: InvalidationHandler): () => void
  close(): Promise<void>
}

const itemSchema = z.string().min(1).max(MAX_KEY_CHARS)
const originSchema = z.string().min(1).max(MAX_ORIGIN_CHARS)
const wireSchema = z.union([
  z
    .object({
      v: z.literal(1),
      namespace: z.string().min(1).max(MAX_NAMESPACE_CHARS),
      keys: z.array(itemSchema).max(MAX_ITEMS_PER_MESSAGE).optional(),
      tags: z.array(itemSchema).max(MAX_ITEMS_PER_MESSAGE).optional(),
      clear: z.literal(true).optional(),
      origin: originSchema,
    })
    .refine((m) => m.clear === true || (m.keys?.length ?? 0) > 0 || (m.tags?.length ?? 0) > 0, 'names no keys, no tags and no clear'),
  z.object({ v: z.literal(1), resync: z.literal(true), origin: originSchema }),
])

/** What a peer sent, once validated: a message or a peer's request to resync. */
type Incoming = { kind: 'message'; message: InvalidationMessage } | { kind: 'resync'; origin: string }

/**
 * Parses one wire payload; `undefined` for anything that is not a valid message (never
 * throws: peers and the channel are not trusted to be well-formed).
 */
export function parseInvalidationPayload(payload: string | Uint8Array, maxBytes: number): Incoming | undefined {
  const size = typeof payload === 'string' ? Buffer.byteLength(payload) : payload.byteLength
  if (size > maxBytes) return undefined
  let json: unknown
  try {
    json = JSON.parse(typeof payload === 'string' ? payload : Buffer.from(payload.buffer, payload.byteOffset, payload.byteLength).toString('utf8'))
  } catch {
    return undefined
  }
  const parsed = wireSchema.safeParse(json)
  if (!parsed.success) return undefined
  const data = parsed.data
  if ('resync' in data) return { kind: 'resync', origin: data.origin }
  const message: { -readonly [K in keyof InvalidationMessage]: InvalidationMessage[K] } = { namespace: data.namespace, origin: data.origin }
  if (data.keys !== undefined && data.keys.length > 0) message.keys = data.keys
  if (data.tags !== undefined && data.tags.length > 0) message.tags = data.tags
  if (data.clear === true) message.clear = true
  return { kind: 'message', message }
}

/**
 * Validates `input` and encodes it as one or more wire payloads of at most `maxBytes` each
 * (long key and tag lists are split; `clear` rides on the first payload).
 */
export function encodeInvalidation(input: InvalidationInput, origin: string, maxBytes: number): string[] {
  const issues: Array<{ path: string; message: string }> = []
  const from = input.origin ?? origin
  if (!originSchema.safeParse(from).success) issues.push({ path: 'origin', message: `must be 1 to ${MAX_ORIGIN_CHARS} characters` })
  if (typeof input.namespace !== 'string' || input.namespace.length === 0 || input.namespace.length > MAX_NAMESPACE_CHARS) {
    issues.push({ path: 'namespace', message: `must be 1 to ${MAX_NAMESPACE_CHARS} characters` })
  }
  // Checked at run time too: callers in plain JS or with parsed JSON bypass the types.
  const clearFlag: unknown = input.clear
  if (clearFlag !== undefined && clearFlag !== true) issues.push({ path: 'clear', message: 'must be true or absent' })
  for (const field of ['keys', 'tags'] as const) {
    const list = input[field]
    if (list === undefined) continue
    if (!Array.isArray(list)) issues.push({ path: field, message: 'must be an array of strings' })
    else list.forEach((item, i) => {
      if (!itemSchema.safeParse(item).success) issues.push({ path: `${field}.${i}`, message: `must be 1 to ${MAX_KEY_CHARS} characters` })
    })
  }
  const keys = input.keys ?? []
  const tags = input.tags ?? []
  if (input.clear !== true && keys.length === 0 && tags.length === 0) issues.push({ path: 'keys', message: 'name at least one key or tag, or set clear' })
  if (issues.length > 0) {
    throw new BackbeatError('ERR_VALIDATION_FAILED', { params: { count: issues.length }, extensions: { errors: issues } })
  }

  const payloads: string[] = []
  const budget = Math.max(1, maxBytes - ENVELOPE_SLACK_BYTES - Buffer.byteLength(input.namespace) - Buffer.byteLength(from))
  let batch = { keys: [] as string[], tags: [] as string[], bytes: 0 }
  let clear = input.clear === true
  const flush = (): void => {
    if (batch.keys.length === 0 && batch.tags.length === 0 && !clear) return
    payloads.push(
      JSON.stringify({
        v: 1,
        namespace: input.namespace,
        ...(batch.keys.length > 0 ? { keys: batch.keys } : {}),
        ...(batch.tags.length > 0 ? { tags: batch.tags } : {}),
        ...(clear ? { clear: true } : {}),
        origin: from,
      }),
    )
    clear = false
    batch = { keys: [], tags: [], bytes: 0 }
  }
  const add = (field: 'keys' | 'tags', item: string): void => {
    // JSON.stringify gives the escaped size, so control characters cannot overflow the budget.
    const bytes = Buffer.byteLength(JSON.stringify(item)) + 1
    if (batch[field].length >= MAX_ITEMS_PER_MESSAGE || batch.bytes + bytes > budget) flush()
    batch[field].push(item)
    batch.bytes += bytes
  }
  for (const key of keys) add('keys', key)
  for (const tag of tags) add('tags', tag)
  flush()
  return payloads
}

/** Shared by both buses: handlers, own-origin filtering, counters. */
class Dispatcher {
  readonly handlers = new Set<InvalidationHandler>()
  readonly stats: InvalidationBusStats = { published: 0, received: 0, invalid: 0, handlerErrors: 0, queued: 0, dropped: 0, publishErrors: 0, resyncs: 0 }

  readonly origin: string
  readonly maxBytes: number

  constructor(origin: string, maxBytes: number) {
    this.origin = origin
    this.maxBytes = maxBytes
  }

  subscribe(handler: InvalidationHandler): () => void {
    // A wrapper per call, so subscribing the same function twice gives two independent handles.
    const entry: InvalidationHandler = (notice) => handler(notice)
    this.handlers.add(entry)
    return () => this.handlers.delete(entry)
  }

  receive(payload: string | Uint8Array): void {
    const incoming = parseInvalidationPayload(payload, this.maxBytes)
    if (incoming === undefined) {
      this.stats.invalid++
      return
    }
    const origin = incoming.kind === 'message' ? incoming.message.origin : incoming.origin
    if (origin === this.origin) return
    this.stats.received++
    this.deliver(incoming.kind === 'message' ? incoming.message : { resync: true, reason: 'peer-dropped' })
  }

  deliver(notice: InvalidationNotice): void {
    if ('resync' in notice) this.stats.resyncs++
    for (const handler of this.handlers) {
      try {
        handler(notice)
      } catch {
        this.stats.handlerErrors++
      }
    }
  }
}

const DEFAULT_MAX_MESSAGE_BYTES = 1024 * 1024

const commonOptions = {
  /** This instance's id (default: a random UUID). */
  origin: originSchema.default(() => randomUUID()),
  /** Incoming payloads larger than this are ignored; outgoing ones are split to fit. */
  maxMessageBytes: z.number().int().min(16 * 1024).max(64 * 1024 * 1024).default(DEFAULT_MAX_MESSAGE_BYTES),
}

const memoryBusOptionsSchema = z.object(commonOptions)

/** Options of {@link MemoryInvalidationBus}. */
export type MemoryInvalidationBusOptions = z.input<typeof memoryBusOptionsSchema>

/**
 * The in-process stand-in for the pub/sub channel: every {@link MemoryInvalidationBus}
 * attached to one hub sees the others' messages. Payloads travel encoded, so they go
 * through the same validation as on Redis.
 *
 * @example
 * const hub = new MemoryInvalidationHub()
 * const a = new MemoryInvalidationBus(hub), b = new MemoryInvalidationBus(hub)
 */
export class MemoryInvalidationHub {
  readonly #receivers = new Set<(payload: string) => void>()

  /** @internal Used by {@link MemoryInvalidationBus}; returns the detach function. */
  attach(receiver: (payload: string) => void): () => void {
    this.#receivers.add(receiver)
    return () => this.#receivers.delete(receiver)
  }

  /**
   * Hands `payload` to every attached bus on a microtask (as a network would, never inside
   * the publisher's call stack). Public so tests can send malformed payloads.
   */
  broadcast(payload: string): void {
    const receivers = [...this.#receivers]
    queueMicrotask(() => {
      for (const receive of receivers) receive(payload)
    })
  }
}

/**
 * {@link InvalidationBus} within one process: for tests and for single-process deployments
 * that run several engines. Delivery is asynchronous (a microtask).
 *
 * @example
 * const bus = new MemoryInvalidationBus(hub, { origin: 'instance-a' })
 * await bus.publish({ namespace: 'catalog', keys: ['album:1'] })
 */
export class MemoryInvalidationBus implements InvalidationBus {
  readonly origin: string
  readonly #hub: MemoryInvalidationHub
  readonly #dispatcher: Dispatcher
  readonly #detach: () => void
  #closed = false

  constructor(hub: MemoryInvalidationHub, options: MemoryInvalidationBusOptions = {}) {
    const parsed = parseOptions('cache.bus', memoryBusOptionsSchema, options)
    this.origin = parsed.origin
    this.#hub = hub
    this.#dispatcher = new Dispatcher(parsed.origin, parsed.maxMessageBytes)
    this.#detach = hub.attach((payload) => this.#dispatcher.receive(payload))
  }

  get stats(): Readonly<InvalidationBusStats> {
    return { ...this.#dispatcher.stats }
  }

  publish(message: InvalidationInput): Promise<void> {
    if (this.#closed) return Promise.reject(closedError())
    let payloads: string[]
    try {
      payloads = encodeInvalidation(message, this.origin, this.#dispatcher.maxBytes)
    } catch (err) {
      return Promise.reject(err instanceof Error ? err : new Error(String(err)))
    }
    for (const payload of payloads) {
      this.#hub.broadcast(payload)
      this.#dispatcher.stats.published++
    }
    return Promise.resolve()
  }

  subscribe(handler: InvalidationHandler): () => void {
    return this.#dispatcher.subscribe(handler)
  }

  close(): Promise<void> {
    this.#closed = true
    this.#detach()
    this.#dispatcher.handlers.clear()
    return Promise.resolve()
  }
}

const redisBusOptionsSchema = z.object({
  ...commonOptions,
  /** The pub/sub channel every instance shares (channels ignore the connection's `keyPrefix`). */
  channel: z.string().min(1).max(256).default('bb:cache:invalidate'),
  /** Messages kept while Redis is unreachable; beyond it the oldest are dropped. */
  retryQueueMax: z.number().int().min(1).max(1_000_000).default(10_000),
  /** First delay before re-publishing after a failure; doubles up to `retryMaxMs` (full jitter). */
  retryBaseMs: z.number().int().min(1).max(60_000).default(50),
  retryMaxMs: z.number().int().min(1).max(300_000).default(5_000),
  /** How long `connect()` waits for the subscription. */
  connectTimeoutMs: z.number().int().min(1).max(120_000).default(5_000),
})

/** Options of {@link RedisInvalidationBus}. */
export type RedisInvalidationBusOptions = z.input<typeof redisBusOptionsSchema>

interface Queued {
  readonly payload: string
}

/**
 * {@link InvalidationBus} on Redis pub/sub. PUBLISH goes through the shared connection;
 * SUBSCRIBE needs a connection of its own (a subscribed connection can do nothing else),
 * duplicated from it in `connect()`.
 *
 * - Publishing never waits on an outage: when PUBLISH fails, the message joins a bounded
 *   FIFO retry queue, flushed with jittered backoff once Redis answers (order kept; the
 *   oldest are dropped beyond `retryQueueMax`, counted in `stats.dropped`, and peers are then
 *   told to resync, since they missed something).
 * - Pub/sub has no replay: after the subscriber reconnects, handlers get
 *   `{ resync: true, reason: 'reconnected' }` once the subscription is back.
 * - Incoming payloads are validated (size, JSON, shape); garbage is counted in
 *   `stats.invalid` and ignored.
 *
 * @example
 * const bus = new RedisInvalidationBus(redis, { channel: 'bb:cache:invalidate' })
 * await bus.connect()
 * bus.subscribe((notice) => engine.applyRemote(notice))
 * await bus.publish({ namespace: 'catalog', tags: ['artist:7'] })
 */
export class RedisInvalidationBus implements InvalidationBus {
  readonly origin: string
  readonly options: Readonly<z.output<typeof redisBusOptionsSchema>>
  readonly #connection: RedisConnection
  readonly #dispatcher: Dispatcher
  readonly #queue: Queued[] = []
  #subscriber: Redis | undefined
  /** True while `connect()` runs: its own first subscription is not a resync. */
  #connecting = false
  #subscribing: Promise<void> | undefined
  #flushing = false
  #retryTimer: NodeJS.Timeout | undefined
  #attempt = 0
  /** Messages were dropped since the last flush: peers must be told to resync. */
  #owesResync = false
  #closed = false

  constructor(connection: RedisConnection, options: RedisInvalidationBusOptions = {}) {
    this.options = parseOptions('cache.bus', redisBusOptionsSchema, options)
    this.origin = this.options.origin
    this.#connection = connection
    this.#dispatcher = new Dispatcher(this.origin, this.options.maxMessageBytes)
  }

  get stats(): Readonly<InvalidationBusStats> {
    return { ...this.#dispatcher.stats, queued: this.#queue.length }
  }

  /**
   * Opens the subscriber connection and subscribes; rejects (`ERR_DEPENDENCY_UNAVAILABLE` or
   * `ERR_DEPENDENCY_TIMEOUT`) when that fails within `connectTimeoutMs`. The subscriber keeps
   * reconnecting in the background either way; a later success is announced as a resync.
   */
  async connect(): Promise<void> {
    if (this.#closed) throw closedError()
    if (this.#subscriber !== undefined) return
    const name = this.#connection.name
    const subscriber = this.#connection.client.duplicate({
      connectionName: `${name}:bus`,
      lazyConnect: true,
      // Resubscribing is done by hand on 'ready', so the resync notice follows the SUBSCRIBE
      // reply (ioredis's own resubscribe is not awaitable).
      autoResubscribe: false,
      enableOfflineQueue: false,
    })
    this.#subscriber = subscriber
    subscriber.on('error', () => {
      // Reconnects are ioredis's job; without a listener Node would crash on the event.
    })
    subscriber.on('ready', () => {
      this.#subscribing = this.#subscribe(subscriber, !this.#connecting)
    })
    subscriber.on('messageBuffer', (channel: Buffer, payload: Buffer) => {
      if (channel.toString('utf8') === this.options.channel) this.#dispatcher.receive(payload)
    })
    this.#connecting = true
    try {
      await withTimeout(
        (async () => {
          await subscriber.connect()
          await this.#subscribing
        })(),
        this.options.connectTimeoutMs,
        () => Object.assign(new Error(`no answer within ${this.options.connectTimeoutMs}ms`), { code: 'ETIMEDOUT' }),
      )
    } catch (err) {
      throw this.#connection.wrap('bus.subscribe', err)
    } finally {
      this.#connecting = false
    }
  }

  async publish(message: InvalidationInput): Promise<void> {
    if (this.#closed) throw closedError()
    const payloads = encodeInvalidation(message, this.origin, this.options.maxMessageBytes)
    for (const payload of payloads) this.#enqueue({ payload })
    // While a retry is scheduled, new messages wait behind the queued ones: order is kept.
    if (!this.#flushing && this.#retryTimer === undefined) await this.#flush()
  }

  subscribe(handler: InvalidationHandler): () => void {
    return this.#dispatcher.subscribe(handler)
  }

  /**
   * Tries to send what is still queued once (no retry), then closes the subscriber. The
   * shared connection stays open. Messages still unsent are counted in `stats.dropped`.
   */
  async close(): Promise<void> {
    if (this.#closed) return
    if (this.#retryTimer !== undefined) clearTimeout(this.#retryTimer)
    this.#retryTimer = undefined
    if (!this.#flushing && this.#queue.length > 0) await this.#flush({ final: true })
    this.#closed = true
    this.#dispatcher.stats.dropped += this.#queue.length
    this.#queue.length = 0
    this.#dispatcher.handlers.clear()
    const subscriber = this.#subscriber
    this.#subscriber = undefined
    if (subscriber !== undefined) {
      try {
        await withTimeout(subscriber.quit(), this.#connection.options.commandTimeoutMs, () => new Error('quit timed out'))
      } catch {
        // Already gone: the disconnect below is what matters.
      } finally {
        subscriber.disconnect()
      }
    }
  }

  async #subscribe(subscriber: Redis, resync: boolean): Promise<void> {
    try {
      await subscriber.subscribe(this.options.channel)
    } catch {
      // The connection dropped again: the next 'ready' subscribes (and resyncs) again.
      return
    }
    if (resync && !this.#closed) this.#dispatcher.deliver({ resync: true, reason: 'reconnected' })
  }

  #enqueue(item: Queued): void {
    if (this.#queue.length >= this.options.retryQueueMax) {
      this.#queue.shift()
      this.#dispatcher.stats.dropped++
      this.#owesResync = true
    }
    this.#queue.push(item)
  }

  async #flush(mode: { final?: boolean } = {}): Promise<void> {
    this.#flushing = true
    try {
      while (!this.#closed && (this.#owesResync || this.#queue.length > 0)) {
        const head = this.#owesResync ? undefined : this.#queue[0]
        const payload = head?.payload ?? JSON.stringify({ v: 1, resync: true, origin: this.origin })
        try {
          await this.#connection.client.publish(this.options.channel, payload)
        } catch {
          this.#dispatcher.stats.publishErrors++
          if (mode.final !== true) this.#scheduleRetry()
          return
        }
        this.#attempt = 0
        this.#dispatcher.stats.published++
        if (head === undefined) this.#owesResync = false
        // The head may have been dropped by an overflow while PUBLISH was in flight.
        else if (this.#queue[0] === head) this.#queue.shift()
      }
    } finally {
      this.#flushing = false
    }
  }

  #scheduleRetry(): void {
    this.#attempt++
    const delay = backoffDelayMs(this.#attempt, { baseMs: this.options.retryBaseMs, maxMs: this.options.retryMaxMs })
    this.#retryTimer = setTimeout(() => {
      this.#retryTimer = undefined
      void this.#flush()
    }, delay)
    // A pending retry must not keep a stopping process alive; close() flushes explicitly.
    this.#retryTimer.unref()
  }
}

function closedError(): BackbeatError {
  return new BackbeatError('ERR_DEPENDENCY_UNAVAILABLE', { params: { reason: 'the invalidation bus is closed' } })
}

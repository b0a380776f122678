import { z } from 'zod'
import { BackbeatError, parseOptions } from '../core/index.ts'
import { cacheKey } from './keys.ts'
import { TieredCache, type CacheEvent, type CacheSetOptions } from './tiered-cache.ts'

/**
 * How a {@link CacheWriter} orders the system of record (a database) and the cache:
 *
 * - `through`: the system of record first, then every cache tier. A persist failure throws
 *   and leaves the cache untouched.
 * - `behind`: the cache at once, the system of record later, in batches (by size and by
 *   interval), with repeated writes of one key coalesced and failed batches retried with
 *   backoff until they succeed. `flush()` and `close()` persist everything queued.
 * - `around`: the system of record, then the key is deleted from every tier (and peers, through
 *   the bus), so the next read loads the fresh value. For values written far more than read.
 */
export type WriteMode = 'through' | 'behind' | 'around'

/**
 * One change handed to `persist`: a value to store, or a key to remove. Deletes travel in the
 * same batches as writes (a delete marker rather than a second callback), so a write-behind
 * queue keeps one order per key and a delete coalesces with the writes before it.
 */
export type WriteOp<T> = { readonly op: 'set'; readonly key: string; readonly value: T } | { readonly op: 'delete'; readonly key: string }

/** Writes a batch to the system of record; rejects to have the whole batch retried (write-behind) or the call fail. */
export type Persist<T> = (batch: ReadonlyArray<WriteOp<T>>) => Promise<void>

/** Counters of a write-behind queue (zeros in the other modes). */
export interface WriteBehindStats {
  /** Ops not yet persisted: waiting in the queue or in the batch being written. */
  readonly queued: number
  /** Ops in the batch being written now. */
  readonly inFlight: number
  /** Calls waiting for room in a full queue (back-pressure). */
  readonly waiting: number
  /** Ops persisted. */
  readonly flushed: number
  /** Batches persisted. */
  readonly batches: number
  /** Failed persist calls (each retried later). */
  readonly failedAttempts: number
  /** Writes that replaced a queued op of the same key. */
  readonly coalesced: number
}

/**
 * Thrown by {@link CacheWriter.flush} and {@link CacheWriter.close} when queued writes are
 * still not persisted at the deadline (the system of record is down or too slow). `keys`
 * lists them, so they can be logged or replayed; after `close()` the writer has stopped.
 *
 * @example
 * try { await writer.close() } catch (err) { if (err instanceof WriteBehindTimeoutError) log.error({ keys: err.keys }, 'writes lost') }
 */
export class WriteBehindTimeoutError extends BackbeatError {
  readonly keys: readonly string[]
  constructor(keys: readonly string[], timeoutMs: number) {
    super('ERR_DEPENDENCY_TIMEOUT', { params: { dependency: 'cache write-behind system of record', timeoutMs, pending: keys.length } })
    this.keys = keys
  }
}

const fn = <T>(message: string) => z.custom<T>((value) => typeof value === 'function', message)
const millis = z.number().int().min(1).max(3_600_000)

const writerSchema = z
  .object({
    cache: z.custom<TieredCache>((value) => value instanceof TieredCache, 'must be a TieredCache'),
    mode: z.enum(['through', 'behind', 'around']),
    persist: fn<Persist<unknown>>('must be a function persisting a batch'),
    /** write-behind: most ops per persist call; a full batch is written without waiting for the interval. */
    batchSize: z.number().int().min(1).max(100_000).default(100),
    /** write-behind: the longest an op waits in the queue before its batch is written. */
    flushIntervalMs: millis.default(1_000),
    /** write-behind: most distinct keys waiting; past it, write() and remove() wait for room (back-pressure). */
    maxQueue: z.number().int().min(1).max(10_000_000).default(10_000),
    /** write-behind: backoff of a failed batch, doubling from baseMs up to maxMs; it is retried until it succeeds. */
    retry: z
      .object({ baseMs: millis.default(100), maxMs: millis.default(30_000) })
      .strict()
      .refine((r) => r.baseMs <= r.maxMs, { message: 'must not be longer than maxMs', path: ['baseMs'] })
      .default({ baseMs: 100, maxMs: 30_000 }),
    /** How long flush() and close() wait for the queue to drain before throwing WriteBehindTimeoutError. */
    closeTimeoutMs: millis.default(30_000),
    /** Tier `writer`: `set` per persisted batch, `error` per failed attempt. */
    onEvent: fn<(event: CacheEvent) => void>('must be a function').optional(),
  })
  .strict()
  .refine((o) => o.batchSize <= o.maxQueue, { message: 'must not be larger than maxQueue', path: ['batchSize'] })

/** Options of {@link CacheWriter}. */
export type CacheWriterOptions<T> = Omit<z.input<typeof writerSchema>, 'persist'> & { persist: Persist<T> }

interface Pending<T> {
  readonly op: WriteOp<T>
  /** The oldest unpersisted write of the key (a coalesced op keeps its predecessor's), for flush(). */
  readonly seq: number
}

interface RoomWaiter<T> {
  readonly op: WriteOp<T>
  readonly resolve: () => void
  readonly reject: (err: Error) => void
}

const noop = (): void => undefined

/**
 * Writes values to a system of record and a {@link TieredCache} in one of three orders (see
 * {@link WriteMode}). Writes of one key are applied in call order in every mode. In
 * write-behind the queue is bounded: past `maxQueue` keys, `write()` waits for room (a write
 * of a key already queued coalesces and never waits unless others already do); a failed batch
 * goes back to the head of the queue and is retried with exponential backoff, never dropped.
 * `close()` stops new writes and persists everything queued, or throws
 * {@link WriteBehindTimeoutError} listing the keys it could not persist by `closeTimeoutMs`.
 *
 * Write-behind trades durability for latency: a crash loses what is queued, and a read that
 * misses every cache tier before the batch lands loads the old value from the system of record.
 *
 * @example
 * const writer = new CacheWriter<Playlist>({
 *   cache,
 *   mode: 'behind',
 *   persist: async (batch) => db.transaction((tx) => batch.map((w) => (w.op === 'set' ? tx.upsertPlaylist(w.key, w.value) : tx.deletePlaylist(w.key)))),
 *   batchSize: 200,
 *   flushIntervalMs: 500,
 * })
 * await writer.write(`playlist:${id}`, playlist, { ttlS: 600, tags: [`user:${owner}`] })
 * await writer.close() // on shutdown
 */
export class CacheWriter<T> {
  readonly options: Readonly<z.output<typeof writerSchema>>
  readonly mode: WriteMode
  readonly #cache: TieredCache
  readonly #persist: Persist<T>
  /** Per key, the tail of its writes: keeps one key's writes in call order. */
  readonly #chains = new Map<string, Promise<void>>()
  #queue = new Map<string, Pending<T>>()
  #inFlight: Array<Pending<T>> = []
  readonly #roomWaiters: Array<RoomWaiter<T>> = []
  readonly #flushWaiters: Array<{ readonly target: number; readonly resolve: () => void }> = []
  #seq = 0
  #timer: ReturnType<typeof setTimeout> | undefined
  #backoff: { timer: ReturnType<typeof setTimeout>; wake: () => void } | undefined
  #pumping = false
  #drainRequested = false
  #failures = 0
  #closed = false
  #stopped = false
  #closing: Promise<void> | undefined
  #flushed = 0
  #batches = 0
  #failedAttempts = 0
  #coalesced = 0

  constructor(options: CacheWriterOptions<T>) {
    this.options = parseOptions('cache.writer', writerSchema, options)
    this.mode = this.options.mode
    this.#cache = this.options.cache
    this.#persist = options.persist
  }

  /**
   * Writes `value` under `key` according to the mode. `options` are the cache's (TTL, grace,
   * tags). Throws `ERR_STORE_VALUE_REJECTED` for an invalid key or TTL before anything is
   * written; in `through` and `around`, the persist error as thrown.
   *
   * @example await writer.write(`album:${id}`, album, { ttlS: 300 })
   */
  async write(key: string, value: T, options: CacheSetOptions = {}): Promise<void> {
    // Checked and chained synchronously (before any await), so writes keep their call order.
    this.#check(key, options)
    return this.#serial(key, async () => {
      const op: WriteOp<T> = { op: 'set', key, value }
      if (this.mode === 'behind') {
        await this.#cache.set(key, value, options)
        await this.#enqueue(op)
        return
      }
      await this.#persist([op])
      if (this.mode === 'through') await this.#cache.set(key, value, options)
      else await this.#cache.delete(key)
    })
  }

  /**
   * Removes `key` from the system of record (a `delete` op) and from every cache tier: in
   * `behind`, the cache at once and the system of record with the next batch.
   *
   * @example await writer.remove(`album:${id}`)
   */
  async remove(key: string): Promise<void> {
    this.#check(key, {})
    return this.#serial(key, async () => {
      const op: WriteOp<T> = { op: 'delete', key }
      if (this.mode === 'behind') {
        await this.#cache.delete(key)
        await this.#enqueue(op)
        return
      }
      await this.#persist([op])
      await this.#cache.delete(key)
    })
  }

  /**
   * Resolves once every write made before the call is persisted (write-behind: the queue is
   * written now, not at the next interval; other modes: writes in progress settle). Throws
   * {@link WriteBehindTimeoutError} after `timeoutMs` (default `closeTimeoutMs`); the queue is
   * kept and retried.
   *
   * @example await writer.flush({ timeoutMs: 5_000 })
   */
  async flush(options: { timeoutMs?: number } = {}): Promise<void> {
    const timeoutMs = options.timeoutMs ?? this.options.closeTimeoutMs
    const started = performance.now()
    await this.#settleChains(timeoutMs)
    if (this.mode !== 'behind') return
    const target = this.#seq
    if (this.#oldestPending() > target) return
    let waiter: { readonly target: number; readonly resolve: () => void } | undefined
    const done = new Promise<void>((resolve) => {
      waiter = { target, resolve }
      this.#flushWaiters.push(waiter)
    })
    void this.#pump(true)
    const left = Math.max(1, timeoutMs - (performance.now() - started))
    const inTime = await raceTimeout(done, left)
    if (!inTime) {
      const index = waiter === undefined ? -1 : this.#flushWaiters.indexOf(waiter)
      if (index >= 0) this.#flushWaiters.splice(index, 1)
      throw new WriteBehindTimeoutError(this.#pendingKeys(target), timeoutMs)
    }
  }

  /**
   * Refuses new writes, then persists everything queued (graceful shutdown loses nothing).
   * Throws {@link WriteBehindTimeoutError} listing the keys still unpersisted after
   * `closeTimeoutMs`; the writer then stops retrying, so the process can exit. The cache is
   * not closed (it may be shared).
   *
   * @example await writer.close()
   */
  close(): Promise<void> {
    this.#closing ??= this.#close()
    return this.#closing
  }

  /** Counters of the write-behind queue. */
  get stats(): WriteBehindStats {
    return {
      queued: this.#queue.size + this.#inFlight.length,
      inFlight: this.#inFlight.length,
      waiting: this.#roomWaiters.length,
      flushed: this.#flushed,
      batches: this.#batches,
      failedAttempts: this.#failedAttempts,
      coalesced: this.#coalesced,
    }
  }

  async #close(): Promise<void> {
    this.#closed = true
    try {
      await this.flush({ timeoutMs: this.options.closeTimeoutMs })
    } catch (err) {
      this.#stop(err instanceof Error ? err : new Error(String(err)))
      throw err
    }
    this.#stop(new BackbeatError('ERR_DEPENDENCY_UNAVAILABLE', { params: { dependency: 'cache writer (closed)' } }))
  }

  #stop(reason: Error): void {
    this.#stopped = true
    clearTimeout(this.#timer)
    this.#timer = undefined
    if (this.#backoff !== undefined) {
      clearTimeout(this.#backoff.timer)
      this.#backoff.wake()
    }
    for (const waiter of this.#roomWaiters.splice(0)) waiter.reject(reason)
  }

  #check(key: string, options: CacheSetOptions): void {
    if (this.#closed) throw new BackbeatError('ERR_DEPENDENCY_UNAVAILABLE', { params: { dependency: 'cache writer (closed)' } })
    // Validated before the system of record is touched: a write must not land in the
    // database and then fail on the cache.
    cacheKey(this.#cache.options.namespace, key)
    const { ttlS, graceS } = options
    if ((ttlS !== undefined && !(Number.isFinite(ttlS) && ttlS > 0)) || (graceS !== undefined && !(Number.isFinite(graceS) && graceS >= 0))) {
      throw new BackbeatError('ERR_STORE_VALUE_REJECTED', { params: { reason: 'ttlS must be a positive number of seconds and graceS zero or more' } })
    }
  }

  #serial(key: string, task: () => Promise<void>): Promise<void> {
    const previous = this.#chains.get(key)
    const run = previous === undefined ? task() : previous.then(task)
    const tail = run.then(noop, noop)
    this.#chains.set(key, tail)
    void tail.then(() => {
      if (this.#chains.get(key) === tail) this.#chains.delete(key)
    })
    return run
  }

  async #settleChains(timeoutMs: number): Promise<void> {
    if (this.#chains.size === 0) return
    const keys = [...this.#chains.keys()]
    if (!(await raceTimeout(Promise.all(this.#chains.values()), timeoutMs))) throw new WriteBehindTimeoutError(keys, timeoutMs)
  }

  #hasRoom(key: string): boolean {
    return this.#queue.has(key) || this.#queue.size < this.options.maxQueue
  }

  #enqueue(op: WriteOp<T>): Promise<void> {
    if (this.#stopped) return Promise.reject(new BackbeatError('ERR_DEPENDENCY_UNAVAILABLE', { params: { dependency: 'cache writer (closed)' } }))
    // Behind earlier waiters even for a queued key: jumping the line could reorder writes.
    if (this.#roomWaiters.length === 0 && this.#hasRoom(op.key)) {
      this.#insert(op)
      return Promise.resolve()
    }
    return new Promise<void>((resolve, reject) => this.#roomWaiters.push({ op, resolve, reject }))
  }

  /** Read through a method: a field check before an await would stay narrowed after it. */
  #running(): boolean {
    return !this.#stopped
  }

  /** Admits waiters in arrival order, inserting each one synchronously so the room it saw is still there. */
  #admit(): void {
    for (let first = this.#roomWaiters[0]; first !== undefined && this.#hasRoom(first.op.key); first = this.#roomWaiters[0]) {
      this.#roomWaiters.shift()
      this.#insert(first.op)
      first.resolve()
    }
  }

  #insert(op: WriteOp<T>): void {
    const existing = this.#queue.get(op.key)
    if (existing !== undefined) {
      // Last wins, at the position of the latest write: persisted after everything written before it.
      this.#queue.delete(op.key)
      this.#coalesced += 1
    }
    this.#seq += 1
    this.#queue.set(op.key, { op, seq: existing?.seq ?? this.#seq })
    if (this.#queue.size >= this.options.batchSize) void this.#pump(false)
    else this.#arm()
  }

  /** Starts the interval timer unless it runs: the oldest queued op waits at most flushIntervalMs. */
  #arm(): void {
    this.#timer ??= setTimeout(() => {
      this.#timer = undefined
      void this.#pump(true)
    }, this.options.flushIntervalMs)
  }

  /** The one loop writing batches: with `drain`, until the queue is empty; else while full batches wait. */
  async #pump(drain: boolean): Promise<void> {
    // A drain asked for while a batch is being written is honoured by that running loop.
    if (drain) this.#drainRequested = true
    if (this.#pumping || this.#stopped) return
    this.#pumping = true
    clearTimeout(this.#timer)
    this.#timer = undefined
    try {
      while (this.#running() && this.#queue.size > 0 && (this.#drainRequested || this.#flushWaiters.length > 0 || this.#queue.size >= this.options.batchSize)) {
        const batch: Array<Pending<T>> = []
        for (const [key, pending] of this.#queue) {
          if (batch.length >= this.options.batchSize) break
          batch.push(pending)
          this.#queue.delete(key)
        }
        this.#inFlight = batch
        this.#admit()
        const started = performance.now()
        try {
          await this.#persist(batch.map((p) => p.op))
          this.#inFlight = []
          this.#failures = 0
          this.#flushed += batch.length
          this.#batches += 1
          this.#emit('set', performance.now() - started)
          this.#settleFlushWaiters()
        } catch (err) {
          this.#inFlight = []
          this.#failures += 1
          this.#failedAttempts += 1
          this.#emit('error', performance.now() - started, err instanceof Error ? err.message : String(err))
          this.#requeue(batch)
          const { baseMs, maxMs } = this.options.retry
          await this.#sleep(Math.min(maxMs, baseMs * 2 ** Math.min(this.#failures - 1, 30)))
        }
      }
    } finally {
      this.#pumping = false
      if (this.#queue.size === 0) this.#drainRequested = false
      else if (this.#running()) {
        // Ops that arrived during the last batch: written right away when asked for, else at the next interval.
        if (this.#flushWaiters.length > 0 || this.#queue.size >= this.options.batchSize) void this.#pump(false)
        else this.#arm()
      }
    }
  }

  /** A failed batch goes back to the head; a key written again meanwhile keeps only its newer op. */
  #requeue(batch: ReadonlyArray<Pending<T>>): void {
    const newer = this.#queue
    const queue = new Map<string, Pending<T>>()
    for (const pending of batch) if (!newer.has(pending.op.key)) queue.set(pending.op.key, pending)
    const failedSeq = new Map(batch.map((p) => [p.op.key, p.seq]))
    for (const [key, pending] of newer) {
      const old = failedSeq.get(key)
      queue.set(key, old === undefined ? pending : { op: pending.op, seq: Math.min(old, pending.seq) })
    }
    this.#queue = queue
  }

  #sleep(ms: number): Promise<void> {
    return new Promise<void>((resolve) => {
      const wake = (): void => {
        this.#backoff = undefined
        resolve()
      }
      this.#backoff = { timer: setTimeout(wake, ms), wake }
    })
  }

  #oldestPending(): number {
    let oldest = Infinity
    for (const pending of this.#queue.values()) oldest = Math.min(oldest, pending.seq)
    for (const pending of this.#inFlight) oldest = Math.min(oldest, pending.seq)
    return oldest
  }

  #pendingKeys(target: number): string[] {
    const keys = new Set<string>()
    for (const pending of [...this.#inFlight, ...this.#queue.values()]) if (pending.seq <= target) keys.add(pending.op.key)
    return [...keys]
  }

  #settleFlushWaiters(): void {
    if (this.#flushWaiters.length === 0) return
    const oldest = this.#oldestPending()
    for (let i = this.#flushWaiters.length - 1; i >= 0; i--) {
      const waiter = this.#flushWaiters[i]
      if (waiter !== undefined && waiter.target < oldest) {
        this.#flushWaiters.splice(i, 1)
        waiter.resolve()
      }
    }
  }

  #emit(kind: 'set' | 'error', ms: number, reason?: string): void {
    const hook = this.options.onEvent
    if (hook === undefined) return
    try {
      hook(reason === undefined ? { tier: 'writer', kind, ms } : { tier: 'writer', kind, ms, reason })
    } catch {
      // A broken metrics hook must not stop the queue.
    }
  }
}

/** Resolves true when `promise` settles within `ms`, false otherwise (the timer does not hold the process). */
function raceTimeout(promise: Promise<unknown>, ms: number): Promise<boolean> {
  return new Promise<boolean>((resolve) => {
    // Not unref'd: a flush or close waiting for its deadline is real work.
    const timer = setTimeout(() => resolve(false), ms)
    promise.then(
      () => {
        clearTimeout(timer)
        resolve(true)
      },
      () => {
        clearTimeout(timer)
        resolve(true)
      },
    )
  })
}

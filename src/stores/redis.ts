import { Redis } from 'ioredis'
import { z } from 'zod'
import { parseOptions, type HealthCheck, type HealthCheckable } from '../core/index.ts'
import { connectionName, durationMs, urlWithProtocol } from './options.ts'
import {
  backoffDelayMs,
  isTimeoutCode,
  notConnectedError,
  probe,
  reasonOf,
  storeError,
  targetOf,
  withTimeout,
  type FailureSite,
} from './store-errors.ts'

const redisOptionsSchema = z.object({
  url: urlWithProtocol(['redis:', 'rediss:']),
  name: connectionName('redis'),
  keyPrefix: z.string().max(256).optional(),
  connectTimeoutMs: durationMs(5_000),
  commandTimeoutMs: durationMs(2_000),
  /** Reconnects the client retries a command across before failing it (keep small: fail fast). */
  maxRetriesPerRequest: z.number().int().min(0).max(10).default(1),
  reconnectBaseMs: durationMs(50),
  reconnectMaxMs: durationMs(2_000),
})

/** Options of {@link RedisConnection}; durations are in milliseconds. */
export type RedisConnectionOptions = z.input<typeof redisOptionsSchema>

/**
 * One Redis connection (ioredis) with explicit lifecycle, bounded timeouts and reconnect with
 * jittered backoff. While Redis is down, commands fail at once instead of queueing, so a dead
 * Redis costs callers an error, not a hung request.
 *
 * @example
 * const redis = new RedisConnection({ url: 'redis://127.0.0.1:6379', keyPrefix: 'bb:' })
 * await redis.connect()
 * await redis.client.set('greeting', 'hi')
 * await redis.close()
 */
export class RedisConnection implements HealthCheckable {
  readonly name: string
  readonly options: Readonly<z.output<typeof redisOptionsSchema>>
  #client: Redis | undefined
  #state: 'idle' | 'connecting' | 'open' | 'closed' = 'idle'
  /**
   * Why the connection is down: the last socket error ioredis emitted (e.g. `connect
   * ECONNREFUSED 127.0.0.1:6379`), cleared once it is ready again. ioredis itself only says
   * "Connection is closed." or "Stream isn't writeable…", which tells an operator nothing.
   */
  #lastError: Error | undefined

  constructor(options: RedisConnectionOptions) {
    this.options = parseOptions('redis', redisOptionsSchema, options)
    this.name = this.options.name
  }

  /** The ioredis client; throws `ERR_DEPENDENCY_UNAVAILABLE` before `connect()` or after `close()`. */
  get client(): Redis {
    if (this.#client === undefined || this.#state !== 'open') {
      throw notConnectedError(this.#site('client'), this.#state === 'closed' ? 'closed' : 'not connected')
    }
    return this.#client
  }

  /** Opens the connection and waits until Redis answers; fails within `connectTimeoutMs`. */
  async connect(): Promise<void> {
    if (this.#state === 'open') return
    if (this.#state !== 'idle') throw notConnectedError(this.#site('connect'), this.#state === 'closed' ? 'closed' : 'not connected')
    this.#state = 'connecting'
    const { options } = this
    const client = new Redis(options.url, {
      lazyConnect: true,
      connectionName: options.name,
      ...(options.keyPrefix === undefined ? {} : { keyPrefix: options.keyPrefix }),
      connectTimeout: options.connectTimeoutMs,
      commandTimeout: options.commandTimeoutMs,
      maxRetriesPerRequest: options.maxRetriesPerRequest,
      // Queue only while the first connection is being set up; switched off below.
      enableOfflineQueue: true,
      retryStrategy: (attempt) => backoffDelayMs(attempt, { baseMs: options.reconnectBaseMs, maxMs: options.reconnectMaxMs }),
    })
    this.#lastError = undefined
    // ioredis emits 'error' for every failed (re)connect; without a listener Node would crash.
    // Kept as the reason reported while the connection is down.
    client.on('error', (err: Error) => {
      this.#lastError = err
    })
    client.on('close', () => {
      this.#lastError ??= new Error('connection closed by the server')
    })
    client.on('ready', () => {
      this.#lastError = undefined
    })
    try {
      await withTimeout(client.connect(), options.connectTimeoutMs, () => Object.assign(new Error(`no answer within ${options.connectTimeoutMs}ms`), { code: 'ETIMEDOUT' }))
    } catch (err) {
      client.disconnect()
      this.#state = 'idle'
      const kind = isTimeoutCode(err) ? 'timeout' : 'unavailable'
      throw storeError(this.#site('connect'), kind, kind === 'unavailable' ? (this.#socketError() ?? err) : err)
    }
    client.options.enableOfflineQueue = false
    this.#client = client
    this.#state = 'open'
  }

  /** Closes the connection (QUIT, then a hard disconnect if Redis does not answer); idempotent. */
  async close(): Promise<void> {
    const client = this.#client
    this.#state = 'closed'
    this.#client = undefined
    if (client === undefined) return
    try {
      await withTimeout(client.quit(), this.options.commandTimeoutMs, () => new Error('quit timed out'))
    } catch {
      // QUIT fails when Redis is already gone; the disconnect below is what matters.
    } finally {
      client.disconnect()
    }
  }

  /** PINGs Redis; `fail` with the reason when it is unreachable or not connected. */
  readonly healthCheck: HealthCheck = (signal) =>
    probe('redis', signal, async () => {
      try {
        await this.client.ping()
      } catch (err) {
        throw this.wrap('ping', err)
      }
    })

  /**
   * Turns an ioredis error into a Backbeat error: a reply from Redis (e.g. WRONGTYPE) is
   * `ERR_STORE_COMMAND_FAILED`, a timeout `ERR_DEPENDENCY_TIMEOUT`, anything else
   * `ERR_DEPENDENCY_UNAVAILABLE`. Stores built on this connection use it for every call.
   *
   * @example
   * try { await redis.client.get(key) } catch (err) { throw redis.wrap('get', err) }
   */
  wrap(operation: string, err: unknown): Error {
    const site = this.#site(operation)
    if (err instanceof Error && err.name === 'ReplyError') return storeError(site, 'rejected', err)
    if (isTimeoutCode(err) || (err instanceof Error && /timed out/i.test(err.message))) return storeError(site, 'timeout', err)
    // While the connection is down, ioredis fails commands with a generic message; report
    // the socket error that brought it down instead, keeping the command's error as cause.
    const down = this.#client?.status === 'ready' ? undefined : this.#socketError()
    return storeError(site, 'unavailable', err, down === undefined ? {} : { reason: reasonOf(down) })
  }

  /** Read through a method: the listeners set it behind the type checker's back. */
  #socketError(): Error | undefined {
    return this.#lastError
  }

  #site(operation: string): FailureSite {
    return { store: 'redis', name: this.name, operation, target: targetOf(this.options.url) }
  }
}

import memjs from 'memjs'
import { z } from 'zod'
import { parseOptions, type BackbeatError } from '../core/index.ts'
import type { HealthCheck, HealthCheckable } from '../core/index.ts'
import { connectionName, durationMs } from './options.ts'
import { isTimeoutCode, notConnectedError, probe, storeError, withTimeout, type FailureSite } from './store-errors.ts'

const SERVER = /^[^\s,:]+(:\d{1,5})?$/

const memcachedOptionsSchema = z.object({
  /** `host:port,host:port` (memjs also accepts `user:pass@host:port`). */
  servers: z.string().refine((value) => value.split(',').every((s) => SERVER.test(s.trim().replace(/^[^@]*@/, ''))), 'must be "host:port" or a comma-separated list of them'),
  name: connectionName('memcached'),
  connectTimeoutMs: durationMs(2_000),
  commandTimeoutMs: durationMs(1_000),
  /** Attempts per command before failing (memjs reconnects on the next attempt). */
  retries: z.number().int().min(1).max(5).default(2),
  retryDelayMs: durationMs(100),
})

/** Options of {@link MemcachedConnection}; durations are in milliseconds. */
export type MemcachedConnectionOptions = z.input<typeof memcachedOptionsSchema>

/** The memjs client type this connection exposes. */
export type MemcachedClient = memjs.Client

/**
 * A memjs client with explicit lifecycle. memjs dials lazily and re-dials a broken socket on
 * the next command (after `retryDelayMs`), so `connect()` performs a real round trip to prove
 * every server answers before the app starts taking traffic.
 *
 * @example
 * const memcached = new MemcachedConnection({ servers: '127.0.0.1:11211' })
 * await memcached.connect()
 * await memcached.client.set('k', 'v', { expires: 60 })
 */
export class MemcachedConnection implements HealthCheckable {
  readonly name: string
  readonly options: Readonly<z.output<typeof memcachedOptionsSchema>>
  #client: memjs.Client | undefined
  #state: 'idle' | 'open' | 'closed' = 'idle'

  constructor(options: MemcachedConnectionOptions) {
    this.options = parseOptions('memcached', memcachedOptionsSchema, options)
    this.name = this.options.name
  }

  /** The memjs client; throws `ERR_DEPENDENCY_UNAVAILABLE` before `connect()` or after `close()`. */
  get client(): memjs.Client {
    if (this.#client === undefined || this.#state !== 'open') {
      throw notConnectedError(this.#site('client'), this.#state === 'closed' ? 'closed' : 'not connected')
    }
    return this.#client
  }

  /** Dials every server and waits for its stats reply; fails within the connect timeout. */
  async connect(): Promise<void> {
    if (this.#state === 'open') return
    if (this.#state === 'closed') throw notConnectedError(this.#site('connect'), 'closed')
    const { options } = this
    const client = this.#createClient()
    try {
      await withTimeout(statsAll(client), options.connectTimeoutMs + options.retries * (options.commandTimeoutMs + options.retryDelayMs), () =>
        Object.assign(new Error(`no answer within ${options.connectTimeoutMs}ms`), { code: 'ETIMEDOUT' }),
      )
    } catch (err) {
      client.close()
      throw this.wrap('connect', err)
    }
    this.#client = client
    this.#state = 'open'
  }

  /**
   * Runs one memjs call under an overall deadline and wraps its errors. The deadline is not
   * optional: memjs never settles a request whose socket the server closes without an error.
   *
   * @example
   * const { value } = await memcached.run('get', (client) => client.get('k'))
   */
  async run<T>(operation: string, call: (client: memjs.Client) => Promise<T>): Promise<T> {
    const client = this.client
    const { options } = this
    const budgetMs = options.connectTimeoutMs + options.retries * (options.commandTimeoutMs + options.retryDelayMs)
    try {
      return await withTimeout(call(client), budgetMs, () => Object.assign(new Error(`no answer within ${budgetMs}ms`), { code: 'ETIMEDOUT' }))
    } catch (err) {
      const wrapped = this.wrap(operation, err)
      if (wrapped.category === 'dependency' && this.#client === client) {
        // After a reset memjs's old socket 'close' handler clears the *new* socket, so the next
        // request hangs forever (regression-tested). A fresh client has no such stale state.
        this.#client = this.#createClient()
        client.close()
      }
      throw wrapped
    }
  }

  /** Closes every socket; idempotent. */
  close(): Promise<void> {
    this.#client?.close()
    this.#client = undefined
    this.#state = 'closed'
    return Promise.resolve()
  }

  /** Asks every server for its stats; `fail` names the first server that did not answer. */
  readonly healthCheck: HealthCheck = (signal) =>
    probe('memcached', signal, async () => {
      await this.run('stats', statsAll)
    })

  /**
   * Turns a memjs error into a Backbeat error: an error status from memcached (e.g. a
   * non-numeric incr) is `ERR_STORE_COMMAND_FAILED`, a timeout `ERR_DEPENDENCY_TIMEOUT`,
   * anything else `ERR_DEPENDENCY_UNAVAILABLE`.
   *
   * @example
   * try { await memcached.client.get(key) } catch (err) { throw memcached.wrap('get', err) }
   */
  wrap(operation: string, err: unknown): BackbeatError {
    const site = this.#site(operation)
    const message = err instanceof Error ? err.message : String(err)
    if (message.startsWith('MemJS ')) return storeError(site, 'rejected', err)
    if (isTimeoutCode(err) || /timed out|timeout/i.test(message)) return storeError(site, 'timeout', err)
    return storeError(site, 'unavailable', err)
  }

  #createClient(): memjs.Client {
    const { options } = this
    return memjs.Client.create(options.servers, {
      timeout: options.commandTimeoutMs / 1000,
      conntimeout: options.connectTimeoutMs / 1000,
      retries: options.retries,
      retry_delay: options.retryDelayMs / 1000,
      keepAlive: true,
      // memjs logs every failure to the console; failures reach callers as errors instead.
      logger: { log: () => undefined },
    })
  }

  #site(operation: string): FailureSite {
    return { store: 'memcached', name: this.name, operation, target: this.options.servers.replace(/[^,@]*@/g, '') }
  }
}

/** Resolves when every server answered STATS; memjs calls back once per server. */
function statsAll(client: memjs.Client): Promise<void> {
  const expected = client.servers.length
  return new Promise((resolve, reject) => {
    let answered = 0
    let failed = false
    client.stats((err, server) => {
      if (failed) return
      if (err !== null) {
        failed = true
        reject(err instanceof Error ? Object.assign(err, { message: `${server}: ${err.message}` }) : new Error(`${server}: ${String(err)}`))
        return
      }
      answered += 1
      if (answered === expected) resolve()
    })
  })
}

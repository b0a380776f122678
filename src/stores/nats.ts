import { connect, type NatsConnection as NatsClient } from '@nats-io/transport-node'
import { z } from 'zod'
import { parseOptions, type HealthCheck, type HealthCheckable } from '../core/index.ts'
import { connectionName, durationMs, urlWithProtocol } from './options.ts'
import { backoffDelayMs, isTimeoutCode, notConnectedError, probe, storeError, withTimeout, type FailureSite } from './store-errors.ts'

const natsOptionsSchema = z.object({
  /** One URL, or several comma-separated (`nats://a:4222,nats://b:4222`). */
  url: z.string().refine((value) => value.split(',').every((u) => urlWithProtocol(['nats:', 'tls:']).safeParse(u.trim()).success), 'must be nats:// URL(s), comma-separated'),
  name: connectionName('nats'),
  connectTimeoutMs: durationMs(5_000),
  /** Bounds `flush`-style round trips such as the health check and `drain` on close. */
  commandTimeoutMs: durationMs(2_000),
  /** -1 keeps reconnecting forever (the default: a broker outage should heal by itself). */
  maxReconnectAttempts: z.number().int().min(-1).default(-1),
  reconnectBaseMs: durationMs(100),
  reconnectMaxMs: durationMs(5_000),
  pingIntervalMs: durationMs(30_000),
})

/** Options of {@link NatsConnection}; durations are in milliseconds. */
export type NatsConnectionOptions = z.input<typeof natsOptionsSchema>

/**
 * A NATS connection with explicit lifecycle: reconnects with jittered backoff, health is a
 * bounded round trip (`rtt`), and `close()` drains so in-flight messages are not dropped.
 *
 * @example
 * const nats = new NatsConnection({ url: 'nats://127.0.0.1:4222', name: 'events' })
 * await nats.connect()
 * nats.connection.publish('tracks.played', payload)
 * await nats.close()
 */
export class NatsConnection implements HealthCheckable {
  readonly name: string
  readonly options: Readonly<z.output<typeof natsOptionsSchema>>
  #connection: NatsClient | undefined
  #state: 'idle' | 'connecting' | 'open' | 'closed' = 'idle'
  #attempt = 0

  constructor(options: NatsConnectionOptions) {
    this.options = parseOptions('nats', natsOptionsSchema, options)
    this.name = this.options.name
  }

  /** The underlying `NatsConnection`; throws `ERR_DEPENDENCY_UNAVAILABLE` before `connect()` or after `close()`. */
  get connection(): NatsClient {
    if (this.#connection === undefined || this.#state !== 'open') {
      throw notConnectedError(this.#site('connection'), this.#state === 'closed' ? 'closed' : 'not connected')
    }
    return this.#connection
  }

  /** Connects to the first reachable server; fails within `connectTimeoutMs`. */
  async connect(): Promise<void> {
    if (this.#state === 'open') return
    if (this.#state !== 'idle') throw notConnectedError(this.#site('connect'), this.#state === 'closed' ? 'closed' : 'not connected')
    this.#state = 'connecting'
    const { options } = this
    try {
      const pending = connect({
        servers: options.url.split(',').map((u) => u.trim()),
        name: options.name,
        timeout: options.connectTimeoutMs,
        maxReconnectAttempts: options.maxReconnectAttempts,
        reconnectDelayHandler: () => backoffDelayMs(++this.#attempt, { baseMs: options.reconnectBaseMs, maxMs: options.reconnectMaxMs }),
        pingInterval: options.pingIntervalMs,
        // Fail the first connect instead of retrying silently: start-up should say what is wrong.
        waitOnFirstConnect: false,
      })
      this.#connection = await withTimeout(pending, options.connectTimeoutMs + 500, () => {
        // A late success must not leak a live connection.
        pending.then((nc) => nc.close(), () => undefined).catch(() => undefined)
        return Object.assign(new Error(`no answer within ${options.connectTimeoutMs}ms`), { code: 'ETIMEDOUT' })
      })
    } catch (err) {
      this.#state = 'idle'
      throw this.wrap('connect', err)
    }
    this.#state = 'open'
    void this.#watch(this.#connection)
  }

  /** Drains subscriptions and pending publishes, then closes; idempotent. */
  async close(): Promise<void> {
    const nc = this.#connection
    this.#state = 'closed'
    this.#connection = undefined
    if (nc === undefined || nc.isClosed()) return
    try {
      await withTimeout(nc.drain(), this.options.commandTimeoutMs, () => new Error('drain timed out'))
    } catch {
      // Drain fails when the server is gone or slow; closing is what matters now.
      await nc.close()
    }
  }

  /** Measures a round trip to the server; `fail` when disconnected or it takes too long. */
  readonly healthCheck: HealthCheck = (signal) =>
    probe('nats', signal, async () => {
      try {
        const nc = this.connection
        await withTimeout(nc.rtt(), this.options.commandTimeoutMs, () => Object.assign(new Error(`no PONG within ${this.options.commandTimeoutMs}ms`), { code: 'ETIMEDOUT' }))
      } catch (err) {
        throw this.wrap('rtt', err)
      }
    })

  /**
   * Turns a NATS client error into a Backbeat error (`ERR_DEPENDENCY_TIMEOUT` for timeouts,
   * otherwise `ERR_DEPENDENCY_UNAVAILABLE`).
   *
   * @example
   * try { await nats.connection.request('svc', data) } catch (err) { throw nats.wrap('request', err) }
   */
  wrap(operation: string, err: unknown): Error {
    const timedOut = isTimeoutCode(err) || (err instanceof Error && /timeout|timed out/i.test(`${err.name} ${err.message}`))
    return storeError(this.#site(operation), timedOut ? 'timeout' : 'unavailable', err)
  }

  /** Resets the backoff once a reconnect succeeds, so the next outage starts quick again. */
  async #watch(nc: NatsClient): Promise<void> {
    for await (const status of nc.status()) {
      if (status.type === 'reconnect') this.#attempt = 0
    }
  }

  #site(operation: string): FailureSite {
    const first = this.options.url.split(',')[0]?.trim() ?? ''
    let target = first
    try {
      const parsed = new URL(first)
      target = `${parsed.hostname}:${parsed.port === '' ? '4222' : parsed.port}`
    } catch {
      // Validated at construction; keep the raw value if parsing still fails.
    }
    return { store: 'nats', name: this.name, operation, target }
  }
}

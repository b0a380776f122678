/**
 * Security-relevant events raised by any capability (a rate-limit block, a denied address,
 * a CSP violation report, later threat detections and auth failures). Capabilities report
 * them to a sink; the stack's default sink logs each one and keeps the latest in a bounded
 * in-memory log, and the security audit capability can take its place.
 */
export type SecuritySeverity = 'info' | 'low' | 'medium' | 'high' | 'critical'

export interface SecurityEvent {
  /** Stable snake_case name, e.g. `rate_limit_block`, `ip_denied`, `csp_violation`. */
  readonly type: string
  readonly severity: SecuritySeverity
  /** Epoch milliseconds. */
  readonly at: number
  readonly requestId?: string
  readonly clientIp?: string
  /** Event-specific, already redacted/bounded by the reporter. */
  readonly details: Readonly<Record<string, unknown>>
}

export type SecurityEventSink = (event: SecurityEvent) => void

/**
 * A bounded log of the most recent security events (a ring buffer): memory stays constant
 * however many events arrive; `dropped` counts those that fell off the end.
 *
 * @example
 * const log = new SecurityEventLog(1000)
 * log.record({ type: 'ip_denied', severity: 'low', at: Date.now(), details: {} })
 */
export class SecurityEventLog {
  readonly capacity: number
  readonly #events: SecurityEvent[] = []
  #next = 0
  #total = 0

  constructor(capacity = 1_000) {
    if (!Number.isInteger(capacity) || capacity < 1) throw new TypeError('capacity must be a positive integer')
    this.capacity = capacity
  }

  readonly record: SecurityEventSink = (event) => {
    if (this.#events.length < this.capacity) this.#events.push(event)
    else this.#events[this.#next] = event
    this.#next = (this.#next + 1) % this.capacity
    this.#total++
  }

  /** Events oldest first, optionally only those of one type. */
  list(type?: string): SecurityEvent[] {
    const ordered = this.#events.length < this.capacity ? [...this.#events] : [...this.#events.slice(this.#next), ...this.#events.slice(0, this.#next)]
    return type === undefined ? ordered : ordered.filter((e) => e.type === type)
  }

  /** Events recorded since start, including those no longer held. */
  get total(): number {
    return this.#total
  }

  get dropped(): number {
    return this.#total - this.#events.length
  }
}

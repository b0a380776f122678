import { delay, parseOptions, systemClock, type Clock } from '../core/index.ts'
import type { AlertChannel, AlertNotification, NotifiedAlert } from './channels.ts'
import { alertingOptionsSchema, type AlertingOptions, type AlertingOptionsInput } from './options.ts'
import { compare, type AlertRule, type AlertSeverity, type MetricsSnapshot } from './rules.ts'

export type AlertEventType = 'fired' | 'resolved' | 'escalated' | 'notified' | 'delivery_failed'

export interface AlertEvent {
  readonly type: AlertEventType
  readonly atMs: number
  readonly rule?: string
  readonly labels?: Readonly<Record<string, string>>
  readonly severity?: AlertSeverity
  readonly value?: number
  /** For fired/escalated/resolved: whether a notification was queued, or why not. */
  readonly notification?: 'queued' | 'silenced' | 'cooldown'
  readonly channel?: string
  readonly groupKey?: string
  readonly error?: string
}

export interface ActiveAlert {
  readonly rule: string
  readonly labels: Readonly<Record<string, string>>
  readonly state: 'pending' | 'firing'
  readonly severity: AlertSeverity
  readonly value: number | undefined
  readonly activeSinceMs: number
  readonly firedAtMs?: number
  readonly silenced: boolean
}

export interface SilenceMatcher {
  readonly rule?: string
  readonly labels?: Readonly<Record<string, string>>
}

export interface Silence {
  readonly id: string
  readonly matchers: SilenceMatcher
  readonly startsAtMs: number
  readonly endsAtMs: number
  readonly comment?: string
}

export interface AlertEngineStats {
  readonly dropped: number
  readonly delivered: number
  readonly failed: number
  readonly queued: number
}

export interface AlertEngineOptions {
  readonly rules?: readonly AlertRule[]
  readonly channels?: readonly AlertChannel[]
  readonly options?: AlertingOptionsInput
  /** Used by `start()` only; `evaluate` takes `now` explicitly. */
  readonly clock?: Clock
  /** Waits between delivery retries (tests inject a fast one). */
  readonly sleep?: (ms: number) => Promise<void>
  /** 0..1, for retry jitter. */
  readonly random?: () => number
}

interface AlertState {
  readonly rule: AlertRule
  readonly key: string
  phase: 'pending' | 'firing'
  activeSinceMs: number
  firedAtMs: number | undefined
  lastEscalationMs: number
  severity: AlertSeverity
  value: number | undefined
  notified: boolean
  silenced: boolean
}

interface ChannelQueue {
  readonly channel: AlertChannel
  readonly items: AlertNotification[]
  running: Promise<void> | undefined
}

const RAISE: Record<AlertSeverity, AlertSeverity> = { info: 'warning', warning: 'critical', critical: 'critical' }

function alertKey(rule: string, labels: Readonly<Record<string, string>>): string {
  return JSON.stringify([rule, Object.entries(labels).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))])
}

function message(error: unknown): string {
  return error instanceof Error ? error.message : String(error)
}

/**
 * Evaluates alert rules against metric snapshots: pending → firing after `forS`, one active
 * alert per rule+labels, cooldown, silences, escalation, resolution, notifications grouped per
 * group key and delivered to channels in the background (bounded queues, timeouts, retries
 * with exponential backoff and full jitter). `evaluate` never waits on a channel.
 */
export class AlertEngine {
  readonly options: Readonly<AlertingOptions>
  readonly #rules = new Map<string, AlertRule>()
  readonly #active = new Map<string, AlertState>()
  readonly #lastNotifiedMs = new Map<string, number>()
  readonly #silences = new Map<string, Silence>()
  readonly #groups = new Map<string, { openedAtMs: number; alerts: NotifiedAlert[] }>()
  readonly #queues: ChannelQueue[]
  readonly #history: AlertEvent[] = []
  readonly #clock: Clock
  readonly #sleep: (ms: number) => Promise<void>
  readonly #random: () => number
  #silenceSeq = 0
  #dropped = 0
  #delivered = 0
  #failed = 0
  #timer: NodeJS.Timeout | undefined
  #closed = false

  constructor(init: AlertEngineOptions = {}) {
    this.options = parseOptions('alerting', alertingOptionsSchema, init.options ?? {})
    this.#clock = init.clock ?? systemClock
    this.#sleep = init.sleep ?? ((ms) => delay(ms))
    this.#random = init.random ?? Math.random
    this.#queues = (init.channels ?? []).map((channel) => ({ channel, items: [], running: undefined }))
    for (const rule of init.rules ?? []) this.addRule(rule)
  }

  addRule(rule: AlertRule): void {
    if (this.#rules.has(rule.name)) throw new TypeError(`an alert rule named ${rule.name} already exists`)
    this.#rules.set(rule.name, rule)
  }

  rules(): readonly AlertRule[] {
    return [...this.#rules.values()]
  }

  addSilence(silence: Omit<Silence, 'id'>): string {
    if (!(silence.endsAtMs > silence.startsAtMs)) throw new TypeError('a silence must end after it starts')
    const id = `s${String(++this.#silenceSeq)}`
    this.#silences.set(id, { ...silence, id })
    return id
  }

  removeSilence(id: string): boolean {
    return this.#silences.delete(id)
  }

  silences(): readonly Silence[] {
    return [...this.#silences.values()]
  }

  /** Evaluates every rule at `now` (ms), flushes due notification groups and returns this round's events. */
  evaluate(snapshot: MetricsSnapshot, now: number): readonly AlertEvent[] {
    const events: AlertEvent[] = []
    for (const [id, silence] of this.#silences) if (silence.endsAtMs <= now) this.#silences.delete(id)
    for (const rule of this.#rules.values()) {
      let value: number | undefined
      try {
        value = rule.expression(snapshot)
      } catch {
        value = undefined
      }
      const holds = value !== undefined && Number.isFinite(value) && compare(value, rule.comparator, rule.threshold)
      const key = alertKey(rule.name, rule.labels)
      const state = this.#active.get(key)
      if (holds && value !== undefined) this.#holds(rule, key, state, value, now, events)
      else if (state !== undefined) {
        this.#active.delete(key)
        if (state.phase === 'firing') {
          const silenced = this.#isSilenced(rule, now)
          const queue = state.notified && !silenced
          if (queue) this.#addToGroup(rule, now, { ...this.#notified(state, 'resolved', now), value })
          events.push(this.#record({ type: 'resolved', atMs: now, rule: rule.name, labels: rule.labels, severity: state.severity, ...(value === undefined ? {} : { value }), ...(queue ? { notification: 'queued' } : silenced ? { notification: 'silenced' } : {}) }))
        }
      }
    }
    this.flush(now)
    return events
  }

  #holds(rule: AlertRule, key: string, existing: AlertState | undefined, value: number, now: number, events: AlertEvent[]): void {
    const state: AlertState = existing ?? { rule, key, phase: 'pending', activeSinceMs: now, firedAtMs: undefined, lastEscalationMs: now, severity: rule.severity, value, notified: false, silenced: false }
    if (existing === undefined) this.#active.set(key, state)
    state.value = value
    state.silenced = this.#isSilenced(rule, now)
    if (state.phase === 'pending') {
      if (now - state.activeSinceMs < rule.forS * 1000) return
      state.phase = 'firing'
      state.firedAtMs = now
      state.lastEscalationMs = now
      const last = this.#lastNotifiedMs.get(key)
      const cooling = last !== undefined && now - last < rule.cooldownS * 1000
      const notification = state.silenced ? 'silenced' : cooling ? 'cooldown' : 'queued'
      if (notification === 'queued') {
        state.notified = true
        this.#lastNotifiedMs.set(key, now)
        this.#addToGroup(rule, now, this.#notified(state, 'fired', now))
      }
      events.push(this.#record({ type: 'fired', atMs: now, rule: rule.name, labels: rule.labels, severity: state.severity, value, notification }))
      return
    }
    if (rule.escalateAfterS !== undefined && state.severity !== 'critical' && now - state.lastEscalationMs >= rule.escalateAfterS * 1000) {
      state.severity = RAISE[state.severity]
      state.lastEscalationMs = now
      const notification = state.silenced ? 'silenced' : 'queued'
      if (notification === 'queued') {
        state.notified = true
        this.#lastNotifiedMs.set(key, now)
        this.#addToGroup(rule, now, this.#notified(state, 'escalated', now))
      }
      events.push(this.#record({ type: 'escalated', atMs: now, rule: rule.name, labels: rule.labels, severity: state.severity, value, notification }))
    }
  }

  #notified(state: AlertState, reason: NotifiedAlert['reason'], now: number): NotifiedAlert {
    return {
      rule: state.rule.name,
      labels: state.rule.labels,
      severity: state.severity,
      status: reason === 'resolved' ? 'resolved' : 'firing',
      reason,
      value: state.value,
      startsAtMs: state.firedAtMs ?? state.activeSinceMs,
      ...(reason === 'resolved' ? { endsAtMs: now } : {}),
      ...(state.rule.summary === undefined ? {} : { summary: state.rule.summary }),
    }
  }

  #isSilenced(rule: AlertRule, now: number): boolean {
    for (const s of this.#silences.values()) {
      if (now < s.startsAtMs || now >= s.endsAtMs) continue
      if (s.matchers.rule !== undefined && s.matchers.rule !== rule.name) continue
      if (Object.entries(s.matchers.labels ?? {}).every(([k, v]) => rule.labels[k] === v)) return true
    }
    return false
  }

  #addToGroup(rule: AlertRule, now: number, alert: NotifiedAlert): void {
    const groupKey = rule.group ?? rule.name
    const group = this.#groups.get(groupKey)
    if (group === undefined) this.#groups.set(groupKey, { openedAtMs: now, alerts: [alert] })
    else group.alerts.push(alert)
  }

  /** Sends every group whose window (`groupWaitMs`) has elapsed at `now`. Called by `evaluate`. */
  flush(now: number): void {
    for (const [groupKey, group] of this.#groups) {
      if (now - group.openedAtMs < this.options.groupWaitMs) continue
      this.#groups.delete(groupKey)
      this.#dispatch({ groupKey, sentAtMs: now, alerts: group.alerts })
    }
  }

  #dispatch(notification: AlertNotification): void {
    for (const queue of this.#queues) {
      queue.items.push(notification)
      while (queue.items.length > this.options.queueSize) {
        queue.items.shift()
        this.#dropped++
      }
      queue.running ??= this.#drainQueue(queue).finally(() => {
        queue.running = undefined
      })
    }
  }

  async #drainQueue(queue: ChannelQueue): Promise<void> {
    for (let next = queue.items.shift(); next !== undefined && !this.#closed; next = queue.items.shift()) {
      await this.#deliver(queue.channel, next)
    }
  }

  async #deliver(channel: AlertChannel, notification: AlertNotification): Promise<void> {
    const { timeoutMs, retries, baseDelayMs, maxDelayMs } = this.options.delivery
    for (let attempt = 0; ; attempt++) {
      try {
        await attemptWithTimeout(channel, notification, timeoutMs)
        this.#delivered++
        this.#record({ type: 'notified', atMs: this.#clock(), channel: channel.name, groupKey: notification.groupKey })
        return
      } catch (error) {
        if (attempt >= retries || this.#closed) {
          this.#failed++
          this.#record({ type: 'delivery_failed', atMs: this.#clock(), channel: channel.name, groupKey: notification.groupKey, error: message(error) })
          return
        }
        const cap = Math.min(maxDelayMs, baseDelayMs * 2 ** attempt)
        await this.#sleep(Math.round(cap * this.#random()))
      }
    }
  }

  #record(event: AlertEvent): AlertEvent {
    this.#history.push(event)
    if (this.#history.length > this.options.historySize) this.#history.splice(0, this.#history.length - this.options.historySize)
    return event
  }

  /** Most recent events first. */
  history(query: { limit?: number } = {}): readonly AlertEvent[] {
    const limit = query.limit ?? this.#history.length
    return this.#history.slice(Math.max(0, this.#history.length - limit)).reverse()
  }

  active(): readonly ActiveAlert[] {
    return [...this.#active.values()].map((s) => ({
      rule: s.rule.name,
      labels: s.rule.labels,
      state: s.phase,
      severity: s.severity,
      value: s.value,
      activeSinceMs: s.activeSinceMs,
      ...(s.firedAtMs === undefined ? {} : { firedAtMs: s.firedAtMs }),
      silenced: s.silenced,
    }))
  }

  stats(): AlertEngineStats {
    return { dropped: this.#dropped, delivered: this.#delivered, failed: this.#failed, queued: this.#queues.reduce((n, q) => n + q.items.length, 0) }
  }

  /** Resolves once every channel queue is empty and no delivery is under way. */
  async drain(): Promise<void> {
    for (;;) {
      const running = this.#queues.map((q) => q.running).filter((p) => p !== undefined)
      if (running.length === 0) return
      await Promise.all(running)
    }
  }

  /** Evaluates every `intervalMs` (an unref'd timer) with the snapshot `getSnapshot` returns. */
  start(getSnapshot: () => MetricsSnapshot, intervalMs = this.options.evaluationIntervalMs): void {
    if (this.#timer !== undefined) return
    this.#timer = setInterval(() => {
      try {
        this.evaluate(getSnapshot(), this.#clock())
      } catch {
        // a failing snapshot source skips one round
      }
    }, intervalMs)
    this.#timer.unref()
  }

  /** Stops the timer; queued notifications are abandoned after the attempt under way. */
  close(): void {
    clearInterval(this.#timer)
    this.#timer = undefined
    this.#closed = true
  }
}

async function attemptWithTimeout(channel: AlertChannel, notification: AlertNotification, timeoutMs: number): Promise<void> {
  const signal = AbortSignal.timeout(timeoutMs)
  let onAbort: (() => void) | undefined
  const aborted = new Promise<never>((_, reject) => {
    onAbort = () => {
      reject(new Error(`channel ${channel.name} timed out after ${String(timeoutMs)} ms`))
    }
    signal.addEventListener('abort', onAbort, { once: true })
  })
  try {
    await Promise.race([channel.send(notification, signal), aborted])
  } finally {
    if (onAbort !== undefined) signal.removeEventListener('abort', onAbort)
  }
}

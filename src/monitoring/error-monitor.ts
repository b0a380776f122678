import { parseOptions, systemClock, type Clock } from '../core/index.ts'
import { fingerprintError, messageOf, redactSecrets, stackOf } from './fingerprint.ts'
import { errorMonitorOptionsSchema, type ErrorMonitorOptions, type ErrorMonitorOptionsInput } from './options.ts'
import { classifyError, recommend, type IssueCategory } from './recommendations.ts'
import { CountRing, type TrendBucket } from './ring.ts'

const MINUTE_MS = 60_000
const HOUR_MS = 3_600_000

/** Where an error happened; every field is optional (an unhandled error has none). */
export interface ErrorContext {
  /** The route template (`/v1/tracks/:id`), never the raw URL. */
  route?: string | undefined
  method?: string | undefined
  status?: number | undefined
  requestId?: string | undefined
  userId?: string | undefined
  /** `uncaughtException`, `unhandledRejection`, `request`... */
  source?: string | undefined
}

/** One recorded error, as handed to `onEvent`. */
export interface ErrorEvent {
  fingerprint: string
  type: string
  category: IssueCategory
  /** Redacted and cut to `maxMessageLength`. */
  message: string
  normalizedMessage: string
  frames: readonly string[]
  at: number
  /** True for the first event of an issue (since it was last dropped). */
  isNew: boolean
  context: Readonly<ErrorContext>
}

export interface RouteCount {
  /** `METHOD /template`, or the template alone when the method is unknown. */
  route: string
  count: number
}

/** An issue: the events sharing one fingerprint. Times are epoch milliseconds. */
export interface ErrorIssue {
  fingerprint: string
  type: string
  category: IssueCategory
  /** The normalised message: what the events have in common. */
  title: string
  count: number
  firstSeen: number
  lastSeen: number
  /** Events in the current minute. */
  lastMinute: number
  /** Events in the last 60 minute buckets (fewer when `minuteBuckets` is below 60). */
  lastHour: number
  routes: RouteCount[]
  /** Events on routes beyond `maxRoutesPerIssue`. */
  otherRoutesCount: number
  statuses: Record<string, number>
  /** Distinct user IDs seen (saturates at `maxUsersPerIssue`). */
  usersAffected: number
  lastRequestId: string | undefined
  /** The latest event's message and stack, redacted. */
  sampleMessage: string
  sampleStack: string | undefined
  frames: readonly string[]
  recommendations: string[]
}

export type IssueSort = 'count' | 'lastSeen' | 'firstSeen' | 'lastHour' | 'lastMinute'

export interface IssueTrend {
  perMinute: TrendBucket[]
  perHour: TrendBucket[]
}

export interface Spike {
  /** `overall`, or an issue's fingerprint. */
  scope: string
  title: string
  currentMinute: number
  /** Mean events per minute over the baseline minutes. */
  baselinePerMinute: number
  /** currentMinute / baseline; null when the baseline is zero. */
  ratio: number | null
}

export interface ErrorInsights {
  generatedAt: number
  totals: { events: number; issues: number; lastMinute: number; lastHour: number }
  /** The most common issues by count. */
  topIssues: ErrorIssue[]
  spikes: Spike[]
  recommendations: { fingerprint: string; title: string; category: IssueCategory; advice: string[] }[]
}

export interface ErrorMonitorStats {
  events: number
  ignored: number
  issues: number
  evicted: number
  expired: number
  hookErrors: number
}

export type ErrorMonitorInput = ErrorMonitorOptionsInput & {
  now?: Clock
  /** Called for every recorded event (alerting, metrics); its exceptions are counted, never thrown. */
  onEvent?: (event: ErrorEvent) => void
}

interface IssueState {
  fingerprint: string
  type: string
  category: IssueCategory
  title: string
  frames: readonly string[]
  count: number
  firstSeen: number
  lastSeen: number
  routes: Map<string, number>
  otherRoutesCount: number
  statuses: Map<number, number>
  users: Set<string>
  lastRequestId: string | undefined
  sampleMessage: string
  sampleStack: string | undefined
  minutes: CountRing
  hours: CountRing
  recommendations: string[]
}

/**
 * Groups 5xx responses and unhandled errors into issues by fingerprint, with bounded
 * per-minute/per-hour trends, spike detection and advice. Memory is bounded: at most
 * `maxIssues` issues (least recently seen dropped first), `maxRoutesPerIssue` routes each,
 * and issues unseen for `retentionS` are dropped.
 *
 * @example
 * const monitor = new ErrorMonitor({ maxIssues: 200 })
 * monitor.record(err, { route: '/v1/tracks/:id', method: 'GET', status: 500, requestId: req.id })
 * monitor.insights().spikes
 */
export class ErrorMonitor {
  readonly options: ErrorMonitorOptions
  readonly #now: Clock
  readonly #onEvent: ((event: ErrorEvent) => void) | undefined
  readonly #appRoot: string
  /** Insertion order = last-seen order: re-inserted on each event, so the first entry is the LRU. */
  readonly #issues = new Map<string, IssueState>()
  #minutes: CountRing
  #hours: CountRing
  #stats: ErrorMonitorStats = { events: 0, ignored: 0, issues: 0, evicted: 0, expired: 0, hookErrors: 0 }

  constructor(input: ErrorMonitorInput = {}) {
    const { now, onEvent, ...rest } = input
    this.options = parseOptions('errorMonitor', errorMonitorOptionsSchema, rest)
    this.#now = now ?? systemClock
    this.#onEvent = onEvent
    this.#appRoot = this.options.appRoot ?? process.cwd()
    this.#minutes = new CountRing(MINUTE_MS, this.options.minuteBuckets)
    this.#hours = new CountRing(HOUR_MS, this.options.hourBuckets)
  }

  /**
   * Records one error. Events with a status below `minStatus` (4xx) are ignored; an event
   * with no status is an unhandled error and always recorded. Returns the event, if recorded.
   */
  record(error: unknown, context: ErrorContext = {}): ErrorEvent | undefined {
    if (!this.options.enabled || (context.status !== undefined && context.status < this.options.minStatus)) {
      this.#stats.ignored++
      return undefined
    }
    const at = this.#now()
    this.#expire(at)
    const fp = fingerprintError(error, { appRoot: this.#appRoot, stackFrames: this.options.stackFrames })
    const message = cut(redactSecrets(messageOf(error)), this.options.maxMessageLength)
    let issue = this.#issues.get(fp.id)
    const isNew = issue === undefined
    if (issue === undefined) {
      const category = classifyError(error)
      issue = {
        fingerprint: fp.id,
        type: fp.type,
        category,
        title: fp.normalizedMessage,
        frames: fp.frames,
        count: 0,
        firstSeen: at,
        lastSeen: at,
        routes: new Map(),
        otherRoutesCount: 0,
        statuses: new Map(),
        users: new Set(),
        lastRequestId: undefined,
        sampleMessage: message,
        sampleStack: undefined,
        minutes: new CountRing(MINUTE_MS, this.options.minuteBuckets),
        hours: new CountRing(HOUR_MS, this.options.hourBuckets),
        recommendations: recommend(category, fp.type, fp.frames),
      }
      this.#stats.issues++
    } else {
      this.#issues.delete(fp.id)
    }
    this.#issues.set(fp.id, issue)
    issue.count++
    issue.lastSeen = Math.max(issue.lastSeen, at)
    issue.minutes.add(at)
    issue.hours.add(at)
    issue.sampleMessage = message
    const stack = stackOf(error)
    issue.sampleStack = stack === undefined || this.options.maxStackLength === 0 ? undefined : cut(redactSecrets(stack), this.options.maxStackLength)
    if (context.requestId !== undefined) issue.lastRequestId = context.requestId
    if (context.status !== undefined) issue.statuses.set(context.status, (issue.statuses.get(context.status) ?? 0) + 1)
    if (context.route !== undefined) {
      const key = context.method === undefined ? context.route : `${context.method} ${context.route}`
      const seen = issue.routes.get(key)
      if (seen !== undefined) issue.routes.set(key, seen + 1)
      else if (issue.routes.size < this.options.maxRoutesPerIssue) issue.routes.set(key, 1)
      else issue.otherRoutesCount++
    }
    if (context.userId !== undefined && issue.users.size < this.options.maxUsersPerIssue) issue.users.add(context.userId)
    this.#minutes.add(at)
    this.#hours.add(at)
    this.#stats.events++
    while (this.#issues.size > this.options.maxIssues) {
      const oldest = this.#issues.keys().next().value
      if (oldest === undefined) break
      this.#issues.delete(oldest)
      this.#stats.evicted++
    }
    const event: ErrorEvent = {
      fingerprint: fp.id,
      type: fp.type,
      category: issue.category,
      message,
      normalizedMessage: fp.normalizedMessage,
      frames: fp.frames,
      at,
      isNew,
      context: { ...context },
    }
    if (this.#onEvent !== undefined) {
      try {
        this.#onEvent(event)
      } catch {
        this.#stats.hookErrors++
      }
    }
    return event
  }

  /** Issues, most common first by default. */
  issues(query: { sort?: IssueSort; limit?: number } = {}): ErrorIssue[] {
    const now = this.#now()
    this.#expire(now)
    const all = [...this.#issues.values()].map((s) => this.#snapshot(s, now))
    const sort = query.sort ?? 'count'
    const key = (i: ErrorIssue): number => (sort === 'firstSeen' ? -i.firstSeen : i[sort])
    all.sort((a, b) => key(b) - key(a) || b.lastSeen - a.lastSeen)
    return query.limit === undefined ? all : all.slice(0, query.limit)
  }

  /** One issue by fingerprint. */
  issue(fingerprint: string): ErrorIssue | undefined {
    const state = this.#issues.get(fingerprint)
    return state === undefined ? undefined : this.#snapshot(state, this.#now())
  }

  /** Per-minute and per-hour counts, oldest first: overall, or of one issue. */
  trends(fingerprint?: string): IssueTrend | undefined {
    const now = this.#now()
    if (fingerprint === undefined) return { perMinute: this.#minutes.series(now), perHour: this.#hours.series(now) }
    const state = this.#issues.get(fingerprint)
    return state === undefined ? undefined : { perMinute: state.minutes.series(now), perHour: state.hours.series(now) }
  }

  /** Spikes of the current minute, overall and per issue, biggest first. */
  spikes(): Spike[] {
    const now = this.#now()
    const out: Spike[] = []
    const overall = this.#spike('overall', 'all errors', this.#minutes, now)
    if (overall !== undefined) out.push(overall)
    for (const state of this.#issues.values()) {
      const spike = this.#spike(state.fingerprint, state.title, state.minutes, now)
      if (spike !== undefined) out.push(spike)
    }
    return out.sort((a, b) => b.currentMinute - a.currentMinute)
  }

  /** The most common issues, current spikes and advice for both. */
  insights(): ErrorInsights {
    const now = this.#now()
    const topIssues = this.issues({ sort: 'count', limit: this.options.topIssues })
    const spikes = this.spikes()
    const advised = new Map<string, ErrorIssue>()
    for (const spike of spikes) {
      const issue = spike.scope === 'overall' ? undefined : this.issue(spike.scope)
      if (issue !== undefined) advised.set(issue.fingerprint, issue)
    }
    for (const issue of topIssues) advised.set(issue.fingerprint, issue)
    return {
      generatedAt: now,
      totals: { events: this.#stats.events, issues: this.#issues.size, lastMinute: this.#minutes.at(now, 0), lastHour: this.#minutes.sum(now, 60) },
      topIssues,
      spikes,
      recommendations: [...advised.values()].map((i) => ({ fingerprint: i.fingerprint, title: i.title, category: i.category, advice: i.recommendations })),
    }
  }

  /** Counters of the monitor itself; `issues` is the number currently held. */
  stats(): ErrorMonitorStats {
    return { ...this.#stats, issues: this.#issues.size }
  }

  /** Forgets every issue, trend and counter. */
  clear(): void {
    this.#issues.clear()
    this.#minutes = new CountRing(MINUTE_MS, this.options.minuteBuckets)
    this.#hours = new CountRing(HOUR_MS, this.options.hourBuckets)
    this.#stats = { events: 0, ignored: 0, issues: 0, evicted: 0, expired: 0, hookErrors: 0 }
  }

  #expire(now: number): void {
    const cutoff = now - this.options.retentionS * 1000
    for (const [key, state] of this.#issues) {
      if (state.lastSeen >= cutoff) break
      this.#issues.delete(key)
      this.#stats.expired++
    }
  }

  #spike(scope: string, title: string, ring: CountRing, now: number): Spike | undefined {
    const current = ring.at(now, 0)
    const { factor, minEvents, baselineMinutes } = this.options.spike
    if (current < minEvents) return undefined
    let total = 0
    for (let ago = 1; ago <= baselineMinutes; ago++) total += ring.at(now, ago)
    const baseline = total / baselineMinutes
    if (current <= factor * baseline) return undefined
    return { scope, title, currentMinute: current, baselinePerMinute: baseline, ratio: baseline === 0 ? null : current / baseline }
  }

  #snapshot(s: IssueState, now: number): ErrorIssue {
    return {
      fingerprint: s.fingerprint,
      type: s.type,
      category: s.category,
      title: s.title,
      count: s.count,
      firstSeen: s.firstSeen,
      lastSeen: s.lastSeen,
      lastMinute: s.minutes.at(now, 0),
      lastHour: s.minutes.sum(now, 60),
      routes: [...s.routes].map(([route, count]) => ({ route, count })).sort((a, b) => b.count - a.count),
      otherRoutesCount: s.otherRoutesCount,
      statuses: Object.fromEntries([...s.statuses].map(([k, v]) => [String(k), v])),
      usersAffected: s.users.size,
      lastRequestId: s.lastRequestId,
      sampleMessage: s.sampleMessage,
      sampleStack: s.sampleStack,
      frames: s.frames,
      recommendations: s.recommendations,
    }
  }
}

function cut(text: string, max: number): string {
  return text.length > max ? `${text.slice(0, max - 1)}…` : text
}

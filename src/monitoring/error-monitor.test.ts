import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { BackbeatError, ConfigError } from '../core/index.ts'
import { ErrorMonitor, type ErrorEvent } from './error-monitor.ts'
import { classifyError } from './recommendations.ts'
import { fingerprintError, normalizeMessage, parseStack, redactSecrets } from './fingerprint.ts'

const ROOT = '/srv/app'
const T0 = Date.UTC(2026, 10, 22, 9, 0, 0)

/** An error with a hand-written V8 stack, so frames and line numbers are under the test's control. */
function errorAt(message: string, frames: string[], name = 'TypeError', code?: string): Error {
  const error = new Error(message)
  error.name = name
  if (code !== undefined) Object.assign(error, { code })
  error.stack = `${name}: ${message}\n${frames.map((f) => `    at ${f}`).join('\n')}`
  return error
}

function clock(start = T0): { now: () => number; advance: (ms: number) => void } {
  let t = start
  return { now: () => t, advance: (ms) => { t += ms } }
}

const FRAMES = [
  'TrackService.load (/srv/app/src/tracks/service.ts:42:17)',
  'async handler (file:///srv/app/src/tracks/routes.ts:10:5)',
  'Object.runRoute (/srv/app/node_modules/fastify/lib/route.js:300:9)',
  'process.processTicksAndRejections (node:internal/process/task_queues:105:5)',
]

describe('fingerprints', () => {
  it('strip volatile parts of messages: numbers, UUIDs, hex ids, quoted strings, e-mails, IPs, query strings', () => {
    assert.equal(
      normalizeMessage('User 42 "bob" <bob@example.com> from 10.1.2.3:6379 got 550e8400-e29b-41d4-a716-446655440000 / 3f9a2b7c1d9e at https://api.example.com/v1/x?token=abc&n=2'),
      'User <n> <str> <<email>> from <ip> got <uuid> / <hex> at https://api.example.com/v1/x',
    )
  })

  it('keep function and app-relative file, drop line and column, and mark node_modules and node: frames as not in-app', () => {
    const frames = parseStack(errorAt('x', FRAMES).stack, ROOT)
    assert.deepEqual(
      frames.map((f) => [f.fn, f.file, f.inApp]),
      [
        ['TrackService.load', 'src/tracks/service.ts', true],
        ['handler', 'src/tracks/routes.ts', true],
        ['Object.runRoute', 'node_modules/fastify/lib/route.js', false],
        ['process.processTicksAndRejections', 'node:internal/process/task_queues', false],
      ],
    )
  })

  it('are stable across volatile values and line numbers', () => {
    const a = fingerprintError(errorAt('Track 123 not loaded for "u1"', FRAMES), { appRoot: ROOT, stackFrames: 5 })
    const moved = FRAMES.map((f) => f.replace(':42:17', ':57:3').replace(':10:5', ':11:9'))
    const b = fingerprintError(errorAt('Track 98765 not loaded for "someone-else"', moved), { appRoot: ROOT, stackFrames: 5 })
    assert.equal(a.id, b.id)
    assert.deepEqual(a.frames, ['TrackService.load@src/tracks/service.ts', 'handler@src/tracks/routes.ts'])
  })

  it('differ for a different top frame, type or code', () => {
    const base = fingerprintError(errorAt('boom', FRAMES), { appRoot: ROOT, stackFrames: 5 }).id
    const otherTop = ['AlbumService.load (/srv/app/src/albums/service.ts:42:17)', ...FRAMES.slice(1)]
    assert.notEqual(fingerprintError(errorAt('boom', otherTop), { appRoot: ROOT, stackFrames: 5 }).id, base)
    assert.notEqual(fingerprintError(errorAt('boom', FRAMES, 'RangeError'), { appRoot: ROOT, stackFrames: 5 }).id, base)
    assert.notEqual(fingerprintError(errorAt('boom', FRAMES, 'Error', 'ECONNRESET'), { appRoot: ROOT, stackFrames: 5 }).id, fingerprintError(errorAt('boom', FRAMES, 'Error', 'ECONNREFUSED'), { appRoot: ROOT, stackFrames: 5 }).id)
  })

  it('ignore frames below the top N in-app frames', () => {
    const deeper = ['a (/srv/app/src/a.ts:1:1)', 'b (/srv/app/src/b.ts:1:1)', 'c (/srv/app/src/c.ts:1:1)']
    const other = ['a (/srv/app/src/a.ts:1:1)', 'b (/srv/app/src/b.ts:1:1)', 'z (/srv/app/src/z.ts:1:1)']
    assert.equal(fingerprintError(errorAt('m', deeper), { appRoot: ROOT, stackFrames: 2 }).id, fingerprintError(errorAt('m', other), { appRoot: ROOT, stackFrames: 2 }).id)
    assert.notEqual(fingerprintError(errorAt('m', deeper), { appRoot: ROOT, stackFrames: 3 }).id, fingerprintError(errorAt('m', other), { appRoot: ROOT, stackFrames: 3 }).id)
  })
})

describe('redaction', () => {
  it('removes bearer tokens, JWTs, passwords, API keys and URL credentials', () => {
    const text = redactSecrets('upstream said 401 for Authorization: Bearer abc123.def-456 password=hunter2 {"apiKey":"k-999"} redis://user:s3cret@cache:6379 eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.sig')
    for (const secret of ['abc123.def-456', 'hunter2', 'k-999', 's3cret', 'eyJhbGciOiJIUzI1NiJ9']) assert.ok(!text.includes(secret), `${secret} leaked: ${text}`)
    assert.match(text, /\[REDACTED\]/)
  })

  it('applies to the sample message and stack of an issue', () => {
    const monitor = new ErrorMonitor({ appRoot: ROOT })
    monitor.record(errorAt('call failed with Bearer tok_abcdef123456', FRAMES, 'Error'), { status: 502 })
    const [issue] = monitor.issues()
    assert.ok(issue !== undefined)
    assert.equal(issue.sampleMessage, 'call failed with Bearer [REDACTED]')
    assert.ok(issue.sampleStack !== undefined && !issue.sampleStack.includes('tok_abcdef123456'))
    assert.ok(!issue.title.includes('tok_abcdef123456'))
  })
})

describe('ErrorMonitor grouping', () => {
  it('groups events into one issue with count, first/last seen, routes, statuses, users and the latest request ID', () => {
    const c = clock()
    const events: ErrorEvent[] = []
    const monitor = new ErrorMonitor({ appRoot: ROOT, now: c.now, onEvent: (e) => events.push(e) })
    monitor.record(errorAt('Track 1 failed', FRAMES), { route: '/v1/tracks/:id', method: 'GET', status: 500, requestId: 'r1', userId: 'u1' })
    c.advance(5_000)
    monitor.record(errorAt('Track 2 failed', FRAMES), { route: '/v1/tracks/:id', method: 'GET', status: 500, requestId: 'r2', userId: 'u2' })
    c.advance(5_000)
    monitor.record(errorAt('Track 3 failed', FRAMES), { route: '/v1/albums/:id', method: 'GET', status: 503, requestId: 'r3', userId: 'u1' })
    const issues = monitor.issues()
    assert.equal(issues.length, 1)
    const issue = issues[0]
    assert.ok(issue !== undefined)
    assert.equal(issue.count, 3)
    assert.equal(issue.firstSeen, T0)
    assert.equal(issue.lastSeen, T0 + 10_000)
    assert.deepEqual(issue.routes, [{ route: 'GET /v1/tracks/:id', count: 2 }, { route: 'GET /v1/albums/:id', count: 1 }])
    assert.deepEqual(issue.statuses, { 500: 2, 503: 1 })
    assert.equal(issue.usersAffected, 2)
    assert.equal(issue.lastRequestId, 'r3')
    assert.equal(issue.sampleMessage, 'Track 3 failed')
    assert.equal(issue.title, 'Track <n> failed')
    assert.deepEqual(events.map((e) => e.isNew), [true, false, false])
    assert.equal(events[2]?.context.requestId, 'r3')
  })

  it('bounds the routes of an issue and counts the rest', () => {
    const monitor = new ErrorMonitor({ appRoot: ROOT, maxRoutesPerIssue: 3 })
    for (let i = 0; i < 10; i++) monitor.record(errorAt('x', FRAMES), { route: `/r${String(i)}`, status: 500 })
    const [issue] = monitor.issues()
    assert.equal(issue?.routes.length, 3)
    assert.equal(issue.otherRoutesCount, 7)
  })

  it('ignores responses below minStatus and records errors with no status', () => {
    const monitor = new ErrorMonitor({ appRoot: ROOT })
    assert.equal(monitor.record(errorAt('x', FRAMES), { status: 404 }), undefined)
    assert.notEqual(monitor.record(errorAt('x', FRAMES)), undefined)
    assert.deepEqual({ events: monitor.stats().events, ignored: monitor.stats().ignored }, { events: 1, ignored: 1 })
  })

  it('keeps at most maxIssues issues, dropping the least recently seen (10,000 distinct errors, 100 kept)', () => {
    const c = clock()
    const monitor = new ErrorMonitor({ appRoot: ROOT, maxIssues: 100, now: c.now })
    for (let i = 0; i < 10_000; i++) {
      c.advance(1)
      monitor.record(errorAt('x', [`fn${String(i)} (/srv/app/src/f${String(i)}.ts:1:1)`]), { status: 500 })
    }
    assert.equal(monitor.issues().length, 100)
    assert.deepEqual(monitor.stats(), { events: 10_000, ignored: 0, issues: 100, evicted: 9_900, expired: 0, hookErrors: 0 })
    assert.equal(monitor.issues({ sort: 'lastSeen', limit: 1 })[0]?.frames[0], 'fn9999@src/f9999.ts')
    assert.equal(monitor.issues({ sort: 'firstSeen', limit: 1 })[0]?.frames[0], 'fn9900@src/f9900.ts')
  })

  it('drops issues not seen within retentionS, and clear() forgets everything', () => {
    const c = clock()
    const monitor = new ErrorMonitor({ appRoot: ROOT, retentionS: 3_600, now: c.now })
    monitor.record(errorAt('old', FRAMES), { status: 500 })
    c.advance(30 * 60_000)
    monitor.record(errorAt('new', FRAMES), { status: 500 })
    c.advance(31 * 60_000)
    assert.deepEqual(monitor.issues().map((i) => i.title), ['new'])
    assert.equal(monitor.stats().expired, 1)
    monitor.clear()
    assert.equal(monitor.issues().length, 0)
    assert.equal(monitor.stats().events, 0)
  })

  it('counts a throwing onEvent hook instead of failing the record', () => {
    const monitor = new ErrorMonitor({ appRoot: ROOT, onEvent: () => { throw new Error('alerting down') } })
    assert.notEqual(monitor.record(errorAt('x', FRAMES), { status: 500 }), undefined)
    assert.equal(monitor.stats().hookErrors, 1)
  })

  it('rejects invalid options with ConfigError', () => {
    assert.throws(() => new ErrorMonitor({ maxIssues: 0 }), ConfigError)
  })
})

describe('ErrorMonitor trends and spikes', () => {
  it('counts per minute and per hour over bounded rings, oldest first', () => {
    const c = clock()
    const monitor = new ErrorMonitor({ appRoot: ROOT, now: c.now, minuteBuckets: 10, hourBuckets: 3, spike: { baselineMinutes: 5 } })
    const e = errorAt('x', FRAMES)
    monitor.record(e, { status: 500 })
    monitor.record(e, { status: 500 })
    c.advance(60_000)
    monitor.record(e, { status: 500 })
    c.advance(3_600_000)
    monitor.record(e, { status: 500 })
    const overall = monitor.trends()
    assert.ok(overall !== undefined)
    assert.equal(overall.perMinute.length, 10)
    assert.equal(overall.perHour.length, 3)
    assert.deepEqual(overall.perHour.map((b) => b.count), [0, 3, 1])
    assert.equal(overall.perHour[2]?.start, T0 + 3_600_000)
    assert.deepEqual(overall.perMinute.map((b) => b.count), [0, 0, 0, 0, 0, 0, 0, 0, 0, 1], 'an hour later the minutes before have left the ring')
    const fingerprint = monitor.issues()[0]?.fingerprint ?? ''
    assert.deepEqual(monitor.trends(fingerprint)?.perHour.map((b) => b.count), [0, 3, 1])
    assert.equal(monitor.trends('nope'), undefined)
  })

  it('flags a spike when the current minute exceeds factor x the trailing mean and minEvents', () => {
    const c = clock()
    const monitor = new ErrorMonitor({ appRoot: ROOT, now: c.now, spike: { factor: 3, minEvents: 10, baselineMinutes: 5 } })
    const steady = errorAt('steady', FRAMES)
    const burst = errorAt('burst', ['Other.fn (/srv/app/src/other.ts:1:1)'])
    for (let m = 0; m < 5; m++) {
      for (let i = 0; i < 4; i++) monitor.record(steady, { status: 500 })
      c.advance(60_000)
    }
    assert.deepEqual(monitor.spikes(), [], 'no events in the current minute')
    for (let i = 0; i < 4; i++) monitor.record(steady, { status: 500 })
    for (let i = 0; i < 12; i++) monitor.record(burst, { status: 500 })
    const spikes = monitor.spikes()
    assert.deepEqual(spikes.map((s) => [s.title, s.currentMinute, s.baselinePerMinute, s.ratio]), [
      ['all errors', 16, 4, 4],
      ['burst', 12, 0, null],
    ])
    const insights = monitor.insights()
    assert.equal(insights.spikes.length, 2)
    assert.equal(insights.totals.lastMinute, 16)
    assert.equal(insights.topIssues[0]?.title, 'steady')
    assert.ok(insights.recommendations.some((r) => r.title === 'burst'))
  })

  it('does not flag a busy but steady minute', () => {
    const c = clock()
    const monitor = new ErrorMonitor({ appRoot: ROOT, now: c.now, spike: { factor: 3, minEvents: 10, baselineMinutes: 5 } })
    for (let m = 0; m < 6; m++) {
      for (let i = 0; i < 20; i++) monitor.record(errorAt('x', FRAMES), { status: 500 })
      c.advance(60_000)
    }
    c.advance(-60_000)
    assert.deepEqual(monitor.spikes(), [])
  })
})

describe('recommendations', () => {
  it('advise by category and catalogue code', () => {
    const monitor = new ErrorMonitor({ appRoot: ROOT })
    const timeout = monitor.record(new BackbeatError('ERR_DEPENDENCY_TIMEOUT'), { status: 504 })
    const refused = monitor.record(errorAt('connect ECONNREFUSED 10.0.0.5:5432', FRAMES, 'Error', 'ECONNREFUSED'), { status: 500 })
    const bug = monitor.record(errorAt("Cannot read properties of undefined (reading 'id')", FRAMES), { status: 500 })
    const validation = monitor.record(Object.assign(errorAt('body/name must be string', FRAMES, 'Error', 'FST_ERR_VALIDATION'), { validation: [] }), { status: 500 })
    const advice = (e: ErrorEvent | undefined): string => monitor.issue(e?.fingerprint ?? '')?.recommendations.join(' ') ?? ''
    assert.equal(timeout?.category, 'timeout')
    assert.match(advice(timeout), /did not answer in time/)
    assert.equal(refused?.category, 'dependency')
    assert.match(advice(refused), /circuit breaker/)
    assert.equal(bug?.category, 'code_bug')
    assert.match(advice(bug), /TrackService\.load@src\/tracks\/service\.ts/)
    assert.equal(validation?.category, 'validation')
    assert.match(advice(validation), /client bug/)
  })

  it('classify cockatiel errors and thrown non-errors', () => {
    assert.equal(classifyError(Object.assign(new Error('x'), { name: 'BrokenCircuitError' })), 'circuit_open')
    assert.equal(classifyError(Object.assign(new Error('x'), { name: 'BulkheadRejectedError' })), 'overload')
    assert.equal(classifyError('a string'), 'unknown')
    const monitor = new ErrorMonitor({ appRoot: ROOT })
    const event = monitor.record('a string was thrown')
    assert.match(monitor.issue(event?.fingerprint ?? '')?.recommendations.join(' ') ?? '', /No stack/)
  })
})

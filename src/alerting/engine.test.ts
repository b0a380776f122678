import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import type { AlertChannel, AlertNotification } from './channels.ts'
import { AlertEngine } from './engine.ts'
import { customRule, errorRateRule, memoryRule, p95LatencyRule } from './rules.ts'

/** A channel that records what it is sent. */
function recorder(): AlertChannel & { sent: AlertNotification[] } {
  const sent: AlertNotification[] = []
  return { name: 'recorder', sent, send: (n) => { sent.push(n); return Promise.resolve() } }
}

const S = 1000

describe('AlertEngine', () => {
  it('keeps an alert pending until its condition has held for forS, then fires and notifies', async () => {
    const ch = recorder()
    const engine = new AlertEngine({ rules: [p95LatencyRule(0.5, { forS: 60 })], channels: [ch], options: { groupWaitMs: 0 } })
    engine.evaluate({ p95LatencyS: 0.9 }, 0)
    assert.equal(engine.active()[0]?.state, 'pending')
    engine.evaluate({ p95LatencyS: 0.9 }, 59 * S)
    assert.equal(engine.active()[0]?.state, 'pending')
    const events = engine.evaluate({ p95LatencyS: 0.9 }, 60 * S)
    assert.deepEqual(events.map((e) => [e.type, e.notification]), [['fired', 'queued']])
    assert.equal(engine.active()[0]?.state, 'firing')
    await engine.drain()
    assert.equal(ch.sent.length, 1)
    assert.equal(ch.sent[0]?.alerts[0]?.rule, 'HighP95Latency')
    assert.equal(ch.sent[0].alerts[0].value, 0.9)
  })

  it('drops a pending alert whose condition stops holding before forS, without notifying', async () => {
    const ch = recorder()
    const engine = new AlertEngine({ rules: [p95LatencyRule(0.5, { forS: 60 })], channels: [ch], options: { groupWaitMs: 0 } })
    engine.evaluate({ p95LatencyS: 0.9 }, 0)
    const events = engine.evaluate({ p95LatencyS: 0.1 }, 30 * S)
    assert.deepEqual(events, [])
    assert.deepEqual(engine.active(), [])
    await engine.drain()
    assert.equal(ch.sent.length, 0)
  })

  it('keeps one active alert per rule and labels however often the condition holds', async () => {
    const ch = recorder()
    const engine = new AlertEngine({ rules: [errorRateRule(0.01, { forS: 0 })], channels: [ch], options: { groupWaitMs: 0 } })
    for (let t = 0; t < 10; t++) engine.evaluate({ errorRate: 0.5 }, t * S)
    assert.equal(engine.active().length, 1)
    assert.equal(engine.history().filter((e) => e.type === 'fired').length, 1)
    await engine.drain()
    assert.equal(ch.sent.length, 1)
  })

  it('notifies resolution, and does not re-notify a new firing within the cooldown', async () => {
    const ch = recorder()
    const engine = new AlertEngine({ rules: [errorRateRule(0.01, { forS: 0, cooldownS: 300 })], channels: [ch], options: { groupWaitMs: 0 } })
    engine.evaluate({ errorRate: 0.5 }, 0)
    const resolved = engine.evaluate({ errorRate: 0 }, 10 * S)
    assert.deepEqual(resolved.map((e) => [e.type, e.notification]), [['resolved', 'queued']])
    const again = engine.evaluate({ errorRate: 0.5 }, 20 * S)
    assert.deepEqual(again.map((e) => [e.type, e.notification]), [['fired', 'cooldown']])
    engine.evaluate({ errorRate: 0 }, 30 * S) // not notified when fired, so its resolution is not either
    const later = engine.evaluate({ errorRate: 0.5 }, 301 * S)
    assert.deepEqual(later.map((e) => [e.type, e.notification]), [['fired', 'queued']])
    await engine.drain()
    assert.deepEqual(ch.sent.map((n) => n.alerts.map((a) => a.reason)), [['fired'], ['resolved'], ['fired']])
    assert.equal(ch.sent[1]?.alerts[0]?.endsAtMs, 10 * S)
  })

  it('batches notifications of one group key within the grouping window', async () => {
    const ch = recorder()
    const engine = new AlertEngine({
      rules: [memoryRule(80, { forS: 0, group: 'resources' }), customRule({ name: 'DiskFull', expression: (s) => s.custom?.disk, comparator: '>=', threshold: 90, group: 'resources' })],
      channels: [ch],
      options: { groupWaitMs: 10_000 },
    })
    engine.evaluate({ memoryPercent: 95 }, 0)
    engine.evaluate({ memoryPercent: 95, custom: { disk: 95 } }, 5 * S)
    await engine.drain()
    assert.equal(ch.sent.length, 0, 'nothing sent before the window closes')
    engine.evaluate({ memoryPercent: 95, custom: { disk: 95 } }, 10 * S)
    await engine.drain()
    assert.equal(ch.sent.length, 1)
    assert.equal(ch.sent[0]?.groupKey, 'resources')
    assert.deepEqual(ch.sent[0].alerts.map((a) => a.rule), ['HighMemoryUsage', 'DiskFull'])
  })

  it('does not notify alerts matched by an active silence, and notifies again once it ends', async () => {
    const ch = recorder()
    const rule = errorRateRule(0.01, { forS: 0, labels: { team: 'api' }, cooldownS: 0 })
    const engine = new AlertEngine({ rules: [rule], channels: [ch], options: { groupWaitMs: 0 } })
    engine.addSilence({ matchers: { labels: { team: 'api' } }, startsAtMs: 0, endsAtMs: 60 * S })
    const silenced = engine.evaluate({ errorRate: 0.5 }, 1 * S)
    assert.deepEqual(silenced.map((e) => e.notification), ['silenced'])
    assert.equal(engine.active()[0]?.silenced, true)
    engine.evaluate({ errorRate: 0 }, 2 * S)
    const other = engine.addSilence({ matchers: { rule: 'Other' }, startsAtMs: 0, endsAtMs: 600 * S })
    const after = engine.evaluate({ errorRate: 0.5 }, 61 * S)
    assert.deepEqual(after.map((e) => e.notification), ['queued'])
    assert.equal(engine.silences().length, 1)
    assert.equal(engine.removeSilence(other), true)
    await engine.drain()
    assert.equal(ch.sent.length, 1)
  })

  it('re-notifies an unresolved alert with a raised severity after escalateAfterS', async () => {
    const ch = recorder()
    const engine = new AlertEngine({ rules: [memoryRule(80, { forS: 0, severity: 'info', escalateAfterS: 600 })], channels: [ch], options: { groupWaitMs: 0 } })
    engine.evaluate({ memoryPercent: 90 }, 0)
    assert.deepEqual(engine.evaluate({ memoryPercent: 90 }, 599 * S), [])
    const first = engine.evaluate({ memoryPercent: 90 }, 600 * S)
    assert.deepEqual(first.map((e) => [e.type, e.severity]), [['escalated', 'warning']])
    const second = engine.evaluate({ memoryPercent: 90 }, 1200 * S)
    assert.deepEqual(second.map((e) => [e.type, e.severity]), [['escalated', 'critical']])
    assert.deepEqual(engine.evaluate({ memoryPercent: 90 }, 1800 * S), [], 'critical is the ceiling')
    await engine.drain()
    assert.deepEqual(ch.sent.map((n) => [n.alerts[0]?.reason, n.alerts[0]?.severity]), [['fired', 'info'], ['escalated', 'warning'], ['escalated', 'critical']])
  })

  it('keeps a bounded history, newest first', () => {
    const engine = new AlertEngine({ rules: [errorRateRule(0.01, { forS: 0, cooldownS: 0 })], options: { historySize: 3, groupWaitMs: 0 } })
    for (let t = 0; t < 6; t++) engine.evaluate({ errorRate: t % 2 === 0 ? 1 : 0 }, t * S)
    const history = engine.history()
    assert.equal(history.length, 3)
    assert.deepEqual(history.map((e) => e.atMs), [5 * S, 4 * S, 3 * S])
    assert.equal(engine.history({ limit: 1 }).length, 1)
  })

  it('ignores a rule whose expression throws or whose metric is missing', () => {
    const engine = new AlertEngine({ rules: [customRule({ name: 'Boom', expression: () => { throw new Error('x') }, comparator: '>', threshold: 0 }), p95LatencyRule(1)] })
    assert.deepEqual(engine.evaluate({}, 0), [])
  })

  it('rejects invalid options, duplicate rules and bad rule names', () => {
    assert.throws(() => new AlertEngine({ options: { queueSize: 0 } }), /queueSize/)
    assert.throws(() => new AlertEngine({ rules: [errorRateRule(), errorRateRule()] }), /already exists/)
    assert.throws(() => customRule({ name: 'bad name', expression: () => 1, comparator: '>', threshold: 0 }), /must match/)
  })
})

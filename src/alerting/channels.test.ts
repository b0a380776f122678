import assert from 'node:assert/strict'
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import { after, before, describe, it } from 'node:test'
import type { AlertChannel } from './channels.ts'
import { slackChannel, webhookChannel } from './channels.ts'
import { AlertEngine } from './engine.ts'
import { errorRateRule } from './rules.ts'

interface Received { readonly path: string; readonly contentType: string | undefined; readonly body: unknown }

describe('alert channels', () => {
  const received: Received[] = []
  const hanging: ServerResponse[] = []
  let server: Server
  let base = ''

  before(async () => {
    server = createServer((req: IncomingMessage, res: ServerResponse) => {
      const chunks: Buffer[] = []
      req.on('data', (c: Buffer) => chunks.push(c))
      req.on('end', () => {
        if (req.url === '/hang') {
          hanging.push(res)
          return
        }
        received.push({ path: req.url ?? '', contentType: req.headers['content-type'], body: JSON.parse(Buffer.concat(chunks).toString('utf8')) as unknown })
        res.statusCode = req.url === '/fail' ? 500 : 204
        res.end()
      })
    })
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
    base = `http://127.0.0.1:${String((server.address() as AddressInfo).port)}`
  })

  after(async () => {
    for (const res of hanging) res.destroy()
    server.closeAllConnections()
    await new Promise<void>((resolve) => server.close(() => { resolve() }))
  })

  it('POSTs the notification as JSON to a webhook', async () => {
    const engine = new AlertEngine({ rules: [errorRateRule(0.01, { forS: 0, labels: { env: 'prod' } })], channels: [webhookChannel(`${base}/hook`)], options: { groupWaitMs: 0 } })
    engine.evaluate({ errorRate: 0.2 }, 1_000)
    await engine.drain()
    const got = received.find((r) => r.path === '/hook')
    assert.equal(got?.contentType, 'application/json')
    assert.deepEqual(got.body, {
      groupKey: 'HighErrorRate',
      sentAtMs: 1_000,
      alerts: [{ rule: 'HighErrorRate', labels: { env: 'prod' }, severity: 'critical', status: 'firing', reason: 'fired', value: 0.2, startsAtMs: 1_000, summary: 'error rate above 1 %' }],
    })
    assert.equal(engine.stats().delivered, 1)
    assert.equal(engine.history({ limit: 1 })[0]?.type, 'notified')
  })

  it('sends Slack-compatible { text, blocks }', async () => {
    const engine = new AlertEngine({ rules: [errorRateRule(0.01, { forS: 0 })], channels: [slackChannel(`${base}/slack`)], options: { groupWaitMs: 0 } })
    engine.evaluate({ errorRate: 0.2 }, 0)
    await engine.drain()
    const body = received.find((r) => r.path === '/slack')?.body as { text: string; blocks: { type: string }[] }
    assert.match(body.text, /^\[FIRED\] critical HighErrorRate \(value 0\.2\): error rate above 1 %$/)
    assert.equal(body.blocks[0]?.type, 'section')
  })

  it('times out a hanging webhook, retries with backoff, and never blocks evaluate', async () => {
    const sleeps: number[] = []
    const engine = new AlertEngine({
      rules: [errorRateRule(0.01, { forS: 0 })],
      channels: [webhookChannel(`${base}/hang`)],
      options: { groupWaitMs: 0, delivery: { timeoutMs: 300, retries: 2, baseDelayMs: 100, maxDelayMs: 1_000 } },
      sleep: (ms) => { sleeps.push(ms); return Promise.resolve() },
      random: () => 0.5,
    })
    const started = performance.now()
    const events = engine.evaluate({ errorRate: 0.2 }, 0)
    // A delivery takes at least the 300 ms timeout: evaluate returning well before proves it never waits on it.
    assert.ok(performance.now() - started < 150, 'evaluate returned without waiting on the channel')
    assert.equal(events[0]?.type, 'fired')
    await engine.drain()
    assert.deepEqual(sleeps, [50, 100], 'exponential backoff with jitter between the three attempts')
    const failed = engine.history().find((e) => e.type === 'delivery_failed')
    assert.match(failed?.error ?? '', /abort|timed out/i)
    assert.equal(engine.stats().failed, 1)
    assert.equal(hanging.length, 3)
  })

  it('counts a non-2xx answer as a failed delivery', async () => {
    const engine = new AlertEngine({ rules: [errorRateRule(0.01, { forS: 0 })], channels: [webhookChannel(`${base}/fail`)], options: { groupWaitMs: 0, delivery: { retries: 0 } } })
    engine.evaluate({ errorRate: 0.2 }, 0)
    await engine.drain()
    assert.match(engine.history({ limit: 1 })[0]?.error ?? '', /answered 500/)
  })

  it('bounds each channel queue, dropping the oldest notifications and counting them', async () => {
    let release: (() => void) | undefined
    const sent: string[] = []
    const slow: AlertChannel = {
      name: 'slow',
      send: (n) => new Promise<void>((resolve) => { sent.push(n.alerts[0]?.reason ?? ''); release = resolve }),
    }
    const engine = new AlertEngine({ rules: [errorRateRule(0.01, { forS: 0, cooldownS: 0 })], channels: [slow], options: { groupWaitMs: 0, queueSize: 2, delivery: { timeoutMs: 10_000 } } })
    for (let t = 0; t < 8; t++) engine.evaluate({ errorRate: t % 2 === 0 ? 1 : 0 }, t * 1_000)
    assert.equal(engine.stats().dropped, 5, 'one in flight, two queued, five dropped')
    assert.equal(engine.stats().queued, 2)
    while (engine.stats().queued > 0 || sent.length < 3) {
      release?.()
      await new Promise((r) => setImmediate(r))
    }
    release?.()
    await engine.drain()
    assert.equal(engine.stats().delivered, 3)
  })
})

import assert from 'node:assert/strict'
import { before, describe, it } from 'node:test'
import { BackbeatError } from '../../../src/core/index.ts'
import { NatsConnection } from '../../../src/stores/index.ts'
import { requireNatsUrl } from '../services.ts'
import { TcpProxy } from '../tcp-proxy.ts'

let url = ''

before(async () => {
  url = await requireNatsUrl()
})

const subject = `bbtest.${process.pid}.${Date.now()}`

describe('NatsConnection', () => {
  it('does no I/O until connect(), and connection is unusable before', async () => {
    const nats = new NatsConnection({ url: 'nats://127.0.0.1:1' })
    assert.throws(() => nats.connection, { code: 'ERR_DEPENDENCY_UNAVAILABLE' })
    assert.equal((await nats.healthCheck(AbortSignal.timeout(1_000)))?.status, 'fail')
  })

  it('fails connect to a dead port within connectTimeoutMs with a dependency error naming the target', async () => {
    const nats = new NatsConnection({ url: 'nats://127.0.0.1:1', connectTimeoutMs: 1_000 })
    const started = Date.now()
    await assert.rejects(nats.connect(), (err: unknown) => err instanceof BackbeatError && err.category === 'dependency' && err.params.target === '127.0.0.1:1' && err.params.operation === 'connect')
    assert.ok(Date.now() - started < 2_000, 'connect must not hang')
  })

  it('publishes and receives, with health passing on a live server', async () => {
    const nats = new NatsConnection({ url, name: 'bb-test' })
    await nats.connect()
    try {
      assert.deepEqual(await nats.healthCheck(AbortSignal.timeout(2_000)), { status: 'pass' })
      const sub = nats.connection.subscribe(subject, { max: 1 })
      nats.connection.publish(subject, 'hello')
      for await (const message of sub) assert.equal(message.string(), 'hello')
    } finally {
      await nats.close()
    }
  })

  it('reports fail while the server is unreachable and recovers by reconnecting', async () => {
    const target = new URL(url)
    const proxy = await TcpProxy.start(`${target.hostname}:${target.port === '' ? '4222' : target.port}`)
    const nats = new NatsConnection({ url: `nats://${proxy.address}`, commandTimeoutMs: 300, reconnectBaseMs: 50, reconnectMaxMs: 200 })
    try {
      await nats.connect()
      assert.deepEqual(await nats.healthCheck(AbortSignal.timeout(2_000)), { status: 'pass' })
      proxy.pause()
      proxy.dropConnections()
      const down = await nats.healthCheck(AbortSignal.timeout(2_000))
      assert.equal(down?.status, 'fail')
      assert.match(down.message ?? '', /^nats: /)

      proxy.resume()
      let health: Awaited<ReturnType<typeof nats.healthCheck>> = down
      for (let i = 0; i < 50 && health?.status !== 'pass'; i += 1) {
        await new Promise((resolve) => setTimeout(resolve, 100))
        health = await nats.healthCheck(AbortSignal.timeout(1_000))
      }
      assert.deepEqual(health, { status: 'pass' })
    } finally {
      await nats.close()
      await proxy.stop()
    }
  })

  it('close drains, is idempotent, and health fails afterwards', async () => {
    const nats = new NatsConnection({ url })
    await nats.connect()
    const client = nats.connection
    await nats.close()
    await nats.close()
    assert.equal(client.isClosed(), true)
    const health = await nats.healthCheck(AbortSignal.timeout(1_000))
    assert.equal(health?.status, 'fail')
    assert.match(health.message ?? '', /closed/)
  })

  it('throws ConfigError for a URL that is not nats://', () => {
    assert.throws(() => new NatsConnection({ url: 'http://127.0.0.1:4222' }), { code: 'ERR_CONFIG_INVALID' })
  })
})

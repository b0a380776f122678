import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { BackbeatError, ConfigError } from '../core/index.ts'
import {
  encodeInvalidation,
  MemoryInvalidationBus,
  MemoryInvalidationHub,
  parseInvalidationPayload,
  type InvalidationNotice,
} from './invalidation-bus.ts'

/** Lets the hub's microtask deliveries run. */
const settle = (): Promise<void> => new Promise((resolve) => setImmediate(resolve))

function pair(): { hub: MemoryInvalidationHub; a: MemoryInvalidationBus; b: MemoryInvalidationBus; seenByA: InvalidationNotice[]; seenByB: InvalidationNotice[] } {
  const hub = new MemoryInvalidationHub()
  const a = new MemoryInvalidationBus(hub, { origin: 'a' })
  const b = new MemoryInvalidationBus(hub, { origin: 'b' })
  const seenByA: InvalidationNotice[] = []
  const seenByB: InvalidationNotice[] = []
  a.subscribe((n) => seenByA.push(n))
  b.subscribe((n) => seenByB.push(n))
  return { hub, a, b, seenByA, seenByB }
}

describe('MemoryInvalidationBus', () => {
  it('delivers a message to the other instances and not back to its publisher', async () => {
    const { a, seenByA, seenByB } = pair()
    await a.publish({ namespace: 'catalog', keys: ['album:1'], tags: ['artist:7'] })
    await settle()
    assert.deepEqual(seenByB, [{ namespace: 'catalog', keys: ['album:1'], tags: ['artist:7'], origin: 'a' }])
    assert.deepEqual(seenByA, [])
    assert.equal(a.stats.published, 1)
  })

  it('delivers asynchronously, never inside the publisher\'s call', async () => {
    const { a, seenByB } = pair()
    const published = a.publish({ namespace: 'n', clear: true })
    assert.equal(seenByB.length, 0)
    await published
    await settle()
    assert.deepEqual(seenByB, [{ namespace: 'n', clear: true, origin: 'a' }])
  })

  it('stops delivering to a handler once unsubscribed, and after close', async () => {
    const { hub, a, b, seenByB } = pair()
    const extra: InvalidationNotice[] = []
    const off = b.subscribe((n) => extra.push(n))
    off()
    await a.publish({ namespace: 'n', keys: ['k'] })
    await settle()
    assert.equal(extra.length, 0)
    assert.equal(seenByB.length, 1)
    await b.close()
    await a.publish({ namespace: 'n', keys: ['k2'] })
    await settle()
    assert.equal(seenByB.length, 1)
    await assert.rejects(b.publish({ namespace: 'n', keys: ['k'] }), (err: unknown) => err instanceof BackbeatError && err.code === 'ERR_DEPENDENCY_UNAVAILABLE')
    hub.broadcast('{}')
  })

  it('counts and ignores garbage on the channel without throwing', async () => {
    const { hub, b, seenByB } = pair()
    for (const junk of ['not json', '[]', 'null', '{"v":1}', '{"v":2,"namespace":"n","keys":["k"],"origin":"x"}', '{"v":1,"namespace":"n","origin":"x"}', '{"v":1,"namespace":"","keys":["k"],"origin":"x"}', '{"v":1,"namespace":"n","keys":[1],"origin":"x"}', JSON.stringify({ v: 1, namespace: 'n', keys: ['k'], origin: 'x'.repeat(500) })]) hub.broadcast(junk)
    hub.broadcast('x'.repeat(2 * 1024 * 1024))
    await settle()
    assert.deepEqual(seenByB, [])
    assert.equal(b.stats.invalid, 10)
    assert.equal(b.stats.received, 0)
  })

  it('turns a peer\'s resync request into a resync notice', async () => {
    const { hub, seenByB } = pair()
    hub.broadcast(JSON.stringify({ v: 1, resync: true, origin: 'c' }))
    await settle()
    assert.deepEqual(seenByB, [{ resync: true, reason: 'peer-dropped' }])
  })

  it('keeps delivering to the other handlers when one throws, and counts it', async () => {
    const { a, b, seenByB } = pair()
    b.subscribe(() => {
      throw new Error('handler bug')
    })
    await a.publish({ namespace: 'n', tags: ['t'] })
    await settle()
    assert.equal(seenByB.length, 1)
    assert.equal(b.stats.handlerErrors, 1)
  })

  it('rejects an invalid message with ERR_VALIDATION_FAILED listing each problem', async () => {
    const { a } = pair()
    await assert.rejects(a.publish({ namespace: '' }), (err: unknown) => {
      assert.ok(err instanceof BackbeatError)
      assert.equal(err.code, 'ERR_VALIDATION_FAILED')
      const paths = (err.extensions?.errors as Array<{ path: string }>).map((e) => e.path)
      assert.deepEqual(paths, ['namespace', 'keys'])
      return true
    })
    await assert.rejects(a.publish({ namespace: 'n', keys: ['ok', '', 'k'.repeat(1025)] }), /invalid field/)
    await assert.rejects(a.publish({ namespace: 'n', clear: 'yes' as unknown as true }), BackbeatError)
    assert.equal(a.stats.published, 0)
  })

  it('validates its options at construction', () => {
    assert.throws(() => new MemoryInvalidationBus(new MemoryInvalidationHub(), { origin: '' }), ConfigError)
    assert.throws(() => new MemoryInvalidationBus(new MemoryInvalidationHub(), { maxMessageBytes: 10 }), /cache\.bus\.maxMessageBytes/)
    assert.match(new MemoryInvalidationBus(new MemoryInvalidationHub()).origin, /^[0-9a-f-]{36}$/)
  })

  it('splits a long key list into several messages that all arrive', async () => {
    const hub = new MemoryInvalidationHub()
    const a = new MemoryInvalidationBus(hub, { origin: 'a', maxMessageBytes: 16 * 1024 })
    const b = new MemoryInvalidationBus(hub, { origin: 'b', maxMessageBytes: 16 * 1024 })
    const got: string[] = []
    b.subscribe((n) => {
      if ('keys' in n) got.push(...(n.keys ?? []))
    })
    const keys = Array.from({ length: 2_000 }, (_, i) => `album:${i}:${'x'.repeat(20)}`)
    await a.publish({ namespace: 'n', keys })
    await settle()
    assert.ok(a.stats.published > 4, `split into ${a.stats.published}`)
    assert.deepEqual(got, keys)
    assert.equal(b.stats.invalid, 0)
  })
})

describe('encodeInvalidation / parseInvalidationPayload', () => {
  it('round-trips a message and puts clear on the first chunk only', () => {
    const keys = Array.from({ length: 1_200 }, (_, i) => `k${i}`)
    const payloads = encodeInvalidation({ namespace: 'n', keys, clear: true }, 'me', 1024 * 1024)
    assert.equal(payloads.length, 3, 'at most 500 keys per message')
    const parsed = payloads.map((p) => parseInvalidationPayload(p, 1024 * 1024))
    assert.deepEqual(parsed.map((p) => p?.kind === 'message' && p.message.clear === true), [true, false, false])
    assert.deepEqual(parsed.flatMap((p) => (p?.kind === 'message' ? (p.message.keys ?? []) : [])), keys)
  })

  it('keeps every chunk under the byte limit even with escaped characters', () => {
    const keys = Array.from({ length: 300 }, (_, i) => `k${i}\u0001${'é'.repeat(100)}`)
    const payloads = encodeInvalidation({ namespace: 'n', keys }, 'me', 16 * 1024)
    for (const p of payloads) assert.ok(Buffer.byteLength(p) <= 16 * 1024, `${Buffer.byteLength(p)} bytes`)
    assert.ok(payloads.every((p) => parseInvalidationPayload(p, 16 * 1024) !== undefined))
  })

  it('drops unknown fields from what it hands on', () => {
    const parsed = parseInvalidationPayload(Buffer.from(JSON.stringify({ v: 1, namespace: 'n', keys: ['k'], origin: 'o', __proto__x: 1, extra: true })), 1024)
    assert.deepEqual(parsed, { kind: 'message', message: { namespace: 'n', keys: ['k'], origin: 'o' } })
  })
})

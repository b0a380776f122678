import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { BackbeatError, ConfigError } from '../core/index.ts'
import { MAX_LEASE_TTL_MS, MemoryLease } from './lease.ts'

const T0 = 1_800_000_000_000

function lease(): { lease: MemoryLease; advance: (ms: number) => void } {
  let now = T0
  return {
    lease: new MemoryLease({ now: () => now }),
    advance: (ms) => {
      now += ms
    },
  }
}

describe('MemoryLease', () => {
  it('grants the lease to one caller and refuses the others while it is held', async () => {
    const { lease: l } = lease()
    const results = await Promise.all([l.acquire('k', 1_000), l.acquire('k', 1_000), l.acquire('k', 1_000)])
    assert.equal(results.filter((t) => t !== undefined).length, 1)
    assert.match(results.find((t) => t !== undefined) ?? '', /^[A-Za-z0-9_-]{22}$/)
    assert.equal(typeof (await l.acquire('other', 1_000)), 'string', 'keys are independent')
  })

  it('lets a new caller win once the lease has expired', async () => {
    const { lease: l, advance } = lease()
    const first = await l.acquire('k', 1_000)
    advance(999)
    assert.equal(await l.acquire('k', 1_000), undefined)
    advance(1)
    const second = await l.acquire('k', 1_000)
    assert.ok(second !== undefined && second !== first)
  })

  it('releases only for the holder\'s token', async () => {
    const { lease: l } = lease()
    const token = await l.acquire('k', 1_000)
    assert.ok(token !== undefined)
    assert.equal(await l.release('k', 'A'.repeat(22)), false, 'a wrong token of the same length')
    assert.equal(await l.release('k', 'short'), false, 'a wrong token of another length')
    assert.equal(await l.acquire('k', 1_000), undefined, 'still held')
    assert.equal(await l.release('k', token), true)
    assert.equal(typeof (await l.acquire('k', 1_000)), 'string', 'free again')
    assert.equal(await l.release('k', token), false, 'a stale token does not release the new holder')
  })

  it('does not let an expired holder release the lease a new caller took over', async () => {
    const { lease: l, advance } = lease()
    const old = await l.acquire('k', 100)
    advance(100)
    const fresh = await l.acquire('k', 1_000)
    assert.ok(old !== undefined && fresh !== undefined)
    assert.equal(await l.release('k', old), false)
    assert.equal(await l.acquire('k', 1_000), undefined, 'the new holder still has it')
  })

  it('rejects bad keys and TTLs with ERR_VALIDATION_FAILED', async () => {
    const { lease: l } = lease()
    for (const [key, ttl] of [['', 1_000], ['k'.repeat(1025), 1_000], ['k', 0], ['k', 1.5], ['k', MAX_LEASE_TTL_MS + 1], ['k', Number.NaN]] as const) {
      await assert.rejects(l.acquire(key, ttl), (err: unknown) => err instanceof BackbeatError && err.code === 'ERR_VALIDATION_FAILED', `${key.slice(0, 5)} ${ttl}`)
    }
    await assert.rejects(l.release('', 'x'), BackbeatError)
  })

  it('sweeps expired leases so the map stays bounded', async () => {
    let now = T0
    const l = new MemoryLease({ now: () => now, sweepAbove: 10 })
    for (let i = 0; i < 50; i++) await l.acquire(`k${i}`, 10)
    now += 10
    await l.acquire('fresh', 10)
    // Every old lease was swept: each key can be won again, and the sweep kept 'fresh'.
    assert.equal(await l.acquire('fresh', 10), undefined)
    assert.equal(typeof (await l.acquire('k0', 10)), 'string')
  })

  it('validates its options at construction', () => {
    assert.throws(() => new MemoryLease({ sweepAbove: 0 }), ConfigError)
    assert.throws(() => new MemoryLease({ now: 5 as unknown as () => number }), /cache\.lease\.now/)
  })
})

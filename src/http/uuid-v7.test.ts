import { describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { uuidv7 } from './uuid-v7.ts'

describe('http: UUIDv7 request IDs', () => {
  it('has the RFC 9562 version 7 layout and variant bits', () => {
    for (let i = 0; i < 2000; i++) assert.match(uuidv7(), /^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/)
  })

  it('encodes the millisecond timestamp in the first 48 bits', () => {
    for (const ms of [0, 1, 1_700_000_000_123, 2 ** 48 - 1]) {
      const id = uuidv7(ms)
      assert.equal(Number.parseInt(id.slice(0, 8) + id.slice(9, 13), 16), ms)
    }
  })

  it('sorts by creation time across milliseconds', () => {
    const earlier = uuidv7(1_700_000_000_000)
    const later = uuidv7(1_700_000_000_001)
    assert.ok(earlier < later)
  })

  it('does not repeat across pool refills', () => {
    const seen = new Set<string>()
    for (let i = 0; i < 100_000; i++) seen.add(uuidv7(1_700_000_000_000))
    assert.equal(seen.size, 100_000)
  })
})

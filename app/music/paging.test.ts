import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { page } from './paging.ts'

const at = (limit: number, offset: number) => ({ path: '/v1/tracks', limit, offset })
const offsetOf = (link: string | null): number | null => (link === null ? null : Number(new URL(link, 'http://x').searchParams.get('offset')))

describe('page', () => {
  it('links the next and previous pages in the middle', () => {
    const p = page([], 100, at(20, 40))
    assert.equal(p.next, '/v1/tracks?offset=60&limit=20')
    assert.equal(p.previous, '/v1/tracks?offset=20&limit=20')
  })

  it('has no previous on the first page and no next on the last', () => {
    assert.equal(page([], 100, at(20, 0)).previous, null)
    assert.equal(page([], 100, at(20, 80)).next, null)
    assert.equal(offsetOf(page([], 100, at(20, 79)).next), 99)
    assert.equal(page([], 100, at(20, 99)).next, null)
  })

  it('clamps previous at 0 when the offset is not on the limit grid', () => {
    assert.equal(offsetOf(page([], 100, at(20, 5)).previous), 0)
  })

  it('points previous at the last page, never past total, when the offset is beyond the end', () => {
    assert.equal(offsetOf(page([], 45, at(20, 100)).previous), 40)
    assert.equal(offsetOf(page([], 45, at(20, 45)).previous), 25)
    assert.equal(offsetOf(page([], 45, at(20, 65)).previous), 25)
    assert.equal(offsetOf(page([], 45, at(20, 64)).previous), 44)
    assert.equal(offsetOf(page([], 3, at(50, 100_000)).previous), 0)
    assert.equal(page([], 45, at(20, 100)).next, null)
  })

  it('has neither previous nor next when there are no items at all', () => {
    const p = page([], 0, at(20, 60))
    assert.equal(p.previous, null)
    assert.equal(p.next, null)
    assert.equal(page([], 0, at(20, 0)).previous, null)
  })

  it('answers, for every small case, a previous page one step back within the items, or the last page from past the end', () => {
    for (let total = 0; total <= 12; total += 1) {
      for (let limit = 1; limit <= 5; limit += 1) {
        for (let offset = 0; offset <= 20; offset += 1) {
          const previous = offsetOf(page([], total, at(limit, offset)).previous)
          const label = `total ${total}, limit ${limit}, offset ${offset}`
          if (offset === 0 || total === 0) assert.equal(previous, null, label)
          else if (offset < total) assert.equal(previous, Math.max(0, offset - limit), label)
          else {
            assert.ok(previous !== null && previous < total, `${label}: previous ${previous} must start within the items`)
            assert.equal(page([], total, at(limit, previous)).next, null, `${label}: previous ${previous} must be the last page`)
            assert.ok(previous === 0 || (offset - previous) % limit === 0, `${label}: previous ${previous} stays on the limit grid`)
          }
        }
      }
    }
  })

  it('keeps the other query parameters in every link', () => {
    const p = page([], 100, { path: '/v1/search', limit: 10, offset: 10, query: { q: 'a b', type: 'track' } })
    assert.equal(p.next, '/v1/search?q=a+b&type=track&offset=20&limit=10')
    assert.equal(p.previous, '/v1/search?q=a+b&type=track&offset=0&limit=10')
  })
})

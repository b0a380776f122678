import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { etag, ifMatchHolds, ifNoneMatchFails, parseEntityTags } from './entity-tags.ts'

const SNAPSHOT = '4uLU6hMCjMI75M1A2tKUQC'

describe('entity tags', () => {
  it('quotes a snapshot_id into a strong entity-tag and refuses one that cannot be', () => {
    assert.equal(etag(SNAPSHOT), `"${SNAPSHOT}"`)
    assert.throws(() => etag('a"b'), TypeError)
    assert.throws(() => etag('a b'), TypeError)
    assert.throws(() => etag('a\u0000'), TypeError)
  })

  it('parses *, lists, weak tags and commas inside quotes, skipping what is not a tag', () => {
    assert.equal(parseEntityTags(' * '), '*')
    assert.deepEqual(parseEntityTags('"a", W/"b",junk,"c,d"'), [
      { weak: false, opaque: 'a' },
      { weak: true, opaque: 'b' },
      { weak: false, opaque: 'c,d' },
    ])
    assert.deepEqual(parseEntityTags('unquoted'), [])
  })

  it('If-None-Match compares weakly: W/ is ignored, * matches any current version', () => {
    assert.ok(ifNoneMatchFails(`"${SNAPSHOT}"`, SNAPSHOT))
    assert.ok(ifNoneMatchFails(`W/"${SNAPSHOT}"`, SNAPSHOT))
    assert.ok(ifNoneMatchFails(`"old", "${SNAPSHOT}"`, SNAPSHOT))
    assert.ok(ifNoneMatchFails('*', SNAPSHOT))
    assert.ok(!ifNoneMatchFails('"old"', SNAPSHOT))
    assert.ok(!ifNoneMatchFails(SNAPSHOT, SNAPSHOT), 'an unquoted value is not an entity-tag')
  })

  it('If-Match compares strongly: a weak tag never matches', () => {
    assert.ok(ifMatchHolds(`"${SNAPSHOT}"`, SNAPSHOT))
    assert.ok(ifMatchHolds(`"old", "${SNAPSHOT}"`, SNAPSHOT))
    assert.ok(ifMatchHolds('*', SNAPSHOT))
    assert.ok(!ifMatchHolds(`W/"${SNAPSHOT}"`, SNAPSHOT))
    assert.ok(!ifMatchHolds('"old"', SNAPSHOT))
  })
})

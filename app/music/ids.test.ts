import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { BackbeatError } from 'backbeat'
import { isId, newId, parseId, parseUri, toUri } from './ids.ts'

describe('music IDs and URIs', () => {
  it('generates 22 base62 characters, different every time', () => {
    const ids = new Set(Array.from({ length: 1000 }, () => newId()))
    assert.equal(ids.size, 1000)
    for (const id of ids) assert.match(id, /^[0-9A-Za-z]{22}$/)
  })

  it('uses every base62 character, so IDs carry the full 130 bits', () => {
    const seen = new Set(Array.from({ length: 200 }, () => newId()).join(''))
    assert.equal(seen.size, 62)
  })

  it('draws from the given byte source, skipping bytes that would bias the alphabet', () => {
    const bytes = [255, 248, 0, ...Array.from({ length: 21 }, () => 61)]
    let i = 0
    assert.equal(newId(() => bytes[i++] ?? 0), `0${'z'.repeat(21)}`)
  })

  it('accepts a well-formed ID and rejects anything else with ERR_VALIDATION_ID_INVALID', () => {
    const id = newId()
    assert.equal(parseId('track', id), id)
    assert.equal(isId(id), true)
    for (const bad of ['', 'short', `${id}x`, `${id.slice(1)}-`, `${id.slice(1)} `, 'é'.repeat(22)]) {
      assert.throws(
        () => parseId('album', bad),
        (err: unknown) => err instanceof BackbeatError && err.code === 'ERR_VALIDATION_ID_INVALID' && err.status === 400 && err.params.kind === 'album',
        bad,
      )
    }
  })

  it('quotes the offending value and keeps it short and on one line', () => {
    const err = (() => {
      try {
        parseId('track', `a\nb${'x'.repeat(100)}`)
      } catch (e) {
        return e as BackbeatError
      }
      return undefined
    })()
    assert.ok(err)
    const value = String(err.params.value)
    assert.ok(!value.includes('\n'))
    assert.ok(value.length < 80)
    assert.ok(value.startsWith('"a\\nb'))
  })

  it('builds and parses URIs of one kind only', () => {
    const id = newId()
    assert.equal(toUri('playlist', id), `spotify:playlist:${id}`)
    assert.equal(parseUri('track', `spotify:track:${id}`), id)
    for (const bad of [`spotify:album:${id}`, id, `spotify:track:${id}:extra`, `SPOTIFY:TRACK:${id}`, 'spotify:track:']) {
      assert.throws(
        () => parseUri('track', bad),
        (err: unknown) => err instanceof BackbeatError && err.code === 'ERR_VALIDATION_URI_INVALID' && err.params.kind === 'track',
        bad,
      )
    }
  })
})

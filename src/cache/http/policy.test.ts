import { describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { DELTA_SECONDS_MAX, parseCacheControl, parseTargetedCacheControl } from './cache-control.ts'
import { freshnessLifetimeMs, initialAgeMs, notModified, notStorable, parseAge, parseHttpDate, requestCacheControl, usability, type StorableInput } from './policy.ts'

const NOW = Date.UTC(2026, 10, 22, 8, 0, 0)
const httpDate = (ms: number) => new Date(ms).toUTCString()

describe('parseCacheControl', () => {
  it('reads directives case-insensitively, over several lines, with quoted values', () => {
    const cc = parseCacheControl(['Public, MAX-AGE=60', 's-maxage="120", stale-while-revalidate=30, private="set-cookie, x-user"'])
    assert.equal(cc.public, true)
    assert.equal(cc.maxAge, 60)
    assert.equal(cc.sMaxAge, 120)
    assert.equal(cc.staleWhileRevalidate, 30)
    assert.deepEqual(cc.private, ['set-cookie', 'x-user'])
  })

  it('gives conflicting and invalid directives a defined, conservative outcome', () => {
    // The first of two values wins.
    assert.equal(parseCacheControl('max-age=60, max-age=0').maxAge, 60)
    // Not digits: present but invalid, so stale.
    for (const bad of ['max-age=abc', 'max-age=-1', 'max-age=1.5', 'max-age=', "max-age='60'"]) assert.equal(parseCacheControl(bad).maxAge ?? 0, 0, bad)
    // Whitespace around "=" spoils the directive entirely.
    assert.equal(parseCacheControl('max-age =60').maxAge, undefined)
    // A max-age inside a quoted string is not a directive.
    assert.equal(parseCacheControl('foo="max-age=60", no-cache').maxAge, undefined)
    // Overflow is capped, not wrapped.
    assert.equal(parseCacheControl('max-age=99999999999999999999').maxAge, DELTA_SECONDS_MAX)
    assert.equal(parseCacheControl('max-age=003600').maxAge, 3600)
    // Garbage never throws.
    assert.equal(parseCacheControl('"unterminated, ,,, ===').present, false)
  })

  it('parses targeted fields strictly (RFC 9213): any invalid member voids the field', () => {
    assert.equal(parseTargetedCacheControl('max-age=3600')?.maxAge, 3600)
    assert.equal(parseTargetedCacheControl('max-age=10000, &&&&&'), undefined)
    assert.equal(parseTargetedCacheControl('max-age="10000"'), undefined)
    assert.equal(parseTargetedCacheControl('max-age =100'), undefined)
    assert.equal(parseTargetedCacheControl(undefined), undefined)
  })
})

describe('RFC 9111 policy', () => {
  const input = (over: Partial<StorableInput> & { cc?: string; headers?: Record<string, string> }): StorableInput => ({
    method: 'GET',
    status: 200,
    requestCacheControl: parseCacheControl(undefined),
    responseCacheControl: parseCacheControl(over.cc),
    responseHeaders: over.headers ?? {},
    hasAuthorization: false,
    lifetimeMs: 60_000,
    storeSetCookie: false,
    ...over,
  })

  it('decides what a shared cache may store (§3, §3.5)', () => {
    assert.equal(notStorable(input({ cc: 'max-age=60' })), null)
    assert.equal(notStorable(input({ cc: 'no-store, max-age=60' })), 'no-store')
    assert.equal(notStorable(input({ cc: 'public, private, max-age=60' })), 'private')
    assert.equal(notStorable(input({ cc: 'max-age=60', method: 'POST' })), 'method')
    assert.equal(notStorable(input({ cc: 'max-age=60', status: 206 })), 'status')
    assert.equal(notStorable(input({ cc: 'max-age=60', hasAuthorization: true })), 'authorization')
    assert.equal(notStorable(input({ cc: 's-maxage=60', hasAuthorization: true })), null)
    assert.equal(notStorable(input({ cc: 'max-age=60', headers: { vary: 'Accept, *' } })), 'vary-star')
    assert.equal(notStorable(input({ cc: 'max-age=60', headers: { 'set-cookie': 'a=b' } })), 'set-cookie')
    assert.equal(notStorable(input({ cc: 'max-age=60', headers: { 'set-cookie': 'a=b' }, storeSetCookie: true })), null)
    // No freshness and no validator: it could never be used.
    assert.equal(notStorable(input({ lifetimeMs: 0 })), 'no-freshness')
    assert.equal(notStorable(input({ lifetimeMs: 0, headers: { etag: '"x"' } })), null)
    // Any final status with explicit freshness; must-understand only for understood ones, and then over no-store.
    assert.equal(notStorable(input({ cc: 'max-age=60', status: 500 })), null)
    assert.equal(notStorable(input({ cc: 'max-age=60, must-understand', status: 599 })), 'must-understand')
    assert.equal(notStorable(input({ cc: 'max-age=60, must-understand, no-store', status: 200 })), null)
    assert.equal(notStorable(input({ requestCacheControl: parseCacheControl('no-store'), cc: 'max-age=60' })), 'no-store')
  })

  it('computes freshness lifetimes (§4.2.1, §4.2.2)', () => {
    const date = httpDate(NOW)
    assert.equal(freshnessLifetimeMs(parseCacheControl('max-age=60, s-maxage=5'), {}, 200, NOW, false), 5_000)
    assert.equal(freshnessLifetimeMs(parseCacheControl(undefined), { date, expires: httpDate(NOW + 30_000) }, 200, NOW, false), 30_000)
    assert.equal(freshnessLifetimeMs(parseCacheControl(undefined), { date, expires: '0' }, 200, NOW, false), 0)
    assert.equal(freshnessLifetimeMs(parseCacheControl(undefined), { date, expires: ['a', 'b'] }, 200, NOW, false), 0)
    const lastModified = httpDate(NOW - 100_000_000)
    assert.equal(freshnessLifetimeMs(parseCacheControl(undefined), { date, 'last-modified': lastModified }, 200, NOW, { fraction: 0.1, maxS: 86_400 }), 10_000_000)
    assert.equal(freshnessLifetimeMs(parseCacheControl(undefined), { date, 'last-modified': lastModified }, 500, NOW, { fraction: 0.1, maxS: 86_400 }), 0)
    assert.equal(freshnessLifetimeMs(parseCacheControl(undefined), { date, 'last-modified': lastModified }, 200, NOW, false), 0)
  })

  it('computes the age on arrival (§4.2.3) and parses Age and HTTP dates', () => {
    assert.equal(initialAgeMs({ age: '30' }, NOW - 500, NOW), 30_500)
    assert.equal(initialAgeMs({ date: httpDate(NOW - 10_000) }, NOW, NOW), 10_000)
    assert.equal(parseAge('abc'), 0)
    assert.equal(parseAge(['12', '99']), 12)
    assert.equal(parseAge('-5'), 0)
    assert.equal(parseHttpDate('Sun, 06 Nov 1994 08:49:37 GMT'), Date.UTC(1994, 10, 6, 8, 49, 37))
    assert.equal(parseHttpDate('Sunday, 06-Nov-94 08:49:37 GMT'), Date.UTC(1994, 10, 6, 8, 49, 37))
    assert.equal(parseHttpDate('Sun Nov  6 08:49:37 1994'), Date.UTC(1994, 10, 6, 8, 49, 37))
    for (const bad of ['0', '', 'yesterday', 'Sun, 06 Nov 1994 25:49:37 GMT', 'Sun, 06 Foo 1994 08:49:37 GMT']) assert.equal(parseHttpDate(bad), undefined, bad)
  })

  it('decides whether a stored response answers a request (§4, §5.2.1)', () => {
    const stored = { ageMs: 30_000, lifetimeMs: 60_000, noCache: false, mustRevalidate: false, staleWhileRevalidateMs: 0 }
    const request = (cc?: string, pragma?: string) => requestCacheControl(cc, pragma)
    assert.deepEqual(usability(stored, request()), { use: 'fresh' })
    assert.equal(usability(stored, request('no-cache')).use, 'revalidate')
    assert.equal(usability(stored, request(undefined, 'no-cache')).use, 'revalidate')
    assert.equal(usability(stored, request('max-age=10')).use, 'revalidate')
    assert.equal(usability(stored, request('min-fresh=40')).use, 'revalidate')
    assert.equal(usability({ ...stored, noCache: true }, request()).use, 'revalidate')
    const stale = { ...stored, ageMs: 70_000 }
    assert.equal(usability(stale, request('max-stale=20')).use, 'fresh')
    assert.equal(usability(stale, request('max-stale')).use, 'fresh')
    assert.equal(usability({ ...stale, mustRevalidate: true }, request('max-stale')).use, 'revalidate')
    assert.equal(usability({ ...stale, staleWhileRevalidateMs: 30_000 }, request()).use, 'stale-while-revalidate')
  })

  it('answers conditional requests from storage (RFC 9110 §13.1)', () => {
    const stored = { etag: '"v1"', 'last-modified': httpDate(NOW - 60_000) }
    assert.equal(notModified({ 'if-none-match': 'W/"v1", "v2"' }, stored), true)
    assert.equal(notModified({ 'if-none-match': '*' }, stored), true)
    assert.equal(notModified({ 'if-none-match': '"v2"' }, stored), false)
    assert.equal(notModified({ 'if-none-match': 'garbage' }, stored), false)
    // If-None-Match decides when present, even if If-Modified-Since would match.
    assert.equal(notModified({ 'if-none-match': '"v2"', 'if-modified-since': httpDate(NOW) }, stored), false)
    assert.equal(notModified({ 'if-modified-since': httpDate(NOW) }, stored), true)
    assert.equal(notModified({ 'if-modified-since': httpDate(NOW - 120_000) }, stored), false)
    assert.equal(notModified({ 'if-modified-since': 'not a date' }, stored), false)
  })
})

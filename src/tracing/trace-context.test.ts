import { describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { ROOT_CONTEXT, trace, TraceFlags, defaultTextMapGetter, defaultTextMapSetter } from '@opentelemetry/api'
import { formatTraceparent, parseTraceparent, Tracestate, W3CTracePropagator } from './index.ts'

const TID = '0af7651916cd43dd8448eb211c80319c'
const PID = 'b7ad6b7169203331'

describe('parseTraceparent', () => {
  const valid: [string, string, { version: number; traceFlags: number }][] = [
    ['the spec example (sampled)', `00-${TID}-${PID}-01`, { version: 0, traceFlags: 1 }],
    ['not sampled', `00-${TID}-${PID}-00`, { version: 0, traceFlags: 0 }],
    ['unknown flag bits are kept in the parsed byte', `00-${TID}-${PID}-ff`, { version: 0, traceFlags: 0xff }],
    ['a higher version with extra fields', `01-${TID}-${PID}-01-what-the-future-holds`, { version: 1, traceFlags: 1 }],
    ['a higher version of exact length', `cc-${TID}-${PID}-00`, { version: 0xcc, traceFlags: 0 }],
    ['surrounding optional whitespace', ` \t00-${TID}-${PID}-01 `, { version: 0, traceFlags: 1 }],
  ]
  for (const [name, header, expected] of valid) {
    it(`accepts ${name}`, () => {
      const parsed = parseTraceparent(header)
      assert.deepEqual(parsed, { ...expected, traceId: TID, parentId: PID })
    })
  }

  const invalid: [string, string][] = [
    ['version ff', `ff-${TID}-${PID}-01`],
    ['version 00 with an extra field', `00-${TID}-${PID}-01-extra`],
    ['a higher version whose extra part does not start with a dash', `01-${TID}-${PID}-01x`],
    ['an all-zero trace-id', `00-${'0'.repeat(32)}-${PID}-01`],
    ['an all-zero parent-id', `00-${TID}-${'0'.repeat(16)}-01`],
    ['upper-case hex in trace-id', `00-${TID.toUpperCase()}-${PID}-01`],
    ['upper-case hex in version', `0A-${TID}-${PID}-01`],
    ['upper-case hex in flags', `00-${TID}-${PID}-0A`],
    ['a short trace-id', `00-${TID.slice(1)}-${PID}-01`],
    ['a long trace-id', `00-${TID}0-${PID}-01`],
    ['a short parent-id', `00-${TID}-${PID.slice(1)}-01`],
    ['a one-digit flags', `00-${TID}-${PID}-1`],
    ['non-hex characters', `00-${TID.slice(0, 31)}g-${PID}-01`],
    ['a wrong separator', `00_${TID}-${PID}-01`],
    ['two headers joined by a comma', `00-${TID}-${PID}-01,00-${TID}-${PID}-01`],
    ['an empty value', ''],
    ['a version of one digit', `0-${TID}-${PID}-01`],
  ]
  for (const [name, header] of invalid) {
    it(`rejects ${name}`, () => {
      assert.equal(parseTraceparent(header), undefined)
    })
  }

  it('formats version 00 with two lowercase hex flag digits', () => {
    assert.equal(formatTraceparent(TID, PID, 1), `00-${TID}-${PID}-01`)
    assert.equal(formatTraceparent(TID, PID, 0x0a), `00-${TID}-${PID}-0a`)
  })
})

describe('Tracestate', () => {
  it('parses members, skipping empty ones and optional whitespace', () => {
    const state = Tracestate.parse('rojo=00f067aa0ba902b7 ,\t, congo=t61rcWkgMzE,,')
    assert.ok(state)
    assert.deepEqual(state.entries(), [['rojo', '00f067aa0ba902b7'], ['congo', 't61rcWkgMzE']])
    assert.equal(state.serialize(), 'rojo=00f067aa0ba902b7,congo=t61rcWkgMzE')
  })

  it('accepts multi-tenant keys, the full key alphabet and values with inner spaces', () => {
    const state = Tracestate.parse('fw529a3039@dt=abc, 1tenant@sys_1=x, a-b_c*d/e=v al ue, k=!"#+-<>~')
    assert.ok(state)
    assert.equal(state.get('fw529a3039@dt'), 'abc')
    assert.equal(state.get('a-b_c*d/e'), 'v al ue')
    assert.equal(state.get('k'), '!"#+-<>~')
  })

  it('accepts keys with @ anywhere after the first character and keys starting with a digit', () => {
    const state = Tracestate.parse(`foo@=1,foo@@bar=2,1abc=3,${'t'.repeat(241)}@${'v'.repeat(14)}=4,t@${'v'.repeat(15)}=5`)
    assert.equal(state?.size, 5)
  })

  it('keeps the first of duplicate keys (counted towards the 32-member limit)', () => {
    assert.equal(Tracestate.parse('foo=1,bar=2,foo=3')?.serialize(), 'foo=1,bar=2')
    assert.equal(Tracestate.parse('foo=1,foo=1')?.serialize(), 'foo=1')
    assert.equal(Tracestate.parse(Array.from({ length: 33 }, () => 'k=v').join(',')), undefined)
  })

  it('accepts a 256-character key and 256-character value, and exactly 32 members', () => {
    assert.ok(Tracestate.parse(`a${'b'.repeat(255)}=${'v'.repeat(256)}`))
    const members = Array.from({ length: 32 }, (_, i) => `k${String(i)}=v`).join(',')
    assert.equal(Tracestate.parse(members)?.size, 32)
  })

  const invalid: [string, string][] = [
    ['33 members', Array.from({ length: 33 }, (_, i) => `k${String(i)}=v`).join(',')],
    ['an upper-case key', 'Rojo=1'],
    ['a key starting with @', '@foo=1,bar=2'],
    ['a key starting with _', '_foo=1'],
    ['a 257-character key', `a${'b'.repeat(256)}=v`],
    ['a 257-character value', `k=${'v'.repeat(257)}`],
    ['a value containing =', 'k=a=b'],
    ['an empty value', 'k='],
    ['a member without =', 'rojo'],
    ['an empty key', '=v'],
    ['a 257-character multi-tenant key', `${'t'.repeat(242)}@${'v'.repeat(14)}=v`],
    ['a key with a dot', 'foo.bar=1'],
    ['a non-ASCII value', 'k=vé'],
    ['one bad member among good ones (the whole header is discarded)', 'a=1,BAD=2,c=3'],
  ]
  for (const [name, header] of invalid) {
    it(`discards the whole header with ${name}`, () => {
      assert.equal(Tracestate.parse(header), undefined)
    })
  }

  it('moves an updated or added key to the front and drops the right-most beyond 32', () => {
    const state = Tracestate.parse('a=1,b=2,c=3')
    assert.ok(state)
    assert.equal(state.set('b', '9').serialize(), 'b=9,a=1,c=3')
    assert.equal(state.set('new', 'x').serialize(), 'new=x,a=1,b=2,c=3')
    assert.equal(state.unset('a').serialize(), 'b=2,c=3')
    assert.equal(state.serialize(), 'a=1,b=2,c=3', 'immutable')
    const full = Tracestate.parse(Array.from({ length: 32 }, (_, i) => `k${String(i)}=v`).join(','))
    assert.ok(full)
    const added = full.set('z', '1')
    assert.equal(added.size, 32)
    assert.equal(added.get('k31'), undefined)
    assert.equal(added.entries()[0]?.[0], 'z')
  })

  it('refuses to set an invalid key or value', () => {
    assert.throws(() => Tracestate.empty().set('UP', 'x'), TypeError)
    assert.throws(() => Tracestate.empty().set('k', 'a,b'), TypeError)
  })
})

describe('W3CTracePropagator', () => {
  const propagator = new W3CTracePropagator()

  it('extracts a remote parent with its tracestate and re-injects them', () => {
    const ctx = propagator.extract(ROOT_CONTEXT, { traceparent: `00-${TID}-${PID}-01`, tracestate: 'rojo=1,congo=2' }, defaultTextMapGetter)
    const sc = trace.getSpanContext(ctx)
    assert.ok(sc)
    assert.deepEqual([sc.traceId, sc.spanId, sc.traceFlags, sc.isRemote], [TID, PID, TraceFlags.SAMPLED, true])
    const out: Record<string, string> = {}
    propagator.inject(ctx, out, defaultTextMapSetter)
    assert.deepEqual(out, { traceparent: `00-${TID}-${PID}-01`, tracestate: 'rojo=1,congo=2' })
  })

  it('ignores tracestate when traceparent is malformed', () => {
    const ctx = propagator.extract(ROOT_CONTEXT, { traceparent: `00-${TID}-${PID}-0x`, tracestate: 'rojo=1' }, defaultTextMapGetter)
    assert.equal(trace.getSpanContext(ctx), undefined)
  })

  it('drops an invalid tracestate but keeps the parent', () => {
    const ctx = propagator.extract(ROOT_CONTEXT, { traceparent: `00-${TID}-${PID}-00`, tracestate: 'a=1,B=2' }, defaultTextMapGetter)
    const sc = trace.getSpanContext(ctx)
    assert.equal(sc?.traceId, TID)
    assert.equal(sc.traceState, undefined)
  })

  it('joins several tracestate headers and carries the Level 2 random flag', () => {
    const ctx = propagator.extract(ROOT_CONTEXT, { traceparent: `00-${TID}-${PID}-03`, tracestate: ['a=1', 'b=2'] }, defaultTextMapGetter)
    const out: Record<string, string> = {}
    propagator.inject(ctx, out, defaultTextMapSetter)
    assert.deepEqual(out, { traceparent: `00-${TID}-${PID}-03`, tracestate: 'a=1,b=2' })
  })

  it('parses a future version but injects version 00', () => {
    const ctx = propagator.extract(ROOT_CONTEXT, { traceparent: `42-${TID}-${PID}-01-extra` }, defaultTextMapGetter)
    const out: Record<string, string> = {}
    propagator.inject(ctx, out, defaultTextMapSetter)
    assert.equal(out.traceparent, `00-${TID}-${PID}-01`)
  })
})

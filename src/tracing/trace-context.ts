import { trace, TraceFlags, createContextKey, type Context, type SpanContext, type TextMapGetter, type TextMapPropagator, type TextMapSetter } from '@opentelemetry/api'
import { isTracingSuppressed } from '@opentelemetry/core'

/** A parsed W3C `traceparent` (https://www.w3.org/TR/trace-context/#traceparent-header). */
export interface Traceparent {
  readonly version: number
  readonly traceId: string
  readonly parentId: string
  /** The trace-flags byte as received (sampled = bit 0, random = bit 1 in Level 2). */
  readonly traceFlags: number
}

export const TRACEPARENT_HEADER = 'traceparent'
export const TRACESTATE_HEADER = 'tracestate'
/** Trace-flags bit 1 (Trace Context Level 2): the trace-id's right-most 7 bytes are random. */
export const RANDOM_TRACE_FLAG = 0x02

const VERSION = /^[0-9a-f]{2}$/
const TRACE_ID = /^[0-9a-f]{32}$/
const PARENT_ID = /^[0-9a-f]{16}$/
const FLAGS = /^[0-9a-f]{2}$/
const ZERO_TRACE_ID = '0'.repeat(32)
const ZERO_PARENT_ID = '0'.repeat(16)
const V00_LENGTH = 55

/**
 * Parses a traceparent value; undefined means invalid (the receiver then starts a new trace and
 * ignores tracestate). Version 00 must be exactly 55 characters; a higher version may carry
 * further `-`-prefixed fields, which are ignored; version ff is invalid; hex is lowercase only.
 */
export function parseTraceparent(value: string | undefined): Traceparent | undefined {
  if (value === undefined) return undefined
  const header = value.replace(/^[ \t]+|[ \t]+$/g, '')
  if (header.length < V00_LENGTH) return undefined
  const version = header.slice(0, 2)
  if (!VERSION.test(version) || version === 'ff') return undefined
  if (version === '00' && header.length !== V00_LENGTH) return undefined
  if (header.length > V00_LENGTH && header[V00_LENGTH] !== '-') return undefined
  if (header[2] !== '-' || header[35] !== '-' || header[52] !== '-') return undefined
  const traceId = header.slice(3, 35)
  const parentId = header.slice(36, 52)
  const flags = header.slice(53, 55)
  if (!TRACE_ID.test(traceId) || traceId === ZERO_TRACE_ID) return undefined
  if (!PARENT_ID.test(parentId) || parentId === ZERO_PARENT_ID) return undefined
  if (!FLAGS.test(flags)) return undefined
  return { version: Number.parseInt(version, 16), traceId, parentId, traceFlags: Number.parseInt(flags, 16) }
}

/** Formats a version-00 traceparent (we always send the version we implement). */
export function formatTraceparent(traceId: string, spanId: string, traceFlags: number): string {
  return `00-${traceId}-${spanId}-${(traceFlags & 0xff).toString(16).padStart(2, '0')}`
}

// key = ( lcalpha / DIGIT ) 0*255( keychar ); keychar = lcalpha / DIGIT / "_" / "-" / "*" / "/" / "@"
// (the current spec text; it accepts every Level 1 simple-key and tenant@system multi-tenant key).
const KEY = /^[a-z0-9][a-z0-9_\-*/@]{0,255}$/
// value = 0*255(chr) nblk-chr; nblk-chr = %x21-2B / %x2D-3C / %x3E-7E; chr = %x20 / nblk-chr
const VALUE = /^[\x20-\x2b\x2d-\x3c\x3e-\x7e]{0,255}[\x21-\x2b\x2d-\x3c\x3e-\x7e]$/
export const MAX_TRACESTATE_MEMBERS = 32

export function isValidTracestateKey(key: string): boolean {
  return KEY.test(key)
}

export function isValidTracestateValue(value: string): boolean {
  return VALUE.test(value)
}

/**
 * An immutable W3C tracestate list. `set` moves the key to the front (the spec's mutation rule),
 * `delete` removes it; both return a new list. Implements the OpenTelemetry TraceState contract.
 */
export class Tracestate {
  readonly #members: readonly (readonly [string, string])[]

  private constructor(members: readonly (readonly [string, string])[]) {
    this.#members = members
  }

  static empty(): Tracestate {
    return new Tracestate([])
  }

  /**
   * Parses a tracestate header (several headers are joined with `,` first). Undefined means the
   * whole value is invalid and is discarded: a malformed member, or more than 32 members. Empty
   * members and optional whitespace around members are allowed. A repeated key keeps its first
   * (left-most, most recent) value and later duplicates are dropped, as the spec allows ("vendors
   * MAY also discard duplicate keys"); the W3C suite requires such a header to be propagated.
   */
  static parse(value: string | undefined): Tracestate | undefined {
    if (value === undefined) return Tracestate.empty()
    const members: (readonly [string, string])[] = []
    const seen = new Set<string>()
    let count = 0
    for (const raw of value.split(',')) {
      const member = raw.replace(/^[ \t]+|[ \t]+$/g, '')
      if (member === '') continue
      const eq = member.indexOf('=')
      if (eq <= 0) return undefined
      const key = member.slice(0, eq)
      const val = member.slice(eq + 1)
      if (!isValidTracestateKey(key) || !isValidTracestateValue(val)) return undefined
      if (++count > MAX_TRACESTATE_MEMBERS) return undefined
      if (seen.has(key)) continue
      seen.add(key)
      members.push([key, val])
    }
    return new Tracestate(members)
  }

  get size(): number {
    return this.#members.length
  }

  get(key: string): string | undefined {
    return this.#members.find(([k]) => k === key)?.[1]
  }

  /** Adds or updates `key`, moving it to the front; the right-most member is dropped beyond 32. */
  set(key: string, value: string): Tracestate {
    if (!isValidTracestateKey(key)) throw new TypeError(`invalid tracestate key ${JSON.stringify(key)}`)
    if (!isValidTracestateValue(value)) throw new TypeError(`invalid tracestate value ${JSON.stringify(value)}`)
    const rest = this.#members.filter(([k]) => k !== key)
    return new Tracestate([[key, value] as const, ...rest].slice(0, MAX_TRACESTATE_MEMBERS))
  }

  unset(key: string): Tracestate {
    return new Tracestate(this.#members.filter(([k]) => k !== key))
  }

  entries(): readonly (readonly [string, string])[] {
    return this.#members
  }

  serialize(): string {
    return this.#members.map(([k, v]) => `${k}=${v}`).join(',')
  }
}

const RANDOM_FLAG_KEY = createContextKey('backbeat.tracing.random-trace-flag')

/** Marks the context's trace as having a random trace-id (Level 2 random flag), for propagation. */
export function setRandomTraceFlag(ctx: Context, random: boolean): Context {
  return ctx.setValue(RANDOM_FLAG_KEY, random)
}

function headerValue(getter: TextMapGetter, carrier: unknown, name: string): string | undefined {
  const value: unknown = getter.get(carrier, name)
  if (Array.isArray(value)) return value.length === 0 ? undefined : value.join(',')
  return typeof value === 'string' ? value : undefined
}

/**
 * W3C Trace Context propagator, spec-exact (unlike @opentelemetry/core's, which keeps the valid
 * members of a partly invalid tracestate and keeps duplicate keys). Also carries the Level 2
 * random flag, which the SDK drops from span contexts.
 */
export class W3CTracePropagator implements TextMapPropagator {
  inject(ctx: Context, carrier: unknown, setter: TextMapSetter): void {
    const spanContext = trace.getSpanContext(ctx)
    if (spanContext === undefined || isTracingSuppressed(ctx) || !trace.isSpanContextValid(spanContext)) return
    const random = ctx.getValue(RANDOM_FLAG_KEY) === true ? RANDOM_TRACE_FLAG : 0
    setter.set(carrier, TRACEPARENT_HEADER, formatTraceparent(spanContext.traceId, spanContext.spanId, (spanContext.traceFlags & TraceFlags.SAMPLED) | random))
    const state = spanContext.traceState?.serialize()
    if (state !== undefined && state !== '') setter.set(carrier, TRACESTATE_HEADER, state)
  }

  extract(ctx: Context, carrier: unknown, getter: TextMapGetter): Context {
    const raw = headerValue(getter, carrier, TRACEPARENT_HEADER)
    // Several traceparent headers arrive joined with ',' and then fail the length rules.
    const parent = parseTraceparent(raw)
    if (parent === undefined) return ctx
    const spanContext: SpanContext = { traceId: parent.traceId, spanId: parent.parentId, traceFlags: parent.traceFlags & TraceFlags.SAMPLED, isRemote: true }
    const state = Tracestate.parse(headerValue(getter, carrier, TRACESTATE_HEADER))
    if (state !== undefined && state.size > 0) spanContext.traceState = state
    return setRandomTraceFlag(trace.setSpanContext(ctx, spanContext), (parent.traceFlags & RANDOM_TRACE_FLAG) !== 0)
  }

  fields(): string[] {
    return [TRACEPARENT_HEADER, TRACESTATE_HEADER]
  }
}

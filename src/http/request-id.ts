import type { IncomingMessage } from 'node:http'
import { uuidv7 } from './uuid-v7.ts'
import { REQUEST_ID_PATTERN, type HttpOptions } from './options.ts'

/** Set on the raw request when the incoming ID was present but malformed. */
export const INVALID_REQUEST_ID = Symbol('backbeat.invalidRequestId')

type RawWithFlag = IncomingMessage & { [INVALID_REQUEST_ID]?: true }

/**
 * True when `value` is an acceptable incoming request ID: 1 to `maxLength` characters of
 * letters, digits and `- _ . : / + = @` (no spaces, no control characters).
 *
 * @example isValidRequestId('0190f7a4-6c1e-7b7a-9c55-0e9c35a3c8f1', 128) // true
 */
export function isValidRequestId(value: string, maxLength: number): boolean {
  return value.length > 0 && value.length <= maxLength && REQUEST_ID_PATTERN.test(value)
}

/**
 * Builds Fastify's `genReqId`: reuse a well-formed incoming ID, otherwise a new UUIDv7
 * (time-ordered, so IDs sort by arrival in log stores). A malformed incoming ID is
 * flagged so the http plugin can answer 400 when `onInvalid` is `reject`.
 *
 * @example Fastify({ genReqId: createRequestIdGenerator(config.http.requestId) })
 */
export function createRequestIdGenerator(options: HttpOptions['requestId']): (raw: IncomingMessage) => string {
  const { header, maxLength, onInvalid } = options
  return (raw) => {
    const incoming = raw.headers[header]
    // An empty header is what many proxies send for "no ID": treat it as absent.
    if (incoming === undefined || incoming === '') return uuidv7()
    if (typeof incoming === 'string' && isValidRequestId(incoming, maxLength)) return incoming
    if (onInvalid === 'reject') (raw as RawWithFlag)[INVALID_REQUEST_ID] = true
    return uuidv7()
  }
}

/** True when the generator flagged this request's incoming ID as malformed. */
export function hasInvalidRequestId(raw: IncomingMessage): boolean {
  return (raw as RawWithFlag)[INVALID_REQUEST_ID] === true
}

export { uuidv7 as generateRequestId }

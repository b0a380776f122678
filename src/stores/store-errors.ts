import { BackbeatError } from '../core/index.ts'
import type { HealthCheckResult } from '../core/index.ts'

/** How a foreign client error should be reported. */
export type FailureKind = 'unavailable' | 'timeout' | 'rejected'

/** Where a failure happened; becomes the error's params so logs can say which store and call. */
export interface FailureSite {
  /** The backend, e.g. `redis`. */
  readonly store: string
  /** The connection's `name`. */
  readonly name: string
  /** What was being done, e.g. `connect`, `get`, `query`. */
  readonly operation: string
  /** `host:port` (never a URL, so credentials cannot leak into logs). */
  readonly target?: string
}

const NETWORK_CODES = new Set(['ECONNREFUSED', 'ECONNRESET', 'EPIPE', 'ENOTFOUND', 'EHOSTUNREACH', 'ENETUNREACH', 'EAI_AGAIN', 'ECONNABORTED'])

/** Short, single-line reason taken from a foreign error, for params and health messages. */
export function reasonOf(err: unknown): string {
  if (err instanceof AggregateError && err.errors.length > 0) return reasonOf(err.errors[0])
  const text = err instanceof Error ? err.message || err.name : String(err)
  const code = errorCode(err)
  const line = (text.split('\n')[0] ?? '').slice(0, 200)
  return code !== undefined && !line.includes(code) ? `${code}: ${line}` : line
}

/** `err.code` when it is a string (Node system errors, pg SQLSTATEs, NATS codes). */
export function errorCode(err: unknown): string | undefined {
  if (typeof err !== 'object' || err === null || !('code' in err)) return undefined
  const code = (err).code
  return typeof code === 'string' ? code : undefined
}

/** True for socket-level failures every client reports the same way. */
export function isNetworkError(err: unknown): boolean {
  const code = errorCode(err)
  if (code !== undefined && NETWORK_CODES.has(code)) return true
  return err instanceof AggregateError && err.errors.some(isNetworkError)
}

/** True for socket-level timeouts every client reports the same way. */
export function isTimeoutCode(err: unknown): boolean {
  const code = errorCode(err)
  return code === 'ETIMEDOUT' || code === 'ETIMEOUT' || (err instanceof Error && err.name === 'TimeoutError')
}

/**
 * Wraps a foreign error into the stable Backbeat codes: unreachable or broken connections
 * become 503 `ERR_DEPENDENCY_UNAVAILABLE`, slow ones 504 `ERR_DEPENDENCY_TIMEOUT`, and errors
 * the server answered with (syntax, wrong type, constraint) `ERR_STORE_COMMAND_FAILED`, so a
 * bug in a query is never reported as an outage. (Values the server refused are
 * {@link dataExceptionError}, a 400.)
 */
export function storeError(site: FailureSite, kind: FailureKind, err: unknown, extra: Readonly<Record<string, string>> = {}): BackbeatError {
  if (err instanceof BackbeatError) return err
  const params = { ...siteParams(site), reason: reasonOf(err), ...extra }
  switch (kind) {
    case 'timeout':
      return new BackbeatError('ERR_DEPENDENCY_TIMEOUT', { cause: err, params })
    case 'unavailable':
      return new BackbeatError('ERR_DEPENDENCY_UNAVAILABLE', { cause: err, params })
    case 'rejected':
      return new BackbeatError('ERR_STORE_COMMAND_FAILED', { cause: err, params })
  }
}

/**
 * Short, fixed reasons for SQLSTATE class 22 (data exception). Fixed on purpose: the engine's
 * own message quotes the offending value (`invalid input syntax for type integer: "…"`),
 * which must not be echoed to the client.
 */
const DATA_EXCEPTION_DETAILS: Readonly<Record<string, string>> = {
  '22001': 'a text value is too long for its field',
  '22003': 'a number is out of range',
  '22007': 'a date or time has an invalid format',
  '22008': 'a date or time is out of range',
  '22021': 'a text value contains a character that cannot be stored, such as NUL',
  '22P02': 'a value has an invalid format for its type',
  '22P05': 'a text value contains a character that cannot be stored, such as NUL',
}

/**
 * True for a SQLSTATE of class 22, "data exception": the statement was fine but a value
 * given to it was not (out of range, not representable, too long), so it is the caller's
 * input that is at fault, not the database or the SQL.
 */
export function isDataException(sqlState: string | undefined): sqlState is `22${string}` {
  return sqlState !== undefined && /^22[0-9A-Z]{3}$/.test(sqlState)
}

/**
 * The error for a data exception (SQLSTATE class 22): 400 `ERR_VALIDATION_FAILED`, in the
 * shape of a schema error so clients handle one format, with a fixed reason that never
 * quotes the value. The database's error stays as `cause`, for the log only.
 *
 * @example if (isDataException(code)) return dataExceptionError(site, err, code)
 */
export function dataExceptionError(site: FailureSite, err: unknown, sqlState: string): BackbeatError {
  const detail = DATA_EXCEPTION_DETAILS[sqlState] ?? 'a value is not valid for its type'
  // The store cannot tell which part of the request the value came from, so the error
  // names no field; the fixed reason never quotes the value.
  return new BackbeatError('ERR_STORE_VALUE_REJECTED', { params: { ...siteParams(site), sqlState, reason: detail }, cause: err })
}

/** The error for using a connection before `connect()` or after `close()`. */
export function notConnectedError(site: FailureSite, state: 'not connected' | 'closed'): BackbeatError {
  const hint = state === 'closed' ? 'the connection was closed' : 'call connect() first'
  return new BackbeatError('ERR_DEPENDENCY_UNAVAILABLE', { params: { ...siteParams(site), reason: `${site.store} connection "${site.name}" is ${state}: ${hint}` } })
}

function siteParams(site: FailureSite): Record<string, string> {
  const params: Record<string, string> = { store: site.store, name: site.name, operation: site.operation }
  if (site.target !== undefined) params.target = site.target
  return params
}

/**
 * Rejects with `signal.reason` as soon as `signal` aborts, so a health check never outlives
 * the caller's deadline even when the client library ignores cancellation.
 */
export function abortable<T>(promise: Promise<T>, signal: AbortSignal): Promise<T> {
  if (signal.aborted) {
    promise.catch(() => undefined)
    return Promise.reject(signal.reason as Error)
  }
  return new Promise<T>((resolve, reject) => {
    const onAbort = (): void => reject(signal.reason as Error)
    signal.addEventListener('abort', onAbort, { once: true })
    promise.then(
      (value) => {
        signal.removeEventListener('abort', onAbort)
        resolve(value)
      },
      (error: unknown) => {
        signal.removeEventListener('abort', onAbort)
        reject(toError(error))
      },
    )
  })
}

/**
 * Rejects with `onTimeout()` when `promise` has not settled after `ms`; the timer never keeps
 * the process alive.
 */
export function withTimeout<T>(promise: Promise<T>, ms: number, onTimeout: () => Error): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const timer = setTimeout(() => reject(onTimeout()), ms)
    timer.unref()
    promise.then(
      (value) => {
        clearTimeout(timer)
        resolve(value)
      },
      (error: unknown) => {
        clearTimeout(timer)
        reject(toError(error))
      },
    )
  })
}

/**
 * Runs a health probe: `pass` when it resolves, `fail` with a short reason when it rejects,
 * and rethrows the abort reason when `signal` fires first (the caller owns that timeout).
 */
export async function probe(store: string, signal: AbortSignal, run: () => Promise<void>): Promise<HealthCheckResult> {
  try {
    await abortable(run(), signal)
    return { status: 'pass' }
  } catch (err) {
    if (signal.aborted) throw signal.reason as Error
    const reason = err instanceof BackbeatError && typeof err.params.reason === 'string' ? err.params.reason : reasonOf(err)
    return { status: 'fail', message: `${store}: ${reason}` }
  }
}

/**
 * Exponential backoff with full jitter: spreads reconnect storms after an outage while keeping
 * the first retry quick.
 *
 * @example backoffDelayMs(3, { baseMs: 50, maxMs: 2000 }) // somewhere in 200..400
 */
export function backoffDelayMs(attempt: number, policy: { baseMs: number; maxMs: number }): number {
  const ceiling = Math.min(policy.maxMs, policy.baseMs * 2 ** Math.max(0, attempt - 1))
  return Math.round(ceiling / 2 + Math.random() * (ceiling / 2))
}

/** `host:port` of a URL without its credentials, for error params. */
export function targetOf(url: string): string {
  try {
    const parsed = new URL(url)
    return parsed.port === '' ? parsed.hostname : `${parsed.hostname}:${parsed.port}`
  } catch {
    return '(invalid url)'
  }
}

function toError(value: unknown): Error {
  return value instanceof Error ? value : new Error(String(value))
}

import { AsyncLocalStorage } from 'node:async_hooks'

/**
 * What every part of the stack may want to know about the request being served. The HTTP
 * layer creates it; later capabilities fill in their fields (tracing sets the trace IDs,
 * identity sets `userId`, tenancy sets `tenantId`, i18n sets `locale`).
 */
export interface RequestContext {
  readonly requestId: string
  traceId?: string
  spanId?: string
  tenantId?: string
  userId?: string
  /** The API key the request was made with (its ID, never the secret). */
  apiKeyId?: string
  /** A rate-limit policy the credentials carry (an API key's tier), applied on top of the route's. */
  rateLimitPolicy?: string
  locale?: string
}

const storage = new AsyncLocalStorage<RequestContext>()

/**
 * The context of the request being served, or `undefined` outside a request.
 *
 * @example
 * const requestId = currentContext()?.requestId
 */
export function currentContext(): RequestContext | undefined {
  return storage.getStore()
}

/**
 * Runs `fn` with `context` as the current request context (for HTTP this is done for you;
 * use it in workers and jobs so their logs and events carry the same fields).
 *
 * @example
 * runWithContext({ requestId: 'job-42' }, () => processJob())
 */
export function runWithContext<T>(context: RequestContext, fn: () => T): T {
  return storage.run(context, fn)
}

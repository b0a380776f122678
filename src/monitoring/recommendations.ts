import { ERROR_CODES, isErrorCode, type ErrorCode } from '../core/index.ts'

/** What kind of fault an issue is, which decides the advice given for it. */
export type IssueCategory =
  | 'timeout'
  | 'circuit_open'
  | 'overload'
  | 'dependency'
  | 'validation'
  | 'code_bug'
  | 'resource'
  | 'config'
  | 'client'
  | 'internal'
  | 'unknown'

const TIMEOUT_CODES = new Set(['ETIMEDOUT', 'ESOCKETTIMEDOUT', 'UND_ERR_CONNECT_TIMEOUT', 'UND_ERR_HEADERS_TIMEOUT', 'UND_ERR_BODY_TIMEOUT', 'ERR_DEPENDENCY_TIMEOUT', 'FST_ERR_REQUEST_TIMEOUT'])
const CONNECTION_CODES = new Set(['ECONNREFUSED', 'ECONNRESET', 'ENOTFOUND', 'EAI_AGAIN', 'EPIPE', 'EHOSTUNREACH', 'ENETUNREACH', 'UND_ERR_SOCKET', 'UND_ERR_CLOSED', 'ECONNABORTED'])
const RESOURCE_CODES = new Set(['ENOMEM', 'EMFILE', 'ENFILE', 'ENOSPC', 'ERR_WORKER_OUT_OF_MEMORY'])
const CODE_BUG_NAMES = new Set(['TypeError', 'ReferenceError', 'SyntaxError', 'RangeError', 'AssertionError', 'EvalError', 'URIError'])

function field(error: unknown, key: string): unknown {
  return typeof error === 'object' && error !== null ? (error as Record<string, unknown>)[key] : undefined
}

/**
 * Sorts an error into a category from its name and code: cockatiel's timeout, broken-circuit
 * and bulkhead errors, Node/undici network codes, Backbeat catalogue codes, schema validation
 * errors, and JavaScript's own errors (a TypeError is a code bug).
 *
 * @example classifyError(Object.assign(new Error('x'), { code: 'ECONNREFUSED' })) // 'dependency'
 */
export function classifyError(error: unknown): IssueCategory {
  const name = field(error, 'name')
  const rawCode = field(error, 'code')
  const code = typeof rawCode === 'string' ? rawCode : undefined
  if (name === 'TaskCancelledError' || name === 'TimeoutError' || (code !== undefined && TIMEOUT_CODES.has(code))) return 'timeout'
  if (name === 'BrokenCircuitError' || name === 'IsolatedCircuitError') return 'circuit_open'
  if (name === 'BulkheadRejectedError') return 'overload'
  if (code !== undefined && CONNECTION_CODES.has(code)) return 'dependency'
  if (code !== undefined && RESOURCE_CODES.has(code)) return 'resource'
  if (code !== undefined && isErrorCode(code)) {
    if (code === 'ERR_CONFIG_INVALID') return 'config'
    const category = ERROR_CODES[code].category
    if (category === 'dependency') return 'dependency'
    if (category === 'internal') return 'internal'
    if (category === 'validation') return 'validation'
    return 'client'
  }
  if (name === 'ZodError' || code === 'FST_ERR_VALIDATION' || field(error, 'validation') !== undefined) return 'validation'
  if (code?.startsWith('FST_ERR_') === true) return 'config'
  if (name === 'RangeError' && /call stack|heap|allocation/i.test(String(field(error, 'message')))) return 'resource'
  if (typeof name === 'string' && CODE_BUG_NAMES.has(name)) return 'code_bug'
  return 'unknown'
}

/** Advice for the catalogue codes where the generic category advice would be too vague. */
const CODE_ADVICE: Partial<Record<ErrorCode, string>> = {
  ERR_DEPENDENCY_TIMEOUT: 'A dependency did not answer in time: check its latency and health, and that its timeout sits inside the request deadline.',
  ERR_DEPENDENCY_UNAVAILABLE: 'A dependency is down or its circuit is open: check its health endpoint and connection settings; serve a fallback while it recovers.',
  ERR_RATE_LIMIT_UNAVAILABLE: 'The rate-limit store (Redis) is unreachable: check Redis, or set `rateLimit.policies.*.onStoreError` to `memory`.',
  ERR_AUTH_REVOCATION_UNAVAILABLE: 'The token revocation store is unreachable: check Redis; sign-ins are refused until it answers.',
  ERR_AUTH_OAUTH_PROVIDER_FAILED: 'The identity provider failed: check its status page and the client credentials.',
  ERR_AUTH_VAULT_KEY_UNKNOWN: 'A vault key ID is missing from `auth.vault.keys`: restore the retired key so old secrets can be read.',
  ERR_STORE_COMMAND_FAILED: 'A data store rejected a command: check the store logs (memory limit, read-only replica, script errors).',
  ERR_CONFIG_INVALID: 'The configuration is invalid: fix the listed options; the server should not start this way.',
  ERR_HTTP_SHUTTING_DOWN: 'Requests reached an instance that is shutting down: check the load balancer deregistration delay.',
  ERR_CACHE_NOT_CACHED: 'Clients asked for only-if-cached and nothing was cached: expected under cold caches; check cache warming.',
  ERR_INTERNAL: 'An unexpected error was wrapped as ERR_INTERNAL: look at the sample stack and its `cause`.',
}

const CATEGORY_ADVICE: Record<IssueCategory, string> = {
  timeout: 'A dependency timed out: check its latency and health, give its calls a timeout and a circuit breaker (createResiliencePolicy), and serve a fallback.',
  circuit_open: 'Calls were refused because a circuit breaker is open: the dependency behind it kept failing; check it, the breaker closes by itself once it recovers.',
  overload: 'A bulkhead was full: the dependency is slow or the limit too low; check its latency before raising `bulkhead.limit`.',
  dependency: 'A dependency is unreachable or failing: check its health, DNS and connection settings; add retries with backoff and a circuit breaker.',
  validation: 'Invalid data reached a 5xx path: likely a client bug or a response that does not match its schema; check the route schema and the caller.',
  code_bug: 'A programming error: fix the code at the top frame.',
  resource: 'The process ran out of a resource (memory, file descriptors, stack): check for leaks or unbounded recursion, and the container limits.',
  config: 'A framework or configuration error: check the route and plugin setup at startup.',
  client: 'A client-side error reached the error monitor: check that the route answers it with a 4xx.',
  internal: 'An internal error: look at the sample stack.',
  unknown: 'Unclassified error: look at the sample stack and add a typed BackbeatError with a code where it is thrown.',
}

/**
 * Short advice for an issue: the catalogue code's advice when there is one, else its
 * category's, and for code bugs the frame to look at.
 *
 * @example recommend('code_bug', 'TypeError', ['render@src/x.ts']) // ['A programming error: fix the code at the top frame: render@src/x.ts.']
 */
export function recommend(category: IssueCategory, type: string, frames: readonly string[]): string[] {
  const advice: string[] = []
  const code = /\[([A-Z0-9_]+)\]$/.exec(type)?.[1]
  const byCode = code !== undefined && isErrorCode(code) ? CODE_ADVICE[code] : undefined
  if (byCode !== undefined) advice.push(byCode)
  else if (category === 'code_bug' && frames[0] !== undefined) advice.push(`${CATEGORY_ADVICE.code_bug.slice(0, -1)}: ${frames[0]}.`)
  else advice.push(CATEGORY_ADVICE[category])
  if (frames.length === 0) advice.push('No stack is available: throw Error objects (not strings) so that issues can be told apart.')
  return advice
}

/** The value every label takes once its metric has seen `limit` distinct values. */
export const OVERFLOW = '_overflow'

const METHODS: ReadonlySet<string> = new Set(['GET', 'HEAD', 'POST', 'PUT', 'DELETE', 'CONNECT', 'OPTIONS', 'TRACE', 'PATCH', 'QUERY'])

/** The request method as a label: one of the known HTTP methods, else `_OTHER` (OpenTelemetry's convention). */
export function methodLabel(method: string): string {
  return METHODS.has(method) ? method : '_OTHER'
}

const CLASSES = ['1xx', '2xx', '3xx', '4xx', '5xx'] as const

/** `2xx` for 204, and so on; anything out of range is `5xx` (a server answering nonsense is its fault). */
export function statusClass(status: number): string {
  return CLASSES[Math.floor(status / 100) - 1] ?? '5xx'
}

/**
 * Remembers the distinct values of one label and maps every value past `limit` to
 * `_overflow`, so that nothing a client sends can grow a metric without bound.
 *
 * @example
 * const guard = new LabelGuard(2)
 * guard.value('a'); guard.value('b'); guard.value('c') // '_overflow'
 */
export class LabelGuard {
  readonly #seen = new Set<string>()
  readonly #limit: number

  constructor(limit: number) {
    this.#limit = limit
  }

  value(raw: string): string {
    if (this.#seen.has(raw)) return raw
    if (this.#seen.size >= this.#limit) return OVERFLOW
    this.#seen.add(raw)
    return raw
  }

  get size(): number {
    return this.#seen.size
  }
}

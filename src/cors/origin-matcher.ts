/**
 * Decides whether a request's `Origin` is allowed. Entries are exact origins
 * (`https://app.example.com`), wildcard subdomain patterns (`https://*.example.com`, any
 * depth of subdomain, never the bare domain), regular expressions written `/.../flags`, or
 * `*` (any origin; only without credentials).
 */
export class OriginMatcher {
  readonly any: boolean
  readonly #exact = new Set<string>()
  readonly #wildcards: Array<{ scheme: string; suffix: string; port: string }> = []
  readonly #patterns: RegExp[] = []

  /** Throws a TypeError naming the first entry that is none of the accepted forms. */
  constructor(entries: readonly string[]) {
    let any = false
    for (const entry of entries) {
      if (entry === '*') {
        any = true
        continue
      }
      const regex = /^\/(.+)\/([a-z]*)$/s.exec(entry)
      if (regex !== null) {
        const [, source = '', flags = ''] = regex
        if (/[gy]/.test(flags)) throw new TypeError(`origin pattern ${entry}: the g and y flags make matching stateful`)
        this.#patterns.push(new RegExp(source, flags))
        continue
      }
      const wildcard = /^(https?):\/\/\*\.([a-z0-9-]+(?:\.[a-z0-9-]+)+)(?::(\d{1,5}))?$/i.exec(entry)
      if (wildcard !== null) {
        const [, scheme = '', domain = '', port = ''] = wildcard
        this.#wildcards.push({ scheme: scheme.toLowerCase(), suffix: `.${domain.toLowerCase()}`, port })
        continue
      }
      const exact = serializeOrigin(entry)
      if (exact === undefined) throw new TypeError(`${JSON.stringify(entry)} is not an origin (scheme://host[:port]), a https://*.domain pattern, a /regex/ or *`)
      this.#exact.add(exact)
    }
    this.any = any
  }

  /** True when `origin` (as sent in the header) is allowed. Malformed origins never are. */
  matches(origin: string): boolean {
    if (this.#exact.has(origin)) return true
    if (!isSerializedOrigin(origin)) return false
    if (this.any) return true
    if (this.#wildcards.length > 0) {
      const parsed = /^(https?):\/\/([^:/]+)(?::(\d+))?$/.exec(origin)
      if (parsed !== null) {
        const [, scheme, host = '', port = ''] = parsed
        for (const w of this.#wildcards) {
          if (w.scheme === scheme && w.port === port && host.endsWith(w.suffix) && host.length > w.suffix.length) return true
        }
      }
    }
    for (const pattern of this.#patterns) if (pattern.test(origin)) return true
    return false
  }

  /** True when an entry is the opaque origin `null` (sandboxed frames, file: pages). */
  get allowsNull(): boolean {
    return this.#exact.has('null')
  }
}

// What browsers send: scheme "://" host [":" port], lower case, no path; or "null".
const SERIALIZED_ORIGIN = /^[a-z][a-z0-9+.-]*:\/\/(?:[a-z0-9-._~]+|\[[0-9a-f:.]+\])(?::\d{1,5})?$/

function isSerializedOrigin(origin: string): boolean {
  return origin.length <= 2048 && SERIALIZED_ORIGIN.test(origin)
}

/** The serialized form of a configured origin (lower case, default port dropped), or undefined. */
function serializeOrigin(entry: string): string | undefined {
  if (entry === 'null') return 'null'
  let url: URL
  try {
    url = new URL(entry)
  } catch {
    return undefined
  }
  // A path, credentials, query or fragment means it is a URL, not an origin.
  if (url.origin === 'null' || url.pathname !== '/' || url.search !== '' || url.hash !== '' || url.username !== '' || url.password !== '') return undefined
  if (entry.endsWith('/') || entry.includes('?') || entry.includes('#')) return undefined
  return url.origin
}

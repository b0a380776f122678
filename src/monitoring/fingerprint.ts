import { createHash } from 'node:crypto'

/** One parsed stack frame; `line` is kept for display but never part of a fingerprint. */
export interface StackFrame {
  /** Function as V8 names it (`Class.method`, `async handler`), or `<anonymous>`. */
  fn: string
  /** Path relative to the app root (`src/x.ts`), `node_modules/pkg/...`, or `node:...`. */
  file: string
  line?: number
  /** False for node_modules, `node:` internals and native frames. */
  inApp: boolean
}

const REDACTED = '[REDACTED]'
const SECRET_PATTERNS: readonly [RegExp, string][] = [
  [/\b(Bearer|Basic|Digest|Token)\s+[A-Za-z0-9\-._~+/]+=*/gi, `$1 ${REDACTED}`],
  [/\beyJ[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]*/g, REDACTED],
  [/(\/\/)[^/\s:@]+:[^/\s@]+@/g, `$1${REDACTED}@`],
  [
    /\b((?:[\w-]*[_-])?(?:password|passwd|pwd|secret|token|api[_-]?key|apikey|access[_-]?key|private[_-]?key|authorization|cookie|session[_-]?id|credentials?))(["']?\s*[:=]\s*["']?)([^\s"'&,;]+)/gi,
    `$1$2${REDACTED}`,
  ],
  [/\b[A-Za-z]{2,8}_(?:live|test|prod)_[A-Za-z0-9]{12,}\b/g, REDACTED],
  [/-----BEGIN [A-Z ]*PRIVATE KEY-----[\s\S]*?(?:-----END [A-Z ]*PRIVATE KEY-----|$)/g, REDACTED],
]

/**
 * Replaces what looks like a secret (bearer/basic credentials, JWTs, URL credentials,
 * `password=`/`token:`/`api_key=` values, live/test API keys, PEM private keys) with `[REDACTED]`.
 * A simple pattern-based pass: defence in depth, not a guarantee.
 *
 * @example redactSecrets('auth failed for Bearer abc.def') // 'auth failed for Bearer [REDACTED]'
 */
export function redactSecrets(text: string): string {
  let out = text
  for (const [pattern, replacement] of SECRET_PATTERNS) out = out.replace(pattern, replacement)
  return out
}

const VOLATILE: readonly [RegExp, string][] = [
  // Query strings and fragments of URLs first, before their parts look like numbers or ids.
  [/\b([a-z][a-z0-9+.-]*:\/\/[^\s?#"'<>]*)[?#][^\s"'<>]*/gi, '$1'],
  [/\b[\w.+-]+@[\w-]+(?:\.[\w-]+)+\b/g, '<email>'],
  [/\b[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\b/gi, '<uuid>'],
  [/\b(?:\d{1,3}\.){3}\d{1,3}(?::\d+)?\b/g, '<ip>'],
  [/(?<![\w:])(?:[0-9a-f]{0,4}:){2,7}[0-9a-f]{0,4}(?![\w:])/gi, '<ip>'],
  [/"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'|`(?:[^`\\]|\\.)*`/g, '<str>'],
  [/\b0x[0-9a-f]+\b/gi, '<hex>'],
  // Hex ids: 8+ hex characters with at least one digit (so plain words survive).
  [/\b(?=[0-9a-f]*\d)[0-9a-f]{8,}\b/gi, '<hex>'],
  // Base62 ids such as Spotify-style 22-character ids (letters and digits mixed).
  [/\b(?=[A-Za-z0-9]*\d)(?=[A-Za-z0-9]*[A-Za-z])[A-Za-z0-9]{16,}\b/g, '<id>'],
  [/-?\b\d+(?:[.,]\d+)*\b/g, '<n>'],
]

/**
 * Strips the parts of an error message that change between occurrences of the same fault
 * (numbers, UUIDs, hex and base62 ids, quoted strings, e-mail and IP addresses, URL query
 * strings), after redacting secrets, so that the message can be part of a fingerprint.
 *
 * @example normalizeMessage('User 42 not found at "x"') // 'User <n> not found at <str>'
 */
export function normalizeMessage(message: string, maxLength = 300): string {
  let out = redactSecrets(message)
  for (const [pattern, replacement] of VOLATILE) out = out.replace(pattern, replacement)
  out = out.replace(/\s+/g, ' ').trim()
  return out.length > maxLength ? out.slice(0, maxLength) : out
}

const FRAME = /^\s*at\s+(?:(.+?)\s+\()?((?:[a-z]+:\/\/\/?)?[^()]+?)(?::(\d+))?(?::(\d+))?\)?\s*$/i

/**
 * Parses the `at ...` lines of a V8 stack. Files are made relative to `appRoot`; columns are
 * dropped. Frames in node_modules, `node:` internals and native code are not in-app.
 *
 * @example parseStack(new Error('x').stack, process.cwd())[0]?.file // 'src/monitoring/x.ts'
 */
export function parseStack(stack: string | undefined, appRoot: string): StackFrame[] {
  if (stack === undefined) return []
  const root = appRoot.endsWith('/') ? appRoot : `${appRoot}/`
  const frames: StackFrame[] = []
  for (const raw of stack.split('\n')) {
    if (!/^\s*at\s/.test(raw)) continue
    const m = FRAME.exec(raw)
    if (m === null) continue
    let fn = (m[1] ?? '<anonymous>').replace(/^async\s+/, '').replace(/\s+\[as [^\]]+\]$/, '')
    let file = (m[2] ?? '').trim().replace(/^async\s+/, '')
    if (m[1] === undefined && !/[/\\:]/.test(file)) {
      // `at native` or `at <anonymous>` with no location.
      fn = file
      file = '<native>'
    }
    if (file.startsWith('file://')) file = decodeURI(file.slice('file://'.length))
    const nm = file.lastIndexOf('/node_modules/')
    if (nm >= 0) file = file.slice(nm + 1)
    else if (file.startsWith(root)) file = file.slice(root.length)
    const inApp = !file.startsWith('node_modules/') && !file.startsWith('node:') && file !== '<native>' && !file.startsWith('<anonymous>') && !file.startsWith('internal/')
    const frame: StackFrame = { fn: fn === '' ? '<anonymous>' : fn, file, inApp }
    if (m[3] !== undefined) frame.line = Number(m[3])
    frames.push(frame)
  }
  return frames
}

/** What identifies an error's type: its name, with its `code` when it has one (`Error[ECONNREFUSED]`). */
export function errorType(error: unknown): string {
  if (error instanceof Error || (typeof error === 'object' && error !== null)) {
    const e = error as { name?: unknown; code?: unknown; constructor?: { name?: unknown } }
    const name = typeof e.name === 'string' && e.name !== '' ? e.name : typeof e.constructor?.name === 'string' ? e.constructor.name : 'Object'
    const code = typeof e.code === 'string' || typeof e.code === 'number' ? String(e.code) : undefined
    return code === undefined ? name : `${name}[${code}]`
  }
  return typeof error
}

/** The fingerprint inputs and result of one error. */
export interface Fingerprint {
  /** 16 hex characters of a SHA-256 over type, normalised message and frames. */
  id: string
  type: string
  normalizedMessage: string
  /** `fn@file` of the frames that went into the fingerprint. */
  frames: string[]
}

/**
 * Fingerprints an error: type + normalised message + top `stackFrames` in-app frames
 * (function and relative file, no line or column, so that an unrelated edit above the
 * throwing line does not split an issue). Errors with no in-app frame use their top frames.
 *
 * @example fingerprintError(err, { appRoot: process.cwd(), stackFrames: 5 }).id
 */
export function fingerprintError(error: unknown, options: { appRoot: string; stackFrames: number }): Fingerprint {
  const type = errorType(error)
  const message = messageOf(error)
  const all = parseStack(stackOf(error), options.appRoot)
  const inApp = all.filter((f) => f.inApp)
  const chosen = (inApp.length > 0 ? inApp : all).slice(0, options.stackFrames)
  const frames = chosen.map((f) => `${f.fn}@${f.file}`)
  const normalizedMessage = normalizeMessage(message)
  const id = createHash('sha256').update(`${type}\n${normalizedMessage}\n${frames.join('\n')}`).digest('hex').slice(0, 16)
  return { id, type, normalizedMessage, frames }
}

/** The message of any thrown value. */
export function messageOf(error: unknown): string {
  if (error instanceof Error) return error.message
  if (typeof error === 'object' && error !== null && typeof (error as { message?: unknown }).message === 'string') return (error as { message: string }).message
  if (typeof error === 'string') return error
  try {
    return String(error)
  } catch {
    return '<unprintable>'
  }
}

/** The stack of any thrown value, if it has one. */
export function stackOf(error: unknown): string | undefined {
  if (typeof error === 'object' && error !== null) {
    const stack = (error as { stack?: unknown }).stack
    if (typeof stack === 'string') return stack
  }
  return undefined
}

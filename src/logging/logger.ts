import { pino, type DestinationStream, type Logger, type LoggerOptions } from 'pino'
import pretty from 'pino-pretty'
import { currentContext, type RequestContext } from '../core/index.ts'
import type { LoggingOptions } from './options.ts'
import { LogSink } from './log-sink.ts'
import { createRedactor } from './redact.ts'

/** One request's completion record, as written by the request-logging plugin. */
export interface RequestLine {
  context: RequestContext | undefined
  requestId: string
  method: string
  route: string | undefined
  path: string
  status: number
  durationMs: number
  bytesIn: number
  bytesOut: number
  slow: boolean
}

export interface BackbeatLogger {
  readonly logger: Logger
  /**
   * Writes one request completion line: the same JSON pino would write, built directly
   * because it is written for every request (see docs/decisions.md). Respects the level.
   */
  writeRequestLine: (line: RequestLine) => void
  /** Writes out anything buffered (call before exit; done for you on shutdown and close). */
  flush: () => Promise<void>
}

export interface CreateLoggerOptions {
  /** Bound to every line (e.g. `{ service: 'music-api', environment: 'production' }`). */
  base?: Record<string, unknown>
  /** Write here instead of stdout or `options.file` (tests capture lines this way). */
  destination?: DestinationStream
}

/**
 * Creates the pino logger the whole stack shares: JSON or pretty, to stdout or a file,
 * with request-context fields (request ID, trace ID, tenant, user) added to every line
 * written during a request and secrets redacted at any depth.
 *
 * @example
 * const { logger, flush } = createLogger(config.logging, { base: { service: 'music-api' } })
 */
export function createLogger(options: LoggingOptions, extra: CreateLoggerOptions = {}): BackbeatLogger {
  const redact = createRedactor(options.redactKeys)
  const pinoOptions: LoggerOptions = {
    level: options.enabled ? options.level : 'silent',
    base: extra.base ?? {},
    timestamp: pino.stdTimeFunctions.isoTime,
    messageKey: 'msg',
    formatters: {
      level: (label) => ({ level: label }),
      log: (object) => redact(object) as Record<string, unknown>,
    },
    // Fields of the current request, added to each line written while serving it. Reading
    // the AsyncLocalStorage store is cheaper than building a child logger per request.
    mixin() {
      const ctx = currentContext()
      return ctx === undefined ? {} : contextFields(ctx)
    },
    hooks: {
      // The message text can carry a token too (`log.info(\`got ${header}\`)`).
      logMethod(args, method) {
        for (let i = 0; i < args.length; i++) {
          const arg: unknown = args[i]
          if (typeof arg === 'string') args[i] = redact.scrubText(arg)
        }
        method.apply(this, args)
      },
    },
  }

  const destination = extra.destination ?? makeDestination(options)
  const logger = pino(pinoOptions, destination)
  return {
    logger,
    writeRequestLine: requestLineWriter(logger, destination, extra.base ?? {}, (text) => redact.scrubText(text)),
    flush: () => flushDestination(destination),
  }
}

const LEVEL_INFO = 30
const LEVEL_WARN = 40

/**
 * Builds the writer of completion lines. Every field is one the plugin computed (no
 * headers, no body, the path without its query), so the generic redaction walk is not
 * needed; the path is still scrubbed of bearer tokens and JWTs. The ISO timestamp is
 * formatted once per millisecond rather than once per line.
 */
function requestLineWriter(
  logger: Logger,
  destination: DestinationStream,
  base: Record<string, unknown>,
  scrub: (text: string) => string,
): (line: RequestLine) => void {
  const bindings = JSON.stringify(base).slice(1, -1)
  const prefix = bindings === '' ? '' : `,${bindings}`
  let lastMs = -1
  let lastTime = ''
  return (line) => {
    const level = line.slow ? LEVEL_WARN : LEVEL_INFO
    if (logger.levelVal > level) return
    const now = Date.now()
    if (now !== lastMs) {
      lastMs = now
      lastTime = new Date(now).toISOString()
    }
    let text = `{"level":"${line.slow ? 'warn' : 'info'}","time":"${lastTime}"${prefix},"requestId":${JSON.stringify(line.requestId)}`
    const ctx = line.context
    if (ctx !== undefined) {
      if (ctx.traceId !== undefined) text += `,"traceId":${JSON.stringify(ctx.traceId)}`
      if (ctx.spanId !== undefined) text += `,"spanId":${JSON.stringify(ctx.spanId)}`
      if (ctx.tenantId !== undefined) text += `,"tenantId":${JSON.stringify(ctx.tenantId)}`
      if (ctx.userId !== undefined) text += `,"userId":${JSON.stringify(ctx.userId)}`
    }
    text +=
      `,"method":${JSON.stringify(line.method)},"route":${line.route === undefined ? 'null' : JSON.stringify(line.route)}` +
      `,"path":${JSON.stringify(scrub(line.path))},"status":${line.status},"durationMs":${line.durationMs}` +
      `,"bytesIn":${line.bytesIn},"bytesOut":${line.bytesOut}` +
      (line.slow ? ',"slow":true,"msg":"request completed slowly"}\n' : ',"msg":"request completed"}\n')
    destination.write(text)
  }
}

type Flushable = DestinationStream & {
  flush?: (callback?: () => void) => void
  flushSync?: () => void
  fd?: number
  destroyed?: boolean
  once?: (event: string, listener: () => void) => void
}

/** Writes out everything buffered: our LogSink asynchronously, other destinations as they can. */
async function flushDestination(destination: DestinationStream): Promise<void> {
  if (destination instanceof LogSink) {
    await new Promise<void>((resolve) => destination.flush(resolve))
    return
  }
  const d = destination as Flushable
  if (typeof d.flushSync !== 'function' || d.destroyed === true) return
  if (typeof d.fd === 'number' && d.fd < 0 && typeof d.once === 'function') {
    const once = d.once.bind(d)
    await new Promise<void>((resolve) => {
      once('ready', resolve)
      once('error', resolve)
    })
  }
  try {
    d.flushSync()
  } catch {
    // Nothing buffered, or the stream already closed: nothing left to lose.
  }
}

function makeDestination(options: LoggingOptions): DestinationStream {
  if (options.format === 'pretty') {
    const prettyStream = pretty({
      colorize: options.file === undefined && process.stdout.isTTY,
      translateTime: 'SYS:HH:MM:ss.l',
      ignore: 'pid,hostname',
      sync: true,
      ...(options.file === undefined ? {} : { destination: options.file, mkdir: true }),
    })
    return prettyStream
  }
  // Buffered asynchronous writes in large chunks keep the event loop free; lines are
  // written at least every `flushIntervalMs`, awaited on shutdown, and written
  // synchronously if the process exits without one (LogSink registers that).
  return new LogSink({ dest: options.file ?? 1, flushIntervalMs: options.flushIntervalMs })
}

/** The log fields of a request context (only those that are set). */
export function contextFields(ctx: RequestContext): Record<string, string> {
  const fields: Record<string, string> = { requestId: ctx.requestId }
  if (ctx.traceId !== undefined) fields.traceId = ctx.traceId
  if (ctx.spanId !== undefined) fields.spanId = ctx.spanId
  if (ctx.tenantId !== undefined) fields.tenantId = ctx.tenantId
  if (ctx.userId !== undefined) fields.userId = ctx.userId
  return fields
}

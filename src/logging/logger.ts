import { pino, type DestinationStream, type Logger, type LoggerOptions } from 'pino'
import pretty from 'pino-pretty'
import { currentContext, type RequestContext } from '../core/index.ts'
import type { LoggingOptions } from './options.ts'
import { createRedactor } from './redact.ts'

export interface BackbeatLogger {
  readonly logger: Logger
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
    flush: () => flushDestination(destination),
  }
}

type Flushable = DestinationStream & {
  flushSync?: () => void
  fd?: number
  destroyed?: boolean
  once?: (event: string, listener: () => void) => void
}

/** Flushes a SonicBoom destination, first waiting for its file to open if it has not yet. */
async function flushDestination(destination: DestinationStream): Promise<void> {
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
  // Buffered asynchronous writes keep the event loop free; flushed on shutdown and exit.
  return pino.destination({ dest: options.file ?? 1, sync: false, minLength: 4096, mkdir: true })
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

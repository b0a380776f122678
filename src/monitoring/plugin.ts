import fp from 'fastify-plugin'
import type { FastifyRequest } from 'fastify'
import { currentContext } from '../core/index.ts'
import { ErrorMonitor, type ErrorMonitorInput } from './error-monitor.ts'

declare module 'fastify' {
  interface FastifyInstance {
    /** Issues, trends and insights of the 5xx responses and unhandled errors of this app. */
    errorMonitor: ErrorMonitor
  }
}

export type ErrorMonitorPluginOptions = ErrorMonitorInput & {
  /** A ready monitor (shared with an admin route, say); otherwise one is built from the options. */
  monitor?: ErrorMonitor
  /** The user behind a request; defaults to the request context's `userId`. */
  userId?: (request: FastifyRequest) => string | undefined
}

/** Where onError leaves the error for onResponse, which knows the final status. */
const kError = Symbol('backbeat.errorMonitor.error')
type RequestWithError = FastifyRequest & { [kError]?: unknown }

/**
 * Records every response with a status of `minStatus` (500) or above into an ErrorMonitor,
 * with the error the route threw when there is one, its route template, method and request
 * ID. With `captureProcessErrors`, uncaught exceptions and unhandled rejections are recorded
 * too, through listeners that observe without changing what Node does.
 *
 * @example await app.register(errorMonitorPlugin, { maxIssues: 200 }); app.errorMonitor.insights()
 */
export const errorMonitorPlugin = fp<ErrorMonitorPluginOptions>(
  async (app, options) => {
    const { monitor: given, userId, ...input } = options
    const monitor = given ?? new ErrorMonitor(input)
    app.decorate('errorMonitor', monitor)
    const minStatus = monitor.options.minStatus

    app.addHook('onError', async (request, _reply, error) => {
      ;(request as RequestWithError)[kError] = error
    })

    app.addHook('onResponse', async (request, reply) => {
      const status = reply.statusCode
      if (status < minStatus) return
      const route = request.routeOptions.url
      const thrown = (request as RequestWithError)[kError]
      // A 5xx sent without throwing (reply.code(503).send()) still counts, grouped per route.
      const error = thrown ?? { name: 'HttpResponse', message: `${String(status)} response on ${request.method} ${route ?? '(no route)'}` }
      monitor.record(error, {
        route: route ?? '(no route)',
        method: request.method,
        status,
        requestId: request.id,
        userId: userId === undefined ? currentContext()?.userId : userId(request),
        source: 'request',
      })
    })

    if (input.captureProcessErrors === true) {
      // 'uncaughtExceptionMonitor' observes without handling; under Node's default
      // --unhandled-rejections=throw it also sees unhandled rejections (origin 'unhandledRejection').
      // A listener on 'unhandledRejection' would mark rejections handled and stop the crash, so one is
      // added only when the app already has its own (then rejections are handled anyway).
      const onUncaught = (error: Error, origin: string): void => {
        monitor.record(error, { source: origin })
      }
      const onRejection = (reason: unknown): void => {
        monitor.record(reason, { source: 'unhandledRejection' })
      }
      const observeRejections = process.listenerCount('unhandledRejection') > 0
      process.on('uncaughtExceptionMonitor', onUncaught)
      if (observeRejections) process.on('unhandledRejection', onRejection)
      app.addHook('onClose', async () => {
        process.off('uncaughtExceptionMonitor', onUncaught)
        if (observeRejections) process.off('unhandledRejection', onRejection)
      })
    }
  },
  { name: 'backbeat-error-monitor', fastify: '5.x' },
)

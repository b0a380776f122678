import type { FastifyInstance } from 'fastify'
import { delay } from '../core/index.ts'
import type { HealthRegistry } from './registry.ts'

export interface GracefulShutdownOptions {
  registry: HealthRegistry
  drainTimeoutMs: number
  preStopDelayMs?: number
  signals?: readonly NodeJS.Signals[]
  /** Called last, after the server and every onClose hook (flush logs here). */
  flush?: () => Promise<void> | void
  /** How the process ends; tests pass a spy. Defaults to `process.exit`. */
  exit?: (code: number) => void
}

export interface GracefulShutdown {
  /** Runs the shutdown sequence once; later calls return the same promise. */
  shutdown(reason: string): Promise<void>
  /** Removes the signal handlers (for tests and embedding). */
  dispose(): void
}

/**
 * Graceful shutdown on SIGTERM/SIGINT: readiness turns 503 at once; after `preStopDelayMs`
 * the server stops accepting connections and in-flight requests drain for up to
 * `drainTimeoutMs`, after which remaining connections are cut; `onClose` hooks close
 * stores and flush buffers; logs are flushed; the process exits. A second signal exits at once.
 *
 * @example
 * installGracefulShutdown(app, { registry: app.health, drainTimeoutMs: 10_000, flush })
 */
export function installGracefulShutdown(app: FastifyInstance, options: GracefulShutdownOptions): GracefulShutdown {
  const signals = options.signals ?? ['SIGTERM', 'SIGINT']
  const exit = options.exit ?? ((code: number) => process.exit(code))
  let running: Promise<void> | undefined

  const shutdown = (reason: string): Promise<void> => {
    running ??= (async () => {
      options.registry.markShuttingDown()
      app.log.info({ reason, drainTimeoutMs: options.drainTimeoutMs }, 'shutting down')
      let code = 0
      try {
        if ((options.preStopDelayMs ?? 0) > 0) await delay(options.preStopDelayMs ?? 0)
        let timer: NodeJS.Timeout | undefined
        // server.close() only closes sockets idle at the moment it is called; keep-alive
        // sockets whose in-flight request finishes later must be closed as they go idle.
        const sweeper = setInterval(() => app.server.closeIdleConnections(), 100)
        const drained = await Promise.race([
          app.close().then(() => true),
          new Promise<false>((resolve) => {
            timer = setTimeout(() => resolve(false), options.drainTimeoutMs)
          }),
        ])
        clearTimeout(timer)
        clearInterval(sweeper)
        if (!drained) {
          app.log.warn('drain timeout reached; closing remaining connections')
          app.server.closeAllConnections()
          await app.close()
        }
        app.log.info('shutdown complete')
      } catch (error) {
        code = 1
        app.log.error({ err: error }, 'shutdown failed')
      }
      await options.flush?.()
      exit(code)
    })()
    return running
  }

  const onSignal = (signal: NodeJS.Signals): void => {
    if (running !== undefined) {
      app.log.warn({ signal }, 'second signal: exiting now')
      void Promise.resolve(options.flush?.()).finally(() => exit(1))
      return
    }
    void shutdown(signal)
  }
  for (const signal of signals) process.on(signal, onSignal)

  return {
    shutdown,
    dispose() {
      for (const signal of signals) process.off(signal, onSignal)
    },
  }
}

import { AsyncLocalStorage } from 'node:async_hooks'
import { ROOT_CONTEXT, type Context, type ContextManager } from '@opentelemetry/api'

/**
 * An OpenTelemetry ContextManager on AsyncLocalStorage, so the active span follows async calls
 * (Fastify hooks, awaits, timers). @opentelemetry/context-async-hooks is not a dependency and this
 * is all of it that we need.
 */
export class AsyncLocalStorageContextManager implements ContextManager {
  #storage = new AsyncLocalStorage<Context>()

  active(): Context {
    return this.#storage.getStore() ?? ROOT_CONTEXT
  }

  with<A extends unknown[], F extends (...args: A) => ReturnType<F>>(context: Context, fn: F, thisArg?: ThisParameterType<F>, ...args: A): ReturnType<F> {
    const cb = thisArg === undefined ? fn : fn.bind(thisArg)
    return this.#storage.run(context, cb, ...args)
  }

  bind<T>(context: Context, target: T): T {
    if (typeof target !== 'function') return target
    const fn = target as (...args: unknown[]) => unknown
    const run = (...args: unknown[]): unknown => this.#storage.run(context, () => fn(...args))
    return run as T
  }

  enable(): this {
    return this
  }

  disable(): this {
    this.#storage.disable()
    this.#storage = new AsyncLocalStorage<Context>()
    return this
  }
}

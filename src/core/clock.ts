/** Milliseconds since the epoch; injected into stores and engines so tests can use fake time. */
export type Clock = () => number

/** The real wall clock. */
export const systemClock: Clock = () => Date.now()

/**
 * Resolves after `ms`, or rejects with `signal.reason` when `signal` aborts first.
 *
 * @example await delay(50, AbortSignal.timeout(1000))
 */
export function delay(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted === true) {
      reject(signal.reason as Error)
      return
    }
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort)
      resolve()
    }, ms)
    const onAbort = (): void => {
      clearTimeout(timer)
      reject(signal?.reason as Error)
    }
    signal?.addEventListener('abort', onAbort, { once: true })
  })
}

// autocannon ships no types and @types/autocannon is not a dependency; this declares only
// the part of its programmatic API the benchmark uses, so a wrong field name fails tsc.
declare module 'autocannon' {
  import type { EventEmitter } from 'node:events'

  interface AutocannonOptions {
    url: string
    connections?: number
    /** Seconds. */
    duration?: number
    pipelining?: number
    /** Seconds to wait for one response before counting a timeout. */
    timeout?: number
    method?: string
    headers?: Record<string, string>
    title?: string
  }

  interface Histogram {
    average: number
    mean: number
    stddev: number
    min: number
    max: number
    total: number
    p50: number
    p90: number
    p97_5: number
    p99: number
  }

  interface AutocannonResult {
    title?: string
    url: string
    connections: number
    /** Seconds actually run. */
    duration: number
    errors: number
    timeouts: number
    mismatches: number
    non2xx: number
    resets: number
    '2xx': number
    statusCodeStats: Record<string, { count: number }>
    latency: Histogram
    requests: Histogram & { sent: number }
    throughput: Histogram
  }

  interface Instance extends EventEmitter, PromiseLike<AutocannonResult> {
    stop(): void
  }

  function autocannon(options: AutocannonOptions): Instance
  export default autocannon
  export type { AutocannonOptions, AutocannonResult, Instance }
}

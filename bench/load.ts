/**
 * One bounded autocannon run, reduced to the numbers the report needs. autocannon runs in
 * this (the runner's) process; servers are separate processes, so on the 2-core machine the
 * load generator and the server each get roughly one core.
 */
import autocannon, { type AutocannonResult } from 'autocannon'

/** Parameters of one load run. */
export interface LoadOptions {
  url: string
  connections: number
  durationS: number
  /** Headers sent with every request. */
  headers?: Readonly<Record<string, string>> | undefined
}

/** What one run measured. A run is `ok` only when every request got a 2xx in time. */
export interface RunMeasurement {
  /** Mean of autocannon's per-second request samples. */
  reqPerSec: number
  /** Completed responses divided by the seconds actually run (cross-check of the above). */
  reqPerSecTotal: number
  /** Latencies in ms (autocannon records whole milliseconds). */
  latencyP50Ms: number
  latencyP99Ms: number
  latencyMeanMs: number
  requests: number
  errors: number
  timeouts: number
  non2xx: number
  statusCodes: Record<string, number>
  ok: boolean
}

/**
 * Runs autocannon against `url` for `durationS` seconds. The run is also bounded by a
 * watchdog (duration + 15 s) so a wedged server cannot hang the benchmark; a run stopped
 * that way counts as failed.
 */
export async function measure(options: LoadOptions): Promise<RunMeasurement> {
  const instance = autocannon({ url: options.url, connections: options.connections, duration: options.durationS, pipelining: 1, timeout: 5, ...(options.headers === undefined ? {} : { headers: { ...options.headers } }) })
  const watchdog = { fired: false }
  const timer = setTimeout(
    () => {
      watchdog.fired = true
      instance.stop()
    },
    (options.durationS + 15) * 1000,
  )
  let result: AutocannonResult
  try {
    result = await instance
  } finally {
    clearTimeout(timer)
  }
  const statusCodes: Record<string, number> = {}
  for (const [code, stat] of Object.entries(result.statusCodeStats)) statusCodes[code] = stat.count
  const errors = result.errors + (watchdog.fired ? 1 : 0)
  return {
    reqPerSec: result.requests.average,
    reqPerSecTotal: result.duration > 0 ? result.requests.total / result.duration : 0,
    latencyP50Ms: result.latency.p50,
    latencyP99Ms: result.latency.p99,
    latencyMeanMs: result.latency.average,
    requests: result.requests.total,
    errors,
    timeouts: result.timeouts,
    non2xx: result.non2xx,
    statusCodes,
    ok: errors === 0 && result.timeouts === 0 && result.non2xx === 0 && result.requests.total > 0,
  }
}

import { constants, monitorEventLoopDelay, performance, PerformanceObserver, type EventLoopUtilization, type PerformanceEntry } from 'node:perf_hooks'
import { Gauge, Histogram, type OpenMetricsContentType, type Registry } from 'prom-client'

const GC_KINDS: Readonly<Record<number, string>> = {
  [constants.NODE_PERFORMANCE_GC_MAJOR]: 'major',
  [constants.NODE_PERFORMANCE_GC_MINOR]: 'minor',
  [constants.NODE_PERFORMANCE_GC_INCREMENTAL]: 'incremental',
  [constants.NODE_PERFORMANCE_GC_WEAKCB]: 'weakcb',
}

/** GC pauses are short: 0.1 ms to 1 s. */
const GC_BUCKETS = [0.0001, 0.0005, 0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1]

/**
 * Registers the process and runtime gauges (read at scrape time) and starts the event-loop
 * delay monitor and the GC observer. Returns the function that stops both.
 */
export function registerRuntimeMetrics(registry: Registry<OpenMetricsContentType>, prefix: string, resolutionMs: number, nowMs: () => number): () => void {
  const registers = [registry]
  new Gauge({
    name: `${prefix}memory_usage_bytes`,
    help: 'Process memory by type: resident set, V8 heap used and total, external (C++ objects bound to JS).',
    labelNames: ['type'] as const,
    registers,
    collect() {
      const m = process.memoryUsage()
      this.set({ type: 'rss' }, m.rss)
      this.set({ type: 'heap_used' }, m.heapUsed)
      this.set({ type: 'heap_total' }, m.heapTotal)
      this.set({ type: 'external' }, m.external)
    },
  })

  let lastCpu = process.cpuUsage()
  let lastWallMs = nowMs()
  new Gauge({
    name: `${prefix}cpu_usage_percent`,
    help: 'CPU time (user + system) used by the process since the previous scrape, as a percentage of wall time (can exceed 100 on several cores).',
    registers,
    collect() {
      const cpu = process.cpuUsage()
      const wallMs = nowMs()
      const usedMs = (cpu.user - lastCpu.user + cpu.system - lastCpu.system) / 1000
      const elapsedMs = wallMs - lastWallMs
      lastCpu = cpu
      lastWallMs = wallMs
      if (elapsedMs > 0) this.set((usedMs / elapsedMs) * 100)
    },
  })

  const delay = monitorEventLoopDelay({ resolution: resolutionMs })
  delay.enable()
  // The histogram is read by three gauges; it is reset once per scrape, by the last of them.
  const delayGauge = (stat: 'p50' | 'p99' | 'max', help: string, read: () => number, reset: boolean): void => {
    new Gauge({
      name: `${prefix}event_loop_delay_${stat}_seconds`,
      help,
      registers,
      collect() {
        const ns = read()
        // An empty histogram reports its initial extreme values; report 0 until a sample exists.
        this.set(delay.count > 0 && Number.isFinite(ns) ? ns / 1e9 : 0)
        if (reset) delay.reset()
      },
    })
  }
  delayGauge('p50', 'Median event-loop delay since the previous scrape.', () => delay.percentile(50), false)
  delayGauge('p99', '99th percentile event-loop delay since the previous scrape.', () => delay.percentile(99), false)
  delayGauge('max', 'Longest event-loop delay since the previous scrape.', () => delay.max, true)

  let lastElu: EventLoopUtilization = performance.eventLoopUtilization()
  new Gauge({
    name: `${prefix}event_loop_utilization_ratio`,
    help: 'Share of time the event loop was busy since the previous scrape (0 to 1).',
    registers,
    collect() {
      const current = performance.eventLoopUtilization()
      this.set(performance.eventLoopUtilization(current, lastElu).utilization)
      lastElu = current
    },
  })

  const gc = new Histogram({
    name: `${prefix}gc_duration_seconds`,
    help: 'Garbage-collection pauses by kind (major, minor, incremental, weakcb).',
    labelNames: ['kind'] as const,
    buckets: GC_BUCKETS,
    registers,
  })
  const observer = new PerformanceObserver((list) => {
    for (const entry of list.getEntries()) {
      const detail = (entry as PerformanceEntry & { detail?: unknown }).detail as { kind?: number } | null | undefined
      const kind = (detail?.kind === undefined ? undefined : GC_KINDS[detail.kind]) ?? 'other'
      gc.observe({ kind }, entry.duration / 1000)
    }
  })
  observer.observe({ entryTypes: ['gc'] })

  return () => {
    delay.disable()
    observer.disconnect()
  }
}

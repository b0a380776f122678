/** One bucket of a trend: its start (epoch ms) and its event count. */
export interface TrendBucket {
  start: number
  count: number
}

/**
 * Counts events in fixed time buckets over a bounded window (the last `length` buckets of
 * `bucketMs`), in two small arrays: memory is constant whatever the traffic.
 */
export class CountRing {
  readonly #bucketMs: number
  readonly #counts: Float64Array
  readonly #stamps: Float64Array

  constructor(bucketMs: number, length: number) {
    this.#bucketMs = bucketMs
    this.#counts = new Float64Array(length)
    this.#stamps = new Float64Array(length).fill(-1)
  }

  add(nowMs: number, n = 1): void {
    const bucket = Math.floor(nowMs / this.#bucketMs)
    const slot = bucket % this.#counts.length
    if (this.#stamps[slot] !== bucket) {
      this.#stamps[slot] = bucket
      this.#counts[slot] = 0
    }
    this.#counts[slot] = (this.#counts[slot] ?? 0) + n
  }

  /** Count of the bucket `ago` buckets before the current one (0 = current). */
  at(nowMs: number, ago: number): number {
    if (ago < 0 || ago >= this.#counts.length) return 0
    const bucket = Math.floor(nowMs / this.#bucketMs) - ago
    const slot = bucket % this.#counts.length
    return this.#stamps[slot] === bucket ? (this.#counts[slot] ?? 0) : 0
  }

  /** Sum over the current bucket and the `buckets - 1` before it. */
  sum(nowMs: number, buckets: number): number {
    let total = 0
    for (let i = 0; i < Math.min(buckets, this.#counts.length); i++) total += this.at(nowMs, i)
    return total
  }

  /** Every bucket of the window, oldest first, empty ones included. */
  series(nowMs: number): TrendBucket[] {
    const current = Math.floor(nowMs / this.#bucketMs)
    const out: TrendBucket[] = []
    for (let ago = this.#counts.length - 1; ago >= 0; ago--) out.push({ start: (current - ago) * this.#bucketMs, count: this.at(nowMs, ago) })
    return out
  }
}

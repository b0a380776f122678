import { randomFillSync } from 'node:crypto'

// Hand-written rather than `uuid`'s v7: that fetches fresh random bytes on every call, which
// was the second largest per-request cost of the stack (docs/benchmarks.md). Here random
// bytes come from a pool refilled 409 IDs at a time, and hex comes from a lookup table.
const BYTES_PER_ID = 10
const POOL = Buffer.allocUnsafe(BYTES_PER_ID * 409)
let offset = POOL.length
const HEX: readonly string[] = Array.from({ length: 256 }, (_, i) => i.toString(16).padStart(2, '0'))

function hex(byte: number): string {
  return HEX[byte] as string
}

/**
 * A UUID version 7 (RFC 9562 §5.7): 48 bits of Unix time in milliseconds, then 74 random
 * bits, so IDs sort by creation time to the millisecond.
 *
 * @example uuidv7() // '019ab0c2-5e1f-7a3c-9d41-6be2f0c81a37'
 */
export function uuidv7(now: number = Date.now()): string {
  if (offset + BYTES_PER_ID > POOL.length) {
    randomFillSync(POOL)
    offset = 0
  }
  const o = offset
  offset += BYTES_PER_ID
  const high = Math.floor(now / 0x1_0000_0000) & 0xffff
  const low = now >>> 0
  const p = POOL
  return (
    hex(high >>> 8) +
    hex(high & 0xff) +
    hex(low >>> 24) +
    hex((low >>> 16) & 0xff) +
    '-' +
    hex((low >>> 8) & 0xff) +
    hex(low & 0xff) +
    '-' +
    hex(0x70 | ((p[o] as number) & 0x0f)) +
    hex(p[o + 1] as number) +
    '-' +
    hex(0x80 | ((p[o + 2] as number) & 0x3f)) +
    hex(p[o + 3] as number) +
    '-' +
    hex(p[o + 4] as number) +
    hex(p[o + 5] as number) +
    hex(p[o + 6] as number) +
    hex(p[o + 7] as number) +
    hex(p[o + 8] as number) +
    hex(p[o + 9] as number)
  )
}

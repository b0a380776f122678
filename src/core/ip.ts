import ipaddr from 'ipaddr.js'

type Address = ipaddr.IPv4 | ipaddr.IPv6

/**
 * Parses an IP address, turning IPv4-mapped IPv6 (`::ffff:1.2.3.4`) into plain IPv4 and
 * dropping an IPv6 zone (`fe80::1%eth0`). Returns undefined for anything that is not an IP.
 */
function parseAddress(ip: string): Address | undefined {
  const zone = ip.indexOf('%')
  const text = zone === -1 ? ip : ip.slice(0, zone)
  if (!ipaddr.isValid(text)) return undefined
  const address = ipaddr.parse(text)
  if (address.kind() === 'ipv6' && (address as ipaddr.IPv6).isIPv4MappedAddress()) return (address as ipaddr.IPv6).toIPv4Address()
  return address
}

/**
 * The canonical text of an IP address (IPv4-mapped IPv6 as IPv4, IPv6 compressed and lower
 * case), or undefined when `ip` is not an address.
 *
 * @example normalizeIp('::FFFF:192.0.2.1') // '192.0.2.1'
 */
export function normalizeIp(ip: string): string | undefined {
  return parseAddress(ip)?.toString()
}

/** How many leading bits of a client address identify one client. */
export interface IpGrouping {
  /** Default 32: every IPv4 address is its own client. */
  readonly ipv4PrefixLength: number
  /** Default 64: one IPv6 /64 is one client (an ISP hands a whole /64 to one subscriber). */
  readonly ipv6PrefixLength: number
}

const DOTTED = /^\d{1,3}\.\d{1,3}\.\d{1,3}\.\d{1,3}$/

/**
 * The identity of the client behind `ip` for limits and blocks: the address itself, or its
 * network when the grouping masks it (`2001:db8:1:2::/64`). Unparseable input is returned
 * as `invalid:<text>` (truncated) so it still gets a bucket of its own.
 *
 * @example clientNetwork('2001:db8:1:2:aaaa::1', { ipv4PrefixLength: 32, ipv6PrefixLength: 64 }) // '2001:db8:1:2::/64'
 */
export function clientNetwork(ip: string, grouping: IpGrouping): string {
  // Fast path: the common case of a plain dotted IPv4 address with no masking.
  if (grouping.ipv4PrefixLength === 32 && DOTTED.test(ip)) return ip
  const address = parseAddress(ip)
  if (address === undefined) return `invalid:${ip.slice(0, 64)}`
  const bits = address.kind() === 'ipv4' ? grouping.ipv4PrefixLength : grouping.ipv6PrefixLength
  const width = address.kind() === 'ipv4' ? 32 : 128
  if (bits >= width) return address.toString()
  const bytes = address.toByteArray()
  for (let i = 0; i < bytes.length; i++) {
    const keep = Math.max(0, Math.min(8, bits - i * 8))
    bytes[i] = (bytes[i] ?? 0) & ((0xff << (8 - keep)) & 0xff)
  }
  return `${ipaddr.fromByteArray(bytes).toString()}/${String(bits)}`
}

/**
 * A compiled set of CIDR ranges and single addresses, IPv4 and IPv6. An IPv4 range also
 * matches the IPv4-mapped IPv6 form of its addresses.
 *
 * @example
 * const office = new IpRangeSet(['203.0.113.0/24', '2001:db8::/32'])
 * office.has('203.0.113.9') // true
 */
export class IpRangeSet {
  readonly #v4: Array<[ipaddr.IPv4, number]> = []
  readonly #v6: Array<[ipaddr.IPv6, number]> = []
  readonly size: number

  /** Throws a TypeError naming the first entry that is not an address or CIDR range. */
  constructor(entries: readonly string[]) {
    for (const entry of entries) {
      const range = parseRange(entry)
      if (range === undefined) throw new TypeError(`${JSON.stringify(entry)} is not an IP address or CIDR range`)
      if (range[0].kind() === 'ipv4') this.#v4.push(range as [ipaddr.IPv4, number])
      else this.#v6.push(range as [ipaddr.IPv6, number])
    }
    this.size = entries.length
  }

  /** True when `ip` falls in one of the ranges; false for anything that is not an address. */
  has(ip: string): boolean {
    if (this.size === 0) return false
    const address = parseAddress(ip)
    if (address === undefined) return false
    if (address.kind() === 'ipv4') {
      for (const range of this.#v4) if ((address as ipaddr.IPv4).match(range)) return true
      return false
    }
    for (const range of this.#v6) if ((address as ipaddr.IPv6).match(range)) return true
    return false
  }
}

/** Checks one allow/deny-list entry: an address or a CIDR range with a sensible prefix length. */
export function isIpRange(entry: string): boolean {
  return parseRange(entry) !== undefined
}

function parseRange(entry: string): [Address, number] | undefined {
  const slash = entry.indexOf('/')
  if (slash === -1) {
    const address = parseAddress(entry)
    return address === undefined ? undefined : [address, address.kind() === 'ipv4' ? 32 : 128]
  }
  const prefix = entry.slice(slash + 1)
  if (!/^\d{1,3}$/.test(prefix)) return undefined
  const address = parseAddress(entry.slice(0, slash))
  if (address === undefined) return undefined
  let bits = Number(prefix)
  // `::ffff:10.0.0.0/104` arrives here as IPv4; its prefix counts IPv6 bits.
  if (address.kind() === 'ipv4' && entry.includes(':')) bits -= 96
  if (bits < 0 || bits > (address.kind() === 'ipv4' ? 32 : 128)) return undefined
  return [address, bits]
}

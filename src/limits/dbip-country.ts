import { readFile } from 'node:fs/promises'
import { createRequire } from 'node:module'
import { dirname, join } from 'node:path'
import { BackbeatError } from '../core/index.ts'
import type { CountryResolver } from './country.ts'

/** The npm package holding DB-IP's "IP to Country Lite" database (CC BY 4.0). */
export const DBIP_COUNTRY_PACKAGE = '@ip-location-db/dbip-country'

export interface DbIpCountryResolverOptions {
  /**
   * Directory holding `dbip-country-ipv4-num.csv` and `dbip-country-ipv6-num.csv`; by default
   * the installed `@ip-location-db/dbip-country` package.
   */
  directory?: string
  /** Load the IPv6 table too (default true; about 12 MB of memory and 0.5 s at start-up). */
  ipv6?: boolean
}

/** A country resolver over the DB-IP table, with what it loaded. */
export interface DbIpCountryResolver extends CountryResolver {
  /** Ranges loaded per family. */
  readonly ranges: { readonly ipv4: number; readonly ipv6: number }
  /** The data package's version (its date: 2.3.YYYYMMDDHH), or `unknown` for a directory. */
  readonly version: string
}

/**
 * Loads DB-IP's free "IP to Country Lite" database (from the npm package
 * `@ip-location-db/dbip-country`, installed next to Backbeat; nothing is downloaded at run
 * time) into sorted typed arrays, and returns a resolver that answers by binary search in
 * well under a microsecond: an ISO 3166-1 alpha-2 code, or undefined for addresses the
 * table does not cover (private and reserved ranges, gaps).
 *
 * The data is licensed CC BY 4.0: an application that uses it must credit DB-IP.com
 * (e.g. `<a href="https://db-ip.com">IP Geolocation by DB-IP</a>` on pages that show or use
 * its results). See docs/decisions.md.
 *
 * @example
 * const countryResolver = await createDbIpCountryResolver()
 * countryResolver('8.8.8.8') // 'US'
 */
export async function createDbIpCountryResolver(options: DbIpCountryResolverOptions = {}): Promise<DbIpCountryResolver> {
  const { directory, version } = options.directory === undefined ? locatePackage() : { directory: options.directory, version: 'unknown' }
  const v4 = parseTable(await readTable(join(directory, 'dbip-country-ipv4-num.csv')), 1)
  const v6 = options.ipv6 === false ? undefined : parseTable(await readTable(join(directory, 'dbip-country-ipv6-num.csv')), 4)

  const resolve = (ip: string): string | undefined => {
    const v4number = ipv4Number(ip)
    if (v4number !== undefined) return lookup(v4, [v4number])
    if (v6 === undefined || !ip.includes(':')) return undefined
    const h = ipv6Hextets(ip)
    if (h === undefined) return undefined
    // IPv4-mapped (::ffff:a.b.c.d): the IPv4 table answers.
    if (h[0] === 0 && h[1] === 0 && h[2] === 0 && h[3] === 0 && h[4] === 0 && h[5] === 0xffff) return lookup(v4, [((h[6] as number) * 65536 + (h[7] as number)) >>> 0])
    return lookup(v6, [
      ((h[0] as number) * 65536 + (h[1] as number)) >>> 0,
      ((h[2] as number) * 65536 + (h[3] as number)) >>> 0,
      ((h[4] as number) * 65536 + (h[5] as number)) >>> 0,
      ((h[6] as number) * 65536 + (h[7] as number)) >>> 0,
    ])
  }
  return Object.assign(resolve, { ranges: { ipv4: v4.codes.length, ipv6: v6 === undefined ? 0 : v6.codes.length }, version })
}

function locatePackage(): { directory: string; version: string } {
  const require = createRequire(import.meta.url)
  let manifest: string
  try {
    manifest = require.resolve(`${DBIP_COUNTRY_PACKAGE}/package.json`)
  } catch {
    throw new BackbeatError('ERR_CONFIG_INVALID', {
      params: {
        issues: `\n  - limits.countries: country rules need a country database; install it with \`npm install ${DBIP_COUNTRY_PACKAGE}\` (DB-IP Lite, CC BY 4.0: credit DB-IP.com) or pass your own countryResolver`,
      },
    })
  }
  const { version } = require(manifest) as { version?: string }
  return { directory: dirname(manifest), version: version ?? 'unknown' }
}

async function readTable(path: string): Promise<string> {
  try {
    return await readFile(path, 'latin1')
  } catch (err) {
    throw new BackbeatError('ERR_CONFIG_INVALID', { params: { issues: `\n  - limits.countries: cannot read the country database ${path}: ${(err as Error).message}` }, cause: err })
  }
}

/** Two ASCII letters packed in 16 bits. */
function packCode(text: string, at: number): number {
  return (text.charCodeAt(at) << 8) | text.charCodeAt(at + 1)
}

const CODE_CACHE = new Map<number, string>()
function unpackCode(packed: number): string {
  let code = CODE_CACHE.get(packed)
  if (code === undefined) {
    code = String.fromCharCode(packed >> 8, packed & 0xff)
    CODE_CACHE.set(packed, code)
  }
  return code
}

/**
 * One family's ranges, sorted by start. Bounds are `width` 32-bit words each, most
 * significant first (1 for IPv4, 4 for IPv6), so lookups need no BigInt.
 */
interface Table {
  width: 1 | 4
  starts: Uint32Array
  ends: Uint32Array
  codes: Uint16Array
}

const MASK32 = 0xffffffffn

function storeBound(into: Uint32Array, at: number, text: string, width: 1 | 4): void {
  if (width === 1) {
    into[at] = Number(text)
    return
  }
  const value = BigInt(text)
  into[at] = Number((value >> 96n) & MASK32)
  into[at + 1] = Number((value >> 64n) & MASK32)
  into[at + 2] = Number((value >> 32n) & MASK32)
  into[at + 3] = Number(value & MASK32)
}

/** Lines `start,end,CC` with decimal numbers (32-bit for width 1, 128-bit for width 4), sorted by start. */
function parseTable(text: string, width: 1 | 4): Table {
  const capacity = countLines(text)
  const starts = new Uint32Array(capacity * width)
  const ends = new Uint32Array(capacity * width)
  const codes = new Uint16Array(capacity)
  let n = 0
  let pos = 0
  while (pos < text.length) {
    let eol = text.indexOf('\n', pos)
    if (eol === -1) eol = text.length
    const c1 = text.indexOf(',', pos)
    const c2 = text.indexOf(',', c1 + 1)
    if (c1 > pos && c2 > c1 && c2 < eol && eol - c2 > 2) {
      storeBound(starts, n * width, text.slice(pos, c1), width)
      storeBound(ends, n * width, text.slice(c1 + 1, c2), width)
      codes[n] = packCode(text, c2 + 1)
      n++
    }
    pos = eol + 1
  }
  return { width, starts: starts.subarray(0, n * width), ends: ends.subarray(0, n * width), codes: codes.subarray(0, n) }
}

function countLines(text: string): number {
  let n = 1
  for (let i = text.indexOf('\n'); i !== -1; i = text.indexOf('\n', i + 1)) n++
  return n
}

/** Compares the bound at row `row` of `words` with `value`: negative, 0 or positive. */
function compareBound(words: Uint32Array, row: number, value: readonly number[], width: number): number {
  for (let i = 0; i < width; i++) {
    const d = (words[row * width + i] as number) - (value[i] as number)
    if (d !== 0) return d
  }
  return 0
}

/** The code of the last range starting at or before `value`, if it also ends at or after it. */
function lookup(t: Table, value: readonly number[]): string | undefined {
  let low = 0
  let high = t.codes.length - 1
  let found = -1
  while (low <= high) {
    const mid = (low + high) >>> 1
    if (compareBound(t.starts, mid, value, t.width) <= 0) {
      found = mid
      low = mid + 1
    } else high = mid - 1
  }
  if (found === -1 || compareBound(t.ends, found, value, t.width) < 0) return undefined
  return unpackCode(t.codes[found] as number)
}

/** A dotted IPv4 address as an unsigned 32-bit number, or undefined. */
function ipv4Number(ip: string): number | undefined {
  let value = 0
  let octet = -1
  let dots = 0
  for (let i = 0; i < ip.length; i++) {
    const c = ip.charCodeAt(i)
    if (c === 46) {
      if (octet < 0 || dots === 3) return undefined
      value = value * 256 + octet
      octet = -1
      dots++
    } else if (c >= 48 && c <= 57) {
      octet = octet < 0 ? c - 48 : octet * 10 + (c - 48)
      if (octet > 255) return undefined
    } else return undefined
  }
  if (dots !== 3 || octet < 0) return undefined
  return value * 256 + octet
}

/**
 * The eight 16-bit groups of an IPv6 address (`::` compression, a trailing dotted IPv4 part
 * and a `%zone` allowed), or undefined when it is not one. Hand-written because it runs per
 * request: ipaddr.js' parser is several times slower.
 */
function ipv6Hextets(input: string): number[] | undefined {
  const zone = input.indexOf('%')
  const ip = zone === -1 ? input : input.slice(0, zone)
  const gap = ip.indexOf('::')
  if (gap !== -1 && ip.indexOf('::', gap + 1) !== -1) return undefined
  const head = gap === -1 ? ip : ip.slice(0, gap)
  const tail = gap === -1 ? '' : ip.slice(gap + 2)
  const left = head === '' ? [] : head.split(':')
  const right = tail === '' ? [] : tail.split(':')
  const groups: number[] = []
  const parts = [...left, ...right]
  const last = parts[parts.length - 1]
  let v4: number | undefined
  if (last !== undefined && last.includes('.')) {
    v4 = ipv4Number(last)
    if (v4 === undefined) return undefined
    if (right.length > 0) right.pop()
    else left.pop()
  }
  const parse = (list: string[]): number[] | undefined => {
    const out: number[] = []
    for (const part of list) {
      if (part.length === 0 || part.length > 4) return undefined
      let value = 0
      for (let i = 0; i < part.length; i++) {
        const c = part.charCodeAt(i)
        const digit = c >= 48 && c <= 57 ? c - 48 : c >= 97 && c <= 102 ? c - 87 : c >= 65 && c <= 70 ? c - 55 : -1
        if (digit < 0) return undefined
        value = value * 16 + digit
      }
      out.push(value)
    }
    return out
  }
  const l = parse(left)
  const r = parse(right)
  if (l === undefined || r === undefined) return undefined
  const explicit = l.length + r.length + (v4 === undefined ? 0 : 2)
  if (gap === -1 ? explicit !== 8 : explicit > 7) return undefined
  groups.push(...l)
  for (let i = explicit; i < 8; i++) groups.push(0)
  groups.push(...r)
  if (v4 !== undefined) groups.push(Math.floor(v4 / 65536), v4 % 65536)
  return groups
}

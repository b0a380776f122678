import assert from 'node:assert/strict'
import { before, describe, it } from 'node:test'
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { createRequire } from 'node:module'
import { tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import { createDbIpCountryResolver, DBIP_COUNTRY_PACKAGE, type DbIpCountryResolver } from './index.ts'

const dataDir = dirname(createRequire(import.meta.url).resolve(`${DBIP_COUNTRY_PACKAGE}/package.json`))

/** Every `step`-th row of one of the package's text tables (`a.b.c.d,a.b.c.d,CC` or the IPv6 form). */
function sampleRows(file: string, step: number): Array<[string, string, string]> {
  const rows = readFileSync(join(dataDir, file), 'latin1').split('\n').filter((l) => l !== '')
  const out: Array<[string, string, string]> = []
  for (let i = 0; i < rows.length; i += step) out.push((rows[i] as string).split(',') as [string, string, string])
  return out
}

describe('createDbIpCountryResolver (DB-IP Lite from the npm package)', () => {
  let resolve: DbIpCountryResolver

  before(async () => {
    resolve = await createDbIpCountryResolver()
  })

  it('loads both tables and reports the data version', () => {
    assert.ok(resolve.ranges.ipv4 > 100_000, String(resolve.ranges.ipv4))
    assert.ok(resolve.ranges.ipv6 > 100_000, String(resolve.ranges.ipv6))
    assert.match(resolve.version, /^2\.3\.\d{10}$/)
  })

  it('agrees with the package\'s own text tables at the first and last address of sampled ranges', () => {
    // The resolver reads the numeric tables; the text tables are an independent rendering.
    for (const [file, step] of [['dbip-country-ipv4.csv', 997], ['dbip-country-ipv6.csv', 991]] as const) {
      const rows = sampleRows(file, step)
      assert.ok(rows.length > 300)
      for (const [first, last, country] of rows) {
        assert.equal(resolve(first), country, `${first} (${file})`)
        assert.equal(resolve(last), country, `${last} (${file})`)
      }
    }
  })

  it('answers IPv4-mapped IPv6, zones and uppercase hex like their plain forms', () => {
    assert.equal(resolve('::ffff:81.2.69.142'), resolve('81.2.69.142'))
    assert.equal(resolve('2A00:1450:4001:80B::200E'), resolve('2a00:1450:4001:80b::200e'))
    assert.equal(resolve('2a00:1450:4001:80b::200e%eth0'), resolve('2a00:1450:4001:80b::200e'))
  })

  it('answers undefined for private, loopback and reserved ranges and for what is not an address', () => {
    for (const ip of ['10.0.0.1', '127.0.0.1', '192.168.1.1', '::1', 'fe80::1', 'fd00::1', '', 'garbage', '1.2.3', '1.2.3.4.5', '256.1.1.1', '1::2::3', '12345::1', 'g::1', '1:2:3:4:5:6:7:8:9']) {
      assert.equal(resolve(ip), undefined, JSON.stringify(ip))
    }
  })

  it('fails start-up with ERR_CONFIG_INVALID naming the file when the table cannot be read', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'dbip-'))
    try {
      writeFileSync(join(dir, 'dbip-country-ipv4-num.csv'), '16777216,16777471,AU\n')
      const small = await createDbIpCountryResolver({ directory: dir, ipv6: false })
      assert.deepEqual([small('1.0.0.7'), small('2001::1'), small.ranges.ipv6], ['AU', undefined, 0])
      await assert.rejects(createDbIpCountryResolver({ directory: dir }), (err: unknown) => {
        assert.equal((err as { code?: string }).code, 'ERR_CONFIG_INVALID')
        assert.match((err as Error).message, /dbip-country-ipv6-num\.csv/)
        return true
      })
    } finally {
      rmSync(dir, { recursive: true, force: true })
    }
  })
})

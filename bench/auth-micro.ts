/**
 * JWT verification cost, in process (`npm run bench:auth-micro`):
 *
 *  - cold: `JwtVerifier.verify` with its cache off, against `jose.jwtVerify` called directly
 *    with the same imported CryptoKey and options (target: within 1.1x);
 *  - hot: the same token again through the verified-token cache.
 *
 * Per algorithm (HS256, RS256, ES256, EdDSA); interleaved, rotated rounds; medians.
 */
import { parseArgs } from 'node:util'
import { exportSPKI, generateKeyPair, jwtVerify, SignJWT, type CryptoKey } from 'jose'
import { JwtKeySet, JwtVerifier } from 'backbeat/auth'
import { formatInt, formatTable, median, rotate } from './stats.ts'

const TARGET = 1.1
const ISSUER = 'https://api.backbeat.test'
const AUDIENCE = 'music-api'

const { values } = parseArgs({ options: { rounds: { type: 'string', default: '7' }, duration: { type: 'string', default: '1' }, markdown: { type: 'boolean', default: false } } })
const rounds = Number(values.rounds)
const durationMs = Number(values.duration) * 1000

interface Case {
  name: string
  alg: string
  run: () => Promise<unknown>
}

async function perSecond(c: Case): Promise<number> {
  let n = 0
  const start = performance.now()
  const end = start + durationMs
  while (performance.now() < end) {
    // Batches keep the clock reads out of the measurement.
    for (let i = 0; i < 50; i++) await c.run()
    n += 50
  }
  return n / ((performance.now() - start) / 1000)
}

const cases: Case[] = []
const secret = new TextEncoder().encode('a-benchmark-secret-of-at-least-32-bytes!')
for (const alg of ['HS256', 'RS256', 'ES256', 'EdDSA'] as const) {
  let signKey: CryptoKey | Uint8Array
  const keys = new JwtKeySet()
  if (alg === 'HS256') {
    signKey = secret
    await keys.addSecret('k', 'HS256', secret)
  } else {
    const pair = await generateKeyPair(alg, { extractable: true })
    signKey = pair.privateKey
    await keys.addPem('k', alg, await exportSPKI(pair.publicKey))
  }
  const verifyKey = keys.find('k')?.key
  if (verifyKey === undefined) throw new Error('key missing')
  const exp = Math.floor(Date.now() / 1000) + 3600
  const token = await new SignJWT({ sub: 'user-1', scope: 'playlist:write' }).setProtectedHeader({ alg, kid: 'k' }).setIssuer(ISSUER).setAudience(AUDIENCE).setIssuedAt().setExpirationTime(exp).sign(signKey)
  const cold = new JwtVerifier({ keys, issuer: ISSUER, audience: AUDIENCE, cacheSize: 0 })
  const hot = new JwtVerifier({ keys, issuer: ISSUER, audience: AUDIENCE })
  const options = { algorithms: [alg], issuer: ISSUER, audience: AUDIENCE, clockTolerance: 30, requiredClaims: ['exp', 'iat', 'iss', 'aud'] }
  cases.push(
    { name: `jose.jwtVerify ${alg}`, alg, run: () => jwtVerify(token, verifyKey, options) },
    { name: `JwtVerifier cold ${alg}`, alg, run: () => cold.verify(token) },
    { name: `JwtVerifier hot ${alg}`, alg, run: () => hot.verify(token) },
  )
}

for (const c of cases) await perSecond(c) // warm-up
const samples = new Map<string, number[]>(cases.map((c) => [c.name, []]))
for (let r = 0; r < rounds; r++) for (const c of rotate(cases, r)) samples.get(c.name)?.push(await perSecond(c))

const rows: string[][] = []
let pass = true
for (const c of cases) {
  const mine = median(samples.get(c.name) ?? [])
  const jose = median(samples.get(`jose.jwtVerify ${c.alg}`) ?? [])
  const ratio = jose / mine
  if (c.name.includes('cold') && !(ratio <= TARGET)) pass = false
  rows.push([c.name, formatInt(mine), `${(1e6 / mine).toFixed(1)} µs`, `${ratio.toFixed(2)}x`])
}
process.stdout.write(`JWT verification, ${String(rounds)} rounds x ${values.duration} s, node ${process.version}\n`)
process.stdout.write(`${formatTable(['case', 'verifications/s', 'per verification', 'time vs jose'], rows, values.markdown)}\n`)
process.stdout.write(`Target: cold verification within ${String(TARGET)}x of jose.jwtVerify with an imported key: ${pass ? 'PASS' : 'FAIL'}\n`)
process.exit(pass ? 0 : 1)

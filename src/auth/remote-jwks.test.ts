import assert from 'node:assert/strict'
import { createServer, type IncomingHttpHeaders, type IncomingMessage, type Server, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import { after, before, beforeEach, describe, it } from 'node:test'
import { exportJWK, generateKeyPair, importJWK, SignJWT, type CryptoKey, type JWK } from 'jose'
import type { Logger } from 'pino'
import { BackbeatError, ConfigError } from '../core/index.ts'
import { JwtKeySet } from './jwt-keys.ts'
import { JwtVerifier } from './jwt-verifier.ts'
import { RemoteJwks, RemoteJwksError, type RemoteJwksLogger, type RemoteJwksOptions } from './remote-jwks.ts'

const ISSUER = 'https://idp.backbeat.test'
const AUDIENCE = 'music-api'
const NOW_S = 1_800_000_000
const SECRET = 'a-local-secret-of-at-least-32-bytes-long'

type Responder = (req: IncomingMessage, res: ServerResponse) => void

/** A real JWKS endpoint on 127.0.0.1 whose answer each test sets, counting what it is asked. */
interface Endpoint {
  readonly url: string
  hits: number
  headers: IncomingHttpHeaders[]
  respond: Responder
  close(): Promise<void>
}

async function endpoint(): Promise<Endpoint> {
  const state: Endpoint = {
    url: '',
    hits: 0,
    headers: [],
    respond: (_req, res) => res.writeHead(500).end(),
    close: () => Promise.resolve(),
  }
  const server: Server = createServer((req, res) => {
    state.hits++
    state.headers.push(req.headers)
    state.respond(req, res)
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const { port } = server.address() as AddressInfo
  return Object.assign(state, {
    url: `http://127.0.0.1:${String(port)}/.well-known/jwks.json`,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve())
        server.closeAllConnections()
      }),
  })
}

const json =
  (body: unknown, headers: Record<string, string> = {}, delayMs = 0): Responder =>
  (_req, res) => {
    const send = (): void => void res.writeHead(200, { 'content-type': 'application/json', ...headers }).end(typeof body === 'string' ? body : JSON.stringify(body))
    if (delayMs > 0) setTimeout(send, delayMs)
    else send()
  }

/** Never answers: the request stays open until the client gives up. */
const hang: Responder = () => undefined

function recordingLogger(): RemoteJwksLogger & { entries: Array<{ level: string; fields: Record<string, unknown>; message: string }> } {
  const entries: Array<{ level: string; fields: Record<string, unknown>; message: string }> = []
  const at =
    (level: string) =>
    (fields: Record<string, unknown>, message: string): void => {
      entries.push({ level, fields, message })
    }
  return { entries, info: at('info'), warn: at('warn'), error: at('error') }
}

async function rejectsWith(promise: Promise<unknown>, code: string): Promise<void> {
  await assert.rejects(promise, (err: unknown) => {
    assert.ok(err instanceof BackbeatError, `expected a BackbeatError, got ${String(err)}`)
    assert.equal(err.code, code)
    assert.equal(err.status, 401)
    return true
  })
}

interface Pair {
  privateKey: CryptoKey
  publicKey: CryptoKey
}

describe('RemoteJwks', () => {
  let server: Endpoint
  let now: number
  const clock = (): number => now
  let rsa1: Pair, rsa2: Pair, ec1: Pair, ec384: Pair, ed1: Pair
  let rsa1Jwk: JWK, rsa2Jwk: JWK, ec1Jwk: JWK, ed1Jwk: JWK
  const open: RemoteJwks[] = []

  const sign = (key: CryptoKey | Uint8Array, alg: string, kid: string | undefined, claims: Record<string, unknown> = {}): Promise<string> =>
    new SignJWT({ sub: 'partner-user', ...claims })
      .setProtectedHeader({ alg, ...(kid === undefined ? {} : { kid }) })
      .setIssuer(ISSUER)
      .setAudience(AUDIENCE)
      .setIssuedAt(NOW_S - 10)
      .setExpirationTime(NOW_S + 86_400)
      .sign(key)

  const jwksFor = (options: Partial<RemoteJwksOptions> = {}): RemoteJwks => {
    const jwks = new RemoteJwks({ url: server.url, now: clock, ...options })
    open.push(jwks)
    return jwks
  }
  const verifierFor = (jwks: RemoteJwks, cacheSize = 0): JwtVerifier => new JwtVerifier({ keys: jwks.keys, keySource: jwks, issuer: ISSUER, audience: AUDIENCE, now: clock, cacheSize })

  before(async () => {
    server = await endpoint()
    rsa1 = await generateKeyPair('RS256', { extractable: true })
    rsa2 = await generateKeyPair('RS256', { extractable: true })
    ec1 = await generateKeyPair('ES256', { extractable: true })
    ec384 = await generateKeyPair('ES384', { extractable: true })
    ed1 = await generateKeyPair('EdDSA', { crv: 'Ed25519', extractable: true })
    rsa1Jwk = { ...(await exportJWK(rsa1.publicKey)), kid: 'rsa-1', alg: 'RS256', use: 'sig' }
    rsa2Jwk = { ...(await exportJWK(rsa2.publicKey)), kid: 'rsa-2', alg: 'RS256' }
    // No alg: pinned from the curve, which admits exactly one.
    ec1Jwk = { ...(await exportJWK(ec1.publicKey)), kid: 'ec-1' }
    ed1Jwk = { ...(await exportJWK(ed1.publicKey)), kid: 'ed-1' }
  })

  beforeEach(async () => {
    await Promise.all(open.splice(0).map((jwks) => jwks.close()))
    await server.close()
    server = await endpoint()
    now = NOW_S * 1000
  })

  after(async () => {
    await Promise.all(open.splice(0).map((jwks) => jwks.close()))
    await server.close()
  })

  it('loads the keys at start, pinning EC and Ed25519 keys without alg by their curve, and verifies their tokens', async () => {
    server.respond = json({ keys: [rsa1Jwk, ec1Jwk, ed1Jwk] })
    const jwks = jwksFor()
    assert.equal((await jwks.healthCheck(AbortSignal.timeout(1000)))?.status, 'fail', 'nothing loaded yet')
    assert.equal(await jwks.start(), true)
    assert.equal(server.hits, 1)
    assert.match(server.headers[0]?.accept ?? '', /application\/json/)
    assert.deepEqual(jwks.state.kids, ['rsa-1', 'ec-1', 'ed-1'])
    assert.deepEqual([jwks.keys.find('ec-1')?.alg, jwks.keys.find('ed-1')?.alg], ['ES256', 'EdDSA'])

    const verifier = verifierFor(jwks)
    for (const [key, alg, kid] of [
      [rsa1.privateKey, 'RS256', 'rsa-1'],
      [ec1.privateKey, 'ES256', 'ec-1'],
      [ed1.privateKey, 'EdDSA', 'ed-1'],
    ] as const) {
      assert.deepEqual((({ kid: k, alg: a }) => [k, a])(await verifier.verify(await sign(key, alg, kid))), [kid, alg])
    }
    now += 5_000
    assert.deepEqual(await jwks.healthCheck(AbortSignal.timeout(1000)), { status: 'pass', message: '3 keys, fetched 5 s ago' })
    assert.equal(server.hits, 1, 'known kids never cause a fetch')
  })

  it('verifies a token of a newly published kid after one refetch, and not before the cooldown is over', async () => {
    server.respond = json({ keys: [rsa1Jwk] })
    const jwks = jwksFor()
    await jwks.start()
    const verifier = verifierFor(jwks, 100)
    server.respond = json({ keys: [rsa1Jwk, rsa2Jwk] })
    const token = await sign(rsa2.privateKey, 'RS256', 'rsa-2')

    now += 10_000
    await rejectsWith(verifier.verify(token), 'ERR_AUTH_KEY_UNKNOWN')
    assert.equal(server.hits, 1, 'inside the cooldown: no fetch at all')

    now += 21_000
    assert.equal((await verifier.verify(token)).kid, 'rsa-2')
    assert.equal(server.hits, 2)
    assert.equal((await verifier.verify(token)).cached, true)
    assert.equal(server.hits, 2)
  })

  it('drops a key the document no longer lists, even for cached tokens, and keeps unchanged keys (and their cached tokens)', async () => {
    server.respond = json({ keys: [rsa1Jwk, ec1Jwk] })
    const jwks = jwksFor()
    await jwks.start()
    const verifier = verifierFor(jwks, 100)
    const rsaToken = await sign(rsa1.privateKey, 'RS256', 'rsa-1')
    const ecToken = await sign(ec1.privateKey, 'ES256', 'ec-1')
    await verifier.verify(rsaToken)
    await verifier.verify(ecToken)
    assert.equal((await verifier.verify(rsaToken)).cached, true)

    server.respond = json({ keys: [ec1Jwk] })
    now += 600_000
    // The stale set keeps answering while the refresh it triggered runs in the background.
    assert.equal((await verifier.verify(ecToken)).cached, true)
    assert.equal(jwks.state.refreshing, true)
    assert.equal(await jwks.refresh(), true, 'joins the background refresh')
    assert.equal(server.hits, 2)

    await rejectsWith(verifier.verify(rsaToken), 'ERR_AUTH_KEY_UNKNOWN')
    assert.equal(server.hits, 2, 'the unknown kid falls in the cooldown')
    assert.equal((await verifier.verify(ecToken)).cached, true, 'an unchanged JWK keeps its key object')
    assert.deepEqual(jwks.state.kids, ['ec-1'])

    // The same kid given new material: tokens of the old material stop verifying.
    server.respond = json({ keys: [{ ...(await exportJWK(rsa2.publicKey)), kid: 'ec-1', alg: 'RS256' }] })
    now += 30_000
    assert.equal(await jwks.refresh(), true)
    await rejectsWith(verifier.verify(ecToken), 'ERR_AUTH_TOKEN_INVALID')
    assert.equal((await verifier.verify(await sign(rsa2.privateKey, 'RS256', 'ec-1'))).alg, 'RS256')
  })

  it('keeps every cached key working while the endpoint is down, and fails unknown kids fast', async () => {
    server.respond = json({ keys: [rsa1Jwk] })
    const logger = recordingLogger()
    const jwks = jwksFor({ logger })
    await jwks.start()
    const verifier = verifierFor(jwks)
    await server.close()

    now += 601_000
    assert.equal((await verifier.verify(await sign(rsa1.privateKey, 'RS256', 'rsa-1'))).kid, 'rsa-1')
    assert.equal(await jwks.refresh(), false)
    assert.match(jwks.state.lastError ?? '', /ECONNREFUSED/)
    assert.deepEqual(jwks.state.kids, ['rsa-1'], 'a failed fetch removes nothing')
    assert.equal((await verifier.verify(await sign(rsa1.privateKey, 'RS256', 'rsa-1'))).kid, 'rsa-1')
    const health = await jwks.healthCheck(AbortSignal.timeout(1000))
    assert.equal(health?.status, 'warn')
    assert.match(health.message ?? '', /^1 key, fetched 601 s ago; the last refresh failed \(.*ECONNREFUSED/)
    assert.ok(logger.entries.some((e) => e.level === 'warn' && e.message.startsWith('cannot refresh the JWKS')))

    const ghost = await sign(rsa2.privateKey, 'RS256', 'rsa-2')
    const attemptedAt = jwks.state.attemptedAt
    let started = performance.now()
    await rejectsWith(verifier.verify(ghost), 'ERR_AUTH_KEY_UNKNOWN')
    assert.ok(performance.now() - started < 250)
    assert.equal(jwks.state.attemptedAt, attemptedAt, 'in the cooldown: answered without trying')
    now += 30_000
    started = performance.now()
    await rejectsWith(verifier.verify(ghost), 'ERR_AUTH_KEY_UNKNOWN')
    assert.ok(performance.now() - started < 1_000, 'a refused connection fails at once')
    assert.equal(jwks.state.attemptedAt, now, 'that one did try')
  })

  it('gives up on an endpoint that never answers after timeoutMs, then answers from the cooldown', async () => {
    server.respond = json({ keys: [rsa1Jwk] })
    const jwks = jwksFor({ timeoutMs: 300 })
    await jwks.start()
    const verifier = verifierFor(jwks)
    server.respond = hang
    now += 30_000

    const ghost = await sign(rsa2.privateKey, 'RS256', 'rsa-2')
    let started = performance.now()
    await rejectsWith(verifier.verify(ghost), 'ERR_AUTH_KEY_UNKNOWN')
    const waited = performance.now() - started
    assert.ok(waited >= 250 && waited < 2_000, `waited ${String(Math.round(waited))} ms`)
    assert.equal(jwks.state.lastError, 'timed out after 300 ms')
    assert.equal(server.hits, 2)

    started = performance.now()
    await rejectsWith(verifier.verify(ghost), 'ERR_AUTH_KEY_UNKNOWN')
    assert.ok(performance.now() - started < 250, 'no wait for the timeout again')
    assert.equal(server.hits, 2)
    assert.equal((await verifier.verify(await sign(rsa1.privateKey, 'RS256', 'rsa-1'))).kid, 'rsa-1')
  })

  it('bounds a fetch implementation that ignores its signal, and fails start-up clearly when asked to', async () => {
    const stuck = jwksFor({ timeoutMs: 200, fetch: () => new Promise<Response>(() => undefined) })
    const started = performance.now()
    assert.equal(await stuck.start(), false)
    assert.ok(performance.now() - started < 2_000)

    server.respond = hang
    const required = jwksFor({ timeoutMs: 200 })
    await assert.rejects(required.start({ required: true }), (err: unknown) => {
      assert.ok(err instanceof RemoteJwksError)
      assert.equal(err.code, 'ERR_DEPENDENCY_UNAVAILABLE')
      assert.equal(err.message, `cannot load the JWKS from ${server.url}: timed out after 200 ms`)
      return true
    })
    const health = await required.healthCheck(AbortSignal.timeout(1000))
    assert.deepEqual(health, { status: 'fail', message: `no key set loaded yet from ${server.url}: timed out after 200 ms` })
  })

  it('shares one fetch among 100 concurrent unknown-kid tokens, then answers from the cooldown without any', async () => {
    server.respond = json({ keys: [rsa1Jwk] })
    const jwks = jwksFor()
    await jwks.start()
    const verifier = verifierFor(jwks)
    server.respond = json({ keys: [rsa1Jwk, rsa2Jwk] }, {}, 50)
    now += 30_000

    const tokens = await Promise.all(Array.from({ length: 100 }, (_, i) => (i % 2 === 0 ? sign(rsa2.privateKey, 'RS256', 'rsa-2', { jti: String(i) }) : sign(rsa2.privateKey, 'RS256', `ghost-${String(i)}`))))
    const results = await Promise.allSettled(tokens.map((t) => verifier.verify(t)))
    assert.equal(server.hits, 2, 'one fetch for all of them')
    assert.equal(results.filter((r) => r.status === 'fulfilled').length, 50)
    for (const r of results) if (r.status === 'rejected') assert.equal((r.reason as BackbeatError).code, 'ERR_AUTH_KEY_UNKNOWN')

    const again = await Promise.allSettled(tokens.filter((_, i) => i % 2 === 1).map((t) => verifier.verify(t)))
    assert.ok(again.every((r) => r.status === 'rejected'))
    assert.equal(server.hits, 2, 'the cooldown answers without a fetch')
  })

  it('applies a document with no usable key (the issuer said so), and reports it in health and logs', async () => {
    server.respond = json({ keys: [rsa1Jwk] })
    const logger = recordingLogger()
    const jwks = jwksFor({ logger })
    await jwks.start()
    server.respond = json({ keys: [] })
    now += 30_000
    assert.equal(await jwks.refresh(), true)
    assert.deepEqual(jwks.state.kids, [])
    assert.equal(jwks.keys.size, 0)
    await rejectsWith(verifierFor(jwks).verify(await sign(rsa1.privateKey, 'RS256', 'rsa-1')), 'ERR_AUTH_KEY_UNKNOWN')
    assert.deepEqual(await jwks.healthCheck(AbortSignal.timeout(1000)), { status: 'warn', message: '0 keys, fetched 0 s ago: the document has no usable key' })
    assert.ok(logger.entries.some((e) => e.level === 'error' && e.message.startsWith('the JWKS has no usable key')))
    assert.ok(logger.entries.some((e) => e.level === 'info' && e.message === 'JWKS keys changed' && (e.fields.removed as unknown[]).includes('rsa-1')))
  })

  it('refuses documents that are oversized, not JSON, not a JWK Set, redirected or failed, keeping the cached keys', async () => {
    server.respond = json({ keys: [rsa1Jwk] })
    const jwks = jwksFor({ maxBytes: 4_096 })
    await jwks.start()
    const verifier = verifierFor(jwks)
    const token = await sign(rsa1.privateKey, 'RS256', 'rsa-1')
    const big = JSON.stringify({ keys: [rsa1Jwk], padding: 'x'.repeat(5_000) })
    const cases: Array<[string, Responder, RegExp]> = [
      ['declared too large', (_req, res) => res.writeHead(200, { 'content-length': String(Buffer.byteLength(big)) }).end(big), /larger than maxBytes \(4096\)/],
      ['streamed too large', (_req, res) => {
        res.writeHead(200, { 'content-type': 'application/json' })
        res.write(big.slice(0, 3_000))
        res.end(big.slice(3_000))
      }, /larger than maxBytes/],
      ['not JSON', json('<html>maintenance</html>'), /not JSON/],
      ['not UTF-8', (_req, res) => res.writeHead(200).end(Buffer.from([0x7b, 0xff, 0x7d])), /not UTF-8/],
      ['an object without keys', json({}), /not a JWK Set/],
      ['keys not an array', json({ keys: { 'rsa-1': rsa1Jwk } }), /not a JWK Set/],
      ['an array', json([rsa1Jwk]), /not a JWK Set/],
      ['null', json('null'), /not a JWK Set/],
      ['too many keys', json({ keys: Array.from({ length: 101 }, () => ({ kty: 'RSA' })) }), /more than maxKeys/],
      ['HTTP 500', (_req, res) => res.writeHead(500).end('{"keys":[]}'), /^HTTP 500$/],
      ['a redirect', (_req, res) => res.writeHead(302, { location: 'http://attacker.example/jwks.json' }).end(), /HTTP 302 \(redirects are not followed/],
    ]
    for (const [name, respond, reason] of cases) {
      server.respond = respond
      now += 30_000
      assert.equal(await jwks.refresh(), false, name)
      assert.match(jwks.state.lastError ?? '', reason, name)
      assert.deepEqual(jwks.state.kids, ['rsa-1'], name)
      assert.equal((await verifier.verify(token)).kid, 'rsa-1', name)
    }
    assert.equal(server.hits, 1 + cases.length)
  })

  it('skips private, enc, symmetric, alg-less and duplicate keys and local kids, logging them once, and loads the rest', async () => {
    const keys = new JwtKeySet()
    await keys.addSecret('local', 'HS256', SECRET)
    const document = {
      keys: [
        { ...(await exportJWK(rsa2.privateKey)), kid: 'private', alg: 'RS256' },
        { ...(await exportJWK(rsa2.publicKey)), kid: 'enc', alg: 'RS256', use: 'enc' },
        { ...(await exportJWK(rsa2.publicKey)), kid: 'oaep', alg: 'RSA-OAEP' },
        { ...(await exportJWK(rsa2.publicKey)), kid: 'no-alg' },
        { kty: 'oct', k: Buffer.from(SECRET).toString('base64url'), kid: 'oct', alg: 'HS256' },
        { ...(await exportJWK(rsa2.publicKey)), kid: 'local', alg: 'RS256' },
        { ...(await exportJWK(rsa2.publicKey)), kid: 'rsa-1', alg: 'RS256' },
        { ...(await exportJWK(rsa2.publicKey)), alg: 'RS256' },
        { ...(await exportJWK(ec1.publicKey)), kid: 'wrong-curve', alg: 'ES384' },
        'not-a-jwk',
        rsa1Jwk,
        ec1Jwk,
      ],
    }
    // rsa-1 is listed twice: the first (rsa2's material) wins, deterministically.
    server.respond = json(document)
    const logger = recordingLogger()
    const jwks = jwksFor({ keys, logger })
    assert.equal(await jwks.start(), true)
    assert.deepEqual(jwks.state.kids, ['rsa-1', 'ec-1'])
    const skipped = jwks.state.skipped.join('\n')
    for (const expected of [
      /"private": .*private JWK/,
      /"enc": .*use "enc"/,
      /"oaep": alg RSA-OAEP is not allowed/,
      /"no-alg": no alg, and no defaultAlgorithm/,
      /"oct": a symmetric key in a public document/,
      /"local": the set already has this kid from elsewhere/,
      /"rsa-1": duplicate kid/,
      /#7: no kid, and the document holds several keys/,
      /"wrong-curve": cannot be used with ES384/,
      /#9: not a JWK/,
    ]) {
      assert.match(skipped, expected)
    }
    assert.equal(jwks.state.skipped.length, 10)
    assert.equal(logger.entries.filter((e) => e.message === 'JWKS keys skipped').length, 1)

    const verifier = new JwtVerifier({ keys, keySource: jwks, issuer: ISSUER, audience: AUDIENCE, now: clock, cacheSize: 0 })
    assert.equal((await verifier.verify(await sign(new TextEncoder().encode(SECRET), 'HS256', 'local'))).alg, 'HS256', 'the local key is untouched')
    await rejectsWith(verifier.verify(await sign(rsa2.privateKey, 'RS256', 'local')), 'ERR_AUTH_TOKEN_INVALID')
    await rejectsWith(verifier.verify(await sign(rsa2.privateKey, 'RS256', 'private')), 'ERR_AUTH_KEY_UNKNOWN')
    await rejectsWith(verifier.verify(await sign(new TextEncoder().encode(SECRET), 'HS256', 'oct')), 'ERR_AUTH_KEY_UNKNOWN')

    now += 600_000
    assert.equal(await jwks.refresh(), true)
    assert.equal(logger.entries.filter((e) => e.message === 'JWKS keys skipped').length, 1, 'the same skips are not logged again')
    assert.ok(keys.has('local'), 'a refresh never removes a local key')

    // The configured default pins an RSA key without alg.
    const withDefault = jwksFor({ defaultAlgorithm: 'PS256' })
    server.respond = json({ keys: [{ ...(await exportJWK(rsa2.publicKey)), kid: 'no-alg' }] })
    await withDefault.start()
    assert.equal(withDefault.keys.find('no-alg')?.alg, 'PS256')
  })

  it('refuses a token whose alg is not the one its key is pinned to, without refetching', async () => {
    server.respond = json({ keys: [rsa1Jwk, ec1Jwk] })
    const jwks = jwksFor()
    await jwks.start()
    const verifier = verifierFor(jwks)
    now += 60_000
    await rejectsWith(verifier.verify(await sign(ec384.privateKey, 'ES384', 'ec-1')), 'ERR_AUTH_TOKEN_INVALID')
    const samePrivateKeyAsPss = await importJWK(await exportJWK(rsa1.privateKey), 'PS256')
    await rejectsWith(verifier.verify(await sign(samePrivateKeyAsPss, 'PS256', 'rsa-1')), 'ERR_AUTH_TOKEN_INVALID')
    const publicJwkBytes = new TextEncoder().encode(JSON.stringify(rsa1Jwk))
    await rejectsWith(verifier.verify(await sign(publicJwkBytes, 'HS256', 'rsa-1')), 'ERR_AUTH_TOKEN_INVALID')
    assert.equal(server.hits, 1, 'a known kid is never refetched')

    // Algorithms this source does not pin never trigger a fetch either.
    await rejectsWith(verifier.verify(await sign(new TextEncoder().encode(SECRET), 'HS256', 'unknown')), 'ERR_AUTH_KEY_UNKNOWN')
    assert.equal(server.hits, 1)

    const ecOnly = jwksFor({ allowedAlgorithms: ['ES256'] })
    await ecOnly.start()
    assert.deepEqual(ecOnly.state.kids, ['ec-1'])
    assert.match(ecOnly.state.skipped.join(), /"rsa-1": alg RS256 is not allowed/)
  })

  it('honours Cache-Control max-age (less Age) within cooldownMs..maxAgeMs', async () => {
    const jwks = jwksFor()
    const hitsAfterTouch = async (advanceMs: number): Promise<number> => {
      now += advanceMs
      jwks.touch()
      if (jwks.state.refreshing) await jwks.refresh()
      return server.hits
    }
    server.respond = json({ keys: [rsa1Jwk] }, { 'cache-control': 'public, max-age=120' })
    await jwks.start()
    assert.equal(await hitsAfterTouch(119_000), 1)
    assert.equal(await hitsAfterTouch(1_000), 2)

    server.respond = json({ keys: [rsa1Jwk] }, { 'cache-control': 'max-age=5' })
    await hitsAfterTouch(120_000)
    assert.equal(server.hits, 3)
    assert.equal(await hitsAfterTouch(29_000), 3, 'never sooner than the cooldown')
    assert.equal(await hitsAfterTouch(1_000), 4)

    server.respond = json({ keys: [rsa1Jwk] }, { 'cache-control': 'max-age=86400' })
    await hitsAfterTouch(30_000)
    assert.equal(await hitsAfterTouch(599_000), 5, 'capped at maxAgeMs')
    assert.equal(await hitsAfterTouch(1_000), 6)

    server.respond = json({ keys: [rsa1Jwk] }, { 'cache-control': 'max-age=300', age: '200' })
    await hitsAfterTouch(600_000)
    assert.equal(await hitsAfterTouch(99_000), 7)
    assert.equal(await hitsAfterTouch(1_000), 8)

    server.respond = json({ keys: [rsa1Jwk] }, { 'cache-control': 'no-store' })
    await hitsAfterTouch(100_000)
    assert.equal(await hitsAfterTouch(30_000), 10)
  })

  it('fetches on first use without start(), and after a failed start only once the cooldown is over', async () => {
    server.respond = (_req, res) => res.writeHead(503).end()
    const jwks = jwksFor()
    assert.equal(await jwks.start(), false)
    const verifier = verifierFor(jwks)
    server.respond = json({ keys: [rsa1Jwk] })
    const token = await sign(rsa1.privateKey, 'RS256', 'rsa-1')
    await rejectsWith(verifier.verify(token), 'ERR_AUTH_KEY_UNKNOWN')
    assert.equal(server.hits, 1)
    now += 30_000
    assert.equal((await verifier.verify(token)).kid, 'rsa-1')
    assert.equal(server.hits, 2)

    const lazy = jwksFor()
    assert.equal((await verifierFor(lazy).verify(token)).kid, 'rsa-1')
    assert.equal(server.hits, 3)
  })

  it('close() aborts a fetch under way and stops fetching, keeping the keys', async () => {
    server.respond = json({ keys: [rsa1Jwk] })
    const jwks = jwksFor()
    await jwks.start()
    server.respond = hang
    now += 600_000
    jwks.touch()
    assert.equal(jwks.state.refreshing, true)
    while (server.hits < 2) await new Promise((resolve) => setTimeout(resolve, 5))
    const started = performance.now()
    await jwks.close()
    assert.ok(performance.now() - started < 1_000)
    assert.equal(jwks.state.refreshing, false)
    now += 600_000
    jwks.touch()
    assert.equal(await jwks.onUnknownKey('rsa-2', 'RS256'), false)
    assert.equal(await jwks.refresh(), false)
    assert.equal(server.hits, 2)
    assert.equal((await verifierFor(jwks).verify(await sign(rsa1.privateKey, 'RS256', 'rsa-1'))).kid, 'rsa-1')
    assert.deepEqual(await jwks.healthCheck(AbortSignal.timeout(1000)), { status: 'warn', message: 'closed' })
  })

  it('validates its options once, listing every problem by path', () => {
    assert.throws(
      () => new RemoteJwks({ url: 'http://idp.example.com/jwks', cooldownMs: 0, maxAgeMs: 2_000, timeoutMs: -1, allowedAlgorithms: ['HS256' as 'RS256'], defaultAlgorithm: 'ES256' }),
      (err: unknown) => {
        assert.ok(err instanceof ConfigError)
        assert.deepEqual(err.issues.map((i) => i.path).sort(), ['auth.jwt.jwks.allowedAlgorithms.0', 'auth.jwt.jwks.cooldownMs', 'auth.jwt.jwks.timeoutMs', 'auth.jwt.jwks.url'])
        return true
      },
    )
    const paths = (options: RemoteJwksOptions): string[] => {
      try {
        new RemoteJwks(options)
        return []
      } catch (err) {
        return (err as ConfigError).issues.map((i) => `${i.path}: ${i.message}`)
      }
    }
    assert.deepEqual(paths({ url: 'http://localhost:8080/jwks' }), ['auth.jwt.jwks.url: must be https (plain http only for 127.0.0.1 or [::1])'])
    assert.deepEqual(paths({ url: 'https://user:pw@idp.example.com/jwks' }), ['auth.jwt.jwks.url: must not carry credentials'])
    assert.deepEqual(paths({ url: 'jwks.json' }), ['auth.jwt.jwks.url: is not an absolute URL'])
    assert.deepEqual(paths({ url: 'https://idp.example.com/jwks', maxAgeMs: 10_000 }), ['auth.jwt.jwks.maxAgeMs: must be at least cooldownMs'])
    assert.deepEqual(paths({ url: 'https://idp.example.com/jwks', allowedAlgorithms: ['RS256'], defaultAlgorithm: 'ES256' }), ['auth.jwt.jwks.defaultAlgorithm: must be one of allowedAlgorithms'])
    assert.deepEqual(paths({ url: 'https://idp.example.com/jwks', logger: {} as RemoteJwksLogger }), ['auth.jwt.jwks.logger: must have info, warn and error methods'])
    assert.deepEqual(paths({ url: new URL('http://[::1]:9/jwks') }), [])
    assert.deepEqual(paths({ url: 'http://127.0.0.1:9/jwks' }), [])
  })

  it('accepts a pino logger', () => {
    // Compile-time check that the logger contract is the pino/Fastify one.
    const accept = (logger: Logger): RemoteJwksLogger => logger
    assert.equal(typeof accept, 'function')
  })
})

import { describe, it, before, after } from 'node:test'
import assert from 'node:assert/strict'
import { connect } from 'node:net'
import type { FastifyInstance } from 'fastify'
import { parseConfig } from '../config/index.ts'
import { BackbeatError, currentContext } from '../core/index.ts'
import { createBackbeatApp } from '../stack/index.ts'
import { createLogger } from '../logging/index.ts'
import { Writable } from 'node:stream'
import { TEST_AUTH } from '../../test/helpers/quiet-app.ts'

const UUID_V7 = /^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/

async function makeApp(input: Parameters<typeof parseConfig>[0] = {}): Promise<FastifyInstance> {
  const config = parseConfig({ preset: 'production', auth: TEST_AUTH, ...input })
  const sink = new Writable({ write: (_c, _e, cb) => cb() })
  const { app } = await createBackbeatApp(config, { logger: createLogger(config.logging, { destination: sink }) })
  app.post(
    '/echo',
    {
      schema: {
        body: { type: 'object', properties: { name: { type: 'string', minLength: 1 }, age: { type: 'integer' } }, required: ['name'], additionalProperties: false },
        querystring: { type: 'object', properties: { limit: { type: 'integer', maximum: 50 } }, additionalProperties: false },
      },
    },
    async (request) => {
      await new Promise((resolve) => setTimeout(resolve, 1))
      return { body: request.body, requestId: currentContext()?.requestId }
    },
  )
  app.get('/items/:id', async (request) => request.params)
  app.get('/fail', async () => {
    throw new Error('database password is hunter2')
  })
  app.get('/typed', async () => {
    throw new BackbeatError('ERR_RESOURCE_NOT_FOUND', { params: { resource: 'Track', id: 'abc' } })
  })
  await app.ready()
  return app
}

function problem(body: string): Record<string, unknown> {
  return JSON.parse(body) as Record<string, unknown>
}

describe('http: request IDs', () => {
  let app: FastifyInstance
  before(async () => (app = await makeApp()))
  after(() => app.close())

  it('generates a UUIDv7 when none is sent and echoes it', async () => {
    const res = await app.inject({ url: '/items/1' })
    assert.match(String(res.headers['x-request-id']), UUID_V7)
  })

  it('reuses a well-formed incoming X-Request-ID', async () => {
    const res = await app.inject({ url: '/items/1', headers: { 'x-request-id': 'gw-1234:abcd/EF=' } })
    assert.equal(res.headers['x-request-id'], 'gw-1234:abcd/EF=')
  })

  it('answers 400 ERR_HTTP_REQUEST_ID_INVALID for an absurd X-Request-ID, with a fresh ID', async () => {
    for (const bad of ['x'.repeat(10_000), 'has space', '<script>', 'a;b']) {
      const res = await app.inject({ url: '/items/1', headers: { 'x-request-id': bad } })
      assert.equal(res.statusCode, 400)
      const body = problem(res.body)
      assert.equal(body.code, 'ERR_HTTP_REQUEST_ID_INVALID')
      assert.match(String(body.requestId), UUID_V7)
      assert.equal(res.headers['x-request-id'], body.requestId)
    }
  })

  it('replaces a malformed ID instead when onInvalid is replace', async () => {
    const other = await makeApp({ http: { requestId: { onInvalid: 'replace' } } })
    const res = await other.inject({ url: '/items/1', headers: { 'x-request-id': 'bad id' } })
    assert.equal(res.statusCode, 200)
    assert.match(String(res.headers['x-request-id']), UUID_V7)
    await other.close()
  })

  it('keeps the request context through body parsing into the handler', async () => {
    const res = await app.inject({ method: 'POST', url: '/echo', payload: { name: 'a' }, headers: { 'x-request-id': 'ctx-check-1' } })
    assert.equal(res.statusCode, 200)
    assert.equal(res.json<{ requestId: string }>().requestId, 'ctx-check-1')
  })

  it('sets X-Response-Time in milliseconds with one decimal on every response, errors included', async () => {
    for (const url of ['/items/1', '/nope', '/fail']) {
      const res = await app.inject({ url })
      assert.match(String(res.headers['x-response-time']), /^\d+\.\dms$/)
    }
  })
})

describe('http: RFC 9457 problem details', () => {
  let app: FastifyInstance
  before(async () => (app = await makeApp()))
  after(() => app.close())

  const expectProblem = (res: { statusCode: number; headers: Record<string, unknown>; body: string }, status: number, code: string): Record<string, unknown> => {
    assert.equal(res.statusCode, status, res.body)
    assert.equal(res.headers['content-type'], 'application/problem+json; charset=utf-8')
    const body = problem(res.body)
    assert.equal(body.status, status)
    assert.equal(body.code, code)
    assert.equal(typeof body.title, 'string')
    assert.equal(typeof body.detail, 'string')
    assert.match(String(body.type), /^https:\/\/backbeat\.dev\/problems\/[a-z-]+$/)
    assert.equal(body.requestId, res.headers['x-request-id'])
    return body
  }

  it('answers an unknown route with 404 ERR_HTTP_ROUTE_NOT_FOUND', async () => {
    const body = expectProblem(await app.inject({ url: '/nowhere?token=x' }), 404, 'ERR_HTTP_ROUTE_NOT_FOUND')
    assert.equal(body.instance, '/nowhere')
  })

  it('answers a wrong method with 405 and an Allow header', async () => {
    const res = await app.inject({ method: 'DELETE', url: '/items/42' })
    expectProblem(res, 405, 'ERR_HTTP_METHOD_NOT_ALLOWED')
    assert.equal(res.headers.allow, 'GET, HEAD')
  })

  it('answers malformed JSON with 400 ERR_HTTP_BODY_MALFORMED', async () => {
    expectProblem(await app.inject({ method: 'POST', url: '/echo', payload: '{"name":', headers: { 'content-type': 'application/json' } }), 400, 'ERR_HTTP_BODY_MALFORMED')
  })

  it('rejects prototype poisoning as a malformed body', async () => {
    expectProblem(
      await app.inject({ method: 'POST', url: '/echo', payload: '{"name":"a","__proto__":{"admin":true}}', headers: { 'content-type': 'application/json' } }),
      400,
      'ERR_HTTP_BODY_MALFORMED',
    )
  })

  it('answers a compressed body with 415 and Accept-Encoding: identity', async () => {
    const res = await app.inject({ method: 'POST', url: '/echo', payload: '{"name":"a"}', headers: { 'content-type': 'application/json', 'content-encoding': 'gzip' } })
    const body = expectProblem(res, 415, 'ERR_HTTP_CONTENT_ENCODING_UNSUPPORTED')
    assert.equal(res.headers['accept-encoding'], 'identity')
    assert.match(String(body.detail), /gzip/)
  })

  it('answers an empty JSON body with 400 ERR_HTTP_BODY_EMPTY', async () => {
    expectProblem(await app.inject({ method: 'POST', url: '/echo', payload: '', headers: { 'content-type': 'application/json' } }), 400, 'ERR_HTTP_BODY_EMPTY')
  })

  it('answers an unsupported content type (text/plain included) with 415', async () => {
    const form = expectProblem(await app.inject({ method: 'POST', url: '/echo', payload: 'name=a', headers: { 'content-type': 'application/x-www-form-urlencoded' } }), 415, 'ERR_HTTP_MEDIA_TYPE_UNSUPPORTED')
    assert.equal(form.detail, 'Content-Type application/x-www-form-urlencoded is not supported on this route.')
    expectProblem(await app.inject({ method: 'POST', url: '/echo', payload: 'a', headers: { 'content-type': 'text/plain' } }), 415, 'ERR_HTTP_MEDIA_TYPE_UNSUPPORTED')
  })

  it('answers a body over the 1 MiB default with 413, and a 10 MB body too', async () => {
    expectProblem(await app.inject({ method: 'POST', url: '/echo', payload: { name: 'a'.repeat(1024 * 1024) } }), 413, 'ERR_HTTP_BODY_TOO_LARGE')
    const big = await app.inject({ method: 'POST', url: '/echo', payload: `{"name":"${'b'.repeat(10_000_000)}"}`, headers: { 'content-type': 'application/json' } })
    const body = expectProblem(big, 413, 'ERR_HTTP_BODY_TOO_LARGE')
    assert.match(String(body.detail), /1048576/)
  })

  it('lists each invalid field as a JSON Pointer with its message', async () => {
    const res = await app.inject({ method: 'POST', url: '/echo', payload: { age: 'old', extra: 1 } })
    const body = expectProblem(res, 400, 'ERR_VALIDATION_FAILED')
    const errors = body.errors as { in: string; pointer: string; detail: string }[]
    assert.deepEqual(errors.map((e) => e.pointer).sort(), ['/age', '/extra', '/name'])
    assert.ok(errors.every((e) => e.in === 'body' && e.detail.length > 0))
    assert.equal(body.detail, 'The request has 3 invalid field(s).')
  })

  it('rejects unknown query parameters instead of silently dropping them', async () => {
    const body = expectProblem(await app.inject({ method: 'POST', url: '/echo?limit=5&debug=1', payload: { name: 'a' } }), 400, 'ERR_VALIDATION_FAILED')
    assert.deepEqual(body.errors, [{ in: 'querystring', pointer: '/debug', detail: 'is not an allowed field' }])
  })

  it('hides the internals of a thrown error behind 500 ERR_INTERNAL', async () => {
    const res = await app.inject({ url: '/fail' })
    const body = expectProblem(res, 500, 'ERR_INTERNAL')
    assert.doesNotMatch(res.body, /hunter2|stack|Error:/)
    assert.equal(Object.keys(body).sort().join(), 'code,detail,instance,requestId,status,title,type')
  })

  it('renders a thrown BackbeatError with its status and interpolated detail', async () => {
    const body = expectProblem(await app.inject({ url: '/typed' }), 404, 'ERR_RESOURCE_NOT_FOUND')
    assert.equal(body.detail, 'Track abc was not found.')
  })

  it('answers a malformed percent-encoded URL with 400, not 500', async () => {
    const res = await app.inject({ url: '/items/%E0%A4%A' })
    assert.equal(res.statusCode, 400)
    assert.equal(problem(res.body).code, 'ERR_HTTP_BAD_REQUEST')
    assert.equal(res.headers['content-type'], 'application/problem+json; charset=utf-8')
  })
})

describe('http: requests the HTTP parser rejects', () => {
  let app: FastifyInstance
  let port: number
  before(async () => {
    app = await makeApp()
    await app.listen({ host: '127.0.0.1', port: 0 })
    port = (app.server.address() as { port: number }).port
  })
  after(() => app.close())

  const raw = (request: string): Promise<string> =>
    new Promise((resolve, reject) => {
      const socket = connect(port, '127.0.0.1', () => socket.write(request))
      let data = ''
      socket.on('data', (chunk) => (data += String(chunk)))
      socket.on('close', () => resolve(data))
      socket.on('error', reject)
    })

  it('answers a header value with control characters with 400 problem+json', async () => {
    const response = await raw('GET /items/1 HTTP/1.1\r\nHost: x\r\nX-Evil: a\u0001b\r\n\r\n')
    assert.match(response, /^HTTP\/1\.1 400 /)
    assert.match(response, /application\/problem\+json/)
    assert.match(response, /"code":"ERR_HTTP_HEADER_INVALID"/)
    assert.match(response, /x-request-id: [0-9a-f-]{36}/)
  })

  it('answers oversized headers with 431 problem+json', async () => {
    const response = await raw(`GET /items/1 HTTP/1.1\r\nHost: x\r\nX-Big: ${'a'.repeat(20_000)}\r\n\r\n`)
    assert.match(response, /^HTTP\/1\.1 431 /)
    assert.match(response, /"code":"ERR_HTTP_HEADER_TOO_LARGE"/)
  })

  it('answers an HTTP/1.1 request without Host with 400 problem+json', async () => {
    const response = await raw('GET /items/1 HTTP/1.1\r\nConnection: close\r\n\r\n')
    assert.match(response, /^HTTP\/1\.1 400 /)
    assert.match(response, /"code":"ERR_HTTP_HOST_REQUIRED"/)
  })

  it('answers an unknown method with 501 problem+json (RFC 9110 §9.1)', async () => {
    const response = await raw('FOO /items/1 HTTP/1.1\r\nHost: x\r\n\r\n')
    assert.match(response, /^HTTP\/1\.1 501 /)
    assert.match(response, /"code":"ERR_HTTP_METHOD_NOT_IMPLEMENTED"/)
  })

  it('answers a garbage request line with 400 problem+json', async () => {
    const response = await raw('HELLO\r\n\r\n')
    assert.match(response, /^HTTP\/1\.1 400 /)
    assert.match(response, /"code":"ERR_HTTP_BAD_REQUEST"/)
  })
})

describe('http: validation coerces text, never JSON bodies', () => {
  it('rejects wrong JSON types in a body instead of coercing them', async () => {
    const app = await makeApp()
    for (const payload of [{ name: 12345 }, { name: ['x'] }, { name: 'a', age: '12' }, { name: 'a', age: true }]) {
      const res = await app.inject({ method: 'POST', url: '/echo', payload })
      assert.equal(res.statusCode, 400, JSON.stringify(payload))
      assert.equal(problem(res.body).code, 'ERR_VALIDATION_FAILED')
    }
    await app.close()
  })

  it('still coerces query-string values, which are always text', async () => {
    const app = await makeApp()
    const res = await app.inject({ method: 'POST', url: '/echo?limit=5', payload: { name: 'a', age: 12 } })
    assert.equal(res.statusCode, 200)
    assert.equal(problem((await app.inject({ method: 'POST', url: '/echo?limit=five', payload: { name: 'a' } })).body).code, 'ERR_VALIDATION_FAILED')
    await app.close()
  })
})

describe('http: shutdown and rejected requests', () => {
  it('answers a request arriving during the drain with problem+json 503 ERR_HTTP_SHUTTING_DOWN', async () => {
    const config = parseConfig({ preset: 'production', auth: TEST_AUTH })
    const { app } = await createBackbeatApp(config, { logger: createLogger(config.logging, { destination: new Writable({ write: (_c, _e, cb) => cb() }) }) })
    app.get('/items/:id', async (request) => request.params)
    let release: () => void = () => undefined
    let entered: () => void = () => undefined
    const inHandler = new Promise<void>((resolve) => (entered = resolve))
    app.get('/hold', async () => {
      entered()
      await new Promise<void>((resolve) => (release = resolve))
      return { held: true }
    })
    await app.listen({ host: '127.0.0.1', port: 0 })
    const port = (app.server.address() as { port: number }).port
    let socket: ReturnType<typeof connect> | undefined
    const response = new Promise<string>((resolve, reject) => {
      socket = connect(port, '127.0.0.1', () => socket?.write('GET /hold HTTP/1.1\r\nHost: x\r\n\r\n'))
      let data = ''
      socket.on('data', (chunk) => (data += String(chunk)))
      socket.on('close', () => resolve(data))
      socket.on('error', reject)
    })
    await inHandler
    const closed = app.close()
    await new Promise((resolve) => setTimeout(resolve, 50))
    // A second request on the still-open keep-alive connection, after closing began.
    socket?.write('GET /items/1 HTTP/1.1\r\nHost: x\r\n\r\n')
    await new Promise((resolve) => setTimeout(resolve, 50))
    release()
    const text = await response
    await closed
    assert.match(text, /HTTP\/1\.1 200 [\s\S]*"held":true/)
    assert.match(text, /HTTP\/1\.1 503 [\s\S]*content-type: application\/problem\+json[\s\S]*"code":"ERR_HTTP_SHUTTING_DOWN"/i)
    assert.match(text, /retry-after: 1/i)
  })

  it('logs requests the HTTP parser rejects', async () => {
    const lines: string[] = []
    const config = parseConfig({ preset: 'production', auth: TEST_AUTH })
    const logger = createLogger(config.logging, { destination: new Writable({ write: (c, _e, cb) => (lines.push(String(c)), cb()) }) })
    const { app } = await createBackbeatApp(config, { logger })
    await app.listen({ host: '127.0.0.1', port: 0 })
    const port = (app.server.address() as { port: number }).port
    await new Promise<void>((resolve) => {
      const socket = connect(port, '127.0.0.1', () => socket.write('GET / HTTP/1.1\r\nX-Evil: a\u0001b\r\n\r\n'))
      socket.on('close', () => resolve())
      socket.resume()
    })
    await app.close()
    const line = lines.map((l) => JSON.parse(l) as Record<string, unknown>).find((l) => l.msg === 'request rejected by the HTTP parser')
    assert.ok(line)
    assert.equal(line.status, 400)
    assert.equal(line.code, 'ERR_HTTP_HEADER_INVALID')
  })
})

import assert from 'node:assert/strict'
import { after, before, describe, it } from 'node:test'
import { connect } from 'node:net'
import type { BackbeatApp } from 'backbeat'
import { quietBackbeatApp } from '../helpers/quiet-app.ts'

interface RawResponse {
  status: number
  headers: Map<string, string[]>
  body: string
  /** The server closed the connection (after answering, or without answering). */
  closed: boolean
}

/**
 * Writes `request` (or its chunks, `gapMs` apart) on a fresh TCP connection and reads one
 * response; resolves when the server closes the connection or a complete response has been
 * read. Bypasses every client library so headers arrive exactly as written.
 */
function raw(port: number, request: string | string[], options: { gapMs?: number; timeoutMs?: number } = {}): Promise<RawResponse> {
  return new Promise((resolve, reject) => {
    const socket = connect(port, '127.0.0.1')
    let data = ''
    let done = false
    const finish = (closed: boolean): void => {
      if (done) return
      done = true
      clearTimeout(timer)
      socket.destroy()
      const [head = '', ...rest] = data.split('\r\n\r\n')
      const [statusLine = '', ...lines] = head.split('\r\n')
      const headers = new Map<string, string[]>()
      for (const line of lines) {
        const i = line.indexOf(':')
        if (i > 0) headers.set(line.slice(0, i).toLowerCase(), [...(headers.get(line.slice(0, i).toLowerCase()) ?? []), line.slice(i + 1).trim()])
      }
      resolve({ status: Number(statusLine.split(' ')[1] ?? 0), headers, body: rest.join('\r\n\r\n'), closed })
    }
    const timer = setTimeout(() => {
      if (data === '') reject(new Error('no answer'))
      else finish(false)
    }, options.timeoutMs ?? 5_000)
    socket.setEncoding('latin1')
    socket.on('data', (chunk: string) => {
      data += chunk
      const end = data.indexOf('\r\n\r\n')
      const length = /\r\ncontent-length: (\d+)/i.exec(data)?.[1]
      if (end !== -1 && length !== undefined && data.length >= end + 4 + Number(length)) finish(false)
    })
    socket.on('close', () => finish(true))
    socket.on('error', () => finish(true))
    const chunks = Array.isArray(request) ? request : [request]
    let i = 0
    const next = (): void => {
      if (done || i >= chunks.length) return
      socket.write(chunks[i++] as string)
      if (i < chunks.length) setTimeout(next, options.gapMs ?? 0)
    }
    socket.on('connect', next)
  })
}

const problem = (res: RawResponse): { code?: string; status?: number } => JSON.parse(res.body) as { code?: string; status?: number }

/**
 * The edge of the production stack over a real socket: what arrives is exactly what a hostile
 * or broken client writes, and every case has a defined answer (never a 500, a hang, or a
 * crash), and the server keeps serving afterwards.
 */
describe('edge protection against malformed and hostile requests (real sockets)', () => {
  let backbeat: BackbeatApp
  let port: number

  before(async () => {
    backbeat = await quietBackbeatApp({
      server: { headersTimeoutMs: 1_000, maxHeaderSizeBytes: 8_192 },
      cors: { origins: ['https://app.example.com'], credentials: true },
      limits: { maxHeaderCount: 50 },
      rateLimit: { policies: { burst: { limit: 1_000, windowS: 60 }, tight: { limit: 2, windowS: 60 } } },
    })
    backbeat.app.get('/v1/tracks', async () => ({ items: [] }))
    backbeat.app.get('/v1/tight', { config: { rateLimit: { policies: ['tight'] } } }, async () => ({ ok: true }))
    const url = await backbeat.listen()
    port = Number(new URL(url).port)
  })

  after(async () => {
    await backbeat.app.close()
  })

  const get = (path: string, headerLines: string[] = []): string => [`GET ${path} HTTP/1.1`, 'Host: api.example.com', ...headerLines, 'Connection: close', '', ''].join('\r\n')

  it('gives malformed and look-alike Origins no CORS grant, and keeps Vary: Origin', async () => {
    for (const origin of ['not a url', 'https://app.example.com.evil.example', 'https://app.example.com:8443', 'http://app.example.com', 'null', 'https://APP.example.com/path', `https://${'a'.repeat(2_000)}.example.com`]) {
      const res = await raw(port, get('/v1/tracks', [`Origin: ${origin}`]))
      assert.equal(res.status, 200, origin)
      assert.equal(res.headers.get('access-control-allow-origin'), undefined, origin)
      assert.equal(res.headers.get('access-control-allow-credentials'), undefined, origin)
      assert.match((res.headers.get('vary') ?? []).join(', '), /origin/i)
    }
    const preflight = await raw(port, ['OPTIONS /v1/tracks HTTP/1.1', 'Host: api.example.com', 'Origin: https://app.example.com.evil.example', 'Access-Control-Request-Method: GET', 'Connection: close', '', ''].join('\r\n'))
    assert.equal(preflight.status, 403)
    assert.equal(problem(preflight).code, 'ERR_CORS_ORIGIN_DENIED')
    assert.equal(preflight.headers.get('access-control-allow-origin'), undefined)
  })

  it('never grants a request that repeats Origin (the values are joined, which matches nothing)', async () => {
    const res = await raw(port, get('/v1/tracks', ['Origin: https://app.example.com', 'Origin: https://evil.example']))
    assert.equal(res.status, 200)
    assert.equal(res.headers.get('access-control-allow-origin'), undefined)
  })

  it('answers 431 to a header section over maxHeaderSizeBytes, and to too many header fields', async () => {
    const huge = await raw(port, get('/v1/tracks', [`X-Filler: ${'x'.repeat(20_000)}`]))
    assert.equal(huge.status, 431)
    assert.match((huge.headers.get('content-type') ?? [])[0] ?? '', /^application\/problem\+json/)
    assert.match((huge.headers.get('connection') ?? []).join(), /close/i, 'the connection is not reused')
    const many = await raw(port, get('/v1/tracks', Array.from({ length: 80 }, (_, i) => `X-H${String(i)}: ${String(i)}`)))
    assert.equal(many.status, 431)
    assert.equal(problem(many).code, 'ERR_EDGE_TOO_MANY_HEADERS')
    assert.match((many.headers.get('content-type') ?? [])[0] ?? '', /^application\/problem\+json/)
  })

  it('closes a slowloris connection that dribbles its headers past headersTimeout with 408', async () => {
    const chunks = ['GET /v1/tracks HTTP/1.1\r\n', 'Host: api.example.com\r\n', ...Array.from({ length: 30 }, (_, i) => `X-Slow-${String(i)}: 1\r\n`)]
    const started = Date.now()
    const res = await raw(port, chunks, { gapMs: 150, timeoutMs: 8_000 })
    const elapsed = Date.now() - started
    assert.equal(res.status, 408)
    assert.match((res.headers.get('connection') ?? []).join(), /close/i)
    assert.ok(elapsed < 4_000, `closed after ${String(elapsed)} ms (headersTimeout 1 s, checked every second)`)
  })

  it('keys the limit on the socket address, not on X-Forwarded-For from an untrusted peer', async () => {
    const statuses: number[] = []
    for (const forwarded of ['203.0.113.1', '203.0.113.2', '203.0.113.3, 198.51.100.7']) {
      statuses.push((await raw(port, get('/v1/tight', [`X-Forwarded-For: ${forwarded}`, 'Forwarded: for=192.0.2.60']))).status)
    }
    assert.deepEqual(statuses, [200, 200, 429])
  })

  it('answers 400 problem+json to a header with a control character and to a request line it cannot parse', async () => {
    const control = await raw(port, get('/v1/tracks', ['X-Bad: a\x01b']))
    assert.equal(control.status, 400)
    assert.match((control.headers.get('connection') ?? []).join(), /close/i)
    const garbage = await raw(port, 'GARBAGE\r\n\r\n')
    assert.equal(garbage.status, 400)
    for (const res of [control, garbage]) {
      assert.match((res.headers.get('content-type') ?? [])[0] ?? '', /^application\/problem\+json/)
      assert.equal(problem(res).status, 400)
    }
  })

  it('is still serving after all of that', async () => {
    const res = await raw(port, get('/v1/tracks', ['Origin: https://app.example.com']))
    assert.equal(res.status, 200)
    assert.deepEqual(res.headers.get('access-control-allow-origin'), ['https://app.example.com'])
    assert.deepEqual(res.headers.get('access-control-allow-credentials'), ['true'])
  })
})

import assert from 'node:assert/strict'
import { existsSync } from 'node:fs'
import { createServer, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { after, before, describe, it } from 'node:test'
import { chromium, type Browser } from 'playwright-core'
import type { FastifyInstance } from 'fastify'
import { quietBackbeatApp } from '../helpers/quiet-app.ts'

const CHROMIUM = '/usr/bin/chromium'
const FLAGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync']

let browser: Browser
let api: FastifyInstance
let apiUrl = ''
const pages: Server[] = []

/** A static page server: each one is a distinct origin (same host, its own port). */
async function pageServer(): Promise<string> {
  const server = createServer((_req, res) => {
    res.writeHead(200, { 'content-type': 'text/html' }).end('<!doctype html><title>page</title>')
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  pages.push(server)
  return `http://127.0.0.1:${String((server.address() as AddressInfo).port)}`
}

let allowedOrigin = ''
let otherOrigin = ''

before(async () => {
  if (!existsSync(CHROMIUM)) throw new Error(`Chromium not found at ${CHROMIUM}: install it with \`apt-get install -y chromium\` (.ci/run does this)`)
  allowedOrigin = await pageServer()
  otherOrigin = await pageServer()
  const built = await quietBackbeatApp({ server: { port: 0 }, cors: { origins: [allowedOrigin], credentials: true } })
  api = built.app
  api.post('/v1/session', async (_request, reply) => reply.header('set-cookie', 'sid=listener-42; Path=/; HttpOnly; SameSite=Lax').send({ ok: true }))
  api.get('/v1/whoami', async (request) => ({ cookie: request.headers.cookie ?? null }))
  api.put('/v1/playlists/:id', async (request) => ({ id: (request.params as { id: string }).id, body: request.body }))
  apiUrl = await built.listen()
  browser = await chromium.launch({ executablePath: CHROMIUM, args: FLAGS })
})

after(async () => {
  await browser.close()
  await api.close()
  for (const server of pages) server.close()
})

/** Opens a page on `origin` and runs `fetch` calls there, returning what the page could read. */
async function fromPage(origin: string, script: (apiUrl: string) => Promise<unknown>): Promise<unknown> {
  const page = await browser.newPage()
  try {
    await page.goto(origin)
    return await page.evaluate(script, apiUrl)
  } finally {
    await page.close()
  }
}

describe('CORS in a real browser (headless Chromium)', () => {
  it('lets a page on an allowed origin read a response, and our exposed headers, without credentials', async () => {
    const result = await fromPage(allowedOrigin, async (url) => {
      const res = await fetch(`${url}/v1/whoami`)
      return { status: res.status, body: (await res.json()), requestId: res.headers.get('x-request-id'), rateLimit: res.headers.get('ratelimit') }
    })
    const r = result as { status: number; body: { cookie: null }; requestId: string | null; rateLimit: string | null }
    assert.equal(r.status, 200)
    assert.deepEqual(r.body, { cookie: null })
    assert.ok(r.requestId !== null && r.requestId.length > 0, 'X-Request-ID is exposed')
    assert.ok(r.rateLimit !== null, 'RateLimit is exposed')
  })

  it('lets a page on an allowed origin send credentials and a preflighted PUT', async () => {
    const result = await fromPage(allowedOrigin, async (url) => {
      await fetch(`${url}/v1/session`, { method: 'POST', credentials: 'include' })
      const who = (await (await fetch(`${url}/v1/whoami`, { credentials: 'include' })).json())
      const put = await fetch(`${url}/v1/playlists/7`, { method: 'PUT', credentials: 'include', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ name: 'Road trip' }) })
      return { who, put: (await put.json()) }
    })
    assert.deepEqual(result, { who: { cookie: 'sid=listener-42' }, put: { id: '7', body: { name: 'Road trip' } } })
  })

  it('keeps a page on another origin from reading anything, with or without credentials', async () => {
    const result = await fromPage(otherOrigin, async (url) => {
      const attempt = async (init: RequestInit): Promise<string> => {
        try {
          const res = await fetch(`${url}/v1/whoami`, init)
          return `read ${String(res.status)}`
        } catch (err) {
          return `blocked: ${(err as Error).name}`
        }
      }
      return [await attempt({}), await attempt({ credentials: 'include' }), await attempt({ method: 'PUT', headers: { 'content-type': 'application/json' }, body: '{}' })]
    })
    assert.deepEqual(result, ['blocked: TypeError', 'blocked: TypeError', 'blocked: TypeError'])
  })
})

import { describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { Writable } from 'node:stream'
import Fastify, { LogController } from 'fastify'
import { parseConfig } from '../config/index.ts'
import { healthPlugin } from '../health/index.ts'
import { httpPlugin } from '../http/index.ts'
import { createLogger, requestLoggingPlugin } from '../logging/index.ts'
import { openapiPlugin } from '../openapi/index.ts'
import { backbeat, backbeatServerOptions, createBackbeatApp } from './index.ts'
import { TEST_AUTH } from '../../test/helpers/quiet-app.ts'

const sink = () => new Writable({ write: (_c, _e, cb) => cb() })

describe('stack: presets', () => {
  it('bare is routing only: no request ID, no timing header, no health, no docs', async () => {
    const config = parseConfig({ preset: 'bare' })
    const { app } = await createBackbeatApp(config)
    app.get('/x', async () => ({ ok: true }))
    await app.ready()
    const res = await app.inject({ url: '/x' })
    assert.equal(res.statusCode, 200)
    assert.equal(res.headers['x-request-id'], undefined)
    assert.equal(res.headers['x-response-time'], undefined)
    assert.equal((await app.inject({ url: '/health/live' })).statusCode, 404)
    assert.equal((await app.inject({ url: '/openapi.json' })).statusCode, 404)
    await app.close()
  })

  it('development serves everything, the docs UI included', async () => {
    const config = parseConfig({ preset: 'development' })
    const { app } = await createBackbeatApp(config, { logger: createLogger(config.logging, { destination: sink() }) })
    app.get('/x', { schema: { tags: ['demo'] } }, async () => ({ ok: true }))
    await app.ready()
    const res = await app.inject({ url: '/x' })
    assert.ok(res.headers['x-request-id'])
    assert.ok(res.headers['x-response-time'])
    assert.equal((await app.inject({ url: '/health/live' })).statusCode, 200)
    const doc = (await app.inject({ url: '/openapi.json' })).json<{ openapi: string; paths: Record<string, unknown> }>()
    assert.equal(doc.openapi, '3.1.0')
    assert.ok('/x' in doc.paths && '/health/ready' in doc.paths)
    const full = (await app.inject({ url: '/openapi.json' })).json<{ paths: Record<string, Record<string, { responses: Record<string, { content: Record<string, unknown> }> }>> }>()
    assert.ok('application/health+json' in (full.paths['/health/ready']?.get?.responses['503']?.content ?? {}))
    const ui = await app.inject({ url: '/docs/' })
    assert.equal(ui.statusCode, 200)
    assert.match(String(ui.headers['content-type']), /text\/html/)
    await app.close()
  })

  it('production keeps the OpenAPI document but not the docs UI, and logs JSON', async () => {
    const config = parseConfig({ preset: 'production', auth: TEST_AUTH })
    assert.equal(config.logging.format, 'json')
    const { app } = await createBackbeatApp(config, { logger: createLogger(config.logging, { destination: sink() }) })
    await app.ready()
    assert.equal((await app.inject({ url: '/openapi.json' })).statusCode, 200)
    assert.equal((await app.inject({ url: '/docs/' })).statusCode, 404)
    await app.close()
  })

  it('writes human-readable lines with the pretty format', async () => {
    const config = parseConfig({ preset: 'development' })
    let out = ''
    const logger = createLogger({ ...config.logging, format: 'pretty' })
    assert.ok(logger.logger.isLevelEnabled('debug'))
    const captured = createLogger(config.logging, { destination: new Writable({ write: (c, _e, cb) => ((out += String(c)), cb()) }) })
    captured.logger.info({ a: 1 }, 'hello')
    assert.match(out, /"msg":"hello"/)
  })
})

describe('stack: each capability plugin registers alone', () => {
  it('http plugin alone: request IDs and problem+json on a plain Fastify', async () => {
    const config = parseConfig({ preset: 'production', auth: TEST_AUTH })
    const app = Fastify()
    await app.register(httpPlugin, { ...config.http, bodyLimitBytes: 1024 })
    app.get('/x', async () => ({}))
    const res = await app.inject({ url: '/nope' })
    assert.equal(res.statusCode, 404)
    assert.equal(res.headers['content-type'], 'application/problem+json; charset=utf-8')
    assert.equal(res.json<{ code: string }>().code, 'ERR_HTTP_ROUTE_NOT_FOUND')
    assert.ok(res.headers['x-response-time'])
    await app.close()
  })

  it('health plugin alone: endpoints and app.health', async () => {
    const app = Fastify()
    await app.register(healthPlugin, { enabled: true, checkTimeoutMs: 100, cacheMs: 0, exposeDetails: true })
    app.health.register('x', async () => ({ status: 'pass' }))
    const res = await app.inject({ url: '/health' })
    assert.equal(res.statusCode, 200)
    assert.equal(res.json<{ checks: Record<string, unknown> }>().checks['x:responseTime'] !== undefined, true)
    await app.close()
  })

  it('request logging alone: one completion line', async () => {
    const lines: string[] = []
    const config = parseConfig({ preset: 'production', auth: TEST_AUTH })
    const { logger } = createLogger(config.logging, { destination: new Writable({ write: (c, _e, cb) => (lines.push(String(c)), cb()) }) })
    // Fastify's own request lines are switched off, as backbeatServerOptions does.
    const app = Fastify({ loggerInstance: logger, logController: new LogController({ disableRequestLogging: true }) })
    await app.register(requestLoggingPlugin, { requestCompletion: true, slowRequestMs: 1000 })
    app.get('/x', async () => ({}))
    await app.inject({ url: '/x' })
    await app.close()
    assert.equal(lines.filter((l) => l.includes('"msg":"request completed"')).length, 1)
  })

  it('openapi plugin alone: a document from the routes registered after it', async () => {
    const app = Fastify()
    await app.register(openapiPlugin, { enabled: true, ui: false, title: 'T', version: '9' })
    app.get('/x', { schema: { response: { 200: { type: 'object' } } } }, async () => ({}))
    const doc = (await app.inject({ url: '/openapi.json' })).json<{ info: { title: string }; paths: Record<string, unknown> }>()
    assert.equal(doc.info.title, 'T')
    assert.ok('/x' in doc.paths)
    await app.close()
  })

  it('the backbeat plugin composes on a user-built Fastify instance', async () => {
    const config = parseConfig({ preset: 'production', auth: TEST_AUTH })
    const { logger } = createLogger(config.logging, { destination: sink() })
    const app = Fastify(backbeatServerOptions(config, logger))
    await app.register(backbeat, { config })
    app.get('/x', async () => ({}))
    const res = await app.inject({ url: '/x', headers: { 'x-request-id': 'mine-1' } })
    assert.equal(res.headers['x-request-id'], 'mine-1')
    assert.equal((await app.inject({ url: '/ready' })).statusCode, 200)
    await app.close()
  })
})

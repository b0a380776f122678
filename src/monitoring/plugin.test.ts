import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import Fastify, { type FastifyInstance } from 'fastify'
import { BackbeatError } from '../core/index.ts'
import { ErrorMonitor } from './error-monitor.ts'
import { errorMonitorPlugin, type ErrorMonitorPluginOptions } from './plugin.ts'

async function appWith(options: ErrorMonitorPluginOptions = {}): Promise<FastifyInstance> {
  let n = 0
  const app = Fastify({ logger: false, genReqId: () => `req-${String(++n)}` })
  await app.register(errorMonitorPlugin, options)
  app.get('/v1/tracks/:id', async (request) => {
    const { id } = request.params as { id: string }
    if (id === 'missing') throw new BackbeatError('ERR_RESOURCE_NOT_FOUND', { params: { resource: 'Track', id } })
    throw new TypeError(`Cannot read properties of undefined (reading 'artist') for track ${id}`)
  })
  app.get('/v1/down', async (_request, reply) => reply.code(503).send({ down: true }))
  await app.ready()
  return app
}

describe('errorMonitorPlugin', () => {
  it('records a thrown error with its route template, method, status and request ID', async () => {
    const app = await appWith()
    assert.equal((await app.inject({ url: '/v1/tracks/4iV5W9uYEdYUVa79Axb7Rh' })).statusCode, 500)
    assert.equal((await app.inject({ url: '/v1/tracks/0VjIjW4GlUZAMYd2vXMi3b' })).statusCode, 500)
    const issues = app.errorMonitor.issues()
    assert.equal(issues.length, 1, 'different IDs in the message, one issue')
    const issue = issues[0]
    assert.ok(issue !== undefined)
    assert.equal(issue.type, 'TypeError')
    assert.equal(issue.category, 'code_bug')
    assert.equal(issue.count, 2)
    assert.deepEqual(issue.routes, [{ route: 'GET /v1/tracks/:id', count: 2 }])
    assert.deepEqual(issue.statuses, { 500: 2 })
    assert.equal(issue.lastRequestId, 'req-2')
    assert.match(issue.frames[0] ?? '', /plugin\.test\.ts$/)
    await app.close()
  })

  it('ignores 4xx responses', async () => {
    const app = await appWith()
    assert.equal((await app.inject({ url: '/v1/tracks/missing' })).statusCode, 404)
    assert.equal((await app.inject({ url: '/nowhere' })).statusCode, 404)
    assert.equal(app.errorMonitor.issues().length, 0)
    assert.equal(app.errorMonitor.stats().events, 0)
    await app.close()
  })

  it('records a 5xx sent without an error, grouped per route', async () => {
    const app = await appWith()
    await app.inject({ url: '/v1/down' })
    const [issue] = app.errorMonitor.issues()
    assert.equal(issue?.type, 'HttpResponse')
    assert.equal(issue.title, '<n> response on GET /v1/down')
    assert.deepEqual(issue.statuses, { 503: 1 })
    await app.close()
  })

  it('uses a given monitor and its onEvent hook', async () => {
    const seen: string[] = []
    const monitor = new ErrorMonitor({ onEvent: (e) => seen.push(`${String(e.context.status)} ${e.context.requestId ?? ''}`) })
    const app = await appWith({ monitor })
    assert.equal(app.errorMonitor, monitor)
    await app.inject({ url: '/v1/tracks/abc' })
    assert.deepEqual(seen, ['500 req-1'])
    await app.close()
  })

  it('with captureProcessErrors, records uncaught exceptions through a monitor listener removed on close', async () => {
    const before = process.listenerCount('uncaughtExceptionMonitor')
    const rejectionsBefore = process.listenerCount('unhandledRejection')
    const app = await appWith({ captureProcessErrors: true })
    assert.equal(process.listenerCount('uncaughtExceptionMonitor'), before + 1)
    // A rejection listener is added only when the process already has one (the test runner does):
    // with none, adding one would stop Node from crashing on unhandled rejections.
    const observesRejections = rejectionsBefore > 0
    assert.equal(process.listenerCount('unhandledRejection'), rejectionsBefore + (observesRejections ? 1 : 0))
    const emit = process.emit.bind(process) as (event: string, ...args: unknown[]) => boolean
    emit('uncaughtExceptionMonitor', new RangeError('Invalid array length 5'), 'uncaughtException')
    const [issue] = app.errorMonitor.issues()
    assert.equal(issue?.type, 'RangeError')
    assert.equal(issue.title, 'Invalid array length <n>')
    await app.close()
    assert.equal(process.listenerCount('uncaughtExceptionMonitor'), before)
    assert.equal(process.listenerCount('unhandledRejection'), rejectionsBefore)
  })
})

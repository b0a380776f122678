import { describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { BackbeatError, ConfigError, ERROR_CODES, formatMessage, isErrorCode, runWithContext, currentContext } from './index.ts'

describe('core: errors', () => {
  it('gives every catalogue code the ERR_ prefix, an HTTP status and English text', () => {
    for (const [code, spec] of Object.entries(ERROR_CODES)) {
      assert.match(code, /^ERR_[A-Z0-9_]+$/)
      assert.ok(spec.status >= 400 && spec.status <= 599, code)
      assert.ok(spec.title.length > 0 && spec.detail.length > 0, code)
    }
  })

  it('gives 5xx codes a client detail without placeholders (5xx bodies carry no specifics)', () => {
    for (const [code, spec] of Object.entries(ERROR_CODES)) {
      if (spec.status >= 500) assert.doesNotMatch(spec.detail, /\{\w+\}/, code)
    }
    const error = new BackbeatError('ERR_STORE_COMMAND_FAILED', { params: { store: 'postgres', reason: 'syntax error' } })
    assert.equal(error.message, 'A postgres command was rejected: syntax error')
  })

  it('builds an error from its code with status, category and interpolated message', () => {
    const cause = new Error('socket hang up')
    const error = new BackbeatError('ERR_RESOURCE_NOT_FOUND', { params: { resource: 'Album', id: '42' }, cause })
    assert.equal(error.status, 404)
    assert.equal(error.category, 'not_found')
    assert.equal(error.message, 'Album 42 was not found.')
    assert.equal(error.cause, cause)
    assert.equal(error.name, 'BackbeatError')
    assert.ok(isErrorCode(error.code))
    assert.equal(isErrorCode('ERR_NOPE'), false)
  })

  it('keeps unknown placeholders visible instead of blanking them', () => {
    assert.equal(formatMessage('{a} and {b}', { a: 1 }), '1 and {b}')
  })

  it('lists every config issue in ConfigError', () => {
    const error = new ConfigError([
      { path: 'server.port', message: 'bad' },
      { path: 'logging.level', message: 'worse' },
    ])
    assert.equal(error.code, 'ERR_CONFIG_INVALID')
    assert.match(error.message, /server\.port: bad[\s\S]*logging\.level: worse/)
  })
})

describe('core: request context', () => {
  it('is readable from nested async code and absent outside', async () => {
    assert.equal(currentContext(), undefined)
    await runWithContext({ requestId: 'r-1' }, async () => {
      await new Promise((resolve) => setImmediate(resolve))
      const ctx = currentContext()
      assert.ok(ctx)
      assert.equal(ctx.requestId, 'r-1')
      ctx.userId = 'u-9'
      await Promise.resolve()
      assert.equal(currentContext()?.userId, 'u-9')
    })
    assert.equal(currentContext(), undefined)
  })
})

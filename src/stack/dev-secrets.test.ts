import assert from 'node:assert/strict'
import { mkdtempSync, rmSync, statSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { describe, it } from 'node:test'
import { parseConfig } from '../config/index.ts'
import { withDevelopmentSecrets } from './dev-secrets.ts'
import { TEST_AUTH } from '../../test/helpers/quiet-app.ts'

describe('development secrets', () => {
  it('generates the unset secrets once, keeps them next to the embedded data (0600), and reuses them after a restart', () => {
    const dir = mkdtempSync(join(tmpdir(), 'bb-dev-secrets-'))
    try {
      const config = parseConfig({ preset: 'development', stores: { dataDir: dir } })
      const written: string[] = []
      const first = withDevelopmentSecrets(config, (path) => written.push(path))
      assert.equal(written.length, 1)
      assert.equal(statSync(join(dir, 'dev-secrets.json')).mode & 0o777, 0o600)
      assert.ok((first.auth.jwt.secretKey ?? '').length >= 32)
      assert.equal(Object.keys(first.auth.vault.keys).length, 1)
      assert.ok(first.auth.sessions.csrfSecret !== undefined)
      const again = withDevelopmentSecrets(config, (path) => written.push(path))
      assert.equal(written.length, 1, 'read back, not written again')
      assert.equal(again.auth.jwt.secretKey, first.auth.jwt.secretKey)
      assert.deepEqual(again.auth.vault.keys, first.auth.vault.keys)
      assert.ok(Object.isFrozen(again.auth.jwt))
    } finally {
      rmSync(dir, { recursive: true, force: true })
    }
  })

  it('leaves configured secrets, production, and in-memory data alone', () => {
    const dir = mkdtempSync(join(tmpdir(), 'bb-dev-secrets-'))
    try {
      const configured = parseConfig({ preset: 'development', stores: { dataDir: dir }, auth: TEST_AUTH })
      assert.equal(withDevelopmentSecrets(configured), configured)
      const memory = parseConfig({ preset: 'development', stores: { dataDir: ':memory:' } })
      assert.equal(withDevelopmentSecrets(memory), memory)
      const production = parseConfig({ preset: 'production', stores: { dataDir: dir }, auth: TEST_AUTH })
      assert.equal(withDevelopmentSecrets(production), production)
    } finally {
      rmSync(dir, { recursive: true, force: true })
    }
  })
})

import assert from 'node:assert/strict'
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, before, describe, it } from 'node:test'
import { SqlApiKeyStore } from '../auth/api-key-store.ts'
import { ApiKeyService } from '../auth/api-keys.ts'
import { BackbeatError } from '../core/index.ts'
import { createSqlDatabase } from '../stores/index.ts'
import { runCli } from './index.ts'

interface Run {
  code: number
  out: string
  err: string
}

async function cli(args: string[], env: Record<string, string>, cwd: string): Promise<Run> {
  let out = ''
  let err = ''
  const code = await runCli(args, { env, cwd, stdout: (t) => (out += t), stderr: (t) => (err += t) })
  return { code, out, err }
}

interface RecordJson {
  id: string
  name: string
  owner: string
  scopes: string[]
  hint: string
  createdAt: string
  expiresAt?: string
  revokedAt?: string
  rotatedFrom?: string
  rotatedTo?: string
  rateLimitPolicy?: string
}

/** Opens the CLI's embedded database the way the server would, runs `fn`, closes it again. */
async function withServerView<T>(dataDir: string, fn: (service: ApiKeyService) => Promise<T>): Promise<T> {
  const db = createSqlDatabase({ dataDir })
  await db.connect()
  try {
    const store = new SqlApiKeyStore(db)
    await store.migrate()
    const service = new ApiKeyService({ store, cacheTtlMs: 0 })
    try {
      return await fn(service)
    } finally {
      await service.close()
    }
  } finally {
    await db.close()
  }
}

describe('backbeat apikey', () => {
  let dir = ''
  let dataDir = ''
  let env: Record<string, string> = {}
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'bb-apikey-cli-'))
    dataDir = join(dir, 'data', 'db')
    env = { BACKBEAT_DATA_DIR: dataDir }
  })
  after(async () => {
    await rm(dir, { recursive: true, force: true })
  })

  it('creates, lists, rotates and revokes keys in the server\'s embedded database', async () => {
    const created = await cli(['apikey', 'create', '--owner', 'user-1', '--name', 'CI deploys', '--scope', 'playlist:read', '--scope', 'playlist:write', '--expires-days', '30', '--rate-limit-policy', 'partner-gold'], env, dir)
    assert.equal(created.code, 0, created.err)
    assert.match(created.err, /shown again/)
    const { key, record } = JSON.parse(created.out) as { key: string; record: RecordJson }
    assert.match(key, /^bb_live_[0-9A-Za-z]{38}$/)
    assert.deepEqual([record.owner, record.name, record.scopes, record.rateLimitPolicy], ['user-1', 'CI deploys', ['playlist:read', 'playlist:write'], 'partner-gold'])
    const lifetime = Date.parse(record.expiresAt ?? '') - Date.parse(record.createdAt)
    assert.ok(Math.abs(lifetime - 30 * 86_400_000) < 60_000, `30 days, got ${String(lifetime)} ms`)

    // What the server sees: the key works, with the record the CLI printed.
    const verified = await withServerView(dataDir, (service) => service.verify(key))
    assert.equal(verified.id, record.id)

    const other = await cli(['apikey', 'create', '--owner', 'user-2', '--name', 'Partner'], env, dir)
    assert.equal(other.code, 0, other.err)

    const listed = await cli(['apikey', 'list'], env, dir)
    assert.equal(listed.code, 0, listed.err)
    const all = JSON.parse(listed.out) as RecordJson[]
    assert.deepEqual(all.map((r) => r.name), ['CI deploys', 'Partner'])
    assert.equal(listed.out.includes(key.slice(8)), false, 'list never prints a secret')
    assert.equal(listed.out.includes('hash'), false)
    const mine = JSON.parse((await cli(['apikey', 'list', '--owner', 'user-1'], env, dir)).out) as RecordJson[]
    assert.deepEqual(mine.map((r) => r.id), [record.id])

    const rotated = await cli(['apikey', 'rotate', record.id, '--overlap-hours', '0'], env, dir)
    assert.equal(rotated.code, 0, rotated.err)
    const rotation = JSON.parse(rotated.out) as { key: string; record: RecordJson; previous: RecordJson }
    assert.equal(rotation.record.rotatedFrom, record.id)
    assert.equal(rotation.previous.rotatedTo, rotation.record.id)
    assert.match(rotated.err, /stops working at/)

    const revoked = await cli(['apikey', 'revoke', rotation.record.id], env, dir)
    assert.equal(revoked.code, 0, revoked.err)
    assert.ok((JSON.parse(revoked.out) as RecordJson).revokedAt !== undefined)

    await withServerView(dataDir, async (service) => {
      for (const dead of [key, rotation.key]) {
        await assert.rejects(service.verify(dead), (err: unknown) => err instanceof BackbeatError && err.code === 'ERR_AUTH_API_KEY_INVALID')
      }
    })
  })

  it('issues keys with the configured prefix and pepper, so the server hashes them alike', async () => {
    const pepper = 'cli-and-server-share-this-pepper-32+'
    const own = { BACKBEAT_DATA_DIR: join(dir, 'peppered'), BACKBEAT_API_KEY_PREFIX: 'bb_test_', BACKBEAT_API_KEY_PEPPER: pepper }
    const created = await cli(['apikey', 'create', '--owner', 'user-1', '--name', 'staging'], own, dir)
    assert.equal(created.code, 0, created.err)
    const { key } = JSON.parse(created.out) as { key: string }
    assert.match(key, /^bb_test_/)
    const db = createSqlDatabase({ dataDir: own.BACKBEAT_DATA_DIR })
    await db.connect()
    try {
      const store = new SqlApiKeyStore(db)
      const server = new ApiKeyService({ store, prefix: 'bb_test_', pepper, cacheTtlMs: 0 })
      assert.equal((await server.verify(key)).name, 'staging')
      await server.close()
      await assert.rejects(new ApiKeyService({ store, prefix: 'bb_test_', cacheTtlMs: 0 }).verify(key), (err: unknown) => err instanceof BackbeatError && err.code === 'ERR_AUTH_API_KEY_INVALID')
    } finally {
      await db.close()
    }
  })

  it('exits 1 with the reason for an unknown id, a refused rotation or invalid values, changing nothing', async () => {
    const own = { BACKBEAT_DATA_DIR: join(dir, 'refusals') }
    const created = await cli(['apikey', 'create', '--owner', 'user-9', '--name', 'to revoke'], own, dir)
    const { record } = JSON.parse(created.out) as { record: RecordJson }
    assert.equal((await cli(['apikey', 'revoke', record.id], own, dir)).code, 0)
    const refused = await cli(['apikey', 'rotate', record.id], own, dir)
    assert.equal(refused.code, 1)
    assert.match(refused.err, new RegExp(`API key ${record.id} is revoked; create a new key instead`))
    const unknown = await cli(['apikey', 'revoke', 'ak_000000000000'], own, dir)
    assert.equal(unknown.code, 1)
    assert.match(unknown.err, /API key ak_000000000000 was not found/)
    const invalid = await cli(['apikey', 'create', '--owner', 'user-9', '--name', 'bad', '--scope', 'has"quote'], own, dir)
    assert.equal(invalid.code, 1)
    assert.match(invalid.err, /invalid input:\n {2}- scopes\/0: must be a scope token/)
    assert.equal(invalid.out, '')
    const listed = JSON.parse((await cli(['apikey', 'list'], own, dir)).out) as RecordJson[]
    assert.deepEqual(listed.map((r) => [r.id, r.rotatedTo]), [[record.id, undefined]])
  })

  it('exits 1 with usage for bad arguments, before opening the database', async () => {
    const elsewhere = { BACKBEAT_DATA_DIR: join(dir, 'never-created') }
    const cases: [string[], RegExp][] = [
      [['apikey', 'frobnicate'], /unknown command "apikey frobnicate"/],
      [['apikey', 'create', '--name', 'n'], /needs --owner/],
      [['apikey', 'create', '--owner', 'u'], /needs --name/],
      [['apikey', 'create', '--owner', 'u', '--name', 'n', '--expires-days', '0'], /--expires-days must be a whole number/],
      [['apikey', 'create', '--owner', 'u', '--name', 'n', '--expires-days', '1e3'], /--expires-days must be a whole number/],
      [['apikey', 'create', '--owner', 'u', '--name', 'n', '--admin'], /Unknown option '--admin'/],
      [['apikey', 'create', '--owner'], /argument missing/],
      [['apikey', 'create', 'stray', '--owner', 'u', '--name', 'n'], /Unexpected argument 'stray'/],
      [['apikey', 'revoke'], /exactly one key id/],
      [['apikey', 'revoke', 'a', 'b'], /exactly one key id/],
      [['apikey', 'rotate', 'ak_000000000000', '--overlap-hours=-1'], /--overlap-hours must be a number/],
      [['apikey', 'rotate', 'ak_000000000000', '--overlap-hours', '-1'], /argument is ambiguous/],
      [['apikey', 'rotate', 'ak_000000000000', '--overlap-hours', 'soon'], /--overlap-hours must be a number/],
      [['apikey', 'rotate', 'ak_000000000000', '--overlap-hours', '9000'], /--overlap-hours must be a number/],
      [['apikey', 'list', '--owner'], /argument missing/],
    ]
    for (const [args, message] of cases) {
      const run = await cli(args, elsewhere, dir)
      assert.equal(run.code, 1, args.join(' '))
      assert.match(run.err, message, args.join(' '))
      assert.match(run.err, /Usage: backbeat apikey/)
    }
    await assert.rejects(rm(join(dir, 'never-created')), { code: 'ENOENT' })
  })

  it('prints its usage for help, and exits 1 without a subcommand', async () => {
    const help = await cli(['apikey', 'help'], env, dir)
    assert.equal(help.code, 0)
    assert.match(help.out, /apikey rotate <id> \[--overlap-hours <h>\]/)
    assert.equal((await cli(['apikey'], env, dir)).code, 1)
    let out = ''
    assert.equal(runCli(['help'], { stdout: (t) => (out += t) }), 0, 'help stays synchronous')
    assert.match(out, /apikey create --owner <user-id> --name <name>/)
  })

  it('refuses an in-memory database, whose keys would vanish at exit', async () => {
    const run = await cli(['apikey', 'list'], { BACKBEAT_DATA_DIR: ':memory:' }, dir)
    assert.equal(run.code, 1)
    assert.match(run.err, /":memory:".*vanish/)
  })

  it('refuses an embedded database another process has open, rather than corrupting it', async () => {
    const busy = join(dir, 'busy')
    const db = createSqlDatabase({ dataDir: busy })
    await db.connect()
    try {
      const run = await cli(['apikey', 'list'], { BACKBEAT_DATA_DIR: busy }, dir)
      assert.equal(run.code, 1)
      assert.match(run.err, /open in another process/)
    } finally {
      await db.close()
    }
    assert.equal((await cli(['apikey', 'list'], { BACKBEAT_DATA_DIR: busy }, dir)).code, 0, 'usable once the other process closed it')
  })

  it('exits 1 naming the database when Postgres cannot be reached, with the password masked', async () => {
    const run = await cli(['apikey', 'list'], { DATABASE_URL: 'postgres://admin:s3cret@127.0.0.1:1/x' }, dir)
    assert.equal(run.code, 1)
    assert.match(run.err, /cannot connect to postgres at postgres:\/\/admin:\*+@127\.0\.0\.1:1\/x \(DATABASE_URL\)/)
    assert.equal(run.err.includes('s3cret'), false)
  })

  it('exits 2 and lists every problem when the configuration is invalid', async () => {
    const file = join(dir, 'bad.json')
    await writeFile(file, JSON.stringify({ stores: { databaseUrl: 'mysql://nope' } }))
    const run = await cli(['apikey', 'list'], { BACKBEAT_CONFIG: file, PORT: 'x' }, dir)
    assert.equal(run.code, 2)
    assert.match(run.err, /stores\.databaseUrl/)
    assert.match(run.err, /server\.port/)
  })
})

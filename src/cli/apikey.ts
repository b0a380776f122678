/**
 * `backbeat apikey create|list|revoke|rotate`: manages API keys in the database the server
 * uses (Postgres from `DATABASE_URL`, else embedded PGlite in `stores.dataDir`).
 */
import { existsSync } from 'node:fs'
import { mkdir } from 'node:fs/promises'
import { join, resolve } from 'node:path'
import { parseArgs } from 'node:util'
import { SqlApiKeyStore, type ApiKeyRecord } from '../auth/index.ts'
import { ApiKeyService } from '../auth/index.ts'
import { loadConfig, maskUrlCredentials, type BackbeatConfig } from '../config/index.ts'
import { BackbeatError, ConfigError } from '../core/index.ts'
import { createSqlDatabase, type SqlDatabase } from '../stores/index.ts'

/** Where the command reads its settings and writes its output. */
export interface ApiKeyCliIo {
  env?: Readonly<Record<string, string | undefined>> | undefined
  cwd?: string | undefined
  stdout: (text: string) => void
  stderr: (text: string) => void
}

/** Usage of `backbeat apikey`, also shown by `backbeat help`. */
export const APIKEY_USAGE = `  apikey create --owner <user-id> --name <name> [--scope <scope>]... [--expires-days <n>] [--rate-limit-policy <policy>]
                   Issue an API key; prints {"key", "record"} as JSON. The key is shown only this once
  apikey list [--owner <user-id>]
                   Print every key's record (never the secret) as JSON, oldest first
  apikey revoke <id>
                   Revoke a key at once (servers that cached it stop accepting it within seconds)
  apikey rotate <id> [--overlap-hours <h>]
                   Issue a successor; the old key keeps working for <h> hours (default 24, 0 = none)
`

const DEFAULT_OVERLAP_HOURS = 24
const HOUR_MS = 3_600_000

/** Thrown for bad arguments: exit code 1 with the message and usage. */
class UsageError extends Error {}

/** A parsed subcommand, ready to run against the service. */
type Command = (service: ApiKeyService, io: ApiKeyCliIo) => Promise<void>

/**
 * Runs `backbeat apikey ...` and resolves the exit code: 0 done, 1 bad usage or the command
 * failed (unknown id, invalid value, database unreachable), 2 invalid configuration.
 *
 * @example
 * process.exitCode = await runApiKeyCli(['create', '--owner', 'user-1', '--name', 'CI'], { stdout, stderr })
 */
export async function runApiKeyCli(args: readonly string[], io: ApiKeyCliIo): Promise<number> {
  const [name, ...rest] = args
  if (name === undefined || name === 'help' || name === '--help' || name === '-h') {
    io.stdout(`Usage: backbeat apikey <command>\n\n${APIKEY_USAGE}`)
    return name === undefined ? 1 : 0
  }
  const parse = Object.hasOwn(COMMANDS, name) ? COMMANDS[name] : undefined
  if (parse === undefined) return usage(io, `unknown command "apikey ${name}"`)
  // Arguments are checked before the database is opened: a typo costs nothing and changes nothing.
  let command: Command
  try {
    command = parse(rest)
  } catch (error) {
    if (error instanceof UsageError || isParseArgsError(error)) return usage(io, (error as Error).message)
    throw error
  }

  let config: BackbeatConfig
  try {
    config = loadConfig({ ...(io.env === undefined ? {} : { env: io.env }), ...(io.cwd === undefined ? {} : { cwd: io.cwd }) })
  } catch (error) {
    if (error instanceof ConfigError) {
      io.stderr(`backbeat: ${error.message}\n`)
      return 2
    }
    throw error
  }

  let db: SqlDatabase
  try {
    db = await openDatabase(config, io.cwd ?? process.cwd())
  } catch (error) {
    io.stderr(`backbeat: ${error instanceof Error ? error.message : String(error)}\n`)
    return 1
  }
  try {
    const store = new SqlApiKeyStore(db)
    await store.migrate()
    // No cache: each invocation is one short-lived process.
    const service = new ApiKeyService({ store, ...apiKeySettings(config), cacheTtlMs: 0 })
    await command(service, io)
    await service.close()
    return 0
  } catch (error) {
    if (error instanceof ConfigError) {
      io.stderr(`backbeat: ${error.message}\n`)
      return 2
    }
    if (error instanceof BackbeatError) {
      io.stderr(`backbeat: ${describeError(error)}\n`)
      return 1
    }
    throw error
  } finally {
    await db.close()
  }
}

const COMMANDS: Record<string, (args: readonly string[]) => Command> = {
  create(args) {
    const input = parseCreate(args)
    return async (service, io) => {
      const { key, record } = await service.create(input)
      io.stdout(`${JSON.stringify({ key, record: recordJson(record) }, null, 2)}\n`)
      io.stderr('Store this key now: it cannot be shown again.\n')
    }
  },
  list(args) {
    const { owner } = parseList(args)
    return async (service, io) => {
      const records: ApiKeyRecord[] = []
      // Page through everything: the service bounds one page at 1000 keys.
      for (;;) {
        const page = await service.list({ owner, limit: 1_000, after: records.at(-1)?.id })
        records.push(...page)
        if (page.length < 1_000) break
      }
      io.stdout(`${JSON.stringify(records.map(recordJson), null, 2)}\n`)
    }
  },
  revoke(args) {
    const id = parseRevoke(args)
    return async (service, io) => {
      const record = await service.revoke(id)
      io.stdout(`${JSON.stringify(recordJson(record), null, 2)}\n`)
    }
  },
  rotate(args) {
    const { id, overlapMs } = parseRotate(args)
    return async (service, io) => {
      const { key, record, previous } = await service.rotate(id, { overlapMs })
      io.stdout(`${JSON.stringify({ key, record: recordJson(record), previous: recordJson(previous) }, null, 2)}\n`)
      const until = previous.expiresAt === undefined ? '' : ` The old key stops working at ${new Date(previous.expiresAt).toISOString()}.`
      io.stderr(`Store this key now: it cannot be shown again.${until}\n`)
    }
  },
}

function parseCreate(args: readonly string[]): { owner: string; name: string; scopes: string[]; expiresAt?: number; rateLimitPolicy?: string } {
  const { values } = parseArgs({
    args: [...args],
    strict: true,
    allowPositionals: false,
    options: {
      owner: { type: 'string' },
      name: { type: 'string' },
      scope: { type: 'string', multiple: true },
      'expires-days': { type: 'string' },
      'rate-limit-policy': { type: 'string' },
    },
  })
  if (values.owner === undefined) throw new UsageError('apikey create needs --owner <user-id>')
  if (values.name === undefined) throw new UsageError('apikey create needs --name <name>')
  const days = values['expires-days']
  let expiresAt: number | undefined
  if (days !== undefined) {
    if (!/^[1-9]\d{0,4}$/.test(days)) throw new UsageError(`--expires-days must be a whole number of days from 1 to 99999, not "${days}"`)
    expiresAt = Date.now() + Number(days) * 24 * HOUR_MS
  }
  return {
    owner: values.owner,
    name: values.name,
    scopes: values.scope ?? [],
    ...(expiresAt === undefined ? {} : { expiresAt }),
    ...(values['rate-limit-policy'] === undefined ? {} : { rateLimitPolicy: values['rate-limit-policy'] }),
  }
}

function parseList(args: readonly string[]): { owner: string | undefined } {
  const { values } = parseArgs({ args: [...args], strict: true, allowPositionals: false, options: { owner: { type: 'string' } } })
  return { owner: values.owner }
}

function parseRevoke(args: readonly string[]): string {
  const { positionals } = parseArgs({ args: [...args], strict: true, allowPositionals: true, options: {} })
  const [id, ...extra] = positionals
  if (id === undefined || extra.length > 0) throw new UsageError('apikey revoke takes exactly one key id')
  return id
}

function parseRotate(args: readonly string[]): { id: string; overlapMs: number } {
  const { values, positionals } = parseArgs({ args: [...args], strict: true, allowPositionals: true, options: { 'overlap-hours': { type: 'string' } } })
  const [id, ...extra] = positionals
  if (id === undefined || extra.length > 0) throw new UsageError('apikey rotate takes exactly one key id')
  const hours = values['overlap-hours'] ?? String(DEFAULT_OVERLAP_HOURS)
  if (!/^\d{1,4}(\.\d{1,3})?$/.test(hours) || Number(hours) > 366 * 24) throw new UsageError(`--overlap-hours must be a number of hours from 0 to 8784, not "${hours}"`)
  return { id, overlapMs: Math.round(Number(hours) * HOUR_MS) }
}

/**
 * The same database the server opens: Postgres from `DATABASE_URL`, else PGlite in
 * `stores.dataDir` (resolved against `cwd`, like the server's relative path).
 */
async function openDatabase(config: BackbeatConfig, cwd: string): Promise<SqlDatabase> {
  const { databaseUrl, dataDir } = config.stores
  let db: SqlDatabase
  let where: string
  if (databaseUrl !== undefined) {
    db = createSqlDatabase({ url: databaseUrl, name: 'backbeat-cli' })
    where = `postgres at ${maskUrlCredentials(databaseUrl)} (DATABASE_URL)`
  } else {
    if (dataDir === ':memory:') {
      throw new Error('stores.dataDir is ":memory:", so keys would vanish when this command exits; set DATABASE_URL or BACKBEAT_DATA_DIR to the database the server uses')
    }
    const dir = resolve(cwd, dataDir)
    // Embedded PGlite is one process's database: a second process writing the same files
    // corrupts them, and PGlite does not stop it. It keeps postmaster.pid while open.
    if (existsSync(join(dir, 'postmaster.pid'))) {
      throw new Error(
        `the embedded database in ${dir} is open in another process (a running Backbeat server?). ` +
          'Stop it first, or use DATABASE_URL. If nothing has it open, postmaster.pid there was left by a crash: delete it.',
      )
    }
    await mkdir(dir, { recursive: true })
    db = createSqlDatabase({ dataDir: dir, name: 'backbeat-cli' })
    where = `pglite at ${dir} (stores.dataDir)`
  }
  try {
    await db.connect()
  } catch (error) {
    await db.close().catch(() => undefined)
    const reason = error instanceof BackbeatError && typeof error.params.reason === 'string' ? error.params.reason : error instanceof Error ? error.message : String(error)
    throw new Error(`cannot connect to ${where}: ${reason}`, { cause: error })
  }
  return db
}

/** `auth.apiKeys.prefix` and `auth.apiKeys.pepper`: the CLI must hash exactly like the server. */
function apiKeySettings(config: BackbeatConfig): { prefix: string; pepper?: string } {
  const { prefix, pepper } = config.auth.apiKeys
  return { prefix, ...(pepper === undefined ? {} : { pepper }) }
}

/** A record for people and scripts: ISO times instead of epoch milliseconds. */
function recordJson(record: ApiKeyRecord): Record<string, unknown> {
  const time = (ms: number | undefined): string | undefined => (ms === undefined ? undefined : new Date(ms).toISOString())
  return {
    id: record.id,
    name: record.name,
    owner: record.owner,
    scopes: record.scopes,
    hint: record.hint,
    createdAt: time(record.createdAt),
    expiresAt: time(record.expiresAt),
    lastUsedAt: time(record.lastUsedAt),
    revokedAt: time(record.revokedAt),
    rotatedFrom: record.rotatedFrom,
    rotatedTo: record.rotatedTo,
    rateLimitPolicy: record.rateLimitPolicy,
  }
}

function describeError(error: BackbeatError): string {
  if (error.code === 'ERR_VALIDATION_FAILED' && Array.isArray(error.extensions?.errors)) {
    const fields = (error.extensions.errors as { pointer: string; detail: string }[]).map((e) => `\n  - ${e.pointer === '' ? '(input)' : e.pointer.slice(1)}: ${e.detail}`)
    return `invalid input:${fields.join('')}`
  }
  if (typeof error.params.reason === 'string' && error.code !== 'ERR_RESOURCE_CONFLICT') return `${error.message} (${error.params.reason})`
  return error.message
}

function usage(io: ApiKeyCliIo, message: string): number {
  io.stderr(`backbeat: ${message}\n\nUsage: backbeat apikey <command>\n\n${APIKEY_USAGE}`)
  return 1
}

function isParseArgsError(error: unknown): boolean {
  const code = error instanceof TypeError ? (error as TypeError & { code?: unknown }).code : undefined
  return typeof code === 'string' && code.startsWith('ERR_PARSE_ARGS_')
}

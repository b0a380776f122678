import { Redis } from 'ioredis'
import { Socket } from 'node:net'
import { after, before } from 'node:test'

/**
 * Where the integration tests find their services. A missing env var falls back to the local
 * default instead of skipping: a skipped suite looks green while testing nothing. When the
 * service does not answer, the test fails with how to start it.
 */
const DEFAULTS = {
  REDIS_URL: 'redis://127.0.0.1:6379',
  DATABASE_URL: 'postgres://postgres@127.0.0.1:5432/test',
  MEMCACHED_SERVERS: '127.0.0.1:11211',
  NATS_URL: 'nats://127.0.0.1:4222',
} as const

type ServiceVar = keyof typeof DEFAULTS

const HOW_TO_START: Record<ServiceVar, string> = {
  REDIS_URL: 'run `bash .ci/run` or start redis-server',
  DATABASE_URL: 'run `bash .ci/run` or start PostgreSQL (trust auth, database `test`)',
  MEMCACHED_SERVERS: 'run `bash .ci/run` or start memcached',
  NATS_URL: 'run `bash .ci/run` or start nats-server -js',
}

const LABEL: Record<ServiceVar, string> = { REDIS_URL: 'Redis', DATABASE_URL: 'PostgreSQL', MEMCACHED_SERVERS: 'Memcached', NATS_URL: 'NATS' }

const probes = new Map<ServiceVar, Promise<string>>()

/** Redis URL from REDIS_URL (default redis://127.0.0.1:6379), after proving the port answers. */
export function requireRedisUrl(): Promise<string> {
  return requireService('REDIS_URL')
}

/** Postgres URL from DATABASE_URL (default postgres://postgres@127.0.0.1:5432/test). */
export function requireDatabaseUrl(): Promise<string> {
  return requireService('DATABASE_URL')
}

/** memcached `host:port[,host:port]` from MEMCACHED_SERVERS (default 127.0.0.1:11211). */
export function requireMemcachedServers(): Promise<string> {
  return requireService('MEMCACHED_SERVERS')
}

/** NATS URL from NATS_URL (default nats://127.0.0.1:4222). */
export function requireNatsUrl(): Promise<string> {
  return requireService('NATS_URL')
}

function requireService(name: ServiceVar): Promise<string> {
  let probe = probes.get(name)
  if (probe === undefined) {
    const value = process.env[name] ?? DEFAULTS[name]
    probe = Promise.all(endpoints(name, value).map((endpoint) => reachable(endpoint.host, endpoint.port))).then(
      () => value,
      (err: unknown) => {
        const reason = err instanceof Error ? err.message : String(err)
        throw new Error(`${LABEL[name]} is not reachable at ${redact(value)} (${reason}): ${HOW_TO_START[name]}, or set ${name}.`)
      },
    )
    probes.set(name, probe)
  }
  return probe
}

function endpoints(name: ServiceVar, value: string): { host: string; port: number }[] {
  if (name === 'MEMCACHED_SERVERS') {
    return value.split(',').map((server) => {
      const [host = '127.0.0.1', port = '11211'] = server.trim().replace(/^[^@]*@/, '').split(':')
      return { host, port: Number(port) }
    })
  }
  const fallbackPort = { REDIS_URL: 6379, DATABASE_URL: 5432, NATS_URL: 4222 }[name]
  return value.split(',').map((raw) => {
    const url = new URL(raw.trim())
    return { host: url.hostname, port: url.port === '' ? fallbackPort : Number(url.port) }
  })
}

function reachable(host: string, port: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const socket = new Socket()
    socket.setTimeout(2_000)
    socket.once('connect', () => {
      socket.destroy()
      resolve()
    })
    socket.once('timeout', () => {
      socket.destroy()
      reject(new Error(`no answer from ${host}:${port} within 2s`))
    })
    socket.once('error', (err) => {
      socket.destroy()
      reject(err)
    })
    socket.connect(port, host)
  })
}

function redact(value: string): string {
  return value.replace(/\/\/[^@/]*@/, '//***@')
}

/**
 * Deletes the keys under `prefix` with SCAN (never KEYS, which blocks a shared Redis, and
 * never FLUSHALL). Glob characters in the prefix are escaped.
 */
export async function deleteRedisKeysByPrefix(client: Redis, prefix: string): Promise<void> {
  const pattern = `${prefix.replace(/[*?[\]\\]/g, '\\$&')}*`
  let cursor = '0'
  do {
    const [next, keys] = await client.scan(cursor, 'MATCH', pattern, 'COUNT', 500)
    if (keys.length > 0) await client.del(...keys)
    cursor = next
  } while (cursor !== '0')
}

/**
 * A test file whose Redis keys all live under `prefix`: before its tests, REDIS_URL is
 * required (failing with how to start Redis) and an admin client opened; after them, the keys
 * under the prefix are deleted and the client closed. Read `url` and `admin` inside hooks and
 * tests (they are set once `before` ran).
 *
 * @example
 * const redis = redisTestScope(`bbtest:kv:${process.pid}:`)
 * it('...', async () => { await redis.admin.get('x') })
 */
export function redisTestScope(prefix: string): { readonly url: string; readonly admin: Redis } {
  let url = ''
  let admin: Redis | undefined
  before(async () => {
    url = await requireRedisUrl()
    admin = new Redis(url)
  })
  after(async () => {
    if (admin === undefined) return
    await deleteRedisKeysByPrefix(admin, prefix)
    await admin.quit()
  })
  return {
    get url() {
      return url
    },
    get admin() {
      if (admin === undefined) throw new Error('redisTestScope: read admin inside a test or hook')
      return admin
    },
  }
}

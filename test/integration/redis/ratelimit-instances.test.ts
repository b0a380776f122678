import assert from 'node:assert/strict'
import { after, before, describe, it } from 'node:test'
import { spawn, type ChildProcess } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { createServer, type AddressInfo } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { Redis } from 'ioredis'
import { deleteRedisKeysByPrefix, requireRedisUrl } from '../services.ts'
import { TEST_AUTH_ENV } from '../../helpers/quiet-app.ts'

const REPO = fileURLToPath(new URL('../../..', import.meta.url))

async function freePort(): Promise<number> {
  const probe = createServer()
  await new Promise<void>((resolve) => probe.listen(0, '127.0.0.1', resolve))
  const { port } = probe.address() as AddressInfo
  await new Promise<void>((resolve) => probe.close(() => resolve()))
  return port
}

interface Instance {
  child: ChildProcess
  url: string
  output: string[]
}

/**
 * Two processes of the reference server (`app/server.ts`, exactly as `npm start` runs it) on
 * one Redis: a limit of 10 requests per client is one limit for both, whichever instance the
 * load balancer picks, and both report the same remaining quota.
 */
describe('rate limits shared by two server processes on one Redis', () => {
  const instances: Instance[] = []
  let dir: string
  let redisUrl = ''
  const keyPrefix = `bb:rl:instances:${randomBytes(4).toString('hex')}:`

  before(async () => {
    redisUrl = await requireRedisUrl()
    dir = mkdtempSync(join(tmpdir(), 'backbeat-instances-'))
    const configFile = join(dir, 'backbeat.config.json')
    // A fresh key prefix: earlier runs' counters must not count here.
    writeFileSync(configFile, JSON.stringify({ rateLimit: { keyPrefix, policies: { burst: { algorithm: 'fixed-window', limit: 10, windowS: 3600 } } } }))
    const env: Record<string, string> = {}
    for (const [key, value] of Object.entries(process.env)) {
      // Only Redis is shared; each instance keeps its catalogue in its own in-memory PGlite.
      if (value !== undefined && !['DATABASE_URL', 'MEMCACHED_SERVERS', 'NATS_URL'].includes(key) && !key.startsWith('BACKBEAT_')) env[key] = value
    }
    for (let i = 0; i < 2; i++) {
      const port = await freePort()
      const child = spawn(process.execPath, ['--conditions=backbeat-source', join(REPO, 'app', 'server.ts')], {
        cwd: dir,
        env: { ...env, ...TEST_AUTH_ENV, BACKBEAT_PRESET: 'production', BACKBEAT_CONFIG: configFile, BACKBEAT_DATA_DIR: ':memory:', REDIS_URL: redisUrl, HOST: '127.0.0.1', PORT: String(port), LOG_LEVEL: 'warn' },
        stdio: ['ignore', 'pipe', 'pipe'],
      })
      const output: string[] = []
      const keep = (chunk: Buffer): void => {
        output.push(chunk.toString('utf8'))
      }
      child.stdout.on('data', keep)
      child.stderr.on('data', keep)
      instances.push({ child, url: `http://127.0.0.1:${String(port)}`, output })
    }
    // Wait until both answer (PGlite start-up and seeding take a few seconds).
    await Promise.all(
      instances.map(async (instance) => {
        const deadline = Date.now() + 60_000
        for (;;) {
          if (instance.child.exitCode !== null) throw new Error(`instance exited (${String(instance.child.exitCode)}):\n${instance.output.join('')}`)
          try {
            if ((await fetch(`${instance.url}/health/ready`)).status === 200) return
          } catch {
            // Not listening yet.
          }
          if (Date.now() > deadline) throw new Error(`instance did not become ready:\n${instance.output.join('')}`)
          await new Promise((resolve) => setTimeout(resolve, 200))
        }
      }),
    )
  })

  after(async () => {
    await Promise.all(
      instances.map(
        (instance) =>
          new Promise<void>((resolve) => {
            if (instance.child.exitCode !== null) {
              resolve()
              return
            }
            instance.child.once('exit', () => resolve())
            instance.child.kill('SIGTERM')
            setTimeout(() => instance.child.kill('SIGKILL'), 5_000).unref()
          }),
      ),
    )
    rmSync(dir, { recursive: true, force: true })
    const admin = new Redis(redisUrl)
    await deleteRedisKeysByPrefix(admin, keyPrefix)
    await admin.quit()
  })

  it('counts requests to either instance against one quota', async () => {
    const seen: Array<{ instance: number; status: number; remaining: string | undefined; policy: string | null }> = []
    // Alternate between the instances, as a round-robin load balancer would.
    for (let i = 0; i < 14; i++) {
      const res = await fetch(`${instances[i % 2]?.url ?? ''}/v1/tracks?limit=1`)
      await res.arrayBuffer()
      seen.push({ instance: i % 2, status: res.status, remaining: /;r=(\d+)/.exec(res.headers.get('ratelimit') ?? '')?.[1], policy: res.headers.get('ratelimit-policy') })
    }
    const statuses = seen.map((s) => s.status)
    assert.deepEqual(statuses, [...Array<number>(10).fill(200), 429, 429, 429, 429], JSON.stringify(seen))
    // One counter: the remaining quota falls by one per request whichever instance answered.
    assert.deepEqual(
      seen.slice(0, 10).map((s) => s.remaining),
      ['9', '8', '7', '6', '5', '4', '3', '2', '1', '0'],
    )
    assert.ok(seen.every((s) => s.policy === '"burst";q=10;w=3600'))
    // Both instances refuse once the shared quota is spent.
    assert.deepEqual([...new Set(seen.slice(10).map((s) => s.instance))].sort(), [0, 1])
  })
})

import assert from 'node:assert/strict'
import { spawn } from 'node:child_process'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, before, describe, it } from 'node:test'
import { fileURLToPath } from 'node:url'

const SERVER = fileURLToPath(new URL('./server.ts', import.meta.url))

interface Run {
  exitCode: Promise<number | null>
  stdout: () => string
  stderr: () => string
  kill: (signal: NodeJS.Signals) => void
}

/** Starts `app/server.ts` the way an operator would, with only the given environment. */
function start(cwd: string, env: Record<string, string>): Run {
  const child = spawn(process.execPath, ['--conditions=backbeat-source', SERVER], {
    cwd,
    env: { PATH: process.env.PATH ?? '', LOG_LEVEL: 'warn', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  let out = ''
  let err = ''
  child.stdout.on('data', (chunk: Buffer) => (out += chunk.toString()))
  child.stderr.on('data', (chunk: Buffer) => (err += chunk.toString()))
  return {
    exitCode: new Promise((resolve) => child.once('exit', (code) => resolve(code))),
    stdout: () => out,
    stderr: () => err,
    kill: (signal) => child.kill(signal),
  }
}

describe('app/server.ts', () => {
  let cwd: string
  before(async () => {
    cwd = await mkdtemp(join(tmpdir(), 'bb-music-server-'))
  })
  after(async () => {
    await rm(cwd, { recursive: true, force: true })
  })

  it('serves /health/live within 15 s on a fresh directory with nothing but Node, and stops on SIGTERM', async () => {
    const run = start(cwd, { PORT: '0' })
    const started = Date.now()
    let url: string | undefined
    while (url === undefined && Date.now() - started < 15_000) {
      url = /listening on (http:\/\/\S+) \(docs: \/docs\)/.exec(run.stdout())?.[1]
      if (url === undefined) await new Promise((resolve) => setTimeout(resolve, 100))
    }
    try {
      assert.ok(url, `no listening line within 15 s; stdout: ${run.stdout()} stderr: ${run.stderr()}`)
      const live = await fetch(`${url}/health/live`)
      assert.equal(live.status, 200)
      const tracks = (await (await fetch(`${url}/v1/tracks?limit=1`)).json()) as { total: number }
      assert.ok(tracks.total > 0, 'the demo catalogue was loaded')
    } finally {
      run.kill('SIGTERM')
    }
    assert.equal(await run.exitCode, 0)
  })

  it('exits with code 2 and the problem on stderr when the configuration is invalid', async () => {
    const run = start(cwd, { PORT: 'eighty' })
    assert.equal(await run.exitCode, 2)
    assert.match(run.stderr(), /server\.port \(from PORT\): must be an integer, got "eighty"/)
    assert.equal(run.stdout(), '')
  })

  it('exits with code 1 naming the database, its password masked, when DATABASE_URL is unreachable', async () => {
    const run = start(cwd, { DATABASE_URL: 'postgres://music:s3cret@127.0.0.1:1/music' })
    assert.equal(await run.exitCode, 1)
    assert.match(run.stderr(), /cannot connect to postgres at postgres:\/\/music:\*{8}@127\.0\.0\.1:1\/music \(DATABASE_URL\)/)
    assert.ok(!run.stderr().includes('s3cret'))
  })
})

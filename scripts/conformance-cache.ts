/**
 * Runs the public HTTP caching test suite (https://github.com/http-tests/cache-tests)
 * against Backbeat's response cache configured as a caching reverse proxy in front of the
 * suite's origin server, then prints pass counts by kind (required, optimal, check).
 *
 *   CACHE_TESTS_DIR=/path/to/cache-tests npm run conformance:cache [-- --json out.json] [-- --id test-id]
 *
 * The suite is not part of this repository: bring it with `git clone` (or the workplace's
 * `fetch`) into a folder outside the project and run `npm install` there once. Tests that
 * only apply to browser caches are skipped by the suite's own runner; everything else is
 * run and counted. Not part of `npm test`.
 */
import { spawn, type ChildProcess } from 'node:child_process'
import { existsSync, writeFileSync } from 'node:fs'
import { request as httpRequest, type IncomingHttpHeaders, type IncomingMessage } from 'node:http'
import { join } from 'node:path'
import { pathToFileURL } from 'node:url'
import type { FastifyInstance } from 'fastify'
import { parseConfig } from 'backbeat/config'
import { createBackbeatApp } from 'backbeat'

const dir = process.env['CACHE_TESTS_DIR']
if (dir === undefined || dir === '') fail('set CACHE_TESTS_DIR to a checkout of https://github.com/http-tests/cache-tests (outside this project), with `npm install` run in it')
if (!existsSync(join(dir, 'test-engine/server/server.mjs'))) fail(`${dir} does not look like http-tests/cache-tests (no test-engine/server/server.mjs)`)
if (!existsSync(join(dir, 'node_modules'))) fail(`run \`npm install\` in ${dir} first`)

const args = process.argv.slice(2)
const jsonOut = flag('--json')
const onlyId = flag('--id') ?? ''
const HOP = new Set(['connection', 'keep-alive', 'proxy-connection', 'te', 'trailer', 'transfer-encoding', 'upgrade', 'host'])
const ORIGIN_PORT = Number(process.env['CACHE_TESTS_ORIGIN_PORT'] ?? 8000)

const children: ChildProcess[] = []
process.on('exit', () => {
  for (const child of children) child.kill('SIGKILL')
})

const origin = spawn(process.execPath, ['test-engine/server/server.mjs'], {
  cwd: dir,
  env: { ...process.env, npm_config_protocol: 'http', npm_config_port: String(ORIGIN_PORT), npm_config_pidfile: '/tmp/backbeat-cache-tests-origin.pid' },
  stdio: ['ignore', 'inherit', 'inherit'],
})
children.push(origin)
await waitForPort(ORIGIN_PORT)

const proxy = await startProxy(ORIGIN_PORT)
const address = proxy.server.address()
const port = typeof address === 'object' && address !== null ? address.port : 0

const output = await runClient(`http://127.0.0.1:${port}`, onlyId)
await proxy.close()
origin.kill()

if (onlyId !== '') {
  process.stdout.write(output)
  process.exit(0)
}
const results = JSON.parse(output.slice(output.indexOf('{'))) as Record<string, true | [string, string]>
const { default: suites } = (await import(pathToFileURL(join(dir, 'tests/index.mjs')).href)) as { default: Suite[] }
const { determineTestResult, resultTypes } = (await import(pathToFileURL(join(dir, 'test-engine/lib/results.mjs')).href)) as ResultsModule
const counts: Record<string, Record<string, number>> = {}
const failures: string[] = []
for (const suite of suites) {
  for (const test of suite.tests) {
    if (test.browser_only === true) continue
    const kind = test.kind ?? 'required'
    const outcome = determineTestResult(suites, test.id, results)
    const name = Object.entries(resultTypes).find(([, value]) => value === outcome)?.[0] ?? 'unknown'
    const bucket = (counts[kind] ??= {})
    bucket[name] = (bucket[name] ?? 0) + 1
    if (kind === 'required' && name !== 'pass') failures.push(`${name.padEnd(15)} ${test.id}: ${JSON.stringify(results[test.id] ?? null)}`)
  }
}
process.stdout.write('\nhttp-tests/cache-tests against the Backbeat response cache (shared cache, reverse proxy)\n\n')
for (const [kind, bucket] of Object.entries(counts)) {
  const total = Object.values(bucket).reduce((a, b) => a + b, 0)
  const passed = (bucket['pass'] ?? 0) + (bucket['yes'] ?? 0)
  const rest = Object.entries(bucket)
    .filter(([name]) => name !== 'pass' && name !== 'yes')
    .map(([name, n]) => `${name} ${n}`)
    .join(', ')
  process.stdout.write(`${kind.padEnd(9)} ${String(passed).padStart(3)} / ${String(total).padEnd(3)} ${kind === 'check' ? 'yes' : 'pass'}${rest === '' ? '' : `  (${rest})`}\n`)
}
if (failures.length > 0) process.stdout.write(`\nrequired, not passing:\n${failures.join('\n')}\n`)
if (jsonOut !== undefined) writeFileSync(jsonOut, JSON.stringify({ counts, results }, null, 2))

// ── Helpers ──────────────────────────────────────────────────────────────────────

interface SuiteTest {
  id: string
  kind?: 'required' | 'optimal' | 'check'
  browser_only?: boolean
}
interface Suite {
  tests: SuiteTest[]
}
interface ResultsModule {
  determineTestResult: (suites: Suite[], id: string, results: unknown) => unknown
  resultTypes: Record<string, unknown>
}

/**
 * The reference stack (preset `bare` plus the response cache, as `config.cache.http`
 * configures it) with one catch-all route forwarding to the origin: a caching reverse proxy.
 */
async function startProxy(originPort: number): Promise<FastifyInstance> {
  const config = parseConfig({
    preset: 'bare',
    server: { host: '127.0.0.1', port: 0 },
    logging: { enabled: true, level: 'warn', format: 'json' },
    cache: { http: { enabled: true, storeSetCookie: true, generateETag: false, xCache: false, routes: 'all' } },
  })
  const { app, listen } = await createBackbeatApp(config)
  app.addHttpMethod('M-SEARCH', { hasBody: true })
  await app.register(async (scope) => {
    // The suite invalidates with an extension method too.
    scope.removeAllContentTypeParsers()
    scope.addContentTypeParser('*', { parseAs: 'buffer', bodyLimit: 10 * 1024 * 1024 }, (_request, body, done) => {
      done(null, body)
    })
    scope.route({
      method: ['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS', 'M-SEARCH'],
      url: '/*',
      handler: async (request, reply) => {
        const upstream = await forward(originPort, request.method, request.url, request.headers, request.body as Buffer | undefined, (status, hints) => {
          if (status === 103) reply.writeEarlyHints(hints)
          else if (status === 102) reply.raw.writeProcessing()
        })
        void reply.code(upstream.status)
        // A proxy drops hop-by-hop fields and whatever Connection lists (RFC 9110 §7.6.1).
        const listed = new Set(
          (upstream.headers['connection'] ?? '')
            .split(',')
            .map((f) => f.trim().toLowerCase()),
        )
        for (const [name, value] of Object.entries(upstream.headers)) {
          if (value === undefined || HOP.has(name) || listed.has(name) || name === 'content-length') continue
          void reply.header(name, value)
        }
        return upstream.body
      },
    })
  })
  await listen()
  return app
}

function forward(
  originPort: number,
  method: string,
  url: string,
  headers: IncomingHttpHeaders,
  body: Buffer | undefined,
  onInformation: (status: number, hints: Record<string, string | string[]>) => void,
): Promise<{ status: number; headers: IncomingHttpHeaders; body: Buffer }> {
  return new Promise((resolve, reject) => {
    const outgoing: Record<string, string | string[]> = {}
    for (const [name, value] of Object.entries(headers)) if (value !== undefined && !HOP.has(name)) outgoing[name] = value
    outgoing['host'] = `localhost:${originPort}`
    // A fresh connection per request: a response whose Content-Length lies must not poison the next one.
    let received: { status: number; headers: IncomingHttpHeaders; chunks: Buffer[]; res: IncomingMessage } | undefined
    const finish = () => {
      if (received === undefined) return
      // Data parsed but not yet emitted (an error right after the body) is still in the buffer.
      for (let chunk = received.res.read() as Buffer | null; chunk !== null; chunk = received.res.read() as Buffer | null) received.chunks.push(chunk)
      // Content-Length frames the message: bytes past it are not part of this response.
      const body = Buffer.concat(received.chunks)
      const declared = Number(received.headers['content-length'] ?? Number.NaN)
      resolve({ status: received.status, headers: received.headers, body: Number.isInteger(declared) && declared < body.length ? body.subarray(0, declared) : body })
    }
    const req = httpRequest({ host: '127.0.0.1', port: originPort, method, path: url, headers: outgoing, agent: false }, (res) => {
      received = { status: res.statusCode ?? 502, headers: res.headers, chunks: [], res }
      const target = received
      res.on('data', (chunk: Buffer) => target.chunks.push(chunk))
      res.on('end', finish)
      res.on('error', finish)
    })
    req.on('information', (info) => {
      const hints: Record<string, string | string[]> = {}
      for (const [name, value] of Object.entries(info.headers)) if (value !== undefined) hints[name] = value
      onInformation(info.statusCode, hints)
    })
    // Bytes past a lying Content-Length are a parse error after the response: keep what was announced.
    req.on('error', (err) => (received === undefined ? reject(err) : finish()))
    req.end(body !== undefined && body.length > 0 ? body : undefined)
  })
}

function runClient(base: string, id: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const client = spawn(process.execPath, ['--no-warnings', 'test-engine/cli.mjs'], {
      cwd: dir,
      env: { ...process.env, npm_config_base: base, npm_config_id: id, npm_package_config_id: '' },
      stdio: ['ignore', 'pipe', 'inherit'],
    })
    children.push(client)
    let out = ''
    client.stdout.on('data', (chunk: Buffer) => (out += chunk.toString()))
    client.on('error', reject)
    client.on('close', (code) => (code === 0 ? resolve(out) : reject(new Error(`the suite's client exited with ${code}:\n${out.slice(-2000)}`))))
  })
}

async function waitForPort(port: number): Promise<void> {
  const deadline = Date.now() + 10_000
  while (Date.now() < deadline) {
    const ok = await new Promise<boolean>((resolve) => {
      const req = httpRequest({ host: '127.0.0.1', port, path: '/', method: 'GET' }, (res) => {
        res.resume()
        resolve(true)
      })
      req.on('error', () => resolve(false))
      req.end()
    })
    if (ok) return
    await new Promise((r) => setTimeout(r, 100))
  }
  fail(`the suite's origin server did not listen on port ${port}`)
}

function flag(name: string): string | undefined {
  const at = args.indexOf(name)
  return at === -1 ? undefined : args[at + 1]
}

function fail(message: string): never {
  process.stderr.write(`conformance:cache: ${message}\n`)
  process.exit(1)
}

/**
 * Runs the W3C Trace Context test suite (https://github.com/w3c/trace-context, test/test.py)
 * against Backbeat's tracing plugin: a Fastify server on 127.0.0.1 with `tracingPlugin` and the
 * `conformanceHandler` route at POST /test, then `python3 <dir>/test/test.py <endpoint>`.
 *
 *   TRACE_CONTEXT_DIR=/path/to/trace-context npm run conformance:trace [-- TraceContextTest AdvancedTest]
 *
 * Needs Python 3 with aiohttp (Debian: python3-aiohttp). The suite is not part of this repository:
 * check it out outside the project. STRICT_LEVEL (default 2) and SPEC_LEVEL (default 2 here, i.e.
 * Trace Context Level 2 with the random flag) pass through, as do the HARNESS_* variables.
 * Prints the suite's output and a one-line summary; the exit code is the suite's. Not part of `npm test`.
 */
import { spawn } from 'node:child_process'
import { existsSync } from 'node:fs'
import { join } from 'node:path'
import Fastify from 'fastify'
import { conformanceHandler, createTracing, tracingPlugin } from 'backbeat/tracing'

function fail(message: string): never {
  process.stderr.write(`conformance:trace: ${message}\n`)
  process.exit(2)
}

const dir = process.env['TRACE_CONTEXT_DIR']
if (dir === undefined || dir === '') fail('set TRACE_CONTEXT_DIR to a checkout of https://github.com/w3c/trace-context (outside this project)')
const script = join(dir, 'test', 'test.py')
if (!existsSync(script)) fail(`${dir} does not look like w3c/trace-context (no test/test.py)`)
const python = process.env['PYTHON'] ?? '/usr/bin/python3'

const tracing = createTracing({ sampleRatio: 1, serviceName: 'backbeat-conformance' })
const app = Fastify()
await app.register(tracingPlugin, { instance: tracing })
app.post('/test', conformanceHandler(tracing))
await app.listen({ host: '127.0.0.1', port: Number(process.env['TRACE_SERVICE_PORT'] ?? 0) })
const address = app.server.address()
if (address === null || typeof address === 'string') fail('could not read the listening port')
const endpoint = `http://127.0.0.1:${String(address.port)}/test`
process.stdout.write(`service listening on ${endpoint}\n`)

const child = spawn(python, [script, endpoint, ...process.argv.slice(2)], {
  cwd: join(dir, 'test'),
  env: { ...process.env, STRICT_LEVEL: process.env['STRICT_LEVEL'] ?? '2', SPEC_LEVEL: process.env['SPEC_LEVEL'] ?? '2' },
  stdio: ['ignore', 'inherit', 'pipe'],
})
let output = ''
child.stderr.setEncoding('utf8')
child.stderr.on('data', (chunk: string) => {
  output += chunk
  process.stderr.write(chunk)
})
const code = await new Promise<number>((resolve) => {
  child.on('error', (error) => {
    process.stderr.write(`conformance:trace: cannot run ${python}: ${error.message}\n`)
    resolve(2)
  })
  child.on('close', (exitCode) => {
    resolve(exitCode ?? 1)
  })
})
await app.close()

const ran = /Ran (\d+) tests?/.exec(output)?.[1] ?? '0'
const count = (kind: string): number => Number(new RegExp(`${kind}=(\\d+)`).exec(output)?.[1] ?? 0)
const failed = count('failures') + count('errors')
const skipped = count('skipped')
process.stdout.write(`\ntrace-context conformance: ran ${ran}, passed ${String(Number(ran) - failed - skipped)}, failed ${String(failed)}, skipped ${String(skipped)} (exit ${String(code)})\n`)
process.exit(code)

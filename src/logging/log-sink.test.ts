import { describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { spawnSync } from 'node:child_process'
import { LogSink } from './log-sink.ts'

function tempFile(): { file: string; done: () => void } {
  const dir = mkdtempSync(join(tmpdir(), 'bb-sink-'))
  return { file: join(dir, 'deep', 'er', 'app.log'), done: () => rmSync(dir, { recursive: true, force: true }) }
}

const flushed = (sink: LogSink) => new Promise<void>((resolve) => sink.flush(resolve))

describe('logging: LogSink', () => {
  it('writes every line, in order, across many chunks, creating directories', async () => {
    const { file, done } = tempFile()
    const sink = new LogSink({ dest: file, flushIntervalMs: 1000, chunkBytes: 1024 })
    for (let i = 0; i < 20_000; i++) sink.write(`{"n":${i},"text":"héllo ✓"}\n`)
    await flushed(sink)
    sink.end()
    const lines = readFileSync(file, 'utf8').trim().split('\n')
    assert.equal(lines.length, 20_000)
    lines.forEach((line, i) => assert.equal((JSON.parse(line) as { n: number }).n, i))
    done()
  })

  it('writes a quiet trickle within the flush interval, without waiting for a full chunk', async () => {
    const { file, done } = tempFile()
    const sink = new LogSink({ dest: file, flushIntervalMs: 50 })
    sink.write('{"msg":"lonely"}\n')
    await new Promise((resolve) => setTimeout(resolve, 200))
    assert.equal(readFileSync(file, 'utf8'), '{"msg":"lonely"}\n')
    sink.end()
    done()
  })

  it('takes a line larger than its buffer', async () => {
    const { file, done } = tempFile()
    const sink = new LogSink({ dest: file, flushIntervalMs: 1000, chunkBytes: 256 })
    const big = `{"blob":"${'x'.repeat(10_000)}"}\n`
    sink.write('{"a":1}\n')
    sink.write(big)
    sink.write('{"b":2}\n')
    await flushed(sink)
    sink.end()
    assert.equal(readFileSync(file, 'utf8'), `{"a":1}\n${big}{"b":2}\n`)
    done()
  })

  it('blocks rather than drops when more is buffered than allowed', async () => {
    const { file, done } = tempFile()
    const sink = new LogSink({ dest: file, flushIntervalMs: 1000, chunkBytes: 512, maxBufferedBytes: 2048 })
    for (let i = 0; i < 5000; i++) sink.write(`{"i":${i}}\n`)
    // Without waiting: whatever exceeded the bound was written synchronously already.
    assert.ok(readFileSync(file, 'utf8').length > 0)
    await flushed(sink)
    sink.end()
    const numbers = readFileSync(file, 'utf8').trim().split('\n').map((l) => (JSON.parse(l) as { i: number }).i)
    assert.equal(new Set(numbers).size, 5000)
    done()
  })

  it('writes what it holds when the process exits without a flush', () => {
    const { file, done } = tempFile()
    const script = `import { LogSink } from ${JSON.stringify(new URL('./log-sink.ts', import.meta.url).pathname)}
const sink = new LogSink({ dest: ${JSON.stringify(file)}, flushIntervalMs: 60000 })
for (let i = 0; i < 10; i++) sink.write('{"i":' + i + '}\\n')
process.exit(0)`
    const result = spawnSync(process.execPath, ['--input-type=module', '-e', script], { encoding: 'utf8' })
    assert.equal(result.status, 0, result.stderr)
    assert.equal(readFileSync(file, 'utf8').trim().split('\n').length, 10)
    done()
  })

  it('fails at creation, not later, when the file cannot be opened', () => {
    const { file, done } = tempFile()
    const sink = new LogSink({ dest: file, flushIntervalMs: 1000 })
    sink.end()
    // A directory path that runs through a regular file cannot exist.
    assert.throws(() => new LogSink({ dest: join(file, 'sub', 'app.log'), flushIntervalMs: 1000 }), /ENOTDIR|EEXIST/)
    done()
  })
})

/**
 * Starting, watching and stopping benchmark servers as child processes. Each server runs in
 * its own process (same node binary, source condition) so that it has the event loop to
 * itself, as in production, and cannot share JIT or GC state with the load generator.
 */
import { AUTH_SECRET } from './variants.ts'
import { BENCH_AUDIENCE, BENCH_ISSUER } from './hello-route.ts'
import { spawn, type ChildProcess } from 'node:child_process'
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs'
import { createServer } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { ENV_BINDINGS, LOADER_ENV } from 'backbeat/config'

/** What to start: a script, its environment on top of a clean one, and extra node flags. */
export interface ServerSpec {
  /** Unique label used in logs and results, e.g. `hello/production`. */
  readonly name: string
  /** Absolute path of the entry script. */
  readonly script: string
  /** `bare`, `production` or `development`. */
  readonly preset: string
  /** Write logs to a temp file (the non-bare presets; stdout would measure pipe throughput). */
  readonly logToFile: boolean
  /** Extra environment, applied last (e.g. `BENCH_OVERRIDES`). */
  readonly env?: Readonly<Record<string, string>>
  /** Extra node flags, e.g. `--cpu-prof`. */
  readonly nodeFlags?: readonly string[]
  /** Written as `backbeat.config.json` in the server's working directory (its temp dir). */
  readonly config?: object
}

/** A running (or failed) server. */
export interface ServerHandle {
  readonly spec: ServerSpec
  readonly url: string
  readonly pid: number | undefined
  /** Per-server temp directory: PGlite data, the log file, CPU profiles. */
  readonly dir: string
  readonly logFile: string | undefined
  /** Set once the process has exited; an exit before `stop()` means the server failed. */
  readonly exit: { code: number | null; signal: NodeJS.Signals | null } | undefined
  /** True when the process died on its own (not through `stop()`). */
  failed(): boolean
  /** The last lines the server wrote to stdout/stderr, for failure reports. */
  output(): string
  /**
   * CPU time (user + system, ms) the server process has used so far, from /proc; undefined
   * where /proc is unavailable. Taken before and after a run it gives CPU per request, which
   * other tenants of a shared machine disturb far less than they disturb req/s.
   */
  cpuTimeMs(): number | undefined
  /** Size of the log file so far (proves logging really happened), or 0. */
  logBytes(): number
  /** SIGTERM, then SIGKILL after `graceMs`; resolves once the process is gone. */
  stop(graceMs?: number): Promise<void>
  /** Synchronous last resort for `process.on('exit')`: SIGKILL if still running. */
  killNow(): void
}

const REPO = fileURLToPath(new URL('..', import.meta.url))
const EXIT_WITH_PARENT = new URL('./exit-with-parent.ts', import.meta.url).href
const OUTPUT_LINES = 40

/** Absolute path of a file in the repository, for {@link ServerSpec.script}. */
export function repoPath(...parts: string[]): string {
  return join(REPO, ...parts)
}

/**
 * A TCP port that was free a moment ago on 127.0.0.1. Chosen here rather than with PORT=0 so
 * the runner knows every URL up front without parsing each server's (preset-dependent) output.
 */
export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const probe = createServer()
    probe.unref()
    probe.once('error', reject)
    probe.listen(0, '127.0.0.1', () => {
      const address = probe.address()
      const port = typeof address === 'object' && address !== null ? address.port : 0
      probe.close(() => (port > 0 ? resolve(port) : reject(new Error('no free port'))))
    })
  })
}

/**
 * The environment a server inherits: ours minus every variable Backbeat reads, so a
 * developer's DATABASE_URL or LOG_LEVEL cannot silently change what is measured.
 */
function cleanEnv(): Record<string, string> {
  const drop = new Set<string>([...ENV_BINDINGS.map((b) => b.name), ...LOADER_ENV])
  const env: Record<string, string> = {}
  for (const [key, value] of Object.entries(process.env)) {
    if (value !== undefined && !drop.has(key)) env[key] = value
  }
  return env
}

/**
 * Spawns one server on a fresh port with its own temp directory (PGlite data, log file), and
 * holds its stdin open so it exits if this process dies (see exit-with-parent.ts). Does not
 * wait for it to answer: see {@link waitUntilAnswering}.
 */
export async function spawnServer(spec: ServerSpec): Promise<ServerHandle> {
  const port = await freePort()
  const dir = mkdtempSync(join(tmpdir(), `backbeat-bench-${spec.name.replace(/[^a-z0-9]+/gi, '-')}-`))
  const logFile = spec.logToFile ? join(dir, 'server.log') : undefined
  if (spec.config !== undefined) writeFileSync(join(dir, 'backbeat.config.json'), JSON.stringify(spec.config))
  const env: Record<string, string> = {
    ...cleanEnv(),
    BACKBEAT_PRESET: spec.preset,
    HOST: '127.0.0.1',
    PORT: String(port),
    LOG_LEVEL: 'info',
    BACKBEAT_DATA_DIR: join(dir, 'data'),
    // A stuck drain must not hold up the end of a benchmark.
    BACKBEAT_SHUTDOWN_TIMEOUT_MS: '2000',
    // Production refuses to start without a signing key; the bench tokens are signed with it.
    JWT_SECRET_KEY: AUTH_SECRET,
    JWT_ISSUER: BENCH_ISSUER,
    JWT_AUDIENCE: BENCH_AUDIENCE,
    BACKBEAT_VAULT_KEYS: '1:YmVuY2gtb25seS12YXVsdC1rZXktb2YtMzItYnl0ZXM=',
    ...(logFile === undefined ? {} : { BACKBEAT_LOG_FILE: logFile }),
    ...spec.env,
  }
  const child: ChildProcess = spawn(
    process.execPath,
    ['--conditions=backbeat-source', '--import', EXIT_WITH_PARENT, ...(spec.nodeFlags ?? []), spec.script],
    // cwd is the temp dir so a backbeat.config.json lying in the repository is not picked up.
    { cwd: dir, env, stdio: ['pipe', 'pipe', 'pipe'] },
  )

  const lines: string[] = []
  const keep = (chunk: Buffer): void => {
    for (const line of chunk.toString('utf8').split('\n')) {
      if (line.trim() === '') continue
      lines.push(line)
      if (lines.length > OUTPUT_LINES) lines.shift()
    }
  }
  child.stdout?.on('data', keep)
  child.stderr?.on('data', keep)
  // Writing to a child that already died must not crash the runner.
  child.stdin?.on('error', () => undefined)

  let exit: ServerHandle['exit']
  let stopping = false
  const exited = new Promise<void>((resolve) => {
    child.once('exit', (code, signal) => {
      exit = { code, signal }
      resolve()
    })
    child.once('error', (err) => {
      lines.push(`spawn error: ${err.message}`)
      exit ??= { code: null, signal: null }
      resolve()
    })
  })

  return {
    spec,
    url: `http://127.0.0.1:${port}`,
    pid: child.pid,
    dir,
    logFile,
    get exit() {
      return exit
    },
    failed: () => exit !== undefined && !stopping,
    output: () => lines.join('\n'),
    cpuTimeMs: () => (child.pid === undefined || exit !== undefined ? undefined : procCpuTimeMs(child.pid)),
    logBytes: () => {
      if (logFile === undefined) return 0
      try {
        return statSync(logFile).size
      } catch {
        return 0
      }
    },
    async stop(graceMs = 5000) {
      stopping = true
      if (exit !== undefined) return
      child.kill('SIGTERM')
      const timer = setTimeout(() => child.kill('SIGKILL'), graceMs)
      await exited
      clearTimeout(timer)
    },
    killNow() {
      stopping = true
      if (exit === undefined && child.exitCode === null && child.signalCode === null) child.kill('SIGKILL')
    },
  }
}

// /proc reports times in USER_HZ ticks, which is 100 per second on every Linux ABI.
const USER_HZ = 100

/** utime + stime of `pid` in ms, read from /proc/<pid>/stat; undefined if unreadable. */
function procCpuTimeMs(pid: number): number | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
    // The command name (field 2) may contain spaces; fields after it start at field 3.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
    const utime = Number(fields[11])
    const stime = Number(fields[12])
    return Number.isFinite(utime) && Number.isFinite(stime) ? ((utime + stime) * 1000) / USER_HZ : undefined
  } catch {
    return undefined
  }
}

/**
 * Polls `path` until it answers 200 (returning the body) or `timeoutMs` passes. Fails at
 * once if the process exits, with its last output, so a broken server is reported rather
 * than waited for.
 */
export async function waitUntilAnswering(server: ServerHandle, path: string, timeoutMs: number, headers: Readonly<Record<string, string>> = {}): Promise<string> {
  const deadline = Date.now() + timeoutMs
  let last = 'no answer yet'
  while (Date.now() < deadline) {
    if (server.exit !== undefined) {
      throw new Error(`${server.spec.name} exited during start-up (code ${String(server.exit.code)}, signal ${String(server.exit.signal)}):\n${server.output()}`)
    }
    try {
      const response = await fetch(server.url + path, { headers, signal: AbortSignal.timeout(2000) })
      const body = await response.text()
      if (response.status === 200) return body
      last = `HTTP ${response.status}: ${body.slice(0, 200)}`
    } catch (err) {
      last = err instanceof Error ? err.message : String(err)
    }
    await new Promise((resolve) => setTimeout(resolve, 250))
  }
  throw new Error(`${server.spec.name} did not answer ${path} within ${timeoutMs} ms (${last}):\n${server.output()}`)
}

/** Removes a server's temp directory (PGlite files, log file); errors are ignored. */
export function removeServerDir(server: ServerHandle): void {
  rmSync(server.dir, { recursive: true, force: true })
}

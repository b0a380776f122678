/**
 * `node --conditions=backbeat-source bench/profile.ts [--presets bare,production | --edge] [--duration 10]`
 *
 * Answers "where does the per-request time go?" for scenario (a): runs the hello server of
 * each preset with `--cpu-prof` under the same autocannon load, then attributes sampled CPU
 * time to packages and Backbeat source files and prints it as microseconds per request, side
 * by side, so the difference between `bare` and `production` reads as a cost breakdown.
 * Self time says where the CPU is burnt; inclusive time of Backbeat's own hooks says which
 * capability caused it. One preset at a time: on 2 cores, two servers would skew each other.
 */
import { readdirSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import { parseArgs } from 'node:util'
import { measure } from './load.ts'
import { removeServerDir, repoPath, spawnServer, waitUntilAnswering, type ServerHandle } from './servers.ts'
import { formatTable } from './stats.ts'
import { benchToken, BENCH_CONFIG, BENCH_ORIGIN, EDGE_ALL, EDGE_OFF, EDGE_ON, mergeConfig } from './variants.ts'

interface CpuProfileNode {
  id: number
  callFrame: { functionName: string; url: string; lineNumber: number; columnNumber: number }
  children?: number[]
}
interface CpuProfile {
  nodes: CpuProfileNode[]
  samples: number[]
  timeDeltas: number[]
  startTime: number
  endTime: number
}

/** Per-request CPU attribution of one profiled server. */
export interface ProfileSummary {
  preset: string
  requests: number
  reqPerSec: number
  /** µs of self time per request, by bucket (package, Backbeat file, node subsystem). */
  selfUsPerRequest: Map<string, number>
  /** µs of inclusive time per request for Backbeat's own functions (file:function). */
  inclusiveUsPerRequest: Map<string, number>
  busyUsPerRequest: number
}

const REPO_SRC = repoPath('src')
const REPO_BENCH = repoPath('bench')

/** The bucket a frame's self time is charged to: a Backbeat file, a package, or a node subsystem. */
export function bucketOf(frame: CpuProfileNode['callFrame']): string {
  const { url, functionName } = frame
  if (url === '') return functionName.startsWith('(') ? functionName : `(native) ${functionName || 'anonymous'}`
  const path = url.startsWith('file://') ? decodeURIComponent(url.slice('file://'.length)) : url
  if (path.startsWith(REPO_SRC)) return `backbeat ${path.slice(REPO_SRC.length + 1)}`
  if (path.startsWith(REPO_BENCH)) return `bench ${path.slice(REPO_BENCH.length + 1)}`
  const nm = path.lastIndexOf('node_modules/')
  if (nm !== -1) {
    const rest = path.slice(nm + 'node_modules/'.length).split('/')
    return rest[0]?.startsWith('@') === true ? `${rest[0]}/${rest[1] ?? ''}` : (rest[0] ?? path)
  }
  if (path.startsWith('node:')) {
    const parts = path.replace(/^node:(internal\/)?/, '').split('/')
    return `node:${parts[0] ?? ''}`
  }
  return path
}

/**
 * Reduces a .cpuprofile to µs per request: self time by bucket, and inclusive time for each
 * Backbeat function (counted once per sample even under recursion).
 */
export function summariseProfile(profile: CpuProfile, preset: string, requests: number, reqPerSec: number): ProfileSummary {
  const byId = new Map(profile.nodes.map((n) => [n.id, n]))
  const parent = new Map<number, number>()
  for (const node of profile.nodes) for (const child of node.children ?? []) parent.set(child, node.id)
  const self = new Map<string, number>()
  const inclusive = new Map<string, number>()
  let busy = 0
  profile.samples.forEach((id, i) => {
    const dt = profile.timeDeltas[i] ?? 0
    const node = byId.get(id)
    if (node === undefined) return
    const bucket = bucketOf(node.callFrame)
    self.set(bucket, (self.get(bucket) ?? 0) + dt)
    if (bucket !== '(idle)') busy += dt
    const seen = new Set<string>()
    for (let cur: number | undefined = id; cur !== undefined; cur = parent.get(cur)) {
      const frame = byId.get(cur)?.callFrame
      if (frame === undefined) break
      const b = bucketOf(frame)
      if (!b.startsWith('backbeat ')) continue
      const key = `${b}:${frame.lineNumber + 1} ${frame.functionName || '(anonymous)'}`
      if (seen.has(key)) continue
      seen.add(key)
      inclusive.set(key, (inclusive.get(key) ?? 0) + dt)
    }
  })
  const perRequest = (m: Map<string, number>): Map<string, number> => new Map([...m].map(([k, v]) => [k, requests > 0 ? v / requests : 0]))
  return { preset, requests, reqPerSec, selfUsPerRequest: perRequest(self), inclusiveUsPerRequest: perRequest(inclusive), busyUsPerRequest: requests > 0 ? busy / requests : 0 }
}

/** What to profile: a label, a preset, config overrides, and headers for every request. */
interface ProfileTarget {
  label: string
  preset: string
  overrides: string | undefined
  /** Merged into the server's backbeat.config.json. */
  config?: object
  headers?: Record<string, string>
  env?: Record<string, string>
}

async function profilePreset(target: ProfileTarget, durationS: number, connections: number): Promise<ProfileSummary> {
  const { label: preset, overrides, headers } = target
  let server: ServerHandle | undefined
  try {
    server = await spawnServer({
      name: `profile-${preset}`,
      script: repoPath('bench', 'hello-server.ts'),
      preset: target.preset,
      logToFile: target.preset !== 'bare',
      config: mergeConfig(BENCH_CONFIG, target.config),
      nodeFlags: ['--cpu-prof', '--cpu-prof-dir=cpu-profiles'],
      env: { ...target.env, ...(overrides === undefined ? {} : { BENCH_OVERRIDES: overrides }) },
    })
    await waitUntilAnswering(server, '/bench/hello', 60_000, headers)
    // Warm up without recording would need a second profile; instead load long enough that
    // start-up and JIT are a small share, and divide by requests served across the whole run.
    await measure({ url: `${server.url}/bench/hello`, connections, durationS: 2, headers })
    const m = await measure({ url: `${server.url}/bench/hello`, connections, durationS, headers })
    // Graceful shutdown ends in process.exit, which is when node writes the profile.
    await server.stop(15_000)
    const dir = join(server.dir, 'cpu-profiles')
    const file = readdirSync(dir).find((f) => f.endsWith('.cpuprofile'))
    if (file === undefined) throw new Error(`no .cpuprofile written for ${preset}: ${server.output()}`)
    const profile = JSON.parse(readFileSync(join(dir, file), 'utf8')) as CpuProfile
    // Every request of the warm-up run is in the profile too.
    const warmRequests = Math.round(m.reqPerSecTotal * 2)
    return summariseProfile(profile, preset, m.requests + warmRequests, m.reqPerSec)
  } finally {
    if (server !== undefined) {
      await server.stop(1000)
      removeServerDir(server)
    }
  }
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      presets: { type: 'string', default: 'bare,production' },
      duration: { type: 'string', default: '10' },
      connections: { type: 'string', default: '50' },
      overrides: { type: 'string' },
      edge: { type: 'boolean', default: false },
      auth: { type: 'boolean', default: false },
      top: { type: 'string', default: '25' },
    },
  })
  // --edge: the foundation stack, plus headers, CORS and rate limiting, plus request limits (scenario c).
  const targets: ProfileTarget[] = values.edge
    ? [
        { label: 'foundation', preset: 'production', overrides: undefined, config: EDGE_OFF, headers: { origin: BENCH_ORIGIN } },
        { label: 'edge', preset: 'production', overrides: undefined, config: EDGE_ON, headers: { origin: BENCH_ORIGIN } },
        { label: 'edge-all', preset: 'production', overrides: undefined, config: EDGE_ALL, headers: { origin: BENCH_ORIGIN } },
      ]
    : values.auth
      ? [
          { label: 'anonymous', preset: 'production', overrides: undefined },
          { label: 'bearer', preset: 'production', overrides: undefined, env: { BENCH_AUTH_REQUIRED: '1' }, headers: { authorization: `Bearer ${await benchToken()}` } },
        ]
      : values.presets.split(',').map((p) => ({ label: p.trim(), preset: p.trim(), overrides: values.overrides }))
  const durationS = Number(values.duration)
  const connections = Number(values.connections)
  const top = Number(values.top)
  const results: ProfileSummary[] = []
  for (const target of targets) {
    process.stdout.write(`profiling hello/${target.label} for ${durationS} s...\n`)
    results.push(await profilePreset(target, durationS, connections))
  }

  const fmt = (v: number | undefined): string => (v === undefined || v < 0.05 ? '-' : v.toFixed(1))
  const head = ['µs per request', ...results.map((r) => r.preset)]
  const last = results[results.length - 1]
  const first = results[0]
  const diff = (key: string, pick: (r: ProfileSummary) => Map<string, number>): number =>
    last === undefined || first === undefined ? 0 : (pick(last).get(key) ?? 0) - (results.length > 1 ? (pick(first).get(key) ?? 0) : 0)
  if (results.length > 1) head.push(`${last?.preset ?? ''} - ${first?.preset ?? ''}`)

  const totals = [
    ['req/s under profiler', ...results.map((r) => r.reqPerSec.toFixed(0))],
    ['busy CPU (all but idle)', ...results.map((r) => r.busyUsPerRequest.toFixed(1))],
  ]
  if (results.length > 1 && last !== undefined && first !== undefined) {
    totals[0]?.push('')
    totals[1]?.push((last.busyUsPerRequest - first.busyUsPerRequest).toFixed(1))
  }
  process.stdout.write(`\n${formatTable(head, totals)}\n`)

  const selfKeys = new Set(results.flatMap((r) => [...r.selfUsPerRequest.keys()]))
  const selfRows = [...selfKeys]
    .filter((k) => k !== '(idle)')
    .sort((a, b) => Math.abs(diff(b, (r) => r.selfUsPerRequest)) - Math.abs(diff(a, (r) => r.selfUsPerRequest)))
    .slice(0, top)
    .map((k) => [k, ...results.map((r) => fmt(r.selfUsPerRequest.get(k))), ...(results.length > 1 ? [diff(k, (r) => r.selfUsPerRequest).toFixed(1)] : [])])
  process.stdout.write(`\nSelf time by package / file (largest difference first)\n${formatTable(head, selfRows)}\n`)

  const incKeys = new Set(results.flatMap((r) => [...r.inclusiveUsPerRequest.keys()]))
  const incRows = [...incKeys]
    .sort((a, b) => (last?.inclusiveUsPerRequest.get(b) ?? 0) - (last?.inclusiveUsPerRequest.get(a) ?? 0))
    .slice(0, top)
    .map((k) => [k, ...results.map((r) => fmt(r.inclusiveUsPerRequest.get(k)))])
  process.stdout.write(`\nInclusive time of Backbeat functions (what each hook costs, callees included)\n${formatTable(['µs per request', ...results.map((r) => r.preset)], incRows)}\n`)
}

await main()

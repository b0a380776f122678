/**
 * The "middleware overhead" benchmark server: the Backbeat stack built from the public
 * exports exactly as a user would (`createBackbeatApp(loadConfig())`), plus one trivial read
 * route. The handler does no work, so any difference between presets is what the stack
 * costs per request.
 *
 * Configured like any Backbeat app (BACKBEAT_PRESET, PORT, BACKBEAT_LOG_FILE, ...). For
 * ablation runs, `BENCH_OVERRIDES` holds a JSON config fragment applied as code overrides,
 * because some options (e.g. `http.responseTimeHeader`, `logging.enabled`) have no
 * environment variable.
 *
 *   node --conditions=backbeat-source bench/hello-server.ts
 */
import { ConfigError, createBackbeatApp, loadConfig, type BackbeatConfigInput } from 'backbeat'
import { HELLO, helloSchema } from './hello-route.ts'

function overridesFromEnv(raw: string | undefined): BackbeatConfigInput | undefined {
  if (raw === undefined || raw.trim() === '') return undefined
  // loadConfig validates the result, so a typo still fails fast with ConfigError.
  return JSON.parse(raw) as BackbeatConfigInput
}

try {
  const overrides = overridesFromEnv(process.env.BENCH_OVERRIDES)
  const config = loadConfig(overrides === undefined ? {} : { overrides })
  const { app, listen } = await createBackbeatApp(config, { service: { name: 'backbeat-bench', version: '0.0.0' } })
  // BENCH_AUTH_REQUIRED: the route requires a bearer token, verified by the stack's own auth
  // (JWT_SECRET_KEY, JWT_ISSUER and JWT_AUDIENCE, set by bench/servers.ts).
  const required = process.env.BENCH_AUTH_REQUIRED === '1'
  // BENCH_CACHEABLE: the route's responses may be stored by the response cache for an hour.
  const cacheable = process.env.BENCH_CACHEABLE === '1'
  app.get('/bench/hello', { schema: helloSchema, config: { auth: required ? { required: true } : false, ...(cacheable ? { cache: { cacheControl: 'public, max-age=3600' } } : {}) } }, async () => HELLO)
  const url = await listen()
  process.stdout.write(`bench hello server (${config.preset}) listening on ${url}\n`)
} catch (err) {
  process.stderr.write(`bench hello server failed to start: ${err instanceof Error ? err.message : String(err)}\n`)
  process.exit(err instanceof ConfigError ? 2 : 1)
}

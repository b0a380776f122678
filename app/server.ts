/**
 * Starts the reference music API: `node --conditions=backbeat-source app/server.ts`.
 * Configured by the environment (PORT, DATABASE_URL, REDIS_URL, ...; see docs/configuration.md);
 * with nothing set it runs on embedded PGlite in `.backbeat/data` and needs no other service.
 * Exit codes: 2 for invalid configuration, 1 for any other start-up failure.
 */
import { ConfigError, loadConfig, type BackbeatConfig } from 'backbeat'
import { createMusicApp } from './create-music-app.ts'

function fail(code: number, message: string): never {
  process.stderr.write(`${message}\n`)
  process.exit(code)
}

let config: BackbeatConfig
try {
  config = loadConfig({ overrides: { openapi: { title: 'Backbeat music API' } } })
} catch (err) {
  if (err instanceof ConfigError) fail(2, err.message)
  throw err
}

try {
  const { app, listen } = await createMusicApp(config)
  // Listens, and installs graceful shutdown (SIGTERM/SIGINT) when enabled.
  const url = await listen()
  const docs = config.openapi.enabled ? ` (${config.openapi.ui ? 'docs: /docs' : 'OpenAPI: /openapi.json'})` : ''
  // With JSON logs on stdout, stdout stays JSON: the banner is a log line there.
  if (config.logging.enabled && config.logging.format === 'json' && config.logging.file === undefined) app.log.info({ url }, `Backbeat music API listening${docs}`)
  else process.stdout.write(`Backbeat music API listening on ${url}${docs}\n`)
} catch (err) {
  fail(1, `music API failed to start: ${err instanceof Error ? err.message : String(err)}`)
}

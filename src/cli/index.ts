/**
 * The `backbeat` command line: `npx backbeat config` prints the effective configuration
 * (secrets masked); `npx backbeat config --check` only validates it; `npx backbeat apikey ...`
 * manages API keys in the server's database.
 */
import { ConfigError } from '../core/index.ts'
import { ENV_BINDINGS, loadConfig, maskConfig } from '../config/index.ts'
import { APIKEY_USAGE, runApiKeyCli } from './apikey.ts'

export interface CliIo {
  env?: Readonly<Record<string, string | undefined>>
  cwd?: string
  stdout?: (text: string) => void
  stderr?: (text: string) => void
}

const USAGE = `Usage: backbeat <command>

Commands:
  config           Print the effective configuration as JSON (secrets masked)
  config --check   Validate the configuration; print nothing on success
  config --env     List the environment variables Backbeat reads
${APIKEY_USAGE}  help             Show this help

Exit codes: 0 done, 1 bad usage or the command failed, 2 invalid configuration (every
problem is listed). apikey commands act on the server's database: DATABASE_URL, else the
embedded one in stores.dataDir (stop a server using it first).
`

/**
 * Runs one CLI command and returns the process exit code (0 ok, 1 usage or failure, 2 bad
 * config): synchronously for `config` and `help`, as a promise for commands that do I/O
 * (`apikey`), so await the result.
 *
 * @example process.exitCode = await runCli(process.argv.slice(2))
 */
export function runCli(args: readonly string[], io: CliIo = {}): number | Promise<number> {
  const out = io.stdout ?? ((text: string) => process.stdout.write(text))
  const err = io.stderr ?? ((text: string) => process.stderr.write(text))
  const [command, ...rest] = args
  if (command === undefined || command === 'help' || command === '--help' || command === '-h') {
    out(USAGE)
    return command === undefined ? 1 : 0
  }
  if (command === 'apikey') return runApiKeyCli(rest, { env: io.env, cwd: io.cwd, stdout: out, stderr: err })
  if (command !== 'config') {
    err(`backbeat: unknown command "${command}"\n\n${USAGE}`)
    return 1
  }
  const unknown = rest.filter((flag) => flag !== '--check' && flag !== '--env')
  if (unknown.length > 0) {
    err(`backbeat: unknown option ${unknown.join(' ')} for "config"\n\n${USAGE}`)
    return 1
  }
  if (rest.includes('--env')) {
    out(ENV_BINDINGS.map((b) => `${b.name.padEnd(34)} ${b.path}`).join('\n') + '\n')
    return 0
  }
  try {
    const config = loadConfig({ ...(io.env === undefined ? {} : { env: io.env }), ...(io.cwd === undefined ? {} : { cwd: io.cwd }) })
    if (!rest.includes('--check')) out(JSON.stringify(maskConfig(config), null, 2) + '\n')
    return 0
  } catch (error) {
    if (error instanceof ConfigError) {
      err(`backbeat: ${error.message}\n`)
      return 2
    }
    throw error
  }
}

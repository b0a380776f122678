/**
 * The `backbeat` command line: `npx backbeat config` prints the effective configuration
 * (secrets masked); `npx backbeat config --check` only validates it.
 */
import { ConfigError } from '../core/index.ts'
import { ENV_BINDINGS, loadConfig, maskConfig } from '../config/index.ts'

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
  help             Show this help

Invalid configuration exits with code 2 and lists every problem.
`

/**
 * Runs one CLI command and returns the process exit code (0 ok, 1 usage, 2 bad config).
 *
 * @example process.exitCode = runCli(process.argv.slice(2))
 */
export function runCli(args: readonly string[], io: CliIo = {}): number {
  const out = io.stdout ?? ((text: string) => process.stdout.write(text))
  const err = io.stderr ?? ((text: string) => process.stderr.write(text))
  const [command, ...rest] = args
  if (command === undefined || command === 'help' || command === '--help' || command === '-h') {
    out(USAGE)
    return command === undefined ? 1 : 0
  }
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

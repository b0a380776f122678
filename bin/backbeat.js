#!/usr/bin/env node
// Runs the compiled CLI when the package is built (installed from the registry), or the
// TypeScript source directly in a checkout (Node >= 22.18 strips types natively).
let cli
try {
  cli = await import('../dist/src/cli/index.js')
} catch (error) {
  if (error?.code !== 'ERR_MODULE_NOT_FOUND') throw error
  cli = await import('../src/cli/index.ts')
}
process.exitCode = await cli.runCli(process.argv.slice(2))

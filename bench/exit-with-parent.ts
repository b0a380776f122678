/**
 * Preloaded into every benchmark server (`--import`). The runner holds the child's stdin
 * open; when the runner dies in any way (even SIGKILL, where its own cleanup cannot run),
 * the pipe closes and the server shuts itself down gracefully instead of lingering as an
 * orphan that keeps a port and a CPU busy on a shared machine.
 */
// A pipe is a net.Socket (has unref); typed loosely because stdin can also be a file stream.
const stdin: NodeJS.ReadableStream & { unref?: () => void } = process.stdin
const stop = (): void => {
  process.kill(process.pid, 'SIGTERM')
  // Graceful shutdown should finish well before this; never outlive the runner for long.
  setTimeout(() => process.exit(1), 10_000).unref()
}
stdin.once('end', stop)
stdin.once('error', stop)
stdin.resume()
// Watching the pipe must not be what keeps a server alive once it has closed.
stdin.unref?.()

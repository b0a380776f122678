import { createServer, Socket, type AddressInfo, type Server } from 'node:net'
import { Transform } from 'node:stream'

/**
 * A local TCP relay in front of a real service, so tests can cut connections (or the whole
 * service) for one client without disturbing anybody else using the shared server, or make it
 * hang (`hang()`: connections stay open, nothing gets through), as a service stuck in a long
 * command or a network black hole would.
 */
export class TcpProxy {
  readonly #server: Server
  readonly #sockets: Set<Socket>
  readonly #state: { paused: boolean; hung: boolean }
  #stopped = false

  private constructor(server: Server, sockets: Set<Socket>, state: { paused: boolean; hung: boolean }) {
    this.#server = server
    this.#sockets = sockets
    this.#state = state
  }

  /** Starts relaying 127.0.0.1:<random port> to `target` (`host:port`). */
  static async start(target: string): Promise<TcpProxy> {
    const [host = '127.0.0.1', port = '0'] = target.split(':')
    const sockets = new Set<Socket>()
    const state = { paused: false, hung: false }
    const server = createServer((client) => {
      if (state.paused) {
        // RST rather than FIN: what a client sees when the service behind the port is gone.
        client.resetAndDestroy()
        return
      }
      const upstream = new Socket()
      sockets.add(client).add(upstream)
      const forget = (): void => {
        sockets.delete(client)
        sockets.delete(upstream)
        client.destroy()
        upstream.destroy()
      }
      client.on('error', forget).on('close', forget)
      upstream.on('error', forget).on('close', forget)
      upstream.connect(Number(port), host, () => {
        client.pipe(gate(state)).pipe(upstream)
        upstream.pipe(gate(state)).pipe(client)
      })
    })
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
    return new TcpProxy(server, sockets, state)
  }

  /** `127.0.0.1:<port>` to point the client at. */
  get address(): string {
    return `127.0.0.1:${(this.#server.address() as AddressInfo).port}`
  }

  /** Resets every relayed connection, as a server restart or a network blip would. */
  dropConnections(): void {
    // RST only sockets that are fully open: on Node 24, resetting a half-closed or
    // still-connecting socket leaves a handle that never finishes closing, and the process
    // then spins forever in its exit-time handle cleanup.
    for (const socket of this.#sockets) {
      if (socket.readyState === 'open' && !socket.destroyed) socket.resetAndDestroy()
      else socket.destroy()
    }
    this.#sockets.clear()
  }

  /** Refuses new connections (accepted, then reset at once) until `resume()`. */
  pause(): void {
    this.#state.paused = true
  }

  resume(): void {
    this.#state.paused = false
  }

  /**
   * From now on nothing is forwarded in either direction, on open connections too; connections
   * stay open and new ones are still accepted (and as silent) until `unhang()`.
   */
  hang(): void {
    this.#state.hung = true
  }

  /**
   * Forwards again. The connections that were open while hung lost bytes (their protocol state
   * is gone), so they are closed, not reset, and the client reconnects afresh.
   */
  unhang(): void {
    for (const socket of this.#sockets) socket.destroy()
    this.#sockets.clear()
    this.#state.hung = false
  }

  /** Drops everything and stops listening, so the port is dead; idempotent. */
  async stop(): Promise<void> {
    if (this.#stopped) return
    this.#stopped = true
    this.dropConnections()
    await new Promise<void>((resolve) => this.#server.close(() => resolve()))
  }
}

/**
 * A pass-through that drops every chunk while the proxy hangs (checked chunk by chunk, so a hang
 * reaches connections already open).
 */
function gate(state: { hung: boolean }): Transform {
  return new Transform({
    transform(chunk: Buffer, _encoding, done) {
      done(null, state.hung ? undefined : chunk)
    },
  })
}

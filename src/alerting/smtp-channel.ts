import { connect as netConnect, type Socket } from 'node:net'
import { connect as tlsConnect } from 'node:tls'
import { renderText, type AlertChannel, type AlertNotification } from './channels.ts'

export interface SmtpChannelOptions {
  readonly host: string
  readonly port: number
  readonly from: string
  readonly to: readonly string[]
  /** Implicit TLS from the first byte (port 465). STARTTLS and AUTH are not supported. */
  readonly secure?: boolean
  /** The name sent in EHLO. */
  readonly clientName?: string
  readonly name?: string
}

const ADDRESS = /^[^\s<>@]+@[^\s<>@]+$/

/** Reads SMTP replies (multi-line `250-...` up to `250 ...`) off a socket. */
class ReplyReader {
  #buffer = ''
  #waiting: ((reply: { code: number; text: string }) => void) | undefined
  readonly #replies: { code: number; text: string }[] = []
  #lines: string[] = []

  push(chunk: string): void {
    this.#buffer += chunk
    for (let i = this.#buffer.indexOf('\r\n'); i !== -1; i = this.#buffer.indexOf('\r\n')) {
      const line = this.#buffer.slice(0, i)
      this.#buffer = this.#buffer.slice(i + 2)
      this.#lines.push(line.slice(4))
      if (line.charAt(3) !== '-') {
        const reply = { code: Number(line.slice(0, 3)), text: this.#lines.join('\n') }
        this.#lines = []
        const waiting = this.#waiting
        this.#waiting = undefined
        if (waiting === undefined) this.#replies.push(reply)
        else waiting(reply)
      }
    }
  }

  next(): Promise<{ code: number; text: string }> {
    const ready = this.#replies.shift()
    if (ready !== undefined) return Promise.resolve(ready)
    return new Promise((resolve) => { this.#waiting = resolve })
  }
}

/**
 * Plain-text mail through a minimal SMTP client (EHLO, MAIL FROM, RCPT TO, DATA, QUIT).
 * Limitations: no AUTH, no STARTTLS (use `secure` for implicit TLS, or a local relay), ASCII
 * subject, no connection reuse: meant for an internal relay such as a local MTA.
 */
export function smtpChannel(options: SmtpChannelOptions): AlertChannel {
  for (const address of [options.from, ...options.to]) {
    if (!ADDRESS.test(address)) throw new TypeError(`${JSON.stringify(address)} is not a mail address`)
  }
  if (options.to.length === 0) throw new TypeError('smtpChannel needs at least one recipient')
  return { name: options.name ?? 'smtp', send: (notification, signal) => sendMail(options, notification, signal) }
}

function buildMessage(options: SmtpChannelOptions, notification: AlertNotification): string {
  const firing = notification.alerts.filter((a) => a.status === 'firing').length
  const subject = `[${firing > 0 ? 'FIRING' : 'RESOLVED'}:${String(notification.alerts.length)}] ${notification.groupKey}`.replace(/[^\x20-\x7e]/g, '?')
  const body = renderText(notification).replace(/\r?\n/g, '\r\n').replace(/^\./gm, '..')
  return [
    `From: <${options.from}>`,
    `To: ${options.to.map((t) => `<${t}>`).join(', ')}`,
    `Subject: ${subject}`,
    `Date: ${new Date(notification.sentAtMs).toUTCString()}`,
    'MIME-Version: 1.0',
    'Content-Type: text/plain; charset=utf-8',
    'Content-Transfer-Encoding: 8bit',
    '',
    body,
  ].join('\r\n')
}

async function sendMail(options: SmtpChannelOptions, notification: AlertNotification, signal: AbortSignal): Promise<void> {
  const socket: Socket = options.secure === true ? tlsConnect({ host: options.host, port: options.port, servername: options.host }) : netConnect({ host: options.host, port: options.port })
  socket.setEncoding('utf8')
  const reader = new ReplyReader()
  const failed = new Promise<never>((_, reject) => {
    socket.once('error', reject)
    socket.once('close', () => { reject(new Error('SMTP connection closed')) })
    signal.addEventListener('abort', () => { reject(signal.reason as Error) }, { once: true })
  })
  failed.catch(() => undefined)
  socket.on('data', (chunk: string) => { reader.push(chunk) })
  const expect = async (codes: readonly number[], step: string): Promise<void> => {
    const reply = await Promise.race([reader.next(), failed])
    if (!codes.includes(reply.code)) throw new Error(`SMTP ${step} answered ${String(reply.code)} ${reply.text}`)
  }
  const command = async (line: string, codes: readonly number[], step: string): Promise<void> => {
    socket.write(`${line}\r\n`)
    await expect(codes, step)
  }
  try {
    await expect([220], 'greeting')
    await command(`EHLO ${options.clientName ?? 'backbeat'}`, [250], 'EHLO')
    await command(`MAIL FROM:<${options.from}>`, [250], 'MAIL FROM')
    for (const to of options.to) await command(`RCPT TO:<${to}>`, [250, 251], 'RCPT TO')
    await command('DATA', [354], 'DATA')
    await command(`${buildMessage(options, notification)}\r\n.`, [250], 'message')
    await command('QUIT', [221], 'QUIT').catch(() => undefined)
  } finally {
    socket.destroy()
  }
}

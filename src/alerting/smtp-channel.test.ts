import assert from 'node:assert/strict'
import { createServer, type AddressInfo, type Server } from 'node:net'
import { after, before, describe, it } from 'node:test'
import { AlertEngine } from './engine.ts'
import { errorRateRule } from './rules.ts'
import { smtpChannel } from './smtp-channel.ts'

describe('smtpChannel', () => {
  const transcripts: string[][] = []
  let server: Server
  let port = 0

  before(async () => {
    server = createServer((socket) => {
      const lines: string[] = []
      transcripts.push(lines)
      let inData = false
      let buffer = ''
      socket.setEncoding('utf8')
      socket.write('220 test ESMTP\r\n')
      socket.on('data', (chunk: string) => {
        buffer += chunk
        for (let i = buffer.indexOf('\r\n'); i !== -1; i = buffer.indexOf('\r\n')) {
          const line = buffer.slice(0, i)
          buffer = buffer.slice(i + 2)
          lines.push(line)
          if (inData) {
            if (line === '.') { inData = false; socket.write('250 queued\r\n') }
          } else if (line.startsWith('EHLO')) socket.write('250-test\r\n250 8BITMIME\r\n')
          else if (line.startsWith('RCPT TO:<nobody')) socket.write('550 no such user\r\n')
          else if (line === 'DATA') { inData = true; socket.write('354 go ahead\r\n') }
          else if (line === 'QUIT') { socket.end('221 bye\r\n') }
          else socket.write('250 ok\r\n')
        }
      })
    })
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
    port = (server.address() as AddressInfo).port
  })

  after(async () => {
    await new Promise<void>((resolve) => server.close(() => { resolve() }))
  })

  it('sends a plain-text mail through EHLO, MAIL FROM, RCPT TO, DATA and QUIT', async () => {
    const channel = smtpChannel({ host: '127.0.0.1', port, from: 'alerts@backbeat.test', to: ['ops@backbeat.test'] })
    const engine = new AlertEngine({ rules: [errorRateRule(0.01, { forS: 0 })], channels: [channel], options: { groupWaitMs: 0, delivery: { retries: 0 } } })
    engine.evaluate({ errorRate: 0.5 }, 0)
    await engine.drain()
    assert.equal(engine.stats().delivered, 1, JSON.stringify(engine.history()))
    const lines = transcripts.at(-1) ?? []
    assert.deepEqual(lines.slice(0, 4), ['EHLO backbeat', 'MAIL FROM:<alerts@backbeat.test>', 'RCPT TO:<ops@backbeat.test>', 'DATA'])
    assert.ok(lines.includes('Subject: [FIRING:1] HighErrorRate'))
    assert.ok(lines.includes('[FIRED] critical HighErrorRate (value 0.5): error rate above 1 %'))
    assert.deepEqual(lines.slice(-2), ['.', 'QUIT'])
  })

  it('fails the delivery when the server rejects a recipient', async () => {
    const channel = smtpChannel({ host: '127.0.0.1', port, from: 'alerts@backbeat.test', to: ['nobody@backbeat.test'] })
    const engine = new AlertEngine({ rules: [errorRateRule(0.01, { forS: 0 })], channels: [channel], options: { groupWaitMs: 0, delivery: { retries: 0 } } })
    engine.evaluate({ errorRate: 0.5 }, 0)
    await engine.drain()
    assert.match(engine.history({ limit: 1 })[0]?.error ?? '', /RCPT TO answered 550/)
  })

  it('rejects malformed addresses up front', () => {
    assert.throws(() => smtpChannel({ host: 'h', port: 25, from: 'a b@c', to: ['x@y'] }), /not a mail address/)
    assert.throws(() => smtpChannel({ host: 'h', port: 25, from: 'a@c', to: [] }), /at least one recipient/)
  })
})

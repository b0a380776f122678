import type { AlertSeverity } from './rules.ts'

export type AlertStatus = 'firing' | 'resolved'

/** One alert inside a notification batch. */
export interface NotifiedAlert {
  readonly rule: string
  readonly labels: Readonly<Record<string, string>>
  readonly severity: AlertSeverity
  readonly status: AlertStatus
  /** `escalated`: a firing alert re-notified with a raised severity. */
  readonly reason: 'fired' | 'escalated' | 'resolved'
  readonly value: number | undefined
  readonly startsAtMs: number
  readonly endsAtMs?: number
  readonly summary?: string
}

/** A batch of alerts that share a group key, sent to every channel. */
export interface AlertNotification {
  readonly groupKey: string
  readonly sentAtMs: number
  readonly alerts: readonly NotifiedAlert[]
}

export interface AlertChannel {
  readonly name: string
  /** Delivers one notification; must honour `signal` (the engine also stops waiting once it aborts). */
  send(notification: AlertNotification, signal: AbortSignal): Promise<void>
}

async function postJson(url: string, body: unknown, signal: AbortSignal): Promise<void> {
  const response = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body), signal })
  await response.body?.cancel()
  if (!response.ok) throw new Error(`POST ${new URL(url).host} answered ${String(response.status)}`)
}

/** Generic webhook: POSTs the notification as JSON. */
export function webhookChannel(url: string, name = 'webhook'): AlertChannel {
  const target = new URL(url).toString()
  return { name, send: (notification, signal) => postJson(target, notification, signal) }
}

function line(alert: NotifiedAlert): string {
  const labels = Object.entries(alert.labels).map(([k, v]) => `${k}=${v}`).join(', ')
  const value = alert.value === undefined ? '' : ` (value ${String(alert.value)})`
  return `[${alert.reason.toUpperCase()}] ${alert.severity} ${alert.rule}${labels === '' ? '' : ` {${labels}}`}${value}${alert.summary === undefined ? '' : `: ${alert.summary}`}`
}

/** Plain-text rendering shared by Slack and mail channels. */
export function renderText(notification: AlertNotification): string {
  return notification.alerts.map(line).join('\n')
}

/** Slack incoming webhook (`{ text, blocks }`). */
export function slackChannel(webhookUrl: string, name = 'slack'): AlertChannel {
  const target = new URL(webhookUrl).toString()
  return {
    name,
    send: (notification, signal) => {
      const text = renderText(notification)
      const blocks = [{ type: 'section', text: { type: 'mrkdwn', text: `*${notification.groupKey}*\n${text}` } }]
      return postJson(target, { text, blocks }, signal)
    },
  }
}

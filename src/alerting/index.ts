/**
 * Alerting: rules evaluated against metric snapshots (pending → firing after `forS`, cooldown,
 * deduplication, grouping, silences, escalation, resolution), background delivery to webhook,
 * Slack and SMTP channels with timeouts, retries and bounded queues, a bounded event history for the
 * ops API, and export of the rules as Prometheus alerting rules.
 */
export { AlertEngine } from './engine.ts'
export type { ActiveAlert, AlertEngineOptions, AlertEngineStats, AlertEvent, AlertEventType, Silence, SilenceMatcher } from './engine.ts'
export { cacheMissRateRule, compare, cpuRule, customRule, errorRateRule, inFlightRule, memoryRule, p95LatencyRule, securityThreatRule } from './rules.ts'
export type { AlertRule, AlertSeverity, Comparator, CustomRuleDefinition, MetricsSnapshot, RuleOptions } from './rules.ts'
export { renderText, slackChannel, webhookChannel } from './channels.ts'
export type { AlertChannel, AlertNotification, AlertStatus, NotifiedAlert } from './channels.ts'
export { smtpChannel } from './smtp-channel.ts'
export type { SmtpChannelOptions } from './smtp-channel.ts'
export { toPrometheusRules } from './prometheus.ts'
export { alertingOptionsSchema } from './options.ts'
export type { AlertingOptions, AlertingOptionsInput } from './options.ts'

// Smoke test of the published build, as a consumer sees it: the package resolves to dist/
// without the backbeat-source condition, every subpath loads, and the stack answers.
import assert from 'node:assert/strict'
import { readFileSync } from 'node:fs'

const pkg = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8'))
for (const key of Object.keys(pkg.exports).filter((k) => k !== './package.json')) {
  const specifier = key === '.' ? 'backbeat' : `backbeat/${key.slice(2)}`
  assert.match(import.meta.resolve(specifier), /\/dist\/src\/.*\.js$/, `${specifier} does not resolve to dist/`)
  const mod = await import(specifier)
  assert.ok(Object.keys(mod).length > 0, `${specifier} exports nothing`)
}
const { createBackbeatApp, parseConfig } = await import('backbeat')
const { app } = await createBackbeatApp(parseConfig({ preset: 'production', logging: { enabled: false }, auth: { jwt: { secretKey: 'check-dist-only-secret-of-32-characters!' }, vault: { keys: { 1: 'Y2hlY2stZGlzdC1vbmx5LXZhdWx0LWtleS0zMmJ5dGU=' } } } }))
const res = await app.inject({ url: '/nope' })
assert.equal(res.statusCode, 404)
assert.equal(JSON.parse(res.body).code, 'ERR_HTTP_ROUTE_NOT_FOUND')
await app.close()
console.log(`dist ok: ${Object.keys(pkg.exports).length - 1} entry points load from dist/`)

import assert from 'node:assert/strict'
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { describe, it } from 'node:test'
import { pathToFileURL } from 'node:url'
import ts from 'typescript'
import { Cached } from './decorator.ts'
import { MemoryCacheStore } from './memory-store.ts'
import { TieredCache } from './tiered-cache.ts'

const T0 = 1_800_000_000_000

function cacheAt(now = (): number => T0): { cache: TieredCache; l2: MemoryCacheStore } {
  const l2 = new MemoryCacheStore({ now })
  return { cache: new TieredCache({ namespace: 'test', tiers: [l2], now, jitter: 0 }), l2 }
}

/** What a TC39 runtime hands a method decorator (the shape `ClassMethodDecoratorContext` describes). */
/** The method type a decorator context describes. */
type AsyncMethod<This, A extends unknown[], R> = (this: This, ...args: A) => Promise<R>

function methodContext(name: string, kind: 'method' | 'getter' = 'method'): object {
  return { kind, name, static: false, private: false, access: { has: () => true, get: () => undefined }, addInitializer: () => undefined, metadata: {} }
}

interface Album {
  id: string
  call: number
}

describe('@Cached applied by hand', () => {
  it('caches the method per derived key, with TTL and tags', async () => {
    const { cache, l2 } = cacheAt()
    class Catalog {
      calls = 0
      album(id: string): Promise<Album> {
        this.calls += 1
        return Promise.resolve({ id, call: this.calls })
      }
    }
    const decorate = Cached<Catalog, [string], Album>(cache, { key: (id) => `album:${id}`, ttlS: 60, tags: (id) => [`album:${id}`] })
    // eslint-disable-next-line @typescript-eslint/unbound-method -- a decorator receives the unbound method, as the runtime hands it over
    Catalog.prototype.album = decorate(Catalog.prototype.album, methodContext('album') as ClassMethodDecoratorContext<Catalog, AsyncMethod<Catalog, [string], Album>>)
    const catalog = new Catalog()
    assert.deepEqual(await catalog.album('a1'), { id: 'a1', call: 1 })
    assert.deepEqual(await catalog.album('a1'), { id: 'a1', call: 1 })
    assert.deepEqual(await catalog.album('a2'), { id: 'a2', call: 2 })
    assert.equal(catalog.calls, 2, 'the original ran with `this` bound to the instance')
    const stored = await l2.get('test:album:a1')
    assert.equal(stored?.freshUntil, T0 + 60_000)
    assert.deepEqual(stored.tags, ['album:a1'])
  })

  it('reads the cache from the instance through a getter, and shares one call among concurrent callers', async () => {
    class Tracks {
      readonly cache: TieredCache
      calls = 0
      constructor(cache: TieredCache) {
        this.cache = cache
      }
      async track(id: string): Promise<string> {
        this.calls += 1
        await new Promise((resolve) => setTimeout(resolve, 5))
        return `track ${id}`
      }
    }
    const decorate = Cached<Tracks, [string], string>((self) => self.cache, { key: (id) => `track:${id}`, graceS: 30 })
    // eslint-disable-next-line @typescript-eslint/unbound-method -- a decorator receives the unbound method, as the runtime hands it over
    Tracks.prototype.track = decorate(Tracks.prototype.track, methodContext('track') as ClassMethodDecoratorContext<Tracks, AsyncMethod<Tracks, [string], string>>)
    const a = new Tracks(cacheAt().cache)
    const b = new Tracks(cacheAt().cache)
    assert.deepEqual(await Promise.all([a.track('t1'), a.track('t1'), a.track('t1')]), ['track t1', 'track t1', 'track t1'])
    assert.equal(a.calls, 1)
    await b.track('t1')
    assert.equal(b.calls, 1, 'each instance uses its own cache')
  })

  it('refuses what it cannot wrap', async () => {
    const { cache } = cacheAt()
    assert.throws(() => Cached('not a cache' as unknown as TieredCache, { key: () => 'k' }), TypeError)
    assert.throws(() => Cached(cache, {} as { key: () => string }), TypeError)
    const decorate = Cached<object, [], number>(cache, { key: () => 'k' })
    assert.throws(() => decorate(() => Promise.resolve(1), methodContext('value', 'getter') as ClassMethodDecoratorContext<object, AsyncMethod<object, [], number>>), /applies to methods/)
    const broken = Cached<object, [], number>(() => 'not a cache' as unknown as TieredCache, { key: () => 'k' })(() => Promise.resolve(1), methodContext('m') as ClassMethodDecoratorContext<object, AsyncMethod<object, [], number>>)
    await assert.rejects(broken.call({}), /did not return a TieredCache/)
  })
})

describe('@Cached as real decorator syntax (compiled by TypeScript)', () => {
  it('caches through the standard decorators TypeScript emits for ES2022', async () => {
    const source = `
      export function build(Cached, cache) {
        class Catalog {
          calls = 0
          @Cached(cache, { key: (id: string) => 'album:' + id, ttlS: 60, tags: ['albums'] })
          async album(id: string) {
            this.calls += 1
            return { id, call: this.calls }
          }
          @Cached((self: Catalog) => self.other, { key: (n: number) => 'n:' + n })
          async double(n: number) {
            this.calls += 1
            return n * 2
          }
          other = cache
        }
        return Catalog
      }
    `
    const { outputText, diagnostics } = ts.transpileModule(source, {
      compilerOptions: { target: ts.ScriptTarget.ES2022, module: ts.ModuleKind.ESNext, experimentalDecorators: false },
      reportDiagnostics: true,
    })
    assert.deepEqual(diagnostics ?? [], [])
    assert.match(outputText, /__esDecorate/, 'standard (TC39) decorators, not the legacy ones')
    const dir = await mkdtemp(join(tmpdir(), 'backbeat-cached-'))
    try {
      const file = join(dir, 'catalog.mjs')
      await writeFile(file, outputText)
      const { build } = (await import(pathToFileURL(file).href)) as { build: (cached: typeof Cached, cache: TieredCache) => new () => { calls: number; album(id: string): Promise<Album>; double(n: number): Promise<number> } }
      const { cache, l2 } = cacheAt()
      const Catalog = build(Cached, cache)
      const catalog = new Catalog()
      assert.deepEqual(await catalog.album('a1'), { id: 'a1', call: 1 })
      assert.deepEqual(await catalog.album('a1'), { id: 'a1', call: 1 })
      assert.equal(await catalog.double(21), 42)
      assert.equal(await catalog.double(21), 42)
      assert.equal(catalog.calls, 2)
      assert.deepEqual((await l2.get('test:album:a1'))?.tags, ['albums'])
      await cache.invalidateTags(['albums'])
      assert.deepEqual(await new Catalog().album('a1'), { id: 'a1', call: 1 }, 'a new instance reloads after the invalidation')
    } finally {
      await rm(dir, { recursive: true, force: true })
    }
  })
})

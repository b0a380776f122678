/**
 * `@Cached()`: caches an async method's result through {@link TieredCache.getOrSet}. A TC39
 * standard decorator (TypeScript 5+ without `experimentalDecorators`); Node's type stripping
 * cannot run decorator syntax, so the class using it must be compiled by `tsc` (or another
 * compiler that emits standard decorators). Nothing else changes: calls with the same derived
 * key share one cached value, one loader call at a time (single-flight), stale values within
 * grace, tags for invalidation.
 *
 * @example
 * import { Cached } from 'backbeat/cache'
 *
 * class Catalog {
 *   constructor(readonly cache: TieredCache, readonly db: Db) {}
 *
 *   // The cache is read from the instance at call time; a TieredCache can be passed directly too.
 *   @Cached((self: Catalog) => self.cache, { key: (id: string) => `album:${id}`, ttlS: 300, graceS: 60, tags: (id) => [`album:${id}`] })
 *   async album(id: string): Promise<Album> {
 *     return this.db.album(id)
 *   }
 * }
 */
import { TieredCache, type GetOrSetOptions } from './tiered-cache.ts'

/** Options of {@link Cached}. */
export interface CachedOptions<A extends unknown[]> extends Omit<GetOrSetOptions, 'tags'> {
  /** The cache key of a call, from its arguments (in the cache's namespace; include the method's name if keys could collide). */
  readonly key: (...args: A) => string
  /** Tags of every call, or computed from a call's arguments. */
  readonly tags?: readonly string[] | ((...args: A) => readonly string[])
}

/**
 * A method the decorator can wrap: async only, since the cached version answers with a
 * Promise (TypeScript reports `@Cached` on a synchronous method as a type error).
 */
type Method<This, A extends unknown[], R> = (this: This, ...args: A) => Promise<R>

/**
 * Decorates a class method so its result is cached in `cache` (a {@link TieredCache}, or a
 * function returning it for the instance, e.g. `(self) => self.cache`). The method must be
 * async. Throws a TypeError when applied to anything but a method.
 *
 * @example
 * class Tracks {
 *   @Cached(cache, { key: (id: string) => `track:${id}`, ttlS: 60, tags: ['tracks'] })
 *   async track(id: string): Promise<Track> { return api.track(id) }
 * }
 */
export function Cached<This, A extends unknown[], R>(
  cache: TieredCache | ((self: This) => TieredCache),
  options: CachedOptions<A>,
): (method: Method<This, A, R>, context: ClassMethodDecoratorContext<This, Method<This, A, R>>) => (this: This, ...args: A) => Promise<R> {
  if (!(cache instanceof TieredCache) && typeof cache !== 'function') throw new TypeError('@Cached needs a TieredCache or a function returning one')
  if (typeof options.key !== 'function') throw new TypeError('@Cached needs a key function')
  const { key, tags, ...rest } = options
  return (method, context) => {
    // The types allow methods only, but plain JavaScript callers get no type check.
    const kind = (context as { kind: unknown }).kind
    if (kind !== 'method') throw new TypeError(`@Cached applies to methods, not to a ${String(kind)}`)
    const name = String(context.name)
    return function cached(this: This, ...args: A): Promise<R> {
      const target = typeof cache === 'function' ? cache(this) : cache
      if (!(target instanceof TieredCache)) return Promise.reject(new TypeError(`@Cached on ${name}: the cache getter did not return a TieredCache`))
      const perCall: GetOrSetOptions = tags === undefined ? rest : { ...rest, tags: typeof tags === 'function' ? tags(...args) : tags }
      return target.getOrSet<R>(key(...args), () => method.apply(this, args), perCall)
    }
  }
}

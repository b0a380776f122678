/** Resolves a client address to an ISO 3166-1 alpha-2 country code, or undefined. */
export type CountryResolver = (ip: string) => string | undefined

import { z } from 'zod';

/** `NAME=` in an env file means "not set", not an empty value. */
export const unsetIfEmpty = <T extends z.ZodType>(schema: T) =>
  z.preprocess((value) => (value === '' ? undefined : value), schema);

/** A `true` / `false` setting, as a boolean. */
export const flag = (byDefault: 'true' | 'false') =>
  z
    .enum(['true', 'false'])
    .default(byDefault)
    .transform((value) => value === 'true');

export const postgresUrl = () => z.string().regex(/^postgres(ql)?:\/\//, 'a postgres:// URL');

export const httpUrl = () => z.url({ protocol: /^https?$/, error: 'an http(s):// URL' });

/** A URL parsed, or undefined if it is none (the schema reports that). */
export function parsedUrl(url: string): URL | undefined {
  try {
    return new URL(url);
  } catch {
    return undefined;
  }
}

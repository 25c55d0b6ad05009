/**
 * Small TypeBox builders shared by the handlers' details schemas (`<handler>/schema.ts`).
 * Every object is closed (`additionalProperties: false`: an unknown field is an error that
 * names it). `errorMessage` on a node replaces the generic message of a type, pattern or enum
 * failure of that value (see parse.ts); bounds keep their precise generic messages.
 */
import { Type, type TProperties, type TObject, type TSchema } from 'typebox';

/** Options every details node may carry besides the JSON Schema keywords. */
export interface DetailsNodeOptions {
  readonly description?: string;
  /**
   * Replaces the message of a type, pattern, enum or const failure of this value; or, as
   * `{keyword: message}`, of the failures of the keywords named.
   */
  readonly errorMessage?: string | Readonly<Record<string, string>>;
  readonly [keyword: string]: unknown;
}

/** An object that refuses unknown fields. */
export function closedObject<const Properties extends TProperties>(
  properties: Properties,
  options: DetailsNodeOptions = {},
): TObject<Properties> {
  return Type.Object(properties, { ...options, additionalProperties: false });
}

/** A string that is one of `values` (`{type: string, enum}`), typed as their union. */
export function stringEnum<const Values extends readonly string[]>(
  values: Values,
  options: DetailsNodeOptions = {},
): ReturnType<typeof Type.Unsafe<Values[number]>> {
  return Type.Unsafe<Values[number]>({ type: 'string', enum: [...values], ...options });
}

/** `true` (use the defaults), `false`/absent (off) or an options object. */
export function switchable<const Options extends TSchema>(
  options: Options,
  description: string,
): ReturnType<typeof Type.Union<[ReturnType<typeof Type.Boolean>, Options]>> {
  return Type.Union([Type.Boolean(), options], { description });
}

const filterValues = (description: string): ReturnType<typeof Type.Array<ReturnType<typeof Type.String>>> =>
  Type.Array(Type.String({ maxLength: 1024, pattern: '\\S', errorMessage: 'must be a non-empty string' }), {
    description,
    maxItems: 1024,
    default: [],
  });

const akriFilter = closedObject({
  action: stringEnum(['Include', 'Exclude'] as const, { description: 'Whether items include or exclude.', default: 'Include' }),
  items: filterValues('The values.'),
});

/**
 * Builds a handler's filter field: Tether's `{include, exclude}` or Akri's `{action, items}`;
 * `keep` and `drop` describe the two lists in the handler's own words.
 */
const tetherFilter = (
  keep: string,
  drop: string,
): TObject<{ include: ReturnType<typeof filterValues>; exclude: ReturnType<typeof filterValues> }> =>
  closedObject({ include: filterValues(keep), exclude: filterValues(drop) });

export function includeExcludeFilter(
  keep: string,
  drop: string,
): (
  description: string,
) => ReturnType<typeof Type.Optional<ReturnType<typeof Type.Union<[ReturnType<typeof tetherFilter>, typeof akriFilter]>>>> {
  const tether = tetherFilter(keep, drop);
  return (description) =>
    Type.Optional(Type.Union([tether, akriFilter], { description: `${description} {include, exclude} or Akri's {action, items}.` }));
}

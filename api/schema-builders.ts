/**
 * Building blocks of the CRD schemas (api/schema.ts, api/broker-schema.ts): structural pieces
 * (string enums, string maps, opaque objects and lists) and CEL rules.
 */
import { Type } from 'typebox';

export interface CelRule {
  readonly rule: string;
  readonly message: string;
  readonly reason?: 'FieldValueInvalid' | 'FieldValueForbidden' | 'FieldValueRequired' | 'FieldValueDuplicate';
  readonly fieldPath?: string;
}

export function cel(...rules: CelRule[]): { 'x-kubernetes-validations': CelRule[] } {
  return { 'x-kubernetes-validations': rules };
}

export function immutable(field: string): { 'x-kubernetes-validations': CelRule[] } {
  return cel({ rule: 'self == oldSelf', message: `${field} is immutable` });
}

/** A string enum that stays structural (`{type: string, enum}`) with a precise static type. */
export function stringEnum<const T extends readonly string[]>(
  values: T,
  options: Record<string, unknown> = {},
): ReturnType<typeof Type.Unsafe<T[number]>> {
  return Type.Unsafe<T[number]>({ type: 'string', enum: [...values], ...options });
}

/** A `map[string]string` (structural: `additionalProperties`, never `patternProperties`). */
export function stringMap(
  description: string,
  maxProperties: number,
  valueMaxLength: number,
  options: Record<string, unknown> = {},
): ReturnType<typeof Type.Unsafe<Record<string, string>>> {
  return Type.Unsafe<Record<string, string>>({
    type: 'object',
    description,
    maxProperties,
    additionalProperties: { type: 'string', maxLength: valueMaxLength },
    ...options,
  });
}

/** An object whose content is validated elsewhere (by a handler, or the apiserver on use). */
export function opaqueObject<T>(description: string, extra: Record<string, unknown> = {}): ReturnType<typeof Type.Unsafe<T>> {
  return Type.Unsafe<T>({
    type: 'object',
    description,
    'x-kubernetes-preserve-unknown-fields': true,
    ...extra,
  });
}

/** A list of objects kept only loosely (items preserved as-is), at least one item. */
export function opaqueList(description: string, maxItems: number): Record<string, unknown> {
  return {
    type: 'array',
    description,
    minItems: 1,
    maxItems,
    items: { type: 'object', 'x-kubernetes-preserve-unknown-fields': true },
  };
}

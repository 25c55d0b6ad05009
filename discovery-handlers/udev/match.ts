/**
 * Does a device match a rule? udev's semantics, on the records of one scan. Pure.
 *
 * - Device keys look at the device itself. A missing SUBSYSTEM, DRIVER or ENV value is the empty
 *   string (so `ENV{ID_SERIAL}=="?*"` means "set and not empty", as in udev); a missing ATTR
 *   never matches, with either operator (as udev). TAG holds when any tag matches; `TAG!=` when none does.
 * - Parent keys (KERNELS, SUBSYSTEMS, DRIVERS, ATTRS, TAGS) with `==` must all hold on ONE
 *   device of the chain device → parent → … (udev: `ATTRS{idVendor}=="0403", ATTRS{serial}=="A1"`
 *   finds the adapter whose vendor and serial both fit, never a vendor on one ancestor and a
 *   serial on another).
 * - A parent key with `!=` holds when no device of the chain matches it. (udev applies it to the
 *   same single ancestor, where `KERNELS!="x"` is true almost anywhere; Akri reads it as "no
 *   ancestor", which is what such a rule means, so Akri's rules keep their meaning.)
 */
import { plainAlternatives } from './glob.ts';
import type { DeviceIndex, UdevDevice } from './records.ts';
import { isParentKey, type MatchExpression, type UdevRule } from './rules.ts';

/** Most devices on a chain (device plus ancestors); sysfs trees are far shallower. */
export const MAX_PARENT_DEPTH = 64;

/** Whether `e` holds on `device` itself, ignoring `negate` for the keys whose negation is per value. */
function holds(e: MatchExpression, device: UdevDevice): boolean {
  const test = (value: string | undefined): boolean => e.value.test(value ?? '');
  switch (e.key) {
    case 'KERNEL':
    case 'KERNELS':
      return test(device.sysname);
    case 'SUBSYSTEM':
    case 'SUBSYSTEMS':
      return test(device.subsystem);
    case 'DRIVER':
    case 'DRIVERS':
      return test(device.driver);
    case 'DEVPATH':
      return test(device.devpath);
    case 'ENV':
      return test(device.env.get(e.name!));
    case 'ATTR':
    case 'ATTRS': {
      const value = device.attrs.get(e.name!);
      return value !== undefined && e.value.test(value);
    }
    case 'TAG':
    case 'TAGS':
      return [...device.tags].some((tag) => e.value.test(tag));
  }
}

/** udev: a missing attribute fails `!=` as well as `==`. */
function holdsOnDevice(e: MatchExpression, device: UdevDevice): boolean {
  if (e.key === 'ATTR' && device.attrs.get(e.name!) === undefined) return false;
  return holds(e, device) !== e.negate;
}

/** The device and its ancestors, nearest first, bounded. */
export function chainOf(device: UdevDevice, index: DeviceIndex): UdevDevice[] {
  const chain = [device];
  for (let d = device; d.parent !== undefined && chain.length < MAX_PARENT_DEPTH;) {
    const parent = index.get(d.parent);
    if (parent === undefined) break;
    chain.push(parent);
    d = parent;
  }
  return chain;
}

/** Whether `device` matches every expression of `rule`. */
export function matchesRule(rule: UdevRule, device: UdevDevice, index: DeviceIndex): boolean {
  const same: MatchExpression[] = [];
  const none: MatchExpression[] = [];
  for (const e of rule.expressions) {
    if (!isParentKey(e.key)) {
      if (!holdsOnDevice(e, device)) return false;
    } else {
      (e.negate ? none : same).push(e);
    }
  }
  if (same.length === 0 && none.length === 0) return true;
  const chain = chainOf(device, index);
  if (none.some((e) => chain.some((d) => holds(e, d)))) return false;
  return same.length === 0 || chain.some((d) => same.every((e) => holds(e, d)));
}

/** Whether `device` matches any of `rules`. */
export function matchesAny(rules: readonly UdevRule[], device: UdevDevice, index: DeviceIndex): boolean {
  return rules.some((rule) => matchesRule(rule, device, index));
}

/** What a scan must read for `rules`: which attributes, and which subsystems (undefined: all). */
export interface ScanNeeds {
  readonly attrs: readonly string[];
  readonly subsystems: readonly string[] | undefined;
}

const SUBSYSTEM_NAME = /^[A-Za-z0-9_.:-]{1,64}$/;

/**
 * The attributes the rules name, and — when every rule pins `SUBSYSTEM==` to plain names —
 * those subsystems, so a scan lists `/sys/class/<s>` and `/sys/bus/<s>` instead of everything
 * (what libudev's enumerator does with a subsystem match).
 */
export function scanNeeds(rules: readonly UdevRule[]): ScanNeeds {
  const attrs = new Set<string>();
  const subsystems = new Set<string>();
  let everything = false;
  for (const rule of rules) {
    for (const e of rule.expressions) if ((e.key === 'ATTR' || e.key === 'ATTRS') && e.name !== undefined) attrs.add(e.name);
    const pinned = rule.expressions.find((e) => e.key === 'SUBSYSTEM' && !e.negate && e.value.plain);
    const names = pinned === undefined ? undefined : plainAlternatives(pinned.value);
    if (names === undefined || !names.every((n) => SUBSYSTEM_NAME.test(n))) everything = true;
    else for (const n of names) subsystems.add(n);
  }
  return { attrs: [...attrs].sort(), subsystems: everything ? undefined : [...subsystems].sort() };
}

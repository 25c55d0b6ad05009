import { mkdir, mkdtemp, readFile, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { parseElfDependencies } from './elf.ts';
import { sharedLibraryClosure } from './glibc.ts';

/** A minimal ELF64 LE file: one PT_LOAD over everything, optional PT_INTERP, PT_DYNAMIC. */
function fakeElf(options: { machine: 'x86_64' | 'aarch64'; interpreter?: string; needed: string[] }): Buffer {
  const phnum = 3;
  const interp = Buffer.from(`${options.interpreter ?? ''}\0`);
  const strtab = Buffer.concat([Buffer.from('\0'), ...options.needed.map((n) => Buffer.from(`${n}\0`))]);
  const interpOffset = 64 + phnum * 56;
  const strtabOffset = interpOffset + interp.length;
  const dynamicOffset = strtabOffset + strtab.length;
  const dynamic = Buffer.alloc((options.needed.length + 2) * 16);
  let nameOffset = 1;
  options.needed.forEach((name, i) => {
    dynamic.writeBigInt64LE(1n, i * 16); // DT_NEEDED
    dynamic.writeBigUInt64LE(BigInt(nameOffset), i * 16 + 8);
    nameOffset += name.length + 1;
  });
  const vaddr = 0x400000n; // load address ≠ file offset: DT_STRTAB must be mapped
  dynamic.writeBigInt64LE(5n, options.needed.length * 16); // DT_STRTAB
  dynamic.writeBigUInt64LE(vaddr + BigInt(strtabOffset), options.needed.length * 16 + 8);
  const total = dynamicOffset + dynamic.length;

  const header = Buffer.alloc(64);
  header.writeUInt32BE(0x7f454c46, 0);
  header[4] = 2; // ELFCLASS64
  header[5] = 1; // little-endian
  header.writeUInt16LE(options.machine === 'x86_64' ? 62 : 183, 18);
  header.writeBigUInt64LE(64n, 32); // e_phoff
  header.writeUInt16LE(56, 54);
  header.writeUInt16LE(phnum, 56);
  const phdr = (type: number, offset: number, size: number): Buffer => {
    const p = Buffer.alloc(56);
    p.writeUInt32LE(type, 0);
    p.writeBigUInt64LE(BigInt(offset), 8);
    p.writeBigUInt64LE(vaddr + BigInt(offset), 16);
    p.writeBigUInt64LE(BigInt(size), 32);
    return p;
  };
  const interpHeader = options.interpreter === undefined ? phdr(0, 0, 0) : phdr(3, interpOffset, interp.length);
  return Buffer.concat([header, phdr(1, 0, total), interpHeader, phdr(2, dynamicOffset, dynamic.length), interp, strtab, dynamic]);
}

describe('parseElfDependencies', () => {
  it('reads PT_INTERP and DT_NEEDED through DT_STRTAB', () => {
    const elf = fakeElf({ machine: 'aarch64', interpreter: '/lib/ld-linux-aarch64.so.1', needed: ['libstdc++.so.6', 'libc.so.6'] });
    expect(parseElfDependencies(elf)).toEqual({
      machine: 'aarch64',
      interpreter: '/lib/ld-linux-aarch64.so.1',
      needed: ['libstdc++.so.6', 'libc.so.6'],
    });
  });

  it('reads a library (no interpreter)', () => {
    expect(parseElfDependencies(fakeElf({ machine: 'x86_64', needed: ['libc.so.6'] }))).toEqual({
      machine: 'x86_64',
      interpreter: undefined,
      needed: ['libc.so.6'],
    });
  });

  it.runIf(process.platform === 'linux' && process.arch === 'x64')('reads the running Node binary like readelf does', async () => {
    const deps = parseElfDependencies(await readFile(process.execPath));
    expect(deps.machine).toBe('x86_64');
    expect(deps.interpreter).toBe('/lib64/ld-linux-x86-64.so.2');
    expect(deps.needed).toContain('libc.so.6');
  });

  it.each([
    ['not ELF', Buffer.from('#!/bin/sh\n'.padEnd(64, ' '))],
    ['32-bit', Buffer.concat([Buffer.from([0x7f, 0x45, 0x4c, 0x46, 1, 1]), Buffer.alloc(58)])],
  ])('rejects %s', (_name, data) => {
    expect(() => parseElfDependencies(data)).toThrow();
  });
});

describe('sharedLibraryClosure', () => {
  const dirs: string[] = [];
  afterEach(async () => {
    for (const dir of dirs.splice(0)) await rm(dir, { recursive: true, force: true });
  });

  /** A fake extracted-deb tree laid out like Debian bookworm's arm64 libc6/libstdc++6. */
  async function debRoot(): Promise<string> {
    const root = await mkdtemp(join(tmpdir(), 'debroot-'));
    dirs.push(root);
    const put = async (path: string, data: Buffer): Promise<void> => {
      await mkdir(dirname(join(root, path)), { recursive: true });
      await writeFile(join(root, path), data);
    };
    await put('lib/aarch64-linux-gnu/ld-linux-aarch64.so.1', fakeElf({ machine: 'aarch64', needed: [] }));
    await symlink('aarch64-linux-gnu/ld-linux-aarch64.so.1', join(root, 'lib/ld-linux-aarch64.so.1'));
    await put('lib/aarch64-linux-gnu/libc.so.6', fakeElf({ machine: 'aarch64', needed: ['ld-linux-aarch64.so.1'] }));
    await put('lib/aarch64-linux-gnu/libm.so.6', fakeElf({ machine: 'aarch64', needed: ['libc.so.6'] }));
    await put('lib/aarch64-linux-gnu/libunused.so.1', fakeElf({ machine: 'aarch64', needed: [] }));
    await put('usr/lib/aarch64-linux-gnu/libstdc++.so.6.0.30', fakeElf({ machine: 'aarch64', needed: ['libm.so.6', 'libc.so.6'] }));
    await symlink('libstdc++.so.6.0.30', join(root, 'usr/lib/aarch64-linux-gnu/libstdc++.so.6'));
    return root;
  }

  it('collects the loader at its PT_INTERP path, the NEEDED closure and the links to it', async () => {
    const root = await debRoot();
    const deps = { machine: 'aarch64', interpreter: '/lib/ld-linux-aarch64.so.1', needed: ['libstdc++.so.6', 'libc.so.6'] };
    expect(await sharedLibraryClosure({ debRoot: root, architecture: 'arm64', deps })).toEqual([
      'lib/aarch64-linux-gnu/ld-linux-aarch64.so.1',
      'lib/aarch64-linux-gnu/libc.so.6',
      'lib/aarch64-linux-gnu/libm.so.6',
      'lib/ld-linux-aarch64.so.1',
      'usr/lib/aarch64-linux-gnu/libstdc++.so.6',
      'usr/lib/aarch64-linux-gnu/libstdc++.so.6.0.30',
    ]);
  });

  it('fails on a missing library and on a library of another machine', async () => {
    const root = await debRoot();
    await expect(
      sharedLibraryClosure({
        debRoot: root,
        architecture: 'arm64',
        deps: { machine: 'aarch64', interpreter: undefined, needed: ['libssl.so.3'] },
      }),
    ).rejects.toThrow(/libssl\.so\.3 not found/);
    await writeFile(join(root, 'lib/aarch64-linux-gnu/libm.so.6'), fakeElf({ machine: 'x86_64', needed: [] }));
    await expect(
      sharedLibraryClosure({
        debRoot: root,
        architecture: 'arm64',
        deps: { machine: 'aarch64', interpreter: undefined, needed: ['libm.so.6'] },
      }),
    ).rejects.toThrow(/x86_64, expected aarch64/);
  });
});

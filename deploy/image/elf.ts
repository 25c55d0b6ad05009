/**
 * Reads what a dynamically linked ELF file needs at load time: its program interpreter
 * (PT_INTERP) and its DT_NEEDED libraries — what `readelf -l` / `readelf -d` show. Pure:
 * takes the file's bytes. ELF64 little-endian only (x86-64 and AArch64 Linux).
 */

/** The dynamic-linking facts of one ELF file. */
export interface ElfDependencies {
  /** `x86_64`, `aarch64`, or `machine-<n>` for anything else. */
  machine: string;
  /** Absolute path of the loader (PT_INTERP), e.g. `/lib64/ld-linux-x86-64.so.2`; undefined for libraries. */
  interpreter: string | undefined;
  /** DT_NEEDED entries in file order, e.g. `libc.so.6`. */
  needed: string[];
}

const PT_LOAD = 1;
const PT_DYNAMIC = 2;
const PT_INTERP = 3;
const DT_NULL = 0n;
const DT_NEEDED = 1n;
const DT_STRTAB = 5n;
const MACHINES: Record<number, string> = { 62: 'x86_64', 183: 'aarch64' };

interface Segment {
  type: number;
  offset: number;
  vaddr: bigint;
  filesz: number;
}

function cString(data: Buffer, offset: number): string {
  const end = data.indexOf(0, offset);
  if (end < 0) throw new Error(`unterminated string at offset ${offset}`);
  return data.toString('latin1', offset, end);
}

/** DT_NEEDED names from the PT_DYNAMIC segment, resolved through DT_STRTAB. */
function neededLibraries(data: Buffer, dynamic: Segment, segments: readonly Segment[]): string[] {
  const neededOffsets: bigint[] = [];
  let strtab: bigint | undefined;
  for (let at = dynamic.offset; at + 16 <= dynamic.offset + dynamic.filesz; at += 16) {
    const tag = data.readBigInt64LE(at);
    const value = data.readBigUInt64LE(at + 8);
    if (tag === DT_NULL) break;
    if (tag === DT_NEEDED) neededOffsets.push(value);
    if (tag === DT_STRTAB) strtab = value;
  }
  if (neededOffsets.length === 0) return [];
  if (strtab === undefined) throw new Error('DT_NEEDED without DT_STRTAB');
  const address = strtab;
  // DT_STRTAB is a virtual address: map it to a file offset through its PT_LOAD segment.
  const load = segments.find((s) => s.type === PT_LOAD && s.vaddr <= address && address < s.vaddr + BigInt(s.filesz));
  if (load === undefined) throw new Error('DT_STRTAB outside every PT_LOAD segment');
  const base = load.offset + Number(address - load.vaddr);
  return neededOffsets.map((offset) => cString(data, base + Number(offset)));
}

/** Parses the ELF header and program headers. Throws on a non-ELF or non-ELF64-LE file. */
export function parseElfDependencies(data: Buffer): ElfDependencies {
  if (data.length < 64 || data.readUInt32BE(0) !== 0x7f454c46) throw new Error('not an ELF file');
  if (data[4] !== 2 || data[5] !== 1) throw new Error('only 64-bit little-endian ELF files are supported');
  const machineNumber = data.readUInt16LE(18);
  const phoff = Number(data.readBigUInt64LE(32));
  const phentsize = data.readUInt16LE(54);
  const phnum = data.readUInt16LE(56);
  const segments: Segment[] = [];
  for (let i = 0; i < phnum; i++) {
    const at = phoff + i * phentsize;
    segments.push({
      type: data.readUInt32LE(at),
      offset: Number(data.readBigUInt64LE(at + 8)),
      vaddr: data.readBigUInt64LE(at + 16),
      filesz: Number(data.readBigUInt64LE(at + 32)),
    });
  }
  const interp = segments.find((s) => s.type === PT_INTERP);
  const dynamic = segments.find((s) => s.type === PT_DYNAMIC);
  const needed = dynamic === undefined ? [] : neededLibraries(data, dynamic, segments);
  return {
    machine: MACHINES[machineNumber] ?? `machine-${machineNumber}`,
    interpreter: interp === undefined ? undefined : cString(data, interp.offset),
    needed,
  };
}

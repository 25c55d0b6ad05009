/**
 * file-list: an example external discovery handler built with Tether's SDK.
 *
 * Details `{ path: /abs/file }`. Every line `<id> [KEY=VALUE ...]` of the file is one
 * device (blank lines and `#` comments are skipped); its properties are FILE_LIST_ID and
 * the KEY=VALUE pairs. The file is watched, so edits are reported at once.
 */
import { readFile, watch } from 'node:fs/promises';
import { basename, dirname, isAbsolute } from 'node:path';
import { DetailsError, type DiscoveredDevice, type DiscoveryHandlerDefinition } from '../../sdk/index.ts';

export interface FileListDetails {
  readonly path: string;
}

export function parseFileListDetails(raw: unknown): FileListDetails {
  const path = (raw as { path?: unknown } | null)?.path;
  if (typeof path !== 'string' || !isAbsolute(path)) throw new DetailsError('details.path', 'must be an absolute file path');
  return { path };
}

/** One device per line; a later line with the same id wins. */
export function parseFileList(text: string): DiscoveredDevice[] {
  const devices = new Map<string, DiscoveredDevice>();
  for (const line of text.split('\n').slice(0, 10_000)) {
    const [id, ...pairs] = line.trim().split(/\s+/);
    if (id === undefined || id === '' || id.startsWith('#')) continue;
    const properties: Record<string, string> = { FILE_LIST_ID: id };
    for (const pair of pairs) {
      const eq = pair.indexOf('=');
      if (eq > 0) properties[pair.slice(0, eq)] = pair.slice(eq + 1);
    }
    devices.set(id, { id, properties });
  }
  return [...devices.values()];
}

async function readDevices(path: string): Promise<DiscoveredDevice[]> {
  try {
    return parseFileList(await readFile(path, 'utf8'));
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return []; // no file: no devices
    throw error;
  }
}

export function fileListHandler(name = 'file-list', shared = false): DiscoveryHandlerDefinition<FileListDetails> {
  return {
    name,
    shared,
    parseDetails: parseFileListDetails,
    async discover({ path }, _properties, emit, signal) {
      // Watch the directory: the file may not exist yet, or be replaced by a rename.
      const events = watch(dirname(path), { signal });
      emit(await readDevices(path));
      try {
        for await (const event of events) if (event.filename === basename(path)) emit(await readDevices(path));
      } catch (error) {
        if ((error as Error).name !== 'AbortError') throw error;
      }
    },
  };
}

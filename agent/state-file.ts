/**
 * Files the agent keeps across restarts (remembered external handlers, the DRA checkpoint, CDI
 * specs): written whole or not at all, so a crash mid-write never leaves half a file.
 */
import { mkdir, open, rename, rm } from 'node:fs/promises';
import { dirname } from 'node:path';

/** Writes `text` to a temp file beside `path`, syncs it and renames it over `path`. */
export async function writeFileAtomically(path: string, text: string, mode = 0o600): Promise<void> {
  await mkdir(dirname(path), { recursive: true });
  const temp = `${path}.tmp`;
  await rm(temp, { force: true });
  // 'wx' (O_CREAT | O_EXCL): fails rather than follow anything created at the temp path meanwhile.
  const handle = await open(temp, 'wx', mode);
  try {
    await handle.writeFile(text, 'utf8');
    await handle.sync();
  } finally {
    await handle.close();
  }
  try {
    await rename(temp, path);
  } catch (error) {
    await rm(temp, { force: true });
    throw error;
  }
}

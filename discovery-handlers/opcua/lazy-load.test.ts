/**
 * node-opcua costs ~85 MiB of RSS once imported: only client.ts may load it, and only by a
 * dynamic import inside the run (the idle agent imports the registry, hence this handler).
 */
import { readdir, readFile } from 'node:fs/promises';
import { describe, expect, it } from 'vitest';

describe('node-opcua is loaded lazily', () => {
  it('no file of the handler imports node-opcua statically', async () => {
    const dir = new URL('./', import.meta.url);
    for (const file of (await readdir(dir)).filter((f) => f.endsWith('.ts') && !f.endsWith('.test.ts'))) {
      const source = await readFile(new URL(file, dir), 'utf8');
      expect(source, file).not.toMatch(/^\s*import\s+(?!type\b)[^;]*from\s+'node-opcua/m);
      expect(source, file).not.toMatch(/^\s*import\s+'node-opcua/m);
    }
  });

  it('client.ts imports it inside the factory', async () => {
    const source = await readFile(new URL('./client.ts', import.meta.url), 'utf8');
    expect(source).toMatch(/await import\('node-opcua-client'\)/);
  });
});

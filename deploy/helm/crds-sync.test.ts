/**
 * The chart renders its CRDs from deploy/helm/tether/files/crds/, a copy of the generated
 * deploy/crds/*.yaml. This fails as soon as the copy drifts (run deploy/helm/sync-crds.sh).
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const here = fileURLToPath(new URL('.', import.meta.url));
const generatedDir = join(here, '..', 'crds');
const chartDir = join(here, 'tether', 'files', 'crds');
const yamlIn = (dir: string): string[] => readdirSync(dir).filter((f) => f.endsWith('.yaml')).sort();

describe('chart CRDs', () => {
  it('are the same files as deploy/crds (run deploy/helm/sync-crds.sh after crds:generate)', () => {
    expect(yamlIn(generatedDir).length).toBeGreaterThan(0);
    expect(yamlIn(chartDir)).toEqual(yamlIn(generatedDir));
  });

  it.each(yamlIn(generatedDir))('%s is byte-identical to the generated one', (file) => {
    const chartCopy = readFileSync(join(chartDir, file), 'utf8');
    expect(chartCopy, `deploy/helm/tether/files/crds/${file} differs from deploy/crds/${file}: run deploy/helm/sync-crds.sh`).toBe(
      readFileSync(join(generatedDir, file), 'utf8'),
    );
  });
});

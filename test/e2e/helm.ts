/**
 * The cluster's helm (built at the pinned version by test/cluster/build.sh),
 * run against the e2e cluster with the admin kubeconfig and a private helm
 * home, so a developer's repositories and plugins never change a result.
 */
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

const execFileAsync = promisify(execFile);

/** The chart users install. */
export const CHART = fileURLToPath(new URL('../../deploy/helm/tether', import.meta.url));

/** A helm command line bound to one cluster. */
export interface Helm {
  run(...args: string[]): Promise<string>;
  /** Removes the private helm home. */
  close(): void;
}

export function helmFor(binDir: string, kubeconfig: string): Helm {
  const home = mkdtempSync(join(tmpdir(), 'tether-helm-'));
  return {
    async run(...args: string[]): Promise<string> {
      try {
        const { stdout } = await execFileAsync(join(binDir, 'helm'), args, {
          env: {
            ...process.env,
            KUBECONFIG: kubeconfig,
            HELM_CACHE_HOME: join(home, 'cache'),
            HELM_CONFIG_HOME: join(home, 'config'),
            HELM_DATA_HOME: join(home, 'data'),
          },
          maxBuffer: 64 * 1024 * 1024,
        });
        return stdout;
      } catch (error) {
        const { stderr = '', stdout = '' } = error as { stderr?: string; stdout?: string };
        throw new Error(`helm ${args.join(' ')} failed: ${stderr.trim() || stdout.trim()}`, { cause: error });
      }
    },
    close(): void {
      rmSync(home, { recursive: true, force: true });
    },
  };
}

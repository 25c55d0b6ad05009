import { defineConfig } from 'vitest/config';

// Projects (faults and e2e below):
//   unit        — nothing but Node (mock kubelet, simulated devices over real sockets);
//   peers       — `*.peer.test.ts`: real local peers the tests start themselves (Mosquitto,
//                 avahi, network namespaces with veth; needs root and the apt packages
//                 that .ci/run installs);
//   integration — against a real kube-apiserver brought up once per run by
//                 test/cluster/global-setup.ts.
export default defineConfig({
  test: {
    projects: [
      {
        test: {
          name: 'unit',
          setupFiles: ['test/setup/http1.ts'],
          include: ['{agent,api,bin,controller,deploy,discovery-handlers,kube,lint,mocks,proto,test/unit}/**/*.test.ts'],
          exclude: ['**/*.peer.test.ts', '**/node_modules/**'],
          testTimeout: 15_000,
        },
      },
      {
        test: {
          name: 'peers',
          setupFiles: ['test/setup/http1.ts'],
          include: ['**/*.peer.test.ts'],
          exclude: ['**/node_modules/**'],
          testTimeout: 60_000,
          hookTimeout: 60_000,
          fileParallelism: false,
        },
      },
      {
        // readme — the README's commands in a fresh clone, on the machine's own Node (npm ci
        // there needs the npm registry).
        test: {
          name: 'readme',
          include: ['test/readme/**/*.test.ts'],
          testTimeout: 300_000,
          hookTimeout: 600_000,
        },
      },
      {
        test: {
          name: 'integration',
          setupFiles: ['test/setup/http1.ts'],
          include: ['test/integration/**/*.test.ts'],
          globalSetup: ['test/cluster/global-setup.ts'],
          testTimeout: 120_000,
          hookTimeout: 600_000,
          fileParallelism: false,
        },
      },
      {
        // faults — fault injection on real parts (test/faults/): its OWN control plane
        // (test/faults/global-setup.ts), whose apiserver and etcd the cases stop.
        test: {
          name: 'faults',
          setupFiles: ['test/setup/http1.ts'],
          include: ['test/faults/**/*.test.ts'],
          globalSetup: ['test/faults/global-setup.ts'],
          testTimeout: 240_000,
          hookTimeout: 600_000,
          fileParallelism: false,
        },
      },
      {
        // e2e — a real node (containerd, CNI, kubelet) joined to its own control plane,
        // brought up by test/e2e/global-setup.ts; needs root and the apt packages that
        // .ci/run installs (docs/e2e.md).
        test: {
          name: 'e2e',
          setupFiles: ['test/setup/http1.ts'],
          include: ['test/e2e/**/*.test.ts'],
          exclude: ['**/*.peer.test.ts', '**/node_modules/**'],
          globalSetup: ['test/e2e/global-setup.ts'],
          testTimeout: 180_000,
          hookTimeout: 600_000,
          fileParallelism: false,
        },
      },
    ],
  },
});

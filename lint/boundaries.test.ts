import { describe, expect, it } from 'vitest';
import { boundaryViolation } from './boundaries.mjs';

describe('boundaryViolation', () => {
  it.each([
    ['agent/cluster-agent.ts', 'api/schema.ts'],
    ['agent/cluster-agent.ts', 'kube/client.ts'],
    ['agent/main.ts', 'discovery-handlers/registry.ts'],
    ['controller/devices/reconcile.ts', 'kube/informer.ts'],
    ['discovery-handlers/usb/details.ts', 'discovery-handlers/pattern.ts'],
    ['discovery-handlers/examples/file-list/main.ts', 'discovery-handlers/sdk/index.ts'],
    ['discovery-handlers/registry.ts', 'discovery-handlers/mqtt/mqtt.ts'],
    ['bin/tether.ts', 'controller/main.ts'],
    ['test/e2e/start.ts', 'mocks/onvif-camera/main.ts'],
  ])('%s may import %s', (source, target) => {
    expect(boundaryViolation(source, target)).toBeUndefined();
  });

  it.each([
    ['controller/nodes/nodes.ts', 'agent/discovery/node-selector.ts', 'controller/ may import only api, kube, itself (not agent/)'],
    ['agent/cli/demo.ts', 'mocks/kubelet/mock-kubelet.ts', 'product code (agent/) never imports mocks/'],
    ['agent/external/registry.ts', 'test/support/external-handler.ts', 'product code (agent/) never imports test/'],
    [
      'discovery-handlers/usb/details.ts',
      'discovery-handlers/onvif/pattern.ts',
      'a handler never imports another handler (discovery-handlers/onvif/); share code at discovery-handlers/*.ts',
    ],
    ['api/schema.ts', 'kube/client.ts', 'api/ may import only itself (not kube/)'],
    ['kube/informer.ts', 'controller/runtime/sleep.ts', 'kube/ may import only api, itself (not controller/)'],
    ['proto/load.ts', 'agent/main.ts', 'proto/ may import only itself (not agent/)'],
  ])('%s may not import %s', (source, target, why) => {
    expect(boundaryViolation(source, target)).toBe(why);
  });
});

import { describe, expect, it } from 'vitest';
import type { DeviceDiscovery, NodeReport } from '../../api/schema.ts';
import { nodeReportWrites, type NodeProblem } from './node-reports.ts';

const NOW = '2026-12-06T10:00:00Z';
const EARLIER = '2026-12-06T09:00:00Z';

function discovery(name: string, reports: NodeReport[] = []): DeviceDiscovery {
  return {
    apiVersion: 'tether.dev/v1alpha1',
    kind: 'DeviceDiscovery',
    metadata: { name, namespace: 'ns' },
    spec: { handler: 'debug-echo' },
    ...(reports.length === 0 ? {} : { status: { nodeReports: reports } }),
  };
}

const bad: NodeProblem = { reason: 'InvalidDetails', message: 'Rejected discovery details: details.descriptions: must be a list' };
const writes = (discoveries: DeviceDiscovery[], problems: [string, NodeProblem][], written: [string, string][] = []) =>
  nodeReportWrites('edge-1', discoveries, new Map(problems), new Map(written), NOW).map((w) => ({
    name: w.discovery.metadata.name,
    report: w.report,
  }));

describe('nodeReportWrites', () => {
  it('reports a new problem with its reason, message and since', () => {
    expect(writes([discovery('cams')], [['ns/cams', bad]])).toEqual([{ name: 'cams', report: { node: 'edge-1', ...bad, since: NOW } }]);
  });

  it('writes nothing while nothing changes (a restart included) and nothing for healthy discoveries', () => {
    const reported = discovery('cams', [{ node: 'edge-1', ...bad, since: EARLIER }]);
    expect(writes([reported, discovery('fine')], [['ns/cams', bad]])).toEqual([]);
  });

  it('removes its own entry when the problem is gone, and never touches other nodes’ entries', () => {
    const both = discovery('cams', [
      { node: 'edge-1', ...bad, since: EARLIER },
      { node: 'edge-2', ...bad, since: EARLIER },
    ]);
    expect(writes([both], [])).toEqual([{ name: 'cams', report: undefined }]);
    expect(writes([discovery('cams', [{ node: 'edge-2', ...bad, since: EARLIER }])], [])).toEqual([]);
  });

  it('keeps since while the reason stays; a new reason starts over', () => {
    const reported = discovery('cams', [{ node: 'edge-1', ...bad, since: EARLIER }]);
    expect(writes([reported], [['ns/cams', { ...bad, message: 'details.descriptions[0]: too long' }]])[0]!.report!.since).toBe(EARLIER);
    expect(
      writes([reported], [['ns/cams', { reason: 'PropertiesUnresolved', message: 'Secret ns/login not found' }]])[0]!.report!.since,
    ).toBe(NOW);
  });

  it('does not repeat a write the cache has not caught up with yet', () => {
    const fingerprint = `${bad.reason}\n${bad.message}`;
    expect(writes([discovery('cams')], [['ns/cams', bad]], [['ns/cams', fingerprint]])).toEqual([]);
  });

  it('bounds hostile messages', () => {
    const [write] = writes([discovery('cams')], [['ns/cams', { reason: 'InvalidDetails', message: 'x'.repeat(10_000) }]]);
    expect(write!.report!.message.length).toBe(512);
  });
});

/**
 * ONVIF across a real link: simulated cameras run in another network namespace (joined by a
 * veth pair), so multicast Probe, ProbeMatch, Hello and Bye cross an interface the way they
 * do between a node and a camera. The handler multicasts only on the veth end. Needs root.
 */
import { randomInt } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createNetnsLink, type NetnsLink } from '../../test/peers/netns.ts';
import { PeerGroup, type PeerProcess } from '../../test/peers/process.ts';
import { createOnvifHandler } from './onvif.ts';
import { RecordingSink } from '../../test/support/recording-sink.ts';

const MAIN = fileURLToPath(new URL('../../mocks/onvif-camera/main.ts', import.meta.url));
const CREDS = { username: 'admin', password: 'peer-Secret-9' };
const isRoot = process.getuid?.() === 0;

interface Cameras {
  readonly process: PeerProcess;
  readonly cameras: { uuid: string; address: string; serviceUrl: string }[];
  command(line: string): Promise<void>;
}

async function startCameras(link: NetnsLink, name: string, addresses: string[], port: number): Promise<Cameras> {
  const args = [MAIN, '--ws-port', String(port), '--username', CREDS.username, '--password', CREDS.password, '--clock-offset-ms=-90000'];
  for (const a of addresses) args.push('--address', a);
  const proc = link.spawn(name, process.execPath, args);
  const ready = await proc.waitForOutput(/^\{"event":"ready".*\}$/m, 20_000);
  const cameras = (JSON.parse(ready[0]) as { cameras: Cameras['cameras'] }).cameras;
  let done = 0;
  return {
    process: proc,
    cameras,
    async command(line) {
      proc.child.stdin!.write(`${line}\n`);
      done++;
      const pattern = new RegExp(`^(?:[\\s\\S]*?"event":"(?:done|error)"){${done}}`);
      await proc.waitForOutput(pattern, 5_000);
      expect(proc.output).not.toContain('"event":"error"');
    },
  };
}

describe.skipIf(!isRoot)('onvif across a network namespace (peers)', () => {
  const group = new PeerGroup();
  let link: NetnsLink;
  const port = randomInt(20_000, 30_000);
  const prefix = (): string => link.peerAddress.split('.').slice(0, 3).join('.');

  beforeAll(async () => {
    link = await createNetnsLink(group, 'onvif');
    for (const host of [3, 254]) await link.exec('ip', ['addr', 'add', `${prefix()}.${host}/24`, 'dev', link.peerIf]);
  });
  afterAll(() => group.close());

  function runHandler(details: Record<string, unknown>): { sink: RecordingSink; stop: () => Promise<void> } {
    const handler = createOnvifHandler({ port, lookupMac: () => Promise.resolve(undefined) });
    const sink = new RecordingSink();
    const abort = new AbortController();
    const running = handler.run(
      handler.parseDetails(details),
      sink.context(
        abort.signal,
        new Map([
          ['ONVIF_USERNAME', CREDS.username],
          ['ONVIF_PASSWORD', CREDS.password],
        ]),
      ),
    );
    const stop = async (): Promise<void> => {
      abort.abort();
      await running;
    };
    group.defer('handler', stop);
    return { sink, stop };
  }

  it('multicast discovery, Bye → removed at once, Hello → back, silence → removed after missed probes', async () => {
    const cams = await startCameras(link, 'cameras-mc', [link.peerAddress, `${prefix()}.3`], port);
    const { sink, stop } = runHandler({
      interfaces: [link.hostIf],
      probeIntervalSeconds: 0.5,
      discoveryTimeoutSeconds: 0.3,
      offlineAfterMissedProbes: 3,
    });
    const [a, b] = cams.cameras as [Cameras['cameras'][0], Cameras['cameras'][0]];
    await sink.waitFor(() => sink.current.size === 2, 10_000, 'two cameras across the link');
    const props = sink.current.get(a.uuid)!.properties;
    expect(props['ONVIF_DEVICE_IP_ADDRESS']).toBe(a.address);
    expect(props['ONVIF_STREAM_URI']).toBe(`rtsp://${a.address}:554/stream/profile_main`); // SOAP with digest and a skewed clock worked

    const removalsBefore = sink.calls.length;
    await cams.command(`offline ${a.uuid} bye`);
    await sink.waitFor(() => !sink.current.has(a.uuid), 2_000, 'removed on Bye');
    expect(sink.calls.slice(removalsBefore).find((c) => c.op === 'remove')).toMatchObject({ id: a.uuid });

    await cams.command(`online ${a.uuid}`);
    await sink.waitFor(() => sink.current.has(a.uuid), 3_000, 'back on Hello');

    const reportsAtSilence = sink.replaceAlls;
    await cams.command(`offline ${b.uuid}`); // vanishes without Bye
    await sink.waitFor(() => !sink.current.has(b.uuid), 10_000, 'removed after missed probes');
    const stillReported = sink.calls.filter((c) => c.op === 'replaceAll').slice(reportsAtSilence);
    expect(stillReported.filter((c) => c.op === 'replaceAll' && c.devices.some((d) => d.id === b.uuid)).length).toBeGreaterThanOrEqual(2);
    await stop();
    await cams.process.stop();
  });

  it('unicast Probe to the remote /24 finds a camera with multicast off, without stalling on empty addresses', async () => {
    // The last address of the sweep: Probes to ~250 addresses nobody answers ARP for come first.
    const cams = await startCameras(link, 'cameras-uc', [`${prefix()}.254`], port);
    const { sink, stop } = runHandler({
      multicast: false,
      unicastTargets: [`${prefix()}.0/24:${port}`],
      probeIntervalSeconds: 30,
      discoveryTimeoutSeconds: 1,
    });
    // One socket would stall ~3 s per ~90 unanswered Probes (ARP timeout holds its send buffer).
    await sink.waitFor(() => sink.current.has(cams.cameras[0]!.uuid), 4_500, 'camera by unicast');
    await stop();
    await cams.process.stop();
  });
});

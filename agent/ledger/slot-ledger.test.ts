import { describe, expect, it } from 'vitest';
import { SlotLedger } from './slot-ledger.ts';

const viaDevice = { node: 'n1', resource: 'tether.dev/cam-1' };
const viaDiscovery = { node: 'n1', resource: 'tether.dev/cams' };

describe('SlotLedger', () => {
  it('claims all or nothing', () => {
    const ledger = new SlotLedger();
    expect(ledger.claim(['cam-1-0'], viaDevice)).toEqual({ ok: true });
    const result = ledger.claim(['cam-1-1', 'cam-1-0'], viaDiscovery);
    expect(result).toEqual({ ok: false, conflicts: [{ slot: 'cam-1-0', holder: viaDevice }] });
    expect(ledger.holderOf('cam-1-1')).toBeUndefined();
  });

  it("a lost claim releases only this node's holding, never the winner's the cluster reported meanwhile", () => {
    const ledger = new SlotLedger();
    ledger.claim(['s-0', 's-1'], viaDevice);
    // The winner's claim of s-0 arrives from the cluster before the loser's apply fails.
    ledger.mirrorDevice(['s-0', 's-1'], { '0': 'n2' }, 'n1');
    ledger.releaseHeldBy(['s-0', 's-1'], 'n1');
    expect(ledger.holderOf('s-0')?.node).toBe('n2');
    expect(ledger.holderOf('s-1')).toBeUndefined();
  });

  it('re-claiming by the same holder is idempotent', () => {
    const ledger = new SlotLedger();
    ledger.claim(['s-0'], viaDevice);
    expect(ledger.claim(['s-0'], viaDevice)).toEqual({ ok: true });
  });

  it('a held slot is advertisable only through the holding resource on the holding node', () => {
    const ledger = new SlotLedger();
    ledger.claim(['s-0'], viaDevice);
    expect(ledger.isAdvertisable('s-0', 'n1', viaDevice.resource)).toBe(true);
    expect(ledger.isAdvertisable('s-0', 'n1', viaDiscovery.resource)).toBe(false);
    expect(ledger.isAdvertisable('s-0', 'n2', viaDevice.resource)).toBe(false);
    ledger.release(['s-0']);
    expect(ledger.isAdvertisable('s-0', 'n1', viaDiscovery.resource)).toBe(true);
  });
});

describe('SlotLedger.mirrorDevice', () => {
  const slots = ['d-0', 'd-1', 'd-2'];
  it('mirrors other nodes, restores own entries, keeps own claims in flight', () => {
    const ledger = new SlotLedger();
    ledger.claim(['d-2'], { node: 'n1', resource: 'tether.dev/d' });
    expect(ledger.mirrorDevice(slots, { '0': 'n2', '1': 'n1' }, 'n1')).toBe(true);
    expect(ledger.holderOf('d-0')).toEqual({ node: 'n2', resource: '' });
    expect(ledger.holderOf('d-1')).toEqual({ node: 'n1', resource: '' });
    expect(ledger.holderOf('d-2')).toEqual({ node: 'n1', resource: 'tether.dev/d' });
    expect(ledger.isAdvertisable('d-1', 'n1', 'tether.dev/d')).toBe(false);
    // n2 released slot 0
    expect(ledger.mirrorDevice(slots, { '1': 'n1' }, 'n1')).toBe(true);
    expect(ledger.holderOf('d-0')).toBeUndefined();
    expect(ledger.mirrorDevice(slots, { '1': 'n1' }, 'n1')).toBe(false);
  });
});

describe('SlotLedger.applyReconcile', () => {
  it('frees gone slots and records adopted ones under the kubelet-reported resource, replacing an unknown one', () => {
    const ledger = new SlotLedger();
    ledger.claim(['d-0'], { node: 'n1', resource: 'tether.dev/d' });
    ledger.mirrorDevice(['d-0', 'd-1'], { '1': 'n1' }, 'n1');
    ledger.applyReconcile(
      {
        free: ['d-0'],
        adopt: [
          { slot: 'd-1', resource: 'tether.dev/d' },
          { slot: 'd-2', resource: 'tether.dev/x' },
        ],
      },
      'n1',
    );
    expect(ledger.holderOf('d-0')).toBeUndefined();
    expect(ledger.holderOf('d-1')).toEqual({ node: 'n1', resource: 'tether.dev/d' });
    expect(ledger.holderOf('d-2')).toEqual({ node: 'n1', resource: 'tether.dev/x' });
  });
});

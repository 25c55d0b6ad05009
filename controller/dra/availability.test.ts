import { describe, expect, it } from 'vitest';
import { KubeApiError } from '../../kube/client.ts';
import { DRA_API_PATH, draServed, waitForDraAnswer } from './availability.ts';

const notFound = (): KubeApiError => new KubeApiError(404, 'the server could not find the requested resource', '{}', {});
const served =
  (...names: string[]) =>
  (path: string) =>
    path === DRA_API_PATH ? Promise.resolve({ resources: names.map((name) => ({ name })) }) : Promise.reject(notFound());

describe('draServed', () => {
  it('true when resource.k8s.io/v1 lists DeviceClasses and ResourceClaimTemplates', async () => {
    expect(await draServed(served('deviceclasses', 'resourceclaims', 'resourceclaimtemplates', 'resourceslices'))).toBe(true);
  });

  it('false when the group-version is not served (404)', async () => {
    expect(await draServed(() => Promise.reject(notFound()))).toBe(false);
  });

  it('false when a resource the controller writes is missing', async () => {
    expect(await draServed(served('deviceclasses', 'resourceslices'))).toBe(false);
  });

  it('throws when the apiserver could not answer', async () => {
    await expect(draServed(() => Promise.reject(new KubeApiError(503, 'unavailable', '{}', {})))).rejects.toThrow('unavailable');
  });
});

describe('waitForDraAnswer', () => {
  it('asks again after an error and returns the first answer', async () => {
    const answers = [() => Promise.reject(new Error('connection refused')), () => Promise.reject(notFound())];
    const errors: unknown[] = [];
    const served = await waitForDraAnswer(
      () => answers.shift()!(),
      new AbortController().signal,
      (error) => errors.push(error),
    );
    expect(served).toBe(false);
    expect(errors).toHaveLength(1);
    expect(answers).toEqual([]);
  });

  it('gives up (false) once stopped', async () => {
    const stop = new AbortController();
    stop.abort();
    expect(
      await waitForDraAnswer(
        () => Promise.reject(new Error('never asked')),
        stop.signal,
        () => undefined,
      ),
    ).toBe(false);
  });
});

/**
 * I/O of the DRA objects (controller/dra/objects.ts plans them): server-side apply as
 * tether-controller, not forced (an object of that name someone else made is reported, never
 * taken over), deletes that tolerate 404. Called from the DeviceDiscovery reconciler (its
 * DeviceClass) and the Device reconciler (its brokers' claim template, before the brokers).
 */
import { API_VERSION } from '../../api/group.ts';
import { CONTROLLER_FIELD_MANAGER } from '../../api/field-managers.ts';
import type { Device, DeviceDiscovery } from '../../api/schema.ts';
import { isApiError } from '../../kube/client.ts';
import { RESOURCES } from '../../kube/resources.ts';
import { brokerClaimTemplateName, deviceClassName } from '../../api/dra-attributes.ts';
import { refOf, type ControllerContext } from '../context.ts';
import { discoveryResourceName } from '../../api/names.ts';
import { extendedResourceHolder, isDraDiscovery, planClaimTemplate, planDeviceClass, type DerivedAction } from './objects.ts';

type DerivedType = typeof RESOURCES.deviceClasses | typeof RESOURCES.resourceClaimTemplates;

async function applyAction<T extends { metadata: { name: string } }>(
  ctx: ControllerContext,
  type: DerivedType,
  namespace: string | undefined,
  action: DerivedAction<T>,
  regarding: Parameters<ControllerContext['events']['record']>[0]['regarding'],
  signal: AbortSignal,
): Promise<void> {
  switch (action.kind) {
    case 'none':
      return;
    case 'conflict':
      ctx.events.record({
        regarding,
        type: 'Warning',
        reason: 'DraObjectConflict',
        action: 'Apply',
        note: `${type.kind} ${action.name} exists and was not made by tether-controller: left alone`,
      });
      return;
    case 'delete':
      try {
        await ctx.api.delete(type, namespace, action.name, {}, signal);
      } catch (error) {
        if (!isApiError(error, 404)) throw new Error(`deleting ${type.kind} ${action.name}`, { cause: error });
      }
      return;
    case 'apply':
      try {
        await ctx.api.apply(type, action.object, { fieldManager: CONTROLLER_FIELD_MANAGER, force: false, signal });
      } catch (error) {
        throw new Error(`applying ${type.kind} ${action.object.metadata.name}`, { cause: error });
      }
  }
}

/** Makes the DeviceClass of discovery `namespace/name` match it (present while it is DRA). */
export async function reconcileDeviceClass(
  ctx: ControllerContext,
  namespace: string,
  name: string,
  discovery: DeviceDiscovery | undefined,
  signal: AbortSignal,
): Promise<void> {
  const regarding = refOf('DeviceDiscovery', API_VERSION, discovery ?? { metadata: { name, namespace } });
  if (ctx.draServed?.() === false) {
    if (isDraDiscovery(discovery)) reportDraNotServed(ctx, regarding);
    return;
  }
  const cached = ctx.caches.deviceClasses.get(undefined, deviceClassName(namespace, name));
  const holder = extendedResourceHolder(ctx.caches.discoveries.list(), name);
  const holdsExtendedResource = holder === undefined || holder === `${namespace}/${name}`;
  if (!holdsExtendedResource && isDraDiscovery(discovery)) {
    ctx.events.record({
      regarding,
      type: 'Warning',
      reason: 'ExtendedResourceNameTaken',
      action: 'Apply',
      note: `${discoveryResourceName(name)} is cluster-wide and belongs to the older DRA discovery ${holder}: this discovery's DeviceClass has no extendedResourceName (its devices are reached through ResourceClaims; rename the discovery to get one)`,
    });
  }
  const action = planDeviceClass(namespace, name, discovery, cached, holdsExtendedResource);
  await applyAction(ctx, RESOURCES.deviceClasses, undefined, action, regarding, signal);
}

/** Makes a device's broker claim template match its discovery (present while DRA with brokers). */
export async function reconcileClaimTemplate(
  ctx: ControllerContext,
  device: Device,
  discovery: DeviceDiscovery | undefined,
  signal: AbortSignal,
): Promise<void> {
  if (ctx.draServed?.() === false) return; // its discovery carries the Warning
  const namespace = device.metadata.namespace ?? '';
  const cached = ctx.caches.claimTemplates.get(namespace, brokerClaimTemplateName(device.metadata.name ?? ''));
  const action = planClaimTemplate(device, discovery, cached);
  await applyAction(ctx, RESOURCES.resourceClaimTemplates, namespace, action, refOf('Device', API_VERSION, device), signal);
}

/** A DRA discovery on a cluster without resource.k8s.io/v1: no DeviceClass, said once per event window. */
function reportDraNotServed(ctx: ControllerContext, regarding: Parameters<ControllerContext['events']['record']>[0]['regarding']): void {
  ctx.events.record({
    regarding,
    type: 'Warning',
    reason: 'DraNotServed',
    action: 'Apply',
    note: 'spec.backend is DRA but the apiserver serves no resource.k8s.io/v1 (DeviceClasses, ResourceClaimTemplates): no DeviceClass is made; restart the controller once the API is enabled',
  });
}

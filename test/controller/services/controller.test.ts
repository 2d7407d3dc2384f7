// The running Service controller (its informers, queue and resync) in-process against the
// emulator: level-based, so a state no event announces is still put right within one resync.
import * as k8s from '@kubernetes/client-node';
import pino from 'pino';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { startServiceController, type RunningServiceController } from '../../../src/controller/services/controller.ts';
import { defaultServiceDefaults } from '../../../src/controller/services/settings.ts';
import { waitFor } from '../../wait.ts';
import { CLASS, startServiceHarness, type ServiceHarness } from './harness.ts';

const log = pino({ level: process.env.HALB_LOG_LEVEL ?? 'silent' });
const CONDITION = 'halb.dev/LoadBalancerReady';
const RESYNC_MS = 200;

let h: ServiceHarness;
let controller: RunningServiceController | undefined;
beforeEach(async () => {
  h = await startServiceHarness();
  await h.addNode('pool-a', '10.10.0.31');
});
afterEach(async () => {
  await controller?.stop();
  await h?.close();
});

const condition = async (name: string) => (await h.service(name))?.status?.conditions?.find((c) => c.type === CONDITION);

describe('the running Service controller', () => {
  it('puts back, within a resync, a condition removed by a status-only write (which enqueues nothing)', async () => {
    controller = await startServiceController(h.kubeConfig, h.ctx, {
      defaults: { ...defaultServiceDefaults, serviceClass: CLASS }, concurrency: 1, deadlineMs: 20_000, resyncIntervalMs: RESYNC_MS,
    }, log);
    await h.createService('web');
    // The HALoadBalancer controller is not running here: the Service waits, Provisioning.
    const first = await waitFor('the Provisioning condition', () => condition('web'), 10_000, 50);
    expect(first).toMatchObject({ status: 'False', reason: 'Provisioning' });
    // The events of the Service's own writes (its finalizer, its HALoadBalancer) have been handled by now.
    await new Promise((r) => setTimeout(r, 1000));

    const core = h.kubeConfig.makeApiClient(k8s.CoreV1Api);
    await core.patchNamespacedServiceStatus({ name: 'web', namespace: 'default', body: { status: { conditions: null } } },
      k8s.setHeaderOptions('Content-Type', k8s.PatchStrategy.MergePatch));
    expect(await condition('web')).toBeUndefined();
    const removedAt = Date.now();
    const back = await waitFor('the condition back', () => condition('web'), 10 * RESYNC_MS, 20);
    expect(back).toMatchObject({ status: 'False', reason: 'Provisioning' });
    expect(Date.now() - removedAt).toBeLessThan(10 * RESYNC_MS);
  });
});

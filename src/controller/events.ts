// Kubernetes Events for what the operator does on a user's behalf (DropletCreated,
// ReservedIPAssigned, ConfigApplied, FailoverObserved, ...), written as core/v1 Events so that
// `kubectl describe halb` shows them. A repeat of the same reason and message within the
// series bumps `count` and `lastTimestamp` instead of adding an Event, as client-go's recorder
// does. Recording never fails a reconcile: an Event that cannot be written is logged.
import * as k8s from '@kubernetes/client-node';
import type { Logger } from '../log.ts';

export type EventType = 'Normal' | 'Warning';

/** What an Event is about: a HALoadBalancer, or a Service the Service controller serves. */
export interface EventSubject {
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace?: string; uid?: string; resourceVersion?: string };
}

export interface EventRecorder {
  record(object: EventSubject, type: EventType, reason: string, message: string): Promise<void>;
}

const COMPONENT = 'halb-operator';

export function createEventRecorder(kc: k8s.KubeConfig, log: Logger, instance = process.env.HOSTNAME ?? 'halb'): EventRecorder {
  const core = kc.makeApiClient(k8s.CoreV1Api);
  const series = new Map<string, { name: string; count: number }>();
  return {
    async record(object, type, reason, message) {
      const namespace = object.metadata.namespace ?? 'default';
      const key = `${object.metadata.uid}/${type}/${reason}/${message}`;
      const now = new Date();
      try {
        const previous = series.get(key);
        if (previous) {
          previous.count++;
          await core.patchNamespacedEvent(
            { name: previous.name, namespace, body: { count: previous.count, lastTimestamp: now } },
            k8s.setHeaderOptions('Content-Type', k8s.PatchStrategy.MergePatch),
          );
          return;
        }
        const name = `${object.metadata.name}.${now.getTime().toString(16)}${Math.floor(Math.random() * 0xffff).toString(16)}`;
        await core.createNamespacedEvent({
          namespace,
          body: {
            metadata: { name, namespace },
            involvedObject: {
              apiVersion: object.apiVersion, kind: object.kind, name: object.metadata.name, namespace,
              ...(object.metadata.uid ? { uid: object.metadata.uid } : {}),
              ...(object.metadata.resourceVersion ? { resourceVersion: object.metadata.resourceVersion } : {}),
            },
            type, reason, message: message.slice(0, 1024),
            source: { component: COMPONENT },
            reportingComponent: `halb.dev/operator`,
            reportingInstance: instance,
            firstTimestamp: now, lastTimestamp: now, count: 1,
          },
        });
        series.set(key, { name, count: 1 });
        if (series.size > 1000) series.delete(series.keys().next().value!);
      } catch (err) {
        log.warn({ err, reason, object: `${namespace}/${object.metadata.name}` }, 'event not recorded');
      }
    },
  };
}

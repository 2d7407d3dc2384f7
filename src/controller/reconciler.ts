// One reconcile of one HALoadBalancer, level-based and keyed: the object and its Secrets come
// from the informers' caches; the pass is a pipeline of its own modules:
//
//   observe (DigitalOcean, the hosts) → desired files → plan (pure) → act → status
//
// with deletion (finalize.ts), Secrets (secrets.ts), backend firewalls (backend-firewalls.ts)
// and SSH key rotation (ssh-access.ts) beside it. Errors are transient (thrown: the queue
// retries with backoff) or terminal (a condition, Stalled, no retry: errors.ts). Nothing waits
// on DigitalOcean or a host: what is in progress is a timed requeue. The pass's AbortSignal
// reaches every DigitalOcean request and SSH session, so losing the Lease stops it.
import { validateSemantics } from '../api/validate.ts';
import { withDefaults } from '../api/defaults.ts';
import type { HALoadBalancer } from '../api/types.ts';
import { DigitalOceanError, withAbortSignal } from '../digitalocean/provider.ts';
import { act } from './act.ts';
import { reconcileBackendFirewalls } from './backend-firewalls.ts';
import { certificateExpiries } from './certificates.ts';
import type { ControllerContext, PassContext } from './context.ts';
import { desiredFiles, peopleSshKeys } from './desired.ts';
import { TerminalError, asTerminal, isConflict, terminalReasons } from './errors.ts';
import { FINALIZER, finalize } from './finalize.ts';
import { observe, type Observation } from './observe.ts';
import { plan, type Plan } from './plan.ts';
import { forgetObjectMetrics, report, reportStalled } from './report.ts';
import { credentialsOf, readSecrets } from './secrets.ts';

export { FINALIZER } from './finalize.ts';

export interface PassResult {
  /** Look again after this long: waiting on something outside, not an error. */
  requeueAfterMs?: number;
  /** The pass ended in a terminal error: a condition, not a retry. */
  stalled?: boolean;
}

/** How soon to look again after acting: the next step usually waits on what was just done. */
const AFTER_ACTING_MS = 500;
/** How soon to run again after a write found the cached object stale (409): the informer
 *  brings the new version within milliseconds. Not an error, so no backoff. */
const STALE_CACHE_REQUEUE_MS = 100;

/** Reconciles the object a key names; the work queue calls this. */
export async function reconcile(ctx: ControllerContext, key: string, signal: AbortSignal): Promise<PassResult> {
  const slash = key.indexOf('/');
  const namespace = key.slice(0, slash);
  const name = key.slice(slash + 1);
  const started = performance.now();
  try {
    const stored = ctx.objects.get(namespace, name);
    if (!stored) {
      forgetObjectMetrics(ctx, namespace, name);
      return {};
    }
    // The CRD has no defaults inside list items (they would make GitOps tools see drift): apply them here.
    const object: HALoadBalancer = { ...stored, spec: withDefaults(stored.spec) };
    const pass: PassContext = { ...ctx, signal, log: ctx.log.child({ halb: key }) };
    const result = await withAbortSignal(signal, () => reconcileObject(pass, object));
    ctx.metrics.reconciles.inc({ result: result.stalled ? 'invalid' : 'success' });
    return result;
  } catch (err) {
    if (isConflict(err)) {
      ctx.metrics.reconciles.inc({ result: 'conflict' });
      return { requeueAfterMs: STALE_CACHE_REQUEUE_MS };
    }
    ctx.metrics.reconciles.inc({ result: 'error' });
    ctx.metrics.reconcileErrors.inc({ kind: err instanceof DigitalOceanError ? err.kind : 'transient' });
    throw err;
  } finally {
    ctx.metrics.reconcileSeconds.observe((performance.now() - started) / 1000);
  }
}

async function reconcileObject(ctx: PassContext, object: HALoadBalancer): Promise<PassResult> {
  if (object.metadata.deletionTimestamp) return finalize(ctx, object);
  // The finalizer first, so nothing is created that deletion would not clean up.
  if (!object.metadata.finalizers?.includes(FINALIZER)) {
    await ctx.kube.setFinalizers(object, [...(object.metadata.finalizers ?? []), FINALIZER]);
    return { requeueAfterMs: 0 };
  }
  try {
    return await converge(ctx, object);
  } catch (err) {
    const stalled = asTerminal(err);
    if (!stalled) throw err;
    await reportStalled(ctx, object, stalled.reason, stalled.problems);
    return { stalled: true, ...(stalled.recheckAfterMs === undefined ? {} : { requeueAfterMs: stalled.recheckAfterMs }) };
  }
}

async function converge(ctx: PassContext, object: HALoadBalancer): Promise<PassResult> {
  // Secrets and the semantic rules first: an invalid spec touches nothing outside Kubernetes.
  const secrets = readSecrets(ctx.secrets, object);
  const problems = validateSemantics(object, (name) => secrets.find((s) => s.name === name));
  if (problems.length) throw new TerminalError(terminalReasons.invalidSpec, problems);
  const credentials = credentialsOf(object, secrets);
  const provider = ctx.cloud(credentials.token);
  // What the spec names in the DigitalOcean account must exist before anything is made with it.
  const timer = stageTimer();
  const peopleKeys = await peopleSshKeys(object, provider);
  const observation = await observe(ctx, object, provider, credentials.ssh);
  timer.mark('observe');
  try {
    const desired = await desiredFiles(object, secrets, observation, provider, { ssh: credentials.ssh, peopleKeys }, ctx.settings);
    const planned = plan({
      object, observed: observation.observed, desiredHashes: desired.hashes, now: ctx.clock.now(),
      backstopGraceMs: ctx.settings.backstopGraceMs,
      ...graceTimersOf(object),
    });
    timer.mark('plan');
    const acted = await act(ctx, { object, provider, keys: credentials.ssh, observation, desired }, planned.actions);
    timer.mark('act');
    await reconcileBackendFirewalls(ctx, object, provider);
    const replacing = acted.done.flatMap((a) => (a.kind === 'DeleteDroplet' && a.reason === 'Colocated' ? [a.node] : []))[0];
    await report(ctx, {
      object, observed: acted.observed, desiredHashes: desired.hashes, certificates: certificateExpiries(object.spec, secrets),
      graceStarted: graceTimers(planned),
      dayTwo: planned.dayTwo, ...(replacing ? { replacingColocated: replacing } : {}),
    });
    timer.mark('status');
    const next = nextLook(ctx, planned, acted.done.length > 0);
    ctx.log.debug({ stagesMs: timer.stages, actions: planned.actions.map((a) => a.kind), ...next }, 'reconciled');
    return next;
  } finally {
    closeSessions(observation);
  }
}

/** The planner's waits, as status carries them (graceStarted) for the next leader. */
function graceTimersOf(object: HALoadBalancer): { backstopSince?: Date; masterHAProxyDownSince?: Date } {
  const grace = object.status?.graceStarted;
  return {
    ...(grace?.backstop ? { backstopSince: new Date(grace.backstop) } : {}),
    ...(grace?.masterRepair ? { masterHAProxyDownSince: new Date(grace.masterRepair) } : {}),
  };
}

function graceTimers(planned: Plan): { backstop?: string; masterRepair?: string } {
  return {
    ...(planned.backstopSince ? { backstop: planned.backstopSince.toISOString() } : {}),
    ...(planned.masterHAProxyDownSince ? { masterRepair: planned.masterHAProxyDownSince.toISOString() } : {}),
  };
}

function nextLook(ctx: PassContext, planned: Plan, acted: boolean): PassResult {
  if (acted) return { requeueAfterMs: Math.min(planned.requeueAfterMs ?? AFTER_ACTING_MS, AFTER_ACTING_MS) };
  return { requeueAfterMs: planned.requeueAfterMs ?? ctx.settings.resyncIntervalMs };
}

/** Milliseconds spent in each stage of a pass, for the debug log: where a slow pass went. */
function stageTimer(): { mark: (stage: string) => void; stages: Record<string, number> } {
  let last = performance.now();
  const stages: Record<string, number> = {};
  return {
    stages,
    mark(stage) {
      const now = performance.now();
      stages[stage] = Math.round(now - last);
      last = now;
    },
  };
}

function closeSessions(observation: Observation): void {
  for (const connection of observation.connections.values()) connection.session.close();
}

// The Kubernetes API-server emulator: start it in-process (tests, `halb sandbox up`) or from the
// CLI (`halb sandbox kube`).
import type { AddressInfo } from 'node:net';
import pino from 'pino';
import type { Logger } from 'pino';
import { KubeApi } from './api.ts';
import { KubeHttp } from './http.ts';
import { writeKubeconfig } from './kubeconfig.ts';
import { Store } from './store.ts';

export { kubeconfigYAML } from './kubeconfig.ts';

export interface KubeEmulatorOptions {
  /** 0 picks a free port. */
  port?: number;
  host?: string;
  /** Snapshot file: objects and the resourceVersion counter survive a restart. */
  stateFile?: string;
  logger?: Logger;
  /** Events kept for watch resumption; older resourceVersions get 410 Expired. */
  historyLimit?: number;
  bookmarkIntervalMs?: number;
  /** Called after every request; tests use it to check request sequences. */
  onRequest?: (r: { method: string; path: string; query: string; code: number }) => void;
}

export interface KubeEmulator {
  url: string;
  port: number;
  api: KubeApi;
  /**
   * Drops the watch history and ends open watches with an in-stream 410 Expired, so every client
   * must relist (tests of informers). Returns the resourceVersion at compaction.
   */
  compact(): number;
  writeKubeconfig(path: string): void;
  /**
   * Creates objects that do not exist yet (CRDs first, in order), in-process: how `halb sandbox up`
   * seeds the CRD and its Secrets. Idempotent; returns "kind/name created|exists" lines.
   */
  seed(objects: Array<Record<string, unknown>>): string[];
  close(): Promise<void>;
}

export async function startKubeEmulator(opts: KubeEmulatorOptions = {}): Promise<KubeEmulator> {
  const logger = opts.logger ?? pino({ level: process.env.HALB_LOG_LEVEL ?? 'silent' });
  const store = new Store({
    stateFile: opts.stateFile, historyLimit: opts.historyLimit,
    onSaveError: (err) => logger.error({ err, stateFile: opts.stateFile }, 'failed to write state snapshot'),
  });
  store.load();
  try {
    // Fail at start, naming the file, rather than on the first write.
    store.save();
  } catch (err) {
    throw new Error(`state file ${opts.stateFile}: cannot write: ${(err as Error).message}`, { cause: err });
  }
  const api = new KubeApi(store);
  api.bootstrap();
  const http = new KubeHttp(api, { logger, bookmarkIntervalMs: opts.bookmarkIntervalMs, onRequest: opts.onRequest });
  const host = opts.host ?? '127.0.0.1';
  await new Promise<void>((resolve, reject) => {
    http.server.once('error', reject);
    http.server.listen(opts.port ?? 0, host, () => {
      http.server.off('error', reject);
      resolve();
    });
  });
  const port = (http.server.address() as AddressInfo).port;
  http.serverAddress = `${host}:${port}`;
  api.ensureKubernetesService(port);
  const url = `http://${host}:${port}`;
  logger.info({ url, stateFile: opts.stateFile, resourceVersion: store.currentRV() }, 'started kubernetes api emulator');
  let closed = false;
  return {
    url,
    port,
    api,
    compact: () => http.compactAndExpireWatches(),
    writeKubeconfig: (path) => writeKubeconfig(path, url),
    seed: (objects) => api.seed(objects),
    async close() {
      if (closed) return;
      closed = true;
      http.endWatches();
      store.save();
      await new Promise<void>((resolve) => {
        http.server.close(() => resolve());
        http.server.closeAllConnections();
      });
      logger.info({ url }, 'stopped kubernetes api emulator');
    },
  };
}

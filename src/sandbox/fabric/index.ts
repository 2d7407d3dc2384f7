// The sandbox data plane: see fabric.ts.
export * from './addresses.ts';
export * from './fabric.ts';
export type { DropletMetadata } from './metadata.ts';
export { renderMetadataTree } from './metadata.ts';
export { ensureSystemPackages, missingPackages, installLine, type PackageCheck } from './system.ts';
export { fabricHooks, type FabricHooks, type SimulatedDroplet } from './hooks.ts';
export { DEFAULT_BACKENDS, fabricDown, fabricStatus, fabricUp, sandboxStateDir, type FabricUpOptions } from './setup.ts';
export { DEBIAN_13, cachedRootfs, ensureRootfs, imageCacheDir, imageKind } from './images.ts';

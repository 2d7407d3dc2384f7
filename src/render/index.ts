export { RenderError } from './errors.ts';
export {
  DEFAULT_PATHS, DROPLET_VERSIONS, defaultSettings, deriveVirtualRouterID, hashFiles, nodeNames, nodePriority, placeholderFacts,
  renderNodes,
} from './render.ts';
export type { RenderInput } from './render.ts';
export type * from './types.ts';

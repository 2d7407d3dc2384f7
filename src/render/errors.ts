/** A value the renderer refuses to write. `field` names where it came from, e.g. spec.backends[0].name. */
export class RenderError extends Error {
  readonly field: string;
  constructor(field: string, message: string) {
    super(`${field}: ${message}`);
    this.name = 'RenderError';
    this.field = field;
  }
}

// What can go wrong with a node, as typed errors: a host call returns its result or throws one
// of these, and nothing else. The controller records each on the node it happened to (status
// says which and why) and carries on with the other nodes.

export class HostError extends Error {
  /** The address the operator reached (or tried to reach) the node on. */
  readonly host: string;

  constructor(host: string, message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = new.target.name;
    this.host = host;
  }
}

/** No SSH session: the host did not answer, or the connection broke. */
export class HostUnreachableError extends HostError {}

/** The host presented another key than the pinned one: possibly an impostor, never trusted. */
export class HostKeyChangedError extends HostError {
  readonly pinned: string;
  readonly presented: string;

  constructor(host: string, pinned: string, presented: string) {
    super(host, `host key of ${host} changed: pinned ${pinned}, presented ${presented}; refusing the host`);
    this.pinned = pinned;
    this.presented = presented;
  }
}

/** The host answered but refused the operator's key (a key rotation not finished there). */
export class HostAuthenticationError extends HostError {}

/** A daemon refused the new files on the host; the running config stayed in place. */
export class ConfigRefusedError extends HostError {
  /** haproxy, keepalived, nft, sshd or authorized_keys. */
  readonly daemon: string;
  /** The daemon's own words. */
  readonly detail: string;

  constructor(host: string, daemon: string, detail: string) {
    super(host, `${daemon} refused the config: ${detail}`);
    this.daemon = daemon;
    this.detail = detail;
  }
}

/** A step on the host failed (exit status not 0) for another reason than a refused config. */
export class HostCommandError extends HostError {}

// A request to an instance's service or management API, once the listener has routed it.
import type { IncomingMessage, ServerResponse } from "node:http";
import type { Caller } from "../domain/caller.js";
import type { Instance } from "../domain/instance.js";
import type { RequestPath } from "./request-path.js";

export interface ServiceRequest {
  req: IncomingMessage;
  res: ServerResponse;
  path: RequestPath;
  /** The Host header's name, lower-cased: what SAS tokens are checked against. */
  host: string;
  /** The instance the host name belongs to. */
  instance: Instance;
  /** Who is calling, once authenticated: what the audit trail records. */
  caller?: Caller;
}

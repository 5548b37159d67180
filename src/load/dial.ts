// Where simulated devices connect and how: TLS straight to a listener, or a WebSocket to
// `/$iothub/websocket` on the HTTPS port (device-api.md §8) carrying MQTT (`mqtt`) or AMQP
// (`AMQPWSB10`). The device's own certificate, for X.509, travels in the endpoint's context.
import { type LookupAllOptions, type LookupOptions, lookup } from "node:dns";
import type { Duplex } from "node:stream";
import { connect, type SecureContext } from "node:tls";
import WebSocket, { createWebSocketStream } from "ws";

export interface Endpoint {
  /** The address to dial. */
  host: string;
  port: number;
  /** The host name the server is asked for (SNI) and told (Host, AMQP hostname). */
  servername: string;
  /** Trust, and for X.509 the device's certificate chain and key. */
  secureContext: SecureContext;
  /** Over a WebSocket on this (HTTPS) port instead of the protocol's own listener. */
  webSocket?: boolean;
}

/** A byte stream to the server, and a way to notice it has gone quiet. */
export interface Wire {
  stream: Duplex;
  /** Calls `onIdle` after `ms` without incoming data; 0 stops it. */
  idle(ms: number, onIdle: () => void): void;
}

type LookupCallback = (err: NodeJS.ErrnoException | null, address: unknown, family?: number) => void;

export function dial(e: Endpoint, subprotocol: "mqtt" | "AMQPWSB10"): Wire {
  if (!e.webSocket) {
    const socket = connect({ host: e.host, port: e.port, servername: e.servername, secureContext: e.secureContext });
    socket.setNoDelay(true);
    return { stream: socket, idle: (ms, onIdle) => socket.setTimeout(ms, ms > 0 ? onIdle : undefined) };
  }
  const ws = new WebSocket(`wss://${e.servername}:${e.port}/$iothub/websocket`, subprotocol, {
    // Dial the endpoint's address while naming its host, as a device behind a custom DNS entry does.
    lookup: (_host: string, options: LookupOptions, callback: LookupCallback) =>
      lookup(e.host, options as LookupAllOptions, callback as never),
    servername: e.servername,
    secureContext: e.secureContext,
    perMessageDeflate: false,
  } as WebSocket.ClientOptions);
  const stream = createWebSocketStream(ws);
  let timer: NodeJS.Timeout | undefined;
  let arm: (() => void) | undefined;
  stream.on("data", () => arm?.());
  stream.on("close", () => clearTimeout(timer));
  return {
    stream,
    idle: (ms, onIdle) => {
      clearTimeout(timer);
      arm =
        ms > 0
          ? () => {
              clearTimeout(timer);
              timer = setTimeout(onIdle, ms);
            }
          : undefined;
      arm?.();
    },
  };
}

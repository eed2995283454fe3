// connect-es transports for Node.js (a browser app uses the same options with
// `createGrpcWebTransport` / `createConnectTransport` from @connectrpc/connect-web). Each
// carries the bearer token; the gateway serves every protocol on one port.

import type { Transport } from "@connectrpc/connect";
import {
  createConnectTransport,
  createGrpcTransport,
  createGrpcWebTransport,
} from "@connectrpc/connect-node";

import { bearerInterceptor, type TokenSource } from "./auth.js";

/** The RPC protocols the gateway speaks. */
export type RpcProtocol = "grpc-web" | "connect" | "grpc";

/** A transport to the gateway at `baseUrl` over `protocol`, sending `token`. gRPC-Web and
 * Connect go over HTTP/1.1 (as from a browser); gRPC needs HTTP/2. */
export function createNodeTransport(
  protocol: RpcProtocol,
  baseUrl: string,
  token: TokenSource,
): Transport {
  const interceptors = [bearerInterceptor(token)];
  switch (protocol) {
    case "grpc-web":
      return createGrpcWebTransport({ baseUrl, httpVersion: "1.1", interceptors });
    case "connect":
      return createConnectTransport({ baseUrl, httpVersion: "1.1", interceptors });
    case "grpc":
      return createGrpcTransport({ baseUrl, interceptors });
  }
}

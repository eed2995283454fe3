// Bearer-token authentication for both ways of calling Director: an interceptor for
// connect-es transports (gRPC-Web, Connect, gRPC) and a middleware for openapi-fetch (REST).
// The gateway takes the caller's Supabase access token as `Authorization: Bearer <token>` on
// every protocol.

import type { Interceptor } from "@connectrpc/connect";
import type { Middleware } from "openapi-fetch";

/** A token, or a function returning the current one (called per request, so a refreshed
 * session token is picked up without rebuilding the client). */
export type TokenSource = string | (() => string | Promise<string>);

async function currentToken(source: TokenSource): Promise<string> {
  const token = typeof source === "string" ? source : await source();
  if (!token) {
    throw new Error("no access token: sign in first (the gateway answers 401 without one)");
  }
  return token;
}

/** Adds `Authorization: Bearer <token>` to every call of a connect-es transport. */
export function bearerInterceptor(source: TokenSource): Interceptor {
  return (next) => async (request) => {
    request.header.set("Authorization", `Bearer ${await currentToken(source)}`);
    return next(request);
  };
}

/** Adds `Authorization: Bearer <token>` to every request of an openapi-fetch client. */
export function bearerMiddleware(source: TokenSource): Middleware {
  return {
    async onRequest({ request }) {
      request.headers.set("Authorization", `Bearer ${await currentToken(source)}`);
      return request;
    },
  };
}

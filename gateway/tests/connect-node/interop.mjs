// Calls a running gateway with @connectrpc/connect-node over the Connect protocol and checks
// each answer; exits non-zero at the first failed check. Run by gateway/tests/gateway/connect_interop.rs,
// which starts the gateway and an echo upstream and passes, in the environment:
//   GATEWAY_URL  the gateway's base URL
//   TOKEN        a bearer token the gateway accepts
//   DESCRIPTORS  a FileDescriptorSet (binary) with director.testing.v1 and google.rpc
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";

import { createFileRegistry, fromBinary } from "@bufbuild/protobuf";
import { FileDescriptorSetSchema } from "@bufbuild/protobuf/wkt";
import { Code, ConnectError, createClient } from "@connectrpc/connect";
import { createTransport } from "@connectrpc/connect/protocol-connect";
import {
  compressionGzip,
  createConnectTransport,
  createNodeHttpClient,
} from "@connectrpc/connect-node";

const baseUrl = process.env.GATEWAY_URL;
const token = process.env.TOKEN;
const registry = createFileRegistry(
  fromBinary(FileDescriptorSetSchema, readFileSync(process.env.DESCRIPTORS)),
);
const EchoService = registry.getService("director.testing.v1.EchoService");
const BadRequest = registry.getMessage("google.rpc.BadRequest");
assert.ok(EchoService && BadRequest, "the descriptors name the echo service and BadRequest");

const authorize = (next) => async (request) => {
  request.header.set("authorization", `Bearer ${token}`);
  return next(request);
};

/** connect-node's own transport, as an application creates it. */
function connectTransport(options = {}) {
  return createConnectTransport({
    baseUrl,
    httpVersion: "1.1",
    interceptors: [authorize],
    ...options,
  });
}

/**
 * The same Connect transport over connect-node's HTTP client, which also records each
 * exchange (method, URL, headers) so the wire can be checked.
 */
function observedTransport(options = {}) {
  const send = createNodeHttpClient({ httpVersion: "1.1" });
  const exchanges = [];
  const httpClient = async (request) => {
    const response = await send(request);
    exchanges.push({
      method: request.method,
      url: request.url,
      requestHeader: request.header,
      status: response.status,
      responseHeader: response.header,
    });
    return response;
  };
  const transport = createTransport({
    baseUrl,
    httpClient,
    useBinaryFormat: true,
    interceptors: [authorize],
    acceptCompression: [compressionGzip],
    sendCompression: null,
    compressMinBytes: 1024,
    readMaxBytes: 0xffffffff,
    writeMaxBytes: 0xffffffff,
    ...options,
  });
  return { transport, exchanges };
}

async function expectError(call, code) {
  try {
    await call();
  } catch (error) {
    const connectError = ConnectError.from(error);
    assert.equal(Code[connectError.code], Code[code], connectError.message);
    return connectError;
  }
  assert.fail(`expected ${Code[code]}`);
}

const checks = {
  async "unary in protobuf"() {
    const client = createClient(EchoService, connectTransport());
    const echo = await client.echo({ name: "node", count: 9007199254740993n, mood: 1 });
    assert.equal(echo.name, "node");
    assert.equal(echo.count, 9007199254740993n);
    assert.equal(echo.mood, 1);
    assert.equal(echo.userId, "node-user");
  },

  async "unary in JSON"() {
    const client = createClient(EchoService, connectTransport({ useBinaryFormat: false }));
    const echo = await client.echo({ name: "json", count: 5n, mood: 2 });
    assert.equal(echo.name, "json");
    assert.equal(echo.count, 5n);
    assert.equal(echo.mood, 2);
  },

  async "GET for a method without side effects"() {
    const { transport, exchanges } = observedTransport({ useHttpGet: true });
    const client = createClient(EchoService, transport);
    const echo = await client.echo({ name: "by get", count: 2n });
    assert.equal(echo.name, "by get");
    assert.equal(exchanges[0].method, "GET");
    assert.match(exchanges[0].url, /[?&]message=/);
    assert.match(exchanges[0].url, /[?&]connect=v1/);
  },

  async "server stream"() {
    const client = createClient(EchoService, connectTransport());
    const sequences = [];
    for await (const echo of client.echoStream({ name: "flow", count: 3n })) {
      assert.equal(echo.name, "flow");
      sequences.push(echo.sequence);
    }
    assert.deepEqual(sequences, [1, 2, 3]);
  },

  async "server stream ending with an error"() {
    const client = createClient(EchoService, connectTransport({ useBinaryFormat: false }));
    const received = [];
    const error = await expectError(async () => {
      for await (const echo of client.echoStream({ name: "fail-after:gave up", count: 2n })) {
        received.push(echo.sequence);
      }
    }, Code.Aborted);
    assert.deepEqual(received, [1, 2]);
    assert.equal(error.rawMessage, "gave up");
  },

  async "error with BadRequest details"() {
    const client = createClient(EchoService, connectTransport());
    const error = await expectError(() => client.echo({ name: "invalid:name" }), Code.InvalidArgument);
    const [badRequest] = error.findDetails(BadRequest);
    assert.ok(badRequest, "a BadRequest detail");
    assert.equal(badRequest.fieldViolations[0].field, "name");
    assert.equal(badRequest.fieldViolations[0].description, "is invalid");
  },

  async "unauthenticated without a token"() {
    const transport = createConnectTransport({ baseUrl, httpVersion: "1.1" });
    const client = createClient(EchoService, transport);
    await expectError(() => client.echo({ name: "anonymous" }), Code.Unauthenticated);
  },

  async "deadline"() {
    const client = createClient(EchoService, connectTransport());
    const echo = await client.echo({ name: "in time" }, { timeoutMs: 5000 });
    assert.match(echo.grpcTimeout, /^\d+m$/, "the upstream received the deadline");
    assert.ok(Number.parseInt(echo.grpcTimeout, 10) <= 5000, echo.grpcTimeout);
    const started = Date.now();
    await expectError(
      () => client.echo({ name: "slow:3000" }, { timeoutMs: 300 }),
      Code.DeadlineExceeded,
    );
    assert.ok(Date.now() - started < 2500, "the call ended at its deadline");
  },

  async "gzip both ways"() {
    const { transport, exchanges } = observedTransport({
      sendCompression: compressionGzip,
      compressMinBytes: 0,
    });
    const client = createClient(EchoService, transport);
    const name = "z".repeat(4000);
    const echo = await client.echo({ name });
    assert.equal(echo.name, name);
    assert.equal(exchanges[0].requestHeader.get("content-encoding"), "gzip");
    assert.equal(exchanges[0].responseHeader.get("content-encoding"), "gzip");

    const streamed = [];
    for await (const item of client.echoStream({ name, count: 2n })) {
      streamed.push(item.name.length);
    }
    assert.deepEqual(streamed, [4000, 4000]);
    assert.equal(exchanges[1].requestHeader.get("connect-content-encoding"), "gzip");
    assert.equal(exchanges[1].responseHeader.get("connect-content-encoding"), "gzip");
  },
};

let failed = false;
for (const [name, check] of Object.entries(checks)) {
  try {
    await check();
    console.log(`ok ${name}`);
  } catch (error) {
    failed = true;
    console.log(`FAILED ${name}: ${error?.stack ?? error}`);
  }
}
process.exit(failed ? 1 : 0);

// Lists the caller's companies over REST (openapi-fetch) and over RPC (connect-es, gRPC-Web by
// default), checks both agree, then follows the task events (`WatchTasks`).
//
//   DIRECTOR_TOKEN=<access token> node dist/examples/list-companies.js \
//     [--base-url http://127.0.0.1:8080] [--transport grpc-web|connect|grpc] \
//     [--after-event-id 0] [--max-events N] [--timeout-ms MS]
//
// Without --max-events it follows events until interrupted; with it, it stops after N events
// and fails if they have not all arrived within --timeout-ms (default 30 s).

import { createClient } from "@connectrpc/connect";

import {
  CompaniesService,
  TaskEventKind,
  TasksService,
  createNodeTransport,
  createRestClient,
  type RpcProtocol,
} from "../src/index.js";

function option(name: string): string | undefined {
  const at = process.argv.indexOf(name);
  return at === -1 ? undefined : process.argv[at + 1];
}

const baseUrl = option("--base-url") ?? process.env.DIRECTOR_URL ?? "http://127.0.0.1:8080";
const token = process.env.DIRECTOR_TOKEN ?? "";
// The one choice of protocol: gRPC-Web works in every browser; "connect" is plain HTTP.
const protocol = (option("--transport") ?? "grpc-web") as RpcProtocol;
const afterEventId = option("--after-event-id") ?? "";
const maxEvents = option("--max-events") === undefined ? Infinity : Number(option("--max-events"));
const timeoutMs = Number(option("--timeout-ms") ?? 30_000);

// REST, typed by the OpenAPI document.
const rest = createRestClient(baseUrl, token);
const { data: restCompanies, error, response } = await rest.GET("/api/companies", {
  params: { query: { limit: 100 } },
});
if (error !== undefined || restCompanies === undefined) {
  throw new Error(`GET /api/companies answered ${response.status}: ${JSON.stringify(error)}`);
}
console.log(`REST: ${restCompanies.length} companies`);
for (const company of restCompanies) {
  console.log(`  ${company.id}  ${company.name}`);
}

// The same list over RPC.
const transport = createNodeTransport(protocol, baseUrl, token);
const companies = createClient(CompaniesService, transport);
const { companies: rpcCompanies } = await companies.listCompanies({ limit: 100 });
console.log(`${protocol}: ${rpcCompanies.length} companies`);
const restIds = restCompanies.map((company) => company.id).join(",");
const rpcIds = rpcCompanies.map((company) => company.id).join(",");
if (restIds !== rpcIds) {
  throw new Error("REST and RPC listed different companies");
}

// Task events, as they happen (after `afterEventId` first, when given).
const tasks = createClient(TasksService, transport);
const signal = Number.isFinite(maxEvents) ? AbortSignal.timeout(timeoutMs) : undefined;
let seen = 0;
if (seen < maxEvents) {
  console.log(`following task events${afterEventId ? ` after ${afterEventId}` : ""}…`);
  for await (const event of tasks.watchTasks({ afterEventId }, { signal })) {
    console.log(
      `  event ${event.eventId}: ${TaskEventKind[event.kind]} ${event.task?.id} "${event.task?.title}"`,
    );
    seen += 1;
    if (seen >= maxEvents) break;
  }
}

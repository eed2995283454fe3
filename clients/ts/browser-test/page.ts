// The page's script: a browser app on another origin than the gateway's, calling it with
// connect-web's `createConnectTransport` (the Connect protocol, binary messages, GET for the
// side-effect-free unary calls) and the client's `bearerInterceptor`:
//
//   1. `ListCompanies` (unary);
//   2. `WatchTasks` (server stream) from `after_event_id` "0": the events already recorded
//      are replayed first, then live ones follow; it stops after `events` events.
//
// The page's query names the gateway (`gateway`), the access token (`token`) and how many
// events to wait for (`events`). Each step is listed in the page and POSTed to `/report` on
// the page's own origin, where the test reads it; a failure is reported with its Connect code.

import { Code, ConnectError, createClient } from "@connectrpc/connect";
import { createConnectTransport } from "@connectrpc/connect-web";

import { bearerInterceptor } from "../src/auth.js";
import { CompaniesService } from "../src/gen/director/companies/v1/companies_pb.js";
import { TaskEventKind, TasksService } from "../src/gen/director/dispatch/v1/tasks_pb.js";

/** One step of the run, as the test reads it. */
type Report =
  | { step: "listed"; companies: string[] }
  | { step: "event"; eventId: string; kind: string; title: string }
  | { step: "failed"; code: string; message: string };

async function report(entry: Report): Promise<void> {
  const item = document.createElement("li");
  item.textContent = JSON.stringify(entry);
  document.getElementById("steps")?.append(item);
  const answer = await fetch("/report", {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify(entry),
  });
  if (!answer.ok) throw new Error(`the page's server refused the report: ${answer.status}`);
}

async function run(): Promise<void> {
  const query = new URLSearchParams(location.search);
  const gateway = query.get("gateway");
  if (!gateway) throw new Error("the page needs ?gateway=<the gateway's URL>");
  const events = Number(query.get("events") ?? "1");

  const transport = createConnectTransport({
    baseUrl: gateway,
    useBinaryFormat: true,
    useHttpGet: true,
    interceptors: [bearerInterceptor(query.get("token") ?? "")],
  });

  const companies = createClient(CompaniesService, transport);
  const listed = await companies.listCompanies({ limit: 100 });
  await report({ step: "listed", companies: listed.companies.map((company) => company.name) });

  const tasks = createClient(TasksService, transport);
  const stop = new AbortController();
  let seen = 0;
  for await (const event of tasks.watchTasks({ afterEventId: "0" }, { signal: stop.signal })) {
    await report({
      step: "event",
      eventId: event.eventId,
      kind: TaskEventKind[event.kind],
      title: event.task?.title ?? "",
    });
    seen += 1;
    if (seen >= events) break;
  }
  stop.abort();
}

run().catch(async (error: unknown) => {
  const failure = ConnectError.from(error);
  await report({ step: "failed", code: Code[failure.code], message: failure.rawMessage });
});

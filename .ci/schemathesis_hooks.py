"""Schemathesis hooks for the CI run (.ci/run: SCHEMATHESIS_HOOKS=.ci/schemathesis_hooks.py).

Three rules a JSON Schema cannot say keep the generated cases honest here, each stated once,
and one reading of the HTTP body:

- An update's mask given in the query (`?update_mask=a,b`, instead of the body's keys) is what
  the service reads: it clears every field it names that the body leaves out (and services
  refuse to clear the fields without presence: a name, a title), and it ignores the body's
  other keys. A rule across the query and the body: a positive update keeps in its query mask
  only keys its body carries, and a negative one whose violation is in the body drops the
  query mask, so the body's keys are the mask and the violation is read.
- A task's window must not end before it starts (`window_end >= window_start`): a rule across
  two fields, which protovalidate writes in CEL (not evaluated by Director's rule book), so
  the Dispatch service checks it, against the stored task too when an update names one end.
  A positive case that sets both ends keeps them in order; a positive update naming one end
  names the other (equal, and in its query mask too), so the stored task cannot make it
  invalid.
- Which destinations an SMS may go to is deployment policy (`SMS_ALLOWED_CALLING_CODES`,
  which .ci/run sets for the stack it starts, checked with libphonenumber's data): a positive
  case's number gets an allowed calling code, and a national number that is not all zeros
  (no country numbers a phone 0…0).
- Where a tenant's Vessey and Slack URLs may point is deployment policy too (the egress
  guard: `EGRESS_ALLOW_PRIVATE_NETWORKS`, `SLACK_WEBHOOK_HOSTS`), and the host must resolve
  in DNS when the settings are saved, which this machine has none of: a positive case's URL
  keeps its scheme, port, path, query and fragment, and gets the host the CI stack allows
  (127.0.0.1, with private networks allowed, as .ci/run sets them).

- A body of only whitespace is read as no body (the gateway's rule on every route), which a
  route with an optional body accepts: such a "random bytes" negative case is not one, and is
  dropped.

Otherwise negative cases are left alone: what they break is the schema, and the checks expect
a refusal whatever the window, the calling code or the host.
"""

from __future__ import annotations

import os
import re
from datetime import datetime, timedelta

import schemathesis
from schemathesis import GenerationMode
from schemathesis.core.parameters import ParameterLocation
from schemathesis.generation.meta import CoveragePhaseData

# Generated times are compared at a second's margin: services and PostgreSQL keep more
# (nanoseconds, microseconds) than Python parses, so "later" must hold at every precision.
MARGIN = timedelta(seconds=1)


def _is_positive(case) -> bool:
    return case.meta is not None and case.meta.generation.mode == GenerationMode.POSITIVE


def _instant(value):
    if not isinstance(value, str):
        return None
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        return None


def _ordered_window(body: dict, update: bool) -> None:
    start, end = body.get("window_start"), body.get("window_end")
    if isinstance(start, str) and isinstance(end, str):
        start_at, end_at = _instant(start), _instant(end)
        if start_at is None or end_at is None or end_at - start_at < MARGIN:
            body["window_end"] = start
    elif update and isinstance(end, str) and "window_start" not in body:
        body["window_start"] = end
    elif update and isinstance(start, str) and "window_end" not in body:
        body["window_end"] = start


def _violates_only_the_body(case) -> bool:
    data = case.meta.phase.data
    if isinstance(data, CoveragePhaseData):
        return data.parameter_location == ParameterLocation.BODY
    modes = {location: info.mode for location, info in case.meta.components.items()}
    return (
        modes.get(ParameterLocation.BODY) == GenerationMode.NEGATIVE
        and modes.get(ParameterLocation.QUERY) != GenerationMode.NEGATIVE
    )


@schemathesis.hook
def filter_case(context, case):
    # Raw bytes are sent as they are (a `str` body is sent as a JSON string).
    if _is_positive(case) or not isinstance(case.body, bytes):
        return True
    # The gateway's whitespace: `u8::is_ascii_whitespace`.
    return any(byte not in b" \t\n\r\x0c" for byte in case.body)


@schemathesis.hook
def map_case(context, case):
    if case.meta is None:
        return case
    if not _is_positive(case):
        if case.method.upper() == "PATCH" and _violates_only_the_body(case):
            if isinstance(case.query, dict):
                case.query.pop("update_mask", None)
        return case
    body = case.body if isinstance(case.body, dict) else {}
    operation = (case.method.upper(), case.operation.path)
    if operation == ("POST", "/api/tasks"):
        _ordered_window(body, update=False)
    elif operation == ("PATCH", "/api/tasks/{id}"):
        _ordered_window(body, update=True)
    elif operation == ("POST", "/api/integrations/notifications/sms"):
        to = body.get("to")
        if isinstance(to, str):
            body["to"] = _with_allowed_calling_code(to)
    elif operation == ("PUT", "/api/integrations/settings"):
        for section, key in (("vessey", "api_url"), ("slack", "webhook_url")):
            settings = body.get(section)
            if isinstance(settings, dict) and isinstance(settings.get(key), str):
                settings[key] = _on_allowed_host(settings[key])
    if operation[0] == "PATCH":
        _mask_within_body(case, body)
    return case


def _mask_within_body(case, body: dict) -> None:
    query = case.query if isinstance(case.query, dict) else {}
    mask = query.get("update_mask")
    if not isinstance(mask, str) or not mask:
        return
    kept = [name for name in mask.split(",") if name in body]
    window = {"window_start", "window_end"}
    if window & set(kept):
        kept += [end for end in sorted(window) if end in body and end not in kept]
    if kept:
        query["update_mask"] = ",".join(kept)
    else:
        del query["update_mask"]


def _allowed_calling_code() -> str:
    codes = os.environ.get("SMS_ALLOWED_CALLING_CODES", "")
    allowed = [code.strip().lstrip("+") for code in codes.split(",") if code.strip()]
    if not allowed:
        raise RuntimeError(
            "SMS_ALLOWED_CALLING_CODES is not set: the hook needs the stack's SMS policy"
        )
    return allowed[0]


def _with_allowed_calling_code(number: str) -> str:
    """`number` with its leading digits replaced by an allowed calling code.

    The number keeps its shape (separators, digit count), so it still matches the schema's
    pattern; calling codes are prefix-free, so those digits are the number's calling code.
    """
    code = _allowed_calling_code()
    digits = iter(code)
    out = []
    for char in number:
        if char.isdigit():
            char = next(digits, char)
        out.append(char)
    national = [i for i, char in enumerate(out) if char.isdigit()][len(code) :]
    if national and all(out[i] == "0" for i in national):
        out[national[-1]] = "1"
    return "".join(out)


# `scheme://authority` and the rest; the schema's pattern keeps user names and passwords out
# of the authority, so it is `host[:port]`.
_URL = re.compile(r"^(?P<scheme>[A-Za-z][A-Za-z0-9+.-]*://)(?P<authority>[^/?#]*)(?P<rest>.*)$", re.S)
_PORT = re.compile(r":[0-9]*$")


def _on_allowed_host(url: str) -> str:
    """`url` with its host replaced by one the CI stack's egress policy allows."""
    if os.environ.get("EGRESS_ALLOW_PRIVATE_NETWORKS", "").lower() != "true":
        raise RuntimeError(
            "EGRESS_ALLOW_PRIVATE_NETWORKS is not true: the hook needs a stack whose tenants "
            "may point at loopback"
        )
    parts = _URL.match(url)
    if parts is None:
        return url
    port = _PORT.search(parts["authority"])
    host = "127.0.0.1" + (port[0] if port else "")
    return parts["scheme"] + host + parts["rest"]

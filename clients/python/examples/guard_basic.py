"""Guard two tool calls with Warden (the demo catalog from `make demo`).

    WARDEN_URL=http://127.0.0.1:8000 WARDEN_KEY=wdn_... python guard_basic.py

crm.lookup is allowed straight away; email.send waits (long-poll) for a human to
approve it in the admin queue, then runs once and its result is reported."""

import os

from warden_sdk import Denied, Expired, NotAllowed, Warden

warden = Warden(os.environ.get("WARDEN_URL", "http://127.0.0.1:8000"), os.environ["WARDEN_KEY"])
print("workspace:", warden.whoami().workspace, "| tools:", [t.name for t in warden.tools()])


# In dry-run (new workspaces) the call is not made; `simulate` answers instead.
@warden.guard("crm.lookup", simulate=lambda id: {"id": id, "simulated": True})
def lookup(id: int) -> dict:
    return {"id": id, "name": "Ada Lovelace"}


print("lookup ->", lookup(42))

try:
    params = {"to": "ada@example.test", "subject": "Your refund"}
    with warden.guard("email.send", params=params, timeout=120) as guard:
        if guard.dry_run:
            print("dry-run: not sending")
        else:
            guard.result = {"message_id": "m-1"}  # send the email here
            print("sent; approved by", guard.authorisation.approved_by)
except Denied as exc:
    print("denied by", exc.decided_by, "because:", exc.reason)
except Expired:
    print("nobody approved in time")
except NotAllowed as exc:
    print("refused:", exc.code)

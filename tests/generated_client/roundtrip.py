"""A pipeline's view of the registry: a Python client generated from /openapi.json by
openapi-python-client, used as generated (typed models, no hand-written HTTP).

Run by .ci/run against a fresh registry on each backend:

    python roundtrip.py BASE_URL TOKEN GENERATED_PACKAGE_DIR

It round-trips plan/apply (a document planned, applied, re-planned as unchanged, exported
and planned again as unchanged), reads problems as typed objects, refuses a changed plan,
and downloads every export as a file.
"""

import sys

base_url, token, package_dir = sys.argv[1:4]
sys.path.insert(0, package_dir)

from client_registry_client import AuthenticatedClient  # noqa: E402
from client_registry_client.api.audit import export_log  # noqa: E402
from client_registry_client.api.clients import get_client, verify_secret  # noqa: E402
from client_registry_client.api.documents import apply, export_json, export_yaml, plan  # noqa: E402
from client_registry_client.api.exports import (  # noqa: E402
    export_clients_pdf,
    export_clients_xlsx,
    export_history_pdf,
    export_history_xlsx,
)
from client_registry_client.models import (  # noqa: E402
    ApplyRequest,
    ApplyRequestSecrets,
    ApplyResult,
    ClientResponse,
    ClientsDocument,
    DocumentClient,
    Plan,
    Problem,
    StepAction,
    VerifySecretRequest,
)
from client_registry_client.types import File  # noqa: E402

client = AuthenticatedClient(base_url=base_url, token=token, raise_on_unexpected_status=True)


def check(condition, what):
    if not condition:
        raise SystemExit(f"FAILED: {what}")
    print(f"ok: {what}")


document = ClientsDocument(
    clients=[
        DocumentClient(
            client_id="generated-worker",
            client_name="Generated worker",
            client_secret_env="GENERATED_WORKER_SECRET",
            grant_types=["client_credentials"],
            allowed_scopes=["octo_api"],
        ),
        DocumentClient(
            client_id="generated-spa",
            client_name="Generated SPA",
            require_client_secret=False,
            redirect_uris=["https://generated.example.com/callback"],
            allowed_cors_origins=["https://generated.example.com"],
            allowed_scopes=["openid", "profile"],
        ),
    ]
)

planned = plan.sync(client=client, body=document)
check(isinstance(planned, Plan), "plan answers a typed Plan")
check(planned.has_changes and planned.summary.create == 2, "the plan creates both clients")
worker = next(s for s in planned.steps if s.client_id == "generated-worker")
check(worker.action == StepAction.CREATE, "a step's action is an enum")

secrets = ApplyRequestSecrets()
secrets["generated-worker"] = "secret-from-the-pipeline-vault"
result = apply.sync(
    client=client,
    body=ApplyRequest(plan=planned, reason="generated client round trip", secrets=secrets),
)
check(isinstance(result, ApplyResult) and result.complete, "apply runs the reviewed plan")
check(len(result.applied) == 2 and not result.conflicts, "both creations applied")
verified = verify_secret.sync(
    client_id="generated-worker",
    client=client,
    body=VerifySecretRequest(client_secret="secret-from-the-pipeline-vault"),
)
check(verified.valid, "the worker authenticates with the pipeline's secret")

again = plan.sync(client=client, body=document)
check(not again.has_changes and again.summary.unchanged == 2, "planned again: nothing to do")

exported = export_json.sync(client=client)
check(isinstance(exported, ClientsDocument), "the JSON export is a typed document")
spa = next(c for c in exported.clients if c.client_id == "generated-spa")
check(spa.redirect_uris == ["https://generated.example.com/callback"], "exported as applied")
replanned = plan.sync(client=client, body=exported)
check(not replanned.has_changes, "the export plans back as unchanged")
yaml_text = export_yaml.sync(client=client)
check(isinstance(yaml_text, str) and "generated-spa" in yaml_text, "the YAML export as text")

stored = get_client.sync(client_id="generated-spa", client=client)
check(isinstance(stored, ClientResponse) and stored.client_name == "Generated SPA", "typed client")

# What was reviewed is what runs: a plan changed after /plan is refused, as a typed problem.
renamed = plan.sync(
    client=client,
    body=ClientsDocument(
        clients=[
            DocumentClient(
                client_id="generated-spa",
                client_name="Renamed",
                require_client_secret=False,
                redirect_uris=["https://generated.example.com/callback"],
                allowed_cors_origins=["https://generated.example.com"],
                allowed_scopes=["openid", "profile"],
            )
        ]
    ),
)
check(renamed.summary.update == 1, "a rename plans as one update")
renamed.steps[0].desired.client_name = "Something nobody reviewed"
refused = apply.sync(client=client, body=ApplyRequest(plan=renamed))
check(isinstance(refused, Problem) and refused.status == 422, "a changed plan is a typed 422")
check(any(e.field == "plan" for e in refused.errors), "the problem names the plan")

bad = plan.sync(
    client=client,
    body=ClientsDocument(
        clients=[DocumentClient(client_id="bad id!", client_name="", redirect_uris=["http://x/cb"])]
    ),
)
check(isinstance(bad, Problem) and bad.status == 422, "an invalid document is a typed 422")
fields = {e.field for e in bad.errors}
check(
    {"clients[0].client_id", "clients[0].client_name", "clients[0].redirect_uris[0]"} <= fields,
    f"every error at once, with paths ({sorted(fields)})",
)

for name, call, kwargs, magic in [
    ("clients xlsx", export_clients_xlsx, {}, b"PK"),
    ("clients pdf", export_clients_pdf, {}, b"%PDF"),
    ("history xlsx", export_history_xlsx, {"client_id": "generated-spa"}, b"PK"),
    ("history pdf", export_history_pdf, {"client_id": "generated-spa"}, b"%PDF"),
]:
    downloaded = call.sync(client=client, **kwargs)
    check(isinstance(downloaded, File), f"the {name} export is a file")
    payload = downloaded.payload.read()
    check(payload.startswith(magic) and len(payload) > 500, f"the {name} export has its bytes")

sealed_log = export_log.sync(client=client)
check(isinstance(sealed_log, File), "the sealed log downloads as a file")

print("generated client: every check passed")

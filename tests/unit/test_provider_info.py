"""The provider as Airflow discovers it: entry point, metadata schema, connection form."""

import json
from importlib.resources import files

import jsonschema
import pytest
from airflow.providers_manager import ProvidersManager

try:
    from airflow.sdk.providers_manager_runtime import ProvidersManagerTaskRuntime
except ImportError:  # Airflow < 3.2: ProvidersManager itself lists the hooks
    ProvidersManagerTaskRuntime = ProvidersManager

from gooten_provider import __version__
from gooten_provider.get_provider_info import get_provider_info
from gooten_provider.hooks.gooten import GootenHook


@pytest.fixture(scope="module")
def providers():
    return ProvidersManager()


def test_provider_info_is_valid_against_airflows_schemas():
    info = get_provider_info()
    jsonschema.validate(info, json.loads((files("airflow") / "provider_info.schema.json").read_text()))
    strict = json.loads((files("airflow") / "provider.yaml.schema.json").read_text())
    for connection_type in info["connection-types"]:
        jsonschema.validate(connection_type, strict["properties"]["connection-types"]["items"])


def test_providers_manager_finds_the_provider_and_its_connection_type(providers):
    assert providers.providers["airflow-provider-gooten"].data["name"] == "Gooten"
    hook = ProvidersManagerTaskRuntime().hooks["gooten"]
    assert hook.hook_class_name == "gooten_provider.hooks.gooten.GootenHook"
    assert hook.hook_name == "Gooten"
    assert hook.connection_id_attribute_name == GootenHook.conn_name_attr
    assert hook.connection_testable


def test_connection_form_relabels_the_standard_fields(providers):
    behaviour = providers.field_behaviours["gooten"]
    assert behaviour["relabeling"] == {
        "login": "Recipe ID",
        "password": "Partner Billing Key",
        "host": "API base URL",
    }
    assert "port" not in behaviour["hidden_fields"]  # a port on the connection is honoured


def test_connection_form_has_the_custom_fields(providers):
    widgets = {k: v for k, v in providers.connection_form_widgets.items() if k.startswith("extra__gooten__")}
    # Airflow 3.2+ builds the form from the declared conn-fields, older lines from the hook's WTForms fields.
    labels = {
        w.field_name: w.field["schema"]["title"] if isinstance(w.field, dict) else w.field.args[0]
        for w in widgets.values()
    }
    assert labels == {
        "timeout": "Timeout (seconds)",
        "max_retries": "Max retries",
        "backoff_factor": "Retry backoff factor",
        "adaptive_rate": "Adaptive rate",
        "throttle_timeout": "Throttle timeout (seconds)",
        "rate_limit_conn_id": "Shared pace (Redis connection id)",
        "admin_order_url": "Admin order URL",
    }


def test_extra_link_is_registered(providers):
    providers.initialize_providers_extra_links()
    assert "gooten_provider.links.GootenOrderLink" in providers.extra_links_class_names


def test_legacy_form_methods_match_the_declared_form():
    """Airflow < 3.2 renders the hook's methods, 3.2+ the declared metadata: they must not drift."""
    connection_type = get_provider_info()["connection-types"][0]
    behaviour = connection_type["ui-field-behaviour"]
    assert GootenHook.get_ui_field_behaviour() == {
        "hidden_fields": behaviour["hidden-fields"],
        "relabeling": behaviour["relabeling"],
        "placeholders": behaviour["placeholders"],
    }
    widgets = GootenHook.get_connection_form_widgets()
    fields = connection_type["conn-fields"]
    assert set(widgets) == set(fields)
    for name, widget in widgets.items():
        assert widget.args[0] == fields[name]["label"]
        # Airflow < 3.2 accepts only String/Integer/Password/Boolean fields: a number is typed as text.
        types = fields[name]["schema"]["type"]
        expected_class = (
            "BooleanField" if "boolean" in types else "IntegerField" if "integer" in types else "StringField"
        )
        assert widget.field_class.__name__ == expected_class
    assert GootenHook.conn_type == connection_type["connection-type"]
    assert GootenHook.hook_name == connection_type["hook-name"]


def test_airflow_cli_lists_the_provider():
    import os
    import subprocess
    import sys
    from pathlib import Path

    airflow = Path(sys.executable).with_name("airflow")
    listed = subprocess.run(
        [str(airflow), "providers", "list", "--output", "json"],
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
        env=os.environ.copy(),
    )
    (table,) = [line for line in listed.stdout.splitlines() if line.startswith('[{"package_name"')]
    providers = {p["package_name"]: p for p in json.loads(table)}
    assert providers["airflow-provider-gooten"]["version"] == __version__


def test_connection_form_needs_wtforms_before_airflow_3_2_only():
    """Before 3.2 the form comes from the hook's WTForms fields: without wtforms (which the FAB provider
    installs) Airflow shows the generic form; from 3.2 it comes from get_provider_info() and needs nothing.
    (docs/installation.md says so.)"""
    import subprocess
    import sys

    from packaging.version import Version

    code = (
        "import json, sys\n"
        "sys.modules['wtforms'] = None  # as if neither wtforms nor the FAB provider were installed\n"
        "from airflow.providers_manager import ProvidersManager\n"
        "pm = ProvidersManager()\n"
        "widgets = [k for k in pm.connection_form_widgets if k.startswith('extra__gooten__')]\n"
        "print(json.dumps({'relabelled': 'gooten' in pm.field_behaviours, 'fields': len(widgets)}))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120
    )
    form = json.loads(done.stdout.strip().splitlines()[-1])
    from airflow import __version__ as airflow_version

    if Version(airflow_version) >= Version("3.2"):
        assert form == {
            "relabelled": True,
            "fields": len(get_provider_info()["connection-types"][0]["conn-fields"]),
        }
    else:
        assert form == {"relabelled": False, "fields": 0}
        assert "flask_appbuilder' package is not installed" in done.stdout + done.stderr

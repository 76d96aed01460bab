"""Load demarc's exports in outside implementations (run by run.sh, which pins them).

OSCAL: compliance-trestle's pydantic models of the catalog, component definition, SSP and
assessment results read each exported document (every field typed and constrained as the
OSCAL model says). CycloneDX: cyclonedx-python-lib's strict JSON validator for each spec
version, and its own model deserialising the BOM.
"""

import json
import os
import pathlib
import subprocess
import sys
import tempfile

REPO = pathlib.Path(__file__).resolve().parents[4]
BANK = REPO / "examples" / "bank-estate.yaml"
DEMARC = os.environ["DEMARC_BIN"]
DATE = "2026-11-26"


def demarc(*args):
    return subprocess.run([DEMARC, *args], check=True, capture_output=True, text=True).stdout


def check_oscal(out):
    from trestle.oscal.assessment_results import AssessmentResults
    from trestle.oscal.catalog import Catalog
    from trestle.oscal.component import ComponentDefinition
    from trestle.oscal.ssp import SystemSecurityPlan

    demarc("export", "oscal", "--estate", str(BANK), "--date", DATE, "--out-dir", str(out))
    for model, name in [
        (Catalog, "catalog.json"),
        (ComponentDefinition, "component-definition.json"),
        (SystemSecurityPlan, "ssp.json"),
        (AssessmentResults, "assessment-results.json"),
    ]:
        doc = model.oscal_read(out / name)
        assert doc is not None, name
        print(f"trestle: {name} loads as {model.__name__} ({doc.uuid})")
    ssp = SystemSecurityPlan.oscal_read(out / "ssp.json")
    inherited = sum(
        len(bc.inherited or [])
        for req in ssp.control_implementation.implemented_requirements
        for bc in req.by_components or []
    )
    assert inherited > 0, "inherited statements"
    for catalog_id in ["csa-genai-2023", "cosai-srf-1.0", "microsoft-ai-srm", "aws-genai-scoping"]:
        path = out / f"{catalog_id}.json"
        path.write_text(demarc("export", "oscal-catalog", "--catalog", catalog_id))
        cat = Catalog.oscal_read(path)
        print(f"trestle: catalog {catalog_id} loads ({sum(len(g.controls or []) for g in cat.groups)} controls)")


def check_cyclonedx(out):
    from cyclonedx.model.bom import Bom
    from cyclonedx.schema import SchemaVersion
    from cyclonedx.validation.json import JsonStrictValidator

    versions = {"1.5": SchemaVersion.V1_5, "1.6": SchemaVersion.V1_6}
    if hasattr(SchemaVersion, "V1_7"):
        versions["1.7"] = SchemaVersion.V1_7
    else:
        print("cyclonedx-python-lib: no 1.7 schema in this version; 1.7 checked by the Rust tests only")
    for spec, version in versions.items():
        text = demarc("export", "cyclonedx", "--estate", str(BANK), "--spec", spec, "--date", DATE)
        errors = JsonStrictValidator(version).validate_str(text)
        assert errors is None, f"{spec}: {errors}"
        bom = Bom.from_json(json.loads(text))
        models = [c for c in bom.components if str(c.type.value) == "machine-learning-model"]
        assert models, spec
        print(f"cyclonedx-python-lib: spec {spec} valid; {len(models)} model components")


def main():
    with tempfile.TemporaryDirectory() as tmp:
        out = pathlib.Path(tmp)
        check_oscal(out)
        check_cyclonedx(out)
    print("interchange: outside implementations load every export")


if __name__ == "__main__":
    sys.exit(main())

"""FHIR R4: Bundle input (mapping and errors), letter Bundle output, DTR-style Questionnaire."""

from __future__ import annotations

import base64
import copy
import json
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lettergen import api
from lettergen.case.fhir_in import FACTS_SYSTEM, case_from_bundle
from lettergen.errors import CaseError, LettergenError
from tests.conftest import CHORDOMA, EXAMPLES, run_cli

FHIR_EXAMPLE = EXAMPLES / "chordoma-gluteal-mass.fhir.json"
R4B = pytest.importorskip("fhir.resources.R4B")


def _bundle() -> dict[str, Any]:
    data: dict[str, Any] = json.loads(FHIR_EXAMPLE.read_text())
    return data


def _res(bundle: dict[str, Any], rtype: str, n: int = 0) -> dict[str, Any]:
    found: list[dict[str, Any]] = [e["resource"] for e in bundle["entry"] if e["resource"]["resourceType"] == rtype]
    return found[n]


def test_fhir_example_gives_the_same_decision_as_yaml() -> None:
    c1, out1, _ = run_cli("check", str(FHIR_EXAMPLE), "--json")
    c2, out2, _ = run_cli("check", str(CHORDOMA), "--json")
    assert c1 == c2 == 0
    assert json.loads(out1) == json.loads(out2)
    assert {s["code"]: s["verdict"] for s in json.loads(out1)["services"]} == {"20206": "met", "38505": "insufficient"}


def test_fhir_example_maps_onto_the_yaml_case() -> None:
    from_fhir = api.load_case(FHIR_EXAMPLE).case
    from_yaml = api.load_case(CHORDOMA).case
    assert from_fhir.model_copy(update={"letter": from_yaml.letter}) == from_yaml


def test_fhir_example_validates_as_r4b_bundle() -> None:
    R4B.get_fhir_model_class("Bundle").model_validate(_bundle())


@pytest.mark.parametrize("example", sorted(p for p in EXAMPLES.glob("*.yaml")), ids=lambda p: p.stem)
def test_every_example_round_trips_through_a_bundle(example: Path) -> None:
    from lettergen.outputs.fhir_out import case_bundle, validated

    case = api.load_case(example).case
    bundle = json.loads(json.dumps(validated(case_bundle(case))))
    # The denial, when there is one, travels as a ClaimResponse and comes back whole.
    assert case_from_bundle(bundle, "b.json") == case.model_copy(
        update={"letter": type(case.letter)(type=case.letter.type)}
    )


def _mut(path: tuple[Any, ...], value: Any) -> Any:
    def apply(b: dict[str, Any]) -> dict[str, Any]:
        node: Any = b
        for p in path[:-1]:
            node = node[p] if not callable(p) else p(node)
        if value is _DELETE:
            del node[path[-1]]
        else:
            node[path[-1]] = value
        return b

    return apply


_DELETE = object()


def _entry(rtype: str, n: int = 0) -> Any:
    return lambda entries: [e for e in entries if e["resource"]["resourceType"] == rtype][n]["resource"]


@pytest.mark.parametrize(
    ("mutate", "where"),
    [
        (_mut(("entry",), "x"), "Bundle.entry"),
        (_mut(("entry", 0), 7), "Bundle.entry[0]"),
        (_mut(("entry", 0, "resource", "resourceType"), _DELETE), "Bundle.entry[0].resource.resourceType"),
        (_mut(("identifier",), _DELETE), "Bundle.identifier.value"),
        (_mut(("entry", _entry("Patient"), "name"), _DELETE), "(Patient).name"),
        (_mut(("entry", _entry("Patient"), "birthDate"), 1965), "(Patient).birthDate"),
        (_mut(("entry", _entry("Patient"), "birthDate"), "2999-01-01"), "(Patient) (patient.birth_date)"),
        (_mut(("entry", _entry("Coverage"), "payor"), [{"reference": "urn:uuid:nowhere"}]), "(Coverage).payor[0]"),
        (_mut(("entry", _entry("Coverage"), "type"), {"text": "x"}), "(Coverage).type.coding"),
        (_mut(("entry", _entry("Practitioner"), "identifier"), []), "(Practitioner).identifier"),
        (_mut(("entry", _entry("Practitioner"), "identifier", 0, "value"), "1234567890"), "(Practitioner)"),
        (_mut(("entry", _entry("Condition"), "code", "coding", 0, "code"), "Z99.999"), "(Condition).code"),
        (_mut(("entry", _entry("ServiceRequest"), "code", "coding", 0, "system"), "urn:x"), "(ServiceRequest).code"),
        (_mut(("entry", _entry("ServiceRequest"), "quantityQuantity"), {"value": "2"}), "(ServiceRequest).quantity"),
        (_mut(("entry", _entry("Observation"), "valueBoolean"), "yes"), "(Observation).valueBoolean"),
        (_mut(("entry", _entry("Observation"), "valueBoolean"), _DELETE), "(Observation).value[x]"),
        (_mut(("entry", _entry("Observation"), "effectiveDateTime"), "last week"), "(Observation).effectiveDateTime"),
        (_mut(("entry", _entry("Observation"), "note"), [{"author": "x"}]), "(Observation).note[0].text"),
        (
            _mut(("entry", _entry("Observation"), "code", "coding", 0, "code"), "no_such_fact"),
            "facts (entry 1): unknown fact id",
        ),
    ],
)
def test_malformed_bundle_names_resource_and_field(mutate: Any, where: str, tmp_path: Path) -> None:
    bundle = mutate(_bundle())
    path = tmp_path / "bad.fhir.json"
    path.write_text(json.dumps(bundle))
    code, _, err = run_cli("check", str(path))
    assert code == 2
    line = err.strip()
    assert "\n" not in line and str(path) in line and where in line, line
    assert "Jane" not in line and "XYZ000000000" not in line


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.lists(
        st.tuples(
            st.integers(min_value=0, max_value=30),
            st.sampled_from(["name", "code", "valueBoolean", "birthDate", "payor", "identifier", "type", "note"]),
            st.one_of(st.none(), st.integers(), st.text(max_size=5), st.lists(st.integers(), max_size=2), st.just({})),
        ),
        min_size=1,
        max_size=4,
    )
)
def test_mutated_bundles_raise_only_documented_errors(mutations: list[tuple[int, str, Any]]) -> None:
    bundle = _bundle()
    for i, key, value in mutations:
        res = bundle["entry"][i % len(bundle["entry"])]["resource"]
        res[key] = value
    try:
        case_from_bundle(copy.deepcopy(bundle), "m.json")
    except LettergenError as exc:
        assert isinstance(exc, CaseError) and "\n" not in str(exc)


@pytest.fixture(scope="module")
def letter_bundle(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    out = tmp_path_factory.mktemp("fhir")
    code, stdout, err = run_cli("draft", str(CHORDOMA), "--format", "fhir", "--date", "2026-11-21", "-o", str(out))
    assert code == 0, err
    data: dict[str, Any] = json.loads(Path(stdout.splitlines()[0].removeprefix("wrote ")).read_text())
    return data


def test_letter_bundle_validates(letter_bundle: dict[str, Any]) -> None:
    bundle = R4B.get_fhir_model_class("Bundle").model_validate(letter_bundle)
    assert bundle.type == "collection"
    ids = [e["fullUrl"] for e in letter_bundle["entry"]]
    assert len(ids) == len(set(ids)) and all(i.startswith("urn:uuid:") for i in ids)


def test_letter_bundle_document_reference_holds_the_letter(letter_bundle: dict[str, Any]) -> None:
    doc = _res(letter_bundle, "DocumentReference", -1)
    attachment = doc["content"][0]["attachment"]
    text = base64.b64decode(attachment["data"]).decode()
    assert attachment["contentType"].startswith("text/plain") and attachment["size"] == len(text.encode())
    draft = api.draft(api.load_case(CHORDOMA), fmt="txt", letter_date=date(2026, 11, 21))
    assert text == draft.text


def test_letter_bundle_provenance_names_case_and_sources(letter_bundle: dict[str, Any]) -> None:
    prov = _res(letter_bundle, "Provenance")
    doc_url = next(
        e["fullUrl"]
        for e in letter_bundle["entry"]
        if e["resource"]["resourceType"] == "DocumentReference"
        and "content" in e["resource"]
        and e["resource"].get("docStatus")
    )
    assert prov["target"] == [{"reference": doc_url}]
    entities = prov["entity"]
    assert entities[0]["what"]["identifier"]["value"] == "chordoma-gluteal-001"
    dois = {
        e["what"]["identifier"]["value"] for e in entities[1:] if e["what"]["identifier"]["system"] == "https://doi.org"
    }
    assert "10.1186/s13569-016-0047-1" in dois
    assert len(entities) - 1 == len(api.draft(api.load_case(CHORDOMA), fmt="txt").letter.references)


def test_letter_bundle_carries_decision_per_service(letter_bundle: dict[str, Any]) -> None:
    from lettergen.outputs.fhir_out import EXT_NECESSITY

    found = {}
    for e in letter_bundle["entry"]:
        r = e["resource"]
        if r["resourceType"] != "ServiceRequest":
            continue
        ext = next(x for x in r["extension"] if x["url"] == EXT_NECESSITY)["extension"]
        found[r["code"]["coding"][0]["code"]] = ext
    verdicts = {code: next(x["valueCode"] for x in ext if x["url"] == "verdict") for code, ext in found.items()}
    assert verdicts == {"20206": "met", "38505": "insufficient"}
    missing = [x["valueCoding"] for x in found["38505"] if x["url"] == "missing-fact"]
    assert missing and all(m["system"] == FACTS_SYSTEM and m["display"] for m in missing)
    assert not [x for x in found["20206"] if x["url"] == "missing-fact"]


def test_letter_bundle_ids_are_deterministic(letter_bundle: dict[str, Any]) -> None:
    from lettergen.outputs.fhir_out import rid

    assert letter_bundle["entry"][0]["resource"]["id"] == rid("chordoma-gluteal-001", "patient")


@pytest.mark.parametrize("codes", [["20206"], ["20206", "38505"], ["77520", "78815"]])
def test_init_format_fhir_is_a_valid_questionnaire(codes: list[str]) -> None:
    args = [a for c in codes for a in ("--code", c)]
    code, out, err = run_cli("init", *args, "--format", "fhir")
    assert code == 0, err
    data = json.loads(out)
    q = R4B.get_fhir_model_class("Questionnaire").model_validate(data)
    assert q.status == "draft" and [c.code for c in q.code] == codes
    link_ids = [i["linkId"] for i in data["item"]]
    yaml_code, yaml_out, _ = run_cli("init", *args)
    assert yaml_code == 0
    for fact_id in link_ids:  # the same questions as the YAML skeleton
        assert f"# {fact_id}:" in yaml_out
    choice = [i for i in data["item"] if i["type"] == "choice"]
    assert all(i["answerOption"] for i in choice)


@pytest.mark.parametrize(
    ("mutate", "fragment"),
    [
        (lambda cr: cr.pop("created"), "(ClaimResponse).created: is required"),
        (lambda cr: cr.pop("disposition"), "(ClaimResponse).disposition: is required"),
        (lambda cr: cr.update(identifier=[]), "identifier[0].value"),
        (lambda cr: cr["adjudication"][0]["reason"]["coding"][0].update(code="ZZ-999"), "denial.codes"),
    ],
)
def test_appeal_case_travels_as_a_claim_response(mutate: Any, fragment: str, tmp_path: Path) -> None:
    from lettergen.outputs.fhir_out import case_bundle

    yaml_case = api.load_case(EXAMPLES / "appeal-erisa-chordoma-biopsy.yaml")
    bundle = json.loads(json.dumps(case_bundle(yaml_case.case)))
    good = tmp_path / "good.json"
    good.write_text(json.dumps(bundle))
    assert api.check(api.load_case(good).case).deadline == api.check(yaml_case.case).deadline
    cr = next(e["resource"] for e in bundle["entry"] if e["resource"]["resourceType"] == "ClaimResponse")
    mutate(cr)
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(bundle))
    code, _, err = run_cli("check", str(bad))
    assert code == 2 and fragment in err and len(err.strip().splitlines()) == 1, err

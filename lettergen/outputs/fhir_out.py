"""FHIR R4 output: the case as resources, the letter Bundle, and the DTR-style Questionnaire.

Resources are plain dicts with deterministic ids (uuid5 of the case id); :func:`validated` checks
them with fhir.resources (extra ``fhir``; its R4B models, the R4-compatible release it ships).

The decision per service rides on its ServiceRequest in an extension shaped after the Da Vinci CRD
coverage-information extension: CRD's ``covered``/``pa-needed`` are a payer's assertions, which
lettergen cannot make, so the extension carries lettergen's own verdict (met / not_met /
insufficient / not_assessed), the policy applied (none for a code with no criteria on file), the missing
facts (coded in the facts code system, with their questions, as CRD's ``info-needed`` would point to),
conflicts and the findings cited.

A service's label in the clinician's words is its ``code.text``; its documented rationale entries are
Observations coded in the rationale code system that its ``supportingInfo`` points to, in order (see
``fhir_in`` for the mapping).
"""

from __future__ import annotations

import base64
import hashlib
import json
import uuid
from datetime import date
from typing import Any

from lettergen import __version__
from lettergen.case.fhir_in import (
    BASE,
    CASE_ID_SYSTEM,
    CPT,
    DENIAL_CODE_SYSTEM,
    EXT_DENIAL,
    EXT_LATERALITY,
    EXT_PLAN_STATE,
    EXT_POLICY_SET,
    FACTS_SYSTEM,
    HCPCS,
    ICD10CM,
    LETTER_TYPE_SYSTEM,
    MBI,
    NPI,
    PLAN_TYPE_SYSTEM,
    RATIONALE_SYSTEM,
)
from lettergen.case.model import Case, Fact
from lettergen.decision.engine import Decision, ServiceDecision
from lettergen.errors import MissingExtra
from lettergen.knowledge.policies import Question
from lettergen.knowledge.store import KnowledgeBase
from lettergen.letter.render import Letter

EXT_NECESSITY = f"{BASE}/StructureDefinition/necessity-information"
QUESTIONNAIRE_URL = f"{BASE}/Questionnaire"
PARTICIPANT = "http://terminology.hl7.org/CodeSystem/provenance-participant-type"
ITEM_CONTROL = "http://hl7.org/fhir/StructureDefinition/questionnaire-itemControl"
QUESTIONNAIRE_UNIT = "http://hl7.org/fhir/StructureDefinition/questionnaire-unit"
_NS = uuid.uuid5(uuid.NAMESPACE_URL, BASE)  # lettergen namespace for resource ids

Resource = dict[str, Any]


def rid(case_id: str, kind: str) -> str:
    return str(uuid.uuid5(_NS, f"{case_id}/{kind}"))


def _ref(case_id: str, kind: str) -> dict[str, str]:
    return {"reference": f"urn:uuid:{rid(case_id, kind)}"}


def _entry(case_id: str, kind: str, resource: Resource) -> Resource:
    resource = {"resourceType": resource.pop("resourceType"), "id": rid(case_id, kind), **resource}
    return {"fullUrl": f"urn:uuid:{rid(case_id, kind)}", "resource": resource}


def _human_name(name: str, suffix: str | None = None) -> list[dict[str, Any]]:
    out: dict[str, Any] = {"text": name}
    if suffix:
        out["suffix"] = [s.strip() for s in suffix.split(",") if s.strip()]
    return [out]


def _fact_resource(case: Case, fact_id: str, fact: Fact) -> Resource:
    obs: Resource = {
        "resourceType": "Observation",
        "status": "final",
        "code": {"coding": [{"system": FACTS_SYSTEM, "code": fact_id}]},
        "subject": _ref(case.case_id, "patient"),
    }
    v = fact.value
    if isinstance(v, bool):
        obs["valueBoolean"] = v
    elif isinstance(v, int):
        obs["valueInteger" if fact.unit is None else "valueQuantity"] = v if fact.unit is None else {"value": v}
    elif isinstance(v, float):
        obs["valueQuantity"] = {"value": v}
    elif isinstance(v, date):
        obs["valueDateTime"] = v.isoformat()
    else:
        obs["valueString"] = v
    if fact.unit is not None and "valueQuantity" in obs:
        obs["valueQuantity"]["unit"] = fact.unit
    if fact.date:
        obs["effectiveDateTime"] = fact.date.isoformat()
    if fact.evidence:
        obs["note"] = [{"text": fact.evidence}]
    if fact.source:
        obs["derivedFrom"] = [{"display": fact.source}]
    return obs


def case_entries(case: Case) -> list[Resource]:
    """The case as Bundle entries: what ``fhir_in.case_from_bundle`` reads back."""
    cid = case.case_id
    p, pay, prov = case.patient, case.payer, case.provider
    patient: Resource = {"resourceType": "Patient", "name": _human_name(p.name), "birthDate": p.birth_date.isoformat()}
    if p.sex:
        patient["gender"] = p.sex
    if p.address:
        patient["address"] = [{"text": p.address}]
    if p.medicare_number:
        patient["identifier"] = [{"system": MBI, "value": p.medicare_number}]
    payer: Resource = {"resourceType": "Organization", "name": pay.name}
    if pay.address:
        payer["address"] = [{"text": pay.address}]
    if pay.fax:
        payer["telecom"] = [{"system": "fax", "value": pay.fax}]
    coverage: Resource = {
        "resourceType": "Coverage",
        "status": "active",
        "type": {"coding": [{"system": PLAN_TYPE_SYSTEM, "code": pay.plan_type}]},
        "beneficiary": _ref(cid, "patient"),
        "payor": [_ref(cid, "payer")],
    }
    ext = [{"url": u, "valueString": v} for u, v in ((EXT_PLAN_STATE, pay.state), (EXT_POLICY_SET, pay.policy)) if v]
    if ext:
        coverage["extension"] = ext
    if p.member_id:
        coverage["subscriberId"] = p.member_id
    if p.group_number:
        coverage["class"] = [{"type": {"coding": [{"code": "group"}]}, "value": p.group_number}]
    practitioner: Resource = {
        "resourceType": "Practitioner",
        "identifier": [{"system": NPI, "value": prov.npi}],
        "name": _human_name(prov.name, prov.credentials),
    }
    telecom = [{"system": s, "value": v} for s, v in (("phone", prov.phone), ("fax", prov.fax)) if v]
    if telecom:
        practitioner["telecom"] = telecom
    if prov.address:
        practitioner["address"] = [{"text": prov.address}]
    entries = [
        _entry(cid, "patient", patient),
        _entry(cid, "payer", payer),
        _entry(cid, "coverage", coverage),
        _entry(cid, "practitioner", practitioner),
    ]
    if prov.organization or prov.specialty:
        role: Resource = {"resourceType": "PractitionerRole", "practitioner": _ref(cid, "practitioner")}
        if prov.specialty:
            role["specialty"] = [{"text": prov.specialty}]
        if prov.organization:
            entries.append(_entry(cid, "provider-org", {"resourceType": "Organization", "name": prov.organization}))
            role["organization"] = _ref(cid, "provider-org")
        entries.append(_entry(cid, "practitioner-role", role))
    for i, d in enumerate(case.diagnoses):
        code: dict[str, Any] = {"coding": [{"system": ICD10CM, "code": d.code}]}
        if d.description:
            code["text"] = d.description
        entries.append(
            _entry(cid, f"condition-{i}", {"resourceType": "Condition", "code": code, "subject": _ref(cid, "patient")})
        )
    for s in case.services:
        entries.append(_entry(cid, f"service-{s.code}", _service_request(case, s.code)))
        for n, r in enumerate(s.rationale, start=1):
            obs: Resource = {
                "resourceType": "Observation",
                "status": "final",
                "code": {"coding": [{"system": RATIONALE_SYSTEM, "code": "rationale"}]},
                "subject": _ref(cid, "patient"),
                "effectiveDateTime": r.date.isoformat(),
                "valueString": r.statement,
                "derivedFrom": [{"display": r.source}],
            }
            entries.append(_entry(cid, f"rationale-{s.code}-{n}", obs))
    for fact_id, fact in case.facts.items():
        entries.append(_entry(cid, f"fact-{fact_id}", _fact_resource(case, fact_id, fact)))
    if case.denial is not None:
        entries.append(_entry(cid, "denial", _claim_response(case)))
    for i, enc in enumerate(case.enclosures):
        doc: Resource = {"resourceType": "DocumentReference", "status": "current", "description": enc}
        doc["content"] = [{"attachment": {"title": enc}}]
        entries.append(_entry(cid, f"enclosure-{i}", doc))
    return entries


def _claim_response(case: Case) -> Resource:
    """The denial as a ClaimResponse (see ``fhir_in`` for the mapping)."""
    d = case.denial
    assert d is not None
    cid = case.case_id
    extras: list[Resource] = [{"url": "level", "valueInteger": d.level}, {"url": "urgent", "valueBoolean": d.urgent}]
    if d.category:
        extras.append({"url": "category", "valueCode": d.category})
    for key in ("notice_date", "received"):
        value = getattr(d, key)
        if value is not None:
            extras.append({"url": key, "valueDate": value.isoformat()})
    cr: Resource = {
        "resourceType": "ClaimResponse",
        "extension": [{"url": EXT_DENIAL, "extension": extras}],
        "identifier": [{"value": d.reference}],
        "status": "active",
        "type": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/claim-type", "code": "professional"}]},
        "use": "claim",
        "patient": _ref(cid, "patient"),
        "created": d.date.isoformat(),
        "insurer": _ref(cid, "payer"),
        "outcome": "complete",
        "disposition": d.reason,
    }
    if d.codes:
        cr["adjudication"] = [
            {
                "category": {
                    "coding": [{"system": "http://terminology.hl7.org/CodeSystem/adjudication", "code": "submitted"}]
                },
                "reason": {"coding": [{"system": DENIAL_CODE_SYSTEM, "code": c} for c in d.codes]},
            }
        ]
    return cr


def _service_request(case: Case, code: str) -> Resource:
    cid = case.case_id
    service = next(s for s in case.services if s.code == code)
    sr: Resource = {
        "resourceType": "ServiceRequest",
        "status": "active",
        "intent": "order",
        "code": {"coding": [{"system": CPT if code.isdigit() else HCPCS, "code": code}]},
        "subject": _ref(cid, "patient"),
        "requester": _ref(cid, "practitioner"),
        "insurance": [_ref(cid, "coverage")],
        "reasonReference": [_ref(cid, f"condition-{i}") for i in range(len(case.diagnoses))],
    }
    if service.label:
        sr["code"]["text"] = service.label
    if service.rationale:
        sr["supportingInfo"] = [_ref(cid, f"rationale-{code}-{n}") for n in range(1, len(service.rationale) + 1)]
    if service.site:
        sr["bodySite"] = [{"text": service.site}]
    if service.laterality:
        sr["extension"] = [{"url": EXT_LATERALITY, "valueCode": service.laterality}]
    if service.units != 1:
        sr["quantityQuantity"] = {"value": service.units}
    if service.date_of_service:
        sr["occurrenceDateTime"] = service.date_of_service.isoformat()
    return sr


def case_bundle(case: Case) -> Resource:
    """A collection Bundle of the case alone (the shape ``check`` and ``draft`` accept)."""
    bundle: Resource = {"resourceType": "Bundle"}
    if case.letter.type != "lmn":
        bundle["meta"] = {"tag": [{"system": LETTER_TYPE_SYSTEM, "code": case.letter.type}]}
    bundle.update(
        identifier={"system": CASE_ID_SYSTEM, "value": case.case_id}, type="collection", entry=case_entries(case)
    )
    return bundle


def _necessity(case: Case, sd: ServiceDecision, day: date) -> Resource:
    sub: list[Resource] = [{"url": "verdict", "valueCode": sd.verdict}]
    if sd.policy is not None:  # a code with no criteria on file was checked against no policy
        sub.append({"url": "policy", "valueString": sd.policy})
    sub += [
        {"url": "coverage", "valueReference": _ref(case.case_id, "coverage")},
        {"url": "date", "valueDate": day.isoformat()},
    ]
    sub += [
        {"url": "missing-fact", "valueCoding": {"system": FACTS_SYSTEM, "code": m.id, "display": m.question}}
        for m in sd.missing_facts
    ]
    sub += [{"url": "unmet-criterion", "valueString": c.text} for c in sd.criteria if c.status == "not_met"]
    sub += [{"url": "conflict", "valueString": c.reason} for c in sd.conflicts]
    cites = sorted({c for cr in sd.criteria for c in cr.citations} | {c for cf in sd.conflicts for c in cf.citations})
    sub += [{"url": "citation", "valueString": c} for c in cites]
    return {"url": EXT_NECESSITY, "extension": sub}


def _source_entity(kb: KnowledgeBase, src_id: str) -> Resource:
    src = kb.sources[src_id]
    if src.doi:
        ident = {"system": "https://doi.org", "value": src.doi}
    elif src.pmid:
        ident = {"system": "https://pubmed.ncbi.nlm.nih.gov", "value": src.pmid}
    else:
        ident = {"system": f"{BASE}/citation", "value": src.url or src.id}
    return {"role": "source", "what": {"identifier": ident, "display": src.reference()}}


def letter_bundle(letter: Letter, case: Case, decision: Decision, kb: KnowledgeBase, day: date) -> Resource:
    from lettergen.outputs.metadata import TITLES, letter_datetime, letter_title

    cid = case.case_id
    moment = letter_datetime(day).isoformat().replace("+00:00", "Z")
    entries = case_entries(case)
    by_code = {sd.code: sd for sd in decision.services}
    for e in entries:
        res = e["resource"]
        if res["resourceType"] == "ServiceRequest":
            code = res["code"]["coding"][0]["code"]
            res["extension"] = [*res.get("extension", []), _necessity(case, by_code[code], day)]
    text = letter.text.encode("utf-8")
    title = letter_title(letter, case)
    doc: Resource = {
        "resourceType": "DocumentReference",
        "status": "current",
        "docStatus": "preliminary",  # a draft until the clinician signs it
        "type": {"coding": [{"system": LETTER_TYPE_SYSTEM, "code": letter.type, "display": TITLES[letter.type]}]},
        "subject": _ref(cid, "patient"),
        "date": moment,
        "author": [_ref(cid, "practitioner")],
        "description": title,
        "content": [
            {
                "attachment": {
                    "contentType": "text/plain; charset=utf-8",
                    "language": "en",
                    "data": base64.b64encode(text).decode("ascii"),
                    "size": len(text),
                    "hash": base64.b64encode(hashlib.sha1(text).digest()).decode("ascii"),
                    "title": f"{cid}.{letter.type}.txt",
                    "creation": moment,
                }
            }
        ],
        "context": {"related": [_ref(cid, f"service-{s.code}") for s in case.services]},
    }
    entries.append(_entry(cid, f"letter-{letter.type}", doc))
    provenance: Resource = {
        "resourceType": "Provenance",
        "target": [_ref(cid, f"letter-{letter.type}")],
        "recorded": moment,
        "agent": [
            {
                "type": {"coding": [{"system": PARTICIPANT, "code": "assembler"}]},
                "who": {"display": f"lettergen {__version__}"},
            },
            {"type": {"coding": [{"system": PARTICIPANT, "code": "author"}]}, "who": _ref(cid, "practitioner")},
        ],
        "entity": [
            {"role": "source", "what": {"identifier": {"system": CASE_ID_SYSTEM, "value": cid}, "display": "case"}},
            *(_source_entity(kb, s) for s in letter.references),
        ],
    }
    entries.append(_entry(cid, f"provenance-{letter.type}", provenance))
    return {
        "resourceType": "Bundle",
        "id": rid(cid, f"bundle-{letter.type}"),
        "identifier": {"system": CASE_ID_SYSTEM, "value": cid},
        "type": "collection",
        "timestamp": moment,
        "entry": entries,
    }


def validated(resource: Resource) -> Resource:
    """Check a resource with fhir.resources (R4B models); returns it unchanged."""
    try:
        from fhir.resources.R4B import get_fhir_model_class
    except ImportError:
        raise MissingExtra("fhir", "FHIR output") from None
    get_fhir_model_class(resource["resourceType"]).model_validate(resource)
    return resource


def letter_bundle_json(letter: Letter, case: Case, decision: Decision, kb: KnowledgeBase, day: date) -> bytes:
    bundle = validated(letter_bundle(letter, case, decision, kb, day))
    return (json.dumps(bundle, indent=2, ensure_ascii=False) + "\n").encode("utf-8")


_ITEM_TYPE = {"bool": "boolean", "number": "decimal", "text": "string", "choice": "choice", "date": "date"}


def _item(q: Question) -> Resource:
    item: Resource = {
        "linkId": q.id,
        "code": [{"system": FACTS_SYSTEM, "code": q.id}],
        "text": q.prompt,
        "type": _ITEM_TYPE.get(q.type, "string"),
    }
    if q.type == "choice":
        item["answerOption"] = [{"valueCoding": {"system": f"{FACTS_SYSTEM}/{q.id}", "code": c}} for c in q.choices]
    if q.unit:
        item["extension"] = [{"url": QUESTIONNAIRE_UNIT, "valueCoding": {"code": q.unit, "display": q.unit}}]
    if q.min is not None and q.max is not None:  # the declared range (core extensions minValue, maxValue)
        item.setdefault("extension", []).extend(
            {"url": f"http://hl7.org/fhir/StructureDefinition/{name}", "valueDecimal": bound}
            for name, bound in (("minValue", q.min), ("maxValue", q.max))
        )
    if q.help:
        item["item"] = [
            {
                "linkId": f"{q.id}.help",
                "text": q.help,
                "type": "display",
                "extension": [
                    {
                        "url": ITEM_CONTROL,
                        "valueCodeableConcept": {
                            "coding": [{"system": "http://hl7.org/fhir/questionnaire-item-control", "code": "help"}]
                        },
                    }
                ],
            }
        ]
    return item


def questionnaire(codes: list[str], questions: list[Question]) -> Resource:
    """The questions the named codes need, as a FHIR Questionnaire (in the manner of Da Vinci DTR)."""
    key = "-".join(codes)
    q: Resource = {
        "resourceType": "Questionnaire",
        "id": str(uuid.uuid5(_NS, f"questionnaire/{key}")),
        "url": f"{QUESTIONNAIRE_URL}/{key}",
        "version": __version__,
        "name": "LettergenQuestions" + "".join(c for c in key if c.isalnum()),
        "title": f"Medical necessity documentation for {', '.join(codes)}",
        "status": "draft",
        "subjectType": ["Patient"],
        "code": [{"system": CPT if c.isdigit() else HCPCS, "code": c} for c in codes],
        "item": [_item(x) for x in questions],
    }
    return validated(q)

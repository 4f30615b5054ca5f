"""FHIR R4 input: a Bundle mapped onto the case model (contract v1).

Reads plain JSON (no FHIR library needed), so a malformed Bundle gets an error naming the entry,
the resource type and the field. The mapping:

==================  ==========================================================================
case                Bundle
==================  ==========================================================================
case_id             Bundle.identifier.value (else Bundle.id)
letter.type         Bundle.meta.tag coded in ``LETTER_TYPE_SYSTEM`` (the date comes from ``--date``)
patient             Patient: name, birthDate, gender, address, identifier of system ``MBI`` (Medicare
                    number); Coverage.subscriberId (member id), Coverage.class[type=group].value (group)
payer               Coverage.payor -> Organization (name, address, fax); Coverage.type coded in
                    ``PLAN_TYPE_SYSTEM``; extensions ``EXT_PLAN_STATE`` and ``EXT_POLICY_SET``
provider            Practitioner (name, suffix = credentials, NPI identifier, telecom, address);
                    PractitionerRole.specialty; the Organization that is not the payer
diagnoses           Condition.code, ICD-10-CM coding
services            ServiceRequest.code (CPT/HCPCS coding), bodySite.text, quantityQuantity.value,
                    occurrenceDateTime (date of service), extension ``EXT_LATERALITY`` (valueCode left,
                    right or bilateral); code.text = label (the clinician's words); supportingInfo = the
                    rationale entries, in order: each Observation it points to that is coded in
                    ``RATIONALE_SYSTEM`` (valueString = statement, effectiveDateTime = date,
                    derivedFrom.display = source); other supporting information is not read
facts               every other Observation: code coded in ``FACTS_SYSTEM`` (code = fact id); value[x] = value
                    (valueQuantity.unit = unit); note.text = evidence; effectiveDateTime = date;
                    derivedFrom.display = source
enclosures          DocumentReference.description (letters lettergen wrote are skipped)
denial              ClaimResponse: created = date; identifier[0].value = reference; disposition = reason;
                    adjudication[].reason coded in ``DENIAL_CODE_SYSTEM`` = codes; extension ``EXT_DENIAL``
                    (level, urgent, category, notice_date, received)
==================  ==========================================================================
"""

from __future__ import annotations

from collections.abc import Container
from datetime import date
from typing import Any

from lettergen.case.model import Case, case_from_mapping
from lettergen.errors import CaseError

BASE = "https://lettergen.dev/fhir"
FACTS_SYSTEM = f"{BASE}/CodeSystem/facts"
# A service's documented rationale (a code with no criteria on file): Observations the ServiceRequest points to.
RATIONALE_SYSTEM = f"{BASE}/CodeSystem/rationale"
PLAN_TYPE_SYSTEM = f"{BASE}/CodeSystem/plan-type"
LETTER_TYPE_SYSTEM = f"{BASE}/CodeSystem/letter-type"
CASE_ID_SYSTEM = f"{BASE}/case-id"
EXT_PLAN_STATE = f"{BASE}/StructureDefinition/plan-state"
EXT_POLICY_SET = f"{BASE}/StructureDefinition/policy-set"
EXT_LATERALITY = f"{BASE}/StructureDefinition/laterality"
# The denial of an appeal case travels as a ClaimResponse: created = denial date, identifier = reference,
# disposition = reason, header adjudication reasons = CARC/RARC codes as written on the notice, and
# lettergen extensions for what FHIR has no element for.
DENIAL_CODE_SYSTEM = f"{BASE}/CodeSystem/denial-code"
EXT_DENIAL = f"{BASE}/StructureDefinition/denial"
ICD10CM = "http://hl7.org/fhir/sid/icd-10-cm"
CPT = "http://www.ama-assn.org/go/cpt"
HCPCS = "https://www.cms.gov/Medicare/Coding/HCPCSReleaseCodeSets"
NPI = "http://hl7.org/fhir/sid/us-npi"
MBI = "http://hl7.org/fhir/sid/us-mbi"  # the Medicare Beneficiary Identifier
SERVICE_SYSTEMS = (CPT, HCPCS, "http://www.cms.gov/Medicare/Coding/HCPCSReleaseCodeSets")


class _Bundle:
    def __init__(self, data: dict[str, Any], file: str) -> None:
        self.file = file
        self.data = data
        entries = data.get("entry", [])
        if not isinstance(entries, list):
            self.fail("Bundle.entry", "must be a list")
        self.resources: list[tuple[str, dict[str, Any]]] = []  # (location, resource)
        self.by_ref: dict[str, tuple[str, dict[str, Any]]] = {}
        for i, entry in enumerate(entries):
            loc = f"Bundle.entry[{i}]"
            if not isinstance(entry, dict) or not isinstance(entry.get("resource"), dict):
                self.fail(loc, "must be an object with a 'resource'")
            res = entry["resource"]
            rtype = res.get("resourceType")
            if not isinstance(rtype, str) or not rtype:
                self.fail(f"{loc}.resource.resourceType", "is required")
            full = self.get(loc, entry, "fullUrl", str)
            loc = f"{loc} ({rtype})"
            _string_keys(self, loc, res)
            self.resources.append((loc, res))
            if full:
                self.by_ref[full] = (loc, res)
            rid = self.get(loc, res, "id", str)
            if rid:
                self.by_ref[f"{rtype}/{rid}"] = (loc, res)

    def fail(self, where: str, problem: str) -> Any:
        raise CaseError(self.file, where, problem)

    def of_type(self, rtype: str) -> list[tuple[str, dict[str, Any]]]:
        return [(loc, r) for loc, r in self.resources if r.get("resourceType") == rtype]

    def one(self, rtype: str, required: bool = True) -> tuple[str, dict[str, Any]] | None:
        found = self.of_type(rtype)
        if not found:
            return self.fail("Bundle", f"has no {rtype} resource") if required else None
        return found[0]

    def resolve(self, loc: str, ref: Any, field: str) -> tuple[str, dict[str, Any]]:
        if not isinstance(ref, dict) or not isinstance(ref.get("reference"), str):
            self.fail(f"{loc}.{field}", "must be a reference")
        target = self.by_ref.get(ref["reference"])
        if target is None:
            self.fail(f"{loc}.{field}.reference", "points to no resource in the Bundle")
        assert target is not None
        return target

    # typed getters: each failure names the resource and field, never the value
    def get(
        self, loc: str, res: dict[str, Any], field: str, kind: type | tuple[type, ...], required: bool = False
    ) -> Any:
        value = res.get(field)
        if value is None:
            return self.fail(f"{loc}.{field}", "is required") if required else None
        kinds = _tuple(kind)
        if not isinstance(value, kinds) or (isinstance(value, bool) and bool not in kinds):
            self.fail(f"{loc}.{field}", f"must be {_kind_name(kind)}")
        return value

    def items(self, loc: str, res: dict[str, Any], field: str) -> list[dict[str, Any]]:
        value = self.get(loc, res, field, list) or []
        for i, v in enumerate(value):
            if not isinstance(v, dict):
                self.fail(f"{loc}.{field}[{i}]", "must be an object")
        return value

    def strings(self, loc: str, res: dict[str, Any], field: str) -> list[str]:
        value = self.get(loc, res, field, list) or []
        for i, v in enumerate(value):
            if not isinstance(v, str):
                self.fail(f"{loc}.{field}[{i}]", "must be a string")
        return value

    def codes(self, loc: str, cc: dict[str, Any]) -> list[tuple[str, str | None, str | None]]:
        """(where, system, code) of each coding of a CodeableConcept, each typed."""
        out = []
        for i, c in enumerate(self.items(loc, cc, "coding")):
            where = f"{loc}.coding[{i}]"
            out.append((where, self.get(where, c, "system", str), self.get(where, c, "code", str)))
        return out


def _string_keys(b: _Bundle, loc: str, res: dict[str, Any]) -> None:
    """Every key of a resource is a string, as JSON's are (a YAML file can write `7: x`)."""
    stack: list[tuple[str, Any]] = [(loc, res)]
    while stack:
        where, node = stack.pop()
        if isinstance(node, dict):
            for k, v in node.items():
                if not isinstance(k, str):
                    b.fail(where, "has a key that is not a string")
                stack.append((f"{where}.{k}", v))
        elif isinstance(node, list):
            stack.extend((f"{where}[{i}]", v) for i, v in enumerate(node))


def _tuple(kind: type | tuple[type, ...]) -> tuple[type, ...]:
    return kind if isinstance(kind, tuple) else (kind,)


def _kind_name(kind: type | tuple[type, ...]) -> str:
    names = {str: "a string", list: "a list", dict: "an object", bool: "true or false", int: "an integer"}
    return " or ".join(names.get(k, "a number") for k in _tuple(kind))


def _name(b: _Bundle, loc: str, res: dict[str, Any], required: bool = True) -> tuple[str | None, list[str]]:
    names = b.items(loc, res, "name")
    if not names:
        return (b.fail(f"{loc}.name", "is required") if required else None), []
    n = names[0]
    nloc = f"{loc}.name[0]"
    text = b.get(nloc, n, "text", str)
    given = b.strings(nloc, n, "given")
    family = b.get(nloc, n, "family", str)
    suffix = b.strings(nloc, n, "suffix")
    full = text or " ".join([*given, *([family] if family else [])]).strip()
    if not full:
        b.fail(nloc, "needs text, or given and family")
    return full, suffix


def _address(b: _Bundle, loc: str, res: dict[str, Any]) -> str | None:
    addrs = b.items(loc, res, "address")
    if not addrs:
        return None
    a, aloc = addrs[0], f"{loc}.address[0]"
    text = b.get(aloc, a, "text", str)
    if text:
        return str(text)
    lines = b.strings(aloc, a, "line")
    city, state, postal = (b.get(aloc, a, k, str) for k in ("city", "state", "postalCode"))
    tail = " ".join(x for x in (state, postal) if x)
    parts = [*lines, *(x for x in (city, tail) if x)]
    return ", ".join(parts) or None


def _telecom(b: _Bundle, loc: str, res: dict[str, Any], system: str) -> str | None:
    for i, t in enumerate(b.items(loc, res, "telecom")):
        if b.get(f"{loc}.telecom[{i}]", t, "system", str) == system:
            return b.get(f"{loc}.telecom[{i}]", t, "value", str, required=True)  # type: ignore[no-any-return]
    return None


def _coding(b: _Bundle, loc: str, res: dict[str, Any], field: str, systems: tuple[str, ...]) -> tuple[str, str | None]:
    cc = b.get(loc, res, field, dict, required=True)
    codings = b.items(f"{loc}.{field}", cc, "coding")
    for i, c in enumerate(codings):
        where = f"{loc}.{field}.coding[{i}]"
        if b.get(where, c, "system", str) in systems:
            return b.get(where, c, "code", str, required=True), b.get(where, c, "display", str)
    return b.fail(f"{loc}.{field}.coding", f"has no coding with system {' or '.join(systems)}"), None


def _extension(b: _Bundle, loc: str, res: dict[str, Any], url: str, key: str = "valueString") -> str | None:
    for i, e in enumerate(b.items(loc, res, "extension")):
        if b.get(f"{loc}.extension[{i}]", e, "url", str) == url:
            return b.get(f"{loc}.extension[{i}]", e, key, str, required=True)  # type: ignore[no-any-return]
    return None


def _fact(b: _Bundle, loc: str, obs: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    fact_id, _ = _coding(b, loc, obs, "code", (FACTS_SYSTEM,))
    fact: dict[str, Any] = {}
    value_keys = [k for k in obs if isinstance(k, str) and k.startswith("value")]
    if len(value_keys) != 1:
        b.fail(f"{loc}.value[x]", "needs exactly one value (valueBoolean, valueQuantity, valueString, ...)")
    key = value_keys[0]
    raw = obs[key]
    if key == "valueBoolean":
        fact["value"] = b.get(loc, obs, key, bool)
    elif key == "valueInteger":
        fact["value"] = b.get(loc, obs, key, int)
    elif key == "valueQuantity":
        q = b.get(loc, obs, key, dict)
        fact["value"] = b.get(f"{loc}.valueQuantity", q, "value", (int, float), required=True)
        unit = b.get(f"{loc}.valueQuantity", q, "unit", str) or b.get(f"{loc}.valueQuantity", q, "code", str)
        if unit:
            fact["unit"] = unit
    elif key == "valueString":
        fact["value"] = b.get(loc, obs, key, str)
    elif key == "valueDateTime":
        fact["value"] = _date(b, f"{loc}.{key}", b.get(loc, obs, key, str, required=True))
    elif key == "valueCodeableConcept":
        cc = b.get(loc, obs, key, dict, required=True)
        codings = b.codes(f"{loc}.{key}", cc)
        text = b.get(f"{loc}.{key}", cc, "text", str) or (codings[0][2] if codings else None)
        if not text:
            b.fail(f"{loc}.{key}", "needs text or a coding with a code")
        fact["value"] = text
    else:
        b.fail(f"{loc}.{key}", "is not a supported value type")
    if isinstance(raw, bool) and key != "valueBoolean":
        b.fail(f"{loc}.{key}", "has the wrong type")
    notes = b.items(loc, obs, "note")
    if notes:
        fact["evidence"] = b.get(f"{loc}.note[0]", notes[0], "text", str, required=True)
    when = b.get(loc, obs, "effectiveDateTime", str)
    if when:
        fact["date"] = _date(b, f"{loc}.effectiveDateTime", when)
    derived = b.items(loc, obs, "derivedFrom")
    if derived:
        source = b.get(f"{loc}.derivedFrom[0]", derived[0], "display", str)
        if source:
            fact["source"] = source
    return fact_id, fact


def _is_rationale(b: _Bundle, loc: str, res: dict[str, Any]) -> bool:
    """An Observation coded in the rationale code system."""
    if res.get("resourceType") != "Observation" or not isinstance(res.get("code"), dict):
        return False
    return any(system == RATIONALE_SYSTEM for _, system, _ in b.codes(f"{loc}.code", res["code"]))


def _rationale(b: _Bundle, loc: str, obs: dict[str, Any]) -> dict[str, Any]:
    """An Observation a ServiceRequest.supportingInfo points to, as a rationale entry (statement, source, date)."""
    entry: dict[str, Any] = {"statement": b.get(loc, obs, "valueString", str, required=True)}
    derived = b.items(loc, obs, "derivedFrom")
    if not derived:
        b.fail(f"{loc}.derivedFrom", "is required (the record the rationale is documented in, as display)")
    entry["source"] = b.get(f"{loc}.derivedFrom[0]", derived[0], "display", str, required=True)
    entry["date"] = _date(b, f"{loc}.effectiveDateTime", b.get(loc, obs, "effectiveDateTime", str, required=True))
    return entry


def _date(b: _Bundle, where: str, text: str) -> date:
    try:
        return date.fromisoformat(text[:10])
    except ValueError:
        return b.fail(where, "is not a date (YYYY-MM-DD)")  # type: ignore[no-any-return]


def _provider(b: _Bundle, payer_loc: str | None) -> dict[str, Any]:
    found = b.one("Practitioner")
    assert found is not None
    loc, pr = found
    name, suffix = _name(b, loc, pr)
    npi = None
    for i, ident in enumerate(b.items(loc, pr, "identifier")):
        if b.get(f"{loc}.identifier[{i}]", ident, "system", str) == NPI:
            npi = b.get(f"{loc}.identifier[{i}]", ident, "value", str, required=True)
    if npi is None:
        b.fail(f"{loc}.identifier", f"needs an NPI (system {NPI})")
    provider: dict[str, Any] = {"name": name, "npi": npi}
    if suffix:
        provider["credentials"] = ", ".join(suffix)
    org = None
    role = b.one("PractitionerRole", required=False)
    if role is not None:
        rloc, r = role
        specs = b.items(rloc, r, "specialty")
        if specs:
            sloc = f"{rloc}.specialty[0]"
            displays = [
                b.get(f"{sloc}.coding[{i}]", c, "display", str) for i, c in enumerate(b.items(sloc, specs[0], "coding"))
            ]
            text = b.get(sloc, specs[0], "text", str) or next((d for d in displays if d), None)
            if text:
                provider["specialty"] = text
        if r.get("organization") is not None:
            org = b.resolve(rloc, r.get("organization"), "organization")
    if org is None:
        org = next(((ol, o) for ol, o in b.of_type("Organization") if ol != payer_loc), None)
    for key, value in (
        ("address", _address(b, loc, pr)),
        ("phone", _telecom(b, loc, pr, "phone")),
        ("fax", _telecom(b, loc, pr, "fax")),
    ):
        if value:
            provider[key] = value
    if org is not None:
        oloc, o = org
        provider["organization"] = b.get(oloc, o, "name", str, required=True)
        for key, value in (
            ("address", _address(b, oloc, o)),
            ("phone", _telecom(b, oloc, o, "phone")),
            ("fax", _telecom(b, oloc, o, "fax")),
        ):
            if value and key not in provider:
                provider[key] = value
    return provider


def case_from_bundle(data: dict[str, Any], file: str, known_facts: Container[str] | None = None) -> Case:
    """Map a FHIR R4 Bundle onto a Case; errors name the entry, resource type and field."""
    b = _Bundle(data, file)
    origin: dict[str, str] = {}  # case field prefix -> where in the Bundle it came from
    ident = b.get("Bundle", data, "identifier", dict)
    case_id = (b.get("Bundle.identifier", ident, "value", str) if ident else None) or b.get("Bundle", data, "id", str)
    if not case_id:
        b.fail("Bundle.identifier.value", "is required (the case id)")

    ploc, pat = b.one("Patient")  # type: ignore[misc]
    name, _ = _name(b, ploc, pat)
    patient: dict[str, Any] = {"name": name, "birth_date": b.get(ploc, pat, "birthDate", str, required=True)}
    gender = b.get(ploc, pat, "gender", str)
    if gender:
        patient["sex"] = gender
    addr = _address(b, ploc, pat)
    if addr:
        patient["address"] = addr
    for i, ident in enumerate(b.items(ploc, pat, "identifier")):
        if b.get(f"{ploc}.identifier[{i}]", ident, "system", str) == MBI:
            patient["medicare_number"] = b.get(f"{ploc}.identifier[{i}]", ident, "value", str, required=True)
            origin["patient.medicare_number"] = f"{ploc}.identifier[{i}].value"
    origin["patient"] = ploc

    cloc, cov = b.one("Coverage")  # type: ignore[misc]
    sub = b.get(cloc, cov, "subscriberId", str)
    if sub:
        patient["member_id"] = sub
    for i, cl in enumerate(b.items(cloc, cov, "class")):
        cl_type = b.get(f"{cloc}.class[{i}]", cl, "type", dict) or {}
        if "group" in [code for _, _, code in b.codes(f"{cloc}.class[{i}].type", cl_type)]:
            patient["group_number"] = b.get(f"{cloc}.class[{i}]", cl, "value", str, required=True)
    plan_type, _ = _coding(b, cloc, cov, "type", (PLAN_TYPE_SYSTEM,))
    payors = b.items(cloc, cov, "payor")
    if not payors:
        b.fail(f"{cloc}.payor", "is required (the payer Organization)")
    oloc, org = b.resolve(cloc, payors[0], "payor[0]")
    payer: dict[str, Any] = {"name": b.get(oloc, org, "name", str, required=True), "plan_type": plan_type}
    for key, value in (
        ("state", _extension(b, cloc, cov, EXT_PLAN_STATE)),
        ("policy", _extension(b, cloc, cov, EXT_POLICY_SET)),
        ("address", _address(b, oloc, org)),
        ("fax", _telecom(b, oloc, org, "fax")),
    ):
        if value:
            payer[key] = value
    origin["payer.plan_type"] = f"{cloc}.type"
    origin["payer.state"] = f"{cloc}.extension"
    origin["payer.policy"] = f"{cloc}.extension"
    origin["payer"] = oloc
    provider = _provider(b, oloc)
    origin["provider"] = b.of_type("Practitioner")[0][0]

    diagnoses: list[dict[str, Any]] = []
    for loc, cond in b.of_type("Condition"):
        code, display = _coding(b, loc, cond, "code", (ICD10CM,))
        desc = b.get(f"{loc}.code", cond["code"], "text", str) or display
        origin[f"diagnoses[{len(diagnoses)}]"] = f"{loc}.code"
        diagnoses.append({"code": code, **({"description": desc} if desc else {})})

    services: list[dict[str, Any]] = []
    rationale_obs: set[str] = set()  # the locations of the Observations read as rationale entries
    for loc, sr in b.of_type("ServiceRequest"):
        code, _ = _coding(b, loc, sr, "code", SERVICE_SYSTEMS)
        service: dict[str, Any] = {"code": code}
        label = b.get(f"{loc}.code", sr["code"], "text", str)
        if label:
            service["label"] = label
        entries: list[dict[str, Any]] = []
        for ref in b.items(loc, sr, "supportingInfo"):
            # Other supporting information (a document, a resource outside the Bundle) is not lettergen's to read.
            target = b.by_ref.get(ref["reference"]) if isinstance(ref.get("reference"), str) else None
            if target is None or not _is_rationale(b, *target):
                continue
            oloc, obs = target
            origin[f"services[{len(services)}].rationale[{len(entries)}]"] = oloc
            entries.append(_rationale(b, oloc, obs))
            rationale_obs.add(oloc)
        if entries:
            service["rationale"] = entries
        sites = b.items(loc, sr, "bodySite")
        site = b.get(f"{loc}.bodySite[0]", sites[0], "text", str) if sites else None
        if site:
            service["site"] = site
        side = _extension(b, loc, sr, EXT_LATERALITY, "valueCode")
        if side:
            service["laterality"] = side
        qty = b.get(loc, sr, "quantityQuantity", dict)
        if qty is not None:
            service["units"] = b.get(f"{loc}.quantityQuantity", qty, "value", int, required=True)
        when = b.get(loc, sr, "occurrenceDateTime", str)
        if when is not None:
            service["date_of_service"] = when
            origin[f"services[{len(services)}].date_of_service"] = f"{loc}.occurrenceDateTime"
        origin[f"services[{len(services)}]"] = loc
        services.append(service)

    facts: dict[str, Any] = {}
    for loc, obs in b.of_type("Observation"):
        if loc in rationale_obs:
            continue
        if _is_rationale(b, loc, obs):
            b.fail(f"{loc}.code", "is a rationale entry, but no ServiceRequest.supportingInfo points to it")
        fact_id, fact = _fact(b, loc, obs)
        if fact_id in facts:  # the id is not named: it may be anything, a member id among them
            b.fail(f"{loc}.code", f"gives the fact of {origin[f'facts.{fact_id}']} a second time")
        origin[f"facts.{fact_id}"] = loc
        origin[f"facts (entry {len(facts) + 1})"] = loc  # how the case names a fact whose id is not declared
        facts[fact_id] = fact

    enclosures = []
    for loc, doc in b.of_type("DocumentReference"):
        doc_type = b.get(loc, doc, "type", dict) or {}
        types = [system for _, system, _ in b.codes(f"{loc}.type", doc_type)]
        if LETTER_TYPE_SYSTEM in types:
            continue  # a letter lettergen wrote, not an enclosure
        desc = b.get(loc, doc, "description", str)
        if desc:
            enclosures.append(desc)

    mapping: dict[str, Any] = {
        "case_id": case_id,
        "letter": _letter(b, data),
        "patient": patient,
        "payer": payer,
        "provider": provider,
        "diagnoses": diagnoses,
        "services": services,
        "facts": facts,
    }
    if enclosures:
        mapping["enclosures"] = enclosures
    found = b.one("ClaimResponse", required=False)
    if found is not None:
        origin["denial"] = found[0]
        mapping["denial"] = _denial(b, *found)
    try:
        return case_from_mapping(mapping, file, known_facts)
    except CaseError as exc:
        raise CaseError.many(file, [(_where(f, origin), p) for f, p in exc.problems], exc.more) from None


_DENIAL_EXTRAS = {"level": "valueInteger", "urgent": "valueBoolean", "category": "valueCode",
                  "notice_date": "valueDate", "received": "valueDate"}  # fmt: skip


def _denial(b: _Bundle, loc: str, cr: dict[str, Any]) -> dict[str, Any]:
    """A ClaimResponse that records a denial, as the case's ``denial`` block."""
    created = b.get(loc, cr, "created", str, required=True)
    denial: dict[str, Any] = {"date": created[:10], "reason": b.get(loc, cr, "disposition", str, required=True)}
    idents = b.items(loc, cr, "identifier")
    if not idents or not isinstance(idents[0].get("value"), str):
        b.fail(f"{loc}.identifier[0].value", "is required (the denial reference)")
    denial["reference"] = idents[0]["value"]
    codes = []
    for i, adj in enumerate(b.items(loc, cr, "adjudication")):
        reason = b.get(f"{loc}.adjudication[{i}]", adj, "reason", dict) or {}
        for where, system, code in b.codes(f"{loc}.adjudication[{i}].reason", reason):
            if system == DENIAL_CODE_SYSTEM:
                if code is None:
                    b.fail(f"{where}.code", "is required")
                codes.append(code)
    if codes:
        denial["codes"] = codes
    for i, ext in enumerate(b.items(loc, cr, "extension")):
        if b.get(f"{loc}.extension[{i}]", ext, "url", str) != EXT_DENIAL:
            continue
        for j, sub in enumerate(b.items(f"{loc}.extension[{i}]", ext, "extension")):
            key = b.get(f"{loc}.extension[{i}].extension[{j}]", sub, "url", str)
            if key in _DENIAL_EXTRAS:
                denial[key] = b.get(f"{loc}.extension[{i}].extension[{j}]", sub, _DENIAL_EXTRAS[key],
                                    (int, bool, str), required=True)  # fmt: skip
    return denial


def _letter(b: _Bundle, data: dict[str, Any]) -> dict[str, Any]:
    meta = b.get("Bundle", data, "meta", dict) or {}
    for i, tag in enumerate(b.items("Bundle.meta", meta, "tag")):
        if b.get(f"Bundle.meta.tag[{i}]", tag, "system", str) == LETTER_TYPE_SYSTEM:
            return {"type": b.get(f"Bundle.meta.tag[{i}]", tag, "code", str, required=True)}
    return {}


def _where(field: str, origin: dict[str, str]) -> str:
    """Translate a case field path back to the Bundle entry it came from."""
    best = max((p for p in origin if field == p or field.startswith((p + ".", p + "["))), key=len, default=None)
    if best is None:
        return f"Bundle ({field})" if field else "Bundle"
    rest = field[len(best) :].lstrip(".")
    return f"{origin[best]} ({field})" if rest or best != field else origin[best]

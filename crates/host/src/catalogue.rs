//! The registry of digital services a node's pages show: its common processes (from the
//! process packages it enforces), its API, and the portal's doors, built once at start.

use std::collections::BTreeMap;

use node::config::NodeConfig;
use web::{Catalogue, Service, ServiceDocument};

fn names(ru: &str, kk: &str, en: &str) -> BTreeMap<String, String> {
    [("ru", ru), ("kk", kk), ("en", en)]
        .into_iter()
        .map(|(l, n)| (l.to_owned(), n.to_owned()))
        .collect()
}

/// The services of the node of `cfg` whose pages are at `issuer`; `signin` when it takes part
/// in cross-border sign-in. A package that does not load is left out (the node refuses to start
/// with one anyway).
pub fn build(cfg: &NodeConfig, issuer: &str, signin: bool) -> Catalogue {
    let api = format!("http://{}", cfg.listen);
    let mut c = Catalogue::default();
    if let Some(p) = &cfg.processes {
        match process::package::load_all(&p.dir) {
            Ok(packages) => {
                for pkg in packages {
                    let mut documents = Vec::new();
                    for m in &pkg.messages {
                        let schema = pkg
                            .structures
                            .iter()
                            .find(|s| s.code == m.structure)
                            .map(|s| (s.code.clone(), pkg.dir.join(&s.xsd)));
                        if let Some((code, path)) = &schema {
                            c.schemas.insert(code.clone(), path.clone());
                        }
                        documents.push(ServiceDocument {
                            code: m.code.clone(),
                            names: m.names.clone(),
                            href: schema.map(|(code, _)| format!("/api/schemas/{code}.xsd")),
                        });
                    }
                    c.services.push(Service {
                        id: format!("process:{}", pkg.process.code),
                        kind: "process".into(),
                        names: pkg.process.names.clone(),
                        owner: "EEC".into(),
                        version: pkg.process.version.clone(),
                        status: "active".into(),
                        endpoints: vec![format!("{api}/v1/messages"), format!("{api}/v1/soap")],
                        roles: pkg
                            .roles
                            .iter()
                            .map(|r| (r.code.clone(), r.names.clone()))
                            .collect(),
                        documents,
                    });
                }
            }
            Err(e) => tracing::warn!(error = %e, "the registry of services lists no processes"),
        }
    }
    c.services.push(Service {
        id: format!("api:{}", cfg.segment),
        kind: "node-api".into(),
        names: names(
            "API адаптера узла для информационных систем",
            "Ақпараттық жүйелерге арналған торап адаптерінің API",
            "The node's adapter API for information systems",
        ),
        owner: cfg.segment.clone(),
        version: "v1".into(),
        status: "active".into(),
        endpoints: vec![format!("{api}/v1")],
        roles: Vec::new(),
        documents: vec![ServiceDocument {
            code: "openapi.json".into(),
            names: names(
                "Описание OpenAPI",
                "OpenAPI сипаттамасы",
                "OpenAPI description",
            ),
            href: Some(format!("{api}/openapi.json")),
        }],
    });
    if cfg.web.as_ref().is_some_and(|w| w.portal) {
        c.services.push(Service {
            id: "opendata:ckan".into(),
            kind: "open-data".into(),
            names: names(
                "Открытые данные: API CKAN и каталог DCAT-AP",
                "Ашық деректер: CKAN API және DCAT-AP каталогы",
                "Open data: the CKAN API and the DCAT-AP catalogue",
            ),
            owner: cfg.segment.clone(),
            version: "3".into(),
            status: "active".into(),
            endpoints: vec![
                format!("{issuer}/api/3/action"),
                format!("{issuer}/open-data/catalog.jsonld"),
            ],
            roles: Vec::new(),
            documents: Vec::new(),
        });
    }
    if signin {
        c.services.push(Service {
            id: format!("signin:{}", cfg.segment),
            kind: "sign-in".into(),
            names: names(
                "Трансграничная идентификация и аутентификация (OpenID Connect)",
                "Трансшекаралық сәйкестендіру және аутентификация (OpenID Connect)",
                "Cross-border identification and authentication (OpenID Connect)",
            ),
            owner: cfg.segment.clone(),
            version: "1.0".into(),
            status: "active".into(),
            endpoints: vec![format!("{issuer}/.well-known/openid-configuration")],
            roles: Vec::new(),
            documents: Vec::new(),
        });
    }
    c
}

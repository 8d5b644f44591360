//! Every address the pages answer, and which handler answers it.

use axum::Router;
use axum::routing::{get, post};

use crate::app::Shared;
use crate::{console, oidc, opendata, pages, portal, root, services, showcase, signin};

pub(crate) fn routes<H>(app: Shared<H>) -> Router
where
    H: adapter::ReferenceHoldings + 'static,
{
    Router::new()
        .route("/", get(root))
        .route("/assets/{name}", get(pages::asset))
        .route("/{lang}/", get(pages::home::<H>))
        .route("/{lang}/nsi", get(pages::nsi_list::<H>))
        .route("/{lang}/nsi/{code}", get(pages::resource::<H>))
        .route(
            "/{lang}/signin",
            get(signin::form::<H>).post(signin::sign_in::<H>),
        )
        .route("/{lang}/signout", post(signin::sign_out::<H>))
        .route("/{lang}/account", get(signin::account::<H>))
        .route("/{lang}/signin/via/{segment}", get(oidc::start::<H>))
        .route("/{lang}/registry", get(portal::registry::<H>))
        .route("/{lang}/registry/document", get(portal::document::<H>))
        .route("/{lang}/open-data", get(opendata::page::<H>))
        .route("/{lang}/showcases", get(showcase::page::<H>))
        .route("/{lang}/services", get(services::page::<H>))
        .route("/api/services", get(services::list::<H>))
        .route("/api/services/{id}", get(services::one::<H>))
        .route("/api/schemas/{file}", get(services::schema::<H>))
        .route("/open-data/showcases/{file}", get(showcase::csv::<H>))
        .route("/open-data/catalog.jsonld", get(opendata::dcat::<H>))
        .route("/open-data/nsi/{file}", get(opendata::nsi_download::<H>))
        .route("/open-data/{file}", get(opendata::registry_download::<H>))
        // CKAN answers under both; ckanapi calls the unversioned one.
        .route(
            "/api/3/action/{action}",
            get(opendata::ckan::<H>).post(opendata::ckan::<H>),
        )
        .route(
            "/api/action/{action}",
            get(opendata::ckan::<H>).post(opendata::ckan::<H>),
        )
        .route("/{lang}/console", get(console::overview::<H>))
        .route("/{lang}/console/messages", get(console::messages::<H>))
        .route("/{lang}/console/messages/{id}", get(console::message::<H>))
        .route(
            "/{lang}/console/messages/{id}/evidence",
            get(console::evidence::<H>),
        )
        .route(
            "/{lang}/console/tokens",
            get(console::tokens::<H>).post(console::issue::<H>),
        )
        .route(
            "/{lang}/console/tokens/{id}/revoke",
            post(console::revoke::<H>),
        )
        .route(
            "/.well-known/openid-configuration",
            get(oidc::discovery::<H>),
        )
        .route("/oidc/jwks", get(oidc::jwks::<H>))
        .route("/oidc/authorize", get(oidc::authorize::<H>))
        .route("/oidc/token", post(oidc::token::<H>))
        .route("/oidc/callback", get(oidc::callback::<H>))
        .fallback(pages::not_found::<H>)
        .with_state(app)
}

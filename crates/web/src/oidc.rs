//! Cross-border sign-in over OpenID Connect: every node is the provider for its own people and
//! a relying party of the others, and trusts exactly the nodes the federation's signed trust
//! list names. No secret is shared: ID tokens are signed with the provider node's signing key
//! and client assertions (`private_key_jwt`, RFC 7523) with the relying node's, each carrying
//! its certificate (`x5c`), which must chain to the federation root, name the node's segment
//! and not be revoked by the trust list.
//!
//! Provider: discovery, JWKS, the authorization endpoint (code flow, PKCE S256 required) and
//! the token endpoint. Relying party: `/{lang}/signin/via/{segment}` starts, `/oidc/callback`
//! finishes with a session whose account is `<segment>:<login>`. Codes, pending sign-ins and
//! seen assertion ids live in memory for a minute or ten; a restart costs a person one retry.

use std::collections::HashMap;

use axum::Json;
use axum::extract::{Form, Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD as B64, URL_SAFE_NO_PAD as B64U};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use time::OffsetDateTime;

use crate::Lang;
use crate::app::cookie;
use crate::app::{Shared, not_found_in};
use crate::federated::{Grant, MAX_JWS, Oidc, Pending, kid};
use crate::signin::{self, cookie_header, random};

const ASSERTION_TYPE: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";
/// A code is good for a minute; an ID token for five; a pending sign-in for ten.
const CODE_SECS: i64 = 60;
const ID_TOKEN_SECS: i64 = 300;
const PENDING_SECS: i64 = 600;
/// An assertion may not claim to live longer than this (its id is remembered that long):
/// an hour, the lifetime common clients give them (Authlib's default).
const ASSERTION_MAX_SECS: i64 = 3600;
/// Entries kept in memory at most, each map: bounded whatever is sent.
const MAX_ENTRIES: usize = 10_000;

fn now() -> i64 {
    OffsetDateTime::now_utc().unix_timestamp()
}

/// Keeps a map within [`MAX_ENTRIES`]: drops what expired; false when still full.
fn room<T>(map: &mut HashMap<String, T>, expires: impl Fn(&T) -> i64) -> bool {
    if map.len() >= MAX_ENTRIES {
        let t = now();
        map.retain(|_, v| expires(v) > t);
    }
    map.len() < MAX_ENTRIES
}

fn oidc<H>(app: &Shared<H>) -> Option<&Oidc> {
    app.oidc.as_ref()
}

fn json_no_store(status: StatusCode, body: Value) -> Response {
    let mut r = (status, Json(body)).into_response();
    r.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    r
}

fn oauth_error(status: StatusCode, error: &str, description: &str) -> Response {
    json_no_store(
        status,
        json!({ "error": error, "error_description": description }),
    )
}

/// `/.well-known/openid-configuration` (OpenID Connect Discovery 1.0).
pub(crate) async fn discovery<H>(State(app): State<Shared<H>>) -> Response {
    let Some(o) = oidc(&app) else {
        return StatusCode::NOT_FOUND.into_response();
    };
    let i = &o.issuer;
    Json(json!({
        "issuer": i,
        "authorization_endpoint": format!("{i}/oidc/authorize"),
        "token_endpoint": format!("{i}/oidc/token"),
        "jwks_uri": format!("{i}/oidc/jwks"),
        "response_types_supported": ["code"],
        "grant_types_supported": ["authorization_code"],
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": ["EdDSA"],
        "token_endpoint_auth_methods_supported": ["private_key_jwt"],
        "token_endpoint_auth_signing_alg_values_supported": ["EdDSA", "Ed25519"],
        "code_challenge_methods_supported": ["S256"],
        "scopes_supported": ["openid", "profile"],
        "claims_supported": ["sub", "name", "roles", "segment", "iss", "aud", "exp", "iat", "nonce"],
        "ui_locales_supported": ["ru", "kk", "en"],
        "authorization_response_iss_parameter_supported": true,
    }))
    .into_response()
}

/// `/oidc/jwks`: the node's signing key as a JWK (RFC 8037), with its certificate.
pub(crate) async fn jwks<H>(State(app): State<Shared<H>>) -> Response {
    let Some(o) = oidc(&app) else {
        return StatusCode::NOT_FOUND.into_response();
    };
    match o.identity.public_key() {
        Ok((x, cert)) => Json(json!({ "keys": [{
            "kty": "OKP", "crv": "Ed25519", "x": B64U.encode(x), "use": "sig", "alg": "EdDSA",
            "kid": kid(&cert), "x5c": [B64.encode(&cert)],
        }]}))
        .into_response(),
        Err(e) => {
            tracing::error!(error = %e, "web: no signing key for the JWKS");
            StatusCode::SERVICE_UNAVAILABLE.into_response()
        }
    }
}

#[derive(serde::Deserialize)]
pub(crate) struct AuthorizeQuery {
    response_type: Option<String>,
    client_id: Option<String>,
    redirect_uri: Option<String>,
    scope: Option<String>,
    state: Option<String>,
    nonce: Option<String>,
    code_challenge: Option<String>,
    code_challenge_method: Option<String>,
    ui_locales: Option<String>,
}

/// The authorization endpoint: a person of this node, signed in here, goes back to the relying
/// node with a code; a person not signed in signs in first.
pub(crate) async fn authorize<H: adapter::ReferenceHoldings>(
    State(app): State<Shared<H>>,
    headers: HeaderMap,
    uri: axum::http::Uri,
    Query(q): Query<AuthorizeQuery>,
) -> Response {
    let lang = q
        .ui_locales
        .as_deref()
        .and_then(|l| l.split(' ').find_map(Lang::negotiate))
        .unwrap_or_else(|| crate::chosen_lang(&headers));
    let Some(o) = oidc(&app) else {
        return not_found_in(&app, lang);
    };
    // Who asks, and where the answer goes, are checked before anything is sent there.
    let client_id = q.client_id.clone().unwrap_or_default();
    let redirect_uri = q.redirect_uri.clone().unwrap_or_default();
    if o.segment_of(&client_id).is_none()
        || redirect_uri != format!("{}/oidc/callback", client_id.trim_end_matches('/'))
    {
        return app.message(
            lang,
            StatusCode::BAD_REQUEST,
            "oidc-unknown-client-title",
            "oidc-unknown-client-text",
        );
    }
    let back = |error: &str| -> Response {
        let mut to = format!(
            "{redirect_uri}?error={error}&iss={}",
            signin::url_encode(&o.issuer)
        );
        if let Some(s) = &q.state {
            to.push_str(&format!("&state={}", signin::url_encode(s)));
        }
        Redirect::to(&to).into_response()
    };
    let challenge = q.code_challenge.clone().unwrap_or_default();
    if q.response_type.as_deref() != Some("code")
        || !q
            .scope
            .as_deref()
            .unwrap_or("")
            .split(' ')
            .any(|s| s == "openid")
        || q.code_challenge_method.as_deref() != Some("S256")
        || challenge.len() != 43
        || q.state.as_ref().is_some_and(|s| s.len() > 512)
        || q.nonce.as_ref().is_some_and(|s| s.len() > 512)
    {
        return back("invalid_request");
    }
    let Some(s) = app.visitor(&headers).await else {
        let here = uri
            .path_and_query()
            .map(|p| p.as_str().to_owned())
            .unwrap_or_default();
        return Redirect::to(&format!(
            "/{}/signin?next={}",
            lang.code(),
            signin::url_encode(&here)
        ))
        .into_response();
    };
    // A node speaks only for its own people: a person signed in here through another node is
    // not asserted onwards.
    if s.account.login.contains(':') {
        return app.message(
            lang,
            StatusCode::FORBIDDEN,
            "oidc-not-ours-title",
            "oidc-not-ours-text",
        );
    }
    let code = random();
    let grant = Grant {
        client_id,
        redirect_uri: redirect_uri.clone(),
        account: s.account.clone(),
        nonce: q.nonce.clone(),
        challenge,
        expires: now() + CODE_SECS,
    };
    {
        let mut codes = o.codes.lock().unwrap_or_else(|p| p.into_inner());
        if !room(&mut codes, |g| g.expires) {
            return back("temporarily_unavailable");
        }
        codes.insert(code.clone(), grant);
    }
    tracing::info!(login = %s.account.login, client = %redirect_uri, "web: a person signs in at another node");
    let mut to = format!(
        "{redirect_uri}?code={code}&iss={}",
        signin::url_encode(&o.issuer)
    );
    if let Some(st) = &q.state {
        to.push_str(&format!("&state={}", signin::url_encode(st)));
    }
    Redirect::to(&to).into_response()
}

#[derive(serde::Deserialize)]
pub(crate) struct TokenForm {
    grant_type: Option<String>,
    code: Option<String>,
    redirect_uri: Option<String>,
    code_verifier: Option<String>,
    client_id: Option<String>,
    client_assertion_type: Option<String>,
    client_assertion: Option<String>,
}

fn audience_has(aud: &Value, want: &[&str]) -> bool {
    match aud {
        Value::String(a) => want.contains(&a.as_str()),
        Value::Array(v) => v
            .iter()
            .any(|a| a.as_str().is_some_and(|a| want.contains(&a))),
        _ => false,
    }
}

/// The token endpoint: a relying node proves who it is with an assertion signed by its node
/// key, and exchanges a code for an ID token.
pub(crate) async fn token<H>(State(app): State<Shared<H>>, Form(f): Form<TokenForm>) -> Response {
    let Some(o) = oidc(&app) else {
        return StatusCode::NOT_FOUND.into_response();
    };
    // The client: an assertion signed by the node the trust list names by this client id.
    if f.client_assertion_type.as_deref() != Some(ASSERTION_TYPE) {
        return oauth_error(
            StatusCode::UNAUTHORIZED,
            "invalid_client",
            "client authentication is private_key_jwt only",
        );
    }
    let assertion = f.client_assertion.unwrap_or_default();
    let claimed = unverified_issuer(&assertion).unwrap_or_default();
    let Some(segment) = o.segment_of(&claimed) else {
        return oauth_error(
            StatusCode::UNAUTHORIZED,
            "invalid_client",
            "the trust list names no node by this client id",
        );
    };
    let claims = match o.verify(&segment, &assertion, &HashMap::new()) {
        Ok(c) => c,
        Err(e) => return oauth_error(StatusCode::UNAUTHORIZED, "invalid_client", &e),
    };
    let token_endpoint = format!("{}/oidc/token", o.issuer);
    let t = now();
    let exp = claims["exp"].as_i64().unwrap_or(0);
    let jti = claims["jti"].as_str().unwrap_or("").to_owned();
    if claims["iss"] != claimed.as_str()
        || claims["sub"] != claimed.as_str()
        || f.client_id.as_ref().is_some_and(|c| *c != claimed)
        || !audience_has(&claims["aud"], &[&token_endpoint, &o.issuer])
        || exp <= t
        || exp > t + ASSERTION_MAX_SECS
        || jti.is_empty()
        || jti.len() > 200
    {
        return oauth_error(
            StatusCode::UNAUTHORIZED,
            "invalid_client",
            "the client assertion's iss, sub, aud, exp or jti is not right",
        );
    }
    {
        let mut seen = o.assertions.lock().unwrap_or_else(|p| p.into_inner());
        if !room(&mut seen, |e| *e) || seen.contains_key(&jti) {
            return oauth_error(
                StatusCode::UNAUTHORIZED,
                "invalid_client",
                "this client assertion was used before",
            );
        }
        seen.insert(jti, exp);
    }
    if f.grant_type.as_deref() != Some("authorization_code") {
        return oauth_error(
            StatusCode::BAD_REQUEST,
            "unsupported_grant_type",
            "authorization_code only",
        );
    }
    // A code is used once, by the client it was given to, within its minute.
    let grant = f
        .code
        .as_ref()
        .and_then(|c| o.codes.lock().unwrap_or_else(|p| p.into_inner()).remove(c));
    let Some(g) = grant.filter(|g| g.expires > t) else {
        return oauth_error(
            StatusCode::BAD_REQUEST,
            "invalid_grant",
            "the code is unknown, used or expired",
        );
    };
    let verifier = f.code_verifier.unwrap_or_default();
    if g.client_id != claimed
        || f.redirect_uri.as_deref() != Some(g.redirect_uri.as_str())
        || B64U.encode(Sha256::digest(verifier.as_bytes())) != g.challenge
    {
        return oauth_error(
            StatusCode::BAD_REQUEST,
            "invalid_grant",
            "the code was given to another client, redirect URI or PKCE verifier",
        );
    }
    let roles: Vec<_> = g.account.roles.iter().map(|r| r.code()).collect();
    let mut id = json!({
        "iss": o.issuer, "sub": g.account.login, "aud": g.client_id,
        "iat": t, "exp": t + ID_TOKEN_SECS, "auth_time": t,
        "name": g.account.name, "roles": roles, "segment": o.identity.segment(),
    });
    if let Some(n) = g.nonce {
        id["nonce"] = Value::String(n);
    }
    match o.sign(&id, false) {
        Ok(id_token) => json_no_store(
            StatusCode::OK,
            json!({
                "access_token": random(), "token_type": "Bearer", "expires_in": ID_TOKEN_SECS,
                "id_token": id_token, "scope": "openid profile",
            }),
        ),
        Err(e) => {
            tracing::error!(error = %e, "web: an ID token could not be signed");
            oauth_error(
                StatusCode::SERVICE_UNAVAILABLE,
                "temporarily_unavailable",
                "the node cannot sign now",
            )
        }
    }
}

/// The certificates of a provider's JWKS by `kid` (none when it cannot be read).
async fn provider_keys(http: &reqwest::Client, issuer: &str) -> HashMap<String, Vec<u8>> {
    let mut keys = HashMap::new();
    let Ok(r) = http.get(format!("{issuer}/oidc/jwks")).send().await else {
        return keys;
    };
    let Ok(b) = r.bytes().await else { return keys };
    if b.len() > 64 * 1024 {
        return keys;
    }
    let v: Value = serde_json::from_slice(&b).unwrap_or(Value::Null);
    for k in v["keys"].as_array().into_iter().flatten().take(16) {
        if let (Some(kid), Some(cert)) = (
            k["kid"].as_str(),
            k["x5c"][0].as_str().and_then(|c| B64.decode(c).ok()),
        ) {
            keys.insert(kid.to_owned(), cert);
        }
    }
    keys
}

/// The `iss` an assertion claims, read before its signature (to know whose key checks it).
fn unverified_issuer(jws: &str) -> Option<String> {
    if jws.len() > MAX_JWS {
        return None;
    }
    let payload = jws.split('.').nth(1)?;
    let v: Value = serde_json::from_slice(&B64U.decode(payload).ok()?).ok()?;
    v["iss"].as_str().map(str::to_owned)
}

#[derive(serde::Deserialize)]
pub(crate) struct Next {
    next: Option<String>,
}

/// Starts a sign-in at the node of `segment`: remembers what must come back, and sends the
/// browser there.
pub(crate) async fn start<H: adapter::ReferenceHoldings>(
    State(app): State<Shared<H>>,
    Path((lang, segment)): Path<(String, String)>,
    Query(n): Query<Next>,
) -> Response {
    let Some(lang) = Lang::from_code(&lang) else {
        return not_found_in(&app, Lang::Ru);
    };
    let Some(o) = oidc(&app) else {
        return not_found_in(&app, lang);
    };
    let Some((segment, issuer)) = o.providers().into_iter().find(|(s, _)| *s == segment) else {
        return not_found_in(&app, lang);
    };
    let (state, nonce, verifier) = (random(), random(), random());
    let challenge = B64U.encode(Sha256::digest(verifier.as_bytes()));
    {
        let mut pending = o.pending.lock().unwrap_or_else(|p| p.into_inner());
        if !room(&mut pending, |p| p.expires) {
            return app.message(
                lang,
                StatusCode::SERVICE_UNAVAILABLE,
                "unavailable-title",
                "unavailable-text",
            );
        }
        pending.insert(
            state.clone(),
            Pending {
                segment,
                issuer: issuer.clone(),
                nonce: nonce.clone(),
                verifier,
                lang,
                next: n.next.filter(|n| signin::is_local(n)),
                expires: now() + PENDING_SECS,
            },
        );
    }
    let e = signin::url_encode;
    let to = format!(
        "{issuer}/oidc/authorize?response_type=code&scope=openid%20profile&client_id={}&redirect_uri={}&state={state}&nonce={nonce}&code_challenge={challenge}&code_challenge_method=S256&ui_locales={}",
        e(&o.issuer),
        e(&format!("{}/oidc/callback", o.issuer)),
        lang.code()
    );
    let mut r = Redirect::to(&to).into_response();
    r.headers_mut().append(
        header::SET_COOKIE,
        cookie_header(
            &app.cookie_name("oidc"),
            &state,
            Some(PENDING_SECS),
            app.site.secure_cookies,
        ),
    );
    r
}

#[derive(serde::Deserialize)]
pub(crate) struct Callback {
    code: Option<String>,
    state: Option<String>,
    iss: Option<String>,
    error: Option<String>,
}

/// Finishes a sign-in at another node: the code for an ID token, the token checked against
/// the trust space, and a session here.
pub(crate) async fn callback<H: adapter::ReferenceHoldings>(
    State(app): State<Shared<H>>,
    headers: HeaderMap,
    Query(c): Query<Callback>,
) -> Response {
    let lang = crate::chosen_lang(&headers);
    let Some(o) = oidc(&app) else {
        return not_found_in(&app, lang);
    };
    let refused = |why: &str| {
        tracing::warn!(why, "web: a cross-border sign-in was refused");
        app.message(
            lang,
            StatusCode::FORBIDDEN,
            "oidc-failed-title",
            "oidc-failed-text",
        )
    };
    // The browser that started this sign-in is the one finishing it.
    let state = c.state.unwrap_or_default();
    if !cookie(&headers, &app.cookie_name("oidc")).is_some_and(|v| signin::same(v, &state)) {
        return refused("the state is not this browser's");
    }
    let Some(p) = o
        .pending
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .remove(&state)
        .filter(|p| p.expires > now())
    else {
        return refused("no such sign-in is pending");
    };
    let lang = p.lang;
    let refused = |why: &str| {
        tracing::warn!(why, "web: a cross-border sign-in was refused");
        app.message(
            lang,
            StatusCode::FORBIDDEN,
            "oidc-failed-title",
            "oidc-failed-text",
        )
    };
    if c.error.is_some() {
        return refused("the provider answered an error");
    }
    // RFC 9207: the answer names the provider it comes from (no mix-up between providers).
    if c.iss.as_deref().is_some_and(|i| i != p.issuer) {
        return refused("the answer names another provider");
    }
    let Some(code) = c.code.filter(|c| c.len() <= 200) else {
        return refused("no code");
    };
    let t = now();
    let token_endpoint = format!("{}/oidc/token", p.issuer);
    let assertion = match o.sign(
        &json!({
            "iss": o.issuer, "sub": o.issuer, "aud": token_endpoint,
            "jti": random(), "iat": t, "exp": t + 120,
        }),
        true,
    ) {
        Ok(a) => a,
        Err(e) => return refused(&format!("cannot sign the client assertion: {e}")),
    };
    let form = [
        ("grant_type", "authorization_code"),
        ("code", code.as_str()),
        ("redirect_uri", &format!("{}/oidc/callback", o.issuer)),
        ("code_verifier", p.verifier.as_str()),
        ("client_id", o.issuer.as_str()),
        ("client_assertion_type", ASSERTION_TYPE),
        ("client_assertion", assertion.as_str()),
    ];
    let answer = o.http.post(&token_endpoint).form(&form).send().await;
    let body: Value = match answer {
        Ok(r) if r.status().is_success() => match r.bytes().await {
            Ok(b) if b.len() <= 64 * 1024 => serde_json::from_slice(&b).unwrap_or(Value::Null),
            _ => Value::Null,
        },
        Ok(r) => return refused(&format!("the token endpoint answered {}", r.status())),
        Err(e) => return refused(&format!("the token endpoint is unreachable: {e}")),
    };
    let Some(id_token) = body["id_token"].as_str() else {
        return refused("no ID token");
    };
    // The provider's keys, from its JWKS; each still has to pass the trust space.
    let keys = provider_keys(&o.http, &p.issuer).await;
    let claims = match o.verify(&p.segment, id_token, &keys) {
        Ok(c) => c,
        Err(e) => return refused(&e),
    };
    let t = now();
    if claims["iss"] != p.issuer.as_str()
        || !audience_has(&claims["aud"], &[&o.issuer])
        || claims["exp"].as_i64().is_none_or(|e| e <= t)
        || claims["iat"].as_i64().is_none_or(|i| i > t + 60)
        || claims["nonce"] != p.nonce.as_str()
    {
        return refused("the ID token's iss, aud, exp, iat or nonce is not right");
    }
    let login = claims["sub"].as_str().unwrap_or("");
    let name = claims["name"].as_str().unwrap_or(login);
    // People keep the roles their node gives them, but run only their own node.
    let roles: Vec<people::Role> = claims["roles"]
        .as_array()
        .map(|r| {
            r.iter()
                .filter_map(|r| r.as_str().and_then(people::Role::from_code))
                .filter(|r| *r != people::Role::Operator)
                .collect()
        })
        .unwrap_or_default();
    let s = match app
        .site
        .people
        .federated_session(&p.segment, login, name, &roles)
        .await
    {
        Ok(s) => s,
        Err(people::PeopleError::Invalid(why)) => return refused(&why),
        Err(e) => {
            tracing::error!(error = %e, "web: accounts unavailable");
            return app.message(
                lang,
                StatusCode::SERVICE_UNAVAILABLE,
                "unavailable-title",
                "unavailable-text",
            );
        }
    };
    tracing::info!(login = %s.account.login, "web: signed in through another node");
    let to = p
        .next
        .unwrap_or_else(|| format!("/{}/account", lang.code()));
    let mut r = Redirect::to(&to).into_response();
    signin::set_session(&app, &mut r, &s);
    r.headers_mut().append(
        header::SET_COOKIE,
        cookie_header(
            &app.cookie_name("oidc"),
            "",
            Some(0),
            app.site.secure_cookies,
        ),
    );
    r
}

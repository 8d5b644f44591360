//! Cross-border sign-in: a person registered at the KZ node signs in to the EEC portal
//! through OpenID Connect, each node trusting exactly the providers and relying nodes the
//! federation's signed trust list names, with keys from the trust space and no shared secret;
//! what an attacker would try is refused; and an outside OpenID client library (Python Authlib)
//! completes the flow with the KZ node and checks its ID token itself.

use std::collections::BTreeMap;

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD as B64, URL_SAFE_NO_PAD as B64U};
use envelope::Segment;

const LOGIN: &str = "aigerim";
const PASSWORD: &str = "correct horse battery";

struct Two {
    eec: String,
    kz: String,
    /// The issuer URL the trust list gives the KG node, whose keys the outside client holds.
    kg: String,
    pki: std::path::PathBuf,
    running: Vec<host::Running>,
    _dir: tempfile::TempDir,
}

/// The EEC and KZ nodes, each serving pages, under one trust list naming EEC, KZ and KG as
/// identity providers; at KZ, an officer who is also the node's operator.
async fn start() -> Two {
    let dir = tempfile::tempdir().unwrap();
    let pki = dir.path().join("pki");
    let segs: Vec<Segment> = ["EEC", "KZ", "KG"]
        .iter()
        .map(|s| s.parse().unwrap())
        .collect();
    trust::pki::init(&pki, &segs, time::OffsetDateTime::now_utc()).unwrap();
    let webs: Vec<_> = (0..3).map(|_| testkit::free_addr()).collect();
    let issuer = |i: usize| format!("http://{}", webs[i]);
    let providers = ["EEC", "KZ", "KG"]
        .iter()
        .enumerate()
        .map(|(i, s)| ttp::IdentityProvider {
            segment: s.to_string(),
            issuer: issuer(i),
        })
        .collect();
    let space = host::trustspace::build_with(
        &dir.path().join("trust"),
        &["KZ", "BY"],
        providers,
        time::OffsetDateTime::now_utc(),
    )
    .unwrap();
    let fed: BTreeMap<Segment, std::net::SocketAddr> = segs[..2]
        .iter()
        .map(|s| (*s, testkit::free_addr()))
        .collect();
    let mut running = Vec::new();
    for (i, seg) in ["EEC", "KZ"].iter().enumerate() {
        let mut cfg =
            host::process::config(seg, &format!("EAEU://{seg}/CA/conformity-body")).unwrap();
        cfg.data_dir = dir.path().join(seg);
        cfg.federation = node::config::FederationSection::star(&pki, segs[i], segs[0], &fed);
        cfg.ttp = Some(node::config::TtpSection {
            trust_list: space.ttp.trust_list.clone(),
            trust_list_signer: space.ttp.trust_list_signer.clone(),
            key: None,
            cert: None,
            subscribers: Vec::new(),
            publisher: None,
            refresh_secs: 60,
        });
        cfg.web = Some(node::config::WebSection {
            listen: webs[i],
            secure_cookies: true,
            public_url: Some(issuer(i)),
            portal: false,
        });
        if *seg == "KZ" {
            let p = people::People::open(
                cfg.store_engine().for_app("people"),
                node::system_clock(),
                people::Policy::default(),
            )
            .unwrap();
            p.add(
                LOGIN,
                "Айгерим Нурланова",
                &[people::Role::Officer, people::Role::Operator],
                PASSWORD,
            )
            .await
            .unwrap();
            p.close().await.unwrap();
        }
        running.push(host::start(cfg, node::system_clock()).await.unwrap());
    }
    Two {
        eec: issuer(0),
        kz: issuer(1),
        kg: issuer(2),
        pki,
        running,
        _dir: dir,
    }
}

fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

/// A browser of one person: the cookies of each site it visits (kept by hand, since the
/// cookies are `Secure` and an HTTP client's jar would not send them over loopback HTTP).
#[derive(Default)]
struct Browser {
    jar: BTreeMap<String, BTreeMap<String, String>>,
}

impl Browser {
    fn site(url: &str) -> String {
        url.split('/').take(3).collect::<Vec<_>>().join("/")
    }

    fn cookies(&self, url: &str) -> String {
        self.jar
            .get(&Self::site(url))
            .map(|c| {
                c.iter()
                    .map(|(k, v)| format!("{k}={v}"))
                    .collect::<Vec<_>>()
                    .join("; ")
            })
            .unwrap_or_default()
    }

    fn keep(&mut self, url: &str, r: &reqwest::Response) {
        let jar = self.jar.entry(Self::site(url)).or_default();
        for c in r.headers().get_all("set-cookie") {
            let c = c.to_str().unwrap();
            let (k, v) = c.split(';').next().unwrap().split_once('=').unwrap();
            if c.contains("Max-Age=0") {
                jar.remove(k);
            } else {
                jar.insert(k.to_owned(), v.to_owned());
            }
        }
    }

    /// GETs `url`; answers (status, Location made absolute, body).
    async fn get(&mut self, url: &str) -> (u16, String, String) {
        let r = client()
            .get(url)
            .header("cookie", self.cookies(url))
            .send()
            .await
            .unwrap();
        self.keep(url, &r);
        let status = r.status().as_u16();
        let loc = location(url, &r);
        (
            status,
            loc,
            r.text()
                .await
                .unwrap()
                .replace("&#x2f;", "/")
                .replace("&amp;", "&"),
        )
    }

    async fn post(&mut self, url: &str, form: &[(&str, &str)]) -> (u16, String, String) {
        let r = client()
            .post(url)
            .header("cookie", self.cookies(url))
            .header("origin", Self::site(url))
            .form(form)
            .send()
            .await
            .unwrap();
        self.keep(url, &r);
        let status = r.status().as_u16();
        let loc = location(url, &r);
        (status, loc, r.text().await.unwrap())
    }
}

fn location(url: &str, r: &reqwest::Response) -> String {
    match r.headers().get("location").map(|l| l.to_str().unwrap()) {
        Some(l) if l.starts_with('/') => format!("{}{l}", Browser::site(url)),
        Some(l) => l.to_owned(),
        None => String::new(),
    }
}

fn between<'a>(s: &'a str, from: &str, to: &str) -> &'a str {
    s.split(from)
        .nth(1)
        .and_then(|s| s.split(to).next())
        .unwrap_or("")
}

/// The person signs in at KZ's form (which they were sent to), and is sent on.
async fn sign_in_at(b: &mut Browser, form_url: &str) -> String {
    let (status, _, html) = b.get(form_url).await;
    assert_eq!(status, 200, "{html}");
    let token = between(&html, "name=\"form\" value=\"", "\"").to_owned();
    let next = between(&html, "name=\"next\" value=\"", "\"").to_owned();
    let action = format!("{}/en/signin", Browser::site(form_url));
    let (status, to, body) = b
        .post(
            &action,
            &[
                ("form", &token),
                ("login", LOGIN),
                ("password", PASSWORD),
                ("next", &next),
            ],
        )
        .await;
    assert_eq!(status, 303, "{body}");
    to
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_person_of_the_kz_node_signs_in_to_the_eec_portal() {
    let t = start().await;
    let mut b = Browser::default();
    // The EEC portal's sign-in page offers the other nodes the trust list names, not itself.
    let (_, _, html) = b.get(&format!("{}/en/signin", t.eec)).await;
    assert!(html.contains("/en/signin/via/KZ\""), "{html}");
    assert!(html.contains("/en/signin/via/KG\""), "{html}");
    assert!(!html.contains("/signin/via/EEC"), "{html}");

    let (status, to, _) = b
        .get(&format!("{}/en/signin/via/KZ?next=/en/account", t.eec))
        .await;
    assert_eq!(status, 303);
    assert!(to.starts_with(&format!("{}/oidc/authorize?", t.kz)), "{to}");
    // KZ has not met this browser: its own sign-in form first, then back to the request.
    let (status, form, _) = b.get(&to).await;
    assert_eq!(status, 303);
    assert!(
        form.starts_with(&format!("{}/en/signin?next=", t.kz)),
        "{form}"
    );
    let back_to_authorize = sign_in_at(&mut b, &form).await;
    assert!(back_to_authorize.starts_with(&format!("{}/oidc/authorize?", t.kz)));
    let (status, callback, _) = b.get(&back_to_authorize).await;
    assert_eq!(status, 303);
    assert!(
        callback.starts_with(&format!("{}/oidc/callback?code=", t.eec)),
        "{callback}"
    );
    assert!(callback.contains("&iss=http"), "RFC 9207: {callback}");

    let (status, to, body) = b.get(&callback).await;
    assert_eq!(status, 303, "{body}");
    assert_eq!(to, format!("{}/en/account", t.eec));
    let (status, _, html) = b.get(&to).await;
    assert_eq!(status, 200);
    // She is at the EEC node as KZ's person, with the roles KZ gives her, but not as an
    // operator: people run only their own node.
    assert!(html.contains("<code>kz:aigerim</code>"), "{html}");
    assert!(html.contains("Айгерим Нурланова"), "{html}");
    assert!(
        html.contains("Authority officer") && !html.contains("Node operator"),
        "{html}"
    );

    // The same answer again is worth nothing: the sign-in it finished is gone.
    let (status, _, html) = b.get(&callback).await;
    assert_eq!(status, 403);
    assert!(html.contains("did not complete"), "{html}");
    // Another browser cannot finish someone else's sign-in with a stolen answer.
    let (status, to, _) = b.get(&format!("{}/en/signin/via/KZ", t.eec)).await;
    assert_eq!(status, 303);
    let (_, callback, _) = b.get(&to).await;
    let (status, _, _) = Browser::default().get(&callback).await;
    assert_eq!(status, 403);
    for r in t.running {
        r.stop().await.unwrap();
    }
}

/// An assertion signed with `seg`'s node key from the test PKI, claiming to be `client`.
fn assertion(t: &Two, seg: &str, client: &str, aud: &str, jti: &str) -> String {
    let files = trust::pki::NodeFiles::in_dir(&t.pki, seg.parse().unwrap());
    let signer =
        transport::hop::HopSigner::from_files(&files.signing_key, &files.signing_cert).unwrap();
    let header = serde_json::json!({"alg": "EdDSA", "x5c": [B64.encode(signer.certificate())]});
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    let claims =
        serde_json::json!({"iss": client, "sub": client, "aud": aud, "jti": jti, "exp": now + 60});
    let input = format!(
        "{}.{}",
        B64U.encode(header.to_string()),
        B64U.encode(claims.to_string())
    );
    let sig = signer.sign(input.as_bytes()).unwrap();
    format!("{input}.{}", B64U.encode(sig.value))
}

/// What the KZ node's token endpoint answers a client with this assertion: (status, error).
async fn check_token(t: &Two, assertion: &str, expect: (u16, &str)) {
    let r = client()
        .post(format!("{}/oidc/token", t.kz))
        .form(&[
            ("grant_type", "authorization_code"),
            ("code", "no-such-code"),
            ("redirect_uri", &format!("{}/oidc/callback", t.eec)),
            ("code_verifier", "x"),
            (
                "client_assertion_type",
                "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
            ),
            ("client_assertion", assertion),
        ])
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    let body: serde_json::Value = r.json().await.unwrap();
    assert_eq!((status, body["error"].as_str().unwrap()), expect, "{body}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn strangers_forgers_and_wrong_addresses_are_refused() {
    let t = start().await;
    let mut b = Browser::default();
    let authorize = |client: &str, redirect: &str, pkce: bool| {
        let e = |s: &str| s.replace(':', "%3A").replace('/', "%2F");
        format!(
            "{}/oidc/authorize?response_type=code&scope=openid&client_id={}&redirect_uri={}&state=s1{}",
            t.kz,
            e(client),
            e(redirect),
            if pkce {
                "&code_challenge=E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM&code_challenge_method=S256"
            } else {
                ""
            }
        )
    };
    // A site the trust list does not name, or a named one asking to send the answer elsewhere:
    // a page saying so, and nothing sent anywhere.
    let (status, to, html) = b
        .get(&authorize(
            "https://stranger.example",
            "https://stranger.example/oidc/callback",
            true,
        ))
        .await;
    assert_eq!((status, to.as_str()), (400, ""));
    assert!(
        html.contains("Unknown relying node") || html.contains("Неизвестный узел"),
        "{html}"
    );
    let (status, _, _) = b
        .get(&authorize(
            &t.eec,
            "https://stranger.example/oidc/callback",
            true,
        ))
        .await;
    assert_eq!(status, 400);
    // Without PKCE the named node gets an error back, not a code.
    let (status, to, _) = b
        .get(&authorize(
            &t.eec,
            &format!("{}/oidc/callback", t.eec),
            false,
        ))
        .await;
    assert_eq!(status, 303);
    assert!(
        to.contains("error=invalid_request") && to.contains("state=s1"),
        "{to}"
    );

    let aud = format!("{}/oidc/token", t.kz);
    // KG's key claiming to be the EEC node: its certificate names another segment.
    check_token(
        &t,
        &assertion(&t, "KG", &t.eec, &aud, "j1"),
        (401, "invalid_client"),
    )
    .await;
    // The EEC node's own key, but meant for another audience.
    check_token(
        &t,
        &assertion(&t, "EEC", &t.eec, "https://elsewhere.example/token", "j2"),
        (401, "invalid_client"),
    )
    .await;
    // A right assertion passes the client check and then meets an unknown code; once used, its
    // id is spent.
    let a = assertion(&t, "EEC", &t.eec, &aud, "j3");
    check_token(&t, &a, (400, "invalid_grant")).await;
    check_token(&t, &a, (401, "invalid_client")).await;
    // Not a JWS at all.
    check_token(&t, "not.a.jws", (401, "invalid_client")).await;
    for r in t.running {
        r.stop().await.unwrap();
    }
}

/// What the outside client saw (`scripts/interop/oidc_client.py`).
#[derive(Debug, serde::Deserialize)]
struct Seen {
    discovery_issuer: String,
    claims: serde_json::Value,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_outside_openid_client_signs_a_person_in_with_the_kz_node() {
    let Some(python) = testkit::oidc_python() else {
        return;
    };
    let t = start().await;
    let files = trust::pki::NodeFiles::in_dir(&t.pki, "KG".parse().unwrap());
    let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../scripts/interop/oidc_client.py");
    let out = tokio::process::Command::new(&python)
        .arg(&script)
        .args([&t.kz, &t.kg])
        .arg(&files.signing_key)
        .arg(&files.signing_cert)
        .args([LOGIN, PASSWORD])
        .output()
        .await
        .unwrap();
    assert!(
        out.status.success(),
        "the outside client failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let seen: Seen = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(seen.discovery_issuer, t.kz);
    // Authlib checked the signature with the published JWKS and the iss, aud, exp and nonce
    // claims; these are what the relying party learns.
    assert_eq!(seen.claims["sub"], LOGIN);
    assert_eq!(seen.claims["iss"], t.kz.as_str());
    assert_eq!(seen.claims["aud"], t.kg.as_str());
    assert_eq!(seen.claims["segment"], "KZ");
    assert_eq!(
        seen.claims["roles"],
        serde_json::json!(["operator", "officer"])
    );
    for r in t.running {
        r.stop().await.unwrap();
    }
}

/// What the browser saw (`scripts/interop/browser_signin_across.py`).
#[derive(Debug, serde::Deserialize)]
struct BrowserSeen {
    provider_page: String,
    provider_lang: String,
    back_at: String,
    login: String,
    header_name: String,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn in_a_real_browser_a_person_of_the_kz_node_signs_in_to_the_eec_portal() {
    let Some(python) = testkit::browser_python() else {
        return;
    };
    let t = start().await;
    let shots = std::env::var("ORTAQ_SCREENSHOTS")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|_| t._dir.path().join("screenshots"));
    let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../scripts/interop/browser_signin_across.py");
    let out = tokio::process::Command::new(&python)
        .arg(&script)
        .arg(&t.eec)
        .arg(&shots)
        .args([LOGIN, PASSWORD])
        .output()
        .await
        .unwrap();
    assert!(
        out.status.success(),
        "the browser run failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let seen: BrowserSeen = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stdout)));
    // The sign-in happens on the KZ node's own page, in the language the EEC page was in.
    assert_eq!(seen.provider_page, format!("{}/ru/signin", t.kz));
    assert_eq!(seen.provider_lang, "ru");
    assert_eq!(seen.back_at, format!("{}/ru/account", t.eec));
    assert_eq!(seen.login, "kz:aigerim");
    assert_eq!(seen.header_name, "Айгерим Нурланова");
    for r in t.running {
        r.stop().await.unwrap();
    }
}

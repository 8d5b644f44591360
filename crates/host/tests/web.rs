//! The pages a node serves on `[web] listen`, read as a browser reads them: the language a
//! person gets and keeps, the page in it, reference data with names in the member states'
//! languages, search that works without JavaScript, and a clear page for what is not there.

use std::sync::Arc;

use node::Node;

const A: &str = "EAEU://KZ/CA/conformity-body";
const B: &str = "EAEU://KZ/CA/customs";
const OPERATOR: &str = "aigerim";
const TRADER: &str = "bolat";
const PASSWORD: &str = "correct horse battery";

struct Pages {
    base: String,
    running: host::Running,
    _dir: tempfile::TempDir,
}

/// A KZ node with the shipped countries resource, serving its pages.
async fn start() -> Pages {
    start_with(|_| {}).await
}

/// [`start`], with the configuration changed by `change` first.
async fn start_with(change: impl FnOnce(&mut node::NodeConfig)) -> Pages {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = host::process::config("KZ", A).unwrap();
    cfg.data_dir = dir.path().to_owned();
    let web = testkit::free_addr();
    cfg.web = Some(node::config::WebSection {
        listen: web,
        secure_cookies: true,
        public_url: None,
        portal: true,
    });
    // Her node's operator, registered before the node serves.
    let people = people::People::open(
        cfg.store_engine().for_app("people"),
        node::system_clock(),
        people::Policy::default(),
    )
    .unwrap();
    people
        .add(
            OPERATOR,
            "Айгерим Нурланова",
            &[people::Role::Operator],
            PASSWORD,
        )
        .await
        .unwrap();
    people
        .add(TRADER, "Болат Сериков", &[people::Role::Business], PASSWORD)
        .await
        .unwrap();
    people.close().await.unwrap();
    cfg.participants.push(node::config::ParticipantConfig {
        address: B.into(),
        name: String::new(),
    });
    change(&mut cfg);
    let listener = tokio::net::TcpListener::bind(cfg.listen).await.unwrap();
    let node: Arc<Node> = Node::open(cfg, node::system_clock()).unwrap();
    let countries = std::fs::read(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../data/nsi/countries.json"),
    )
    .unwrap();
    node::reference::import(
        node.store(),
        &node.reference(),
        &countries,
        nsi::format::Format::Json,
        None,
        false,
        1_764_547_200_000_000,
    )
    .await
    .unwrap();
    node.reload_reference().await.unwrap();
    let running = host::run(node, listener).await.unwrap();
    Pages {
        base: format!("http://{web}"),
        running,
        _dir: dir,
    }
}

/// No redirects followed: where `/` sends a person is what is checked.
fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

/// Where `/` sends a person with these request headers.
async fn check_landing(p: &Pages, headers: &[(&str, &str)], expect: &str) {
    let mut req = client().get(format!("{}/", p.base));
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let r = req.send().await.unwrap();
    assert_eq!(r.status().as_u16(), 303, "{headers:?}");
    assert_eq!(
        r.headers()["location"].to_str().unwrap(),
        expect,
        "{headers:?}"
    );
}

async fn get(p: &Pages, path: &str) -> (u16, reqwest::header::HeaderMap, String) {
    let r = client()
        .get(format!("{}{path}", p.base))
        .send()
        .await
        .unwrap();
    let (status, headers) = (r.status().as_u16(), r.headers().clone());
    // The templates escape '/' in text as `&#x2f;`; a browser shows it as '/'.
    let html = r.text().await.unwrap().replace("&#x2f;", "/");
    (status, headers, html)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_person_gets_their_language_and_keeps_it() {
    let p = start().await;
    check_landing(&p, &[], "/ru/").await;
    check_landing(
        &p,
        &[("accept-language", "kk-KZ,kk;q=0.9,ru;q=0.8")],
        "/kk/",
    )
    .await;
    check_landing(&p, &[("accept-language", "de, en;q=0.5")], "/en/").await;
    // A choice made on the pages outweighs the browser.
    check_landing(
        &p,
        &[("accept-language", "kk"), ("cookie", "x=1; lang=en")],
        "/en/",
    )
    .await;

    let (status, headers, html) = get(&p, "/kk/").await;
    assert_eq!(status, 200);
    assert!(
        html.starts_with("<!doctype html>\n<html lang=\"kk\">"),
        "{html}"
    );
    assert!(html.contains("KZ торабы"), "{html}");
    assert!(html.contains(A));
    assert_eq!(headers["content-language"], "kk");
    assert!(
        headers["set-cookie"]
            .to_str()
            .unwrap()
            .starts_with("lang=kk;")
    );
    assert!(
        headers["content-security-policy"]
            .to_str()
            .unwrap()
            .contains("script-src 'self'")
    );
    // Every page links the same page in the other languages.
    assert!(html.contains("href=\"/ru/\" hreflang=\"ru\""), "{html}");
    assert!(html.contains("href=\"/en/\" hreflang=\"en\""), "{html}");
    // Every page renders in every language (a missing message would be a 500).
    for lang in ["ru", "kk", "en"] {
        for path in [
            "/",
            "/nsi",
            "/nsi/P.CLS.019",
            "/nsi/P.CLS.019?q=zzzz",
            "/nsi/NONE",
        ] {
            let (status, _, html) = get(&p, &format!("/{lang}{path}")).await;
            assert!(status == 200 || status == 404, "/{lang}{path}: {status}");
            assert!(
                html.contains(&format!("<html lang=\"{lang}\">")),
                "/{lang}{path}"
            );
        }
    }
    p.running.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reference_data_reads_in_each_language_and_searches_without_javascript() {
    let p = start().await;
    let (status, _, html) = get(&p, "/ru/nsi").await;
    assert_eq!(status, 200);
    assert!(html.contains("/ru/nsi/P.CLS.019"), "{html}");
    // Published 1 December 2025, as Russian writes a date; 249 countries.
    assert!(html.contains("1 декабря 2025 г."), "{html}");
    assert!(html.contains(">249<"), "{html}");
    let (_, _, en) = get(&p, "/en/nsi").await;
    assert!(en.contains("1 December 2025"), "{en}");

    // A search is a plain GET form: it works with JavaScript off.
    let (status, _, html) = get(&p, "/kk/nsi/P.CLS.019?q=%D0%B1%D0%B5%D0%BB%D0%B0%D1%80").await;
    assert_eq!(status, 200);
    assert!(html.contains("<code>BY</code>"), "{html}");
    assert!(html.contains("1 жазба табылды"), "{html}");
    // The page names it in Kazakh, and beside it in the other languages the data has,
    // Armenian, Belarusian and Kyrgyz among them, each marked with its language.
    assert!(html.contains("<td>Беларусь</td>"), "{html}");
    assert!(html.contains("<span lang=\"hy\">"), "{html}");
    // A name the same as the one shown is not repeated (Belarusian writes it as Kazakh does).
    assert!(!html.contains("<span lang=\"be\">"), "{html}");
    assert!(html.contains("<label for=\"q\">"), "{html}");

    // Paging: 249 countries are three pages of 100.
    let (_, _, html) = get(&p, "/en/nsi/P.CLS.019?page=3").await;
    assert!(html.contains("Page 3 of 3"), "{html}");
    assert!(html.contains("rel=\"prev\""), "{html}");
    p.running.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn what_is_not_there_says_so_in_the_persons_language() {
    let p = start().await;
    let (status, _, html) = get(&p, "/en/nsi/NO.SUCH").await;
    assert_eq!(status, 404);
    assert!(html.contains("Page not found"), "{html}");
    let r = client()
        .get(format!("{}/nowhere", p.base))
        .header("accept-language", "kk")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 404);
    assert!(r.text().await.unwrap().contains("Бет табылмады"));
    let (status, headers, js) = get(&p, "/assets/htmx-2.0.11.min.js").await;
    assert_eq!(status, 200);
    assert!(
        headers["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/javascript")
    );
    assert!(js.len() > 40_000);
    p.running.stop().await.unwrap();
}

/// A form post as a browser on this site sends it, with `cookie`.
async fn post(p: &Pages, path: &str, cookie: &str, form: &[(&str, &str)]) -> reqwest::Response {
    client()
        .post(format!("{}{path}", p.base))
        .header("cookie", cookie)
        .header("origin", &p.base)
        .form(form)
        .send()
        .await
        .unwrap()
}

/// The value of the `Set-Cookie` named `name`, with its attributes.
fn set_cookie(r: &reqwest::Response, name: &str) -> String {
    r.headers()
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap().to_owned())
        .find(|c| c.starts_with(&format!("{name}=")))
        .unwrap_or_else(|| panic!("no {name} cookie in {:?}", r.headers()))
}

fn cookie_value(set_cookie: &str) -> String {
    set_cookie.split(';').next().unwrap().to_owned()
}

/// The sign-in form's token, from the page and its cookie.
async fn sign_in_form(p: &Pages) -> (String, String) {
    let r = client()
        .get(format!("{}/en/signin", p.base))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    let c = set_cookie(&r, "ortaq_kz_form");
    assert!(
        c.contains("HttpOnly") && c.contains("SameSite=Lax") && c.contains("Secure"),
        "{c}"
    );
    let html = r.text().await.unwrap();
    let token = html
        .split("name=\"form\" value=\"")
        .nth(1)
        .and_then(|s| s.split('"').next())
        .unwrap()
        .to_owned();
    assert_eq!(cookie_value(&c), format!("ortaq_kz_form={token}"));
    (cookie_value(&c), token)
}

/// What a person sees when they send the sign-in form: the status and the message on the page.
async fn check_sign_in(
    p: &Pages,
    login: &str,
    password: &str,
    expect: (u16, &str),
) -> reqwest::Response {
    let (cookie, token) = sign_in_form(p).await;
    let r = post(
        p,
        "/en/signin",
        &cookie,
        &[("form", &token), ("login", login), ("password", password)],
    )
    .await;
    assert_eq!(r.status().as_u16(), expect.0, "{login}/{password}");
    if expect.0 != 303 {
        let html = r.text().await.unwrap();
        assert!(html.contains(expect.1), "{login}/{password}: {html}");
        return client().get(&p.base).send().await.unwrap();
    }
    assert_eq!(r.headers()["location"], expect.1);
    r
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_person_signs_in_sees_their_account_and_signs_out() {
    let p = start().await;
    // A page for people signed in sends the public to the form, and back after.
    let r = client()
        .get(format!("{}/en/account", p.base))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 303);
    assert_eq!(r.headers()["location"], "/en/signin?next=/en/account");
    let (_, _, html) = get(&p, "/ru/").await;
    assert!(html.contains("href=\"/ru/signin\""), "{html}");

    check_sign_in(
        &p,
        OPERATOR,
        "wrong password",
        (401, "Wrong login or password."),
    )
    .await;
    check_sign_in(&p, "nobody", PASSWORD, (401, "Wrong login or password.")).await;
    let r = check_sign_in(&p, OPERATOR, PASSWORD, (303, "/en/account")).await;
    let session = set_cookie(&r, "ortaq_kz_session");
    for attr in ["HttpOnly", "SameSite=Lax", "Secure", "Path=/"] {
        assert!(session.contains(attr), "{session}");
    }
    let me = cookie_value(&session);

    let r = client()
        .get(format!("{}/kk/account", p.base))
        .header("cookie", &me)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    assert_eq!(r.headers()["cache-control"], "private, no-store");
    let html = r.text().await.unwrap();
    assert!(
        html.contains("Айгерим Нурланова") && html.contains("Торап операторы"),
        "{html}"
    );
    let csrf = html
        .split("name=\"csrf\" value=\"")
        .nth(1)
        .and_then(|s| s.split('"').next())
        .unwrap()
        .to_owned();

    // Signing out needs the session's form token: another site cannot sign a person out.
    let r = post(&p, "/en/signout", &me, &[("csrf", "forged")]).await;
    assert_eq!(r.status().as_u16(), 403);
    let r = post(&p, "/en/signout", &me, &[("csrf", &csrf)]).await;
    assert_eq!(r.status().as_u16(), 303);
    assert!(set_cookie(&r, "ortaq_kz_session").contains("Max-Age=0"));
    let r = client()
        .get(format!("{}/en/account", p.base))
        .header("cookie", &me)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 303, "the session ended");
    p.running.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forged_and_foreign_sign_ins_are_refused_and_five_wrong_passwords_lock() {
    let p = start().await;
    let (cookie, token) = sign_in_form(&p).await;
    let creds = [("login", OPERATOR), ("password", PASSWORD)];
    // No form token, a token not the browser's, a post from another site: refused, and the
    // password is never checked.
    for (cookie, form, origin) in [
        ("", token.as_str(), p.base.as_str()),
        (cookie.as_str(), "forged", p.base.as_str()),
        (cookie.as_str(), token.as_str(), "https://elsewhere.example"),
    ] {
        let r = client()
            .post(format!("{}/en/signin", p.base))
            .header("cookie", cookie)
            .header("origin", origin)
            .form(&[("form", form), creds[0], creds[1]])
            .send()
            .await
            .unwrap();
        assert_eq!(r.status().as_u16(), 403, "{cookie} {form} {origin}");
        assert!(r.text().await.unwrap().contains("The form has expired"));
    }
    // After signing in a person goes to a page of this site, never to another.
    let r = post(
        &p,
        "/en/signin",
        &cookie,
        &[
            ("form", &token),
            creds[0],
            creds[1],
            ("next", "https://elsewhere.example/"),
        ],
    )
    .await;
    assert_eq!(r.headers()["location"], "/en/account");

    for _ in 0..4 {
        check_sign_in(
            &p,
            OPERATOR,
            "wrong password",
            (401, "Wrong login or password."),
        )
        .await;
    }
    let (cookie, token) = sign_in_form(&p).await;
    let r = post(
        &p,
        "/kk/signin",
        &cookie,
        &[
            ("form", &token),
            ("login", OPERATOR),
            ("password", "wrong again!"),
        ],
    )
    .await;
    assert_eq!(r.status().as_u16(), 429);
    let wait: i64 = r.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((14 * 60..=15 * 60).contains(&wait), "{wait}");
    assert!(r.text().await.unwrap().contains("есептік жазба"));
    // Locked: the right password waits too.
    check_sign_in(
        &p,
        OPERATOR,
        PASSWORD,
        (429, "this account is locked until"),
    )
    .await;
    p.running.stop().await.unwrap();
}

/// Signs `login` in; the cookie of their session.
async fn session_of(p: &Pages, login: &str) -> String {
    let r = check_sign_in(p, login, PASSWORD, (303, "/en/account")).await;
    cookie_value(&set_cookie(&r, "ortaq_kz_session"))
}

/// A console page as `cookie` sees it: (status, page).
async fn console(p: &Pages, cookie: &str, path: &str) -> (u16, String) {
    let r = client()
        .get(format!("{}{path}", p.base))
        .header("cookie", cookie)
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    (status, r.text().await.unwrap().replace("&#x2f;", "/"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_operator_finds_a_message_verifies_the_log_and_revokes_a_token() {
    let p = start().await;
    let node = p.running.node.clone();
    let api = format!("http://{}", node.config().listen);
    let receipt = node
        .submit(
            A,
            adapter::Submission {
                to: B.into(),
                process: "P.TS.01".into(),
                version: "1.0.1".into(),
                procedure: "P.TS.01.PRC.001".into(),
                transaction: "P.TS.01.TRN.001".into(),
                message: "P.TS.01.MSG.001".into(),
                body: "<doc>console</doc>".into(),
                message_id: None,
                conversation_id: None,
                procedure_id: None,
                relates_to: None,
            },
        )
        .await
        .unwrap();
    let id = receipt.message_id.to_string();

    // The console is the operator's: the public goes to the sign-in form, a trader is told.
    let (status, _) = console(&p, "", "/en/console").await;
    assert_eq!(status, 303);
    let trader = session_of(&p, TRADER).await;
    let (status, html) = console(&p, &trader, "/en/console").await;
    assert_eq!(status, 403);
    assert!(
        html.contains("For the node&#x27;s operators") || html.contains("For the node's operators"),
        "{html}"
    );

    let op = session_of(&p, OPERATOR).await;
    let (status, html) = console(&p, &op, "/ru/console").await;
    assert_eq!(status, 200, "{html}");
    assert!(html.contains("<svg class=\"chart\""), "{html}");
    assert!(
        html.contains("Этот узел не хранит доверенный список"),
        "{html}"
    );
    assert!(
        html.contains("href=\"/ru/console\""),
        "the header links the console: {html}"
    );
    let (_, html) = console(&p, &op, "/en/console?verify=1").await;
    assert!(html.contains("The log is intact"), "{html}");

    // Found by participant and by its MessageID; not among the acknowledged.
    let e = |s: &str| s.replace(':', "%3A").replace('/', "%2F");
    let (_, html) = console(
        &p,
        &op,
        &format!("/en/console/messages?participant={}", e(B)),
    )
    .await;
    assert!(html.contains(&id), "{html}");
    let (_, html) = console(
        &p,
        &op,
        &format!("/en/console/messages?message_id={}", e(&id)),
    )
    .await;
    assert!(html.contains(&id), "{html}");
    let (_, html) = console(&p, &op, "/en/console/messages?state=acknowledged").await;
    assert!(html.contains("No message matches."), "{html}");
    let (status, html) = console(&p, &op, &format!("/en/console/messages/{}", e(&id))).await;
    assert_eq!(status, 200);
    assert!(
        html.contains("History") && html.contains("&lt;doc&gt;console&lt;/doc&gt;"),
        "{html}"
    );
    let r = client()
        .get(format!(
            "{}/en/console/messages/{}/evidence",
            p.base,
            e(&id)
        ))
        .header("cookie", &op)
        .send()
        .await
        .unwrap();
    // This node exchanges with no other, so it has no federation key to sign evidence with;
    // the page says so (the container itself is tested with a federation, through the API).
    assert_eq!(r.status().as_u16(), 409);
    assert!(
        r.text()
            .await
            .unwrap()
            .contains("No evidence from this node")
    );

    // A token issued on the page works at the API, once revoked it does not.
    let (_, html) = console(&p, &op, "/en/console/tokens").await;
    let csrf = html
        .split("name=\"csrf\" value=\"")
        .nth(1)
        .and_then(|s| s.split('"').next())
        .unwrap()
        .to_owned();
    let r = post(
        &p,
        "/en/console/tokens",
        &op,
        &[
            ("csrf", &csrf),
            ("participant", B),
            ("label", "customs IS"),
            ("days", "30"),
        ],
    )
    .await;
    assert_eq!(r.status().as_u16(), 200);
    let html = r.text().await.unwrap();
    let token = html
        .split("id=\"issued-token\">")
        .nth(1)
        .and_then(|s| s.split('<').next())
        .unwrap()
        .to_owned();
    let inbox = |token: String| {
        let api = api.clone();
        async move {
            client()
                .get(format!("{api}/v1/inbox"))
                .bearer_auth(token)
                .send()
                .await
                .unwrap()
                .status()
                .as_u16()
        }
    };
    assert_eq!(inbox(token.clone()).await, 200);
    let tokens = node.tokens().await.unwrap();
    let issued = tokens.iter().find(|t| t.label == "customs IS").unwrap();
    // Without the session's form token nothing is revoked.
    let r = post(
        &p,
        &format!("/en/console/tokens/{}/revoke", issued.id),
        &op,
        &[("csrf", "forged")],
    )
    .await;
    assert_eq!(r.status().as_u16(), 403);
    let r = post(
        &p,
        &format!("/en/console/tokens/{}/revoke", issued.id),
        &op,
        &[("csrf", &csrf)],
    )
    .await;
    assert_eq!(r.status().as_u16(), 303);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    while inbox(token.clone()).await != 401 {
        assert!(
            std::time::Instant::now() < deadline,
            "the revoked token still works"
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    let (_, html) = console(&p, &op, "/en/console/tokens").await;
    assert!(html.contains("revoked"), "{html}");
    p.running.stop().await.unwrap();
}

/// Three certificates (KZ 1, BY 2, RU 3) in the portal's registry; the first suspended.
async fn registry_with_three(p: &Pages) {
    let reg = p
        .running
        .registry()
        .expect("the test node serves the portal");
    let packages = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../processes");
    for (seg, n) in [("KZ", 1), ("BY", 2), ("RU", 3)] {
        let xml = conformity::sample::certificate(&packages, seg, n).unwrap();
        let recs: Vec<_> = conformity::records(&xml)
            .into_iter()
            .map(|(mut r, x)| {
                r.updated_at = "2026-11-20T10:00:00Z".into();
                (r, x)
            })
            .collect();
        assert_eq!(recs.len(), 1);
        reg.put(&recs, None).await.unwrap();
    }
    assert!(
        reg.set_status(
            &conformity::sample::doc_id("KZ", 1),
            "02",
            "2026-11-25T09:00:00Z"
        )
        .await
        .unwrap()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_public_searches_the_registry_and_downloads_open_data() {
    let p = start().await;
    registry_with_three(&p).await;
    let (status, _, html) = get(&p, "/ru/registry").await;
    assert_eq!(status, 200);
    assert!(html.contains("Найдено 3 документа"), "{html}");
    // Any word of the names and codes, in any case, narrowed by state; the form works
    // without JavaScript (a GET).
    let (_, _, html) = get(&p, "/en/registry?q=%D0%AD%D0%9B%D0%95%D0%9A%D0%A2%D0%A0%D0%9E%D0%94%D0%92%D0%98%D0%93%D0%90%D0%A2%D0%95%D0%9B%D0%98+850152&country=BY").await;
    assert!(html.contains("1 document found"), "{html}");
    assert!(html.contains("ЕАЭС BY.01.АА.0002/2026"), "{html}");
    let (_, _, html) = get(&p, "/kk/registry?status=02").await;
    assert!(
        html.contains("1 құжат табылды") && html.contains("ЕАЭС KZ.01.АА.0001/2026"),
        "{html}"
    );
    // A page per document, with its statuses over time in the person's language.
    let (status, _, html) = get(
        &p,
        "/kk/registry/document?id=%D0%95%D0%90%D0%AD%D0%A1%20KZ.01.%D0%90%D0%90.0001%2F2026",
    )
    .await;
    assert_eq!(status, 200, "{html}");
    assert!(html.contains("Мәртебелер тарихы"), "{html}");
    assert!(
        html.contains("қолданыста") && html.contains("тоқтатыла тұрды"),
        "{html}"
    );
    assert!(html.contains("2026 ж. 25 қараша"), "{html}");
    let (status, _, _) = get(&p, "/en/registry/document?id=nothing").await;
    assert_eq!(status, 404);

    // Downloads: the whole registry in three formats, and a reference book.
    let (status, headers, csv) = get(&p, "/open-data/conformity-registry.csv").await;
    assert_eq!(status, 200);
    assert_eq!(headers["content-type"], "text/csv; charset=utf-8");
    let lines: Vec<&str> = csv.lines().collect();
    assert_eq!(lines.len(), 4, "{csv}");
    assert!(lines[0].starts_with("doc_id,country,kind,status"));
    let (_, _, json) = get(&p, "/open-data/conformity-registry.json").await;
    let rows: Vec<serde_json::Value> = serde_json::from_str(&json).unwrap();
    assert_eq!(rows.len(), 3);
    assert_eq!(rows[0]["country"], "BY");
    let (_, _, xml) = get(&p, "/open-data/conformity-registry.xml").await;
    assert_eq!(xml.matches("<document>").count(), 3, "{xml}");
    let (status, _, countries) = get(&p, "/open-data/nsi/P.CLS.019.csv").await;
    assert_eq!(status, 200);
    assert!(countries.lines().count() > 249, "{countries}");
    let (status, _, _) = get(&p, "/open-data/nsi/NONE.csv").await;
    assert_eq!(status, 404);
    let (_, _, html) = get(&p, "/en/open-data").await;
    assert!(
        html.contains("id=\"conformity-registry\"") && html.contains("id=\"nsi-p-cls-019\""),
        "{html}"
    );
    p.running.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn showcases_count_the_exchange_in_a_chart_a_table_and_a_csv() {
    let p = start().await;
    for i in 0..3 {
        p.running
            .node
            .submit(
                A,
                adapter::Submission {
                    to: B.into(),
                    process: "P.TS.01".into(),
                    version: "1.0.1".into(),
                    procedure: "P.TS.01.PRC.001".into(),
                    transaction: "P.TS.01.TRN.001".into(),
                    message: "P.TS.01.MSG.001".into(),
                    body: format!("<doc>{i}</doc>"),
                    ..Default::default()
                },
            )
            .await
            .unwrap();
    }
    let (status, _, html) = get(&p, "/en/showcases").await;
    assert_eq!(status, 200, "{html}");
    assert_eq!(html.matches("<svg class=\"chart\"").count(), 4, "{html}");
    assert!(
        html.contains("<td><code>P.TS.01</code></td><td class=\"num\">3</td>"),
        "{html}"
    );
    assert!(
        html.contains("<td>KZ</td><td>KZ</td><td class=\"num\">3</td>"),
        "{html}"
    );
    assert!(
        html.contains("No message was refused or expired."),
        "{html}"
    );
    let month = {
        let t = time::OffsetDateTime::now_utc();
        format!("{:04}-{:02}", t.year(), u8::from(t.month()))
    };
    let (status, headers, csv) = get(&p, "/open-data/showcases/messages-per-month.csv").await;
    assert_eq!(status, 200);
    assert_eq!(headers["content-type"], "text/csv; charset=utf-8");
    let lines: Vec<&str> = csv.lines().collect();
    assert_eq!(lines.len(), 13, "twelve months and a header: {csv}");
    assert_eq!(lines[12], format!("{month},3"));
    let (_, _, pairs) = get(&p, "/open-data/showcases/messages-per-pair.csv").await;
    assert_eq!(pairs, "from,to,messages\r\nKZ,KZ,3\r\n");
    let (status, _, _) = get(&p, "/open-data/showcases/nothing.csv").await;
    assert_eq!(status, 404);
    p.running.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_registry_of_services_describes_each_process_and_door_for_people_and_programs() {
    let packages = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../processes");
    let p = start_with(|cfg| {
        cfg.processes = Some(node::config::ProcessesSection {
            dir: packages,
            validators: 1,
        });
    })
    .await;
    let (status, _, html) = get(&p, "/kk/services").await;
    assert_eq!(status, 200, "{html}");
    assert!(html.contains("Цифрлық сервистер тізілімі"), "{html}");
    assert!(html.contains("<code>process:P.TS.01</code>"), "{html}");
    assert!(html.contains("/api/schemas/R.TR.TS.01.001.xsd"), "{html}");
    // Programs discover the same services as JSON, one by one, and fetch a schema.
    let (status, _, json) = get(&p, "/api/services").await;
    assert_eq!(status, 200);
    let all: serde_json::Value = serde_json::from_str(&json).unwrap();
    let ids: Vec<&str> = all["services"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["id"].as_str().unwrap())
        .collect();
    for id in [
        "process:P.TS.01",
        "process:P.CC.10",
        "api:KZ",
        "opendata:ckan",
    ] {
        assert!(ids.contains(&id), "{id} in {ids:?}");
    }
    let (status, _, one) = get(&p, "/api/services/process:P.TS.01").await;
    assert_eq!(status, 200);
    let one: serde_json::Value = serde_json::from_str(&one).unwrap();
    assert_eq!(one["owner"], "EEC");
    assert_eq!(one["version"], "1.0.1");
    assert!(one["roles"].as_array().unwrap().len() >= 2, "{one}");
    let (status, _, xsd) = get(&p, "/api/schemas/R.TR.TS.01.001.xsd").await;
    assert_eq!(status, 200);
    assert!(xsd.contains("xs:schema"), "{xsd}");
    let (status, _, _) = get(&p, "/api/services/process:P.NO.00").await;
    assert_eq!(status, 404);
    let (status, _, _) = get(&p, "/api/schemas/..%2F..%2Fetc%2Fpasswd.xsd").await;
    assert_eq!(status, 404);
    p.running.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ckanapi_and_rdflib_read_the_open_data() {
    let Some(python) = testkit::opendata_python() else {
        return;
    };
    let p = start().await;
    registry_with_three(&p).await;
    let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../scripts/interop/opendata_check.py");
    let out = tokio::process::Command::new(&python)
        .arg(&script)
        .arg(&p.base)
        .output()
        .await
        .unwrap();
    assert!(
        out.status.success(),
        "the open-data tools failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let seen: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        seen["package_list"],
        serde_json::json!(["conformity-registry", "nsi-p-cls-019"])
    );
    assert_eq!(seen["get_only_list"], seen["package_list"]);
    assert_eq!(seen["organization_list"], serde_json::json!(["ortaq"]));
    assert_eq!(
        seen["registry_title"],
        "Единый реестр документов об оценке соответствия"
    );
    assert_eq!(
        seen["registry_formats"],
        serde_json::json!(["CSV", "JSON", "XML"])
    );
    assert_eq!(seen["search_count"], 1);
    assert_eq!(seen["missing"], "NotFound");
    assert!(seen["resource_download_bytes"].as_u64().unwrap() > 100);
    // rdflib read the catalogue: two datasets with three downloads each, titled in three
    // languages.
    assert_eq!(
        seen["dcat_distributions"],
        serde_json::json!({"conformity-registry": 3, "nsi-p-cls-019": 3})
    );
    assert_eq!(
        seen["dcat_registry_titles"]["kk"],
        "Сәйкестікті бағалау туралы құжаттардың бірыңғай тізілімі"
    );
    assert_eq!(
        seen["dcat_registry_titles"]["en"],
        "Unified registry of conformity documents"
    );
    p.running.stop().await.unwrap();
}

/// What the browser saw (`scripts/interop/browser_check.py`).
#[derive(Debug, serde::Deserialize)]
struct Seen {
    landing: String,
    landing_lang: String,
    landing_h1: String,
    switched_lang: String,
    switched_h1: String,
    search_found: String,
    search_codes: Vec<String>,
    search_url: String,
    first_tab: serde_json::Value,
    signin_url: String,
    account_h1: String,
    account_roles: Vec<String>,
    account_cookie: Vec<serde_json::Value>,
    signed_out_link: String,
    registry_found: String,
    registry_by: String,
    document_h1: String,
    downloaded_lines: usize,
    showcase_charts: usize,
    console_charts: usize,
    issued_token_length: usize,
    revoked_row: String,
    axe: std::collections::BTreeMap<String, Vec<serde_json::Value>>,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_real_browser_lands_in_its_language_switches_searches_and_finds_no_serious_barrier() {
    let Some(python) = testkit::browser_python() else {
        return;
    };
    let p = start().await;
    registry_with_three(&p).await;
    let shots = std::env::var("ORTAQ_SCREENSHOTS")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|_| p._dir.path().join("screenshots"));
    let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../scripts/interop/browser_check.py");
    let out = tokio::process::Command::new(&python)
        .arg(&script)
        .arg(&p.base)
        .arg(&shots)
        .args([OPERATOR, PASSWORD])
        .output()
        .await
        .unwrap();
    assert!(
        out.status.success(),
        "the browser run failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let seen: Seen = serde_json::from_slice(&out.stdout).unwrap();
    // The browser asks for Kazakh: it lands on the Kazakh page.
    assert_eq!(
        (seen.landing.as_str(), seen.landing_lang.as_str()),
        ("/kk/", "kk")
    );
    assert_eq!(seen.landing_h1, "KZ торабы");
    // The language menu switches to English.
    assert_eq!(
        (seen.switched_lang.as_str(), seen.switched_h1.as_str()),
        ("en", "Node KZ")
    );
    // The search, typed and sent with Enter, finds Belarus, and the address says what was
    // searched, so it can be shared and works without JavaScript.
    assert_eq!(seen.search_found, "Найдена 1 запись");
    assert_eq!(seen.search_codes, ["BY"]);
    assert!(seen.search_url.contains("q="), "{}", seen.search_url);
    // The registry searched with the keyboard, then narrowed to Belarus, the document read in
    // English; the whole registry downloaded as CSV (a header and three rows); the showcases'
    // four charts.
    assert_eq!(seen.registry_found, "Найдено 3 документа");
    assert_eq!(seen.registry_by, "ЕАЭС BY.01.АА.0002/2026");
    assert_eq!(seen.document_h1, "ЕАЭС BY.01.АА.0002/2026");
    assert_eq!(seen.downloaded_lines, 4);
    assert_eq!(seen.showcase_charts, 4);
    // A page for people signed in sends the browser to the form and, signed in, back; the
    // browser keeps the session cookie as sent (so Chromium counts loopback HTTP as secure).
    assert_eq!(seen.signin_url, "/en/signin?next=/en/account");
    assert_eq!(seen.account_h1, "Сіздің есептік жазбаңыз");
    assert_eq!(seen.account_roles, ["Торап операторы"]);
    assert_eq!(
        seen.account_cookie,
        [
            serde_json::json!({"name": "ortaq_kz_session", "httpOnly": true, "secure": true, "sameSite": "Lax"})
        ]
    );
    assert_eq!(seen.signed_out_link, "Кіру");
    // The operator sees two charts, issues a token (shown once, 43 characters of base64url)
    // and revokes it with the row's button.
    assert_eq!(seen.console_charts, 2);
    assert!(
        seen.issued_token_length >= 40,
        "{}",
        seen.issued_token_length
    );
    assert_eq!(seen.revoked_row, "revoked");
    // The first Tab reaches the link that skips to the content.
    assert_eq!(seen.first_tab["class"], "skip", "{:?}", seen.first_tab);
    // axe-core finds nothing serious or critical on the main pages.
    for (page, found) in &seen.axe {
        let bad: Vec<_> = found
            .iter()
            .filter(|v| matches!(v["impact"].as_str(), Some("serious" | "critical")))
            .collect();
        assert!(bad.is_empty(), "axe on {page}: {bad:?}");
    }
    for shot in [
        "home-kk.png",
        "home-en.png",
        "nsi-ru.png",
        "resource-search-ru.png",
        "signin-en.png",
        "account-kk.png",
        "console-ru.png",
        "console-tokens-en.png",
        "registry-ru.png",
        "registry-document-en.png",
        "opendata-en.png",
        "showcases-kk.png",
    ] {
        let png = std::fs::read(shots.join(shot)).unwrap();
        assert!(png.starts_with(b"\x89PNG"), "{shot}");
    }
    p.running.stop().await.unwrap();
}

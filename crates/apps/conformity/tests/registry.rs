//! The registry keeper's own store, on both engines like the node's: SQLite in a temporary
//! folder and the PostgreSQL server of this machine (a schema of its own per test; skipped, or
//! failed under `ORTAQ_REQUIRE_PG=1`, when the server is unreachable).

use conformity::{Registry, RegistryRecord};
use db::Engine;
use edoc::CommonResource as _;

fn record(doc_id: &str, status: &str) -> RegistryRecord {
    RegistryRecord {
        doc_id: doc_id.into(),
        country: "KZ".into(),
        kind: "certificate".into(),
        status: status.into(),
        submitted_by: "EAEU://KZ/CP/P.TS.01/P.TS.01.ACT.002".into(),
        updated_at: "2026-11-20T10:00:00Z".into(),
        applicant: "ТОО «Пример Электро»".into(),
        products: "Электродвигатели асинхронные".into(),
        start_date: "2026-11-23".into(),
        valid_until: "2031-11-22".into(),
        search_text: format!(
            "{} тоо «пример электро» электродвигатели асинхронные 850152",
            doc_id.to_lowercase()
        ),
    }
}

/// What a keeper does with its registry, and what survives a reopening.
async fn keeps_documents_and_answers_the_rules(engine: Engine) {
    let r = Registry::open(engine.clone()).unwrap();
    assert!(r.is_empty().await.unwrap());
    let xml = "<trcdo:ConformityDocDetails>ЕАЭС KZ.01.АА.0001/2026</trcdo:ConformityDocDetails>";
    let one = |status: &str| (record("ЕАЭС KZ.01.АА.0001/2026", status), xml.to_owned());
    r.put(
        &[
            one("01"),
            (record("ЕАЭС KZ.01.АА.0002/2026", "01"), xml.to_owned()),
        ],
        Some("e1"),
    )
    .await
    .unwrap();
    // The same number again replaces the entry; it does not add one.
    r.put(&[one("01")], Some("e2")).await.unwrap();
    assert_eq!(r.len().await.unwrap(), 2);
    let (rec, stored) = r.get("ЕАЭС KZ.01.АА.0001/2026").await.unwrap().unwrap();
    assert_eq!((rec.country.as_str(), stored.as_str()), ("KZ", xml));
    assert!(
        r.set_status("ЕАЭС KZ.01.АА.0001/2026", "02", "2026-11-21T00:00:00Z")
            .await
            .unwrap()
    );
    assert!(
        !r.set_status("ЕАЭС KZ-9999/2026", "02", "2026-11-21T00:00:00Z")
            .await
            .unwrap(),
        "a document nobody registered has no status to change"
    );
    assert_eq!(r.get("nothing").await.unwrap(), None);
    // The portal's search: every word must be somewhere in the record's names and codes,
    // whatever its case; a wildcard is a character like any other.
    let found = |text: &str, country: Option<&str>, status: Option<&str>| {
        let q = adapter::portal::RegistryQuery {
            text: Some(text.to_owned()).filter(|t| !t.is_empty()),
            country: country.map(str::to_owned),
            status: status.map(str::to_owned),
            offset: 0,
            limit: 10,
        };
        let r = &r;
        async move {
            let (rows, total) = r.search(q).await.unwrap();
            assert_eq!(rows.len() as i64, total);
            rows.into_iter().map(|x| x.doc_id).collect::<Vec<_>>()
        }
    };
    assert_eq!(found("ЭЛЕКТРОДВИГАТЕЛИ 850152", None, None).await.len(), 2);
    assert_eq!(
        found("", Some("KZ"), Some("02")).await,
        ["ЕАЭС KZ.01.АА.0001/2026"]
    );
    assert!(found("%", None, None).await.is_empty());
    assert!(found("турбина", None, None).await.is_empty());
    // Registered twice and suspended once: its history says so, in order.
    let statuses: Vec<String> = r
        .history("ЕАЭС KZ.01.АА.0001/2026")
        .await
        .unwrap()
        .into_iter()
        .map(|(s, _)| s)
        .collect();
    assert_eq!(statuses, ["01", "01", "02"]);
    let page = r.after("ЕАЭС KZ.01.АА.0001/2026", 10).await.unwrap();
    assert_eq!(page.len(), 1);
    // The filling rule "registered in the process's common resource" asks from a validator
    // thread, off the async runtime.
    let r = std::sync::Arc::new(r);
    let asked = {
        let r = r.clone();
        std::thread::spawn(move || {
            (
                r.contains("P.TS.01.BEN.001", "ЕАЭС KZ.01.АА.0001/2026"),
                r.contains("P.TS.01.BEN.001", "ЕАЭС KZ-9999/2026"),
                r.contains("P.TS.01.BEN.002", "ЕАЭС KZ.01.АА.0001/2026"),
            )
        })
        .join()
        .unwrap()
    };
    assert_eq!(asked, (true, false, false));
    r.close().await.unwrap();

    let again = Registry::open(engine).unwrap();
    let (rec, _) = again.get("ЕАЭС KZ.01.АА.0001/2026").await.unwrap().unwrap();
    assert_eq!(rec.status, "02");
    again.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_keeps_documents_and_answers_the_rules() {
    let dir = tempfile::tempdir().unwrap();
    keeps_documents_and_answers_the_rules(Engine::Sqlite(dir.path().join("apps/conformity.db")))
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_keeps_documents_and_answers_the_rules() {
    let Some(pg) = testkit::postgres_schema() else {
        return;
    };
    keeps_documents_and_answers_the_rules(Engine::Postgres(pg)).await;
}

/// The two engines' schemas agree, table by table and column by column.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_schema_matches_sqlite() {
    let Some(pg) = testkit::postgres_schema() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let a = Registry::open(Engine::Sqlite(dir.path().join("conformity.db"))).unwrap();
    let b = Registry::open(Engine::Postgres(pg)).unwrap();
    let (sa, sb) = (a.schema().await.unwrap(), b.schema().await.unwrap());
    assert!(!sa.is_empty());
    assert_eq!(sa, sb);
    a.close().await.unwrap();
    b.close().await.unwrap();
}

/// A registry message with several records is kept record by record, each as a message of its
/// own that the official schema accepts: the header and that one record, cut from the text.
#[test]
fn records_of_a_message_are_kept_one_by_one() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../processes");
    let first = conformity::sample::certificate(&dir, "KZ", 1).unwrap();
    let (open, rest) = first.split_once("<trcdo:ConformityDocDetails>").unwrap();
    let rec = format!(
        "<trcdo:ConformityDocDetails>{}",
        rest.rsplit_once("</doc:").unwrap().0
    );
    let two = format!(
        "{open}{rec}{}</doc:ConformityDocsRegistryDetails>",
        rec.replace("KZ.01.АА.0001/2026", "KZ.01.АА.0002/2026")
            .replace("<trsdo:DocStatusCode>01<", "<trsdo:DocStatusCode>02<")
    );
    let got = conformity::records(&two);
    let ids: Vec<(&str, &str, &str)> = got
        .iter()
        .map(|(r, _)| (r.doc_id.as_str(), r.status.as_str(), r.country.as_str()))
        .collect();
    assert_eq!(
        ids,
        [
            ("ЕАЭС KZ.01.АА.0001/2026", "01", "KZ"),
            ("ЕАЭС KZ.01.АА.0002/2026", "02", "KZ")
        ]
    );
    for (r, xml) in &got {
        let doc = roxmltree::Document::parse(xml).unwrap();
        let records = doc
            .descendants()
            .filter(|n| n.tag_name().name() == "ConformityDocDetails")
            .count();
        assert_eq!(records, 1);
        assert!(xml.contains(&r.doc_id) && xml.contains("<ccdo:EDocHeader>"));
    }
    // Not a registry message: nothing to register.
    assert!(conformity::records("<x/>").is_empty());
    assert!(conformity::records("not xml").is_empty());
}

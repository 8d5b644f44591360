//! NSI behaviour a user notices: imports report every problem with its line or item; lookups
//! answer as of a date; crosswalks translate and say when a mapping is missing or ambiguous;
//! searches find names across languages and spellings; every format reads back what it wrote;
//! a version's hash does not depend on the order of its items.

use std::collections::BTreeMap;

use nsi::format::{self, Format};
use nsi::model::{
    Content, CrosswalkHeader, Header, Item, Kind, Mapping, Relation, Resource, parse_date,
};
use nsi::{Crosswalk, Index};
use proptest::prelude::*;

fn d(s: &str) -> time::Date {
    parse_date(s).unwrap()
}

fn shipped(name: &str) -> Content {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../data/nsi")
        .join(name);
    let bytes = std::fs::read(&path).unwrap();
    let r = format::read(&bytes, Format::Json, None).unwrap();
    assert_eq!(r.check(), vec![], "{name} as shipped is valid");
    r.content
}

const HEADER: &str = r#""resource": {"code": "T.CLS.1", "kind": "classifier", "names": {"ru": "Тест", "en": "Test"}}"#;

/// Imports `input` and expects these problems (each `at: message` must contain the given
/// location and text), or none.
fn check(format: Format, input: &str, expect: &[(&str, &str)]) {
    let base: Content = serde_json::from_str(&format!("{{{HEADER}, \"items\": []}}")).unwrap();
    let problems = match format::read(input.as_bytes(), format, Some(&base)) {
        Ok(r) => r.check(),
        Err(p) => p,
    };
    let shown: Vec<String> = problems.iter().map(|p| p.to_string()).collect();
    assert_eq!(problems.len(), expect.len(), "{input}\ngot: {shown:#?}");
    for (at, msg) in expect {
        assert!(
            problems
                .iter()
                .any(|p| p.at.contains(at) && p.message.contains(msg)),
            "expected {at}: {msg}\ngot: {shown:#?}"
        );
    }
}

#[test]
fn imports_report_every_problem_where_it_is() {
    let json = |items: &str| format!("{{{HEADER}, \"items\": [{items}]}}");
    check(
        Format::Json,
        &json(r#"{"code": "A", "names": {"ru": "А"}}"#),
        &[],
    );
    check(
        Format::Json,
        &json(r#"{"code": "A", "names": {"ru": "А"}}, {"code": "A", "names": {"ru": "А2"}}"#),
        &[("item 2 (A)", "duplicate code A")],
    );
    check(
        Format::Json,
        &json(
            r#"{"code": "A", "names": {"ru": "А"}, "valid_to": "2020-12-31"}, {"code": "A", "names": {"ru": "А2"}, "valid_from": "2020-06-01"}"#,
        ),
        &[("item 2 (A)", "overlaps")],
    );
    check(
        Format::Json,
        &json(
            r#"{"code": "A", "names": {"ru": "А"}, "valid_to": "2020-12-31"}, {"code": "A", "names": {"ru": "А2"}, "valid_from": "2021-01-01"}"#,
        ),
        &[],
    );
    check(
        Format::Json,
        &json(r#"{"code": "B", "names": {"xx": "?"}, "parent": "Z"}"#),
        &[
            ("item 1 (B)", "unknown language \"xx\""),
            ("item 1 (B)", "parent Z does not exist"),
        ],
    );
    check(
        Format::Json,
        &json(
            r#"{"code": "A", "names": {"ru": "А"}, "parent": "B"}, {"code": "B", "names": {"ru": "Б"}, "parent": "C"}, {"code": "C", "names": {"ru": "В"}, "parent": "A"}"#,
        ),
        &[("item", "circular hierarchy")],
    );
    check(
        Format::Json,
        &json(
            r#"{"code": "A", "names": {"ru": "А"}, "valid_from": "2021-01-01", "valid_to": "2020-01-01"}"#,
        ),
        &[("item 1 (A)", "after valid_to")],
    );
    check(
        Format::Json,
        &json(r#"{"code": "A", "names": {"ru": "А"}, "valid_from": "2021-13-01"}"#),
        &[("line 1", "not a date")],
    );
    check(
        Format::Json,
        "{\"items\": []}",
        &[("top level", "\"resource\" or \"crosswalk\"")],
    );
    check(Format::Json, "{", &[("line 1", "EOF")]);

    check(
        Format::Csv,
        "code,parent,name:ru,name:kk\nA,,Алма,Алма\nB,A,Берёза,Қайың\n",
        &[],
    );
    check(
        Format::Csv,
        "code,name:ru,colour\nA,Алма,red\nB,,\nC,Вишня,x\n",
        &[
            ("line 1", "unknown column \"colour\""),
            ("line 3 (B)", "no name"),
        ],
    );
    check(
        Format::Csv,
        "code,name:ru,valid_from\nA,Алма,2020-01-01\nB,,\nC,Вишня,yesterday\n",
        &[("line 4", "not a date"), ("line 3 (B)", "no name")],
    );
    check(
        Format::Csv,
        "code,name:ru\nA,Алма\nB,\n",
        &[("line 3 (B)", "no name")],
    );
    check(
        Format::Csv,
        "code,name:ru\nA,Алма,extra\n",
        &[("line 2", "found record with 3 fields")],
    );

    let x = |items: &str| {
        format!(
            "<nsi:Resource xmlns:nsi=\"urn:ortaq:nsi:v1\" code=\"T.CLS.1\" kind=\"classifier\"><nsi:Name lang=\"en\">Test</nsi:Name>{items}</nsi:Resource>"
        )
    };
    check(
        Format::Xml,
        &x("<nsi:Item code=\"A\"><nsi:Name lang=\"ru\">А</nsi:Name></nsi:Item>"),
        &[],
    );
    check(
        Format::Xml,
        &x(
            "\n<nsi:Item code=\"A\" validTo=\"2020-02-30\"><nsi:Name lang=\"ru\">А</nsi:Name></nsi:Item>\n<nsi:Oops/>",
        ),
        &[("line 2", "not a date"), ("line 3", "unexpected element")],
    );
    check(
        Format::Xml,
        "<!DOCTYPE r [<!ENTITY e SYSTEM \"file:///etc/passwd\">]><nsi:Resource xmlns:nsi=\"urn:ortaq:nsi:v1\"/>",
        &[("file", "DTD")],
    );
    check(
        Format::Xml,
        "<Resource/>",
        &[("line 1", "is not {urn:ortaq:nsi:v1}Resource")],
    );
}

fn fruit() -> Resource {
    let item = |code: &str, ru: &str, from: Option<&str>, to: Option<&str>| Item {
        code: code.into(),
        names: [("ru".to_owned(), ru.to_owned())].into(),
        attributes: BTreeMap::new(),
        parent: None,
        valid_from: from.map(d),
        valid_to: to.map(d),
        act: None,
    };
    Resource {
        resource: Header {
            code: "T.CLS.1".into(),
            kind: Kind::Classifier,
            names: [("ru".to_owned(), "Фрукты".to_owned())].into(),
            owner: String::new(),
            act: String::new(),
            source: String::new(),
        },
        items: vec![
            item("A", "Яблоко", None, Some("2020-12-31")),
            item("A", "Яблоко зелёное", Some("2021-01-01"), None),
            item("B", "Груша", Some("2022-01-01"), None),
        ],
    }
}

#[test]
fn lookups_answer_as_of_a_date() {
    let mut idx = Index::default();
    let r = fruit();
    let sha = Content::Resource(r.clone()).sha256();
    idx.insert(Content::Resource(r), 1, sha);
    let res = idx.resource("T.CLS.1").unwrap();
    assert_eq!(
        res.lookup("A", d("2020-06-01")).unwrap().names["ru"],
        "Яблоко"
    );
    assert_eq!(
        res.lookup("A", d("2021-01-01")).unwrap().names["ru"],
        "Яблоко зелёное"
    );
    assert!(res.lookup("B", d("2021-12-31")).is_none(), "not yet valid");
    assert!(res.lookup("C", d("2021-12-31")).is_none());
    assert!(res.is_valid("B", d("2022-01-01").to_julian_day()));
    assert!(!res.is_valid("B", d("2021-12-31").to_julian_day()));
    assert_eq!(idx.is_valid("T.CLS.9", "A", 0), None, "unknown resource");
}

#[test]
fn crosswalks_translate_and_say_when_missing_or_ambiguous() {
    let mut idx = Index::default();
    let r = fruit();
    idx.insert(Content::Resource(r), 1, String::new());
    let m = |from: &str, to: &str, rel| Mapping {
        from: from.into(),
        to: to.into(),
        relation: rel,
        valid_from: None,
        valid_to: None,
    };
    let cw = Crosswalk {
        crosswalk: CrosswalkHeader {
            code: "X.1".into(),
            from: "T.CLS.1".into(),
            to: "T.CLS.1".into(),
            names: [("en".to_owned(), "Self".to_owned())].into(),
            source: String::new(),
        },
        mappings: vec![
            m("A", "B", Relation::Related),
            m("B", "A", Relation::Broader),
            m("B", "Q", Relation::Narrower),
        ],
    };
    let problems = idx.check_crosswalk(&cw);
    assert_eq!(
        problems.len(),
        1,
        "Q is no code of the target: {problems:?}"
    );
    assert!(problems[0].message.contains("Q is not a code of T.CLS.1"));
    idx.insert(Content::Crosswalk(cw), 1, String::new());
    let t = idx.translate("X.1", "A", d("2023-01-01")).unwrap();
    assert_eq!(t.unique(), Some("B"));
    let t = idx.translate("X.1", "B", d("2023-01-01")).unwrap();
    assert!(t.is_ambiguous());
    assert!(
        idx.translate("X.1", "B", d("2021-01-01")).is_err(),
        "B not valid yet"
    );
    assert!(idx.translate("X.9", "A", d("2023-01-01")).is_err());
}

#[test]
fn shipped_data_answers_the_questions_people_ask() {
    let mut idx = Index::default();
    for f in ["countries.json", "hs.json", "cn.json", "cn-hs.json"] {
        let c = shipped(f);
        let sha = c.sha256();
        idx.insert(c, 1, sha);
    }
    let today = d("2026-11-23");
    let countries = idx.resource("P.CLS.019").unwrap();
    assert_eq!(
        countries.lookup("BY", today).unwrap().names["kk"],
        "Беларусь"
    );
    assert_eq!(
        countries.lookup("KZ", today).unwrap().names["kk"],
        "Қазақстан"
    );
    for q in ["Қазақстан", "казахстан", "Kazakhstan", "КАЗАХСТАН"] {
        let found = countries.search(q, Some(today), 3);
        assert_eq!(
            found.first().map(|f| f.1.code.as_str()),
            Some("KZ"),
            "{q}: {found:?}"
        );
    }
    let hs = idx.resource("WCO.HS.2022").unwrap();
    let path: Vec<&str> = hs
        .path("847130", today)
        .iter()
        .map(|i| i.code.as_str())
        .collect();
    assert_eq!(path, ["847130", "8471", "84", "XVI"]);
    let t = idx
        .translate("X.EU.CN.2023-WCO.HS.2022", "84713000", today)
        .unwrap();
    assert_eq!(t.unique(), Some("847130"));
    assert!(
        idx.check_crosswalk(match &shipped("cn-hs.json") {
            Content::Crosswalk(c) => c,
            _ => unreachable!(),
        })
        .is_empty()
    );
}

#[test]
fn the_hash_names_the_content_not_its_order() {
    let a = fruit();
    let mut b = a.clone();
    b.items.reverse();
    assert_eq!(
        Content::Resource(a.clone()).sha256(),
        Content::Resource(b).sha256()
    );
    let mut c = a.clone();
    c.items[0].names.insert("kk".into(), "Алма".into());
    assert_ne!(Content::Resource(a).sha256(), Content::Resource(c).sha256());
}

#[test]
fn diffs_list_what_was_added_removed_and_changed() {
    let a = fruit();
    let mut b = a.clone();
    b.items.remove(2);
    b.items[0].names.insert("en".into(), "Apple".into());
    b.items.push(Item {
        code: "C".into(),
        ..a.items[2].clone()
    });
    let d = nsi::diff::diff(Some(&Content::Resource(a)), &Content::Resource(b));
    assert_eq!(d.added, ["C@2022-01-01"]);
    assert_eq!(d.removed, ["B@2022-01-01"]);
    assert_eq!(d.changed, ["A"]);
}

fn arb_text() -> impl Strategy<Value = String> {
    "[a-zA-Zа-яәқңөұүһі0-9 ,.<>&\"'-]{1,20}".prop_map(|s| {
        if s.trim().is_empty() {
            "x".into()
        } else {
            s.trim().to_owned()
        }
    })
}

fn arb_resource() -> impl Strategy<Value = Resource> {
    let item = (
        "[A-Z0-9]{1,6}",
        proptest::collection::btree_map(
            prop_oneof!["ru", "kk", "en"].prop_map(String::from),
            arb_text(),
            1..3,
        ),
        proptest::collection::btree_map("[a-z]{1,5}", arb_text(), 0..2),
        proptest::option::of(0i32..3000),
    );
    proptest::collection::vec(item, 0..12).prop_map(|items| {
        let mut seen = std::collections::HashSet::new();
        let items = items
            .into_iter()
            .filter(|(c, ..)| seen.insert(c.clone()))
            .map(|(code, names, attributes, from)| Item {
                code,
                names,
                attributes,
                parent: None,
                valid_from: from.map(|n| d("2000-01-01") + time::Duration::days(n as i64)),
                valid_to: None,
                act: None,
            })
            .collect();
        let mut r = fruit();
        r.items = items;
        r.normalize();
        r
    })
}

proptest! {
    #[test]
    fn every_format_reads_back_what_it_wrote(r in arb_resource()) {
        let c = Content::Resource(r);
        for f in [Format::Json, Format::Csv, Format::Xml] {
            let bytes = format::write(&c, f);
            let back = format::read(&bytes, f, Some(&c)).map_err(|p| TestCaseError::fail(format!("{f:?}: {p:?}")))?;
            prop_assert_eq!(&back.content, &c, "{:?}", f);
        }
    }

    #[test]
    fn any_bytes_get_an_answer(bytes in proptest::collection::vec(any::<u8>(), 0..400)) {
        let base = Content::Resource(fruit());
        for f in [Format::Json, Format::Csv, Format::Xml] {
            if let Ok(r) = format::read(&bytes, f, Some(&base)) {
                let _ = r.check();
            }
        }
    }
}

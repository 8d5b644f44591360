//! Languages of the pages: which one a person gets, the Fluent messages in it, and numbers and
//! dates written as that language writes them.

use std::sync::Arc;

use fluent_bundle::concurrent::FluentBundle;
use fluent_bundle::{FluentArgs, FluentResource, FluentValue};

/// The languages of the pages; Russian is the Union's working language and the default.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Lang {
    Ru,
    Kk,
    En,
}

impl Lang {
    pub const ALL: [Lang; 3] = [Lang::Ru, Lang::Kk, Lang::En];

    pub fn code(self) -> &'static str {
        match self {
            Lang::Ru => "ru",
            Lang::Kk => "kk",
            Lang::En => "en",
        }
    }

    /// The language's name in itself, for the language menu.
    pub fn native_name(self) -> &'static str {
        match self {
            Lang::Ru => "Русский",
            Lang::Kk => "Қазақша",
            Lang::En => "English",
        }
    }

    pub fn from_code(code: &str) -> Option<Lang> {
        Lang::ALL
            .into_iter()
            .find(|l| l.code().eq_ignore_ascii_case(code))
    }

    /// The best of ours for an `Accept-Language` header (RFC 9110 12.5.4: language ranges with
    /// q-values; `kk-KZ` matches `kk`); None when it names none of them.
    pub fn negotiate(accept_language: &str) -> Option<Lang> {
        let mut best: Option<(f32, usize, Lang)> = None;
        for (i, part) in accept_language.split(',').take(32).enumerate() {
            let mut fields = part.split(';');
            let range = fields.next().unwrap_or("").trim();
            let q = fields
                .filter_map(|f| f.trim().strip_prefix("q="))
                .find_map(|v| v.trim().parse::<f32>().ok())
                .unwrap_or(1.0);
            let primary = range.split('-').next().unwrap_or("");
            let Some(lang) = Lang::from_code(primary) else {
                continue;
            };
            if q <= 0.0 {
                continue;
            }
            // Higher q wins; at equal q, the earlier range.
            if best.is_none_or(|(bq, bi, _)| q > bq || (q == bq && i < bi)) {
                best = Some((q, i, lang));
            }
        }
        best.map(|(_, _, l)| l)
    }

    /// `n` with this language's digit grouping: `1 234 567` (a no-break space) in Russian and
    /// Kazakh, `1,234,567` in English (CLDR).
    pub fn number(self, n: i64) -> String {
        let sep = match self {
            Lang::Ru | Lang::Kk => '\u{a0}',
            Lang::En => ',',
        };
        let digits = n.unsigned_abs().to_string();
        let mut out = String::with_capacity(digits.len() + digits.len() / 3 + 1);
        if n < 0 {
            out.push('-');
        }
        for (i, c) in digits.chars().enumerate() {
            if i > 0 && (digits.len() - i).is_multiple_of(3) {
                out.push(sep);
            }
            out.push(c);
        }
        out
    }

    /// A date in this language's long form (CLDR): `1 декабря 2026 г.`, `2026 ж. 1 желтоқсан`,
    /// `1 December 2026`.
    pub fn date(self, d: time::Date) -> String {
        let m = usize::from(u8::from(d.month())) - 1;
        let (day, year) = (d.day(), d.year());
        match self {
            Lang::Ru => format!("{day} {} {year} г.", RU_MONTHS[m]),
            Lang::Kk => format!("{year} ж. {day} {}", KK_MONTHS[m]),
            Lang::En => format!("{day} {} {year}", EN_MONTHS[m]),
        }
    }
}

/// Month names in the genitive, as Russian dates use them.
const RU_MONTHS: [&str; 12] = [
    "января",
    "февраля",
    "марта",
    "апреля",
    "мая",
    "июня",
    "июля",
    "августа",
    "сентября",
    "октября",
    "ноября",
    "декабря",
];
const KK_MONTHS: [&str; 12] = [
    "қаңтар",
    "ақпан",
    "наурыз",
    "сәуір",
    "мамыр",
    "маусым",
    "шілде",
    "тамыз",
    "қыркүйек",
    "қазан",
    "қараша",
    "желтоқсан",
];
const EN_MONTHS: [&str; 12] = [
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
];

/// The Fluent messages of every language, loaded once.
#[derive(Clone)]
pub struct Messages {
    bundles: Arc<[(Lang, FluentBundle<FluentResource>)]>,
}

/// The message files, in the binary.
const FTL: [(Lang, &str); 3] = [
    (Lang::Ru, include_str!("../locales/ru.ftl")),
    (Lang::Kk, include_str!("../locales/kk.ftl")),
    (Lang::En, include_str!("../locales/en.ftl")),
];

impl Messages {
    /// Parses the shipped message files; an error names the file and what is wrong with it.
    pub fn load() -> Result<Messages, String> {
        let mut bundles = Vec::new();
        for (lang, text) in FTL {
            let res = FluentResource::try_new(text.to_owned())
                .map_err(|(_, e)| format!("locales/{}.ftl: {e:?}", lang.code()))?;
            let id: unic_langid::LanguageIdentifier = lang
                .code()
                .parse()
                .map_err(|e| format!("{}: {e}", lang.code()))?;
            let mut b = FluentBundle::new_concurrent(vec![id]);
            // Pages are HTML, escaped by the templates; isolation marks would only add noise.
            b.set_use_isolating(false);
            b.add_resource(res)
                .map_err(|e| format!("locales/{}.ftl: {e:?}", lang.code()))?;
            bundles.push((lang, b));
        }
        Ok(Messages {
            bundles: bundles.into(),
        })
    }

    fn bundle(&self, lang: Lang) -> Option<&FluentBundle<FluentResource>> {
        self.bundles
            .iter()
            .find(|(l, _)| *l == lang)
            .map(|(_, b)| b)
    }

    /// The message `key` in `lang` with `args`; Err names a missing key or a bad argument, so
    /// that a page never shows a half-translated text silently.
    pub fn text(
        &self,
        lang: Lang,
        key: &str,
        args: &[(&str, FluentValue<'_>)],
    ) -> Result<String, String> {
        let bundle = self
            .bundle(lang)
            .ok_or_else(|| format!("no messages in {}", lang.code()))?;
        let pattern = bundle
            .get_message(key)
            .and_then(|m| m.value())
            .ok_or_else(|| format!("no message {key:?} in {}", lang.code()))?;
        let mut fa = FluentArgs::new();
        for (k, v) in args {
            fa.set(*k, v.clone());
        }
        let mut errors = Vec::new();
        let text = bundle.format_pattern(pattern, Some(&fa), &mut errors);
        if let Some(e) = errors.first() {
            return Err(format!("message {key:?} in {}: {e:?}", lang.code()));
        }
        Ok(text.into_owned())
    }

    /// The message keys of `lang`'s file, for the check that every language has every key.
    pub fn keys(lang: Lang) -> Vec<String> {
        let text = FTL.iter().find(|(l, _)| *l == lang).map_or("", |(_, t)| t);
        let mut keys: Vec<String> = text
            .lines()
            .filter(|l| !l.starts_with([' ', '#', '*', '[']) && l.contains(" = "))
            .filter_map(|l| l.split(" = ").next().map(|k| k.trim().to_owned()))
            .collect();
        keys.sort();
        keys
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(accept_language: &str, expect: Option<&str>) {
        assert_eq!(
            Lang::negotiate(accept_language).map(Lang::code),
            expect,
            "{accept_language:?}"
        );
    }

    #[test]
    fn accept_language_picks_the_best_of_ours() {
        check("kk-KZ,kk;q=0.9,ru;q=0.8", Some("kk"));
        check("de-DE, en;q=0.5, ru;q=0.7", Some("ru"));
        check("en-GB", Some("en"));
        check("ru;q=0, en;q=0.1", Some("en"));
        check("fr, de", None);
        check("", None);
        check("kk;q=abc, en;q=0.2", Some("kk"));
    }

    #[test]
    fn numbers_and_dates_as_each_language_writes_them() {
        assert_eq!(Lang::Ru.number(1_234_567), "1\u{a0}234\u{a0}567");
        assert_eq!(Lang::En.number(-1_234), "-1,234");
        assert_eq!(Lang::Kk.number(999), "999");
        let d = time::macros::date!(2026 - 12 - 01);
        assert_eq!(Lang::Ru.date(d), "1 декабря 2026 г.");
        assert_eq!(Lang::Kk.date(d), "2026 ж. 1 желтоқсан");
        assert_eq!(Lang::En.date(d), "1 December 2026");
    }

    #[test]
    fn every_language_has_every_message() {
        let ru = Messages::keys(Lang::Ru);
        assert!(ru.len() > 20, "{ru:?}");
        for l in [Lang::Kk, Lang::En] {
            assert_eq!(Messages::keys(l), ru, "the keys of {}.ftl", l.code());
        }
    }

    #[test]
    fn russian_plurals_follow_cldr() {
        let m = Messages::load().unwrap();
        let found = |n: i64| {
            m.text(
                Lang::Ru,
                "search-found",
                &[("count", n.into()), ("n", Lang::Ru.number(n).into())],
            )
            .unwrap()
        };
        assert_eq!(found(1), "Найдена 1 запись");
        assert_eq!(found(3), "Найдено 3 записи");
        assert_eq!(found(11), "Найдено 11 записей");
        assert_eq!(found(1021), "Найдена 1\u{a0}021 запись");
        assert!(m.text(Lang::En, "no-such-key", &[]).is_err());
    }
}

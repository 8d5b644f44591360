//! Escaping for text the crate writes: the XML markup characters, and the whitespace controls
//! that a parser would otherwise normalise (CR in text; TAB, LF, CR in attributes), so what is
//! read back is exactly what was written.

use std::borrow::Cow;

pub fn text(s: &str) -> Cow<'_, str> {
    if !s.contains(['<', '>', '&', '\r']) {
        return Cow::Borrowed(s);
    }
    Cow::Owned(quick_xml::escape::escape(s).replace('\r', "&#13;"))
}

pub fn attr(s: &str) -> Cow<'_, str> {
    if !s.contains(['<', '>', '&', '"', '\'', '\r', '\n', '\t']) {
        return Cow::Borrowed(s);
    }
    Cow::Owned(
        quick_xml::escape::escape(s)
            .replace('\r', "&#13;")
            .replace('\n', "&#10;")
            .replace('\t', "&#9;"),
    )
}
